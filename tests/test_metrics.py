"""The RouteLLM metrics pinned on small cases computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import routellm_core.evaluation as evaluation
from routellm_core.evaluation import (
    Benchmark,
    CurvePoint,
    apgr,
    cpt,
    decile_thresholds,
    evaluate_win_rates,
    fine_curve,
    optimal_score,
    pgr,
    plot_curves,
    random_baseline,
    routing_curve,
)

# Four questions. Sorted win rates 0.1, 0.3, 0.6, 0.9; quartile edges at sorted positions
# 0, 0.75, 1.5, 2.25, 3 -> 0.1, 0.25, 0.45, 0.675, 0.9.
WIN = np.array([0.9, 0.1, 0.6, 0.3])
STRONG = np.array([1, 1, 1, 0])
WEAK = np.array([0, 1, 0, 0])


def _pts(curve):
    return [(p.strong_share, p.score) for p in curve]


def test_all_is_sorted_and_exported():
    assert evaluation.__all__ == sorted(evaluation.__all__)
    for name in evaluation.__all__:
        assert hasattr(evaluation, name), name


# --- routing_curve --------------------------------------------------------------------------


def test_routing_curve_by_hand():
    curve = routing_curve(WIN, STRONG, WEAK, num_results=4, scale=100)
    assert [p.threshold for p in curve] == pytest.approx([0.1, 0.25, 0.45, 0.675, 0.9])
    # >= 0.1: all strong; >= 0.25: q2 weak (still right); >= 0.45: q2, q4 weak;
    # >= 0.675: only q1 strong; > 0.9 (last edge): none strong.
    assert _pts(curve) == [(1.0, 75.0), (0.75, 75.0), (0.5, 75.0), (0.25, 50.0), (0.0, 25.0)]


def test_scale_defaults_to_one():
    curve = routing_curve(WIN, STRONG, WEAK, num_results=4)
    assert [p.score for p in curve] == [0.75, 0.75, 0.75, 0.5, 0.25]


def test_last_edge_is_strict():
    # At the last edge (the maximum) ">=" would still send q1 strong; the paper uses ">".
    curve = routing_curve([0.2, 0.8], [1, 1], [0, 0], num_results=1)
    assert _pts(curve) == [(1.0, 1.0), (0.0, 0.0)]
    assert curve[-1].threshold == 0.8


def test_non_last_edges_are_inclusive():
    curve = routing_curve([0.5, 0.5, 0.5, 0.7], [1, 1, 1, 1], [0, 0, 0, 0], num_results=1)
    assert _pts(curve) == [(1.0, 1.0), (0.0, 0.0)]
    curve = routing_curve([0.1, 0.5, 0.5, 0.9], [1, 1, 1, 1], [0, 0, 0, 0], num_results=2)
    # Middle edge is 0.5 exactly: both 0.5s go strong.
    assert _pts(curve) == [(1.0, 1.0), (0.75, 0.75), (0.0, 0.0)]


def test_duplicate_edges_are_kept_where_qcut_would_raise():
    w = [0.1, 0.2, 0.2, 0.2, 0.9]
    with pytest.raises(ValueError, match="unique"):
        pd.qcut(w, 4, retbins=True)  # the paper's exact call fails here
    assert decile_thresholds(w, 4).tolist() == [0.1, 0.2, 0.2, 0.2, 0.9]
    curve = routing_curve(w, [1] * 5, [0] * 5, num_results=4)
    assert [p.strong_share for p in curve] == [1.0, 0.8, 0.8, 0.8, 0.0]


def test_duplicate_top_edges_keep_the_tied_block():
    # Edges 0.1, 0.5, 0.9, 0.9, 0.9. Dropping duplicates would lose the 60 % point, where the
    # three tied 0.9s go strong; keeping them gives it (and the strict last edge gives 0 %).
    w, strong, weak = [0.1, 0.5, 0.9, 0.9, 0.9], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]
    curve = routing_curve(w, strong, weak, num_results=4)
    assert _pts(curve) == [(1.0, 0.6), (0.8, 0.6), (0.6, 0.6), (0.6, 0.6), (0.0, 0.0)]
    # Sorted: (0,0) (.6,.6)x3 (.8,.6) (1,.6): area .18 + .12 + .12 = .42 over strong .6.
    assert apgr(curve, 0.6, 0.0) == pytest.approx(0.7)
    assert cpt(curve, 0.5, 0.6, 0.0) == pytest.approx(0.3)


def test_thresholds_match_pandas_qcut_when_unique():
    w = np.random.default_rng(3).random(997)
    _, bins = pd.qcut(w, 10, retbins=True)
    assert decile_thresholds(w).shape == (11,)
    np.testing.assert_allclose(decile_thresholds(w), bins, rtol=0, atol=1e-12)


def test_curve_ends_at_strong_and_weak_models():
    rng = np.random.default_rng(0)
    s, w = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    curve = routing_curve(rng.random(300), s, w, scale=100)
    assert len(curve) == 11
    assert (curve[0].strong_share, curve[0].score) == (1.0, 100 * s.mean())
    assert (curve[-1].strong_share, curve[-1].score) == (0.0, 100 * w.mean())
    shares = [p.strong_share for p in curve]
    assert shares == sorted(shares, reverse=True)


@pytest.mark.parametrize(
    "win, strong, weak, match",
    [
        ([0.1, 0.2], [1, 1, 1], [0, 0], "strong_scores has 3 values"),
        ([0.1, np.nan], [1, 1], [0, 0], "NaN"),
        ([], [], [], "non-empty"),
        ([[0.1, 0.2]], [1, 1], [0, 0], "1-D"),
    ],
)
def test_routing_curve_rejects_bad_input(win, strong, weak, match):
    with pytest.raises(ValueError, match=match):
        routing_curve(win, strong, weak)


def test_num_results_must_be_positive():
    with pytest.raises(ValueError, match="num_results"):
        routing_curve(WIN, STRONG, WEAK, num_results=0)


def test_fine_curve_is_a_denser_routing_curve():
    rng = np.random.default_rng(1)
    w, s, k = rng.random(500), rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    fine = fine_curve(w, s, k, points=51, scale=100)
    assert len(fine) == 51
    assert _pts(fine) == _pts(routing_curve(w, s, k, num_results=50, scale=100))
    with pytest.raises(ValueError, match="points"):
        fine_curve(w, s, k, points=1)


# --- PGR, APGR, CPT -------------------------------------------------------------------------


def test_pgr():
    assert pgr(75.0, 80.0, 70.0) == 0.5
    assert pgr(70.0, 80.0, 70.0) == 0.0
    assert pgr(82.0, 80.0, 70.0) == pytest.approx(1.2)
    with pytest.raises(ValueError, match="equal"):
        pgr(1.0, 2.0, 2.0)


def test_apgr_by_hand():
    curve = routing_curve(WIN, STRONG, WEAK, num_results=4, scale=100)
    # Sorted by share: (0,25) (.25,50) (.5,75) (.75,75) (1,75).
    # Trapezoids: 9.375 + 15.625 + 18.75 + 18.75 = 62.5; weak area 25, strong area 75.
    assert apgr(curve, 75.0, 25.0) == pytest.approx((62.5 - 25) / (75 - 25))


def test_apgr_straight_line_is_half_and_order_does_not_matter():
    line = [CurvePoint(0.9, 0.0, 70.0), CurvePoint(0.5, 0.5, 75.0), CurvePoint(0.1, 1.0, 80.0)]
    assert apgr(line, 80.0, 70.0) == pytest.approx(0.5)
    bent = [CurvePoint(0.1, 1.0, 80.0), CurvePoint(0.9, 0.0, 70.0), CurvePoint(0.5, 0.5, 80.0)]
    # 0.5 * 75 + 0.5 * 80 = 77.5 -> (77.5 - 70) / 10.
    assert apgr(bent, 80.0, 70.0) == pytest.approx(0.75)


def test_apgr_normalises_over_the_curves_own_share_range():
    # Shares only span [0.2, 0.6]: areas of weak (70) and strong (80) are over that width too.
    pts = [CurvePoint(0.5, 0.2, 70.0), CurvePoint(0.3, 0.6, 80.0)]
    assert apgr(pts, 80.0, 70.0) == pytest.approx(0.5)


def test_apgr_undefined_cases_raise():
    with pytest.raises(ValueError, match="undefined"):
        apgr([CurvePoint(0.5, 0.5, 1.0), CurvePoint(0.4, 0.5, 2.0)], 2.0, 1.0)
    with pytest.raises(ValueError, match="undefined"):
        apgr([CurvePoint(0.5, 0.0, 1.0), CurvePoint(0.4, 1.0, 1.0)], 1.0, 1.0)
    with pytest.raises(ValueError, match="no points"):
        apgr([], 2.0, 1.0)


def test_cpt_interpolates_between_points():
    curve = routing_curve(WIN, STRONG, WEAK, num_results=4, scale=100)
    # 50 % of the gap = 50, hit exactly at share .25.
    assert cpt(curve, 0.5, 75.0, 25.0) == pytest.approx(0.25)
    # 80 % = 65: between (.25, 50) and (.5, 75): .25 + 15/25 * .25 = .4.
    assert cpt(curve, 0.8, 75.0, 25.0) == pytest.approx(0.4)
    # RouteLLM's evaluate.py: np.interp of the target over the scores (sorted by share), which
    # agrees with the first crossing on a curve whose score rises with the share, as this one.
    xs = [p.strong_share for p in sorted(curve, key=lambda p: p.strong_share)]
    ys = [p.score for p in sorted(curve, key=lambda p: p.strong_share)]
    assert np.all(np.diff(ys) >= 0)
    for level in (0.2, 0.5, 0.8):
        target = 25.0 + level * (75.0 - 25.0)
        assert cpt(curve, level, 75.0, 25.0) == pytest.approx(np.interp(target, ys, xs))
    # Without interpolation: the smallest decile share whose score reaches the target.
    assert cpt(curve, 0.8, 75.0, 25.0, interpolate=False) == 0.5
    assert cpt(curve, 0.5, 75.0, 25.0, interpolate=False) == 0.25


def test_cpt_takes_the_first_crossing_and_edge_cases():
    pts = [CurvePoint(0.9, 0.0, 70.0), CurvePoint(0.7, 0.25, 76.0), CurvePoint(0.5, 0.5, 74.0),
           CurvePoint(0.1, 1.0, 80.0)]
    # Target 75 first reached between (0, 70) and (.25, 76): 5/6 * .25.
    assert cpt(pts, 0.5, 80.0, 70.0) == pytest.approx(0.25 * 5 / 6)
    assert cpt(pts, 0.0, 80.0, 70.0) == 0.0  # the weak end already reaches 0 %
    assert cpt(pts, 1.0, 80.0, 70.0) == 1.0
    assert cpt(pts, 1.01, 80.0, 70.0) is None
    assert cpt(pts, 1.01, 80.0, 70.0, interpolate=False) is None
    with pytest.raises(ValueError, match="equal"):
        cpt(pts, 0.5, 70.0, 70.0)


def test_metrics_match_a_transcription_of_the_papers_code():
    """RouteLLM's MMLU.evaluate + evaluate.py (auc, apgr) on random data, and the smallest
    decile share reaching 50% of the gap (evaluate.py interpolates instead: see the test above)."""
    rng = np.random.default_rng(7)
    n = 503
    data = pd.DataFrame({"strong": rng.random(n) < 0.8, "weak": rng.random(n) < 0.65})
    win = rng.random(n)
    _, thresholds = pd.qcut(win, 10, retbins=True)
    rows = []
    for i, threshold in enumerate(thresholds):
        selection = win >= threshold if i != len(thresholds) - 1 else win > threshold
        results = np.where(selection, data["strong"], data["weak"])
        rows.append((selection.sum() / n * 100, sum(results) / len(results) * 100))
    df = pd.DataFrame(rows, columns=["strong_percentage", "accuracies"])
    weak_acc, strong_acc = data["weak"].sum() / n * 100, data["strong"].sum() / n * 100
    auc = np.trapezoid(df["accuracies"], df["strong_percentage"] / 100)
    weak_auc = np.trapezoid(np.full(len(df), weak_acc), df["strong_percentage"] / 100)
    strong_auc = np.trapezoid(np.full(len(df), strong_acc), df["strong_percentage"] / 100)
    paper_apgr = (auc - weak_auc) / (strong_auc - weak_auc)
    paper_cpt50 = df[df["accuracies"] >= weak_acc + 0.5 * (strong_acc - weak_acc)][
        "strong_percentage"
    ].min()

    curve = routing_curve(win, data["strong"], data["weak"], scale=100)
    assert [100 * p.strong_share for p in curve] == pytest.approx(df["strong_percentage"].tolist())
    assert [p.score for p in curve] == pytest.approx(df["accuracies"].tolist())
    assert apgr(curve, strong_acc, weak_acc) == pytest.approx(paper_apgr)
    assert 100 * cpt(curve, 0.5, strong_acc, weak_acc, interpolate=False) == pytest.approx(
        paper_cpt50
    )


# --- optimal score and random baseline ------------------------------------------------------


def test_optimal_score_by_hand():
    # Weak is right on q2 only; strong adds q1 and q3 (two helpful strong calls).
    assert optimal_score(0.0, STRONG, WEAK, scale=100) == 25.0
    assert optimal_score(0.25, STRONG, WEAK, scale=100) == 50.0
    assert optimal_score(0.375, STRONG, WEAK, scale=100) == 62.5  # paper: 1 + min(1.5, 2)
    assert optimal_score(0.5, STRONG, WEAK, scale=100) == 75.0
    assert optimal_score(1.0, STRONG, WEAK, scale=100) == 75.0
    # Graded scores: gains 2, 0 (never negative), 6; one strong call takes the 6.
    assert optimal_score(1 / 3, [8, 5, 9], [6, 7, 3]) == pytest.approx(22 / 3)
    with pytest.raises(ValueError, match="strong_share"):
        optimal_score(1.5, STRONG, WEAK)


def test_random_baseline_averages_seeded_curves():
    rng = np.random.default_rng(1002)
    s, w = rng.random(100) < 0.8, rng.random(100) < 0.5
    result = random_baseline(s, w, seeds=3, scale=100)
    runs = [
        routing_curve(np.random.default_rng(seed).uniform(0, 1, 100), s, w, scale=100)
        for seed in range(3)
    ]
    expected = np.mean([[p.score for p in run] for run in runs], axis=0)
    assert [p.score for p in result["curve"]] == pytest.approx(expected.tolist())
    # With 100 distinct uniform win rates each decile edge sends exactly 10 % fewer strong.
    assert [p.strong_share for p in result["curve"]] == pytest.approx(
        [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    )
    assert result["apgr"] == pytest.approx(apgr(result["curve"], 100 * s.mean(), 100 * w.mean()))
    assert result["cpt50"] == pytest.approx(
        cpt(result["curve"], 0.5, 100 * s.mean(), 100 * w.mean())
    )
    assert random_baseline(s, w, seeds=3, scale=100) == result  # reproducible
    with pytest.raises(ValueError, match="seeds"):
        random_baseline(s, w, seeds=0)


def test_random_baseline_apgr_is_about_half():
    # Not seeds 0-9: the baseline's own win rates would then correlate with the data.
    rng = np.random.default_rng(12345)
    s, w = rng.random(5000) < 0.8, rng.random(5000) < 0.6
    assert random_baseline(s, w)["apgr"] == pytest.approx(0.5, abs=0.03)


# --- evaluate_win_rates and plots -----------------------------------------------------------


def _toy_benchmark() -> Benchmark:
    return Benchmark(
        name="toy", prompts=["a", "b", "c", "d"], strong_scores=STRONG, weak_scores=WEAK,
        question_ids=np.arange(4), strong_model="big", weak_model="small",
        n_removed_contaminated=2, score_scale=100.0, score_unit="accuracy (%)",
    )


def test_evaluate_win_rates_result():
    result = evaluate_win_rates(_toy_benchmark(), WIN, router_name="toy", num_results=4,
                                fine_points=5, seeds=2)
    json.dumps(result)  # JSON-ready
    for key in ("benchmark", "router", "n_queries", "strong_score", "weak_score", "apgr",
                "cpt50", "cpt80", "random_apgr", "random_cpt50", "random_cpt80", "curve",
                "fine_curve", "random_curve", "strong_model", "weak_model",
                "n_removed_contaminated"):
        assert key in result, key
    assert (result["benchmark"], result["router"], result["n_queries"]) == ("toy", "toy", 4)
    assert (result["strong_model"], result["weak_model"]) == ("big", "small")
    assert result["n_removed_contaminated"] == 2
    assert (result["strong_score"], result["weak_score"]) == (75.0, 25.0)
    assert result["apgr"] == pytest.approx(0.75)
    assert (result["cpt50"], result["cpt80"]) == pytest.approx((0.25, 0.4))
    assert (result["cpt50_at_points"], result["cpt80_at_points"]) == (0.25, 0.5)
    assert [(p["strong_share"], p["score"]) for p in result["curve"]] == _pts(
        routing_curve(WIN, STRONG, WEAK, num_results=4, scale=100)
    )
    assert len(result["fine_curve"]) == 5 and len(result["random_curve"]) == 5
    assert set(result["curve"][0]) == {"threshold", "strong_share", "score"}


def test_evaluate_win_rates_checks_length():
    with pytest.raises(ValueError, match="expected 4"):
        evaluate_win_rates(_toy_benchmark(), [0.1, 0.2], router_name="toy")


def test_plot_curves_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    bench = Benchmark("toy", ["q"] * 300, rng.random(300) < 0.8, rng.random(300) < 0.6,
                      np.arange(300), "big", "small", 0, 100.0, "accuracy (%)")
    result = evaluate_win_rates(bench, rng.random(300), router_name="rand")
    out = plot_curves(result, tmp_path / "sub" / "toy.png")
    assert out == tmp_path / "sub" / "toy.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    with pytest.raises(ValueError, match="apgr"):
        plot_curves({"curve": [], "random_curve": [], "strong_score": 1, "weak_score": 0},
                    tmp_path / "x.png")


# --------------------------------------------------------------------------- win rates as probabilities
def test_reliability_is_small_for_calibrated_and_large_for_overconfident_win_rates():
    from routellm_core.evaluation import pair_outcomes, reliability

    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 1.0, 20_000)
    calibrated = reliability(p, (rng.uniform(size=p.size) < p).astype(float))
    assert calibrated["ece"] < 0.02 and len(calibrated["bins"]) == 10
    assert calibrated["win_rate_p05"] < 0.1 and calibrated["win_rate_p95"] > 0.9
    ties = pair_outcomes([1, 0, 1, 0], [1, 0, 0, 1])
    assert ties.tolist() == [0.5, 0.5, 1.0, 0.0]
    assert reliability(np.full(4, 0.9), ties, bins=1)["ece"] == pytest.approx(0.4)  # 0.9 against 0.5 on average
    assert reliability(np.full(4, 0.9), ties)["ece"] == pytest.approx(0.45)  # a bin per query: 0.4, 0.4, 0.1, 0.9


@pytest.mark.parametrize("rates, outcomes, bins, match", [
    ([], [], 10, "non-empty"), ([0.5, np.nan], [1.0, 0.0], 10, "NaN"),
    ([0.5, 0.6], [1.0], 10, "one per query"), ([0.5], [1.0], 0, "bins"),
])
def test_reliability_rejects_bad_input(rates, outcomes, bins, match):
    from routellm_core.evaluation import reliability

    with pytest.raises(ValueError, match=match):
        reliability(rates, outcomes, bins=bins)
