"""Cancelled calls are recorded: an ``achat`` cancelled in the model as a cancelled attempt, a
stream cancelled after its first chunk as an answered call charged for what it got."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.callbacks import llm_chat_callback

from llamaindex_routellm import RouteLLM, RoutingCostEventHandler
from tests.llamaindex.fakes import FlakyLLM

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}


class SlowLLM(FlakyLLM):
    """Waits 60 s before answering; its stream sends the first chunk, then waits 60 s."""

    async def _delay(self) -> None:
        await asyncio.sleep(60.0)

    @llm_chat_callback()
    async def astream_chat(self, messages: Any, **kwargs: Any) -> Any:
        chunks = list(self._chunks(messages, kwargs))

        async def gen():
            yield chunks[0]
            await asyncio.sleep(60.0)
            for c in chunks[1:]:
                yield c

        return gen()


def routed() -> RouteLLM:
    return RouteLLM(strong=SlowLLM(model="fake-strong"), weak=SlowLLM(model="fake-weak"),
                    threshold=0.5, prices=PRICES)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def test_an_achat_cancelled_in_the_model_is_a_cancelled_attempt():
    llm = routed()
    costs = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(costs)
    try:
        async def main():
            for i in range(5):
                task = asyncio.create_task(llm.achat(user(f"What is {i} + {i}?")))
                for _ in range(600):  # until it is routed; then it waits in the model
                    if len(costs.decisions) == i + 1:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.2)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        asyncio.run(main())
    finally:
        costs.detach()
    assert len(costs.records) == 5
    assert all(r.failed and r.error_type == "CancelledError" and r.cost == 0 for r in costs.records)


def test_a_stream_cancelled_after_its_first_chunk_is_recorded():
    llm = routed()
    costs = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(costs)
    got: list[str] = []
    try:
        async def consume():
            async for chunk in await llm.astream_chat(user("Tell me a long story about routers.")):
                got.append(chunk.delta or "")

        async def main():
            task = asyncio.create_task(consume())
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(main())
    finally:
        costs.detach()
    assert len(got) == 1
    (record,) = costs.records
    assert not record.failed and record.output_tokens > 0 and record.cost > 0
