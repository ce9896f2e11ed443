"""Routers: learning, scoring, decisions and bad input, on a real encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routellm_core.routers import (
    MatrixFactorizationRouter,
    NotFittedError,
    RandomRouter,
    SWRankingRouter,
    UnknownModelError,
    get_router_class,
)
from routellm_core.routers.sw_ranking import full_refit_win_rate
from tests.routing_fixtures import EASY, HARD, toy_battles

PAIR = {"strong_model": "big-model", "weak_model": "small-model"}


@pytest.fixture(scope="module")
def battles():
    return toy_battles()


@pytest.fixture(scope="module")
def mf(battles):
    return MatrixFactorizationRouter(epochs=300, lr=3e-3, patience=300, val_fraction=0.0, **PAIR).fit(battles)


@pytest.fixture(scope="module")
def sw(battles):
    return SWRankingRouter(n_tiers=3, **PAIR).fit(battles)


def test_mf_learns_which_queries_need_the_strong_model(mf):
    hard = mf.win_rate(["Prove that there are infinitely many twin-free primes below n.",
                        "Compute the determinant of [[1, 2], [3, 4]]."])
    easy = mf.win_rate(["Hello, how are you?", "Say thanks to my colleague."])
    assert hard.min() > easy.max()
    assert mf.history_[-1]["train_loss"] < mf.history_[0]["train_loss"]


def test_mf_scores_any_known_pair_and_names_unknown_models(mf):
    rates = mf.win_rate(["Prove Fermat's little theorem."], strong_model="mid-model", weak_model="small-model")
    assert 0.0 <= rates[0] <= 1.0
    with pytest.raises(UnknownModelError, match=r"'gpt-9'.*known models: \['big-model', 'mid-model', 'small-model'\]"):
        mf.win_rate(["hi"], strong_model="gpt-9")
    with pytest.raises(ValueError, match="same model"):
        mf.win_rate(["hi"], strong_model="big-model", weak_model="big-model")


def test_alias_maps_a_new_name_onto_a_known_model(battles):
    router = MatrixFactorizationRouter(epochs=3, aliases={"gpt-4o": "big-model"}, **PAIR).fit(battles)
    a = router.win_rate(["Prove it."], strong_model="gpt-4o")
    b = router.win_rate(["Prove it."], strong_model="big-model")
    assert a == pytest.approx(b)


def test_sw_ranking_prefers_strong_on_hard_queries(sw):
    assert sw.win_rate([HARD[0]])[0] > sw.win_rate([EASY[0]])[0]
    assert sw.tiers_["big-model"] > sw.tiers_["small-model"]


@pytest.mark.parametrize("query", ["Prove that e is irrational.", "Hello friend!", "Describe the water cycle."])
def test_sw_sufficient_statistics_match_a_full_per_query_refit(sw, battles, query):
    fast = sw.win_rate([query])[0]
    slow = full_refit_win_rate(sw, battles, query)
    assert fast == pytest.approx(slow, abs=1e-5)


def test_sw_rejects_a_pair_inside_one_tier(battles):
    router = SWRankingRouter(n_tiers=1, **PAIR).fit(battles)
    with pytest.raises(ValueError, match="same Elo tier"):
        router.win_rate(["hi"])


def test_random_router_is_uniform_and_seeded():
    a = RandomRouter(seed=1).win_rate(["x"] * 2000)
    b = RandomRouter(seed=1).win_rate(["x"] * 2000)
    assert np.array_equal(a, b)
    assert 0.45 < a.mean() < 0.55 and a.min() >= 0 and a.max() <= 1


def test_route_is_strong_exactly_when_win_rate_reaches_threshold(mf):
    texts = [HARD[0], EASY[0]]
    rates = mf.win_rate(texts)
    decisions = mf.route(texts, threshold=float(rates[0]))
    assert decisions[0].route == "strong" and decisions[0].model == "big-model"
    assert decisions[0].win_rate == pytest.approx(rates[0])
    assert decisions[1].route == ("strong" if rates[1] >= rates[0] else "weak")
    assert decisions[0].as_metadata()["routellm_router"] == "mf"
    assert all(d.route == "strong" for d in mf.route(texts, threshold=0.0))


@pytest.mark.parametrize("bad", [-0.01, 1.5, math.nan, "0.5", None, True])
def test_threshold_out_of_range_or_not_a_number_is_refused(mf, bad):
    with pytest.raises((ValueError, TypeError), match="threshold"):
        mf.route(["hi"], threshold=bad) if bad is not None else mf.route(["hi"])


def test_strong_fraction_needs_a_calibration_table(mf):
    with pytest.raises(ValueError, match="no calibration table"):
        mf.route(["hi"], strong_fraction=0.3)
    with pytest.raises(ValueError, match="exactly one"):
        mf.route(["hi"], threshold=0.3, strong_fraction=0.3)


@pytest.mark.parametrize(
    "texts, error, message",
    [
        ([], ValueError, "empty sequence"),
        ("a single string", TypeError, "single string"),
        (["ok", ""], ValueError, "text 1 is empty"),
        (["   "], ValueError, "text 0 is empty"),
        ([None], TypeError, "text 0 is NoneType"),
        ([{"type": "image_url"}], TypeError, "text 0 is dict"),
    ],
)
def test_bad_texts_get_a_clear_error(mf, texts, error, message):
    with pytest.raises(error, match=message):
        mf.win_rate(texts)


def test_unfitted_routers_say_so():
    with pytest.raises(NotFittedError, match="not trained"):
        MatrixFactorizationRouter().win_rate(["hi"])
    with pytest.raises(NotFittedError, match="not trained"):
        SWRankingRouter().win_rate(["hi"])


def test_unknown_router_type_lists_the_known_ones():
    known = r"\['bert', 'causal_llm', 'mf', 'random', 'sw_ranking'\]"
    with pytest.raises(ValueError, match=r"unknown router 'bert2'.*" + known):
        get_router_class("bert2")


def test_training_on_no_battles_is_an_error(battles):
    with pytest.raises(ValueError, match="zero battles"):
        MatrixFactorizationRouter().fit(battles.iloc[:0])
    with pytest.raises(ValueError, match="zero battles"):
        SWRankingRouter().fit(battles.iloc[:0])
