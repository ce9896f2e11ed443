"""Where the default encoder's files lie: moved to :mod:`routellm_core.encoders.paths`.

This module keeps the old import path working; new code imports from the encoders package.
"""

from __future__ import annotations

from routellm_core.encoders.paths import _default_model_path, cache_root, default_model_path

__all__ = ["_default_model_path", "cache_root", "default_model_path"]
