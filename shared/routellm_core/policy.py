"""How an adapter turns one call into a decision: the shared default router and the failure policy.

Both framework adapters route the same way: take the query text, score it, compare with the
threshold, and, when the router itself fails (a broken checkpoint, an encoder error), follow a
configurable policy instead of failing the user's call. The policy and what happened are
recorded in the decision, so traces show that a call was routed by the fallback.

Bad input is never covered by the policy: an empty or non-text query and a threshold out of
range raise before the router is asked.

Example:
    >>> from routellm_core.policy import decide, get_default_router
    >>> router = get_default_router()              # loaded once per process, then shared
    >>> d = decide(router, "Prove that there are infinitely many primes.", threshold=0.5)
    >>> d.route in ("strong", "weak"), d.router_failed
    (True, False)
    >>> sorted(d.as_metadata())[:3]
    ['routellm_model', 'routellm_route', 'routellm_router']
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from routellm_core.calibration import check_strong_fraction, check_threshold
from routellm_core.encoders import validate_texts
from routellm_core.routers.base import Router, RoutingDecision

FailurePolicy = Literal["strong", "weak", "raise"]
FAILURE_POLICIES: tuple[str, ...] = ("strong", "weak", "raise")

_default_router: Router | None = None
_default_lock = threading.Lock()


def get_default_router() -> Router:
    """The embedded default router, loaded on first use and shared by every caller after that.

    Adapters hold the router by reference, so building a routed model stays cheap and the
    weights and the encoder are loaded once per process.
    """
    global _default_router
    if _default_router is None:
        with _default_lock:
            if _default_router is None:
                from routellm_core.checkpoints import load_router

                _default_router = load_router("default")
    return _default_router


logger = logging.getLogger("routellm_core.routing")
_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()
_MAX_REPORTED = 1024  # causes remembered per process: the set never grows without bound


def report_router_failure(router: str, exc: BaseException, policy: str) -> None:
    """Log a router failure as a warning, once per cause (router and error type) in a process,
    so that a broken router that sends every call to the policy's model is seen."""
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


class RouterFailure(RuntimeError):
    """The router failed while scoring and the failure policy is ``"raise"``."""


def check_policy(policy: str) -> str:
    """Return ``policy`` or raise a ``ValueError`` naming the accepted ones."""
    if policy not in FAILURE_POLICIES:
        raise ValueError(f"failure_policy must be one of {list(FAILURE_POLICIES)}, got {policy!r}")
    return policy


def check_routing_settings(threshold: float | None, strong_fraction: float | None, policy: str) -> None:
    """Check an adapter's settings: exactly one of ``threshold`` / ``strong_fraction``, each in
    [0, 1], and a known failure policy; raise a ``ValueError`` / ``TypeError`` naming the problem."""
    if threshold is not None and strong_fraction is not None:
        raise ValueError("give one of threshold or strong_fraction, not both")
    if threshold is None and strong_fraction is None:
        raise ValueError("give threshold (a win rate in [0, 1]) or strong_fraction (a target "
                         "share of strong calls in [0, 1])")
    if threshold is not None:
        check_threshold(threshold)
    else:
        check_strong_fraction(strong_fraction)  # type: ignore[arg-type]
    check_policy(policy)


@dataclass(frozen=True)
class PolicyDecision(RoutingDecision):
    """A :class:`RoutingDecision` with the names of both models and the router-failure record.

    ``model`` is the chosen model's name; ``win_rate`` is ``None`` when the router failed, and
    then ``error_type`` / ``error_message`` say why and the route is the policy's.

    After a model fallback (:mod:`routellm_core.fallback`) ``route`` / ``model`` name the model
    that was called instead, ``fallback_from`` the route whose model raised, and
    ``fallback_error_type`` / ``fallback_error_message`` what it raised.
    """

    strong_model: str = ""
    weak_model: str = ""
    router_failed: bool = False
    error_type: str | None = None
    error_message: str | None = None
    fallback_from: str | None = None
    fallback_error_type: str | None = None
    fallback_error_message: str | None = None

    def record_fields(self) -> dict[str, Any]:
        """The decision's fields of a :class:`~routellm_core.costs.CostRecord`."""
        return {"route": self.route, "model": self.model, "strong_model": self.strong_model,
                "win_rate": self.win_rate, "threshold": self.threshold, "router": self.router,
                "router_failed": self.router_failed, "fallback_from": self.fallback_from}

    def as_metadata(self) -> dict[str, Any]:
        """Flat metadata, keys prefixed ``routellm_``; error keys only when the router failed,
        fallback keys only after a fallback."""
        data = asdict(self)
        if not self.router_failed:
            data.pop("error_type")
            data.pop("error_message")
        if self.fallback_from is None:
            for k in ("fallback_from", "fallback_error_type", "fallback_error_message"):
                data.pop(k)
        return {f"routellm_{k}": v for k, v in data.items()}


def decide(
    router: Router,
    text: str,
    *,
    threshold: float | None = None,
    strong_fraction: float | None = None,
    policy: str = "strong",
    models: tuple[str, str] | None = None,
) -> PolicyDecision:
    """Route one query; see :func:`decide_many`.

    Give exactly one of ``threshold`` or ``strong_fraction`` (turned into a threshold by the
    router's calibration table).
    """
    t = router.resolve_threshold(threshold, strong_fraction)
    return decide_many(router, [text], thresholds=[t], policy=policy, models=models)[0]


