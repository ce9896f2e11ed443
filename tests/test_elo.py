"""Elo ratings (RouteLLM's Bradley-Terry MLE with ties) and the tier grouping."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from routellm_core.data.elo import compute_elo, group_tiers


def _random_battles(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    models = ["m0", "m1", "m2", "m3", "m4"]
    strength = np.array([0.0, 0.4, 0.8, 1.1, 1.9])
    a = rng.integers(0, 5, n)
    b = (a + rng.integers(1, 5, n)) % 5
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    u = rng.random(n)
    winner = np.where(u < 0.15, "tie", np.where(u < 0.15 + 0.85 * p, "a", "b"))
    return pd.DataFrame({"model_a": np.array(models)[a], "model_b": np.array(models)[b], "winner": winner})


def _sklearn_elo(df: pd.DataFrame, sample_weight=None, scale=400, base=10, init=1000) -> pd.Series:
    """RouteLLM's compute_elo_mle_with_tie, verbatim in substance, on per-battle rows."""
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn (the test extra) is not installed")
    from sklearn.linear_model import LogisticRegression

    models = pd.Series(np.arange(len(m := pd.concat([df["model_a"], df["model_b"]]).unique())), index=m)
    df = pd.concat([df, df], ignore_index=True)
    n, p = len(df), len(models)
    X = np.zeros([n, p])
    X[np.arange(n), models[df["model_a"]].to_numpy()] = +math.log(base)
    X[np.arange(n), models[df["model_b"]].to_numpy()] = -math.log(base)
    Y = np.zeros(n)
    Y[(df["winner"] == "a").to_numpy()] = 1.0
    tie = (df["winner"] == "tie").to_numpy().copy()
    tie[len(tie) // 2 :] = False
    Y[tie] = 1.0
    if sample_weight is not None:
        sample_weight = np.concatenate([sample_weight, sample_weight])
    major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
    no_penalty = {"C": np.inf} if (major, minor) >= (1, 8) else {"penalty": None}
    lr = LogisticRegression(fit_intercept=False, tol=1e-12, max_iter=10_000, **no_penalty)
    lr.fit(X, Y, sample_weight=sample_weight)
    return pd.Series(scale * lr.coef_[0] + init, index=models.index)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn_logistic_regression(seed):
    battles = _random_battles(seed)
    ours = compute_elo(battles)
    ref = _sklearn_elo(battles)
    ours, ref = ours.sort_index(), ref.sort_index()
    diff_ours = ours.to_numpy()[:, None] - ours.to_numpy()[None, :]
    diff_ref = ref.to_numpy()[:, None] - ref.to_numpy()[None, :]
    np.testing.assert_allclose(diff_ours, diff_ref, atol=1e-3)
    assert ours.idxmax() == "m4" and ours.idxmin() == "m0"


def test_matches_sklearn_with_sample_weight_and_other_scale():
    battles = _random_battles(2, n=400)
    w = np.random.default_rng(3).uniform(0.01, 3.0, len(battles))
    ours = compute_elo(battles, sample_weight=w, scale=173.0, base=math.e, init_rating=1500).sort_index()
    ref = _sklearn_elo(battles, sample_weight=w, scale=173.0, base=math.e, init=1500).sort_index()
    np.testing.assert_allclose(ours - ours.mean(), ref - ref.mean(), atol=1e-3)
    assert ours.mean() == pytest.approx(1500.0)


def test_closed_form_two_models_with_ties():
    # A beats B 3 times, B beats A once: R_A - R_B = 400 log10(3).
    df = pd.DataFrame({"model_a": ["A"] * 4, "model_b": ["B"] * 4, "winner": ["a", "a", "a", "b"]})
    r = compute_elo(df)
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert r.mean() == pytest.approx(1000.0) and list(r.index) == ["A", "B"]
    # One win and two ties: a tie is half a win each way, so the odds are 2 : 1.
    df = pd.DataFrame({"model_a": ["A", "B", "A"], "model_b": ["B", "A", "B"], "winner": ["a", "tie", "tie"]})
    r = compute_elo(df)
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(2), abs=1e-6)


def test_side_swap_and_routellm_labels_give_same_ratings():
    battles = _random_battles(4, n=200)
    swapped = pd.DataFrame({
        "model_a": battles["model_b"], "model_b": battles["model_a"],
        "winner": battles["winner"].map({"a": "b", "b": "a", "tie": "tie"}),
    })
    routellm = battles.assign(winner=battles["winner"].map({"a": "model_a", "b": "model_b", "tie": "tie (bothbad)"}))
    base = compute_elo(battles).sort_index()
    pd.testing.assert_series_equal(compute_elo(swapped).sort_index(), base, atol=1e-6)
    pd.testing.assert_series_equal(compute_elo(routellm).sort_index(), base, atol=1e-6)


