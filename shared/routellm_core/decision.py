"""What a routed call chose, and the per-call settings that choose it, for a pair and for a pool.

A pair (strong / weak) is routed by the threshold rule: strong exactly when the router's win
rate clears the threshold. A pool of N models is routed by Tryage's utility rule: the model
maximising ``score(m) - sum_j lambda_j C_j(m)``. Both produce a :class:`Decision`; adapters, the
model fallback, the cost ledger and traces read it the same way.

``route`` is the key of the chosen model among the adapter's models (``"strong"`` / ``"weak"``
for a pair, the user's name for a pool) and ``model`` its name; ``reference`` is the route calls
would take without routing (the strong model, or a pool's first model), against which savings
are counted.

A call's setting is a :class:`PairSetting` (threshold or strong_fraction) or an
:class:`NWaySetting` (constraint weights); :func:`pair_threshold` is the one place that turns a
pair setting into a threshold, for the pools of :mod:`routellm_core.routing` and for
:meth:`routellm_core.routers.base.Router.route` alike. This module sits below the routers and
the pools: it imports neither.

Example:
    >>> from routellm_core.decision import Decision
    >>> d = Decision.by_threshold(0.71, 0.5, {"strong": "gpt-4o", "weak": "gpt-4o-mini"}, router="sw_ranking")
    >>> d.route, d.model, d.strong_model
    ('strong', 'gpt-4o', 'gpt-4o')
    >>> d.as_metadata()["routellm_win_rate"]
    0.71
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from routellm_core.calibration import CalibrationTable, warn_one_sided

Rule = Literal["threshold", "utility"]
PAIR_ROUTES: tuple[str, str] = ("strong", "weak")
DEFAULT_STRONG_FRACTION = 0.5  # a pair with neither threshold nor strong_fraction: half the calls strong
_MAX_WARNED = 64  # thresholds remembered as warned about, per pool


@dataclass(frozen=True)
class Decision:
    """What the router chose for one query.

    Attributes:
        route: key of the chosen model: ``"strong"`` / ``"weak"`` for a pair, the user's name in a pool.
        model: the chosen model's name.
        router: the router's name.
        rule: ``"threshold"`` (a pair) or ``"utility"`` (a pool).
        models: every candidate, ``{route: model name}``, in the adapter's order.
        reference: the route calls would take without routing (savings are counted against it).
        win_rate / threshold: the pair's win rate and threshold (``win_rate`` is ``None`` when
            the router failed; ``threshold`` NaN when it could not be resolved).
        scores / utilities / lambdas: a pool's predicted quality, utility and constraint weights.
        router_failed / error_type / error_message: the router raised and the failure policy
            chose the route.
        fallback_from / fallback_error_type / fallback_error_message / tried: after a model
            fallback (:mod:`routellm_core.routing.fallback`), the route that raised just before,
            its error, and every route that raised, in order.
    """

    route: str
    model: str
    router: str
    rule: Rule
    models: Mapping[str, str]
    reference: str
    win_rate: float | None = None
    threshold: float | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    utilities: Mapping[str, float] = field(default_factory=dict)
    lambdas: Mapping[str, float] = field(default_factory=dict)
    router_failed: bool = False
    error_type: str | None = None
    error_message: str | None = None
    fallback_from: str | None = None
    fallback_error_type: str | None = None
    fallback_error_message: str | None = None
    tried: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.route not in self.models:
            raise ValueError(f"route {self.route!r} is not among the candidates {list(self.models)}")
        object.__setattr__(self, "models", dict(self.models))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def by_threshold(cls, win_rate: float, threshold: float, models: Mapping[str, str], *,
                     router: str) -> Decision:
        """A pair's decision: ``"strong"`` exactly when ``win_rate >= threshold``."""
        route = "strong" if win_rate >= threshold else "weak"
        return cls(route=route, model=models[route], router=router, rule="threshold", models=models,
                   reference="strong", win_rate=float(win_rate), threshold=float(threshold))

    @classmethod
    def by_utility(cls, chosen: int, scores: Sequence[float], utilities: Sequence[float],
                   models: Mapping[str, str], lambdas: Mapping[str, float], *, router: str) -> Decision:
        """A pool's decision: the ``chosen``-th route of ``models`` (the utility rule's argmax),
        with every route's predicted quality (``scores``) and utility, in the order of ``models``;
        the reference is the first route.

        Example:
            >>> d = Decision.by_utility(1, [0.9, 0.8], [0.5, 0.7], {"big": "big", "small": "small"},
            ...                         {"cost": 0.2}, router="quality")
            >>> d.route, d.reference, d.utilities
            ('small', 'big', {'big': 0.5, 'small': 0.7})
        """
        routes = list(models)
        route = routes[int(chosen)]
        return cls(route=route, model=models[route], router=router, rule="utility", models=models,
                   reference=routes[0], scores={r: float(v) for r, v in zip(routes, scores)},
                   utilities={r: float(v) for r, v in zip(routes, utilities)}, lambdas=dict(lambdas))

    # ------------------------------------------------------------------ views
    @property
    def candidates(self) -> tuple[str, ...]:
        """The routes routed among, in order."""
        return tuple(self.models)

    @property
    def reference_model(self) -> str:
        """The name of the model calls would go to without routing."""
        return self.models[self.reference]

    @property
    def strong_model(self) -> str:
        """A pair's strong model (a pool's reference model)."""
        return self.reference_model

    @property
    def weak_model(self) -> str | None:
        """A pair's weak model (``None`` for a pool)."""
        return self.models.get("weak") if self.rule == "threshold" else None

    def ranking(self) -> list[str]:
        """The routes from the chosen one down: a pool by utility (in order when the router
        failed), a pair the chosen route and then the other.

        Example:
            >>> d = Decision(route="b", model="b", router="quality", rule="utility",
            ...              models={"a": "a", "b": "b", "c": "c"}, reference="a",
            ...              utilities={"a": 0.1, "b": 0.7, "c": 0.4})
            >>> d.ranking()
            ['b', 'c', 'a']
        """
        if self.rule == "threshold" or not self.utilities:
            rest = [r for r in self.models if r != self.route]
            return [self.route, *rest] if self.rule == "threshold" else list(self.models)
        return sorted(self.models, key=lambda m: -self.utilities.get(m, float("-inf")))

    def record_fields(self) -> dict[str, Any]:
        """The decision's fields of a :class:`~routellm_core.costs.CostRecord`."""
        return {"route": self.route, "model": self.model, "strong_model": self.reference_model,
                "win_rate": self.win_rate,
                "threshold": float("nan") if self.threshold is None else self.threshold,
                "router": self.router, "router_failed": self.router_failed,
                "fallback_from": self.fallback_from}

    def as_metadata(self) -> dict[str, Any]:
        """Flat JSON-ready metadata, keys prefixed ``routellm_``: a pair's win rate, threshold
        and both models, or a pool's scores, utilities, lambdas and candidates; error keys only
        when the router failed, fallback keys only after a fallback."""
        data: dict[str, Any] = {"route": self.route, "model": self.model, "router": self.router,
                                "rule": self.rule, "router_failed": self.router_failed}
        if self.rule == "threshold":
            data.update(win_rate=self.win_rate, threshold=self.threshold,
                        strong_model=self.models["strong"], weak_model=self.models["weak"])
        else:
            data.update(scores=dict(self.scores), utilities=dict(self.utilities),
                        lambdas=dict(self.lambdas), candidates=list(self.models),
                        reference_model=self.reference_model)
        if self.router_failed:
            data.update(error_type=self.error_type, error_message=self.error_message)
        if self.fallback_from is not None:
            data.update(fallback_from=self.fallback_from, fallback_error_type=self.fallback_error_type,
                        fallback_error_message=self.fallback_error_message, tried=list(self.tried))
        return {f"routellm_{k}": v for k, v in data.items()}


