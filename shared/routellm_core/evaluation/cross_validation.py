"""Scoring a router on a benchmark, out of domain or with K-fold in-domain adaptation.

``--cv K`` is the paper's answer to distribution shift: the benchmark's questions are split into
K folds; for each fold a fresh router of the same kind and parameters is trained on its general
training data plus the gold labels of the other K-1 folds, and scores the held-out fold. Metrics
are computed over all held-out predictions, so no question is ever scored by a router that saw
its label.

Example:
    >>> from routellm_core import load_router
    >>> from routellm_core.evaluation.benchmarks import load_benchmark
    >>> from routellm_core.evaluation.cross_validation import evaluate_router
    >>> bench = load_benchmark("gsm8k", "../shared/data/routellm_evals")  # doctest: +SKIP
    >>> evaluate_router(load_router("default"), bench)["apgr"]           # doctest: +SKIP
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.data.schema import canonical_model_name, make_battles
from routellm_core.estimator import clone
from routellm_core.evaluation.benchmarks import Benchmark
from routellm_core.evaluation.metrics import evaluate_win_rates
from routellm_core.progress import progress_wanted, win_rates_in_chunks
from routellm_core.routers import Router
from routellm_core.routers.battles import balanced_weight


def benchmark_battles(benchmark: Benchmark, indices: np.ndarray) -> pd.DataFrame:
    """Gold battles strong vs weak from the benchmark's own scores for ``indices``."""
    strong = canonical_model_name(benchmark.strong_model)
    weak = canonical_model_name(benchmark.weak_model)
    s, w = benchmark.strong_scores[indices], benchmark.weak_scores[indices]
    winner = np.where(s > w, "a", np.where(s < w, "b", "tie"))
    return make_battles(
        pd.DataFrame(
            {
                "query": [benchmark.prompts[i] for i in indices],
                "model_a": strong,
                "model_b": weak,
                "winner": winner,
                "source": f"{benchmark.name}:cv",
            }
        )
    )


def fold_ids(question_ids: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) of every row; rows of one question share a fold."""
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"--cv needs at least 2 folds, got {k!r}")
    groups, inverse = np.unique(np.asarray(question_ids), return_inverse=True)
    if len(groups) < k:
        raise ValueError(f"cannot split {len(groups)} questions into {k} folds")
    order = np.random.default_rng(seed).permutation(len(groups))
    group_fold = np.empty(len(groups), dtype=np.int64)
    group_fold[order] = np.arange(len(groups)) % k
    return group_fold[inverse]


def _folds(k: int, show_progress: bool, name: str) -> Any:
    if not progress_wanted(show_progress):
        return range(k)
    from tqdm.auto import tqdm

    return tqdm(range(k), desc=f"{name}: {k}-fold adaptation", unit="fold", file=sys.stderr)


def cross_validated_win_rates(
    router: Router,
    benchmark: Benchmark,
    k: int,
    *,
    train_battles: pd.DataFrame | None = None,
    seed: int = 0,
    show_progress: bool = False,
    domain_weight: float = 1.0,
) -> np.ndarray:
    """Held-out win rates for every benchmark row under K-fold in-domain adaptation.

    The K-1 training folds' battles together weigh ``domain_weight`` times the general data.
    """
    folds = fold_ids(benchmark.question_ids, k, seed=seed)
    out = np.empty(len(benchmark.prompts))
    general = train_battles if train_battles is not None else make_battles([])
    for fold in _folds(k, show_progress, benchmark.name):
        held = np.flatnonzero(folds == fold)
        train_idx = np.flatnonzero(folds != fold)
        domain = benchmark_battles(benchmark, train_idx)
        battles = pd.concat([general, domain], ignore_index=True)
        # In-domain labels are few next to the general data: give both halves equal weight.
        weights = np.concatenate([
            np.ones(len(general)),
            np.full(len(domain), balanced_weight(len(general), len(domain), domain_weight)),
        ])
        adapted = clone(router, seed=seed)
        if router.uses_encoder:
            adapted.encoder = router.encoder_
        adapted.fit(battles, show_progress=show_progress, sample_weight=weights)
        out[held] = adapted.win_rate(
            [benchmark.prompts[i] for i in held],
            strong_model=benchmark.strong_model,
            weak_model=benchmark.weak_model,
        )
    return out


def evaluate_router(
    router: Router,
    benchmark: Benchmark,
    *,
    cv: int | None = None,
    train_battles: pd.DataFrame | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> dict[str, Any]:
    """The paper's metrics for ``router`` on ``benchmark`` (out of domain, or ``cv`` folds)."""
    if cv:
        win_rates = cross_validated_win_rates(
            router, benchmark, cv, train_battles=train_battles, seed=seed, show_progress=show_progress
        )
    else:
        win_rates = win_rates_in_chunks(
            router, benchmark.prompts, show_progress=show_progress, desc=f"scoring {benchmark.name}",
            strong_model=benchmark.strong_model, weak_model=benchmark.weak_model,
        )
    result = evaluate_win_rates(benchmark, win_rates, router_name=router.name)
    result["cv_folds"] = cv or 0
    return result
