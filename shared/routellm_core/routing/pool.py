"""The one routing interface: a router and the user's named models, and the rule that picks one.

A :class:`Pool` routes queries among named models. Two strong / weak models are a pool of two
under the threshold rule (:meth:`Pool.pair`); N models are routed by Tryage's utility rule
(:meth:`Pool.of`). Either way, ``pool.route(texts, settings)`` scores every text in one router
call and returns one :class:`~routellm_core.routing.Decision` per text. Per-call settings are
checked by :meth:`Pool.setting`, the one place that validates a threshold against a
strong_fraction or lambdas; settings of the other rule are errors that say so.

When the router fails to load or to score, the failure policy (a route, or ``"raise"``)
decides and the decision records it (:mod:`routellm_core.routing.failure`).

Example:
    >>> from routellm_core.routing import Pool
    >>> pair = Pool.pair("default", strong="gpt-4o", weak="gpt-4o-mini", threshold=0.5)
    >>> d = pair.route(["Prove that there are infinitely many primes."])[0]
    >>> d.route in ("strong", "weak"), d.model in ("gpt-4o", "gpt-4o-mini"), d.router_failed
    (True, True, False)
    >>> pool = Pool.of("default", ["llama-3.1-8b-instruct", "gemma-2-9b-it"], lambdas={"cost": 0.2})
    >>> pool.route(["hi"], [pool.setting(lambdas={"cost": 1.0})])[0].lambdas
    {'cost': 1.0}
"""

from __future__ import annotations

import difflib
import math
import os
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from routellm_core.calibration import (
    RoutingSettingWarning,
    check_strong_fraction,
    check_threshold,
    warn_one_sided,
)
from routellm_core.decision import DEFAULT_STRONG_FRACTION, Decision, NWaySetting, PairSetting, Setting, pair_threshold
from routellm_core.encoders import validate_texts
from routellm_core.naming import base_model
from routellm_core.routing.failure import RouterFailure, check_failure_policy, report_router_failure
from routellm_core.routing.fallback import FallbackPolicy

if TYPE_CHECKING:
    from routellm_core.nway.constraints import Constraint

RouterSpec = Any  # a loaded router, None / "default", a checkpoint path or a Hub id
S = TypeVar("S", PairSetting, NWaySetting)  # a pool's per-call setting, by its rule

_shared: dict[tuple[str, str], Any] = {}
_shared_lock = threading.Lock()


def shared_router(spec: str | os.PathLike[str] = "default", *, nway: bool = False) -> Any:
    """A router loaded once per process and shared by reference: ``"default"`` (the embedded
    default, binary or N-way), a checkpoint directory or a Hub id (see
    :func:`routellm_core.checkpoints.load_router`).

    Example:
        >>> shared_router("default") is shared_router("default")
        True
    """
    key = ("nway" if nway else "pair", os.fspath(spec))
    router = _shared.get(key)
    if router is None:
        with _shared_lock:
            router = _shared.get(key)
            if router is None:
                if nway:
                    from routellm_core.nway import load_nway_router

                    router = load_nway_router(key[1])
                else:
                    from routellm_core.checkpoints import load_router

                    router = load_router(key[1])
                _shared[key] = router
    return router


def fresh_router(router: RouterSpec) -> RouterSpec:
    """``router`` with a checkpoint path or Hub id loaded afresh from disk (not from the
    per-process cache of :func:`shared_router`, so a checkpoint that ``routellm promote``
    replaced is read again; binary or N-way, as the checkpoint says); ``None``, ``"default"``
    and loaded routers are returned as they are, after :func:`check_router_spec`; a
    :class:`~routellm_core.routing.follow.RouterFromStore` gives the router it holds now."""
    router = _live(check_router_spec(router))
    if isinstance(router, (str, os.PathLike)) and os.fspath(router) != "default":
        from routellm_core.checkpoints import load_router

        return load_router(os.fspath(router))
    return router


def _live(router: RouterSpec) -> RouterSpec:
    """A :class:`~routellm_core.routing.follow.RouterFromStore`'s router now; any other spec as is."""
    from routellm_core.routing.follow import live_router_of

    return live_router_of(router)


