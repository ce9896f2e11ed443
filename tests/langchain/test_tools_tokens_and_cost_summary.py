"""Tool calling over a model without tools, structured output with the raw message, token
counts, and the printed cost summary of the routing cost callback."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from langchain_routellm import ChatRouteLLM, RoutingCostCallbackHandler, get_routing_cost_callback
from routellm_core.costs import count_tokens, estimate_message_tokens
from tests.langchain.fake_models import FakeToolChatModel

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}


class Answer(BaseModel):
    text: str


def make(**kw: Any) -> ChatRouteLLM:
    kw.setdefault("threshold", 0.5)
    return ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"),
                        weak=FakeToolChatModel(model_name="fake-weak"), router="default", **kw)


def test_tools_over_a_model_without_tool_calling_name_the_model():
    llm = ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"),
                       weak=FakeListChatModel(responses=["ok"]), router="default", threshold=0.5)
    with pytest.raises(NotImplementedError, match=r"the weak model 'FakeListChatModel' \(FakeListChatModel\) "
                                                  r"does not support tool calling"):
        llm.bind_tools([Answer])
    with pytest.raises(NotImplementedError, match="does not support structured output"):
        llm.with_structured_output(Answer)


def test_structured_output_keeps_the_decision():
    raw_out = make(threshold=0.0).with_structured_output(Answer, include_raw=True).invoke("Say hello")
    assert raw_out["parsed"] == Answer(text="Say hello") and raw_out["parsing_error"] is None
    meta = raw_out["raw"].response_metadata
    assert meta["routellm_route"] == "strong" and meta["routellm_model"] == "fake-strong"

    class Runs(BaseCallbackHandler):
        def __init__(self) -> None:
            self.metadata: list[dict[str, Any]] = []

        def on_chat_model_start(self, serialized, messages, *, metadata=None, **kw):
            self.metadata.append(dict(metadata or {}))

    runs = Runs()
    parsed = make(threshold=1.0).with_structured_output(Answer).invoke("Say hi", config={"callbacks": [runs]})
    assert parsed == Answer(text="Say hi")                       # no room for it in the object...
    assert runs.metadata[0]["routellm_route"] == "weak"          # ...it is on the model's run


def test_token_counts_are_real():
    llm = make()
    text = "Prove that there are infinitely many primes."
    assert llm.get_num_tokens(text) == count_tokens(text) > 0
    msgs = [SystemMessage("Be brief."), HumanMessage(text)]
    assert llm.get_num_tokens_from_messages(msgs) == estimate_message_tokens(["Be brief.", text])

    class OwnTokenizer(FakeToolChatModel):
        def get_num_tokens(self, text: str) -> int:
            return len(text.split())

    own = ChatRouteLLM(strong=OwnTokenizer(model_name="fake-strong"), weak=FakeToolChatModel(model_name="w"),
                       threshold=0.5)
    assert own.get_num_tokens(text) == 7                         # the strong model's own count


def test_the_cost_callback_prints_a_summary():
    llm = make()
    with get_routing_cost_callback(PRICES) as cb:
        llm.invoke("hello there", routellm_threshold=0.0)
        llm.invoke("hello there", routellm_threshold=1.0)
    t = cb.totals
    text = str(cb)
    lines = text.splitlines()
    assert lines[0] == "Routed calls: 2 (strong: 1, 50.0%)"
    assert f"Tokens Used: {t.input_tokens + t.output_tokens}" in lines
    assert f"  Prompt Tokens: {t.input_tokens}" in lines and f"  Completion Tokens: {t.output_tokens}" in lines
    assert f"Total Cost (USD): ${t.total_cost:,.6f}" in lines
    assert f"All-strong Cost (USD): ${t.strong_cost:,.6f}" in lines
    assert lines[-1] == f"Savings (USD): ${t.savings:,.6f} ({t.savings / t.strong_cost:.1%})"
    assert "  By model: fake-strong 1, fake-weak 1" in lines
    assert repr(cb).startswith("RoutingCostCallbackHandler(calls=2, strong_share=0.500, ")
    assert str(RoutingCostCallbackHandler()).startswith("Routed calls: 0 (strong: 0, 0.0%)\nTokens Used: 0")
