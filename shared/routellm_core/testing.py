"""A conformance check for routers, in the spirit of scikit-learn's ``check_estimator``.

:func:`check_router` runs a new router (binary or N-way) through the conventions every router
keeps, and raises an ``AssertionError`` naming the first one it breaks:

- the scoring and learning hooks are abstract on the base, so a subclass that forgets one
  fails at instantiation (Python's ``TypeError``), and the router implements them all;
- ``__init__`` only stores its keyword arguments, each with a default, unchanged; ``seed`` is
  one of them (``fit`` takes none);
- no learned state (attributes ending in ``_``) before ``fit``; using the router then raises
  :class:`~routellm_core.estimator.NotFittedError`;
- ``get_params`` / ``set_params`` (an unknown name is a ``ValueError`` naming it) /
  :func:`~routellm_core.estimator.clone` (a new, unfitted router with the same parameters);
- ``fit`` returns the router, sets every attribute of ``fitted_attributes`` and leaves the
  parameters alone; scoring mutates no attribute (a router is shared by many threads);
- saving and loading through :mod:`routellm_core.checkpoints` gives a router of the same class
  and parameters with the same scores.

Example:
    >>> from routellm_core.data.schema import make_battles
    >>> from routellm_core.routers import RandomRouter
    >>> battles = make_battles([{"query": "hi", "model_a": "big", "model_b": "small",
    ...                          "winner": "b", "source": "doc"}])
    >>> check_router(lambda: RandomRouter(seed=0), battles)
"""

from __future__ import annotations

import inspect
import tempfile
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.checkpoints import CheckpointError, load_router, save_router
from routellm_core.data.schema import ScoreMatrix
from routellm_core.estimator import EstimatorParams, NotFittedError, clone, is_fitted
from routellm_core.nway.base import NWayRouter
from routellm_core.routers.base import Router

__all__ = ["HOOKS", "SampleData", "check_router", "sample_data"]

# The hooks a router implements, abstract on its base.
HOOKS: dict[type, tuple[str, ...]] = {
    Router: ("fit", "_win_rate"),
    NWayRouter: ("fit", "predict_quality_embeddings"),
}
SAMPLE_FILE = "llmrouter_9model_gold/dcrouter_preprocessed__test.json"
UNSEEN = ["Prove that the square root of 3 is irrational.", "Say hello to my friend."]


@dataclass
class SampleData:
    """A small real training sample: a score matrix of three models and its battles.

    ``strong_model`` / ``weak_model`` are the best and worst of the three on the sample.
    """

    matrix: ScoreMatrix
    battles: pd.DataFrame
    strong_model: str
    weak_model: str


