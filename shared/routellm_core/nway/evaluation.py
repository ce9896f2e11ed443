"""Evaluate N-way routing on a score matrix: the quality-cost curve as lambda sweeps, and AIQ.

For a test matrix (true scores and per-query costs of every model) and a router's predicted
scores, the cost weight ``lambda`` sweeps from 0 (best predicted quality) to where every query
goes to the cheapest model; each ``lambda`` gives one point (average cost per query, average
quality). Baselines, all on the same queries:

- every single model (always that model);
- *random choice*: sending each query to a model drawn at random, with any mixture of
  probabilities; its best curve is the upper concave hull of the single models' points
  (RouterBench's "zero router");
- the oracle: the best model per query (the cheapest among equals), and its own curve with the
  true scores in the objective.

AIQ follows RouterBench: the area under the non-decreasing concave hull of a curve's points
(mixing two settings at random reaches any point between them), between the cheapest and the
costliest single model's average cost, divided by that cost range.

Example:
    >>> import numpy as np
    >>> from routellm_core.nway.evaluation import evaluate_nway
    >>> scores = np.array([[1, 0], [1, 1], [0, 0], [1, 1.0]])     # 4 queries x (big, small)
    >>> costs = np.array([[1.0, 0.1]] * 4)
    >>> r = evaluate_nway(scores, ["big", "small"], costs, predicted=scores, cost_vector=[1.0, 0.1])
    >>> r["single_models"]["big"]["quality"], r["oracle"]["quality"], round(r["oracle"]["cost"], 6)
    (0.75, 0.75, 0.325)
    >>> r["above_random_everywhere"], round(r["aiq"], 3), round(r["random_aiq"], 3)
    (True, 0.719, 0.625)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.nway.constraints import Constraint
from routellm_core.nway.objective import lambda_breakpoints, select

__all__ = ["aiq", "evaluate_nway", "plot_nway", "upper_hull"]


def upper_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-decreasing upper concave hull of ``(cost, quality)`` points, sorted by cost.

    Example:
        >>> upper_hull([(0, 0.2), (1, 0.3), (2, 0.9), (3, 0.8)])
        [(0.0, 0.2), (2.0, 0.9)]
    """
    pts = sorted({(float(c), float(q)) for c, q in points})
    if not pts:
        raise ValueError("no points")
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    best = max(q for _, q in hull)
    cut = next(i for i, (_, q) in enumerate(hull) if q == best)
    return hull[: cut + 1]


def _hull_value(hull: list[tuple[float, float]], cost: np.ndarray) -> np.ndarray:
    xs = np.array([c for c, _ in hull], dtype=float)
    ys = np.array([q for _, q in hull], dtype=float)
    # flat to the left of the first point and to the right of the last (non-decreasing hull)
    return np.interp(cost, xs, ys, left=ys[0], right=ys[-1])


def aiq(
    points: Sequence[tuple[float, float]],
    c_min: float,
    c_max: float,
    *,
    grid: int = 2001,
) -> float:
    """Area under the upper hull of ``points`` over ``[c_min, c_max]``, divided by ``c_max - c_min``."""
    if not c_max > c_min:
        raise ValueError(f"need c_max > c_min, got {c_min}, {c_max}")
    xs = np.linspace(c_min, c_max, grid)
    return float(
        np.trapezoid(_hull_value(upper_hull(points), xs), xs) / (c_max - c_min)
    )


def _point(
    scores: np.ndarray, costs: np.ndarray, choice: np.ndarray
) -> tuple[float, float]:
    rows = np.arange(len(choice))
    return float(costs[rows, choice].mean()), float(scores[rows, choice].mean())


def _curve(
    pred: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    models: list[str],
    cost_vector: np.ndarray,
) -> list[dict[str, Any]]:
    cons = [Constraint("cost", dict(zip(models, cost_vector.tolist())))]
    norm = cons[0].vector(models)
    out = []
    for lam in lambda_breakpoints(pred, norm):
        choice, _ = select(pred, models, cons, {"cost": float(lam)})
        c, q = _point(scores, costs, choice)
        share = np.bincount(choice, minlength=len(models)) / len(choice)
        out.append(
            {
                "lambda": float(lam),
                "cost": c,
                "quality": q,
                "share": {m: float(s) for m, s in zip(models, share) if s > 0},
            }
        )
    return out