def check_router_spec(router: RouterSpec) -> RouterSpec:
    """``router`` if it is a loaded router, ``None``, ``"default"``, a non-empty path / Hub id
    string, or a :class:`~routellm_core.routing.follow.RouterFromStore` (the live version of a
    traffic store); else a ``TypeError`` saying what is accepted."""
    if router is None or isinstance(router, (str, os.PathLike)):
        if isinstance(router, str) and not router.strip():
            raise ValueError("router is an empty string; give 'default', a checkpoint path or a Hub id")
        return router
    from routellm_core.nway.base import NWayRouter
    from routellm_core.routers.base import Router
    from routellm_core.routing.follow import RouterFromStore

    if isinstance(router, (Router, NWayRouter, RouterFromStore)):
        return router
    raise TypeError("router must be a loaded router, 'default', a checkpoint path or a Hub id (or a "
                    f"RouterFromStore), got a {type(router).__name__}")


class Pool(ABC, Generic[S]):
    """Named models behind a router and a rule; see the module docstring. ``S`` is the rule's
    per-call setting: :class:`~routellm_core.decision.PairSetting` or
    :class:`~routellm_core.decision.NWaySetting`.

    Attributes:
        models: ``{route: model name}`` in order: ``{"strong": ..., "weak": ...}`` for a pair,
            ``{name: name}`` for a pool.
        reference: the route calls would take without routing.
        failure_policy: the route taken when the router fails, or ``"raise"``.
        fallback: the :class:`FallbackPolicy` for calls whose model raises.
    """

    rule: str = ""
    setting_names: tuple[str, ...] = ()  # the per-call settings of this rule
    _settings: dict[str, Any]  # the constructor's keyword arguments, for with_router

    def __init__(self, models: Mapping[str, str], *, reference: str, failure_policy: str | None,
                 fallback: Any) -> None:
        self.models = dict(models)
        self.reference = reference
        self.failure_policy = check_failure_policy(failure_policy, routes=tuple(self.models), reference=reference)
        self.fallback = FallbackPolicy.coerce(fallback).check_for(self.rule)

    # ------------------------------------------------------------------ construction
    @classmethod
    def pair(cls, router: RouterSpec = None, *, strong: str, weak: str, threshold: float | None = None,
             strong_fraction: float | None = None, failure_policy: str | None = None,
             fallback: Any = "auto", aliases: Mapping[str, str] | None = None) -> PairPool:
        """A strong / weak pair under the threshold rule: at most one of ``threshold`` or
        ``strong_fraction``; with neither, half the calls go strong by the router's calibration
        table (:data:`DEFAULT_STRONG_FRACTION`; threshold 0.5 for a router without one)."""
        return PairPool(router, strong=strong, weak=weak, threshold=threshold,
                        strong_fraction=strong_fraction, failure_policy=failure_policy,
                        fallback=fallback, aliases=aliases)

    @classmethod
    def of(cls, router: RouterSpec, names: Sequence[str], *, lambdas: Mapping[str, float] | None = None,
           costs: Mapping[str, float] | None = None, constraints: Sequence[Any] | None = None,
           failure_policy: str | None = None, fallback: Any = "auto",
           aliases: Mapping[str, str] | None = None, runs: Mapping[str, str | None] | None = None,
           prices: Any = None) -> NWayPool:
        """N models under Tryage's utility rule; ``names`` are the user's names, each a model the
        N-way router knows, or run by one (``runs``), or mapped onto one by ``aliases``."""
        return NWayPool(router, names, lambdas=lambdas, costs=costs, constraints=constraints,
                        failure_policy=failure_policy, fallback=fallback, aliases=aliases, runs=runs,
                        prices=prices)

    # ------------------------------------------------------------------ the interface
    @property
    def routes(self) -> tuple[str, ...]:
        """The candidate routes, in order."""
        return tuple(self.models)

    def own_settings(self, ambient: Mapping[str, Any] | None) -> dict[str, Any]:
        """The settings of this pool's rule in ambient settings (a chain's or a block's, keyed by
        the ``routellm_*`` keywords or the plain names): those of the other rule are meant for
        other routed models and are left out.

        Example:
            >>> Pool.pair(strong="a", weak="b").own_settings({"routellm_threshold": 0.7, "routellm_lambdas": {}})
            {'routellm_threshold': 0.7}
        """
        from routellm_core.calls import SETTING_KEYS

        return {k: v for k, v in (ambient or {}).items() if SETTING_KEYS.get(k, k) in self.setting_names}

    @abstractmethod
    def setting(self, *, threshold: float | None = None, strong_fraction: float | None = None,
                lambdas: Mapping[str, float] | None = None) -> S:
        """A per-call setting, checked (all ``None``: the pool's own)."""

    @property
    @abstractmethod
    def router_name(self) -> str:
        """The router's name (``"default"`` while the embedded default is not loaded)."""

    @abstractmethod
    def _load(self) -> Any:
        """The loaded router."""

    def _check_loaded(self, router: Any) -> None:  # noqa: B027 - a hook with nothing to do by default
        """Check the pool's settings against a router loaded on first use."""

    @abstractmethod
    def _score(self, router: Any, texts: list[str]) -> np.ndarray:
        """One row (pair: one win rate) per text; raises when the router fails."""

    @abstractmethod
    def _decide(self, router: Any, score: Any, setting: S) -> Decision:
        """The decision for one text's score under its setting."""

    @abstractmethod
    def _failed(self, exc: BaseException, setting: S, router: Any) -> Decision:
        """The failure policy's decision."""

    def route(self, texts: Sequence[str], settings: Sequence[S] | None = None) -> list[Decision]:
        """One decision per text, scoring them all in one router call.

        Args:
            texts: the query texts; empty or non-text items raise ``ValueError`` / ``TypeError``.
            settings: one :meth:`setting` per text (``None``: the pool's own for all).

        Raises:
            RouterFailure: the router failed and the failure policy is ``"raise"``.
        """
        texts = validate_texts(texts)
        if settings is None:
            settings = [self.setting()] * len(texts)
        if len(settings) != len(texts):
            raise ValueError(f"got {len(settings)} settings for {len(texts)} texts")
        try:
            router = self._load()
        except Exception as exc:  # the router could not be loaded: the failure policy decides
            if self.failure_policy == "raise":
                raise RouterFailure(f"router {self.router_name!r} could not be loaded: "
                                    f"{type(exc).__name__}: {exc}") from exc
            report_router_failure(self.router_name, exc, self.failure_policy)
            return [self._failed(exc, s, None) for s in settings]
        self._check_loaded(router)  # the user's settings against the router: an error, never the policy's
        try:
            scores = self._score(router, texts)
        except Exception as exc:  # the router failed: the failure policy decides, and it is recorded
            if len(texts) > 1:  # score each text alone, so that one bad text fails alone
                return [self.route([t], [s])[0] for t, s in zip(texts, settings)]
            if self.failure_policy == "raise":
                raise RouterFailure(f"router {self.router_name!r} failed while scoring 1 query: "
                                    f"{type(exc).__name__}: {exc}") from exc
            report_router_failure(self.router_name, exc, self.failure_policy)
            return [self._failed(exc, settings[0], router)]
        return [self._decide(router, row, s) for row, s in zip(scores, settings)]

    def unroutable(self, exc: BaseException, setting: S | None = None) -> Decision:
        """The decision for a call with no text to score (``exc``, e.g. a
        :class:`~routellm_core.queries.NoQueryText` for a user turn of images only): the failure
        policy's route, recorded as ``router_failed`` with ``exc`` as its reason; with
        ``failure_policy="raise"``, ``exc`` is raised.

        Example:
            >>> from routellm_core.queries import NoQueryText
            >>> d = Pool.pair(strong="a", weak="b", threshold=0.5).unroutable(NoQueryText("no text to route on"))
            >>> d.route, d.router_failed, d.error_message
            ('strong', True, 'no text to route on')
        """
        if self.failure_policy == "raise":
            raise exc
        return self._failed(exc, setting if setting is not None else self.setting(), None)

    async def aroute(self, texts: Sequence[str], settings: Sequence[S] | None = None) -> list[Decision]:
        """:meth:`route` for async callers: the concurrent calls of an event loop share one
        router call in one worker thread (:class:`~routellm_core.routing.batcher.RouteBatcher`),
        instead of a thread and an encoder call each. Same arguments, decisions and errors."""
        texts = validate_texts(texts)
        if settings is None:
            settings = [self.setting()] * len(texts)
        batcher = self.__dict__.get("_batcher")
        if batcher is None:
            from routellm_core.routing.batcher import RouteBatcher

            batcher = self.__dict__.setdefault("_batcher", RouteBatcher(self.route))
        return await batcher.route(texts, settings)

    def with_router(self, router: RouterSpec) -> Pool:
        """This pool's models and settings with another router: a loaded one, or a checkpoint
        path / Hub id loaded afresh (not from the per-process cache, so a checkpoint replaced
        on disk by ``routellm promote`` is read again). Adapters swap their pool for it
        atomically, so calls in flight finish on the old router.

        The new router is checked first (:meth:`check_ready`), so that a router the calls
        would fail on is refused here and the old one stays.

        Example:
            >>> pool = Pool.pair(strong="a", weak="b", threshold=0.5)
            >>> pool.with_router("default").models == pool.models
            True

        Raises:
            TypeError / ValueError: the router does not fit this pool's models or settings, or
                cannot score (e.g. :class:`~routellm_core.encoder_probe.EncoderMismatchError`
                for a checkpoint whose encoder probe was edited).
        """
        pool = type(self)(fresh_router(router), **self._settings)
        pool.check_ready()
        return pool

    def check_ready(self) -> None:
        """Check that this pool can route: its router loads, fits the pool's settings (a
        ``strong_fraction`` needs a calibration table) and scores a probe text, which loads its
        encoder and checks it against the checkpoint's probe vectors. A failure raises, with the
        router's error in the message, instead of being left to the failure policy of the calls.

        Example:
            >>> Pool.pair(strong="a", weak="b", threshold=0.5).check_ready()
        """
        from routellm_core.encoder_probe import PROBE_TEXTS

        router = self._load()
        self._check_loaded(router)
        try:
            self._score(router, [PROBE_TEXTS[0]])
        except Exception as exc:
            raise _refusal(exc, f"router {self.router_name!r} cannot route: scoring the probe text "
                                f"{PROBE_TEXTS[0]!r} failed with {type(exc).__name__}: {exc}") from exc

    def _failure_fields(self, exc: BaseException) -> dict[str, Any]:
        route = self.failure_policy
        return {"route": route, "model": self.models[route], "rule": self.rule, "models": self.models,
                "reference": self.reference, "router_failed": True, "error_type": type(exc).__name__,
                "error_message": str(exc)[:500]}


