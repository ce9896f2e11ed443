"""``--param KEY=VALUE`` and ``--alias NAME=KNOWN``: router parameters and model aliases from the command line.

Example:
    >>> from routellm_core.cli.params import parse_aliases, parse_params
    >>> from routellm_core.routers import MatrixFactorizationRouter
    >>> parse_params(["epochs=3", "ties=half"], MatrixFactorizationRouter)
    {'epochs': 3, 'ties': 'half'}
    >>> parse_params(["epochz=3"], MatrixFactorizationRouter)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --param epochz: mf routers have no parameter 'epochz'; valid names: ...
    >>> parse_aliases(["gpt4=gpt-4-1106-preview"])
    {'gpt4': 'gpt-4-1106-preview'}
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["constructor_parameters", "parse_aliases", "parse_params"]


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters ``cls(...)`` accepts, following ``**kwargs`` up the base classes."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        passes_on = False
        for name, param in inspect.signature(init).parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                passes_on = True
            elif name != "self" and param.kind is not inspect.Parameter.VAR_POSITIONAL:
                found.setdefault(name, param)
        if not passes_on:
            break
    return found


def _hints(cls: type) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            hints.update(typing.get_type_hints(init))
        except Exception:  # noqa: BLE001  (an annotation that cannot be resolved is not checked)
            continue
    return hints


def _fits(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` fits the annotation ``hint``; ``None`` when this cannot tell."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_fits(value, a) for a in typing.get_args(hint)]
        return True if True in verdicts else None if None in verdicts else False
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return None


def _describe(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if typing.get_origin(hint) is None else None
    return text or str(hint).replace("typing.", "").replace("NoneType", "None")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(
    pairs: list[str], cls: type, *, reserved: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as constructor parameters of ``cls``, names and simple types checked.

    VALUE is read as JSON (``3``, ``0.5``, ``true``, ``null``, ``[1, 2]``), else taken as text.
    ``reserved`` maps parameters that have their own option to that option's name.

    Raises:
        ValueError: not ``KEY=VALUE``, a name ``cls`` does not take (the message lists the valid
            ones), a reserved name, or a value of the wrong type for its annotation.
    """
    valid = constructor_parameters(cls)
    hints = _hints(cls)
    kind = getattr(cls, "router_type", cls.__name__)
    reserved = dict(reserved or {})
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--param expects KEY=VALUE, got {pair!r}")
        if key in reserved:
            raise ValueError(f"--param {key}: set it with {reserved[key]} instead")
        if key not in valid:
            names = sorted(n for n in valid if n not in reserved)
            raise ValueError(
                f"--param {key}: {kind} routers have no parameter {key!r}; valid names: {', '.join(names)}"
            )
        value = _parse_value(text)
        hint = hints.get(key)
        if hint is not None and _fits(value, hint) is False:
            raise ValueError(
                f"--param {key}={text}: {kind} routers expect {key} to be {_describe(hint)}, "
                f"got {type(value).__name__} {value!r}"
            )
        out[key] = value
    return out


def parse_aliases(pairs: list[str]) -> dict[str, str]:
    """``NAME=KNOWN`` pairs (``--alias``): ``NAME`` is another name of the known model ``KNOWN``."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, known = pair.partition("=")
        name, known = name.strip(), known.strip()
        if not sep or not name or not known:
            raise ValueError(f"--alias expects NAME=KNOWN_MODEL, got {pair!r}")
        if name in out and out[name] != known:
            raise ValueError(f"--alias {name} is given twice: {out[name]!r} and {known!r}")
        out[name] = known
    return out
