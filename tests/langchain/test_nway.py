"""ChatRouteLLM(models=...): N-way routing in LCEL chains, on the real embedded N-way router."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool

from langchain_routellm import ChatRouteLLM, get_routing_cost_callback
from routellm_core.encoders import QueryEncoder
from routellm_core.nway import load_nway_router
from routellm_core.routing import FallbackPolicy, RouterFailure, shared_router
from tests.langchain.fake_models import (
    FakeModelError,
    FakeToolChatModel,
    FlakyChatModel,
)

BIG, MID, SMALL = (
    "llama-3.1-nemotron-51b-instruct",
    "llama-3.1-8b-instruct",
    "gemma-2-9b-it",
)
CHEAP = {"routellm_lambdas": {"cost": 100.0}}  # every query to the cheapest model
COSTLY = {"routellm_lambdas": {"cost": -100.0}}  # every query to the costliest model


def make(failing: tuple[str, ...] = (), **kw: Any) -> ChatRouteLLM:
    models = {name: FlakyChatModel(model_name=name, fail_percent=100 if name in failing else 0)
              for name in (BIG, MID, SMALL)}
    return ChatRouteLLM(models=models, **kw)


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
    default = llm.route("What is the capital of France?")
    assert default.lambdas == {"cost": 0.1} and default.model in (BIG, MID, SMALL)


def test_decision_matches_the_core_objective():
    llm = make()
    router = shared_router("default", nway=True)
    text = "Write a Python function that merges two sorted lists."
    d = llm.route(text, {"configurable": {"routellm_lambdas": {"cost": 0.05}}})
    core = router.route([text], lambdas={"cost": 0.05}, models=[BIG, MID, SMALL])[0]
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
    d = make(router=broken).route("hello")
    assert d.router_failed and d.model == BIG and d.error_type == "RuntimeError"
    assert (
        make(router=broken, failure_policy=SMALL)
        .invoke("hello")
        .content.startswith(f"[{SMALL}]")
    )
    with pytest.raises(RouterFailure, match="failed while scoring"):
        make(router=broken, failure_policy="raise").invoke("hello")


def test_bad_settings_and_input_are_clear_errors():
    with pytest.raises(
        ValueError, match="model 'gpt-9' is unknown"
    ):  # pydantic wraps UnknownModelError
        ChatRouteLLM(
            models={"gpt-9": FakeToolChatModel(), SMALL: FakeToolChatModel()}
        )
    with pytest.raises(ValueError, match="at least two models"):
        ChatRouteLLM(models={SMALL: FakeToolChatModel()})
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


def test_pair_and_pool_settings_do_not_mix():
    pair = {"strong": FakeToolChatModel(model_name="a"), "weak": FakeToolChatModel(model_name="b")}
    pool = {name: FakeToolChatModel(model_name=name) for name in (BIG, SMALL)}
    with pytest.raises(ValueError, match="not both"):
        ChatRouteLLM(models=pool, **pair)
    with pytest.raises(ValueError, match="give strong= and weak="):
        ChatRouteLLM(strong=FakeToolChatModel(), threshold=0.5)
    with pytest.raises(ValueError, match="routed by lambdas"):
        ChatRouteLLM(models=pool, threshold=0.5)
    with pytest.raises(ValueError, match=r"\['lambdas'\] apply to several models"):
        ChatRouteLLM(**pair, threshold=0.5, lambdas={"cost": 1.0})
    with pytest.raises(TypeError, match="need an N-way router"):
        ChatRouteLLM(models=pool, router=shared_router("default"))
    with pytest.raises(TypeError, match="needs a binary router"):
        ChatRouteLLM(**pair, threshold=0.5, router=shared_router("default", nway=True))
    with pytest.raises(ValueError, match="is a direction of a strong/weak pair"):
        ChatRouteLLM(models=pool, fallback="weak_to_strong")


def test_a_failing_model_falls_back_to_the_next_best_and_both_calls_are_recorded():
    llm = make(failing=(SMALL,))
    prices = {BIG: (0.9, 0.9), MID: (0.2, 0.2), SMALL: (0.1, 0.1)}
    with get_routing_cost_callback(prices=prices) as cb:
        out = llm.invoke("hello there", config={"configurable": CHEAP})
    meta = out.response_metadata
    ranking = llm.route("hello there", {"configurable": CHEAP}).ranking()
    assert ranking[0] == SMALL and meta["routellm_model"] == ranking[1]
    assert meta["routellm_fallback_from"] == SMALL and meta["routellm_tried"] == [SMALL]
    assert meta["routellm_fallback_error_type"] == "FakeModelError"
    failed, answered = cb.records
    assert failed.failed and failed.model == SMALL and failed.cost == 0
    assert answered.model == ranking[1] and answered.fallback_from == SMALL


def test_fallback_walks_the_ranking_and_raises_the_first_error_when_all_fail():
    out = make(failing=(SMALL, MID)).invoke("hello there", config={"configurable": CHEAP})
    assert out.response_metadata["routellm_model"] == BIG
    assert out.response_metadata["routellm_tried"] == [SMALL, MID]
    with pytest.raises(FakeModelError, match=SMALL) as info:
        make(failing=(SMALL, MID, BIG)).invoke("hello there", config={"configurable": CHEAP})
    notes = " ".join(info.value.__notes__)
    assert MID in notes and BIG in notes
    with pytest.raises(FakeModelError, match=SMALL):
        make(failing=(SMALL,), fallback="none").invoke("hi", config={"configurable": CHEAP})
    one_hop = make(failing=(SMALL, MID), fallback=FallbackPolicy(max_fallbacks=1))
    with pytest.raises(FakeModelError, match=SMALL):
        one_hop.invoke("hi", config={"configurable": CHEAP})


def test_batch_stream_and_async_fall_back_per_item():
    llm = make(failing=(SMALL,))
    outs = llm.batch(["one", "two"], config=[{"configurable": CHEAP}, {"configurable": COSTLY}])
    assert [o.response_metadata.get("routellm_fallback_from") for o in outs] == [SMALL, None]
    assert outs[1].response_metadata["routellm_model"] == BIG
    chunks = list(llm.stream("stream me", config={"configurable": CHEAP}))
    assert chunks[0].response_metadata["routellm_fallback_from"] == SMALL
    a = asyncio.run(llm.ainvoke("async", config={"configurable": CHEAP}))
    assert a.response_metadata["routellm_fallback_from"] == SMALL
    ab = asyncio.run(llm.abatch(["x", "y"], config={"configurable": CHEAP}))
    assert all(o.response_metadata["routellm_fallback_from"] == SMALL for o in ab)
    bad = make(failing=(SMALL, MID, BIG)).batch(["x", "  "], config={"configurable": CHEAP},
                                                return_exceptions=True)
    assert isinstance(bad[0], FakeModelError) and isinstance(bad[1], ValueError)


def test_savings_are_counted_against_the_first_model():
    llm = make()
    prices = {BIG: (1.0, 1.0), MID: (0.2, 0.2), SMALL: (0.1, 0.1)}
    with get_routing_cost_callback(prices=prices) as cb:
        llm.invoke("hello there", config={"configurable": CHEAP})
    (r,) = cb.records
    assert r.strong_model == BIG and r.model == SMALL
    assert r.strong_cost == 10 * r.cost and r.savings > 0


def test_structured_output_passes_through_to_the_chosen_model():
    from pydantic import BaseModel

    class Sum(BaseModel):
        a: int
        b: int

    out = make().with_structured_output(Sum).invoke("Add 3 and 4", config={"configurable": CHEAP})
    assert out == Sum(a=3, b=4)
