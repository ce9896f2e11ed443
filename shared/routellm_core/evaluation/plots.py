"""Plot a routing result: score against share of strong-model calls, router vs random.

matplotlib is imported only here and only when called (install the ``plot`` extra); the
figure is drawn on the Agg canvas without touching pyplot's global state.

Example:
    >>> import numpy as np, tempfile, os
    >>> from routellm_core.evaluation import Benchmark, evaluate_win_rates, plot_curves
    >>> rng = np.random.default_rng(0)
    >>> b = Benchmark("toy", ["q"] * 200, rng.integers(0, 2, 200), rng.integers(0, 2, 200),
    ...               np.arange(200), "big", "small", 0, 100.0, "accuracy (%)")
    >>> result = evaluate_win_rates(b, rng.random(200), router_name="random-ish")
    >>> path = plot_curves(result, os.path.join(tempfile.mkdtemp(), "toy.png"))
    >>> path.stat().st_size > 0
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _xy(points: list[Mapping[str, float]]) -> tuple[list[float], list[float]]:
    pts = sorted(points, key=lambda p: p["strong_share"])
    return [100.0 * p["strong_share"] for p in pts], [p["score"] for p in pts]


def _pct(share: float | None) -> str:
    return "not reached" if share is None else f"{100.0 * share:.1f}%"


def plot_curves(result: Mapping[str, Any], path: str | Path, *, dpi: int = 150) -> Path:
    """Draw ``result`` (from :func:`evaluate_win_rates`) and save it as a PNG at ``path``.

    The router's fine curve is the line, its decile points the markers; the random router's
    averaged deciles are dashed; the strong and weak models are horizontal lines.
    Returns the path written.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'routellm-lc[plot]'") from exc

    missing = [k for k in ("curve", "random_curve", "strong_score", "weak_score", "apgr")
               if k not in result]
    if missing:
        raise ValueError(f"result lacks {missing}; pass the dict evaluate_win_rates returns")
    router = result.get("router", "router")
    fig = Figure(figsize=(7, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    if result.get("fine_curve"):
        x, y = _xy(result["fine_curve"])
        ax.plot(x, y, color="tab:blue", linewidth=1.6, label=f"{router}")
    x, y = _xy(result["curve"])
    ax.plot(x, y, "o", color="tab:blue", markersize=5,
            label=f"{router}, deciles",
            linestyle="none" if result.get("fine_curve") else "-")
    x, y = _xy(result["random_curve"])
    random_apgr = result.get("random_apgr")
    random_label = "random" + (f" (APGR {random_apgr:.3f})" if random_apgr is not None else "")
    ax.plot(x, y, "s--", color="tab:gray", markersize=4, linewidth=1.2, label=random_label)

    strong_name = result.get("strong_model", "strong model")
    weak_name = result.get("weak_model", "weak model")
    ax.axhline(result["strong_score"], color="tab:red", linestyle=":", linewidth=1.4,
               label=f"{strong_name} ({result['strong_score']:.2f})")
    ax.axhline(result["weak_score"], color="black", linestyle=":", linewidth=1.4,
               label=f"{weak_name} ({result['weak_score']:.2f})")

    ax.set_xlim(-2, 102)
    ax.set_xlabel("calls to the strong model (%)")
    ax.set_ylabel(result.get("score_unit", "score"))
    bench = result.get("benchmark", "benchmark")
    n = result.get("n_queries")
    summary = f"APGR {result['apgr']:.3f}"
    if random_apgr is not None:
        summary += f" (random {random_apgr:.3f})"
    if "cpt50" in result:
        summary += f"   CPT(50%) {_pct(result['cpt50'])}"
    if "cpt80" in result:
        summary += f"   CPT(80%) {_pct(result['cpt80'])}"
    ax.set_title(f"{bench}{f' (n={n})' if n else ''}: {router}\n{summary}", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out
