"""Async test helpers shared by both adapters' tests: a loop whose default executor counts
the jobs handed to it (a thread per call would show there) and the threads seen alive, and
the distinct queries both send."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what is handed to it (a thread per call would be)."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="default-executor")
        self.submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(*args, **kwargs)


def run_counting(coro_fn: Any) -> tuple[Any, int, int]:
    """Run ``coro_fn()`` on a new loop whose default executor counts its jobs: the result,
    the jobs run in the default executor, and the most threads alive seen during the run."""
    executor = CountingExecutor()
    seen = [threading.active_count()]

    async def main() -> Any:
        asyncio.get_running_loop().set_default_executor(executor)
        done = False

        async def sample() -> None:
            while not done:
                seen.append(threading.active_count())
                await asyncio.sleep(0)

        sampler = asyncio.create_task(sample())
        try:
            return await coro_fn()
        finally:
            done = True
            await sampler

    try:
        out = asyncio.run(main())
    finally:
        executor.shutdown(wait=True)
    return out, executor.submitted, max(seen)


N = 50
PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}
TOPICS = ["the French revolution", "quicksort", "a haiku about rain", "eigenvalues", "sourdough bread",
          "Rust lifetimes", "the Krebs cycle", "a limerick", "TCP congestion control", "compound interest"]


def queries(n: int = N, tag: str = "") -> list[str]:
    """``n`` distinct queries, easy and hard (a tag keeps them new to the encoder's cache)."""
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        out.append(f"Prove rigorously, step by step, the key theorem behind {topic} ({tag}{i})." if i % 3 == 0
                   else f"hi! tell me something about {topic} #{tag}{i}")
    return out