def sample_data(
    n_queries: int = 40, *, data_dir: str | Path | None = None, file: str = SAMPLE_FILE
) -> SampleData:
    """``n_queries`` queries spread over a gold score file of the shared data, with the best,
    a middle and the worst model on them.

    ``data_dir`` defaults to ``$ROUTELLM_DATA_DIR``; without one, a ``FileNotFoundError``
    says to set it or to pass data to :func:`check_router`.
    """
    from routellm_core.data.specs import default_data_dir, load_matrix

    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if root is None or not (root / file).is_file():
        raise FileNotFoundError(
            f"no sample data: {file} not found under {root or '$ROUTELLM_DATA_DIR (unset)'}; "
            "set ROUTELLM_DATA_DIR to the shared data, or pass data= to check_router"
        )
    full = load_matrix(f"gold:{root / file}")
    rows = np.unique(np.linspace(0, len(full) - 1, min(n_queries, len(full))).astype(int))
    part = full.subset(rows)
    mean = np.nanmean(part.scores, axis=0)
    order = np.argsort(-mean, kind="stable")
    cols = [int(order[0]), int(order[len(order) // 2]), int(order[-1])]
    matrix = ScoreMatrix(
        part.queries, [part.models[c] for c in cols], part.scores[:, cols], source=part.source
    )
    return SampleData(matrix, matrix.to_battles(), matrix.models[0], matrix.models[2])


def check_router(
    router: EstimatorParams | Callable[[], EstimatorParams],
    data: pd.DataFrame | ScoreMatrix | None = None,
    *,
    texts: Sequence[str] | None = None,
    fit_params: Mapping[str, Any] | None = None,
    atol: float = 1e-6,
) -> None:
    """Check that a router keeps the conventions of the module docstring.

    Args:
        router: an unfitted router, or a function that returns one (called more than once).
        data: what its ``fit`` learns from: a battles frame (binary routers) or a
            :class:`~routellm_core.data.schema.ScoreMatrix` (N-way); default
            :func:`sample_data` (a binary router is then set to the sample's pair).
        texts: queries to score (default: a few of the training queries and two unseen ones).
        fit_params: extra keyword arguments for ``fit``.
        atol: how far scores after a checkpoint round trip may differ.

    Raises:
        AssertionError: naming the router and the convention it breaks.
    """
    make = router if callable(router) and not isinstance(router, EstimatorParams) else None
    first = make() if make is not None else router
    if not isinstance(first, (Router, NWayRouter)):
        raise TypeError(f"check_router() needs a Router or an NWayRouter, got {type(first).__name__}")
    label = f"{type(first).__name__} ({first.router_type or 'no router_type'})"
    pair: dict[str, str] = {}
    if data is None:
        sample = sample_data()
        if isinstance(first, NWayRouter):
            data = sample.matrix
        else:
            data = sample.battles
            pair = {"strong_model": sample.strong_model, "weak_model": sample.weak_model}

    def fresh() -> Any:
        new = make() if make is not None else clone(first)
        return new.set_params(**pair)
    if texts is None:
        queries = data.queries if isinstance(data, ScoreMatrix) else list(dict.fromkeys(data["query"]))
        texts = [*queries[:3], *UNSEEN]
    texts = list(texts)
    checks = [
        ("hooks are abstract", lambda: _check_hooks(type(first))),
        ("parameters only in __init__", lambda: _check_init(fresh())),
        ("not fitted before fit", lambda: _check_unfitted(fresh(), texts)),
        ("get_params / set_params", lambda: _check_set_params(fresh())),
        ("fit, clone and checkpoints", lambda: _check_fit(fresh(), data, texts, fit_params or {}, atol)),
    ]
    for name, check in checks:
        try:
            check()
        except AssertionError as exc:
            raise AssertionError(f"{label} fails '{name}': {exc}") from exc


# ----------------------------------------------------------------------------- the checks
def _base_of(cls: type) -> type:
    return Router if issubclass(cls, Router) else NWayRouter


def _check_hooks(cls: type) -> None:
    base = _base_of(cls)
    hooks = HOOKS[base]
    missing = [h for h in hooks if h not in base.__abstractmethods__]  # type: ignore[attr-defined]
    assert not missing, f"{base.__name__} does not declare {missing} abstract"
    left = sorted(getattr(cls, "__abstractmethods__", ()))
    assert not left, f"abstract methods left unimplemented: {left}"
    for hook in hooks:
        # a subclass that drops the hook cannot be instantiated
        forgetful = type(f"Forgets{hook}", (cls,), {hook: abstractmethod(_dropped)})
        try:
            forgetful()
        except TypeError as exc:
            assert hook in str(exc), f"forgetting {hook} raised an unrelated TypeError: {exc}"
        else:
            raise AssertionError(f"a subclass without {hook} could be instantiated")


def _dropped(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def _check_init(router: Any) -> None:
    cls = type(router)
    names = cls._param_names()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if klass is object or init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            assert p.kind == p.KEYWORD_ONLY, (
                f"{klass.__name__}.__init__ takes {p.name!r} positionally; parameters are keyword-only"
            )
            assert p.default is not p.empty, f"parameter {p.name!r} has no default"
    assert "seed" in names, "seed is not a constructor parameter"
    assert "seed" not in inspect.signature(cls.fit).parameters, "fit() takes seed; it is a parameter"
    public = sorted(k for k in vars(router) if not k.startswith("_"))
    extra = [k for k in public if k not in names]
    assert not extra, f"__init__ sets attributes that are not parameters: {extra}"
    learned = sorted(k for k in vars(router) if k.endswith("_") and not k.startswith("__"))
    assert not learned, f"__init__ sets learned state: {learned}"
    # every argument is stored as given: the very object, under its own name
    given = {name: _marker(getattr(router, name)) for name in names}
    twin = cls(**given)
    changed = [n for n in names if getattr(twin, n) is not given[n]]
    assert not changed, f"__init__ does not store these arguments unchanged: {changed}"
    params = router.get_params()
    assert sorted(params) == sorted(names), f"get_params() keys {sorted(params)} != {sorted(names)}"
    again = cls(**params).get_params()
    assert again == params, f"constructing from get_params() changes them: {params} -> {again}"


def _marker(value: Any) -> Any:
    """An equal value that is a distinct object where Python allows it (to test identity)."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


def _check_unfitted(router: Any, texts: list[str]) -> None:
    assert router.calibration_ is None and router.card_ is None, (
        "calibration_ and card_ must read None before fit or loading"
    )
    if not type(router).fitted_attributes:
        assert is_fitted(router), "a router with nothing to learn must count as fitted"
        return
    assert not is_fitted(router), "counts as fitted before fit()"
    for what, call in [
        ("known_models", lambda: router.known_models),
        ("scoring", lambda: _scores(router, texts)),
    ]:
        try:
            call()
        except NotFittedError:
            continue
        raise AssertionError(f"{what} before fit() does not raise NotFittedError")


def _check_set_params(router: Any) -> None:
    params = router.get_params()
    assert router.set_params(**params) is router, "set_params() does not return the router"
    assert router.get_params() == params, "set_params(**get_params()) changes the parameters"
    assert router.set_params(seed=12345).seed == 12345, "set_params(seed=...) does not set seed"
    try:
        router.set_params(no_such_parameter=1)
    except ValueError as exc:
        assert "no_such_parameter" in str(exc) and "seed" in str(exc), (
            f"the error for an unknown parameter names neither it nor the valid ones: {exc}"
        )
    else:
        raise AssertionError("set_params() accepts an unknown parameter")
    copy = clone(router)
    assert type(copy) is type(router) and copy is not router, "clone() is not a new router of its class"
    assert copy.get_params() == router.get_params(), "clone() changes the parameters"


def _check_fit(router: Any, data: Any, texts: list[str], fit_params: Mapping[str, Any], atol: float) -> None:
    params = router.get_params()
    out = router.fit(data, **fit_params)
    assert out is router, "fit() does not return the router"
    missing = [a for a in type(router).fitted_attributes if getattr(router, a, None) is None]
    assert not missing, f"fit() does not set {missing}"
    assert router.get_params() == params, "fit() changes the parameters"
    known = router.known_models
    assert known is None or (isinstance(known, list) and all(isinstance(m, str) for m in known)), (
        f"known_models must be a list of names (or None for any name), got {known!r}"
    )

    copy = clone(router)
    learned = sorted(k for k in vars(copy) if k.endswith("_") and not k.startswith("__"))
    assert not learned and copy.get_params() == params, f"clone() keeps learned state {learned}"

    with tempfile.TemporaryDirectory(prefix="routellm-check-") as tmp:
        try:
            path = save_router(router, Path(tmp) / "router")
            loaded = load_router(path, encoder=router.encoder if router.uses_encoder else None)
        except CheckpointError as exc:
            raise AssertionError(f"the checkpoint does not save and load: {exc}") from exc
        assert type(loaded) is type(router), f"loading gives a {type(loaded).__name__}"
        assert loaded.get_params() == params, (
            f"loading changes the parameters: {params} -> {loaded.get_params()}"
        )
        assert is_fitted(loaded), "a loaded router does not count as fitted"
        assert loaded.known_models == known, "known_models differ after loading"
        before = _attributes(router)
        scores = _scores(router, texts)
        assert _attributes(router) == before, "scoring changes the router's attributes"
        again = _scores(loaded, texts)
    _check_scores(router, scores, texts)
    np.testing.assert_allclose(again, scores, atol=atol, err_msg="scores differ after save and load")


def _attributes(router: Any) -> dict[str, int]:
    return {k: id(v) for k, v in vars(router).items()}


def _scores(router: Any, texts: list[str]) -> np.ndarray:
    if isinstance(router, NWayRouter):
        return router.predict_quality(texts)
    return router.win_rate(texts)


def _check_scores(router: Any, scores: np.ndarray, texts: list[str]) -> None:
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float64, (
        f"scores must be a float64 array, got {type(scores).__name__} {getattr(scores, 'dtype', '')}"
    )
    if isinstance(router, NWayRouter):
        assert scores.shape == (len(texts), len(router.known_models)), f"scores have shape {scores.shape}"
    else:
        assert scores.shape == (len(texts),), f"win rates have shape {scores.shape}"
        assert ((scores >= 0) & (scores <= 1)).all(), f"win rates outside [0, 1]: {scores}"
    assert np.isfinite(scores).all(), f"non-finite scores: {scores}"