class PairPool(Pool[PairSetting]):
    """A strong and a weak model under the threshold rule; see :meth:`Pool.pair`.

    ``router=None`` or ``"default"`` is the embedded default, loaded on the first call (a
    failure to load it is a router failure, decided by the policy); another string is loaded
    at once (once per process). The router scores its own strong/weak pair, unless both of the
    user's model names are models it knows (directly, by the part of a name before ``"@"``, or
    through ``aliases``, keyed by the names or by the routes ``"strong"`` / ``"weak"``): then it
    scores theirs. ``strong`` and ``weak`` must differ: name one model at two settings with the
    adapters' ``names=`` (:mod:`routellm_core.naming`).
    """

    rule = "threshold"
    setting_names = ("threshold", "strong_fraction")

    def __init__(self, router: RouterSpec = None, *, strong: str, weak: str, threshold: float | None = None,
                 strong_fraction: float | None = None, failure_policy: str | None = None,
                 fallback: Any = "auto", aliases: Mapping[str, str] | None = None) -> None:
        if strong == weak:
            raise ValueError(f"the strong and weak models have the same name {strong!r}; name them with "
                             "names={'strong': ..., 'weak': ...}, e.g. names={'strong': 'gpt-5@high', "
                             "'weak': 'gpt-5@minimal'}")
        self._settings = {"strong": strong, "weak": weak, "threshold": threshold, "strong_fraction": strong_fraction,
                          "failure_policy": failure_policy, "fallback": fallback, "aliases": aliases}
        super().__init__({"strong": strong, "weak": weak}, reference="strong",
                         failure_policy=failure_policy, fallback=fallback)
        self.default_setting = _pair_setting(threshold, strong_fraction, None) or PairSetting()
        self._warned_thresholds: set[float] = set()  # pair_threshold warns once each
        self.aliases = _check_aliases(aliases, (strong, weak), routes=self.models)
        router = _live(check_router_spec(router))
        from routellm_core.nway.base import NWayRouter

        if isinstance(router, NWayRouter):
            raise TypeError("a strong/weak pair needs a binary router (routellm_core.load_router); "
                            f"{router.name!r} is an N-way router: route several models with models={{...}}")
        self._pair: tuple[str, str] | None | bool = False  # False: not resolved yet
        self._router = None if router is None or isinstance(router, (str, os.PathLike)) else router
        if self._router is None and router is not None and os.fspath(router) != "default":
            self._router = shared_router(router)
        if self._router is not None:
            self._check_router(self._router)

    def _check_router(self, router: Any) -> Any:
        from routellm_core.routers.base import Router

        if not isinstance(router, Router):
            raise TypeError(f"a strong/weak pair needs a binary router, got a {type(router).__name__}")
        f = self.default_setting.strong_fraction
        if f is not None and router.calibration_ is None:
            raise ValueError(
                f"router {router.name!r} has no calibration table, so strong_fraction={f} cannot be turned into "
                "a threshold: calibrate it on prompts of your traffic (routellm calibrate --router DIR --prompts "
                "PROMPTS_FILE --write, or router.calibrate(prompts)) or set threshold= instead")
        self._pair = self._router_pair(router)
        return router

    def _router_pair(self, router: Any) -> tuple[str, str] | None:
        """The user's pair as the router knows it, or ``None`` to score the router's own pair."""
        known = router.known_models
        names = [self.aliases.get(n, n) for n in (self.models["strong"], self.models["weak"])]
        if known is None:
            return None
        from routellm_core.data.schema import canonical_model_name

        canonical = [canonical_model_name(n, router.aliases) for n in names]
        # "gpt-4o@fast" runs "gpt-4o": the router may know that one (routellm_core.naming)
        canonical = [c if c in known or n in self.aliases else canonical_model_name(base_model(n), router.aliases)
                     for n, c in zip(names, canonical)]
        if all(c in known for c in canonical) and canonical[0] != canonical[1]:
            return canonical[0], canonical[1]
        if self.aliases:  # the user mapped names: they must name models the router knows
            bad = [f"{n!r} (aliased to {a!r})" if n in self.aliases else repr(n)
                   for n, a, c in zip((self.models["strong"], self.models["weak"]), names, canonical)
                   if c not in known]
            raise ValueError(f"router {router.name!r} does not know {', '.join(bad)}: with aliases, both models "
                             f"must map onto models it knows: {sorted(known)}")
        return None

    @property
    def router_name(self) -> str:
        return self._router.name if self._router is not None else "default"

    def _load(self) -> Any:
        return self._router if self._router is not None else shared_router("default")

    def _check_loaded(self, router: Any) -> None:
        if self._pair is False:
            self._check_router(router)

    def setting(self, *, threshold: float | None = None, strong_fraction: float | None = None,
                lambdas: Mapping[str, float] | None = None) -> PairSetting:
        """A :class:`PairSetting` ``(threshold, strong_fraction)``, exactly one given (both
        ``None``: the pair's own).

        Example:
            >>> Pool.pair(strong="a", weak="b", threshold=0.5).setting(strong_fraction=0.3)
            PairSetting(threshold=None, strong_fraction=0.3)
        """
        given = _pair_setting(threshold, strong_fraction, lambdas)
        return given if given is not None else self.default_setting

    def _score(self, router: Any, texts: list[str]) -> np.ndarray:
        strong, weak = self._pair or (None, None)  # type: ignore[misc]
        return router.win_rate(texts, strong_model=strong, weak_model=weak)

    def win_rates(self, texts: Sequence[str]) -> np.ndarray:
        """The router's win rates of this pair for ``texts``, with no failure policy (for
        evaluation: a router failure raises).

        Example:
            >>> rates = Pool.pair(strong="a", weak="b", threshold=0.5).win_rates(["hi", "Prove it."])
            >>> rates.shape, bool(((rates >= 0) & (rates <= 1)).all())
            ((2,), True)
        """
        router = self._load()
        self._check_loaded(router)
        return self._score(router, validate_texts(texts))

    def _decide(self, router: Any, score: Any, setting: PairSetting) -> Decision:
        threshold = pair_threshold(router, setting, warned=self._warned_thresholds, stacklevel=3)
        return Decision.by_threshold(float(score), threshold, self.models, router=router.name)

    def _failed(self, exc: BaseException, setting: PairSetting, router: Any) -> Decision:
        t = setting.threshold
        if router is not None:
            try:
                t = pair_threshold(router, setting, warned=self._warned_thresholds, stacklevel=3)
            except Exception:  # a router without a calibration table: the threshold is unknown
                t = None
        return Decision(router=router.name if router is not None else self.router_name, win_rate=None,
                        threshold=math.nan if t is None else t, **self._failure_fields(exc))

    def __repr__(self) -> str:
        t, f = self.default_setting
        rule = f"threshold={t}" if t is not None else f"strong_fraction={f}" if f is not None else "calibrated 50%"
        return f"PairPool(router={self.router_name!r}, strong={self.models['strong']!r}, " \
               f"weak={self.models['weak']!r}, {rule})"


