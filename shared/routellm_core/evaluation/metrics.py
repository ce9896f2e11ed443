"""Routing metrics of the RouteLLM paper: the cost-quality curve, PGR, APGR and CPT.

Semantics follow RouteLLM's ``routellm/evals/benchmarks.py`` and ``evaluate.py``: thresholds are
the ``num_results + 1`` decile edges of the router's own win rates (``pd.qcut``), a query goes
to the strong model when ``win_rate >= threshold`` (``>`` for the last edge, so the curve ends
at 0 % strong calls), and APGR is the trapezoid area under the curve normalised between the
weak and strong models' constant lines.

Example:
    >>> import numpy as np
    >>> from routellm_core.evaluation import apgr, cpt, routing_curve
    >>> strong = np.array([1, 1, 1, 0]); weak = np.array([0, 1, 0, 0])
    >>> curve = routing_curve([0.9, 0.1, 0.6, 0.3], strong, weak, num_results=4, scale=100)
    >>> [(p.strong_share, p.score) for p in curve]
    [(1.0, 75.0), (0.75, 75.0), (0.5, 75.0), (0.25, 50.0), (0.0, 25.0)]
    >>> round(apgr(curve, 75.0, 25.0), 4)
    0.75
    >>> cpt(curve, 0.5, 75.0, 25.0)
    0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from routellm_core.evaluation.benchmarks import Benchmark

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class CurvePoint:
    """One threshold of a routing curve.

    Attributes:
        threshold: win-rate threshold.
        strong_share: fraction of queries sent to the strong model, in [0, 1].
        score: mean score of the routed answers, times the curve's ``scale``.
    """

    threshold: float
    strong_share: float
    score: float

    def to_dict(self) -> dict[str, float]:
        """The point as a JSON-ready mapping."""
        return asdict(self)


def _vector(values: ArrayLike, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} values; expected {n}, one per query")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _inputs(
    win_rates: ArrayLike, strong_scores: ArrayLike, weak_scores: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = _vector(win_rates, "win_rates")
    strong = _vector(strong_scores, "strong_scores", w.size)
    return w, strong, _vector(weak_scores, "weak_scores", w.size)


def decile_thresholds(win_rates: ArrayLike, num_results: int = 10) -> np.ndarray:
    """The ``num_results + 1`` bin edges ``pd.qcut(win_rates, num_results)`` would return.

    Unlike ``pd.qcut`` (which raises on them, as the paper's call does), duplicate edges are
    kept, so the curve always has ``num_results + 1`` points.

    Example:
        >>> decile_thresholds([0.1, 0.2, 0.2, 0.2, 0.9], 4).tolist()
        [0.1, 0.2, 0.2, 0.2, 0.9]
    """
    if not isinstance(num_results, (int, np.integer)) or num_results < 1:
        raise ValueError(f"num_results must be a positive integer, got {num_results!r}")
    w = _vector(win_rates, "win_rates")
    # Exactly qcut's edges as in pandas 2 (the paper's): Series.quantile at linspace(0, 1, q+1).
    return pd.Series(w).quantile(np.linspace(0, 1, num_results + 1)).to_numpy(dtype=float)


def routing_curve(
    win_rates: ArrayLike,
    strong_scores: ArrayLike,
    weak_scores: ArrayLike,
    *,
    num_results: int = 10,
    scale: float = 1.0,
) -> list[CurvePoint]:
    """The paper's cost-quality curve: one point per decile edge of ``win_rates``.

    At edge ``t`` a query goes strong when ``win_rate >= t``; at the last edge when
    ``win_rate > t``. ``score`` is ``scale`` times the mean routed score (pass ``scale=100`` for
    0/1 correctness to get percent accuracy, as the paper prints). Points come in threshold
    order, i.e. from 100 % strong calls down to 0 %.

    Example:
        >>> pts = routing_curve([0.2, 0.8], [1, 1], [0, 1], num_results=1)
        >>> [(p.threshold, p.strong_share, p.score) for p in pts]
        [(0.2, 1.0, 1.0), (0.8, 0.0, 0.5)]
    """
    w, strong, weak = _inputs(win_rates, strong_scores, weak_scores)
    edges = decile_thresholds(w, num_results)
    points = []
    for i, t in enumerate(edges):
        selection = w > t if i == len(edges) - 1 else w >= t
        routed = np.where(selection, strong, weak)
        points.append(
            CurvePoint(float(t), float(selection.mean()), float(scale * routed.mean()))
        )
    return points


def fine_curve(
    win_rates: ArrayLike,
    strong_scores: ArrayLike,
    weak_scores: ArrayLike,
    *,
    points: int = 101,
    scale: float = 1.0,
) -> list[CurvePoint]:
    """A denser :func:`routing_curve` for plots: thresholds at ``points`` evenly spaced quantiles.

    Example:
        >>> len(fine_curve(np.linspace(0, 1, 500), np.ones(500), np.zeros(500)))
        101
    """
    if not isinstance(points, (int, np.integer)) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")
    return routing_curve(
        win_rates, strong_scores, weak_scores, num_results=int(points) - 1, scale=scale
    )


def pgr(score: float, strong_score: float, weak_score: float) -> float:
    """Performance gap recovered: ``(score - weak) / (strong - weak)``.

    Example:
        >>> pgr(75.0, 80.0, 70.0)
        0.5
    """
    if strong_score == weak_score:
        raise ValueError(f"PGR is undefined when strong and weak scores are equal ({strong_score})")
    return (score - weak_score) / (strong_score - weak_score)


def _sorted_xy(curve: Sequence[CurvePoint]) -> tuple[np.ndarray, np.ndarray]:
    if len(curve) == 0:
        raise ValueError("the curve has no points")
    pts = sorted(curve, key=lambda p: p.strong_share)
    return (
        np.array([p.strong_share for p in pts], dtype=float),
        np.array([p.score for p in pts], dtype=float),
    )


def apgr(curve: Sequence[CurvePoint], strong_score: float, weak_score: float) -> float:
    """Average PGR: trapezoid area of score over strong share, normalised as the paper's code.

    ``(auc - weak_auc) / (strong_auc - weak_auc)`` where ``weak_auc`` and ``strong_auc`` are the
    areas of the constant weak and strong scores over the curve's own share range.

    Example:
        >>> pts = [CurvePoint(0.9, 0.0, 70.0), CurvePoint(0.1, 1.0, 80.0)]
        >>> apgr(pts, 80.0, 70.0)
        0.5
    """
    x, y = _sorted_xy(curve)
    auc = np.trapezoid(y, x)
    weak_auc = np.trapezoid(np.full_like(x, weak_score), x)
    strong_auc = np.trapezoid(np.full_like(x, strong_score), x)
    if strong_auc == weak_auc:
        raise ValueError(
            "APGR is undefined: strong and weak scores are equal or the curve spans no share range"
        )
    return float((auc - weak_auc) / (strong_auc - weak_auc))


def cpt(
    curve: Sequence[CurvePoint],
    pgr_target: float,
    strong_score: float,
    weak_score: float,
    *,
    interpolate: bool = True,
) -> float | None:
    """Call-performance threshold: the least strong share reaching ``pgr_target`` of the gap.

    The target score is ``weak + pgr_target * (strong - weak)``. With ``interpolate`` the curve
    is read as piecewise linear between its points sorted by share, and the share where it
    first reaches the target is returned: on a curve whose score rises with the share this is
    what RouteLLM's ``evaluate.py`` prints (``np.interp`` of the target over the scores);
    ``np.interp`` assumes rising scores, while this takes the first crossing on any curve.
    Without ``interpolate``, the smallest share among the points whose score reaches the
    target (a coarser, decile-step figure). ``None`` if never reached.
    The share is a fraction in [0, 1].

    Example:
        >>> pts = [CurvePoint(0.9, 0.0, 70.0), CurvePoint(0.5, 0.5, 72.0),
        ...        CurvePoint(0.1, 1.0, 80.0)]
        >>> cpt(pts, 0.5, 80.0, 70.0), cpt(pts, 0.5, 80.0, 70.0, interpolate=False)
        (0.6875, 1.0)
    """
    if strong_score == weak_score:
        raise ValueError(f"CPT is undefined when strong and weak scores are equal ({strong_score})")
    x, y = _sorted_xy(curve)
    target = weak_score + pgr_target * (strong_score - weak_score)
    reached = np.flatnonzero(y >= target)
    if reached.size == 0:
        return None
    if not interpolate:
        return float(x[reached].min())
    j = int(reached[0])
    if j == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
    return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))


def optimal_score(
    strong_share: float,
    strong_scores: ArrayLike,
    weak_scores: ArrayLike,
    *,
    scale: float = 1.0,
) -> float:
    """Best score any router could reach with ``strong_share`` of the calls going strong.

    The oracle sends strong the queries where the strong model gains most over the weak one
    (only where it gains). With 0/1 scores this is the paper's ``get_optimal_accuracy``:
    ``(weak correct + min(n * share, #weak wrong & strong right)) / n``.

    Example:
        >>> optimal_score(0.25, [1, 1, 1, 0], [0, 1, 0, 0], scale=100)
        50.0
    """
    if not 0.0 <= strong_share <= 1.0:
        raise ValueError(f"strong_share must lie in [0, 1], got {strong_share}")
    strong = _vector(strong_scores, "strong_scores")
    weak = _vector(weak_scores, "weak_scores", strong.size)
    gains = np.sort(np.clip(strong - weak, 0.0, None))[::-1]
    calls = strong_share * strong.size
    whole = int(np.floor(calls))
    gained = gains[:whole].sum()
    if whole < gains.size:
        gained += (calls - whole) * gains[whole]
    return float(scale * (weak.sum() + gained) / strong.size)


def random_baseline(
    strong_scores: ArrayLike,
    weak_scores: ArrayLike,
    *,
    seeds: int = 10,
    num_results: int = 10,
    scale: float = 1.0,
) -> dict[str, Any]:
    """The random router: uniform win rates, curve averaged point by point over ``seeds`` runs.

    Returns ``{"curve", "apgr", "cpt50", "cpt80"}``, the metrics taken on the averaged curve
    (seeds ``0 .. seeds-1`` of ``numpy.random.default_rng``, so results are reproducible).

    Example:
        >>> rng = np.random.default_rng(2024)
        >>> s, w = rng.random(2000) < 0.8, rng.random(2000) < 0.4
        >>> abs(random_baseline(s, w)["apgr"] - 0.5) < 0.05
        True
    """
    if not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    strong = _vector(strong_scores, "strong_scores")
    weak = _vector(weak_scores, "weak_scores", strong.size)
    runs = np.array(
        [
            [
                (p.threshold, p.strong_share, p.score)
                for p in routing_curve(
                    np.random.default_rng(seed).uniform(0.0, 1.0, strong.size),
                    strong, weak, num_results=num_results, scale=scale,
                )
            ]
            for seed in range(seeds)
        ]
    )
    curve = [CurvePoint(*map(float, row)) for row in runs.mean(axis=0)]
    strong_score, weak_score = scale * strong.mean(), scale * weak.mean()
    return {
        "curve": curve,
        "apgr": apgr(curve, strong_score, weak_score),
        "cpt50": cpt(curve, 0.5, strong_score, weak_score),
        "cpt80": cpt(curve, 0.8, strong_score, weak_score),
    }


def pair_outcomes(strong_scores: ArrayLike, weak_scores: ArrayLike) -> np.ndarray:
    """What a win rate predicts, per query: 1 when the strong model scored higher, 0 when the
    weak one did, 0.5 for a tie (both right or both wrong on a correctness benchmark)."""
    s, w = np.asarray(strong_scores, dtype=np.float64), np.asarray(weak_scores, dtype=np.float64)
    return 0.5 + 0.5 * np.sign(s - w)


def reliability(win_rates: ArrayLike, outcomes: ArrayLike, bins: int = 10) -> dict[str, Any]:
    """How well win rates behave as probabilities on labelled queries: the expected
    calibration error over ``bins`` equal-count bins of the win rate (``ece``: the
    count-weighted mean of ``|mean win rate - mean outcome|``), each bin's means, and the spread
    of the win rates (their 5th to 95th percentile).

    Example:
        >>> r = reliability([0.1, 0.2, 0.8, 0.9], [0.0, 0.5, 1.0, 1.0], bins=2)
        >>> round(r["ece"], 3), [b["mean_outcome"] for b in r["bins"]]
        (0.125, [0.25, 1.0])
    """
    w = _vector(win_rates, "win_rates")
    y = _vector(outcomes, "outcomes", len(w))
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    order = np.argsort(w, kind="stable")
    parts = [part for part in np.array_split(order, min(bins, len(w))) if len(part)]
    table = [{"n": int(len(idx)), "mean_win_rate": float(w[idx].mean()), "mean_outcome": float(y[idx].mean())}
             for idx in parts]
    ece = sum(b["n"] * abs(b["mean_win_rate"] - b["mean_outcome"]) for b in table) / len(w)
    return {"ece": float(ece), "bins": table, "win_rate_p05": float(np.percentile(w, 5)),
            "win_rate_p95": float(np.percentile(w, 95)), "mean_outcome": float(y.mean())}


def evaluate_win_rates(
    benchmark: Benchmark,
    win_rates: ArrayLike,
    *,
    router_name: str,
    seeds: int = 10,
    num_results: int = 10,
    fine_points: int = 101,
) -> dict[str, Any]:
    """Score a router's win rates on ``benchmark``; a JSON-ready result with the random baseline.

    CPT values are strong-call shares in [0, 1] (``None`` if the level is never reached);
    ``cpt50``/``cpt80`` interpolate the decile curve (as RouteLLM's ``evaluate.py`` does with
    ``np.interp``), ``cpt50_at_points``/``cpt80_at_points`` are the smallest decile share
    reaching the level.

    Example:
        >>> from routellm_core.evaluation import Benchmark
        >>> b = Benchmark("toy", ["a", "b", "c", "d"], np.array([1, 1, 1, 0]),
        ...               np.array([0, 1, 0, 0]), np.arange(4), "big", "small", 0, 100.0)
        >>> r = evaluate_win_rates(b, [0.9, 0.1, 0.6, 0.3], router_name="toy", num_results=4)
        >>> r["apgr"], r["cpt50"], r["strong_score"], r["weak_score"]
        (0.75, 0.25, 75.0, 25.0)
    """
    w = _vector(win_rates, "win_rates", len(benchmark))
    s, wk, scale = benchmark.strong_scores, benchmark.weak_scores, benchmark.score_scale
    strong_score, weak_score = benchmark.strong_score, benchmark.weak_score
    curve = routing_curve(w, s, wk, num_results=num_results, scale=scale)
    fine = fine_curve(w, s, wk, points=fine_points, scale=scale)
    rand = random_baseline(s, wk, seeds=seeds, num_results=num_results, scale=scale)
    calib = reliability(w, pair_outcomes(s, wk))
    return {
        "benchmark": benchmark.name,
        "router": router_name,
        "n_queries": len(benchmark),
        "strong_model": benchmark.strong_model,
        "weak_model": benchmark.weak_model,
        "n_removed_contaminated": int(benchmark.n_removed_contaminated),
        "score_unit": benchmark.score_unit,
        "strong_score": strong_score,
        "weak_score": weak_score,
        "apgr": apgr(curve, strong_score, weak_score),
        "cpt50": cpt(curve, 0.5, strong_score, weak_score),
        "cpt80": cpt(curve, 0.8, strong_score, weak_score),
        "cpt50_at_points": cpt(curve, 0.5, strong_score, weak_score, interpolate=False),
        "cpt80_at_points": cpt(curve, 0.8, strong_score, weak_score, interpolate=False),
        "random_apgr": rand["apgr"],
        "random_cpt50": rand["cpt50"],
        "random_cpt80": rand["cpt80"],
        "random_seeds": int(seeds),
        "ece": calib["ece"],
        "reliability": calib,
        "curve": [p.to_dict() for p in curve],
        "fine_curve": [p.to_dict() for p in fine],
        "random_curve": [p.to_dict() for p in rand["curve"]],
    }
