"""Cancelled calls are recorded, and leave no per-run state behind (langchain-core sends no
``on_llm_error`` when an ``ainvoke`` is cancelled inside the model call)."""

from __future__ import annotations

import asyncio

import pytest

from langchain_routellm import ChatRouteLLM, RouterRunnable, get_routing_cost_callback
from routellm_core.checkpoints import load_router
from tests.langchain.fake_models import FlakyChatModel


@pytest.fixture(scope="module")
def router():
    return load_router("default")


class SlowChatModel(FlakyChatModel):
    """Answers after 60 s: every call is still in the model when it is cancelled."""

    def _delay(self, messages):
        return 60.0


def slow_pair() -> dict:
    return {"strong": SlowChatModel(model_name="fake-strong"), "weak": SlowChatModel(model_name="fake-weak")}


async def _cancel_during_the_model_call(llm, n: int, cb, prompt: str = "What is 2 + 2?") -> None:
    tasks = [asyncio.create_task(llm.ainvoke(f"{prompt} #{i}")) for i in range(n)]
    for _ in range(600):  # until every model run has started (the router decides first)
        if len(cb._runs) == n:
            break
        await asyncio.sleep(0.05)
    assert len(cb._runs) == n
    for t in tasks:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


def test_cancelled_ainvoke_calls_are_recorded_as_cancelled(router):
    llm = ChatRouteLLM(**slow_pair(), router=router, strong_fraction=0.5)
    with get_routing_cost_callback() as cb:
        asyncio.run(_cancel_during_the_model_call(llm, 20, cb))
    assert len(cb.records) == 20
    assert all(r.failed and r.error_type == "CancelledError" for r in cb.records)
    assert len({r.run_id for r in cb.records}) == 20
    assert cb._runs == {}  # nothing held for runs that will never end
    assert cb.totals.failed_calls == 20 and cb.totals.calls == 0


def test_cancelled_calls_with_huge_prompts_hold_no_memory(router):
    llm = ChatRouteLLM(**slow_pair(), router=router, threshold=0.5)
    big = "x " * 2_500_000  # 5 MB

    async def main():
        for _ in range(3):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(llm.ainvoke(big), 10.0)

    with get_routing_cost_callback() as cb:
        asyncio.run(main())
    assert cb._runs == {} and len(cb.records) == 3


def test_router_runnable_records_cancelled_calls_too(router):
    pair = slow_pair()
    rr = RouterRunnable(strong=pair["strong"], weak=pair["weak"], router=router, threshold=0.5,
                        strong_name="fake-strong", weak_name="fake-weak")
    with get_routing_cost_callback() as cb:
        asyncio.run(_cancel_during_the_model_call(rr, 5, cb))
    assert len(cb.records) == 5 and cb._runs == {}


def test_a_cancelled_abatch_records_every_call_in_flight(router):
    llm = ChatRouteLLM(**slow_pair(), router=router, strong_fraction=0.5)

    async def main(cb):
        task = asyncio.create_task(llm.abatch([f"What is {i} squared?" for i in range(12)]))
        for _ in range(600):
            if len(cb._runs) == 12:
                break
            await asyncio.sleep(0.05)
        assert len(cb._runs) == 12
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with get_routing_cost_callback() as cb:
        asyncio.run(main(cb))
    assert len(cb.records) == 12 and cb._runs == {}
    assert all(r.error_type == "CancelledError" for r in cb.records)


class StallingStreamModel(FlakyChatModel):
    """Streams its first chunk at once, then stalls for 60 s."""

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        chunks = list(self._stream(messages, stop, None, **kwargs))
        yield chunks[0]
        await asyncio.sleep(60.0)
        for c in chunks[1:]:
            yield c


def test_a_stream_cancelled_after_its_first_chunk_is_recorded_once(router):
    """langchain-core ends a cancelled stream's run itself, with the chunks it got."""
    llm = ChatRouteLLM(strong=StallingStreamModel(model_name="fake-strong"),
                       weak=StallingStreamModel(model_name="fake-weak"), router=router, threshold=0.5)
    got: list[str] = []

    async def consume():
        async for chunk in llm.astream("Tell me a long story about routers, please."):
            got.append(chunk.content)

    async def main():
        task = asyncio.create_task(consume())
        for _ in range(600):
            if got:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with get_routing_cost_callback() as cb:
        asyncio.run(main())
    assert len(got) == 1 and cb._runs == {}
    (record,) = cb.records  # an answered call, charged for what it got
    assert not record.failed and record.input_tokens > 0 and record.error_type is None
