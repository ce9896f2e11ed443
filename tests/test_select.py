"""Which queries to spend labels on: ``select_queries`` and ``ShadowLabeller(select=...)``."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_core.learning import JudgePrompt, ShadowLabeller
from routellm_core.learning.models import Generation
from routellm_core.learning.select import STRATEGIES, select_queries, uncertainty_order
from routellm_core.learning.shadow import decision_margin, uncertain_probability
from routellm_core.routing import Decision

PROMPTS = {"pair-v2": JudgePrompt("pair-v2", "Judge.", "Q: {question}\nA: {answer_a}\nB: {answer_b}")}
MODELS = {"strong": "strong-llm", "weak": "weak-llm"}


def corpus(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    queries = [f"question number {i}" for i in range(n)]
    return queries, rng.random(n), rng.normal(size=(n, 8))


# --------------------------------------------------------------------------- select_queries
def test_strategies_are_the_documented_ones():
    assert STRATEGIES == ("random", "uncertain", "uncertain-diverse", "diverse")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_returns_at_most_k_distinct_indices_the_same_for_a_seed(strategy):
    queries, rates, emb = corpus()
    kw = dict(strategy=strategy, win_rates=rates, threshold=0.5, embeddings=emb)
    picked = select_queries(queries, 30, seed=3, **kw)
    assert len(picked) == 30 and len(set(picked)) == 30
    assert all(isinstance(i, int) and 0 <= i < len(queries) for i in picked)
    assert picked == select_queries(queries, 30, seed=3, **kw)
    assert select_queries(queries, 0, **kw) == []
    assert sorted(select_queries(queries, 500, **kw)) == list(range(len(queries)))  # k > n: all of them


def test_random_differs_between_seeds_and_ignores_win_rates():
    queries, rates, _ = corpus()
    a = select_queries(queries, 20, strategy="random", seed=0)
    b = select_queries(queries, 20, strategy="random", seed=1)
    assert a != b
    assert a == select_queries(queries, 20, strategy="random", seed=0, win_rates=rates, threshold=0.9)


def test_uncertain_takes_the_queries_nearest_the_threshold_in_that_order():
    queries, rates, _ = corpus()
    picked = select_queries(queries, 10, strategy="uncertain", win_rates=rates, threshold=0.3)
    distance = np.abs(rates - 0.3)
    assert picked == np.argsort(distance)[:10].tolist()
    assert distance[picked].max() <= np.sort(distance)[9]


def test_uncertain_breaks_ties_by_a_seeded_order_not_by_position():
    queries = [f"q{i}" for i in range(50)]
    rates = np.full(50, 0.5)
    picks = {tuple(select_queries(queries, 5, strategy="uncertain", win_rates=rates, threshold=0.5, seed=s))
             for s in range(5)}
    assert len(picks) > 1                                  # not always the first five
    assert (0, 1, 2, 3, 4) not in picks or len(picks) == 5
    assert uncertainty_order(rates, 0.5, seed=1).tolist() == uncertainty_order(rates, 0.5, seed=1).tolist()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_duplicate_normalised_texts_are_never_picked_twice(strategy):
    queries = ["What is 2+2?", "what is 2 + 2", "WHAT IS 2+2!!", "Write a poem", "write a poem."]
    rates = [0.5, 0.5, 0.5, 0.49, 0.49]
    emb = np.array([[1.0, 0], [1, 0], [1, 0], [0, 1], [0, 1]])
    picked = select_queries(queries, 5, strategy=strategy, win_rates=rates, threshold=0.5, embeddings=emb)
    assert len(picked) == 2
    assert {queries[i].lower()[:5] for i in picked} == {"what ", "write"}


def test_uncertain_diverse_spreads_over_clusters_that_uncertain_leaves_out():
    # 10 queries on topic A sit right at the threshold; topic B is a little farther away
    rng = np.random.default_rng(0)
    queries = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(40)]
    rates = np.r_[0.5 + rng.uniform(-0.01, 0.01, 10), 0.5 + rng.uniform(0.02, 0.03, 40)]
    emb = np.r_[rng.normal([5, 0], 0.1, (10, 2)), rng.normal([0, 5], 0.1, (40, 2))]
    plain = select_queries(queries, 4, strategy="uncertain", win_rates=rates, threshold=0.5)
    diverse = select_queries(queries, 4, strategy="uncertain-diverse", win_rates=rates, threshold=0.5, embeddings=emb)
    assert {q[0] for q in (queries[i] for i in plain)} == {"a"}
    assert {q[0] for q in (queries[i] for i in diverse)} == {"a", "b"}


def test_diverse_takes_one_query_per_cluster():
    rng = np.random.default_rng(1)
    centres = np.array([[10.0, 0], [0, 10], [-10, 0], [0, -10]])
    emb = np.concatenate([rng.normal(c, 0.2, (25, 2)) for c in centres])
    queries = [f"q{i}" for i in range(100)]
    picked = select_queries(queries, 4, strategy="diverse", embeddings=emb)
    assert sorted(i // 25 for i in picked) == [0, 1, 2, 3]


def test_an_unknown_strategy_names_the_close_match():
    with pytest.raises(ValueError, match=r"unknown selection strategy 'uncertian'; did you mean 'uncertain'\?"):
        select_queries(["a"], 1, strategy="uncertian", win_rates=[0.5], threshold=0.5)
    with pytest.raises(ValueError, match=r"unknown selection strategy 'xyz' \(choose from 'random'"):
        select_queries(["a"], 1, strategy="xyz")


@pytest.mark.parametrize("k", [-1, 1.5, True, "3"])
def test_k_must_be_a_non_negative_integer(k):
    with pytest.raises(ValueError, match="k must be"):
        select_queries(["a", "b"], k, strategy="random")


def test_missing_inputs_are_named():
    with pytest.raises(ValueError, match=r"'uncertain' needs win_rates and threshold"):
        select_queries(["a", "b"], 1, strategy="uncertain")
    with pytest.raises(ValueError, match=r"'uncertain' needs threshold"):
        select_queries(["a", "b"], 1, strategy="uncertain", win_rates=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"'uncertain-diverse' needs embeddings"):
        select_queries(["a", "b"], 1, strategy="uncertain-diverse", win_rates=[0.1, 0.2], threshold=0.5)
    with pytest.raises(ValueError, match=r"'diverse' needs embeddings"):
        select_queries(["a", "b"], 1, strategy="diverse")


def test_mismatched_or_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"win_rates has 1 value\(s\) but there are 2 queries"):
        select_queries(["a", "b"], 1, strategy="uncertain", win_rates=[0.1], threshold=0.5)
    with pytest.raises(ValueError, match=r"embeddings has 3 row\(s\) but there are 2 queries"):
        select_queries(["a", "b"], 1, strategy="diverse", embeddings=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"embeddings must be 2-D"):
        select_queries(["a", "b"], 1, strategy="diverse", embeddings=np.zeros(2))
    with pytest.raises(ValueError, match=r"win_rates must be finite: win_rates\[1\] is nan"):
        select_queries(["a", "b"], 1, strategy="uncertain", win_rates=[0.1, float("nan")], threshold=0.5)
    with pytest.raises(ValueError, match=r"threshold must be finite"):
        select_queries(["a", "b"], 1, strategy="uncertain", win_rates=[0.1, 0.2], threshold=float("inf"))
    with pytest.raises(ValueError, match=r"threshold must be a number"):
        select_queries(["a", "b"], 1, strategy="uncertain", win_rates=[0.1, 0.2], threshold="high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"not one string"):
        select_queries("ab", 1, strategy="random")
    with pytest.raises(ValueError, match=r"win_rates must be numbers"):
        select_queries(["a", "b"], 1, strategy="uncertain", win_rates=["x", "y"], threshold=0.5)  # type: ignore[list-item]


def test_no_queries_gives_no_picks():
    assert select_queries([], 5, strategy="uncertain", win_rates=[], threshold=0.5) == []


# --------------------------------------------------------------------------- ShadowLabeller(select=...)
async def _fake(system, user):
    return Generation("[[A]]", "fake", input_tokens=1, output_tokens=1)


def labeller(tmp_path, **kw) -> ShadowLabeller:
    return ShadowLabeller(_fake, tmp_path / "t.db", judge_prompts=PROMPTS, prices={"fake": (1.0, 1.0)}, **kw)


def test_select_is_checked_with_a_close_match(tmp_path):
    with pytest.raises(ValueError, match=r"unknown select 'uncertian'; did you mean 'uncertain'\?"):
        labeller(tmp_path, select="uncertian")
    with pytest.raises(ValueError, match=r"unknown select 'uncertain-diverse'.*\(choose from 'random', 'uncertain'\)"):
        labeller(tmp_path, select="uncertain-diverse")
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        labeller(tmp_path, select="uncertain", window=0)


def test_uncertain_probability_averages_the_fraction_and_falls_with_the_rank():
    ranks = np.linspace(0, 1, 10_001)
    for fraction in (0.0, 0.05, 0.3, 0.5, 0.7, 1.0):
        p = np.array([uncertain_probability(fraction, r) for r in ranks])
        assert p.mean() == pytest.approx(fraction, abs=1e-3)
        assert (np.diff(p) <= 1e-12).all() and p.min() >= 0 and p.max() <= 1
    assert uncertain_probability(0.1, 0.0) == pytest.approx(0.2)
    assert uncertain_probability(0.1, 1.0) == pytest.approx(0.0)


def test_decision_margin_of_a_pair_and_a_pool():
    assert decision_margin(Decision.by_threshold(0.62, 0.5, MODELS, router="r")) == pytest.approx(0.12)
    failed = Decision.by_threshold(0.62, float("nan"), MODELS, router="r")
    assert decision_margin(failed) is None


def _share(shadow: ShadowLabeller, rates: np.ndarray) -> tuple[float, float]:
    """The average shadow probability overall and on the calls nearest the threshold (a tenth)."""
    probs = np.array([shadow.probability(Decision.by_threshold(float(w), 0.5, MODELS, router="r")) for w in rates])
    near = np.abs(rates - 0.5) <= np.quantile(np.abs(rates - 0.5), 0.1)
    return float(probs.mean()), float(probs[near].mean())


def test_uncertain_shadows_calls_near_the_threshold_more_and_keeps_the_share(tmp_path):
    rates = np.random.default_rng(0).beta(2, 2, 5000)
    share, near = _share(labeller(tmp_path, fraction=0.1, select="uncertain", window=500), rates)
    assert share == pytest.approx(0.1, abs=0.01)
    assert near > 0.18                                     # about twice the fraction near the threshold
    random_share, random_near = _share(labeller(tmp_path, fraction=0.1), rates)
    assert random_share == pytest.approx(0.1) and random_near == pytest.approx(0.1)


def test_uncertain_submit_shadows_about_the_fraction_and_more_of_the_close_calls(tmp_path):
    shadow = labeller(tmp_path, fraction=0.2, select="uncertain", seed=0, concurrency=64)
    rates = np.random.default_rng(1).random(1000)
    started = []
    for w in rates:
        d = Decision.by_threshold(float(w), 0.5, MODELS, router="r")
        started.append(shadow.submit(d, query="q", answer="a", models={"strong": _fake, "weak": _fake}))
        shadow.flush()
    started_a = np.array(started)
    assert started_a.mean() == pytest.approx(0.2, abs=0.03)
    close = np.abs(rates - 0.5) < 0.1
    assert started_a[close].mean() > 2 * started_a[~close].mean()
    assert "select='uncertain'" in repr(shadow)


# --------------------------------------------------------------------------- the docs' selection table
def test_the_selection_table_shows_every_strategy_its_difference_to_random_and_the_best(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("results_tables_for_select", root / "scripts" / "results_tables.py")
    assert spec is not None and spec.loader is not None
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)

    def point(k, mean):
        return {"k": k, "router_apgr_mean": mean, "router_apgr_std": 0.01, "router_apgr": [mean],
                "eval_questions": 300, "pool_questions": 600}

    run = {"benchmark": "learning_curve", "command": "python benchmarks/learning_curve.py --strategies ...",
           "machine": "test", "seeds": 3, "eval_size": 3000, "seconds": 120.0, "note": "fewer ks",
           "results": [{"dataset": "gsm8k", "n_questions": 900, "n_questions_in_dataset": 900, "points": [],
                        "strategies": {"random": [point(0, 0.55), point(50, 0.56)],
                                       "uncertain": [point(0, 0.55), point(50, 0.60)]}}]}
    (tmp_path / "benchmarks/results").mkdir(parents=True)
    (tmp_path / "benchmarks/results/learning_selection.json").write_text(json.dumps(run))
    text = tables.learning_selection(tmp_path)
    assert "| GSM8K (gold) | `random` | 0.550 ± 0.010 | 0.560 ± 0.010 |" in text
    assert "| GSM8K (gold) | `uncertain` | 0.550 ± 0.010 | **0.600 ± 0.010 (+0.040)** |" in text
    assert "Prompts: GSM8K 900. Machine: test;" in text
