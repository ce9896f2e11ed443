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

from routellm_core.checkpoints import load_nway_router
from routellm_core.checkpoints.registry import NWAY, register_router_base, register_router_type, router_types
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

register_router_base(NWayRouter, kind=NWAY)
register_router_type(QualityRouter)
register_router_type(ZooterRouter)
#: ``{router_type: class}`` of the N-way routers: the checkpoint registry's own table (importing
#: this package registers them), so a class added here is one that checkpoints load.
NWAY_ROUTERS: dict[str, type[NWayRouter]] = router_types(NWAY)


def get_nway_router_class(router_type: str) -> type[NWayRouter]:
    """The N-way router class registered under ``router_type`` (``"quality"`` or ``"zooter"``)."""
    try:
        return NWAY_ROUTERS[router_type]
    except KeyError:
        raise ValueError(
            f"unknown N-way router {router_type!r}; available N-way routers: {sorted(NWAY_ROUTERS)}"
        ) from None


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
