"""Routers: one module per router, all on the :class:`~routellm_core.routers.base.Router` interface.

Importing this package registers :class:`Router` and each router class with the checkpoint
registry (:mod:`routellm_core.checkpoints.registry`), which is how a checkpoint's ``router_type``
finds its class; :data:`ROUTERS` is the registry's table of strong/weak routers.

Example:
    >>> get_router_class("sw_ranking") is SWRankingRouter is ROUTERS["sw_ranking"]
    True
"""

from __future__ import annotations

from routellm_core.checkpoints.registry import BINARY, register_router_base, register_router_type, router_types
from routellm_core.routers.base import (
    NonFiniteScoreError,
    NotFittedError,
    Router,
    UnknownModelError,
)
from routellm_core.routers.bert import BertClassifierRouter
from routellm_core.routers.causal_llm import CausalLLMRouter
from routellm_core.routers.mf import MatrixFactorizationRouter
from routellm_core.routers.random import RandomRouter
from routellm_core.routers.sw_ranking import SWRankingRouter

register_router_base(Router, kind=BINARY)
for _cls in (RandomRouter, SWRankingRouter, MatrixFactorizationRouter, BertClassifierRouter, CausalLLMRouter):
    register_router_type(_cls)
del _cls
#: ``{router_type: class}`` of the strong/weak routers: the registry's own table, so a class
#: added here is one that checkpoints load.
ROUTERS: dict[str, type[Router]] = router_types(BINARY)


def get_router_class(router_type: str) -> type[Router]:
    """The router class registered under ``router_type`` (e.g. ``"mf"``)."""
    try:
        return ROUTERS[router_type]
    except KeyError:
        raise ValueError(
            f"unknown router {router_type!r}; available routers: {sorted(ROUTERS)}"
        ) from None


__all__ = [
    "BertClassifierRouter",
    "CausalLLMRouter",
    "MatrixFactorizationRouter",
    "NonFiniteScoreError",
    "NotFittedError",
    "ROUTERS",
    "RandomRouter",
    "Router",
    "SWRankingRouter",
    "UnknownModelError",
    "get_router_class",
]
