"""Old module paths kept working: a module that moved leaves behind a module whose names are
read from the new one, each read warning with a ``DeprecationWarning``.

Example:
    >>> import types, warnings
    >>> old = types.ModuleType("pkg.old")
    >>> import json
    >>> old.__getattr__, old.__dir__ = moved_module("pkg.old", json)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     dumps = old.dumps
    >>> dumps([1]), str(caught[0].message)
    ('[1]', 'pkg.old is deprecated: import dumps from json')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any


def moved_module(old: str, new: ModuleType) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of the module named ``old``, whose names now
    live in ``new`` (imported by the old module, so the import graph shows the edge)."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__") or not hasattr(new, name):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old} is deprecated: import {name} from {new.__name__}", DeprecationWarning, stacklevel=2)
        return getattr(new, name)

    def __dir__() -> list[str]:
        return sorted(n for n in dir(new) if not n.startswith("__"))

    return __getattr__, __dir__


__all__ = ["moved_module"]
