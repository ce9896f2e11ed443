"""NWayChatRouteLLM: N-way routing in LCEL chains, on the real embedded N-way router."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from routellm_core.encoders import QueryEncoder
from routellm_core.nway import load_nway_router
from routellm_core.nway.policy import NWayRouterFailure, get_default_nway_router

from langchain_routellm import NWayChatRouteLLM, get_routing_cost_callback
from tests.langchain.fake_models import FakeToolChatModel

BIG, MID, SMALL = (
    "llama-3.1-nemotron-51b-instruct",
    "llama-3.1-8b-instruct",
    "gemma-2-9b-it",
)
CHEAP = {"routellm_lambdas": {"cost": 100.0}}  # every query to the cheapest model
COSTLY = {"routellm_lambdas": {"cost": -100.0}}  # every query to the costliest model


def make(**kw: Any) -> NWayChatRouteLLM:
    models = {name: FakeToolChatModel(model_name=name) for name in (BIG, MID, SMALL)}
    return NWayChatRouteLLM(models=models, **kw)


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[tuple[list[str], dict[str, Any]]] = []

    def on_chat_model_start(
        self, serialized, messages, *, tags=None, metadata=None, **kw
    ):
        self.starts.append((list(tags or []), dict(metadata or {})))


def test_routes_among_three_models_with_lambdas_per_call():
    llm = make(lambdas={"cost": 0.1})
    cheap = llm.invoke("What is the capital of France?", config={"configurable": CHEAP})
    assert cheap.content.startswith(f"[{SMALL}]")
    meta = cheap.response_metadata
    assert meta["routellm_model"] == SMALL and meta["routellm_lambdas"] == {
        "cost": 100.0
    }
    assert (
        set(meta["routellm_scores"]) == {BIG, MID, SMALL}
        and meta["routellm_router"] == "quality"
    )
    costly = llm.invoke(
        "What is the capital of France?", config={"configurable": COSTLY}
    )
    assert costly.content.startswith(f"[{BIG}]")
    default = llm.decide("What is the capital of France?")
    assert default.lambdas == {"cost": 0.1} and default.model in (BIG, MID, SMALL)


def test_decision_matches_the_core_objective():
    llm = make()
    router = get_default_nway_router()
    text = "Write a Python function that merges two sorted lists."
    d = llm.decide(text, {"configurable": {"routellm_lambdas": {"cost": 0.05}}})
    core = router.select([text], lambdas={"cost": 0.05}, models=[BIG, MID, SMALL])[0]
    assert d.model == core.model and d.scores == pytest.approx(core.scores)


def test_lcel_chain_callbacks_see_the_chosen_run_with_the_decision():
    llm = make()
    chain = (
        ChatPromptTemplate.from_messages([("human", "{question}")])
        | llm
        | StrOutputParser()
    )
    rec = Recorder()
    out = chain.invoke(
        {"question": "Say hi."}, config={"configurable": CHEAP, "callbacks": [rec]}
    )
    assert out == f"[{SMALL}] Say hi."
    tags, meta = rec.starts[-1]
    assert f"routellm:{SMALL}" in tags and meta["routellm_model"] == SMALL
    assert meta["routellm_candidates"] == [BIG, MID, SMALL]
    assert llm.models[SMALL].calls == 1 and llm.models[BIG].calls == 0


def test_batch_stream_and_async_follow_each_call_s_lambdas():
    llm = make()
    outs = llm.batch(
        ["one", "two"], config=[{"configurable": CHEAP}, {"configurable": COSTLY}]
    )
    assert [o.response_metadata["routellm_model"] for o in outs] == [SMALL, BIG]
    chunks = list(llm.stream("stream me", config={"configurable": COSTLY}))
    assert "".join(c.content for c in chunks) == f"[{BIG}] stream me"
    assert chunks[0].response_metadata["routellm_model"] == BIG
    a = asyncio.run(llm.ainvoke("async", config={"configurable": CHEAP}))
    assert a.content == f"[{SMALL}] async"
    ab = asyncio.run(llm.abatch(["x", "y"], config={"configurable": COSTLY}))
    assert [o.content for o in ab] == [f"[{BIG}] x", f"[{BIG}] y"]


def test_tools_pass_through_to_the_chosen_model():
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    ai = (
        make()
        .bind_tools([add])
        .invoke("What is 3 plus 4?", config={"configurable": CHEAP})
    )
    assert ai.tool_calls[0]["args"] == {"a": 3, "b": 4}
    assert ai.response_metadata["routellm_model"] == SMALL


def test_costs_by_model_in_the_cost_callback():
    llm = make()
    prices = {BIG: (0.9, 0.9), MID: (0.2, 0.2), SMALL: (0.1, 0.1)}
    with get_routing_cost_callback(prices=prices) as cb:
        llm.invoke("hello there", config={"configurable": CHEAP})
        llm.invoke("hello there", config={"configurable": COSTLY})
    assert [r.model for r in cb.records] == [SMALL, BIG]
    assert set(cb.totals.by_model) == {SMALL, BIG} and cb.totals.total_cost > 0


def test_own_costs_and_constraints_replace_the_router_s():
    llm = make(costs={BIG: 0.0, MID: 5.0, SMALL: 10.0})  # the big model is free here
    assert llm.invoke("hi", config={"configurable": CHEAP}).content.startswith(
        f"[{BIG}]"
    )


def test_router_failure_policy():
    broken = load_nway_router("default", encoder=QueryEncoder("/nonexistent/encoder"))
    d = make(router=broken).decide("hello")
    assert d.router_failed and d.model == BIG and d.error_type == "RuntimeError"
    assert (
        make(router=broken, failure_policy=SMALL)
        .invoke("hello")
        .content.startswith(f"[{SMALL}]")
    )
    with pytest.raises(NWayRouterFailure, match="failed while scoring"):
        make(router=broken, failure_policy="raise").invoke("hello")


def test_bad_settings_and_input_are_clear_errors():
    with pytest.raises(
        ValueError, match="model 'gpt-9' is unknown"
    ):  # pydantic wraps UnknownModelError
        NWayChatRouteLLM(
            models={"gpt-9": FakeToolChatModel(), SMALL: FakeToolChatModel()}
        )
    with pytest.raises(ValueError, match="at least two models"):
        NWayChatRouteLLM(models={SMALL: FakeToolChatModel()})
    with pytest.raises(ValueError, match="unknown constraint 'latency'"):
        make(lambdas={"latency": 1.0})
    with pytest.raises(ValueError, match="failure_policy must be"):
        make(failure_policy="gpt-9")
    with pytest.raises(ValueError, match="not among the models"):
        make(costs={BIG: 1.0, MID: 1.0, SMALL: 1.0, "gpt-9": 1.0})
    llm = make()
    with pytest.raises(TypeError, match="lambdas must be a mapping"):
        llm.invoke("hi", config={"configurable": {"routellm_lambdas": 0.5}})
    with pytest.raises(ValueError, match="empty"):
        llm.invoke("   ")