def evaluate_nway(
    scores: np.ndarray,
    models: Sequence[str],
    costs: np.ndarray,
    *,
    predicted: np.ndarray,
    cost_vector: Sequence[float] | np.ndarray,
    router_name: str = "router",
    cost_unit: str = "$ per query",
    data: str = "",
) -> dict[str, Any]:
    """Quality-cost curve of a router on a test matrix, with baselines, AIQ and the done-when checks.

    Args:
        scores: true scores ``(n, m)`` of the test queries (no NaN).
        models: the ``m`` model names.
        costs: realised cost of each model on each query ``(n, m)`` (or a row broadcast to it).
        predicted: the router's scores ``(n, m)`` for the same queries.
        cost_vector: the per-model cost the router weighs (what it knows before the call, e.g.
            the mean cost in its training data or the price table).

    Returns a JSON-ready dict: ``curve`` (one point per lambda), ``single_models``,
    ``random_hull`` (the random-choice frontier), ``oracle``, ``oracle_curve``, ``aiq``,
    ``random_aiq``, ``oracle_aiq``, and the checks: ``above_random_everywhere`` (the router's
    frontier, its upper hull, against the random-choice frontier on a grid of costs from its
    cheapest point to the costliest model; ``min_margin_vs_random`` the smallest gap),
    ``raw_above_random_everywhere`` (every raw curve point in the cost range), and
    ``cost_at_best_single_quality`` (the cheapest curve point as good as the best single model).
    """
    models = list(models)
    s = np.asarray(scores, dtype=np.float64)
    n, m = s.shape if s.ndim == 2 else (0, 0)
    if s.ndim != 2 or m != len(models) or n == 0:
        raise ValueError(
            f"scores must be (n_queries, {len(models)}), got {np.shape(scores)}"
        )
    if np.isnan(s).any():
        raise ValueError(
            "scores contain NaN: evaluate on queries where every model was scored"
        )
    c = np.broadcast_to(np.asarray(costs, dtype=np.float64), s.shape)
    if not np.isfinite(c).all():
        raise ValueError("costs contain NaN or infinite values")
    pred = np.asarray(predicted, dtype=np.float64)
    if pred.shape != s.shape:
        raise ValueError(f"predicted has shape {pred.shape}; expected {s.shape}")
    cv = np.asarray(cost_vector, dtype=np.float64)
    if cv.shape != (m,):
        raise ValueError(f"cost_vector must have {m} values, got shape {cv.shape}")

    singles = {
        name: {"cost": float(c[:, j].mean()), "quality": float(s[:, j].mean())}
        for j, name in enumerate(models)
    }
    single_pts = [(v["cost"], v["quality"]) for v in singles.values()]
    c_min, c_max = min(p[0] for p in single_pts), max(p[0] for p in single_pts)
    random_hull = upper_hull(single_pts)
    uniform = {"cost": float(c.mean()), "quality": float(s.mean())}

    curve = _curve(pred, s, c, models, cv)
    router_pts = [(p["cost"], p["quality"]) for p in curve]
    oracle_curve = _curve(s, s, c, models, cv)
    best_q = s.max(axis=1, keepdims=True)
    oracle_choice = np.where(np.isclose(s, best_q), c, np.inf).argmin(axis=1)
    oc, oq = _point(s, c, oracle_choice)

    in_range = [p for p in router_pts if c_min - 1e-12 <= p[0] <= c_max + 1e-12]
    raw_margins = [
        q - float(_hull_value(random_hull, np.array([cost]))[0]) for cost, q in in_range
    ]
    # the router's attainable frontier (mixing two lambdas reaches any point between them),
    # compared where it exists: from its cheapest point to the costliest single model
    router_hull = upper_hull(router_pts)
    grid = np.linspace(max(c_min, router_hull[0][0]), c_max, 2001)
    margins = (_hull_value(router_hull, grid) - _hull_value(random_hull, grid)).tolist()
    worst = int(np.argmin(margins))
    best_name = max(singles, key=lambda k: (singles[k]["quality"], -singles[k]["cost"]))
    best = singles[best_name]
    reaching = [p for p in router_pts if p[1] >= best["quality"] - 1e-12]
    cost_at_best = min((p[0] for p in reaching), default=None)
    return {
        "router": router_name,
        "data": data,
        "n_queries": int(n),
        "models": models,
        "cost_unit": cost_unit,
        "cost_vector": dict(zip(models, cv.tolist())),
        "curve": curve,
        "single_models": singles,
        "uniform_random": uniform,
        "random_hull": [{"cost": x, "quality": y} for x, y in random_hull],
        "oracle": {"cost": oc, "quality": oq},
        "oracle_curve": [
            {k: p[k] for k in ("lambda", "cost", "quality")} for p in oracle_curve
        ],
        "cost_range": [c_min, c_max],
        "aiq": aiq(router_pts, c_min, c_max),
        "random_aiq": aiq(single_pts, c_min, c_max),
        "oracle_aiq": aiq(
            [(p["cost"], p["quality"]) for p in oracle_curve], c_min, c_max
        ),
        "above_random_everywhere": min(margins) >= -1e-12,
        "min_margin_vs_random": min(margins),
        "min_margin_cost": float(grid[worst]),
        "router_hull": [{"cost": x, "quality": y} for x, y in router_hull],
        "raw_above_random_everywhere": bool(raw_margins) and min(raw_margins) >= -1e-12,
        "raw_min_margin_vs_random": min(raw_margins) if raw_margins else None,
        "raw_min_margin_cost": in_range[int(np.argmin(raw_margins))][0]
        if raw_margins
        else None,
        "best_single_model": {"name": best_name, **best},
        "cost_at_best_single_quality": cost_at_best,
        "reaches_best_single_at_lower_cost": cost_at_best is not None
        and cost_at_best < best["cost"],
        "max_quality": max(q for _, q in router_pts),
    }


