"""Benchmark loaders: RouteLLM's real evaluation files, and fixtures for MT-Bench and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routellm_core.evaluation import (
    STRONG_MODEL,
    WEAK_MODEL,
    Benchmark,
    load_benchmark,
    random_baseline,
)


def _evals_dir() -> Path:
    """RouteLLM's eval folder: $ROUTELLM_DATA_DIR, else ../shared/data beside the checkout."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    root = Path(os.environ.get("ROUTELLM_DATA_DIR") or default)
    return root / "routellm_evals" if (root / "routellm_evals").is_dir() else root


EVALS = _evals_dir()
needs_data = pytest.mark.skipif(
    not (EVALS / "mmlu" / "responses").is_dir(),
    reason=f"RouteLLM eval data not found at {EVALS} (set ROUTELLM_DATA_DIR to shared/data)",
)


def _contaminated(name: str) -> set[str]:
    path = EVALS / name / "contaminated_prompts.jsonl"
    return set(pd.read_json(path, lines=True)["eval_prompt"])


# --- real data ------------------------------------------------------------------------------


@pytest.mark.data
@needs_data
def test_mmlu_before_decontamination_matches_manifest():
    bench = load_benchmark("mmlu", EVALS, decontaminate=False)
    assert len(bench) == 14_042 and bench.n_removed_contaminated == 0
    assert round(bench.weak_score, 1) == 68.1
    assert round(bench.strong_score, 1) == 80.6
    # Crosstab Mixtral/GPT-4 from MANIFEST.md: F/F 1985, F/T 2497, T/F 742, T/T 8818.
    s, w = bench.strong_scores.astype(bool), bench.weak_scores.astype(bool)
    crosstab = [(~w & ~s).sum(), (~w & s).sum(), (w & ~s).sum(), (w & s).sum()]
    assert crosstab == [1985, 2497, 742, 8818]
    assert len(set(bench.categories)) == 57
    assert bench.categories[0] == "abstract_algebra"  # files concatenated in name order


@pytest.mark.data
@needs_data
def test_mmlu_decontaminated():
    bench = load_benchmark("mmlu", EVALS)
    assert len(bench) == 14_037 and bench.n_removed_contaminated == 5
    contaminated = _contaminated("mmlu")
    assert not contaminated & set(bench.prompts)
    assert bench.strong_score == pytest.approx(80.587, abs=0.001)
    assert bench.weak_score == pytest.approx(68.091, abs=0.001)
    assert (bench.score_scale, bench.score_unit) == (100.0, "accuracy (%)")
    assert (bench.strong_model, bench.weak_model) == (STRONG_MODEL, WEAK_MODEL)
    # Rows repeating a prompt share one group id, distinct prompts have distinct ids.
    ids = pd.Series(bench.question_ids)
    assert ids.nunique() == len(set(bench.prompts)) < len(bench)
    assert pd.DataFrame({"p": bench.prompts, "id": ids}).groupby("p")["id"].nunique().max() == 1


@pytest.mark.data
@needs_data
def test_gsm8k_matches_manifest_and_decontaminates():
    full = load_benchmark("gsm8k", EVALS, decontaminate=False)
    assert len(full) == 1_319
    assert (round(full.weak_score, 1), round(full.strong_score, 1)) == (63.8, 85.7)
    bench = load_benchmark("gsm8k", EVALS)
    assert len(bench) == 1_307 and bench.n_removed_contaminated == 12
    assert bench.strong_score == pytest.approx(85.769, abs=0.001)
    assert bench.weak_score == pytest.approx(63.734, abs=0.001)
    contaminated = _contaminated("gsm8k")
    assert bench.prompts == [p for p in full.prompts if p not in contaminated]
    assert full.prompts[0].startswith("Janet’s ducks lay 16 eggs per day.")  # contaminated
    assert len(set(bench.question_ids)) == len(bench)


@pytest.mark.data
@needs_data
def test_real_mt_bench_judgements_are_held_out():
    if (EVALS / "mt_bench" / "judgements.jsonl").exists():
        pytest.skip("judgements.jsonl is present here; the held-out error cannot be checked")
    with pytest.raises(FileNotFoundError, match="judgements.jsonl"):
        load_benchmark("mt-bench", EVALS)


@pytest.mark.data
@needs_data
@pytest.mark.parametrize("name, tolerance", [("mmlu", 0.02), ("gsm8k", 0.03)])
def test_random_router_apgr_is_about_half_on_real_data(name, tolerance):
    bench = load_benchmark(name, EVALS)
    result = random_baseline(bench.strong_scores, bench.weak_scores, scale=bench.score_scale)
    assert result["apgr"] == pytest.approx(0.5, abs=tolerance)
    assert result["cpt50"] == pytest.approx(0.5, abs=0.05)
    assert result["cpt80"] == pytest.approx(0.8, abs=0.05)


