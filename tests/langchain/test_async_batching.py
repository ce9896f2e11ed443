"""Async calls are routed through ``Pool.aroute``: the concurrent calls of an event loop share
one router call in the pool's one routing thread, with the decisions and errors of the sync path.

The router is the real embedded one; only the chat models behind it are fakes (async-native,
so that any thread a call takes would be the routing's own).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langchain_routellm import ChatRouteLLM, RouterRunnable
from routellm_core.routing import shared_router
from tests.async_helpers import PRICES, N, queries, run_counting
from tests.langchain.fake_models import FlakyChatModel


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


def pair() -> dict[str, Any]:
    return {"strong": FlakyChatModel(model_name="fake-strong"), "weak": FlakyChatModel(model_name="fake-weak")}


def chat(router: Any, **kw: Any) -> ChatRouteLLM:
    kw.setdefault("strong_fraction", 0.5)
    return ChatRouteLLM(**pair(), router=router, prices=PRICES, **kw)


def runnable(router: Any) -> RouterRunnable:
    return RouterRunnable(**pair(), router=router, strong_fraction=0.5, prices=PRICES)


def sync_routes(llm: ChatRouteLLM, qs: list[str]) -> list[str]:
    """The routes of the sync path (a batch: one router call)."""
    return [o.response_metadata["routellm_route"] for o in llm.batch(qs)]


def batcher_of(model: Any) -> Any:
    return model._pool.__dict__["_batcher"]


def one_worker(batcher: Any) -> None:
    """The batcher made its single routing thread, and no other."""
    assert batcher._executor is not None
    assert len(batcher._executor._threads) == 1
    assert all(t.name.startswith("routellm-route") for t in batcher._executor._threads)


# ------------------------------------------------------------------ decisions, batching, threads
@pytest.mark.parametrize("make", [chat, runnable], ids=["ChatRouteLLM", "RouterRunnable"])
def test_concurrent_ainvoke_calls_route_as_sync_in_few_router_calls(router, make):
    model = make(router)
    qs = queries()
    expected = [model.route(q) for q in qs]  # the sync path (and the encoder loaded)
    assert {d.route for d in expected} == {"strong", "weak"}  # both routes are exercised
    before = threading.active_count()

    async def calls() -> list[Any]:
        return await asyncio.gather(*(model.ainvoke(q) for q in qs))

    outs, submitted, most = run_counting(calls)
    answered_by = [o.content.split("]")[0].lstrip("[") for o in outs]
    assert answered_by == [d.model for d in expected]
    if isinstance(model, ChatRouteLLM):
        meta = [o.response_metadata for o in outs]
        assert [m["routellm_route"] for m in meta] == [d.route for d in expected]
        assert [m["routellm_win_rate"] for m in meta] == pytest.approx([d.win_rate for d in expected], abs=1e-6)
    batcher = batcher_of(model)
    assert batcher.requests == N
    assert batcher.batches <= 3  # far fewer router calls than calls (one, on an idle loop)
    assert submitted == 0  # no call took a thread of the loop's executor
    one_worker(batcher)
    assert most <= before + 3  # the routing thread (and the counting executor's none): no thread per call


def test_abatch_astream_and_ainvoke_together_share_router_calls(router):
    llm = chat(router)
    qs = queries(30, tag="mix")
    expected = sync_routes(llm, qs)

    async def calls() -> tuple[Any, ...]:
        async def stream(q: str) -> str:
            route = None
            async for chunk in llm.astream(q):
                route = route or chunk.response_metadata.get("routellm_route")
            return route

        return await asyncio.gather(
            llm.abatch(qs[:10]),
            asyncio.gather(*(stream(q) for q in qs[10:20])),
            asyncio.gather(*(llm.ainvoke(q) for q in qs[20:])),
        )

    (batch, streamed, invoked), submitted, _ = run_counting(calls)
    got = ([o.response_metadata["routellm_route"] for o in batch] + list(streamed)
           + [o.response_metadata["routellm_route"] for o in invoked])
    assert got == expected
    batcher = batcher_of(llm)
    assert batcher.requests == 21  # the batch is one request of 10 texts
    assert batcher.batches <= 3
    assert submitted == 0
    one_worker(batcher)


def test_agenerate_and_v3_events_are_routed_as_sync(router):
    llm = chat(router)
    qs = queries(8, tag="gen")
    expected = sync_routes(llm, qs)

    async def calls() -> tuple[Any, Any]:
        generated = await asyncio.gather(*(llm.agenerate([[HumanMessage(q)]]) for q in qs))

        async def first_event(q: str) -> Any:
            stream = await llm.astream_events(q, version="v3")
            async for event in stream:
                return event

        events = await asyncio.gather(*(first_event(q) for q in qs[:3]))
        return generated, events

    generated, events = asyncio.run(calls())
    assert [g.generations[0][0].message.response_metadata["routellm_route"] for g in generated] == expected
    assert all(e is not None for e in events)
    assert batcher_of(llm).requests == len(qs) + 3


# ------------------------------------------------------------------ a bad input fails alone
BAD_INPUTS = [
    pytest.param("", {}, id="empty-text"),
    pytest.param([], {}, id="no-messages"),
    pytest.param([HumanMessage(content=[{"type": "image_url", "image_url": {"url": "http://x/y.png"}}])], {},
                 id="non-text-message"),
    pytest.param("What is 2 + 2?", {"routellm_threshold": 2.0}, id="bad-setting"),
]


def sync_error(model: Any, bad: Any, kw: dict[str, Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        model.invoke(bad, **kw)
    return info.value


@pytest.mark.parametrize(("bad", "kw"), BAD_INPUTS)
def test_a_bad_input_among_concurrent_calls_fails_alone_as_in_sync(router, bad, kw):
    llm = chat(router, failure_policy="raise")  # else the policy answers a turn of images only
    qs = queries(12, tag="bad")
    expected = sync_routes(llm, qs)
    error = sync_error(llm, bad, kw)

    async def calls() -> list[Any]:
        coros = [llm.ainvoke(q) for q in qs]
        coros.insert(7, llm.ainvoke(bad, **kw))
        return await asyncio.gather(*coros, return_exceptions=True)

    outs = asyncio.run(calls())
    failed = outs.pop(7)
    assert type(failed) is type(error) and str(failed) == str(error)
    assert [o.response_metadata["routellm_route"] for o in outs] == expected


def test_abatch_return_exceptions_keeps_bad_inputs_as_their_errors(router):
    llm = chat(router)
    qs = queries(6, tag="rx")
    inputs: list[Any] = [*qs[:3], "", *qs[3:], []]
    sync = llm.batch(inputs, return_exceptions=True)

    async def calls() -> tuple[Any, Any]:
        got = await llm.abatch(inputs, return_exceptions=True)
        with pytest.raises(ValueError) as info:
            await llm.abatch(inputs)
        return got, info.value

    got, raised = asyncio.run(calls())
    for s, g in zip(sync, got):
        if isinstance(s, BaseException):
            assert type(g) is type(s) and str(g) == str(s)
        else:
            assert g.response_metadata["routellm_route"] == s.response_metadata["routellm_route"]
    assert str(raised) == str(sync[3])


def test_a_bad_input_to_the_router_runnable_fails_alone(router):
    rr = runnable(router)
    qs = queries(10, tag="rr")
    expected = [rr.route(q).model for q in qs]
    error = sync_error(rr, {"question": "   "}, {})

    async def calls() -> list[Any]:
        return await asyncio.gather(*(rr.ainvoke(q) for q in qs[:5]), rr.ainvoke({"question": "   "}),
                                    *(rr.ainvoke(q) for q in qs[5:]), return_exceptions=True)

    outs = asyncio.run(calls())
    failed = outs.pop(5)
    assert type(failed) is type(error) and str(failed) == str(error)
    assert [o.content.split("]")[0].lstrip("[") for o in outs] == expected


# ------------------------------------------------------------------ cancellation
@pytest.mark.parametrize("ticks", [0, 1, 3], ids=["before-routing", "waiting-for-the-batch", "later"])
def test_a_cancelled_call_does_not_break_the_others(router, ticks):
    llm = chat(router)
    qs = queries(16, tag=f"cancel{ticks}")
    expected = sync_routes(llm, qs)
    cancelled = {0, 7, 15}

    async def calls() -> tuple[list[Any], list[Any]]:
        tasks = [asyncio.create_task(llm.ainvoke(q)) for q in qs]
        for _ in range(ticks):
            await asyncio.sleep(0)
        for i in cancelled:
            tasks[i].cancel()
        outs = await asyncio.gather(*tasks, return_exceptions=True)
        again = await asyncio.gather(*(llm.ainvoke(q) for q in qs[:5]))  # the batcher still works
        return outs, again

    outs, again = asyncio.run(calls())
    for i, (o, route) in enumerate(zip(outs, expected)):
        if i in cancelled:
            assert isinstance(o, asyncio.CancelledError)
        else:
            assert o.response_metadata["routellm_route"] == route
    assert [o.response_metadata["routellm_route"] for o in again] == expected[:5]


def test_a_call_cancelled_while_its_batch_is_scored_does_not_break_the_others(router):
    llm = chat(router)
    qs = queries(16, tag="inflight")
    expected = sync_routes(llm, qs)
    long = [f"{q} " + "and more words about it " * 20 for q in qs]  # a batch that takes a while to score
    expected_long = sync_routes(llm, long)

    async def calls() -> tuple[list[Any], list[Any]]:
        tasks = [asyncio.create_task(llm.ainvoke(q)) for q in long]
        batcher = None
        for _ in range(1000):  # until the batch is in the routing thread
            await asyncio.sleep(0.001)
            batcher = llm._pool.__dict__.get("_batcher")
            if batcher is not None and batcher.batches:
                break
        tasks[0].cancel()
        tasks[-1].cancel()
        outs = await asyncio.gather(*tasks, return_exceptions=True)
        again = await asyncio.gather(*(llm.ainvoke(q) for q in qs))
        return outs, again

    outs, again = asyncio.run(calls())
    assert isinstance(outs[0], asyncio.CancelledError) and isinstance(outs[-1], asyncio.CancelledError)
    assert [o.response_metadata["routellm_route"] for o in outs[1:-1]] == expected_long[1:-1]
    assert [o.response_metadata["routellm_route"] for o in again] == expected


# ------------------------------------------------------------------ the pool of the call
def test_a_swap_during_routing_leaves_the_call_on_its_pool(router):
    llm = chat(router)
    qs = queries(10, tag="swap")
    expected = sync_routes(llm, qs)
    old = llm._pool

    async def calls() -> list[Any]:
        tasks = [asyncio.create_task(llm.ainvoke(q)) for q in qs]
        await asyncio.sleep(0)  # every call has taken the pool and waits for its batch
        llm.swap_router(router)
        return await asyncio.gather(*tasks)

    outs = asyncio.run(calls())
    assert [o.response_metadata["routellm_route"] for o in outs] == expected
    assert old.__dict__["_batcher"].requests == len(qs)
    assert llm._pool is not old and "_batcher" not in llm._pool.__dict__
