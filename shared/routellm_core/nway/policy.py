"""How an adapter turns one call into an N-way decision: the shared N-way default, the user's
model names, lambdas per call, and the router-failure policy.

Both framework adapters route among a mapping ``{name: model}``: each name is a model the
router knows (or an alias of one). Constraint values may be given per name (``costs=...`` or
:class:`~routellm_core.nway.constraints.Constraint` objects keyed by the user's names); else
the router's own constraints apply. When the router fails, ``failure_policy`` names the model
to use (default: the first of the mapping) or is ``"raise"``; the decision records it. The
first model is also the *reference*: the model calls would go to without routing, against which
cost records count the savings.

Example:
    >>> from routellm_core.nway.policy import NWayPool, get_default_nway_router
    >>> router = get_default_nway_router()          # loaded once per process, then shared
    >>> pool = NWayPool(router, ["llama-3.1-nemotron-51b-instruct", "llama-3.1-8b-instruct",
    ...                          "gemma-2-9b-it"])
    >>> d = pool.decide(["What is the capital of France?"], lambdas=[{"cost": 0.3}])[0]
    >>> d.model in pool.names, d.router_failed
    (True, False)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from routellm_core.encoders import validate_texts
from routellm_core.nway.base import NWayDecision, NWayRouter
from routellm_core.nway.constraints import Constraint, check_lambdas
from routellm_core.nway.objective import select
from routellm_core.policy import report_router_failure

__all__ = ["NWayPool", "NWayRouterFailure", "check_adapter_settings", "get_default_nway_router", "routed_models"]

_default: NWayRouter | None = None
_lock = threading.Lock()


def get_default_nway_router() -> NWayRouter:
    """The embedded N-way router, loaded on first use and shared by every caller after that."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                from routellm_core.nway import load_nway_router

                _default = load_nway_router("default")
    return _default


class NWayRouterFailure(RuntimeError):
    """The N-way router failed while scoring and the failure policy is ``"raise"``."""


