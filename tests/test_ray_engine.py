"""Batch scoring on Ray Data gives what the single-process path gives: win rates, calibration, metrics.

One local Ray session serves the whole module (Ray takes seconds to start); the router is real
(the embedded default, or a small router trained here) and so is the encoder in every actor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from routellm_core import load_router
from routellm_core.batch import calibrate_prompts, evaluate_benchmark, score_prompts
from routellm_core.evaluation.benchmarks import Benchmark
from routellm_core.evaluation.cross_validation import evaluate_router
from routellm_core.routers import SWRankingRouter
from tests.routing_fixtures import EASY, HARD, toy_battles

PROMPTS = [
    *HARD,
    *EASY,
    "How do I reverse a linked list in place in C?",
    "Summarise the causes of the French Revolution in three bullet points.",
    "Write a SQL query that returns the second highest salary per department.",
    "Translate 'good night' into Japanese.",
    "Explain the difference between TCP and UDP to a ten-year-old.",
    "What's 17 times 23?",
    "Compose a limerick about a cat who learns Rust.",
    "Give me a regex that matches ISO 8601 dates.",
    "Is a tomato a fruit or a vegetable?",
    "Design a rate limiter for a distributed API gateway.",
    "List three uses of baking soda.",
    "Prove that the sum of two even numbers is even.",
]  # 32 prompts: 8 batches of 4, spread over 2 actors
RAY_OPTIONS = {"engine": "ray", "num_workers": 2, "batch_size": 4}


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip(
        "ray", reason='Ray is not installed: pip install "routellm-lc[ray]"'
    )
    pytest.importorskip("ray.data", reason="Ray Data is not installed")
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_scores():
    return score_prompts(PROMPTS, "default")


def test_ray_scores_a_parquet_file_as_the_local_engine_does(
    ray_local, local_scores, tmp_path
):
    from routellm_core.ray_engine import ray_win_rates

    path = tmp_path / "prompts.parquet"
    column = [
        *PROMPTS[:5],
        None,
        "   ",
        *PROMPTS[5:],
    ]  # a null and a blank row are skipped by both
    pd.DataFrame({"id": range(len(column)), "question": column}).to_parquet(path)
    local = score_prompts(path, "default")
    on_ray = ray_win_rates(
        path, "default", num_workers=2, batch_size=4, with_worker=True
    )
    assert list(local.prompt) == list(on_ray.prompt) == PROMPTS  # input order kept
    assert np.allclose(on_ray.win_rate, local.win_rate, rtol=0, atol=1e-6)
    assert np.allclose(local.win_rate, local_scores.win_rate, rtol=0, atol=1e-6)
    assert on_ray.worker.nunique() == 2 and os.getpid() not in set(
        on_ray.worker
    )  # both actors worked


def test_ray_calibration_on_jsonl_with_a_router_object_matches_local(
    ray_local, tmp_path
):
    router = SWRankingRouter(
        n_tiers=3, strong_model="big-model", weak_model="small-model"
    ).fit(toy_battles())
    path = tmp_path / "prompts.jsonl"
    records = [
        {"prompt": p} if i % 3 else {"turns": [{"role": "user", "content": p}]}
        for i, p in enumerate(PROMPTS)
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    local = calibrate_prompts(path, router)
    # the router object travels to the actors as a temporary checkpoint
    on_ray = calibrate_prompts(path, router, **RAY_OPTIONS)
    assert on_ray.n_prompts == local.n_prompts == len(PROMPTS)
    assert on_ray.source == local.source == str(path)
    assert np.allclose(on_ray.thresholds, local.thresholds, rtol=0, atol=1e-6)
    # so the trained router ran on Ray, not the default
    default = calibrate_prompts(path, "default")
    assert not np.allclose(default.thresholds, local.thresholds, rtol=0, atol=1e-3)


def test_ray_evaluation_gives_the_same_metrics(ray_local, local_scores):
    rng = np.random.default_rng(0)
    strong = rng.integers(0, 2, len(PROMPTS))
    weak = np.where(rng.random(len(PROMPTS)) < 0.6, strong, 0)
    bench = Benchmark(
        "toy",
        PROMPTS,
        strong,
        weak,
        np.arange(len(PROMPTS)),
        "gpt-4-1106-preview",
        "mixtral-8x7b-instruct-v0.1",
        0,
        100.0,
    )
    local = evaluate_router(load_router("default"), bench)
    on_ray = evaluate_benchmark("default", bench, **RAY_OPTIONS)
    assert on_ray["router"] == local["router"] == "sw_ranking"
    for key in ("apgr", "cpt50", "cpt80", "strong_score", "weak_score", "n_queries"):
        assert on_ray[key] == pytest.approx(local[key], abs=1e-9), key


def test_bad_rows_and_unknown_models_are_clear_errors(ray_local, tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = [
        json.dumps({"prompt": "fine"}),
        "{not json",
        json.dumps({"text": "no field"}),
    ]
    bad.write_text("\n".join(lines))
    one = {"engine": "ray", "num_workers": 1}
    with pytest.raises(
        ValueError,
        match=r"bad.jsonl: a line is not valid JSON.*\(and 1 more bad rows\)",
    ):
        score_prompts(bad, "default", **one)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n   \n")
    with pytest.raises(ValueError, match="blank.txt holds no prompts"):
        score_prompts(blank, "default", **one)
    with pytest.raises(
        ValueError, match="model 'gpt-99' is unknown"
    ):  # before any actor starts
        score_prompts(PROMPTS[:3], "default", strong_model="gpt-99", **one)


# ----------------------------------------------------------------- no Ray needed


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"engine": "spark"}, ValueError, "unknown engine 'spark'"),
        (
            {"engine": "ray", "num_workers": 0},
            ValueError,
            "num_workers must be a positive integer",
        ),
        (
            {"engine": "ray", "num_workers": 1.5},
            ValueError,
            "num_workers must be a positive integer",
        ),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ],
)
def test_bad_engine_options_are_refused_before_any_work(kwargs, error, message):
    with pytest.raises(error, match=message):
        score_prompts(["hello"], "default", **kwargs)


def test_bad_prompts_are_refused_by_both_engines(tmp_path):
    for engine in ("local", "ray"):
        with pytest.raises(ValueError, match="empty sequence"):
            score_prompts([], "default", engine=engine)
        with pytest.raises(TypeError, match="text 1 is int"):
            score_prompts(["ok", 3], "default", engine=engine)
        with pytest.raises(FileNotFoundError, match="missing.parquet does not exist"):
            score_prompts(tmp_path / "missing.parquet", "default", engine=engine)


def test_ray_missing_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(
        ImportError,
        match=r'engine="ray" needs Ray Data: pip install "routellm-lc\[ray\]"',
    ):
        score_prompts(["hello"], "default", engine="ray")


def test_cli_score_on_ray_writes_the_same_win_rates(ray_local, local_scores, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "routed.parquet"
    address = (
        ray_local.get_runtime_context().gcs_address
    )  # the CLI joins this module's Ray
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ROUTELLM_CACHE_DIR": str(tmp_path / "cache"),
    }
    args = [
        "score",
        "--prompts",
        str(prompts),
        "--engine",
        "ray",
        "--ray-address",
        address,
        "--num-workers",
        "2",
        "--batch-size",
        "8",
        "--threshold",
        "0.58",
        "--out",
        str(out),
        "--quiet",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "routellm_core.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (
        f"scored {len(PROMPTS)} prompts" in run.stdout
        and "(ray, 2 workers)" in run.stdout
    )
    df = pd.read_parquet(out)
    assert list(df.prompt) == PROMPTS
    assert np.allclose(df.win_rate, local_scores.win_rate, rtol=0, atol=1e-6)
    assert list(df.route) == ["strong" if w >= 0.58 else "weak" for w in df.win_rate]
    assert set(df.model) <= {"gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"}


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["score", "--prompts", "{p}", "--engine", "ray", "--num-workers", "0"],
            "num_workers must be a positive integer, got 0",
        ),
        (
            [
                "eval",
                "--benchmark",
                "gsm8k",
                "--data-dir",
                "{p}",
                "--engine",
                "ray",
                "--cv",
                "5",
            ],
            "--engine ray scores out of domain; --cv retrains per fold",
        ),
    ],
)
def test_cli_refuses_bad_engine_options(tmp_path, args, message):
    prompts = tmp_path / "p.txt"
    prompts.write_text("hello\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "routellm_core.cli",
            *[a.format(p=prompts) for a in args],
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=600,
        check=False,
    )
    assert run.returncode == 2 and message in run.stderr, run.stderr[-2000:]


def test_cli_score_locally_writes_jsonl_and_refuses_unknown_output_formats(
    local_scores, tmp_path
):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS[:6]) + "\n")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ROUTELLM_CACHE_DIR": str(tmp_path / "cache"),
    }

    def score(*extra: str) -> subprocess.CompletedProcess:
        args = ["score", "--prompts", str(prompts), "--quiet", *extra]
        return subprocess.run(
            [sys.executable, "-m", "routellm_core.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )

    out = tmp_path / "scores.jsonl"
    run = score("--strong-fraction", "0.5", "--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    assert (
        "scored 6 prompts" in run.stdout
        and "(local)" in run.stdout
        and "strong share" in run.stdout
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == PROMPTS[:6]
    assert np.allclose(
        [r["win_rate"] for r in rows], local_scores.win_rate[:6], rtol=0, atol=1e-6
    )
    assert {r["route"] for r in rows} <= {"strong", "weak"}
    bad = score("--out", str(tmp_path / "scores.xlsx"))
    assert (
        bad.returncode == 2
        and "--out must end in .parquet, .jsonl or .csv" in bad.stderr
    )