class NWayPool(Pool[NWaySetting]):
    """N models under Tryage's utility rule; see :meth:`Pool.of`.

    The router is loaded at once (``None`` / ``"default"``: the embedded N-way default, once per
    process) to check that it knows every name. Constraint values come from ``costs`` (a
    ``"cost"`` constraint), ``constraints`` (keyed by the user's names) or the router's own table.
    """

    rule = "utility"
    setting_names = ("lambdas",)

    def __init__(self, router: RouterSpec, names: Sequence[str], *, lambdas: Mapping[str, float] | None = None,
                 costs: Mapping[str, float] | None = None, constraints: Sequence[Any] | None = None,
                 failure_policy: str | None = None, fallback: Any = "auto",
                 aliases: Mapping[str, str] | None = None, runs: Mapping[str, str | None] | None = None,
                 prices: Any = None) -> None:
        from routellm_core.nway.base import NWayRouter
        from routellm_core.nway.constraints import Constraint, check_lambdas

        if isinstance(names, (str, bytes)) or len(names) < 2:
            raise ValueError(f"route among at least two models, got {names!r}")
        self._settings = {"names": names, "lambdas": lambdas, "costs": costs, "constraints": constraints,
                          "failure_policy": failure_policy, "fallback": fallback, "aliases": aliases,
                          "runs": runs, "prices": prices}
        names = list(names)
        if len(set(names)) != len(names):
            raise ValueError(f"a model name appears twice: {names}")
        super().__init__({n: n for n in names}, reference=names[0], failure_policy=failure_policy,
                         fallback=fallback)
        self.aliases = _check_aliases(aliases, names)
        router = _live(check_router_spec(router))
        if router is None or isinstance(router, (str, os.PathLike)):
            router = shared_router(router or "default", nway=True)
        if not isinstance(router, NWayRouter):
            raise TypeError(f"several models need an N-way router (routellm_core.nway.load_nway_router); "
                            f"{router.name!r} is a {type(router).__name__}: route two models with strong=/weak=")
        self.router = router
        self.runs = {n: r for n, r in dict(runs or {}).items() if r}
        self.canonical = [self._router_model(router, n) for n in names]
        if len(set(self.canonical)) != len(self.canonical):
            raise ValueError(f"two names map onto the same model of the router: {dict(zip(names, self.canonical))}")
        if constraints is not None and costs is not None:
            raise ValueError("give constraints or costs, not both")
        if costs is not None:
            constraints = [Constraint("cost", dict(costs))]
        self.unpriced: list[str] = []  # names whose own price is unknown, so the router's cost is not theirs
        if constraints is None:
            self.constraints = self._own_constraints(router, names, prices, Constraint)
        else:
            self.constraints = [self._rekey(c, Constraint) for c in constraints]
        for c in self.constraints:
            c.raw(self.canonical)  # every routed model needs a value
        self._check_lambdas = check_lambdas
        if self.unpriced and lambdas is not None and lambdas.get("cost"):
            raise ValueError(self._no_cost_message())
        self.default_setting = NWaySetting(check_lambdas(lambdas, self.constraints))
        self._cols = [router.known_models.index(c) for c in self.canonical]

    def _router_model(self, router: Any, name: str) -> str:
        """The router's model for the user's ``name``: its alias, else the first of the name, the
        model it runs (``runs``) and the name's part before ``"@"`` that the router knows."""
        if name in self.aliases:
            return str(router.resolve_model(self.aliases[name]))
        from routellm_core.data.schema import canonical_model_name
        from routellm_core.routers.base import UnknownModelError

        known = list(router.known_models)
        tried = [name, *(c for c in (self.runs.get(name), base_model(name)) if c and c != name)]
        for candidate in tried:
            canonical = canonical_model_name(candidate, router.aliases)
            if canonical in known:
                return canonical
        close = difflib.get_close_matches(canonical_model_name(name), known, n=3, cutoff=0.5)
        hint = f" (close: {', '.join(repr(c) for c in close)})" if close else ""
        runs = f" (nor is {self.runs[name]!r}, the model it runs)" if self.runs.get(name) not in (None, name) else ""
        raise UnknownModelError(
            f"model {name!r} is unknown to this {router.router_type} router{runs}{hint}; known "
            f"models: {sorted(known)}. Say which known model it stands for with aliases={{{name!r}: ...}}: it is "
            "then scored as that model and still priced as your own")

    def _own_constraints(self, router: Any, names: Sequence[str], prices: Any,
                         constraint_type: type[Constraint]) -> list[Constraint]:
        """The router's constraints, with the ``"cost"`` of every aliased name (a model the
        router only scores as another) taken from the name's own price (``prices``, through its
        ``price_as`` names, else genai-prices), never the alias target's: without such a price,
        the pool has no ``"cost"`` constraint (a warning says so)."""
        from routellm_core.costs import PriceSource

        source = prices if isinstance(prices, PriceSource) else PriceSource(prices)
        out: list[Constraint] = []
        for c in router.constraints_:
            if c.name != "cost":
                out.append(c)
                continue
            tokens = {"input_tokens": int(c.meta.get("input_tokens", 500)),
                      "output_tokens": int(c.meta.get("output_tokens", 500))}
            values = dict(c.values)
            for name, canonical in zip(names, self.canonical):
                if name not in self.aliases:
                    continue  # the router's own model (by its name or the one it runs), at the router's price
                own = source.known_cost(name, **tokens)
                if own is None:
                    self.unpriced.append(name)
                else:
                    values[canonical] = float(own)
            if self.unpriced:
                warnings.warn(self._no_cost_message(), RoutingSettingWarning, stacklevel=4)
                continue
            out.append(constraint_type(c.name, values, normalize=c.normalize, unit=c.unit, meta=c.meta))
        return out

    def _no_cost_message(self) -> str:
        names = ", ".join(repr(n) for n in self.unpriced)
        return (f"no price for {names}: the pool has no 'cost' constraint, since the router's price of the model "
                f"it stands for is not its own. Give prices={{{self.unpriced[0]!r}: (input_per_million, "
                "output_per_million)}, or costs={name: dollars per call} for every model")

    def _rekey(self, c: Any, constraint_type: type[Constraint]) -> Constraint:
        if not isinstance(c, constraint_type):
            raise TypeError(f"constraints must be Constraint objects, got {type(c).__name__}")
        unknown = [k for k in c.values if k not in self.models]
        if unknown:
            raise ValueError(f"constraint {c.name!r} has values for {unknown}, which are not among the "
                             f"models {list(self.models)}")
        values = {self.canonical[list(self.models).index(k)]: v for k, v in c.values.items()}
        return constraint_type(c.name, values, normalize=c.normalize, unit=c.unit, meta=c.meta)

    @property
    def router_name(self) -> str:
        return self.router.name

    def _load(self) -> Any:
        return self.router

    def setting(self, *, threshold: float | None = None, strong_fraction: float | None = None,
                lambdas: Mapping[str, float] | None = None) -> NWaySetting:
        """The :class:`NWaySetting` of a call: its lambdas, checked against the constraints
        (``None``: the pool's own).

        Example:
            >>> pool = Pool.of("default", ["llama-3.1-8b-instruct", "gemma-2-9b-it"], lambdas={"cost": 0.2})
            >>> pool.setting().lambdas, pool.setting(lambdas={"cost": 1.0}).lambdas
            ({'cost': 0.2}, {'cost': 1.0})
        """
        if self.unpriced and isinstance(lambdas, Mapping) and lambdas.get("cost"):
            raise ValueError(self._no_cost_message())
        given = [k for k, v in (("threshold", threshold), ("strong_fraction", strong_fraction)) if v is not None]
        if given:
            raise ValueError(f"{given[0]} applies to a strong/weak pair; a pool of models is routed by "
                             "lambdas (constraint weights, e.g. {'cost': 0.2})")
        if lambdas is None:
            return self.default_setting
        if not isinstance(lambdas, Mapping):
            raise TypeError(f"lambdas must be a mapping {{constraint name: weight}}, got {type(lambdas).__name__}")
        return NWaySetting(self._check_lambdas(lambdas, self.constraints))

    def _score(self, router: Any, texts: list[str]) -> np.ndarray:
        return router.predict_quality(texts)[:, self._cols]

    def _decide(self, router: Any, score: Any, setting: NWaySetting) -> Decision:
        from routellm_core.nway.objective import select

        idx, util = select(np.asarray(score)[None, :], self.canonical, self.constraints, setting.lambdas)
        return Decision.by_utility(int(idx[0]), score, util[0], self.models, setting.lambdas, router=router.name)

    def _failed(self, exc: BaseException, setting: NWaySetting, router: Any) -> Decision:
        return Decision(router=self.router.name, lambdas=dict(setting.lambdas), **self._failure_fields(exc))

    def __repr__(self) -> str:
        return (f"NWayPool(router={self.router.name!r}, names={list(self.models)}, "
                f"lambdas={self.default_setting.lambdas})")


