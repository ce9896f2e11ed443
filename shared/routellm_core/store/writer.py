"""Store writes off the call path: one daemon thread per writer, a bounded queue, a wait at exit.

Example:
    >>> writer = BackgroundWriter(exit_timeout=1.0)
    >>> done = []
    >>> writer.submit(lambda: done.append(1)), writer.flush(), done
    (True, True, [1])
    >>> writer.close()
    True
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["EXIT_TIMEOUT", "BackgroundWriter"]

# The learning loop's logger: users and tests filter the store's warnings under this name.
logger = logging.getLogger("routellm_core.learning")
EXIT_TIMEOUT = 10.0  # seconds a process waits at exit for queued store writes (BackgroundWriter)


class _WriteQueue:
    """What a writer's thread holds: the queue and its counts, not the :class:`BackgroundWriter`,
    so that a writer nobody holds is collected, and its thread ends once its queue is drained."""

    def __init__(self, maxsize: int, exit_timeout: float) -> None:
        self.queue: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=maxsize)
        self.exit_timeout = exit_timeout
        self.dropped = self.errors = 0
        self.busy = self.closed = False
        self.warned: set[str] = set()

    def run(self) -> None:
        while True:
            write = self.queue.get()
            try:
                if write is not None:
                    self.busy = True
                    write()
            except Exception as exc:  # a store error never reaches the user's call
                self.errors += 1
                self.warn(type(exc).__name__, f"a traffic store write failed ({type(exc).__name__}: "
                                              f"{str(exc)[:200]}); {self.errors} failed so far")
            finally:
                self.busy = False
                self.queue.task_done()
            if self.closed and self.queue.empty():  # stop() sets `closed` before it queues None
                return

    def warn(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            logger.warning(message)

    def pending(self) -> int:
        """Writes queued or running now."""
        with self.queue.mutex:
            queued = sum(1 for w in self.queue.queue if w is not None)
        return queued + self.busy

    def stop(self) -> None:
        """End the thread once every queued write ran (no new write is taken)."""
        self.closed = True
        try:
            self.queue.put_nowait(None)  # wakes the thread if it waits on an empty queue
        except queue.Full:  # it does not: it sees `closed` once the queue is drained
            pass


_LIVE: weakref.WeakSet[_WriteQueue] = weakref.WeakSet()  # queues whose thread still runs


def _flush_at_exit() -> None:
    """At interpreter exit: wait (each writer's ``exit_timeout`` at most, all at once) for the
    queued writes, and say on stderr how many could not be written in time."""
    queues = [q for q in list(_LIVE) if q.queue.unfinished_tasks]
    if not queues:
        return
    start, lost = time.monotonic(), 0
    for q in queues:
        while q.queue.unfinished_tasks and time.monotonic() - start < q.exit_timeout:
            time.sleep(0.005)
        lost += q.pending()
    if lost:
        waited = max(q.exit_timeout for q in queues)
        message = (f"routellm: {lost} traffic store write(s) still queued at exit were not written within "
                   f"{waited:g} s and are lost; call TrafficCapture.flush() or close() before exiting, or give "
                   "TrafficCapture(exit_timeout=...) more time")
        if logger.hasHandlers():
            logger.warning(message)
        else:
            print(message, file=sys.stderr, flush=True)


atexit.register(_flush_at_exit)


class BackgroundWriter:
    """Runs store writes on one daemon thread, off the caller's path.

    ``submit`` never blocks: when the queue is full the write is dropped and counted (and
    warned about once); a write that raises is logged as a warning (once per error type) and
    counted. ``flush`` waits for the queue to drain; ``close`` flushes and ends the thread.

    Nothing queued is lost silently: at interpreter exit the process waits up to
    ``exit_timeout`` seconds for queued writes, and writes that could not be written in that
    time are counted in a warning on stderr. A writer nobody holds is collected; its thread ends
    once its queue is drained.

    Args:
        maxsize: writes that may wait; beyond it a write is dropped and counted.
        exit_timeout: seconds to wait at exit for queued writes (default 10).
    """

    def __init__(self, maxsize: int = 10_000, *, exit_timeout: float = EXIT_TIMEOUT) -> None:
        if isinstance(exit_timeout, bool) or not isinstance(exit_timeout, (int, float)) or not exit_timeout >= 0:
            raise ValueError(f"exit_timeout must be a number of seconds >= 0, got {exit_timeout!r}")
        self._q = _WriteQueue(maxsize, float(exit_timeout))
        self.queue = self._q.queue
        self._thread = threading.Thread(target=self._q.run, name="routellm-store-writer", daemon=True)
        self._thread.start()
        _LIVE.add(self._q)
        weakref.finalize(self, _WriteQueue.stop, self._q).atexit = False

    @property
    def dropped(self) -> int:
        """Writes dropped: the queue was full, or the writer was closed."""
        return self._q.dropped

    @property
    def errors(self) -> int:
        """Writes that raised (each logged once per error type)."""
        return self._q.errors

    @property
    def exit_timeout(self) -> float:
        """Seconds to wait at exit for the queued writes."""
        return self._q.exit_timeout

    @property
    def closed(self) -> bool:
        return self._q.closed

    def submit(self, write: Callable[[], Any]) -> bool:
        """Queue ``write``; ``False`` when the queue was full or the writer closed, and it was dropped."""
        if self._q.closed:
            self._q.dropped += 1
            self._q.warn("closed", f"a traffic store write came after close() and was dropped; "
                                   f"{self._q.dropped} dropped so far")
            return False
        try:
            self.queue.put_nowait(write)
            return True
        except queue.Full:
            self._q.dropped += 1
            self._q.warn("queue-full", f"the traffic store is behind: {self._q.dropped} write(s) dropped so far "
                                       f"(queue of {self.queue.maxsize})")
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued write ran; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush (``timeout`` seconds at most), then end the thread; later writes are dropped.
        ``False`` when writes were still queued (they still run, and exit waits for them)."""
        done = self.flush(timeout)
        self._q.stop()
        if done:
            self._thread.join(timeout)
        return done