@pytest.mark.data
@needs_data
def test_parent_data_folder_is_accepted():
    assert len(load_benchmark("gsm8k", EVALS.parent)) == 1_307


# --- MT-Bench on a fixture ------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _judgement(qid: int, model: str, turn: int, score: float) -> dict:
    return {"question_id": qid, "model": model, "judge": ["gpt-4", "single-v1"],
            "user_prompt": "...", "judgment": f"Rating: [[{score}]]", "score": score,
            "turn": turn, "tstamp": 1715000000.0}


@pytest.fixture
def mt_bench_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mt_bench"
    questions = [
        {"question_id": 81, "category": "writing", "turns": ["Write a poem.", "Shorter."]},
        {"question_id": 82, "category": "math", "turns": ["What is 2+2?", "Leaked turn two."]},
        {"question_id": 83, "category": "coding", "turns": ["Leaked turn one.", "In C."]},
        {"question_id": 84, "category": "stem", "turns": ["Explain entropy.", "To a child."]},
    ]
    _write_jsonl(folder / "question.jsonl", questions)
    _write_jsonl(folder / "contaminated_prompts.jsonl", [
        {"train_prompt": "x", "eval_prompt": "Leaked turn two.", "train_idx": 1, "eval_idx": 1},
        {"train_prompt": "y", "eval_prompt": "Leaked turn one.", "train_idx": 2, "eval_idx": 2},
    ])
    rows = [
        _judgement(81, STRONG_MODEL, 1, 9.0), _judgement(81, STRONG_MODEL, 2, 8.0),
        _judgement(81, WEAK_MODEL, 1, 7.0), _judgement(81, WEAK_MODEL, 2, 4.0),
        _judgement(84, STRONG_MODEL, 1, 10.0), _judgement(84, STRONG_MODEL, 2, -1),  # failed
        _judgement(84, WEAK_MODEL, 1, 6.0), _judgement(84, WEAK_MODEL, 2, 8.0),
        _judgement(84, "gpt-3.5-turbo", 1, 1.0),                                  # other model
        _judgement(82, STRONG_MODEL, 1, 1.0), _judgement(82, WEAK_MODEL, 1, 1.0),  # contaminated
    ]
    _write_jsonl(folder / "judgements.jsonl", rows)
    return tmp_path


def test_mt_bench_fixture(mt_bench_dir):
    bench = load_benchmark("mt-bench", mt_bench_dir)
    assert bench.name == "mt-bench"
    assert bench.question_ids.tolist() == [81, 84]  # 82 (turn 2) and 83 (turn 1) removed
    assert bench.n_removed_contaminated == 2
    assert bench.prompts == ["Write a poem.", "Explain entropy."]  # routed on turn 1
    assert bench.strong_scores.tolist() == [8.5, 10.0]  # the -1 judgement is skipped
    assert bench.weak_scores.tolist() == [5.5, 7.0]
    assert (bench.strong_score, bench.weak_score) == (9.25, 6.25)
    assert bench.score_scale == 1.0
    assert bench.categories.tolist() == ["writing", "stem"]


def test_mt_bench_without_decontamination_needs_every_question_judged(mt_bench_dir):
    with pytest.raises(ValueError, match=r"question_id\(s\) \[83\]"):
        load_benchmark("mt_bench", mt_bench_dir, decontaminate=False)


def test_mt_bench_unknown_model_lists_the_models(mt_bench_dir):
    with pytest.raises(ValueError, match=r"'claude-3'.*models available: \['gpt-3.5-turbo'"):
        load_benchmark("MT-Bench", mt_bench_dir, strong_model="claude-3")


