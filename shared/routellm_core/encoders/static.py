"""Static (model2vec) query encoders: a vector per token, averaged; about 0.1 ms per query on CPU.

Two kinds of names, both understood by :class:`~routellm_core.encoders.QueryEncoder`:

- ``static:<sentence-transformers id or path>``: distilled from that model with model2vec on
  first use (about 20 s for all-MiniLM-L6-v2 on two cores, offline, from the local weights), then
  loaded from the cache folder ``$ROUTELLM_CACHE_DIR/encoders`` (default ``~/.cache/routellm``).
  :data:`FAST_ENCODER` is the one distilled from the packaged all-MiniLM-L6-v2.
- ``model2vec:<Hub id or path>``: a ready model2vec model (for example ``minishlab/potion-base-8M``
  once it is in the local Hub cache).

Distillation uses model2vec's recipe (PCA to 256 dimensions, which also removes the direction
all token vectors share, and Zipf weighting). An eigendecomposition's signs may differ from one
machine to the next, and a router trained on one machine's vectors must score with the same
vectors on the next, so each component's sign is then fixed by a rule (its largest entry is
positive); checkpoints also record probe vectors and refuse an encoder that does not reproduce
them (:mod:`routellm_core.encoder_probe`).

Example:
    >>> from routellm_core.encoders.static import parse_static_name
    >>> parse_static_name("static:sentence-transformers/all-MiniLM-L6-v2")
    ('static', 'sentence-transformers/all-MiniLM-L6-v2')
    >>> parse_static_name("sentence-transformers/all-MiniLM-L6-v2") is None
    True
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.encoders.paths import DEFAULT_ENCODER, _default_model_path, cache_root, encoder_cache_dir

__all__ = [
    "DEFAULT_TEACHER", "DISTIL_SETTINGS", "FAST_ENCODER", "cache_root", "distil", "distilled_dir", "encode_static",
    "fix_signs", "load_static", "parse_static_name", "split_static_prefix",
]

DEFAULT_TEACHER = DEFAULT_ENCODER
FAST_ENCODER = f"static:{DEFAULT_TEACHER}"
#: Settings of :func:`distil`; part of the cache key, so a change distils anew.
DISTIL_SETTINGS: dict[str, Any] = {"pca_dims": 256, "sif_coefficient": 1e-4, "quantize_to": "float32"}
_DISTIL_LOCK = threading.Lock()


def split_static_prefix(name: str) -> tuple[str, str]:
    """``("static:", "org/model")`` for a ``static:`` / ``model2vec:`` name, ``("", name)`` for
    any other (never raises: checkpoints use it to check every string parameter)."""
    for prefix in ("static:", "model2vec:"):
        if name.startswith(prefix):
            return prefix, name[len(prefix) :]
    return "", name


def parse_static_name(name: str | None) -> tuple[str, str] | None:
    """``(kind, target)`` for a ``static:`` or ``model2vec:`` encoder name, else ``None``."""
    if not name:
        return None
    prefix, target = split_static_prefix(name)
    if not prefix:
        return None
    if not target:
        raise ValueError(f"encoder name {name!r} names no model after '{prefix}'")
    return prefix[:-1], target


def distilled_dir(teacher: str) -> Path:
    """Where the model distilled from ``teacher`` is kept."""
    key = hashlib.sha1(f"{teacher}|{sorted(DISTIL_SETTINGS.items())}".encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() else "-" for c in teacher)[-48:]
    return encoder_cache_dir() / f"static-{safe}-{key}"


def _teacher_path(teacher: str) -> str:
    if teacher == DEFAULT_TEACHER:
        return _default_model_path()
    return teacher


def distil(teacher: str, out: Path) -> Path:
    """Distil ``teacher`` into a model2vec model saved at ``out`` (written whole or not at all)."""
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise RuntimeError(
            f"distilling a static encoder from {teacher!r} needs model2vec's distillation "
            "extras (pip install model2vec skeletoken), or use the default MiniLM encoder"
        ) from exc
    import logging

    warnings.warn(
        f"distilling the static encoder {FAST_ENCODER if teacher == DEFAULT_TEACHER else 'static:' + teacher} "
        f"once (about 20 s on two cores); it is kept at {out}",
        RuntimeWarning,
        stacklevel=4,
    )
    quiet = [logging.getLogger(n) for n in ("model2vec", "transformers")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    try:
        model = distill(model_name=_teacher_path(teacher), device="cpu", **DISTIL_SETTINGS)
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    model.embedding = fix_signs(np.asarray(model.embedding, dtype=np.float32))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        model.save_pretrained(str(tmp))
        try:
            tmp.rename(out)
        except OSError:  # another process finished first: use its copy
            if not (out / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def fix_signs(embedding: np.ndarray) -> np.ndarray:
    """``embedding`` with each column's sign chosen so that its largest-magnitude entry is
    positive: PCA components are defined up to sign, and this makes them the same everywhere.

    Example:
        >>> fix_signs(np.array([[1.0, 2.0], [-3.0, 0.5]])).tolist()
        [[-1.0, 2.0], [3.0, 0.5]]
    """
    rows = np.abs(embedding).argmax(axis=0)
    signs = np.sign(embedding[rows, np.arange(embedding.shape[1])])
    signs[signs == 0] = 1.0
    return embedding * signs


def load_static(name: str) -> Any:
    """The :class:`model2vec.StaticModel` for a ``static:`` or ``model2vec:`` ``name``."""
    parsed = parse_static_name(name)
    if parsed is None:
        raise ValueError(f"{name!r} is not a static encoder name (static:... or model2vec:...)")
    kind, target = parsed
    from model2vec import StaticModel

    if kind == "static":
        folder = distilled_dir(target)
        with _DISTIL_LOCK:
            if not (folder / "model.safetensors").exists():
                distil(target, folder)
        target = str(folder)
    try:
        return StaticModel.from_pretrained(target)
    except Exception as exc:
        raise RuntimeError(f"could not load static encoder {name!r} from {target}: {exc}") from exc


def encode_static(
    model: Any, texts: list[str], *, max_length: int | None = None, show_progress: bool = False
) -> np.ndarray:
    """``(len(texts), dim)`` L2-normalised float32 rows from a :class:`model2vec.StaticModel`."""
    kwargs: dict[str, Any] = {"max_length": max_length} if max_length else {}
    vecs = np.array(
        model.encode(texts, show_progress_bar=show_progress, use_multiprocessing=False, **kwargs),
        dtype=np.float32,
    ).reshape(len(texts), -1)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    zero = norms[:, 0] == 0  # no known token at all: a unit vector, far from every real query
    if zero.any():
        vecs[zero] = 1.0 / np.sqrt(vecs.shape[1])
        norms[zero] = 1.0
    return vecs / norms
