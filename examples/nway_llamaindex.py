"""Route among three LLMs in a LlamaIndex query engine with the embedded N-way router.

    python examples/nway_llamaindex.py

The router is real: the embedded N-way default (a quality predictor for LLMRouter's 9-model
pool, trained on LLMRouter's train split). The three LLMs are STAND-INS (``MockLLM``, which
echoes its prompt) and the index uses ``MockEmbedding``, so the example runs offline with no API
key; in your code put real LLMs there, e.g. ``NVIDIA(model="meta/llama-3.1-8b-instruct")``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms import MockLLM

from llamaindex_routellm import (
    RouteLLM,
    RoutingCostEventHandler,
    RoutingDecisionEvent,
)

# the router's names for the models, and their prices ($ per million tokens, LLMRouter's table)
PRICES = {
    "llama-3.1-nemotron-51b-instruct": (0.9, 0.9),
    "llama-3.1-8b-instruct": (0.2, 0.2),
    "gemma-2-9b-it": (0.1, 0.1),
}
DOCS = [
    "Paris is the capital of France.",
    "Plants absorb carbon dioxide for photosynthesis.",
    "The Fibonacci sequence starts 0, 1, 1, 2, 3, 5, 8.",
]
QUESTIONS = [
    "What is the capital of France?",
    "Which gas do plants absorb?",
    "Write a Python function that returns the n-th Fibonacci number.",
]


class PrintDecisions(BaseEventHandler):
    @classmethod
    def class_name(cls) -> str:
        return "PrintDecisions"

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, RoutingDecisionEvent) and event.scores:
            print(
                f"  routed to {event.model:<32} P(right) {event.scores[event.model]:.2f}  "
                f"lambdas {event.lambdas}"
            )


def main() -> None:
    printer = PrintDecisions()
    get_dispatcher().add_event_handler(printer)
    index = VectorStoreIndex.from_documents(
        [Document(text=t) for t in DOCS], embed_model=MockEmbedding(embed_dim=8)
    )
    # router=None: the embedded N-way default; the first model is the reference for savings
    llm = RouteLLM(
        models={m: MockLLM(max_tokens=8) for m in PRICES},
        lambdas={"cost": 0.1},
        prices=PRICES,
    )
    engines = {
        "balanced (cost 0.1)": index.as_query_engine(llm=llm, similarity_top_k=1),
        "thrifty (cost 1.0)": index.as_query_engine(
            llm=llm.with_routing(lambdas={"cost": 1.0}), similarity_top_k=1
        ),
    }
    for label, engine in engines.items():
        print(f"{label}:")
        costs = RoutingCostEventHandler()
        get_dispatcher().add_event_handler(costs)
        for q in QUESTIONS:
            print(f"  Q: {q}")
            engine.query(q)
        costs.detach()
        print(f"  cost ${float(costs.totals.total_cost):.6f}, saved ${float(costs.totals.savings):.6f} "
              "against the first model")


if __name__ == "__main__":
    main()
