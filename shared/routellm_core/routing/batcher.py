"""Async routing: the concurrent calls of one event loop tick share one router call.

A thousand ``ainvoke`` / ``achat`` calls started together do not each take a thread and score
one query: each parks a future here, and one drain task per event loop hands everything that
arrived since the last batch to a single worker thread as one :meth:`Pool.route` call (one
encoder batch, one head evaluation). While that batch runs, new calls gather for the next one,
so the batch grows with the load and the loop never blocks on the encoder.

Example:
    >>> import asyncio
    >>> from routellm_core.routing import Pool
    >>> pool = Pool.pair(strong="gpt-4-1106-preview", weak="mixtral-8x7b-instruct-v0.1")
    >>> async def main():
    ...     return await asyncio.gather(*(pool.aroute([q]) for q in ["hi!", "Prove Fermat's little theorem."]))
    >>> [d[0].route in ("strong", "weak") for d in asyncio.run(main())]
    [True, True]
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from routellm_core.routing.decision import Decision

RouteFn = Callable[[list[str], list[Any]], list[Decision]]


class _LoopState:
    __slots__ = ("pending", "task")

    def __init__(self) -> None:
        self.pending: list[tuple[list[str], list[Any], asyncio.Future[list[Decision]]]] = []
        self.task: asyncio.Task[None] | None = None


class RouteBatcher:
    """Coalesces concurrent async routing requests into one ``route_fn`` call per batch.

    Args:
        route_fn: ``route_fn(texts, settings) -> decisions``, one per text (a pool's ``route``).
        max_batch: most texts in one call; a larger backlog is split.
    """

    def __init__(self, route_fn: RouteFn, *, max_batch: int = 4096) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.route_fn = route_fn
        self.max_batch = max_batch
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0  # router calls made, for benchmarks and tests
        self.requests = 0

    def _worker(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="routellm-route")
                # a pool replaced by swap_router lets its thread go once nothing holds it
                weakref.finalize(self, self._executor.shutdown, wait=False)
            return self._executor

    async def route(self, texts: Sequence[str], settings: Sequence[Any]) -> list[Decision]:
        """The decisions for ``texts`` (one setting each), batched with the loop's other calls."""
        if len(settings) != len(texts):
            raise ValueError(f"got {len(settings)} settings for {len(texts)} texts")
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.get(loop)
            if state is None:
                state = self._states[loop] = _LoopState()
        future: asyncio.Future[list[Decision]] = loop.create_future()
        state.pending.append((list(texts), list(settings), future))
        if state.task is None:
            state.task = loop.create_task(self._drain(loop, state))
        return await future

    async def _drain(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        batch: list[tuple[list[str], list[Any], asyncio.Future[list[Decision]]]] = []
        try:
            while state.pending:
                await asyncio.sleep(0)  # one tick: the calls started with this one join it
                batch = self._take(state)
                if not batch:
                    continue
                results = await loop.run_in_executor(self._worker(), self._route_batch, batch)
                for (_, _, fut), result in zip(batch, results):
                    if fut.done():  # its caller was cancelled meanwhile
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
                batch = []
        except BaseException:  # the drain itself was cancelled (the loop is shutting down)
            for _, _, fut in [*batch, *state.pending]:
                fut.cancel()
            state.pending.clear()
            raise
        finally:
            state.task = None

    def _take(self, state: _LoopState) -> list[tuple[list[str], list[Any], asyncio.Future[list[Decision]]]]:
        """The next batch: waiting requests in arrival order, up to ``max_batch`` texts (at least
        one request), skipping those whose caller was cancelled."""
        live = [item for item in state.pending if not item[2].done()]
        n, size = 0, 0
        while n < len(live) and (n == 0 or size + len(live[n][0]) <= self.max_batch):
            size += len(live[n][0])
            n += 1
        state.pending[:] = live[n:]
        return live[:n]

    def _route_batch(self, batch: list[tuple[list[str], list[Any], Any]]) -> list[Any]:
        """One router call for the whole batch; when it raises, each request alone, so that one
        caller's bad input or failing setting fails that caller only."""
        self.batches += 1
        self.requests += len(batch)
        texts = [t for item in batch for t in item[0]]
        settings = [s for item in batch for s in item[1]]
        try:
            decisions = self.route_fn(texts, settings)
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            out: list[Any] = []
            for item in batch:
                try:
                    out.append(self.route_fn(item[0], item[1]))
                except Exception as own:
                    out.append(own)
            return out
        results, start = [], 0
        for item in batch:
            results.append(decisions[start : start + len(item[0])])
            start += len(item[0])
        return results
