"""Where the names of routed models come from: one rule for both adapters, the labeller and the pools.

Each routed model sits on a *route* (``"strong"`` / ``"weak"`` for a pair, the key of
``models={key: model}`` for several) and has a *name*, the identity that decisions, the cost
ledger, the traffic store and ``aliases=`` use. The name is, in order:

1. the user's: ``names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"}`` (a pair), or the
   key of ``models={...}`` (several models);
2. else the model's own name (:func:`model_name`): a LangChain runnable's ``name=``, else its
   ``model_name`` / ``model`` / ``model_id`` field or a LlamaIndex LLM's
   ``metadata.model_name``, else a function's ``__name__``, else its class name;
3. when two routes end up with one guessed name (two models of one class, one model at two
   settings), each becomes ``"<name>@<route>"`` (``"gpt-5@strong"`` / ``"gpt-5@weak"``), with a
   :class:`DuplicateModelNameWarning` saying how to name them.

A call is priced by its name when a price table lists it, else by the model it runs: the
model's own name (``ChatOpenAI(model="gpt-5")`` -> ``"gpt-5"``), else the part of the name
before its last ``"@"`` (:meth:`ModelName.price_keys`). So ``"gpt-5@high"`` and
``"gpt-5@minimal"`` are two entries of the ledger, both priced as ``"gpt-5"``, and
``prices={"gpt-5@high": ...}`` can still price one of them apart.

Example:
    >>> from routellm_core.naming import name_models
    >>> class Fake:
    ...     def __init__(self, model):
    ...         self.model = model
    >>> named = name_models({"strong": Fake("gpt-5"), "weak": Fake("gpt-5")},
    ...                     names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"})
    >>> {r: n.name for r, n in named.items()}
    {'strong': 'gpt-5@high', 'weak': 'gpt-5@minimal'}
    >>> named["weak"].price_keys
    ('gpt-5@minimal', 'gpt-5')
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routellm_core.errors import DuplicateModelNameWarning

__all__ = [
    "DuplicateModelNameWarning",
    "ModelName",
    "RoutedNames",
    "base_model",
    "check_names",
    "model_name",
    "name_models",
    "price_keys_of",
    "provider_model",
    "routed_names",
]

_FIELDS = ("model_name", "model", "model_id")


def model_name(model: Any) -> str:
    """The name a model is known by: a LangChain runnable's own ``name=`` when set, else its
    provider's model name (:func:`provider_model`), else a function's ``__name__``, else its
    class name. The one guess both adapters and the labeller use.

    Example:
        >>> class Chat:
        ...     model = "gpt-4o"
        >>> model_name(Chat()), model_name(object())
        ('gpt-4o', 'object')
    """
    own = getattr(model, "name", None)
    if isinstance(own, str) and own.strip() and callable(getattr(model, "get_name", None)):
        return own  # LangChain: ChatOpenAI(model="gpt-5", name="gpt-5-high")
    provider = provider_model(model)
    if provider is not None:
        return provider
    own = getattr(model, "__name__", None)
    return own if isinstance(own, str) and own else type(model).__name__


def provider_model(model: Any) -> str | None:
    """The provider's model name that ``model`` states (a ``model_name`` / ``model`` /
    ``model_id`` field, a LlamaIndex LLM's ``metadata.model_name`` unless ``"unknown"``), or
    ``None``.

    Example:
        >>> class Chat:
        ...     model_id = "anthropic.claude-3-haiku"
        >>> provider_model(Chat()), provider_model(object())
        ('anthropic.claude-3-haiku', None)
    """
    if model is None:
        return None
    for attr in _FIELDS:
        value = getattr(model, attr, None)
        if isinstance(value, str) and value.strip():
            return value
    try:
        name = model.metadata.model_name
    except Exception:  # no metadata, or one that needs a client
        name = None
    return name if isinstance(name, str) and name.strip() and name != "unknown" else None


def base_model(name: str) -> str:
    """The model a name runs, by the documented rule: the part before the last ``"@"``.

    Example:
        >>> base_model("gpt-5@high"), base_model("gpt-4o"), base_model("claude-3-5-sonnet@20240620@high")
        ('gpt-5', 'gpt-4o', 'claude-3-5-sonnet@20240620')
    """
    head, sep, _ = name.rpartition("@")
    return head if sep and head else name


def price_keys_of(name: str, model: str | None = None) -> tuple[str, ...]:
    """The names a call of ``name`` is priced by, in order: the name, the model it runs, the
    name's part before ``"@"`` (duplicates left out).

    Example:
        >>> price_keys_of("fast", "gpt-5"), price_keys_of("gpt-5@high")
        (('fast', 'gpt-5'), ('gpt-5@high', 'gpt-5'))
    """
    keys = [name]
    for k in (model, base_model(name)):
        if k and k not in keys:
            keys.append(k)
    return tuple(keys)


@dataclass(frozen=True)
class ModelName:
    """A routed model's naming.

    Attributes:
        route: its route (``"strong"`` / ``"weak"``, or a key of ``models=``).
        name: the identity decisions, costs, the store and ``aliases=`` use; unique in a pool.
        model: the provider's model name when the model states one (``None`` otherwise).
        given: the user named it (``names=`` or a ``models=`` key).
    """

    route: str
    name: str
    model: str | None = None
    given: bool = False

    @property
    def price_keys(self) -> tuple[str, ...]:
        """The names its calls are priced by, in order (see :func:`price_keys_of`)."""
        return price_keys_of(self.name, self.model)


def check_names(names: Any, routes: tuple[str, ...] | list[str], *, where: str = "names") -> dict[str, str]:
    """``names`` checked: a mapping of routes to non-empty strings; a key that is no route is a
    ``ValueError`` naming the close matches.

    Example:
        >>> check_names({"strng": "a"}, ("strong", "weak"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: names has a key 'strng', which is not a route; did you mean 'strong'? The routes are [...]
    """
    if names is None:
        return {}
    if not isinstance(names, Mapping):
        raise TypeError(f"{where} must map routes to names, e.g. {{'strong': 'gpt-5@high', 'weak': "
                        f"'gpt-5@minimal'}}, got a {type(names).__name__}")
    out: dict[str, str] = {}
    for route, name in names.items():
        if route not in routes:
            close = difflib.get_close_matches(str(route), [str(r) for r in routes], n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
            raise ValueError(f"{where} has a key {route!r}, which is not a route{hint} The routes are {list(routes)}")
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"{where}[{route!r}] must be a non-empty string, got {name!r}")
        out[route] = name
    seen: dict[str, str] = {}
    for route, name in out.items():
        if name in seen:
            raise ValueError(f"{where} gives the name {name!r} to both {seen[name]!r} and {route!r}; each route "
                             "needs its own name (e.g. 'gpt-5@high' and 'gpt-5@minimal')")
        seen[name] = route
    return out


def name_models(models: Mapping[str, Any], names: Mapping[str, str] | None = None, *, keyed: bool = False,
                guess: Callable[[Any], str | None] | None = None, where: str = "names") -> dict[str, ModelName]:
    """The naming of each route's model, by the rule of this module.

    Args:
        models: ``{route: model}`` (a model may be ``None``: named after its route).
        names: the user's names by route (checked by :func:`check_names`).
        keyed: the routes are the user's names already (``models={name: model}``).
        guess: how to guess a model's name (default :func:`model_name`); it may return
            ``None`` for "none found" (the route's name is then the route).
        where: the argument's name in error messages.

    Warns:
        DuplicateModelNameWarning: two guessed names were equal; both became ``"<name>@<route>"``.
    """
    routes = tuple(models)
    given = check_names(names, routes, where=where)
    guess = guess or model_name
    out: dict[str, ModelName] = {}
    for route, model in models.items():
        provider = provider_model(model)
        if route in given:
            out[route] = ModelName(route, given[route], provider, True)
        elif keyed:
            out[route] = ModelName(route, route, provider, True)
        else:
            guessed = guess(model) if model is not None else None
            out[route] = ModelName(route, guessed or route, provider or guessed, False)
    by_name: dict[str, list[str]] = {}
    for route, n in out.items():
        by_name.setdefault(n.name, []).append(route)
    clashes = {name: rs for name, rs in by_name.items() if len(rs) > 1}
    for name, rs in clashes.items():
        renamed = [r for r in rs if not out[r].given]
        for r in renamed:
            out[r] = ModelName(r, f"{name}@{r}", out[r].model, False)
        if renamed:
            example = ", ".join(f"{r!r}: '{name}@...'" for r in rs)
            warnings.warn(
                f"the {' and '.join(rs)} models are all named {name!r}: they are called "
                f"{', '.join(repr(out[r].name) for r in rs)} in decisions and costs, and priced as {name!r}. "
                f"Name them yourself with {where}={{{example}}}", DuplicateModelNameWarning, stacklevel=3)
    taken = [n.name for n in out.values()]
    if len(set(taken)) != len(taken):  # a renamed default met a given name: say what to do
        dup = next(n for n in taken if taken.count(n) > 1)
        raise ValueError(f"two routed models are named {dup!r}; give each its own name with {where}=")
    return out


@dataclass(frozen=True)
class RoutedNames:
    """The naming of an adapter's models (:func:`routed_names`): what its pool and prices need.

    Attributes:
        by_route: ``{route: ModelName}`` (empty when a pair lacks a model: the pool says so).
        pair: strong / weak (``True``) or ``models={...}`` (``False``).
    """

    by_route: Mapping[str, ModelName]
    pair: bool

    @property
    def price_as(self) -> dict[str, tuple[str, ...]]:
        """``{name: the other names it is priced as}``, for :class:`~routellm_core.costs.PriceSource`."""
        return {n.name: n.price_keys[1:] for n in self.by_route.values()}

    def pool_args(self) -> dict[str, Any]:
        """The naming keywords of :func:`routellm_core.routing.make_pool`: ``strong`` / ``weak``
        names, or the ``models`` names and the model each runs (``runs``)."""
        if self.pair:
            return {"strong": self.by_route["strong"].name if self.by_route else None,
                    "weak": self.by_route["weak"].name if self.by_route else None}
        return {"models": [n.name for n in self.by_route.values()],
                "runs": {n.name: n.model for n in self.by_route.values()}}


def routed_names(*, strong: Any = None, weak: Any = None, models: Mapping[str, Any] | None = None,
                 names: Mapping[str, str] | None = None, what: str = "models",
                 guess: Callable[[Any], str | None] | None = None) -> RoutedNames:
    """Name an adapter's models by the rule of this module: ``strong`` / ``weak`` (with the
    user's ``names``), or ``models={name: model}`` (the keys are the names; ``names=`` is then
    an error). A pair missing a model gets no names (the pool reports what is missing).
    ``guess``: how to find the name of a strong / weak object that is no model itself (see
    :func:`name_models`; e.g. the first model inside a chain).

    Example:
        >>> class Chat:
        ...     model = "gpt-5"
        >>> named = routed_names(strong=Chat(), weak=Chat(), names={"strong": "gpt-5@high", "weak": "gpt-5@low"})
        >>> named.pool_args(), named.price_as["gpt-5@low"]
        ({'strong': 'gpt-5@high', 'weak': 'gpt-5@low'}, ('gpt-5',))
    """
    if models is None:
        both = strong is not None and weak is not None
        return RoutedNames(name_models({"strong": strong, "weak": weak}, names, guess=guess) if both else {}, True)
    if strong is not None or weak is not None:
        raise ValueError("give models={...} or strong=/weak=, not both")
    if names is not None:
        raise ValueError(f"names= names the strong and weak {what}; with models={{...}} the keys are the names")
    return RoutedNames(name_models(dict(models), keyed=True), False)