# ---------------------------------------------------------------------- settings
class PairSetting(NamedTuple):
    """A pair's per-call setting: a ``threshold`` (a win rate in [0, 1]) or a ``strong_fraction``
    (a target share of strong calls, through the router's calibration table), at most one of
    them; neither is the pool's default (see :func:`pair_threshold`). A tuple, so it unpacks as
    ``threshold, strong_fraction``.

    Example:
        >>> PairSetting(strong_fraction=0.3) == (None, 0.3)
        True
    """

    threshold: float | None = None
    strong_fraction: float | None = None


@dataclass(frozen=True)
class NWaySetting:
    """A pool's per-call setting: the weight of each constraint, ``{name: lambda}`` (names left
    out weigh 0), already checked against the pool's constraints.

    Example:
        >>> NWaySetting({"cost": 0.2}).lambdas
        {'cost': 0.2}
    """

    lambdas: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lambdas", dict(self.lambdas))


Setting = PairSetting | NWaySetting  # what Pool.setting returns, by the pool's rule


class ThresholdRouter(Protocol):
    """What :func:`pair_threshold` reads of a binary router."""

    @property
    def name(self) -> str: ...

    calibration_: CalibrationTable | None

    def resolve_threshold(self, threshold: float | None = None, strong_fraction: float | None = None) -> float: ...


def pair_threshold(router: ThresholdRouter, setting: PairSetting, *, warned: set[float] | None = None,
                   stacklevel: int = 2) -> float:
    """The threshold of a pair ``setting`` for ``router``: the threshold as given, the router's
    calibrated threshold for a strong_fraction, or, with neither, its threshold for half the calls
    (:data:`DEFAULT_STRONG_FRACTION`; 0.5 for a router without a calibration table).

    A given threshold that would send (almost) every calibration prompt one way raises a
    :class:`~routellm_core.errors.RoutingSettingWarning` (``stacklevel`` as for
    :func:`warnings.warn`, counted from this function: 2 is its caller); with ``warned`` (a
    pool's memory of the thresholds it warned about), only the first time for each threshold.

    Example:
        >>> from routellm_core import load_router
        >>> router = load_router("default")
        >>> pair_threshold(router, PairSetting(threshold=0.575))
        0.575
        >>> pair_threshold(router, PairSetting()) == router.resolve_threshold(strong_fraction=0.5)
        True
    """
    t, f = setting
    if t is None and f is None:
        t, f = (None, DEFAULT_STRONG_FRACTION) if router.calibration_ is not None else (0.5, None)
        return router.resolve_threshold(t, f)
    threshold = router.resolve_threshold(t, f)
    if t is not None and router.calibration_ is not None and (warned is None or t not in warned):
        if warned is not None and len(warned) < _MAX_WARNED:
            warned.add(t)
        warn_one_sided(router, t, stacklevel=stacklevel + 1)
    return threshold


__all__ = [
    "DEFAULT_STRONG_FRACTION",
    "PAIR_ROUTES",
    "Decision",
    "NWaySetting",
    "PairSetting",
    "Rule",
    "Setting",
    "ThresholdRouter",
    "pair_threshold",
]
