"""N-way routing: predict each model's quality (Tryage) or distil rewards (ZOOTER), then pick by
``argmax_m score(m) - sum_j lambda_j * C_j(m)`` over constraints such as cost, size or latency.

Example:
    >>> from routellm_core.nway import load_nway_router
    >>> router = load_nway_router("default")          # embedded: LLMRouter's 9-model pool
    >>> router.router_type, len(router.known_models)
    ('quality', 9)
    >>> router.select(["What is the capital of France?"], lambdas={"cost": 0.5})[0].model in router.known_models
    True
"""

from __future__ import annotations

import os
from typing import Any

from routellm_core.nway.base import NWayDecision, NWayRouter
from routellm_core.nway.constraints import (
    Constraint,
    check_lambdas,
    cost_per_call,
    load_price_table,
    mean_cost,
    model_size,
)
from routellm_core.nway.quality import QualityRouter
from routellm_core.nway.zooter import ZooterRouter

NWAY_ROUTERS: dict[str, type[NWayRouter]] = {
    cls.router_type: cls for cls in (QualityRouter, ZooterRouter)
}


def get_nway_router_class(router_type: str) -> type[NWayRouter]:
    """The N-way router class registered under ``router_type`` (``"quality"`` or ``"zooter"``)."""
    try:
        return NWAY_ROUTERS[router_type]
    except KeyError:
        raise ValueError(
            f"unknown N-way router {router_type!r}; available N-way routers: {sorted(NWAY_ROUTERS)}"
        ) from None


def load_nway_router(
    name_or_path: str | os.PathLike[str] = "default", **kwargs: Any
) -> NWayRouter:
    """Load an N-way router: ``"default"`` (embedded), a checkpoint directory, or a Hub repo id.

    Raises :class:`~routellm_core.checkpoints.CheckpointError` when the checkpoint holds a binary
    (strong/weak) router instead.
    """
    from routellm_core.checkpoints import NWAY_DEFAULT_DIR, CheckpointError, load_router

    target = NWAY_DEFAULT_DIR if str(name_or_path) == "default" else name_or_path
    router = load_router(target, **kwargs)
    if not isinstance(router, NWayRouter):
        raise CheckpointError(
            f"{name_or_path!s} holds a {router.router_type!r} strong/weak router, not an N-way router; "
            "load it with load_router()"
        )
    return router


__all__ = [
    "Constraint",
    "NWayDecision",
    "NWayRouter",
    "QualityRouter",
    "ZooterRouter",
    "check_lambdas",
    "cost_per_call",
    "get_nway_router_class",
    "load_nway_router",
    "load_price_table",
    "mean_cost",
    "model_size",
]
