"""Opt-in capture of routed calls into the traffic store, off the call path.

Both adapters take ``capture=`` (a :class:`TrafficCapture`, a :class:`TrafficStore`, a SQLite
path or a SQLAlchemy URL). After each routed call they hand the call's id, query text, decision
and cost record to :meth:`TrafficCapture.record`, which queues the write for a background
thread and returns at once: capture never blocks, slows noticeably or fails the user's call (a
store error is a warning, counted in ``errors``). The store's ``redact`` hook runs on that
thread, before anything is stored.

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

from routellm_core.learning.store import BackgroundWriter, Redact, TrafficStore, open_store


class TrafficCapture:
    """Writes routed calls to a :class:`TrafficStore` from a background thread.

    Args:
        store: a store, a SQLite path or a SQLAlchemy URL.
        redact: runs on every query before it is stored (sets the store's hook).
        source: the ``source`` column of captured calls (default: the adapter's name).
        max_queue: writes that may wait; beyond it a write is dropped and counted (a warning).
    """

    def __init__(self, store: TrafficStore | str | os.PathLike[str], *, redact: Redact | None = None,
                 source: str = "", max_queue: int = 10_000) -> None:
        self.store = open_store(store, redact=redact)
        if redact is not None:
            self.store.redact = redact
        self.source = source
        self.writer = BackgroundWriter(max_queue)

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
