"""Deprecated: the old home of the LangChain adapter's learning glue.

What it held now lives in :mod:`routellm_core.adapter` (what both adapters share: call ids,
``capture=`` / ``shadow=`` checks, ratings, :class:`~routellm_core.adapter.PoolHolder`, the
help texts) and in the private ``langchain_routellm._loop`` (reading LangChain's answers).
Each name is still found here, with a :class:`DeprecationWarning` naming its new place.

Example:
    >>> import warnings
    >>> from routellm_core import adapter
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     from langchain_routellm.learning import PoolHolder
    >>> PoolHolder is adapter.PoolHolder, caught[0].category.__name__
    (True, 'DeprecationWarning')
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import Any

_MOVED: dict[str, tuple[str, str]] = {  # old name: (new module, new name)
    "CALL_ID_KEY": ("routellm_core.adapter", "CALL_ID_KEY"),
    "CAPTURE_DESCRIPTION": ("routellm_core.adapter", "CAPTURE_HELP"),
    "SHADOW_DESCRIPTION": ("routellm_core.adapter", "SHADOW_HELP"),
    "PoolHolder": ("routellm_core.adapter", "PoolHolder"),
    "check_shadow": ("routellm_core.adapter", "check_shadow"),
    "check_capture": ("routellm_core.adapter", "check_capture"),
    "rate_call": ("routellm_core.adapter", "rate_call"),
    "Collected": ("langchain_routellm._loop", "Collected"),
    "after_answer": ("langchain_routellm._loop", "after_answer"),
    "answer_message": ("langchain_routellm._loop", "answer_message"),
    "answer_text": ("langchain_routellm._loop", "answer_text"),
    "new_call_id": ("langchain_routellm._loop", "new_call_id"),
}


def _check_capture(value: Any) -> Any:
    """The old signature: ``source`` was always ``"langchain"``."""
    from routellm_core.adapter import check_capture

    return check_capture(value, source="langchain")


def _rate_call(capture: Any, call_id: Any, rating: str | float, comment: str | None) -> None:
    """The old signature: no ``owner`` (the errors say "the model")."""
    from routellm_core.adapter import rate_call

    rate_call(capture, call_id, rating, comment, owner="the model")


_OLD_SIGNATURES = {"check_capture": _check_capture, "rate_call": _rate_call}


def __getattr__(name: str) -> Any:
    if name == "logger":
        warnings.warn("langchain_routellm.learning.logger is deprecated; use logging.getLogger('langchain_routellm')",
                      DeprecationWarning, stacklevel=2)
        return logging.getLogger("langchain_routellm")
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, new = _MOVED[name]
    warnings.warn(f"langchain_routellm.learning.{name} is deprecated; use {module}.{new}"
                  + (" (which takes the new keyword arguments)" if name in _OLD_SIGNATURES else ""),
                  DeprecationWarning, stacklevel=2)
    if name in _OLD_SIGNATURES:
        return _OLD_SIGNATURES[name]
    return getattr(importlib.import_module(module), new)


def __dir__() -> list[str]:
    return sorted([*globals(), *_MOVED, "logger"])

