"""N-way routing: predict each model's quality (Tryage) or distil rewards (ZOOTER), then pick by
``argmax_m score(m) - sum_j lambda_j * C_j(m)`` over constraints such as cost, size or latency.

Example:
    >>> from routellm_core.nway import load_nway_router
    >>> router = load_nway_router("default")          # embedded: LLMRouter's 9-model pool
    >>> router.router_type, len(router.known_models)
    ('quality', 9)
    >>> router.route(["What is the capital of France?"], lambdas={"cost": 0.5})[0].model in router.known_models
    True
"""

from __future__ import annotations

from typing import Any

from routellm_core.nway.base import NWayRouter
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


def __getattr__(name: str) -> Any:
    # load_nway_router lives with the other loaders in checkpoints, which imports this
    # package (for NWAY_ROUTERS); it is looked up on first use so that no import cycle forms.
    if name == "load_nway_router":
        from routellm_core.checkpoints import load_nway_router

        return load_nway_router
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Constraint",
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
