"""Deprecated: the classifier routers' training loop moved to
:mod:`routellm_core.routers._torch_loop` (private to the routers); every name read from here
warns with a ``DeprecationWarning`` and is the one there."""

from __future__ import annotations

from routellm_core.deprecation import moved_module
from routellm_core.routers import _torch_loop

__getattr__, __dir__ = moved_module(__name__, _torch_loop)