def _pair_setting(threshold: float | None, strong_fraction: float | None, lambdas: Any) -> PairSetting | None:
    """The checked setting of a pair's call, or ``None`` when neither threshold nor
    strong_fraction is given; lambdas (a pool's setting) and both at once are errors."""
    if lambdas is not None:
        raise ValueError("lambdas apply to a pool of models (models={...}); a strong/weak pair is routed "
                         "by threshold or strong_fraction")
    if threshold is not None and strong_fraction is not None:
        raise ValueError("give one of threshold or strong_fraction, not both")
    if threshold is not None:
        return PairSetting(threshold=check_threshold(threshold))
    if strong_fraction is not None:
        return PairSetting(strong_fraction=check_strong_fraction(strong_fraction))
    return None


def _refusal(exc: BaseException, message: str) -> Exception:
    """``message`` as an exception of ``exc``'s type when that is a ``ValueError`` or
    ``TypeError`` taking a message (e.g. ``EncoderMismatchError``), else a ``ValueError``."""
    if isinstance(exc, (ValueError, TypeError)):
        try:
            return type(exc)(message)
        except Exception:  # a constructor that wants more than a message
            pass
    return ValueError(message)


def _check_aliases(aliases: Mapping[str, str] | None, names: Sequence[str],
                   routes: Mapping[str, str] | None = None) -> dict[str, str]:
    """``aliases`` keyed by the models' names; a key may also be a route (``"strong"``), taken
    as the name of the model on it. An unknown key is an error naming the close matches."""
    if aliases is None:
        return {}
    if not isinstance(aliases, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in aliases.items()):
        raise TypeError(f"aliases must map model names to names the router knows, got {aliases!r}")
    routes = routes or {}
    out: dict[str, str] = {}
    unknown = []
    for k, v in aliases.items():
        if k in names:
            out[k] = v
        elif k in routes:
            out[routes[k]] = v
        else:
            unknown.append(k)
    if unknown:
        close = difflib.get_close_matches(unknown[0], [*names, *routes], n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"aliases for {unknown}, which are not among the routed models {list(names)}{hint}")
    return out


