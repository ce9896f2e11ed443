"""Async test helpers shared by both adapters' tests: a loop whose default executor counts
the jobs handed to it (a thread per call would show there) and the threads seen alive."""

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
