"""The bottom decision module: decisions and per-call settings, below the routers and the pools,
and the one threshold rule both apply."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from routellm_core.calibration import CalibrationTable
from routellm_core.decision import (
    DEFAULT_STRONG_FRACTION,
    Decision,
    NWaySetting,
    PairSetting,
    Setting,
    pair_threshold,
)
from routellm_core.errors import RoutingSettingWarning


class _Router:
    """Just what :func:`pair_threshold` reads of a router."""

    name = "fake"

    def __init__(self, calibration: CalibrationTable | None) -> None:
        self.calibration_ = calibration

    def resolve_threshold(self, threshold: float | None = None, strong_fraction: float | None = None) -> float:
        if threshold is not None:
            return threshold
        assert self.calibration_ is not None and strong_fraction is not None
        return self.calibration_.threshold_for(strong_fraction)


TABLE = CalibrationTable.from_win_rates(np.linspace(0.40, 0.45, 101))


def test_the_old_paths_give_the_same_objects():
    import routellm_core
    from routellm_core import routing
    from routellm_core.routing import decision as old
    from routellm_core.routing import pool

    assert old.Decision is routing.Decision is routellm_core.Decision is Decision
    assert old.PAIR_ROUTES == ("strong", "weak")
    assert routing.PairSetting is PairSetting and routing.NWaySetting is NWaySetting
    assert routing.Setting == Setting == pool.Setting
    assert pool.DEFAULT_STRONG_FRACTION == DEFAULT_STRONG_FRACTION


def test_a_pair_setting_is_a_tuple_and_a_pool_setting_holds_a_copy_of_its_lambdas():
    assert PairSetting(threshold=0.7) == (0.7, None)
    t, f = PairSetting(strong_fraction=0.3)
    assert (t, f) == (None, 0.3)
    lambdas = {"cost": 0.2}
    setting = NWaySetting(lambdas)
    lambdas["cost"] = 9.0
    assert setting.lambdas == {"cost": 0.2}


def test_pair_threshold_defaults_to_half_the_calls_or_one_half():
    assert pair_threshold(_Router(None), PairSetting()) == 0.5
    assert pair_threshold(_Router(TABLE), PairSetting()) == TABLE.threshold_for(DEFAULT_STRONG_FRACTION)
    assert pair_threshold(_Router(TABLE), PairSetting(strong_fraction=0.2)) == TABLE.threshold_for(0.2)


def test_pair_threshold_warns_of_a_one_sided_threshold_once_per_memory():
    router = _Router(TABLE)
    with pytest.warns(RoutingSettingWarning, match="threshold=0.9"):
        assert pair_threshold(router, PairSetting(threshold=0.9)) == 0.9
    warned: set[float] = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            pair_threshold(router, PairSetting(threshold=0.9), warned=warned)
    assert len(caught) == 1 and warned == {0.9}


def test_a_routers_route_and_a_pair_pool_decide_alike():
    from routellm_core import load_router
    from routellm_core.routing import Pool

    router = load_router("default")
    texts = ["hi!", "Prove that there are infinitely many primes."]
    pool = Pool.pair(router, strong=router.strong_model, weak=router.weak_model)
    for setting in (PairSetting(strong_fraction=0.3), PairSetting(threshold=0.575)):
        by_router = router.route(texts, threshold=setting.threshold, strong_fraction=setting.strong_fraction)
        by_pool = pool.route(texts, [setting] * len(texts))
        assert [(d.route, d.threshold, d.win_rate) for d in by_router] == \
               [(d.route, d.threshold, d.win_rate) for d in by_pool]
    with pytest.raises(ValueError, match="exactly one"):
        router.route(texts)


def test_a_utility_decision_keys_everything_by_route():
    d = Decision.by_utility(2, [0.9, 0.8, 0.7], [0.1, 0.2, 0.6], {"a": "model-a", "b": "model-b", "c": "model-c"},
                            {"cost": 1.0}, router="quality")
    assert (d.route, d.model, d.reference, d.rule) == ("c", "model-c", "a", "utility")
    assert d.scores == {"a": 0.9, "b": 0.8, "c": 0.7} and d.lambdas == {"cost": 1.0}
    assert d.ranking() == ["c", "b", "a"]


def test_the_torch_loop_lives_with_the_routers_and_stays_importable_from_training():
    import pytest

    from routellm_core.routers import _torch_loop
    from routellm_core.training import torch_loop

    for name in _torch_loop.__all__:
        with pytest.warns(DeprecationWarning, match=f"import {name} from routellm_core.routers._torch_loop"):
            assert getattr(torch_loop, name) is getattr(_torch_loop, name)
