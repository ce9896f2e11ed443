"""Reading a large traffic store in bounded pieces: keys in chunks, calls in pages, a sample.

:class:`PagedReads` holds the :class:`~routellm_core.store.TrafficStore` methods whose memory
grows with what they are asked for or return, never with the size of the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable, Iterator, Sequence
from typing import Any

import pandas as pd

__all__ = ["PAGE_KEYS", "PagedReads"]

PAGE_KEYS = 500  # battle keys looked up in one statement (TrafficStore.existing_keys)


class PagedReads:
    """The paged reads of a :class:`~routellm_core.store.TrafficStore` (a part of that class)."""

    engine: Any
    tables: dict[str, Any]

    def existing_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that name a stored battle, looked up by the key's unique index in
        chunks of :data:`PAGE_KEYS`: memory grows with ``keys``, never with the store."""
        from sqlalchemy import select

        battles, wanted = self.tables["battles"], list(dict.fromkeys(keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), PAGE_KEYS):
                chunk = wanted[start:start + PAGE_KEYS]
                found.update(conn.execute(select(battles.c.key).where(battles.c.key.in_(chunk))).scalars())
        return found

    def iter_calls(self, columns: Sequence[str] = ("call_id", "query"), *, page: int = 5_000,
                   since: float | None = None) -> Iterator[pd.DataFrame]:
        """The captured calls in pages of at most ``page`` rows, oldest first, with only
        ``columns`` read: keyset pagination on ``(created_at, call_id)``, so one page costs the
        same however large the store is, and memory holds one page.

        Raises:
            ValueError: an unknown column, or ``page < 1``.
        """
        from sqlalchemy import and_, or_, select

        calls = self.tables["calls"]
        unknown = [c for c in columns if c not in calls.c]
        if unknown:
            raise ValueError(f"unknown calls column(s) {unknown}; the table has {list(calls.c.keys())}")
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValueError(f"page must be a whole number >= 1, got {page!r}")
        names = list(dict.fromkeys(["created_at", "call_id", *columns]))
        after: tuple[float, str] | None = None
        while True:
            query = select(*(calls.c[n] for n in names)).order_by(calls.c.created_at, calls.c.call_id).limit(page)
            if since is not None:
                query = query.where(calls.c.created_at >= since)
            if after is not None:
                query = query.where(or_(calls.c.created_at > after[0],
                                        and_(calls.c.created_at == after[0], calls.c.call_id > after[1])))
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            frame = pd.DataFrame([tuple(r) for r in rows], columns=names)
            after = (float(frame["created_at"].iloc[-1]), str(frame["call_id"].iloc[-1]))
            yield frame[list(columns)]
            if len(rows) < page:
                return

    def sample_queries(self, n: int, *, seed: int = 0, exclude: Container[str] = frozenset(),
                       page: int = 5_000) -> list[str]:
        """A uniform sample of at most ``n`` of the distinct non-blank captured queries (those
        in ``exclude`` left out), in a bounded pass over the store (:meth:`iter_calls`, pages of
        ``page``): the ``n`` queries whose seeded hash is smallest, in that order, so a query's
        chance does not depend on how often it was asked, the same store and seed give the same
        sample, and memory holds ``n`` queries whatever the store's size.

        Raises:
            ValueError: ``n < 1``.
        """
        import heapq

        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}")
        heap: list[tuple[int, str]] = []  # (-hash, query): the largest of the kept hashes on top
        kept: set[str] = set()
        for frame in self.iter_calls(("query",), page=page):
            for q in frame["query"]:
                if not isinstance(q, str) or not q.strip() or q in kept or q in exclude:
                    continue
                h = int.from_bytes(hashlib.sha256(f"{seed}\x00{q}".encode()).digest()[:8], "big")
                if len(heap) < n:
                    heapq.heappush(heap, (-h, q))
                    kept.add(q)
                elif h < -heap[0][0]:
                    _, out = heapq.heapreplace(heap, (-h, q))
                    kept.discard(out)
                    kept.add(q)
        return [q for _, q in sorted(heap, key=lambda e: -e[0])]
