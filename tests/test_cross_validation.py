"""In-domain adaptation (--cv K): folds by question, held-out scoring, and the CLI on real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from routellm_core.evaluation.benchmarks import Benchmark
from routellm_core.evaluation.cross_validation import (
    benchmark_battles,
    cross_validated_win_rates,
    evaluate_router,
    fold_ids,
)
from routellm_core.routers import SWRankingRouter
from tests.routing_fixtures import EASY, HARD, toy_battles


def test_folds_keep_a_question_together_and_are_balanced():
    qids = np.repeat(np.arange(50), 2)  # every question appears twice
    folds = fold_ids(qids, 5, seed=1)
    for q in range(50):
        assert len(set(folds[qids == q])) == 1
    assert sorted(np.bincount(folds).tolist()) == [20] * 5
    assert not np.array_equal(folds, fold_ids(qids, 5, seed=2))


@pytest.mark.parametrize("k", [1, 0, 11, 2.5])
def test_bad_fold_counts_are_refused(k):
    with pytest.raises(ValueError, match="fold"):
        fold_ids(np.arange(10), k)


def _bench() -> Benchmark:
    prompts = HARD + EASY
    strong = np.array([1.0] * 10 + [1.0] * 10)
    weak = np.array([0.0] * 10 + [1.0] * 10)  # the weak model fails exactly the hard ones
    return Benchmark(name="toy", prompts=prompts, strong_scores=strong, weak_scores=weak,
                     question_ids=np.arange(20), strong_model="big-model", weak_model="small-model",
                     n_removed_contaminated=0, score_scale=100.0)


def test_gold_battles_come_from_the_benchmark_scores():
    bench = _bench()
    battles = benchmark_battles(bench, np.array([0, 15]))
    assert battles["winner"].tolist() == ["a", "tie"]
    assert set(battles["model_a"]) == {"big-model"}


def test_adapted_routers_send_the_hard_held_out_questions_strong():
    bench = _bench()
    router = SWRankingRouter(n_tiers=2, strong_model="big-model", weak_model="small-model")
    rates = cross_validated_win_rates(router, bench, 5, train_battles=toy_battles().iloc[:6])
    assert rates.shape == (20,)
    assert rates[:10].mean() > rates[10:].mean()
    result = evaluate_router(router.fit(toy_battles()), bench, cv=5, train_battles=toy_battles())
    assert result["cv_folds"] == 5 and result["n_queries"] == 20
    assert result["apgr"] > result["random_apgr"]


@pytest.mark.data
def test_cli_eval_writes_the_papers_metrics_and_plot_on_real_gsm8k(data_dir, tmp_path):
    out_json, out_png = tmp_path / "gsm8k.json", tmp_path / "gsm8k.png"
    proc = subprocess.run(
        [sys.executable, "-m", "routellm_core.cli", "eval", "--router", "default", "--benchmark",
         "gsm8k", "--data-dir", str(data_dir / "routellm_evals"), "--json", str(out_json),
         "--plot", str(out_png), "--quiet"],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out_json.read_text())
    for key in ("benchmark", "router", "n_queries", "strong_score", "weak_score", "apgr",
                "cpt50", "cpt80", "random_apgr", "curve"):
        assert key in result
    assert result["n_queries"] == 1307 and len(result["curve"]) == 11
    assert result["apgr"] > result["random_apgr"]  # out of domain, not worse than random
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "APGR" in proc.stdout
