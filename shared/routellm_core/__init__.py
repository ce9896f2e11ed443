"""routellm_core: the framework-free scoring core of learned LLM routing.

Example:
    >>> from routellm_core import load_router
    >>> router = load_router("default")
    >>> [d.route for d in router.route(["Prove that there are infinitely many primes."],
    ...                                strong_fraction=0.5)][0] in ("strong", "weak")
    True
"""

from routellm_core.calibration import CalibrationTable
from routellm_core.checkpoints import CheckpointError, load_router, save_router
from routellm_core.encoder_probe import EncoderMismatchError
from routellm_core.encoders import QueryEncoder
from routellm_core.errors import RouteLLMError, RouteLLMWarning
from routellm_core.nway import NWayRouter, load_nway_router
from routellm_core.routers import (
    NotFittedError,
    Router,
    UnknownModelError,
    get_router_class,
)
from routellm_core.routing import Decision, Pool

__all__ = [
    "CalibrationTable",
    "CheckpointError",
    "Decision",
    "EncoderMismatchError",
    "NWayRouter",
    "NotFittedError",
    "Pool",
    "QueryEncoder",
    "RouteLLMError",
    "RouteLLMWarning",
    "Router",
    "UnknownModelError",
    "get_router_class",
    "load_nway_router",
    "load_router",
    "save_router",
]
