"""Opt-in capture of routed calls into the traffic store, off the call path.

Both adapters take ``capture=`` (a :class:`TrafficCapture`, a :class:`TrafficStore`, a SQLite
path or a SQLAlchemy URL). After each routed call they hand the call's id, query text, decision
and cost record to :meth:`TrafficCapture.record`, which queues the write for a background
thread and returns at once: capture never blocks, slows noticeably or fails the user's call (a
store error is a warning, counted in ``errors``). The store's ``redact`` hook runs on that
thread, before anything is stored; it is the hook of every writer of that database in the
process (the shadow labeller, ``label``, ratings: see :class:`TrafficStore`).

Writes are asynchronous: :meth:`TrafficCapture.flush` waits for them, :meth:`TrafficCapture.close`
flushes and ends the thread, and :meth:`TrafficCapture.rate` flushes before it rates a call. At
interpreter exit the process waits up to ``exit_timeout`` seconds (default 10) for writes still
queued; any it could not write in that time are counted in a warning on stderr.

Example:
    >>> import os, tempfile
    >>> from routellm_core.learning.capture import TrafficCapture
    >>> from routellm_core.routing import Decision
    >>> capture = TrafficCapture(os.path.join(tempfile.mkdtemp(), "traffic.db"),
    ...                          redact=lambda t: t.replace("secret", "<redacted>"))
    >>> d = Decision.by_threshold(0.7, 0.5, {"strong": "big", "weak": "small"}, router="r")
    >>> capture.record("run-1", query="my secret question", decision=d)
    >>> capture.flush()
    True
    >>> capture.store.calls()[["call_id", "query", "route"]].values.tolist()
    [['run-1', 'my <redacted> question', 'strong']]
"""

from __future__ import annotations

import os
from typing import Any

from routellm_core.store import EXIT_TIMEOUT, BackgroundWriter, Redact, StoreError, TrafficStore, open_store


class TrafficCapture:
    """Writes routed calls to a :class:`TrafficStore` from a background thread.

    Args:
        store: a store, a SQLite path or a SQLAlchemy URL.
        redact: runs on every query, answer and comment before it is stored: the hook of the
            store, and so of every writer of that database in this process (another hook set
            for it already is a :class:`~routellm_core.learning.StoreError`).
        source: the ``source`` column of captured calls (default: the adapter's name).
        max_queue: writes that may wait; beyond it a write is dropped and counted (a warning).
        exit_timeout: seconds the process waits at exit for queued writes (default 10); writes
            still queued then are counted in a warning on stderr.
    """

    def __init__(self, store: TrafficStore | str | os.PathLike[str], *, redact: Redact | None = None,
                 source: str = "", max_queue: int = 10_000, exit_timeout: float = EXIT_TIMEOUT) -> None:
        self.store = open_store(store, redact=redact)
        self.source = source
        self.writer = BackgroundWriter(max_queue, exit_timeout=exit_timeout)

    @property
    def errors(self) -> int:
        """Writes that failed (each logged once per error type)."""
        return self.writer.errors

    @property
    def dropped(self) -> int:
        """Writes dropped because the queue was full."""
        return self.writer.dropped

    def record(self, call_id: str, *, query: str, decision: Any, record: Any = None, source: str = "") -> None:
        """Queue one routed call for the store; returns at once and never raises."""
        store, src = self.store, source or self.source
        self.writer.submit(lambda: store.add_call(call_id, query=query, decision=decision, record=record, source=src))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued call is written (``False`` on timeout)."""
        return self.writer.flush(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush (``timeout`` seconds at most), then end the writer's thread; calls recorded
        later are dropped (counted in ``dropped``). ``False`` when writes were still queued."""
        return self.writer.close(timeout)

    def __enter__(self) -> TrafficCapture:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def rate(self, call_id: str, rating: str | float, *, comment: str | None = None, timeout: float = 10.0) -> None:
        """Rate a captured call (see :meth:`TrafficStore.rate`), once the calls queued before it
        are written (``timeout`` seconds at most), so that a call just answered can be rated.

        Raises:
            StoreError: as :meth:`TrafficStore.rate` (e.g. no captured call with that id).
        """
        flushed = self.flush(timeout)
        try:
            self.store.rate(call_id, rating, comment=comment)
        except StoreError as exc:
            if flushed or "no captured call" not in str(exc):
                raise
            raise StoreError(f"{exc} (captured calls were still queued after {timeout:g} s: the store is behind)") \
                from exc

    def __repr__(self) -> str:
        return f"TrafficCapture({self.store.url!r})"


def coerce_capture(value: Any, *, source: str = "") -> TrafficCapture | None:
    """An adapter's ``capture=`` setting as a :class:`TrafficCapture` (``None`` stays ``None``).

    Raises:
        TypeError: anything but a capture, a store, a path or a URL.
    """
    if value is None or isinstance(value, TrafficCapture):
        return value
    if isinstance(value, (TrafficStore, str, os.PathLike)):
        return TrafficCapture(value, source=source)
    raise TypeError(f"capture must be a TrafficCapture, a TrafficStore, a SQLite path or a SQLAlchemy URL, "
                    f"got a {type(value).__name__}")


__all__ = ["TrafficCapture", "coerce_capture"]
