"""Model fallbacks in RouteLLM: chat, complete, their streaming and async forms, and tools; the
events and the cost ledger. The router is the real embedded one; the LLMs behind it are fakes
that fail on demand (tests/llamaindex/fakes.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RouteLLM, RoutingCostEventHandler, RoutingFallbackEvent
from routellm_core.routing import FallbackPolicy, shared_router
from tests.llamaindex.fakes import FakeModelError, FlakyLLM

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}
Q = "Write a haiku about tea."


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


@pytest.fixture
def costs():
    h = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(h)
    yield h
    h.detach()


def make(router: Any, *, weak_fails: int = 0, strong_fails: int = 0, route: str = "weak",
         fail_after_chunks: int | None = None, **kw: Any) -> RouteLLM:
    """Threshold 1.0 sends every call weak, 0.0 every call strong."""
    return RouteLLM(
        strong=FlakyLLM(model="fake-strong", fail_percent=strong_fails, fail_after_chunks=fail_after_chunks),
        weak=FlakyLLM(model="fake-weak", fail_percent=weak_fails, fail_after_chunks=fail_after_chunks),
        router=router, threshold=1.0 if route == "weak" else 0.0, prices=PRICES, **kw)


def user(text: str = Q) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def check_ledger(costs: RoutingCostEventHandler, *, calls: int, failed: int, fallbacks: int,
                 charged: int = 0) -> None:
    """``charged``: failed attempts that streamed output before they broke (charged for it)."""
    t = costs.totals
    assert (t.calls, t.failed_calls, t.fallbacks) == (calls, failed, fallbacks)
    assert t.total_cost == sum(r.cost for r in costs.records)
    zero = [r for r in costs.records if r.failed and r.cost == Decimal(0) and r.input_tokens == 0]
    assert len(zero) == failed - charged


def test_chat_falls_back_to_strong_with_events_and_costs(router, costs):
    llm = make(router, weak_fails=100)
    resp = llm.chat(user())
    kw = resp.additional_kwargs
    assert resp.message.content.startswith("[fake-strong]")
    assert kw["routellm_route"] == "strong" and kw["routellm_fallback_from"] == "weak"
    assert kw["routellm_fallback_error_type"] == "FakeModelError"
    (decision,) = costs.decisions
    assert decision.route == "weak"                   # the router's decision, as it was made
    (fb,) = costs.fallbacks
    assert isinstance(fb, RoutingFallbackEvent)
    assert (fb.failed_route, fb.failed_model, fb.route, fb.model) == ("weak", "fake-weak", "strong", "fake-strong")
    assert fb.decision_id == decision.id_ and fb.error_type == "FakeModelError"
    failed, answered = costs.records
    assert failed.failed and failed.model == "fake-weak" and failed.error_type == "FakeModelError"
    assert answered.model == "fake-strong" and answered.fallback_from == "weak" and answered.cost > 0
    assert failed.run_id == answered.run_id == decision.id_
    check_ledger(costs, calls=1, failed=1, fallbacks=1)


def test_complete_and_async_calls_fall_back(router, costs):
    llm = make(router, weak_fails=100)
    assert llm.complete(Q).additional_kwargs["routellm_fallback_from"] == "weak"
    assert asyncio.run(llm.achat(user())).additional_kwargs["routellm_route"] == "strong"
    assert asyncio.run(llm.acomplete(Q)).text.startswith("[fake-strong]")
    check_ledger(costs, calls=3, failed=3, fallbacks=3)


def test_strong_failures_raise_by_default_and_fall_back_when_asked(router, costs):
    with pytest.raises(FakeModelError, match="overloaded"):
        make(router, strong_fails=100, route="strong").chat(user())
    check_ledger(costs, calls=0, failed=1, fallbacks=0)
    assert costs.fallbacks == []
    resp = make(router, strong_fails=100, route="strong", fallback="both").chat(user())
    assert resp.additional_kwargs["routellm_route"] == "weak"


@pytest.mark.parametrize("off", ["none", False])
def test_fallback_can_be_turned_off(router, off):
    llm = make(router, weak_fails=100, fallback=off)
    with pytest.raises(FakeModelError):
        llm.chat(user())
    assert llm.strong.calls == 0
    llm = make(router, weak_fails=100, fallback=FallbackPolicy(exceptions=(TimeoutError,)))
    with pytest.raises(FakeModelError):
        llm.chat(user())
    with pytest.raises(ValueError, match="fallback must be one of"):
        make(router, fallback="sometimes")


def test_both_failing_raises_the_first_error_with_a_note(router, costs):
    with pytest.raises(FakeModelError, match="fake-weak is overloaded") as info:
        make(router, weak_fails=100, strong_fails=100).chat(user())
    assert any("fell back to the strong model 'fake-strong'" in n for n in info.value.__notes__)
    check_ledger(costs, calls=0, failed=2, fallbacks=0)
    assert len(costs.fallbacks) == 1


def test_streams_fall_back_only_before_the_first_chunk(router, costs):
    text = "".join(c.delta for c in make(router, weak_fails=100).stream_chat(user()))
    assert text.startswith("[fake-strong]")
    lazy = list(make(router, weak_fails=100, fail_after_chunks=0).stream_chat(user()))  # fails on first read
    assert lazy[-1].message.content.startswith("[fake-strong]")
    assert lazy[0].additional_kwargs["routellm_fallback_from"] == "weak"
    assert list(make(router, weak_fails=100).stream_complete(Q))[-1].text.startswith("[fake-strong]")
    check_ledger(costs, calls=3, failed=3, fallbacks=3)

    seen: list[str] = []
    with pytest.raises(FakeModelError, match="mid-stream"):
        for c in make(router, weak_fails=100, fail_after_chunks=2).stream_chat(user()):
            seen.append(c.delta)
    assert len(seen) == 2
    check_ledger(costs, calls=3, failed=4, fallbacks=3, charged=1)  # the broken stream: a failed attempt,
    broken = costs.records[-1]                                      # charged for what it sent
    assert broken.failed and broken.model == "fake-weak" and broken.error_type == "FakeModelError"
    assert broken.input_tokens > 0 and broken.output_tokens > 0 and 0 < broken.cost == broken.strong_cost

    async def astream(llm: RouteLLM) -> str:
        return "".join([c.delta async for c in await llm.astream_chat(user())])

    assert asyncio.run(astream(make(router, weak_fails=100))).startswith("[fake-strong]")
    with pytest.raises(FakeModelError, match="mid-stream"):
        asyncio.run(astream(make(router, weak_fails=100, fail_after_chunks=1)))
    check_ledger(costs, calls=4, failed=6, fallbacks=4, charged=2)
    assert costs.records[-1].failed and costs.records[-1].output_tokens > 0


def test_tool_calls_fall_back(router, costs):
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    tool = FunctionTool.from_defaults(add)
    llm = make(router, weak_fails=100)
    resp = llm.chat_with_tools([tool], user_msg="add 2 and 3")
    assert resp.additional_kwargs["routellm_fallback_from"] == "weak"
    (call,) = llm.get_tool_calls_from_response(resp)
    assert call.tool_kwargs == {"a": 2, "b": 3}
    resp = asyncio.run(llm.achat_with_tools([tool], user_msg="add 2 and 3"))
    assert resp.additional_kwargs["routellm_route"] == "strong"
    check_ledger(costs, calls=2, failed=2, fallbacks=2)


def test_a_stream_the_caller_stops_reading_is_an_answered_call(router, costs):
    gen = make(router).stream_chat(user())
    first = next(gen)
    gen.close()
    assert first.additional_kwargs["routellm_route"] == "weak"
    (record,) = costs.records
    assert not record.failed and record.model == "fake-weak" and record.input_tokens > 0
    check_ledger(costs, calls=1, failed=0, fallbacks=0)

    async def stop_early() -> None:
        agen = await make(router).astream_chat(user())
        await agen.__anext__()
        await agen.aclose()

    asyncio.run(stop_early())
    check_ledger(costs, calls=2, failed=0, fallbacks=0)


# ------------------------------------------------------------------ one pool per call
@pytest.mark.parametrize("form", ["chat", "complete", "achat", "acomplete", "stream_chat", "stream_complete"])
@pytest.mark.parametrize("first, then", [("weak_to_strong", "none"), ("none", "weak_to_strong")])
def test_a_swap_after_routing_leaves_the_call_on_its_pools_fallback(router, monkeypatch, form, first, then):
    """A swap that lands between the routing and the fallback changes neither: the call falls
    back as the pool it was routed with says."""
    llm = make(router, weak_fails=100, fallback=first)
    other = make(router, fallback=then).pool
    pool = llm.pool
    real_route, real_aroute = pool.route, pool.aroute

    def route(*args: Any) -> Any:
        llm._routing.pool = other  # as a swap_router to a pool with another policy would
        return real_route(*args)

    async def aroute(*args: Any) -> Any:
        llm._routing.pool = other
        return await real_aroute(*args)

    monkeypatch.setattr(pool, "route", route)
    monkeypatch.setattr(pool, "aroute", aroute)

    def call() -> Any:
        if form in ("chat", "achat", "stream_chat"):
            out = getattr(llm, form)(user())
        else:
            out = getattr(llm, form)(Q)
        if form.startswith("a"):
            return asyncio.run(out)
        return list(out)[-1] if form.startswith("stream") else out

    if first == "none":
        with pytest.raises(FakeModelError):
            call()
    else:
        kw = call().additional_kwargs
        assert kw["routellm_route"] == "strong" and kw["routellm_fallback_from"] == "weak"
    assert llm.pool is other  # the swap did land