def plot_nway(
    result: Mapping[str, Any],
    path: str | Path,
    *,
    dpi: int = 150,
    log_cost: bool = False,
) -> Path:
    """Draw an :func:`evaluate_nway` result (quality against average cost) as a PNG at ``path``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib: pip install 'routellm-lc[plot]'"
        ) from exc
    missing = [
        k
        for k in ("curve", "single_models", "random_hull", "oracle", "aiq")
        if k not in result
    ]
    if missing:
        raise ValueError(f"result lacks {missing}; pass the dict evaluate_nway returns")
    fig = Figure(figsize=(7.5, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pts = sorted(result["curve"], key=lambda p: p["cost"])
    ax.plot(
        [p["cost"] for p in pts],
        [p["quality"] for p in pts],
        "-",
        color="tab:blue",
        linewidth=1.6,
        label=f"{result.get('router', 'router')} (AIQ {result['aiq']:.3f})",
    )
    if result.get("router_hull"):
        rh = result["router_hull"]
        ax.plot(
            [p["cost"] for p in rh],
            [p["quality"] for p in rh],
            "-.",
            color="tab:blue",
            linewidth=0.9,
            alpha=0.7,
            label="its frontier (mixing lambdas)",
        )
    hull = result["random_hull"]
    ax.plot(
        [p["cost"] for p in hull],
        [p["quality"] for p in hull],
        "--",
        color="tab:gray",
        linewidth=1.2,
        label=f"random choice, best mixtures (AIQ {result.get('random_aiq', float('nan')):.3f})",
    )
    if result.get("oracle_curve"):
        oc = sorted(result["oracle_curve"], key=lambda p: p["cost"])
        ax.plot(
            [p["cost"] for p in oc],
            [p["quality"] for p in oc],
            ":",
            color="tab:green",
            linewidth=1.2,
            label=f"oracle (AIQ {result.get('oracle_aiq', float('nan')):.3f})",
        )
    for name, p in result["single_models"].items():
        ax.plot(p["cost"], p["quality"], "o", color="black", markersize=4)
        ax.annotate(
            name,
            (p["cost"], p["quality"]),
            fontsize=6,
            xytext=(3, 2),
            textcoords="offset points",
        )
    if "uniform_random" in result:
        u = result["uniform_random"]
        ax.plot(
            u["cost"], u["quality"], "x", color="tab:red", label="uniform random model"
        )
    if log_cost:
        ax.set_xscale("log")
    ax.set_xlabel(f"average cost ({result.get('cost_unit', 'cost')})")
    ax.set_ylabel("average quality")
    ax.set_title(f"{result.get('data', '')} (n={result.get('n_queries')})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out