def test_weights_scale_invariant_and_zero_weight_drops_battle():
    battles = _random_battles(5, n=200)
    base = compute_elo(battles)
    pd.testing.assert_series_equal(compute_elo(battles, sample_weight=np.full(200, 7.0)), base, atol=1e-6)
    extra = pd.concat([battles, pd.DataFrame({"model_a": ["m0"] * 50, "model_b": ["m4"] * 50, "winner": "a"})],
                      ignore_index=True)
    w = np.r_[np.ones(200), np.zeros(50)]
    pd.testing.assert_series_equal(compute_elo(extra, sample_weight=w), base, atol=1e-6)
    assert compute_elo(extra)["m0"] > base["m0"] + 50  # the same battles, weighted, do count


def test_undefeated_model_gets_finite_top_rating():
    df = pd.DataFrame(
        {"model_a": ["A", "A", "B", "C"], "model_b": ["B", "C", "C", "B"], "winner": ["a", "a", "a", "tie"]}
    )
    r = compute_elo(df)
    assert np.all(np.isfinite(r.to_numpy())) and list(r.index)[0] == "A"
    assert r.mean() == pytest.approx(1000.0)


def test_compute_elo_errors():
    ok = pd.DataFrame({"model_a": ["A"], "model_b": ["B"], "winner": ["a"]})
    with pytest.raises(ValueError, match=r"missing columns \['winner'\]"):
        compute_elo(ok.drop(columns="winner"))
    with pytest.raises(ValueError, match="zero battles"):
        compute_elo(ok.iloc[:0])
    with pytest.raises(ValueError, match="battle 0 has winner 'draw'"):
        compute_elo(ok.assign(winner="draw"))
    with pytest.raises(ValueError, match="one per battle"):
        compute_elo(ok, sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        compute_elo(ok, sample_weight=[-1.0])
    with pytest.raises(ValueError, match="against itself"):
        compute_elo(ok.assign(model_b="A"))


# --------------------------------------------------------------------------- tiers


def _brute_force_cost(values: np.ndarray, n_tiers: int) -> float:
    n = len(values)
    best = math.inf
    for cuts in combinations(range(1, n), n_tiers - 1):
        bounds = (0, *cuts, n)
        cost = sum(((values[i:j] - values[i:j].mean()) ** 2).sum() for i, j in zip(bounds, bounds[1:]))
        best = min(best, cost)
    return best


def _cost_of(ratings: dict[str, float], tiers: dict[str, int]) -> float:
    total = 0.0
    for t in set(tiers.values()):
        v = np.array([ratings[m] for m in tiers if tiers[m] == t])
        total += ((v - v.mean()) ** 2).sum()
    return total


def test_group_tiers_hand_checked():
    r = pd.Series({"a": 1.0, "b": 2.0, "c": 10.0, "d": 11.0, "e": 20.0})
    assert group_tiers(r, n_tiers=3) == {"a": 0, "b": 0, "c": 1, "d": 1, "e": 2}
    # {1,2}{10,11,20}: SSE 0.5 + 60.67 beats {1,2,10,11}{20}: 82 and {1,2,10}{11,20}: 89.2.
    assert group_tiers(r, n_tiers=2) == {"a": 0, "b": 0, "c": 1, "d": 1, "e": 1}
    assert group_tiers(r, n_tiers=1) == dict.fromkeys("abcde", 0)
    # Tier 0 is the lowest rating, whatever the input order.
    assert group_tiers({"hi": 1200.0, "lo": 800.0, "mid": 1000.0}, n_tiers=2) in (
        {"lo": 0, "mid": 1, "hi": 1}, {"lo": 0, "mid": 0, "hi": 1})
    assert group_tiers({"x": 5.0, "y": 5.0, "z": 9.0}, n_tiers=2) == {"x": 0, "y": 0, "z": 1}


def test_group_tiers_fewer_models_than_tiers():
    assert group_tiers({"c": 3.0, "a": 1.0, "b": 2.0}, n_tiers=10) == {"a": 0, "b": 1, "c": 2}
    assert group_tiers(pd.Series(dtype=float), n_tiers=3) == {}


@pytest.mark.parametrize("seed", range(5))
def test_group_tiers_is_optimal_and_contiguous(seed):
    rng = np.random.default_rng(seed)
    n, k = 9, 4
    ratings = {f"m{i}": float(v) for i, v in enumerate(rng.normal(1000, 150, n))}
    tiers = group_tiers(ratings, n_tiers=k)
    assert sorted(set(tiers.values())) == list(range(k))
    order = sorted(ratings, key=ratings.get)
    assert [tiers[m] for m in order] == sorted(tiers[m] for m in order)  # contiguous, ascending
    assert _cost_of(ratings, tiers) == pytest.approx(
        _brute_force_cost(np.array(sorted(ratings.values())), k), rel=1e-9, abs=1e-9)


def test_group_tiers_errors():
    with pytest.raises(ValueError, match="positive integer"):
        group_tiers({"a": 1.0}, n_tiers=0)
    with pytest.raises(ValueError, match="NaN"):
        group_tiers({"a": 1.0, "b": float("nan")})


def test_elo_then_tiers_on_realistic_battles():
    ratings = compute_elo(_random_battles(6, n=1500))
    tiers = group_tiers(ratings, n_tiers=3)
    assert tiers["m4"] == 2 and tiers["m0"] == 0