def make_pool(*, strong: str | None = None, weak: str | None = None, models: Sequence[str] | None = None,
              router: RouterSpec = None, threshold: float | None = None, strong_fraction: float | None = None,
              lambdas: Mapping[str, float] | None = None, costs: Mapping[str, float] | None = None,
              constraints: Sequence[Any] | None = None, failure_policy: str | None = None,
              fallback: Any = "auto", aliases: Mapping[str, str] | None = None,
              runs: Mapping[str, str | None] | None = None, prices: Any = None) -> Pool:
    """The pool of an adapter's settings: ``strong`` and ``weak`` names (a pair) or ``models``
    names (a pool), with the settings of that rule; settings of the other rule are errors.
    ``runs`` (``{name: the model it runs}``) and ``prices`` (a ``PriceSource`` or a table) tell
    a pool which router model each name is and what it costs (see :mod:`routellm_core.naming`).

    Example:
        >>> make_pool(strong="gpt-4o", weak="gpt-4o-mini", strong_fraction=0.3).routes
        ('strong', 'weak')
        >>> make_pool(models=["a", "b"], threshold=0.5)
        Traceback (most recent call last):
        ...
        ValueError: threshold and strong_fraction apply to a strong/weak pair; several models are routed by lambdas
    """
    if models is None:
        if strong is None or weak is None:
            raise ValueError("give strong= and weak= models, or models={name: model}")
        pool_only = sorted(k for k, v in (("lambdas", lambdas), ("costs", costs), ("constraints", constraints))
                           if v is not None)
        if pool_only:
            raise ValueError(f"{pool_only} apply to several models: pass models={{...}}, not strong/weak")
        return Pool.pair(router, strong=strong, weak=weak, threshold=threshold, strong_fraction=strong_fraction,
                         failure_policy=failure_policy, fallback=fallback, aliases=aliases)
    if strong is not None or weak is not None:
        raise ValueError("give models={...} or strong=/weak=, not both")
    if threshold is not None or strong_fraction is not None:
        raise ValueError("threshold and strong_fraction apply to a strong/weak pair; several models are "
                         "routed by lambdas")
    return Pool.of(router, list(models), lambdas=lambdas, costs=costs, constraints=constraints,
                   failure_policy=failure_policy, fallback=fallback, aliases=aliases, runs=runs, prices=prices)


__all__ = [
    "DEFAULT_STRONG_FRACTION",
    "NWayPool",
    "PairPool",
    "Pool",
    "RoutingSettingWarning",
    "Setting",
    "check_router_spec",
    "fresh_router",
    "make_pool",
    "shared_router",
    "warn_one_sided",
]