class NWayPool:
    """A router and the user's named models: checks the settings once, then decides per call.

    Args:
        router: a loaded N-way router.
        names: the user's model names (keys of the adapter's mapping); each must be known to
            the router (or an alias of a known model).
        constraints: constraints keyed by the user's names; default the router's own.
        costs: shorthand for ``[Constraint("cost", costs)]``.
        lambdas: default weights, ``{constraint name: weight}``.
        failure_policy: a name to route to when the router fails, or ``"raise"``; ``None``
            means the first name.
    """

    def __init__(
        self,
        router: NWayRouter,
        names: Sequence[str],
        *,
        constraints: Sequence[Constraint] | None = None,
        costs: Mapping[str, float] | None = None,
        lambdas: Mapping[str, float] | None = None,
        failure_policy: str | None = None,
    ) -> None:
        if not isinstance(router, NWayRouter):
            raise TypeError(
                f"router must be a loaded N-way router, got {type(router).__name__}"
            )
        if isinstance(names, str) or len(names) < 2:
            raise ValueError(
                f"route among at least two models, got {list(names) if not isinstance(names, str) else names!r}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"a model name appears twice: {list(names)}")
        self.router = router
        self.names = list(names)
        self.canonical = [router.resolve_model(n) for n in self.names]
        if len(set(self.canonical)) != len(self.canonical):
            raise ValueError(
                f"two names map onto the same model of the router: {dict(zip(self.names, self.canonical))}"
            )
        if constraints is not None and costs is not None:
            raise ValueError("give constraints or costs, not both")
        if costs is not None:
            constraints = [Constraint("cost", dict(costs))]
        if constraints is None:
            self.constraints = list(router.constraints_)
        else:
            self.constraints = [self._rekey(c) for c in constraints]
        for c in self.constraints:
            c.raw(self.canonical)  # every routed model needs a value
        self.lambdas = check_lambdas(lambdas, self.constraints)
        if failure_policy is None:
            failure_policy = self.names[0]
        if failure_policy != "raise" and failure_policy not in self.names:
            raise ValueError(
                f"failure_policy must be 'raise' or one of the models {self.names}, got {failure_policy!r}"
            )
        self.failure_policy = failure_policy

    def _rekey(self, c: Constraint) -> Constraint:
        if not isinstance(c, Constraint):
            raise TypeError(
                f"constraints must be Constraint objects, got {type(c).__name__}"
            )
        unknown = [k for k in c.values if k not in self.names]
        if unknown:
            raise ValueError(
                f"constraint {c.name!r} has values for {unknown}, which are not among the models {self.names}"
            )
        values = {self.canonical[self.names.index(k)]: v for k, v in c.values.items()}
        return Constraint(
            c.name, values, normalize=c.normalize, unit=c.unit, meta=c.meta
        )

    def check_lambdas(self, lambdas: Mapping[str, float] | None) -> dict[str, float]:
        """``lambdas`` validated against this pool's constraints (``None``: the pool's defaults)."""
        return (
            dict(self.lambdas)
            if lambdas is None
            else check_lambdas(lambdas, self.constraints)
        )

    def decide(
        self,
        texts: Sequence[str],
        *,
        lambdas: Sequence[Mapping[str, float] | None] | None = None,
    ) -> list[NWayDecision]:
        """One decision per text, scoring them all in one router call (``lambdas``: one per text)."""
        texts = validate_texts(texts)
        per_text = [
            self.check_lambdas(None if lambdas is None else lam)
            for lam in (lambdas or [None] * len(texts))
        ]
        if len(per_text) != len(texts):
            raise ValueError(f"got {len(per_text)} lambdas for {len(texts)} texts")
        back = dict(zip(self.canonical, self.names))
        try:
            all_scores = self.router.predict_quality(texts)
        except (
            Exception
        ) as exc:  # the router failed: the policy decides, and it is recorded
            if len(texts) > 1:  # score each text alone, so that one bad text fails alone
                return [self.decide([t], lambdas=[lam])[0] for t, lam in zip(texts, per_text)]
            if self.failure_policy == "raise":
                raise NWayRouterFailure(
                    f"N-way router {self.router.name!r} failed while scoring {len(texts)} quer"
                    f"{'y' if len(texts) == 1 else 'ies'}: {type(exc).__name__}: {exc}"
                ) from exc
            report_router_failure(self.router.name, exc, self.failure_policy)
            return [
                NWayDecision(
                    model=self.failure_policy,
                    scores={},
                    utilities={},
                    lambdas=lam,
                    router=self.router.name,
                    candidates=tuple(self.names),
                    reference_model=self.names[0],
                    router_failed=True,
                    error_type=type(exc).__name__,
                    error_message=str(exc)[:500],
                )
                for lam in per_text
            ]
        cols = [self.router.known_models.index(c) for c in self.canonical]
        quality = all_scores[:, cols]
        out = []
        for row, lam in zip(quality, per_text):
            idx, util = select(row[None, :], self.canonical, self.constraints, lam)
            out.append(
                NWayDecision(
                    model=back[self.canonical[int(idx[0])]],
                    scores={n: float(v) for n, v in zip(self.names, row)},
                    utilities={n: float(v) for n, v in zip(self.names, util[0])},
                    lambdas=lam,
                    router=self.router.name,
                    candidates=tuple(self.names),
                    reference_model=self.names[0],
                )
            )
        return out

    def __repr__(self) -> str:
        return f"NWayPool(router={self.router.name!r}, names={self.names}, lambdas={self.lambdas})"


def coerce_lambdas(value: Any) -> dict[str, float] | None:
    """A per-call lambdas setting as a dict (``None`` stays ``None``); anything else is a TypeError."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(
            f"lambdas must be a mapping {{constraint name: weight}}, got {type(value).__name__}"
        )
    return dict(value)


def check_adapter_settings(model: Any) -> tuple[NWayPool | None, str | None, Any]:
    """Check a routed model's settings, for both adapters: its attributes ``strong``, ``weak``,
    ``models``, ``router``, ``threshold``, ``strong_fraction``, ``lambdas``, ``costs``,
    ``constraints``, ``failure_policy``, ``fallback`` and ``query_from``.

    Returns ``(pool, failure_policy, fallback policy)``: ``pool`` is ``None`` for a strong/weak
    pair, the :class:`NWayPool` of ``models`` (on the router or the N-way default) otherwise.
    Settings of the other mode, or a router of the wrong kind, are errors that say so.

    Example:
        >>> from types import SimpleNamespace
        >>> llm = SimpleNamespace(strong=None, weak=None, router=None, threshold=None,
        ...     strong_fraction=None, models={"llama-3.1-8b-instruct": ..., "gemma-2-9b-it": ...},
        ...     lambdas={"cost": 0.2}, costs=None, constraints=None, failure_policy=None,
        ...     fallback="auto", query_from="last_user")
        >>> pool, failure_policy, fallback = check_adapter_settings(llm)
        >>> pool.names, pool.lambdas, failure_policy, type(fallback).__name__
        (['llama-3.1-8b-instruct', 'gemma-2-9b-it'], {'cost': 0.2}, None, 'NWayFallbackPolicy')
    """
    from routellm_core.fallback import coerce_fallback
    from routellm_core.policy import check_routing_settings
    from routellm_core.queries import check_query_mode
    from routellm_core.routers.base import Router

    m = model
    check_query_mode(m.query_from)
    if m.models is None:
        if m.strong is None or m.weak is None:
            raise ValueError("give strong= and weak= models, or models={name: model}")
        nway_only = sorted(k for k in ("lambdas", "costs", "constraints") if getattr(m, k) is not None)
        if nway_only:
            raise ValueError(f"{nway_only} apply to N-way routing: pass models={{...}}, not strong/weak")
        if m.router is not None and not isinstance(m.router, Router):
            raise TypeError(f"strong/weak need a binary router (routellm_core.load_router) or None, "
                            f"got a {type(m.router).__name__}")
        failure_policy = m.failure_policy or "strong"
        check_routing_settings(m.threshold, m.strong_fraction, failure_policy)
        return None, failure_policy, coerce_fallback(m.fallback, nway=False)
    if m.strong is not None or m.weak is not None:
        raise ValueError("give models={...} or strong=/weak=, not both")
    if m.threshold is not None or m.strong_fraction is not None:
        raise ValueError("threshold and strong_fraction apply to strong/weak routing; "
                         "several models are routed by lambdas")
    if m.router is not None and not isinstance(m.router, NWayRouter):
        raise TypeError("models={...} needs an N-way router (routellm_core.nway.load_nway_router) or None, "
                        f"got a {type(m.router).__name__}")
    pool = NWayPool(m.router if m.router is not None else get_default_nway_router(), list(m.models),
                    constraints=m.constraints, costs=m.costs, lambdas=m.lambdas,
                    failure_policy=m.failure_policy)
    return pool, m.failure_policy, coerce_fallback(m.fallback, nway=True)


def routed_models(model: Any) -> dict[str, Any]:
    """The models an adapter routes among, by route: ``{"strong": ..., "weak": ...}`` for a
    pair, the ``models`` mapping (a copy) for N-way routing.

    Example:
        >>> from types import SimpleNamespace
        >>> routed_models(SimpleNamespace(models=None, strong="big", weak="small"))
        {'strong': 'big', 'weak': 'small'}
    """
    if model.models is not None:
        return dict(model.models)
    return {"strong": model.strong, "weak": model.weak}
