"""Route among three chat models in an LCEL chain with the embedded N-way router.

    python examples/nway_langchain.py

The router is real: the embedded N-way default (a quality predictor for LLMRouter's 9-model
pool, trained on LLMRouter's train split). The three chat models are STAND-INS
(``FakeListChatModel``, canned answers) so the example runs offline with no API key; in your
code put real chat models there, e.g. ``ChatNVIDIA(model="nvidia/llama-3.1-nemotron-51b-instruct")``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_routellm import ChatRouteLLM, get_routing_cost_callback

# the router's names for the models, and their prices ($ per million tokens, LLMRouter's table)
PRICES = {
    "llama-3.1-nemotron-51b-instruct": (0.9, 0.9),
    "llama-3.1-8b-instruct": (0.2, 0.2),
    "gemma-2-9b-it": (0.1, 0.1),
}
QUESTIONS = [
    "What is the capital of France?",
    "Write a Python function that returns the n-th Fibonacci number.",
    "A train travels 120 km in 1.5 hours. What is its average speed in km/h?",
    "Which gas do plants absorb from the air for photosynthesis?",
]


def main() -> None:
    stand_ins = {
        name: FakeListChatModel(responses=[f"(stand-in answer from {name})"])
        for name in PRICES
    }
    # router=None: the embedded N-way default; the first model is the reference for savings
    llm = ChatRouteLLM(models=stand_ins, lambdas={"cost": 0.1})
    chain = (
        ChatPromptTemplate.from_messages([("human", "{question}")])
        | llm
        | StrOutputParser()
    )

    for lam in (0.0, 0.1, 1.0):
        print(f"lambda cost = {lam}:")
        with get_routing_cost_callback(prices=PRICES) as cb:
            for q in QUESTIONS:
                d = llm.route(q, {"configurable": {"routellm_lambdas": {"cost": lam}}})
                answer = chain.invoke(
                    {"question": q},
                    config={"configurable": {"routellm_lambdas": {"cost": lam}}},
                )
                print(
                    f"  {d.model:<32} P(right) {d.scores[d.model]:.2f}  {q[:50]:<50} -> {answer}"
                )
        print(f"  calls by model: { {m: t.calls for m, t in cb.totals.by_model.items()} }; "
              f"cost ${float(cb.totals.total_cost):.6f}, saved ${float(cb.totals.savings):.6f} "
              "against the first model")


if __name__ == "__main__":
    main()