def test_mt_bench_missing_judgements_file_is_named(mt_bench_dir):
    (mt_bench_dir / "mt_bench" / "judgements.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"mt_bench/judgements\.jsonl"):
        load_benchmark("mt-bench", mt_bench_dir)


def test_mt_bench_judgements_missing_a_column(mt_bench_dir):
    _write_jsonl(mt_bench_dir / "mt_bench" / "judgements.jsonl",
                 [{"question_id": 81, "model": STRONG_MODEL, "turn": 1}])
    with pytest.raises(ValueError, match=r"\['score'\]; columns available"):
        load_benchmark("mt-bench", mt_bench_dir)


# --- MMLU / GSM8K layout on fixtures --------------------------------------------------------


def _write_csv(path: Path, rows: list[tuple[str, bool, bool]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["prompt", WEAK_MODEL, STRONG_MODEL]).to_csv(path, index=False)


@pytest.fixture
def mmlu_dir(tmp_path: Path) -> Path:
    _write_csv(tmp_path / "mmlu/responses/mmlu_zoology.csv",
               [("Z1", True, True), ("Z2", False, True)])
    _write_csv(tmp_path / "mmlu/responses/mmlu_algebra.csv",
               [("A1", False, False), ("Leak", True, True), ("A1", False, True)])
    _write_jsonl(tmp_path / "mmlu/contaminated_prompts.jsonl",
                 [{"train_prompt": "l", "eval_prompt": "Leak", "train_idx": 0, "eval_idx": 1}])
    return tmp_path


def test_mmlu_fixture_order_decontamination_and_ids(mmlu_dir):
    bench = load_benchmark("mmlu", mmlu_dir)
    assert bench.prompts == ["A1", "A1", "Z1", "Z2"]  # algebra before zoology
    assert bench.categories.tolist() == ["algebra", "algebra", "zoology", "zoology"]
    assert bench.n_removed_contaminated == 1
    assert bench.strong_scores.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert bench.weak_scores.tolist() == [0.0, 0.0, 1.0, 0.0]
    assert (bench.strong_score, bench.weak_score) == (75.0, 25.0)
    assert bench.question_ids.tolist() == [0, 0, 3, 4]  # the repeated A1 shares row 0's id


def test_missing_model_column_names_the_file_and_columns(mmlu_dir):
    with pytest.raises(ValueError, match=r"mmlu_algebra\.csv has no column\(s\) \['gpt-5'\]; "
                                         r"columns available: \['prompt'"):
        load_benchmark("mmlu", mmlu_dir, strong_model="gpt-5")


def test_non_binary_correctness_is_rejected(tmp_path):
    path = tmp_path / "gsm8k" / "gsm8k_responses.csv"
    path.parent.mkdir()
    pd.DataFrame({"prompt": ["q"], WEAK_MODEL: [0.5], STRONG_MODEL: [1]}).to_csv(path, index=False)
    _write_jsonl(tmp_path / "gsm8k" / "contaminated_prompts.jsonl", [])
    with pytest.raises(ValueError, match="0/1 correctness"):
        load_benchmark("gsm8k", tmp_path)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mmlu_\*\.csv"):
        load_benchmark("mmlu", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"gsm8k_responses\.csv"):
        load_benchmark("gsm8k", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"question\.jsonl"):
        load_benchmark("mt-bench", tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_benchmark("gsm8k", tmp_path / "nowhere")


def test_missing_contamination_list_is_named(mmlu_dir):
    (mmlu_dir / "mmlu" / "contaminated_prompts.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"contaminated_prompts\.jsonl"):
        load_benchmark("mmlu", mmlu_dir)
    assert len(load_benchmark("mmlu", mmlu_dir, decontaminate=False)) == 5


def test_unknown_benchmark_lists_valid_names(tmp_path):
    expected = r"'hellaswag'; expected one of \['gsm8k', 'mmlu', 'mt-bench'\]"
    with pytest.raises(ValueError, match=expected):
        load_benchmark("hellaswag", tmp_path)


# --- the Benchmark container ----------------------------------------------------------------


def test_benchmark_subset_and_validation():
    bench = Benchmark("toy", ["a", "b", "c"], np.array([1, 0, 1]), np.array([0, 0, 1]),
                      np.array([10, 11, 12]), "big", "small", 1, 100.0,
                      categories=np.array(["x", "y", "z"]))
    sub = bench.subset([2, 0])
    assert sub.prompts == ["c", "a"] and sub.question_ids.tolist() == [12, 10]
    assert (sub.strong_score, sub.weak_score) == (100.0, 50.0)
    assert sub.categories.tolist() == ["z", "x"] and sub.n_removed_contaminated == 1
    masked = bench.subset(np.array([False, True, True]))
    assert masked.prompts == ["b", "c"] and len(masked) == 2
    assert len(bench) == 3  # unchanged
    with pytest.raises(ValueError, match="mask"):
        bench.subset(np.array([True, False]))
    with pytest.raises(ValueError, match="weak_scores has shape"):
        Benchmark("bad", ["a", "b"], np.array([1, 0]), np.array([1]), np.arange(2), "s", "w", 0)
    with pytest.raises(ValueError, match="NaN"):
        Benchmark("bad", ["a"], np.array([np.nan]), np.array([1]), np.arange(1), "s", "w", 0)
