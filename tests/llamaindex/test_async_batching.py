"""Async calls of ``RouteLLM`` are routed through ``Pool.aroute``: the concurrent calls of an
event loop share one router call in the pool's one routing thread, with the decisions, errors
and events of the sync path.

The router is the real embedded one; only the LLMs behind it are fakes (async-native, so that
any thread a call takes would be the routing's own).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.prompts import PromptTemplate

from llamaindex_routellm import RouteLLM, RoutingDecisionEvent, routing_overrides
from routellm_core.routing import shared_router
from tests.async_helpers import PRICES, N, queries, run_counting
from tests.llamaindex.fakes import FlakyLLM


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.SYSTEM, content="Be brief."),
            ChatMessage(role=MessageRole.USER, content=text)]


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


def make(router: Any, **kw: Any) -> RouteLLM:
    if "threshold" not in kw:
        kw.setdefault("strong_fraction", 0.5)
    return RouteLLM(strong=FlakyLLM(model="fake-strong"), weak=FlakyLLM(model="fake-weak"), router=router,
                    prices=PRICES, **kw)


class Collector(BaseEventHandler):
    events: list = []

    @classmethod
    def class_name(cls) -> str:
        return "Collector"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def decisions():
    root = get_dispatcher()
    c = Collector(events=[])
    root.add_event_handler(c)
    yield c
    root.event_handlers = [h for h in root.event_handlers if h is not c]


def batcher_of(llm: RouteLLM) -> Any:
    return llm.pool.__dict__["_batcher"]


def one_worker(batcher: Any) -> None:
    """The batcher made its single routing thread, and no other."""
    assert batcher._executor is not None
    assert len(batcher._executor._threads) == 1
    assert all(t.name.startswith("routellm-route") for t in batcher._executor._threads)


def routes(responses: list[Any]) -> list[str]:
    return [r.additional_kwargs["routellm_route"] for r in responses]


# ------------------------------------------------------------------ decisions, batching, threads
def test_concurrent_achat_calls_route_as_sync_in_few_router_calls(router, decisions):
    llm = make(router)
    qs = queries()
    expected = [llm.route(user(q)) for q in qs]  # the sync path (and the encoder loaded)
    assert {d.route for d in expected} == {"strong", "weak"}  # both routes are exercised
    before = threading.active_count()

    async def calls() -> list[Any]:
        return await asyncio.gather(*(llm.achat(user(q)) for q in qs))

    outs, submitted, most = run_counting(calls)
    assert routes(outs) == [d.route for d in expected]
    assert [o.additional_kwargs["routellm_win_rate"] for o in outs] == pytest.approx(
        [d.win_rate for d in expected], abs=1e-6)
    assert [o.message.content.split("]")[0].lstrip("[") for o in outs] == [d.model for d in expected]
    events = [e for e in decisions.events if isinstance(e, RoutingDecisionEvent)]
    assert len(events) == N  # one decision event per call, as before
    assert {o.additional_kwargs["routellm_call_id"] for o in outs} == {e.id_ for e in events}
    batcher = batcher_of(llm)
    assert batcher.requests == N
    assert batcher.batches <= 3  # far fewer router calls than calls (one, on an idle loop)
    assert submitted == 0  # no call took a thread of the loop's executor
    one_worker(batcher)
    assert most <= before + 3  # the routing thread: no thread per call


def test_every_async_call_form_is_batched_and_routes_as_sync(router):
    llm = make(router)
    qs = queries(24, tag="forms")
    expected = [llm.route(user(q)).route for q in qs[:18]] + [llm.route(prompt=q).route for q in qs[18:]]

    async def calls() -> list[str]:
        async def stream_chat(q: str) -> str:
            last = None
            async for chunk in await llm.astream_chat(user(q)):
                last = chunk
            return last.additional_kwargs["routellm_route"]

        async def stream_complete(q: str) -> str:
            last = None
            async for chunk in await llm.astream_complete(q):
                last = chunk
            return last.additional_kwargs["routellm_route"]

        async def chat(q: str) -> str:
            return (await llm.achat(user(q))).additional_kwargs["routellm_route"]

        async def complete(q: str) -> str:
            return (await llm.acomplete(q)).additional_kwargs["routellm_route"]

        return list(await asyncio.gather(
            *(chat(q) for q in qs[:6]), *(stream_chat(q) for q in qs[6:12]),
            *(chat(q) for q in qs[12:18]), *(complete(q) for q in qs[18:21]),
            *(stream_complete(q) for q in qs[21:])))

    got, submitted, _ = run_counting(calls)
    assert got == expected
    batcher = batcher_of(llm)
    assert batcher.requests == len(qs) and batcher.batches <= 3
    assert submitted == 0
    one_worker(batcher)


@pytest.mark.filterwarnings("ignore::routellm_core.routing.pool.RoutingSettingWarning")
def test_context_settings_and_prompt_questions_are_seen_on_the_loop(router):
    """``routing_overrides`` and the question of an ``apredict`` are context variables: read
    on the loop as they were in the thread."""
    llm = make(router, threshold=0.5)
    q = queries(1, tag="ctx")[0]

    async def calls() -> tuple[Any, Any, str]:
        with routing_overrides(threshold=0.0):
            strong = await llm.achat(user(q))
        with routing_overrides(threshold=1.0):
            weak = await llm.achat(user(q))
        answer = await llm.apredict(PromptTemplate("Context: none.\nQuestion: {query_str}\nAnswer:"),
                                    query_str=q, routellm_threshold=0.0)
        return strong, weak, answer

    strong, weak, answer = asyncio.run(calls())
    assert routes([strong, weak]) == ["strong", "weak"]
    assert answer.startswith("[fake-strong]")


# ------------------------------------------------------------------ a bad input fails alone
BAD_INPUTS = [
    pytest.param([ChatMessage(role=MessageRole.USER, content="")], {}, id="empty-message"),
    pytest.param([], {}, id="no-messages"),
    pytest.param([ChatMessage(role=MessageRole.USER, blocks=[ImageBlock(url="http://x/y.png")])], {},
                 id="non-text-message"),
    pytest.param(user("What is 2 + 2?"), {"routellm_threshold": 2.0}, id="bad-setting"),
    pytest.param(user("What is 2 + 2?"), {"routellm_lambdas": {"cost": 1.0}}, id="setting-of-the-other-rule"),
]


@pytest.mark.parametrize(("bad", "kw"), BAD_INPUTS)
def test_a_bad_input_among_concurrent_calls_fails_alone_as_in_sync(router, bad, kw, decisions):
    llm = make(router, failure_policy="raise")  # else the policy answers a turn of images only
    qs = queries(12, tag="bad")
    expected = [llm.route(user(q)).route for q in qs]
    with pytest.raises(Exception) as info:
        llm.chat(bad, **kw)
    error = info.value
    decisions.events.clear()

    async def calls() -> list[Any]:
        coros = [llm.achat(user(q)) for q in qs]
        coros.insert(5, llm.achat(bad, **kw))
        return await asyncio.gather(*coros, return_exceptions=True)

    outs = asyncio.run(calls())
    failed = outs.pop(5)
    assert type(failed) is type(error) and str(failed) == str(error)
    assert routes(outs) == expected
    assert len([e for e in decisions.events if isinstance(e, RoutingDecisionEvent)]) == len(qs)  # none for it


# ------------------------------------------------------------------ cancellation
@pytest.mark.parametrize("ticks", [0, 1, 3], ids=["before-routing", "waiting-for-the-batch", "later"])
def test_a_cancelled_call_does_not_break_the_others(router, ticks):
    llm = make(router)
    qs = queries(16, tag=f"cancel{ticks}")
    expected = [llm.route(user(q)).route for q in qs]
    cancelled = {0, 7, 15}

    async def calls() -> tuple[list[Any], list[Any]]:
        tasks = [asyncio.create_task(llm.achat(user(q))) for q in qs]
        for _ in range(ticks):
            await asyncio.sleep(0)
        for i in cancelled:
            tasks[i].cancel()
        outs = await asyncio.gather(*tasks, return_exceptions=True)
        again = await asyncio.gather(*(llm.achat(user(q)) for q in qs[:5]))  # the batcher still works
        return outs, again

    outs, again = asyncio.run(calls())
    for i, (o, route) in enumerate(zip(outs, expected)):
        if i in cancelled:
            assert isinstance(o, asyncio.CancelledError)
        else:
            assert o.additional_kwargs["routellm_route"] == route
    assert routes(again) == expected[:5]


def test_a_call_cancelled_while_its_batch_is_scored_does_not_break_the_others(router):
    llm = make(router)
    qs = [f"{q} " + "and more words about it " * 20 for q in queries(16, tag="inflight")]
    expected = [llm.route(user(q)).route for q in qs]

    async def calls() -> tuple[list[Any], list[Any]]:
        tasks = [asyncio.create_task(llm.achat(user(q))) for q in qs]
        for _ in range(1000):  # until the batch is in the routing thread
            await asyncio.sleep(0.001)
            batcher = llm.pool.__dict__.get("_batcher")
            if batcher is not None and batcher.batches:
                break
        tasks[0].cancel()
        tasks[-1].cancel()
        outs = await asyncio.gather(*tasks, return_exceptions=True)
        again = await asyncio.gather(*(llm.achat(user(q)) for q in qs))
        return outs, again

    outs, again = asyncio.run(calls())
    assert isinstance(outs[0], asyncio.CancelledError) and isinstance(outs[-1], asyncio.CancelledError)
    assert routes(outs[1:-1]) == expected[1:-1]
    assert routes(again) == expected


# ------------------------------------------------------------------ the pool of the call
def test_a_swap_during_routing_leaves_the_call_on_its_pool(router):
    llm = make(router)
    qs = queries(10, tag="swap")
    expected = [llm.route(user(q)).route for q in qs]
    old = llm.pool

    async def calls() -> list[Any]:
        tasks = [asyncio.create_task(llm.achat(user(q))) for q in qs]
        await asyncio.sleep(0)  # every call has taken the pool and waits for its batch
        llm.swap_router(router)
        return await asyncio.gather(*tasks)

    outs = asyncio.run(calls())
    assert routes(outs) == expected
    assert old.__dict__["_batcher"].requests == len(qs)
    assert llm.pool is not old and "_batcher" not in llm.pool.__dict__
