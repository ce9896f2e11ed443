"""The on-disk embedding cache: an SQLite map from sha1(text) to a vector, one file per encoder."""

from __future__ import annotations

import atexit
import sqlite3
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np


class _DiskCache:
    """SQLite map from sha1(text) to an embedding, one file per encoder.

    It only ever speeds things up: the first error (a corrupt, truncated, read-only or locked
    file, a directory that cannot be made) is a warning, after which the cache is bypassed; a
    row that is not a finite unit vector of the expected size is ignored (and overwritten).
    Writes leave the caller's path: :meth:`put_many` hands the rows to a writer thread (reads
    see them at once), and whatever is still waiting is written at exit (:meth:`flush`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # the connection
        self._pending_lock = threading.Lock()
        self._pending: dict[str, np.ndarray] = {}
        self._writer: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.broken = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=1.0)
            self._conn.execute("CREATE TABLE IF NOT EXISTS emb (k TEXT PRIMARY KEY, v BLOB)")
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)
        _OPEN_CACHES.add(self)

    def _fail(self, exc: BaseException) -> None:
        if not self.broken:
            warnings.warn(
                f"embedding cache {self.path} is unusable ({type(exc).__name__}: {exc}); "
                "embeddings are computed without it from now on",
                RuntimeWarning,
                stacklevel=4,
            )
        self.broken = True

    def get_many(self, keys: list[str], dim: int | None) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._pending_lock:
            for k in keys:
                if k in self._pending:
                    out[k] = self._pending[k]
        keys = [k for k in keys if k not in out]
        if self.broken or self._conn is None or not keys:
            return out
        found: dict[str, np.ndarray] = {}
        try:
            with self._lock:
                if dim is None:  # the size this cache's model writes, recorded with the rows
                    row = self._conn.execute("SELECT v FROM meta WHERE k = 'dim'").fetchone()
                    dim = int(row[0]) if row and str(row[0]).isdigit() else None
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    q = f"SELECT k, v FROM emb WHERE k IN ({','.join('?' * len(chunk))})"
                    for k, v in self._conn.execute(q, chunk):
                        vec = _valid_row(v, dim)
                        if vec is not None:
                            found[k] = vec
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._fail(exc)
            return out
        if dim is None and found:  # a cache from before sizes were recorded: the common size
            sizes = np.bincount([v.size for v in found.values()])
            found = {k: v for k, v in found.items() if v.size == int(sizes.argmax())}
        out.update(found)
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Queue ``items`` for the writer thread (started when none is running)."""
        if self.broken or self._conn is None or not items:
            return
        with self._pending_lock:
            self._pending.update(items)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="routellm-embedding-cache", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            with self._pending_lock:
                items = dict(self._pending)
                if not items:
                    self._writer = None
                    return
            self._write_queued(items)

    def flush(self) -> None:
        """Write every queued row now and wait for the writer thread (also called at exit)."""
        with self._pending_lock:
            items = dict(self._pending)
            writer = self._writer
        if writer is not None:
            writer.join()
        if items:
            self._write_queued(items)

    def _write_queued(self, items: dict[str, np.ndarray]) -> None:
        self._write(items)
        with self._pending_lock:  # drop what was written, unless a newer vector replaced it
            for k, v in items.items():
                if self._pending.get(k) is v:
                    del self._pending[k]

    def _write(self, items: dict[str, np.ndarray]) -> None:
        if self.broken or self._conn is None:
            return
        try:
            with self._lock:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO emb VALUES (?, ?)",
                    [(k, np.asarray(v, np.float32).tobytes()) for k, v in items.items()],
                )
                size = str(np.asarray(next(iter(items.values()))).size)
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('dim', ?)", (size,))
                self._conn.commit()
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc)


_OPEN_CACHES: weakref.WeakSet[_DiskCache] = weakref.WeakSet()


@atexit.register
def _flush_open_caches() -> None:
    """Write what the caches still hold when the process ends (the writers are daemon threads)."""
    for cache in list(_OPEN_CACHES):
        cache.flush()


def _valid_row(blob: Any, dim: int | None) -> np.ndarray | None:
    """The stored vector if it is a finite, L2-normalised float32 vector of ``dim`` values."""
    if not isinstance(blob, bytes) or len(blob) == 0 or len(blob) % 4:
        return None
    vec = np.frombuffer(blob, dtype=np.float32)
    if dim is not None and vec.size != dim:
        return None
    if not np.all(np.isfinite(vec)) or abs(float(np.dot(vec, vec)) - 1.0) > 1e-3:
        return None
    return vec
