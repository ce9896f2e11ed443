"""Routers: one module per router, all on the :class:`~routellm_core.routers.base.Router` interface."""

from __future__ import annotations

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

ROUTERS: dict[str, type[Router]] = {
    cls.router_type: cls
    for cls in (RandomRouter, SWRankingRouter, MatrixFactorizationRouter, BertClassifierRouter,
                CausalLLMRouter)
}


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
