"""Decontamination: exact and near repeats of evaluation prompts are dropped from training data.

The real-data checks use the exact test on the full evaluation sets and the embedding test on a
subset of them (embedding all 14k MMLU prompts takes minutes on a small CPU).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from routellm_core.data import ScoreMatrix, load_gold_matrix, load_judge_matrix
from routellm_core.data.decontaminate import (
    DecontaminationReport,
    decontaminate,
    load_eval_prompts,
    normalize_text,
    overlap_key,
)

HAWAII = ("Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural "
          "experiences and must-see attractions.")
HAWAII_PARAPHRASE = ("Write an engaging travel blog post about a recent trip to Hawaii, highlighting "
                     "cultural experiences and must-see attractions.")
JANET = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
         "muffins for her friends every day with four. She sells the remainder at the farmers' market "
         "daily for $2 per fresh duck egg. How much in dollars does she make every day at the "
         "farmers' market?")
JANET_PARAPHRASE = ("Janet's ducks lay 16 eggs each day. She eats three for breakfast every morning and "
                    "bakes muffins for her friends daily with four. She sells the rest at the farmers' "
                    "market every day for $2 per fresh duck egg. How many dollars does she make every "
                    "day at the farmers' market?")
PLANET_EVAL = "Which planet in the solar system is the largest by mass?\nA. Mars\nB. Jupiter\nAnswer:"


def _battles(queries: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"query": queries, "model_a": "strong", "model_b": "weak", "winner": "a",
                         "source": "fixture"})


@pytest.fixture(scope="module")
def encoder():
    from routellm_core.encoders import QueryEncoder

    return QueryEncoder()


# --------------------------------------------------------------------------- normalisation


def test_normalize_text_and_overlap_key():
    assert normalize_text("  What's 2+2?\n") == "what s 2 2"
    assert normalize_text("Ünïcode — OK!") == "ünïcode ok"
    assert overlap_key(PLANET_EVAL) == "which planet in the solar system is the largest by mass"
    assert overlap_key(PLANET_EVAL.replace("\nA.", "\nA)").replace("\nB.", "\nB)")) == overlap_key(PLANET_EVAL)
    assert overlap_key("Short question?\nA. x") is None  # under 31 characters: too generic
    long = "word " * 100
    assert len(overlap_key(long)) == 150


# --------------------------------------------------------------------------- exact


def test_exact_on_battles_fixture():
    evals = {"mmlu": [PLANET_EVAL], "mt-bench": [HAWAII, "Hi there"]}
    queries = [
        "Which planet in the solar system is the largest by mass?\nA) Mars\nB) Jupiter",  # options reformatted
        "which planet in the solar system is THE LARGEST by mass",  # no options at all
        "Hi there!",  # short, but equal after normalisation
        HAWAII,
        HAWAII,  # the same query in a second battle
        "Which planet?",  # too short to share a key, not equal: kept
        "Tell me about Jupiter's moons.",
    ]
    cleaned, report = decontaminate(_battles(queries), evals, method="exact")
    assert isinstance(report, DecontaminationReport) and report.method == "exact"
    assert cleaned["query"].tolist() == ["Which planet?", "Tell me about Jupiter's moons."]
    assert list(cleaned.index) == [0, 1]
    assert report.dropped_indices == [0, 1, 2, 3, 4]
    assert (report.n_before, report.n_after, report.n_dropped_exact, report.n_dropped_near) == (7, 2, 5, 0)
    assert report.n_queries_dropped == 4 and report.n_dropped == 5
    assert report.per_benchmark == {"mmlu": 2, "mt-bench": 3}
    text = str(report)
    assert "dropped 5 of 7 battles" in text and "mmlu 2" in text and "exact" in text


def test_exact_with_plain_list_and_score_matrix():
    m = ScoreMatrix([HAWAII, "Keep me", JANET], ["x", "y"], np.array([[1, 0], [0, 1], [1, 1]]),
                    source="s", tags=["t0", "t1", "t2"], costs=np.ones((3, 2)))
    cleaned, report = decontaminate(m, [JANET.upper()], method="exact")
    assert isinstance(cleaned, ScoreMatrix)
    assert cleaned.queries == [HAWAII, "Keep me"] and cleaned.tags == ["t0", "t1"]
    assert cleaned.costs.shape == (2, 2) and report.per_benchmark == {"eval": 1}
    assert report.unit == "queries" and report.threshold is None


def test_keeps_everything_when_nothing_repeats():
    battles = _battles(["A fresh question about cooking pasta.", "Another about gardening."])
    cleaned, report = decontaminate(battles, {"mmlu": [PLANET_EVAL]}, method="exact")
    pd.testing.assert_frame_equal(cleaned, battles)
    assert report.n_dropped == 0 and report.dropped_indices == []


def test_bad_input():
    b = _battles(["q"])
    with pytest.raises(ValueError, match="method must be one of"):
        decontaminate(b, ["q"], method="fuzzy")
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        decontaminate(b, ["q"], threshold=1.5)
    with pytest.raises(ValueError, match="no evaluation prompts given"):
        decontaminate(b, {"mmlu": []}, method="exact")
    with pytest.raises(TypeError, match="list of prompts"):
        decontaminate(b, "q", method="exact")
    with pytest.raises(ValueError, match="no 'query' column"):
        decontaminate(b.drop(columns="query"), ["q"], method="exact")
    with pytest.raises(TypeError, match="battles DataFrame or a ScoreMatrix"):
        decontaminate(["q"], ["q"], method="exact")
    with pytest.raises(ValueError, match="row 1 has an empty or non-text query"):
        decontaminate(_battles(["q", None]), ["q"], method="exact")


# --------------------------------------------------------------------------- near (real encoder)


def test_near_duplicates_are_caught_by_embedding(encoder):
    evals = {"mt-bench": [HAWAII], "gsm8k": [JANET]}
    queries = [HAWAII_PARAPHRASE, JANET_PARAPHRASE, "What is the capital of France?", HAWAII]
    exact_only, r_exact = decontaminate(_battles(queries), evals, method="exact")
    assert r_exact.dropped_indices == [3]  # paraphrases escape the exact test

    cleaned, report = decontaminate(_battles(queries), evals, encoder=encoder, method="both")
    assert cleaned["query"].tolist() == ["What is the capital of France?"]
    assert (report.n_dropped_exact, report.n_dropped_near) == (1, 2)
    assert report.per_benchmark == {"mt-bench": 2, "gsm8k": 1}
    assert {(t, e) for t, e, _ in report.near_examples} == {(HAWAII_PARAPHRASE, HAWAII), (JANET_PARAPHRASE, JANET)}
    assert all(s >= 0.95 for *_, s in report.near_examples)
    assert "cosine >= 0.95" in str(report)

    _, strict = decontaminate(_battles(queries), evals, encoder=encoder, threshold=0.999, method="near")
    assert strict.dropped_indices == [3]  # only the verbatim copy is that close


# --------------------------------------------------------------------------- eval prompts


def test_load_eval_prompts_fixture(tmp_path):
    (tmp_path / "mmlu" / "responses").mkdir(parents=True)
    pd.DataFrame({"prompt": ["m1", "m2"], "gpt-4-1106-preview": [True, False]}).to_csv(
        tmp_path / "mmlu" / "responses" / "mmlu_a.csv", index=False)
    pd.DataFrame({"prompt": ["m3"]}).to_csv(tmp_path / "mmlu" / "responses" / "mmlu_b.csv", index=False)
    (tmp_path / "gsm8k").mkdir()
    pd.DataFrame({"prompt": ["g1"]}).to_csv(tmp_path / "gsm8k" / "gsm8k_responses.csv", index=False)
    (tmp_path / "mt_bench").mkdir()
    (tmp_path / "mt_bench" / "question.jsonl").write_text(
        json.dumps({"question_id": 81, "turns": ["t1", "t2"]}) + "\n")
    assert load_eval_prompts(tmp_path) == {"mmlu": ["m1", "m2", "m3"], "gsm8k": ["g1"], "mt-bench": ["t1", "t2"]}
    assert load_eval_prompts(tmp_path, benchmarks=["MT_Bench"]) == {"mt-bench": ["t1", "t2"]}

    with pytest.raises(ValueError, match="unknown benchmark 'hellaswag'"):
        load_eval_prompts(tmp_path, benchmarks=["hellaswag"])
    with pytest.raises(FileNotFoundError, match="evaluation data directory not found"):
        load_eval_prompts(tmp_path / "nowhere")
    (tmp_path / "gsm8k" / "gsm8k_responses.csv").unlink()
    with pytest.raises(FileNotFoundError, match="gsm8k_responses.csv: no such file"):
        load_eval_prompts(tmp_path)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real_evals(request):
    data_dir = request.getfixturevalue("data_dir")
    return load_eval_prompts(data_dir / "routellm_evals")


@pytest.fixture(scope="module")
def overlap(request):
    data_dir = request.getfixturevalue("data_dir")
    return json.loads((data_dir / "_overlap" / "overlap_indices.json").read_text())


_BENCH = {"MMLU": "mmlu", "GSM8K": "gsm8k", "MT-Bench": "mt-bench"}


@pytest.mark.data
def test_real_eval_prompt_counts(real_evals, data_dir):
    assert {k: len(v) for k, v in real_evals.items()} == {"mmlu": 14042, "gsm8k": 1319, "mt-bench": 160}
    assert load_eval_prompts(data_dir).keys() == real_evals.keys()  # the data root works too


@pytest.mark.data
def test_real_exact_finds_every_manifest_repeat_and_more(real_evals, overlap, data_dir):
    """The manifest is a lower bound (its key has the template blind spot): every row it lists
    is dropped, and every further row dropped repeats an eval prompt once its template line is
    removed."""
    checked = 0
    for rel, expected in overlap.items():
        path = data_dir / rel
        if rel.endswith("instructions.csv"):
            data = load_judge_matrix(path.parent / "weighted_gpt4_turbo_vs_gpt4_1106_preview_wide.csv",
                                     instructions=path)
        elif "arena_hard" in rel:
            continue  # unlabelled prompts: no loader turns them into training data
        else:
            data = load_gold_matrix(path)
        _, report = decontaminate(data, real_evals, method="exact")
        want = {i for rows in expected.values() for i in rows}
        dropped = set(report.dropped_indices)
        assert want <= dropped, (rel, sorted(want - dropped)[:5])
        extra = dropped - want
        assert extra <= set().union(*known_repeats(data.queries, real_evals).values()), (
            rel, [data.queries[i][:80] for i in sorted(extra)[:3]])
        checked += 1
    assert checked >= 19
    m = load_gold_matrix(data_dir / "llmrouter_9model_gold" / "dcrouter_preprocessed__train.json")
    cleaned, report = decontaminate(m, real_evals, method="exact")
    assert report.per_benchmark == {"mmlu": 9, "gsm8k": 200, "mt-bench": 0} and len(cleaned) == 5608 - 209


@pytest.mark.data
def test_real_exact_on_battles_counts_rows(real_evals, data_dir):
    path = data_dir / "routerdc_7model_and_routerbench_subset" / "split2_model7" / "MATH_prealgebra.json"
    battles = load_gold_matrix(path).to_battles()
    cleaned, report = decontaminate(battles, real_evals, method="exact")
    assert report.n_queries_dropped == 37 and report.n_dropped == 37 * 21  # 7 models: 21 pairs
    assert len(cleaned) == len(battles) - 37 * 21


LLMROUTER_SUFFIX = "\nAfter careful thought, put you final answer in \\boxed{...}."


def known_repeats(queries: list[str], evals: dict[str, list[str]]) -> dict[str, set[int]]:
    """Rows whose text, without LLMRouter's instruction line, equals an eval prompt (normalised):
    found against the raw eval files, independently of the templates module."""
    found: dict[str, set[int]] = {}
    for bench, prompts in evals.items():
        norms = {normalize_text(p) for p in prompts}
        found[bench] = {
            i for i, q in enumerate(queries) if normalize_text(q.replace(LLMROUTER_SUFFIX, "")) in norms
        }
    return found


@pytest.mark.data
def test_real_no_known_repeat_survives_exact_decontamination(real_evals, overlap, data_dir):
    """LLMRouter's GSM8K rows carry an instruction line, so the manifest's 150-character key
    misses every short one (38 of 200); stripping the shared line finds all of them."""
    m = load_gold_matrix(data_dir / "llmrouter_9model_gold" / "dcrouter_preprocessed__train.json")
    known = known_repeats(m.queries, real_evals)
    manifest = overlap["llmrouter_9model_gold/dcrouter_preprocessed__train.json"]
    assert len(known["gsm8k"]) == 200 and len(known["gsm8k"] - set(manifest["GSM8K"])) == 38
    cleaned, report = decontaminate(m, real_evals, method="exact")
    dropped = set(report.dropped_indices)
    must_drop = set().union(*known.values(), *map(set, manifest.values()))
    assert must_drop <= dropped, f"{len(must_drop - dropped)} known repeats survive"
    assert report.per_benchmark["gsm8k"] == 200
    # Distinct questions that share the template are kept: only repeats are dropped.
    survivors = {normalize_text(q.replace(LLMROUTER_SUFFIX, "")) for q in cleaned.queries}
    assert not survivors & {normalize_text(p) for p in real_evals["gsm8k"]}
    assert len(dropped - must_drop) <= 5, sorted(dropped - must_drop)


@pytest.mark.data
def test_real_template_sharing_questions_are_kept(real_evals, data_dir):
    """A question that is not in the evaluation sets but wears LLMRouter's template is kept,
    and so is a GSM8K-like question whose numbers differ from its eval twin."""
    m = load_gold_matrix(data_dir / "llmrouter_9model_gold" / "dcrouter_preprocessed__train.json")
    templated = [q for q in m.queries if LLMROUTER_SUFFIX in q]
    fresh = [
        "A baker sells 17 loaves on Monday and twice as many on Tuesday. How many loaves in all?",
        "Tom reads 12 pages a day for 9 days. How many pages does he read?",
        JANET.replace("16 eggs", "18 eggs"),
    ]
    fresh = [q + LLMROUTER_SUFFIX for q in fresh]
    battles = _battles(templated + fresh)
    cleaned, report = decontaminate(battles, {"gsm8k": real_evals["gsm8k"]}, method="exact")
    assert cleaned["query"].tolist() == fresh
    assert report.n_dropped == len(templated)


@pytest.mark.data
def test_real_near_path_on_eval_subset(real_evals, overlap, data_dir, encoder):
    """LLMRouter train: known repeats and clean rows. The stripped texts are embedded, so under
    the embedding test alone a templated repeat is as close as a verbatim one.
    Eval prompts are a subset (the matching ones + random others)."""
    m = load_gold_matrix(data_dir / "llmrouter_9model_gold" / "dcrouter_preprocessed__train.json")
    known = known_repeats(m.queries, real_evals)
    llmrouter = overlap["llmrouter_9model_gold/dcrouter_preprocessed__train.json"]
    bad = sorted(known["gsm8k"])[:30] + sorted(llmrouter["MMLU"])
    rng = np.random.default_rng(0)
    pool = sorted(set(range(len(m))) - set().union(*known.values()) - set(bad))
    clean = rng.choice(pool, 10, replace=False).tolist()
    sample = m.subset(bad + clean)
    bad_norms = {normalize_text(m.queries[i].replace(LLMROUTER_SUFFIX, "")) for i in bad}
    evals = {}
    for bench in ("mmlu", "gsm8k"):
        prompts = real_evals[bench]
        hits = [p for p in prompts if normalize_text(p) in bad_norms or overlap_key(p) in
                {overlap_key(m.queries[i]) for i in bad}]
        others = [prompts[i] for i in rng.choice(len(prompts), 20, replace=False)]
        evals[bench] = hits + others

    _, near = decontaminate(sample, evals, encoder=encoder, method="near")
    assert set(range(30)) <= set(near.dropped_indices)  # every templated GSM8K repeat
    assert max(near.dropped_indices) < len(bad)  # no clean row dropped
    # (MMLU rows without their options are format repeats: the exact test's key finds them)

    cleaned, both = decontaminate(sample, evals, encoder=encoder, method="both")
    assert both.dropped_indices == list(range(len(bad)))
    assert cleaned.queries == [m.queries[i] for i in clean]


@pytest.mark.data
def test_real_alpaca_eval_vs_mt_bench_by_embedding(real_evals, data_dir, encoder):
    m = load_judge_matrix(
        data_dir / "alpaca_eval_judge_prefs" / "weighted_gpt4_turbo_vs_gpt4_1106_preview_wide.csv",
        instructions=data_dir / "alpaca_eval_judge_prefs" / "instructions.csv")
    tail = m.subset(np.arange(700, 805))  # holds instructions 791 and 801
    _, report = decontaminate(tail, {"mt-bench": real_evals["mt-bench"]}, encoder=encoder, method="near")
    assert report.dropped_indices == [791 - 700, 801 - 700]
    assert report.per_benchmark == {"mt-bench": 2} and report.n_dropped_near == 2
