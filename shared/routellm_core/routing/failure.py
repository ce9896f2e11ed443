"""When the router itself fails (a broken checkpoint, an encoder error): the failure policy.

The failure policy names the route a call takes when its router raises while loading or
scoring (RouteLLM's choice is the strong model), or ``"raise"`` to fail the call with
:class:`RouterFailure`. The decision records that the router failed and why, and the first
failure of each cause is logged as a warning. Bad input (an empty query, a threshold out of
range) is never covered by the policy: it raises before the router is asked.

Example:
    >>> from routellm_core.routing.failure import check_failure_policy
    >>> check_failure_policy(None, routes=("strong", "weak"), reference="strong")
    'strong'
    >>> check_failure_policy("cheap", routes=("strong", "weak"), reference="strong")
    Traceback (most recent call last):
    ...
    ValueError: failure_policy must be 'raise' or one of the routes ['strong', 'weak'], got 'cheap'
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from routellm_core.errors import RouterFailure

logger = logging.getLogger("routellm_core.routing")
_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()
_MAX_REPORTED = 1024  # causes remembered per process: the set never grows without bound


def check_failure_policy(policy: str | None, *, routes: Sequence[str], reference: str) -> str:
    """``policy`` checked against ``routes`` (``None``: the reference route)."""
    if policy is None:
        return reference
    if policy != "raise" and policy not in routes:
        raise ValueError(f"failure_policy must be 'raise' or one of the routes {list(routes)}, got {policy!r}")
    return policy


def report_router_failure(router: str, exc: BaseException, policy: str) -> None:
    """Log a router failure as a warning, once per cause (router and error type) in a process,
    so that a broken router that sends every call to the policy's route is seen."""
    cause = (router, type(exc).__name__)
    with _reported_lock:
        if cause in _reported or len(_reported) >= _MAX_REPORTED:
            return
        _reported.add(cause)
    logger.warning(
        "router %r failed (%s: %s); routing by the failure policy %r. Later failures with "
        "the same cause are counted in the cost totals (router_failures), not logged.",
        router, cause[1], str(exc)[:200], policy,
    )


__all__ = ["RouterFailure", "check_failure_policy", "report_router_failure"]
