"""Static (model2vec) query encoders: moved to :mod:`routellm_core.encoders.static`.

This module keeps the old import path working; new code imports from the encoders package.

Example:
    >>> from routellm_core.static_encoder import parse_static_name
    >>> parse_static_name("static:sentence-transformers/all-MiniLM-L6-v2")
    ('static', 'sentence-transformers/all-MiniLM-L6-v2')
"""

from __future__ import annotations

from routellm_core.encoders.static import (
    _DISTIL_LOCK,
    DEFAULT_TEACHER,
    DISTIL_SETTINGS,
    FAST_ENCODER,
    _teacher_path,
    cache_root,
    distil,
    distilled_dir,
    encode_static,
    fix_signs,
    load_static,
    parse_static_name,
    split_static_prefix,
)

__all__ = [
    "DEFAULT_TEACHER", "DISTIL_SETTINGS", "FAST_ENCODER", "_DISTIL_LOCK", "_teacher_path", "cache_root", "distil",
    "distilled_dir", "encode_static", "fix_signs", "load_static", "parse_static_name", "split_static_prefix",
]