def decide_many(
    router: Router,
    texts: Sequence[str],
    *,
    thresholds: float | Sequence[float],
    policy: str = "strong",
    models: tuple[str, str] | None = None,
) -> list[PolicyDecision]:
    """Route many queries with one call to the router (one threshold each, or one for all).

    Args:
        router: a loaded router.
        texts: the query texts; empty or non-text items raise ``ValueError`` / ``TypeError``.
        thresholds: resolved thresholds in [0, 1] (see :meth:`Router.resolve_threshold`).
        policy: what to do when the router raises while scoring: ``"strong"`` (RouteLLM's
            choice), ``"weak"``, or ``"raise"`` (:class:`RouterFailure`).
        models: names of the (strong, weak) models the decision reports; default the
            router's own pair.
    """
    check_policy(policy)
    texts = validate_texts(texts)
    if isinstance(thresholds, (int, float)):
        thresholds = [thresholds] * len(texts)
    ths = [router.resolve_threshold(threshold=t) for t in thresholds]
    if len(ths) != len(texts):
        raise ValueError(f"got {len(ths)} thresholds for {len(texts)} texts")
    strong, weak = models or (router.strong_model, router.weak_model)
    try:
        rates = router.win_rate(texts)
    except Exception as exc:  # the router failed: the policy decides, and it is recorded
        if len(texts) > 1:  # score each text alone, so that one bad text fails alone
            return [
                decide_many(router, [t], thresholds=[th], policy=policy, models=models)[0]
                for t, th in zip(texts, ths)
            ]
        if policy == "raise":
            raise RouterFailure(
                f"router {router.name!r} failed while scoring {len(texts)} quer"
                f"{'y' if len(texts) == 1 else 'ies'}: {type(exc).__name__}: {exc}"
            ) from exc
        return _policy_decisions(exc, ths, policy, router.name, strong, weak)
    return [
        PolicyDecision.from_win_rate(r, t, strong, weak, router.name, strong_model=strong, weak_model=weak)
        for r, t in zip(rates, ths)
    ]


def _policy_decisions(exc: Exception, thresholds: Sequence[float], policy: str, router: str,
                      strong: str, weak: str) -> list[PolicyDecision]:
    report_router_failure(router, exc, policy)
    return [
        PolicyDecision(
            route=policy,  # type: ignore[arg-type]
            model=strong if policy == "strong" else weak,
            win_rate=None,  # type: ignore[arg-type]
            threshold=t,
            router=router,
            strong_model=strong,
            weak_model=weak,
            router_failed=True,
            error_type=type(exc).__name__,
            error_message=str(exc)[:500],
        )
        for t in thresholds
    ]


def check_setting(threshold: float | None, strong_fraction: float | None) -> tuple[float | None, float | None]:
    """``(threshold, strong_fraction)`` if exactly one is given and in [0, 1], else a clear error."""
    if (threshold is None) == (strong_fraction is None):
        raise ValueError("give exactly one of threshold or strong_fraction")
    if threshold is not None:
        check_threshold(threshold)
    else:
        check_strong_fraction(strong_fraction)  # type: ignore[arg-type]
    return threshold, strong_fraction


def decide_lazy(
    get_router: Callable[[], Router],
    texts: Sequence[str],
    *,
    settings: Sequence[tuple[float | None, float | None]],
    policy: str = "strong",
    models: tuple[str, str],
    router_name: str = "default",
) -> list[PolicyDecision]:
    """:func:`decide_many` for a router loaded on first use (the embedded default): when
    loading it fails (a corrupt or missing checkpoint), the failure policy decides as well.

    Args:
        get_router: returns the loaded router (it may load it, and raise).
        settings: one ``(threshold, strong_fraction)`` per text, exactly one of them given;
            checked before the router is loaded, so bad settings are never absorbed.
        router_name: the name decisions report when the router could not be loaded; their
            threshold is then the given one, or NaN when only a strong_fraction was given
            (it needs the router's calibration table).

    Example:
        >>> def broken():
        ...     raise OSError("model.safetensors: truncated file")
        >>> d = decide_lazy(broken, ["hi"], settings=[(0.5, None)], models=("big", "small"))[0]
        >>> d.route, d.router_failed, d.error_type
        ('strong', True, 'OSError')
    """
    check_policy(policy)
    texts = validate_texts(texts)
    if len(settings) != len(texts):
        raise ValueError(f"got {len(settings)} settings for {len(texts)} texts")
    settings = [check_setting(t, f) for t, f in settings]
    try:
        router = get_router()
    except Exception as exc:  # the router could not be loaded: the policy decides
        if policy == "raise":
            raise RouterFailure(f"router {router_name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
        ths = [t if t is not None else math.nan for t, _ in settings]
        return _policy_decisions(exc, ths, policy, router_name, *models)
    ths = [router.resolve_threshold(t, f) for t, f in settings]
    return decide_many(router, texts, thresholds=ths, policy=policy, models=models)
