"""Evaluation: RouteLLM's benchmarks, the PGR / APGR / CPT metrics, and curve plots.

Example:
    >>> from routellm_core.evaluation import load_benchmark, evaluate_win_rates
    >>> # bench = load_benchmark("gsm8k", "../shared/data/routellm_evals")
    >>> # result = evaluate_win_rates(bench, router.win_rate(bench.prompts), router_name="mf")
"""

from routellm_core.evaluation.benchmarks import (
    BENCHMARKS,
    STRONG_MODEL,
    WEAK_MODEL,
    Benchmark,
    load_benchmark,
)
from routellm_core.evaluation.metrics import (
    CurvePoint,
    apgr,
    cpt,
    decile_thresholds,
    evaluate_win_rates,
    fine_curve,
    optimal_score,
    pair_outcomes,
    pgr,
    random_baseline,
    reliability,
    routing_curve,
)
from routellm_core.evaluation.plots import plot_curves

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "CurvePoint",
    "STRONG_MODEL",
    "WEAK_MODEL",
    "apgr",
    "cpt",
    "decile_thresholds",
    "evaluate_win_rates",
    "fine_curve",
    "load_benchmark",
    "optimal_score",
    "pair_outcomes",
    "pgr",
    "plot_curves",
    "random_baseline",
    "reliability",
    "routing_curve",
]
