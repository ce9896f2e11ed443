"""Router classes by ``router_type``: the registry a checkpoint's ``router_type`` is looked up in.

Checkpoints sit below the routers (binary and N-way) and import neither: each router package
registers its base class under its kind (``"binary"`` or ``"nway"``) and its router classes
under their ``router_type`` when it is imported (``routellm_core.routers`` and
``routellm_core.nway``, both imported by the package ``routellm_core``, which Python runs before
any of its modules). ``routellm_core.routers.ROUTERS`` and ``routellm_core.nway.NWAY_ROUTERS``
are this registry's tables of the two kinds, the same dicts.

Example:
    >>> from routellm_core.checkpoints import router_class, router_kind
    >>> router_class("sw_ranking").__name__, router_kind(router_class("quality"))
    ('SWRankingRouter', 'nway')
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = [
    "BINARY",
    "KINDS",
    "NWAY",
    "register_router_base",
    "register_router_type",
    "router_base",
    "router_class",
    "router_kind",
    "router_types",
]

#: The kind of strong/weak routers (``routellm_core.routers``).
BINARY = "binary"
#: The kind of N-way routers, which pick among a pool of models (``routellm_core.nway``).
NWAY = "nway"
KINDS = (BINARY, NWAY)

_C = TypeVar("_C", bound=type)
_BASES: dict[str, type] = {}
_TABLES: dict[str, dict[str, type[Any]]] = {kind: {} for kind in KINDS}


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown router kind {kind!r}; the kinds are {list(KINDS)}")
    return kind


def register_router_base(cls: _C, *, kind: str) -> _C:
    """Record ``cls`` as the base class of every router of ``kind``; returns ``cls``."""
    _BASES[_check_kind(kind)] = cls
    return cls


def router_base(kind: str) -> type | None:
    """The base class registered for ``kind``, ``None`` while none is."""
    return _BASES.get(_check_kind(kind))


def router_kind(router: object) -> str | None:
    """The kind (:data:`BINARY` or :data:`NWAY`) of a router or router class, by the registered
    base class it derives from; ``None`` for anything else."""
    cls = router if isinstance(router, type) else type(router)
    for kind, base in _BASES.items():
        if issubclass(cls, base):
            return kind
    return None


def register_router_type(cls: _C) -> _C:
    """Record ``cls`` under its ``router_type``, in the table of its base's kind; returns ``cls``.

    Raises ``ValueError`` for a class without a ``router_type``, one that derives from no
    registered base, or a ``router_type`` another kind already holds.
    """
    router_type = getattr(cls, "router_type", "")
    if not isinstance(router_type, str) or not router_type:
        raise ValueError(f"{cls.__name__} has no router_type to register it under")
    kind = router_kind(cls)
    if kind is None:
        raise ValueError(
            f"{cls.__name__} derives from no registered router base class ({sorted(_BASES)} are registered)"
        )
    for other, table in _TABLES.items():
        if other != kind and router_type in table:
            raise ValueError(f"router_type {router_type!r} is already a {other} router ({table[router_type].__name__})")
    _TABLES[kind][router_type] = cls
    return cls


def router_types(kind: str) -> dict[str, type[Any]]:
    """The live table ``{router_type: class}`` of ``kind``: what is added to it is registered."""
    return _TABLES[_check_kind(kind)]


def router_class(router_type: str) -> type[Any]:
    """The router class registered under ``router_type``, of either kind; ``ValueError`` naming
    the registered ones otherwise."""
    for table in _TABLES.values():
        if router_type in table:
            return table[router_type]
    known = sorted(name for table in _TABLES.values() for name in table)
    raise ValueError(f"unknown router {router_type!r}; available routers: {known}")
