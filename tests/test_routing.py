"""The one routing interface: pairs and pools behind ``Pool.route``, one ``Decision`` type,
one validation of per-call settings, one failure policy; and the shared call helpers."""

from __future__ import annotations

import math

import pytest

from routellm_core import save_router
from routellm_core.calls import content_text, first_settings, pop_settings, usage_of
from routellm_core.checkpoints import CheckpointError
from routellm_core.routers import SWRankingRouter
from routellm_core.routing import Decision, NWayPool, PairPool, Pool, RouterFailure, make_pool, shared_router
from tests.routing_fixtures import EASY, HARD, toy_battles

NWAY = ["llama-3.1-8b-instruct", "gemma-2-9b-it", "llama-3.1-nemotron-51b-instruct"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A real SW router over the toy battles' models, saved as a checkpoint."""
    router = SWRankingRouter(n_tiers=3, strong_model="big-model", weak_model="small-model").fit(toy_battles())
    return router, save_router(router, tmp_path_factory.mktemp("toy") / "ckpt")


def test_a_pair_and_a_pool_route_through_the_same_interface():
    pair = make_pool(strong="gpt-4o", weak="gpt-4o-mini", threshold=0.5)
    pool = make_pool(models=NWAY, lambdas={"cost": 0.2})
    assert isinstance(pair, PairPool) and isinstance(pool, NWayPool)
    for p in (pair, pool):
        decisions = p.route([HARD[0], EASY[0]])
        assert all(isinstance(d, Decision) for d in decisions)
        assert all(d.route in p.routes and d.model == p.models[d.route] for d in decisions)
        assert all(not d.router_failed for d in decisions)
        meta = decisions[0].as_metadata()
        assert {"routellm_route", "routellm_model", "routellm_router", "routellm_rule"} <= set(meta)
    d = pair.route([HARD[0]])[0]
    assert d.rule == "threshold" and d.route == ("strong" if d.win_rate >= 0.5 else "weak")
    assert d.record_fields()["strong_model"] == "gpt-4o"
    d = pool.route([HARD[0]])[0]
    assert d.rule == "utility" and d.reference_model == NWAY[0] and set(d.utilities) == set(NWAY)
    assert d.model == max(d.utilities, key=d.utilities.get)


def test_settings_are_checked_in_one_place_and_the_wrong_rule_is_named():
    pair = Pool.pair(strong="a", weak="b", strong_fraction=0.3)
    pool = Pool.of(None, NWAY, lambdas={"cost": 0.2})
    assert pair.setting() == (None, 0.3) and pair.setting(threshold=0.7) == (0.7, None)
    with pytest.raises(ValueError, match="not both"):
        pair.setting(threshold=0.7, strong_fraction=0.2)
    with pytest.raises(ValueError, match="threshold must be in"):
        pair.setting(threshold=1.5)
    with pytest.raises(ValueError, match="lambdas apply to a pool"):
        pair.setting(lambdas={"cost": 1.0})
    with pytest.raises(ValueError, match="threshold applies to a strong/weak pair"):
        pool.setting(threshold=0.5)
    with pytest.raises(ValueError, match="unknown constraint 'latency'"):
        pool.setting(lambdas={"latency": 1.0})
    with pytest.raises(TypeError, match="lambdas must be a mapping"):
        pool.setting(lambdas=0.3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\['lambdas'\] apply to several models"):
        make_pool(strong="a", weak="b", threshold=0.5, lambdas={"cost": 1})
    with pytest.raises(ValueError, match="not both"):
        make_pool(strong="a", weak="b", models=NWAY)
    with pytest.raises(ValueError, match="same name"):
        Pool.pair(strong="a", weak="a", threshold=0.5)
    with pytest.raises(ValueError, match="got 1 settings for 2 texts"):
        pair.route(["x", "y"], [pair.setting()])


def test_per_call_settings_change_the_decision():
    pair = Pool.pair(strong="a", weak="b", threshold=0.0)
    assert pair.route([EASY[0]])[0].route == "strong"
    assert pair.route([EASY[0]], [pair.setting(threshold=1.0)])[0].route == "weak"
    pool = Pool.of("default", NWAY)
    cheap = pool.route([HARD[0]], [pool.setting(lambdas={"cost": 100.0})])[0]
    assert cheap.lambdas == {"cost": 100.0}
    assert cheap.model == min(NWAY, key=lambda m: pool.router.constraint("cost").values[pool.canonical[NWAY.index(m)]])


def test_router_specs_objects_default_paths_and_bad_values(toy):
    router, ckpt = toy
    by_object = Pool.pair(router, strong="big-model", weak="small-model", threshold=0.5)
    by_path = Pool.pair(str(ckpt), strong="big-model", weak="small-model", threshold=0.5)
    assert by_path.route([HARD[0]])[0].win_rate == pytest.approx(by_object.route([HARD[0]])[0].win_rate)
    assert shared_router(str(ckpt)) is shared_router(str(ckpt))            # loaded once per process
    with pytest.raises(CheckpointError):
        Pool.pair("/no/such/router", strong="a", weak="b", threshold=0.5)
    with pytest.raises(TypeError, match="must be a loaded router, 'default', a checkpoint path or a Hub id"):
        Pool.pair(42, strong="a", weak="b", threshold=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty string"):
        Pool.pair(" ", strong="a", weak="b", threshold=0.5)
    with pytest.raises(TypeError, match="needs a binary router"):
        Pool.pair(shared_router("default", nway=True), strong="a", weak="b", threshold=0.5)
    with pytest.raises(TypeError, match="several models need an N-way router"):
        Pool.of(router, ["big-model", "small-model"])


def test_a_pair_scores_the_users_models_when_the_router_knows_them(toy):
    router, _ = toy
    own = Pool.pair(router, strong="mine-1", weak="mine-2", threshold=0.5).route([HARD[0]])[0]
    theirs = Pool.pair(router, strong="small-model", weak="big-model", threshold=0.5).route([HARD[0]])[0]
    aliased = Pool.pair(router, strong="gpt-4o", weak="gpt-4o-mini", threshold=0.5,
                        aliases={"gpt-4o": "small-model", "gpt-4o-mini": "big-model"}).route([HARD[0]])[0]
    assert own.win_rate == pytest.approx(float(router.win_rate([HARD[0]])[0]))   # the router's own pair
    assert theirs.win_rate == pytest.approx(1 - own.win_rate, abs=1e-6)         # the user's pair, reversed
    assert aliased.win_rate == pytest.approx(theirs.win_rate) and aliased.strong_model == "gpt-4o"
    with pytest.raises(ValueError, match="does not know"):
        Pool.pair(router, strong="gpt-4o", weak="b", threshold=0.5, aliases={"gpt-4o": "gpt-9"})
    with pytest.raises(ValueError, match="not among the routed models"):
        Pool.pair(router, strong="a", weak="b", threshold=0.5, aliases={"c": "big-model"})


def test_the_failure_policy_is_one_vocabulary_a_route_or_raise(monkeypatch):
    import routellm_core.routing.pool as pool_module

    def failing(spec="default", *, nway=False):
        raise CheckpointError("config.json: truncated")

    monkeypatch.setattr(pool_module, "shared_router", failing)  # the embedded default cannot be loaded
    lazy = Pool.pair(None, strong="a", weak="b", strong_fraction=0.5)   # built without loading it
    d = lazy.route(["hello"])[0]
    assert (d.route, d.router_failed, d.error_type, d.router) == ("strong", True, "CheckpointError", "default")
    assert math.isnan(d.threshold)                       # a strong_fraction needs the router's table
    weak = Pool.pair(None, strong="a", weak="b", threshold=0.4, failure_policy="weak").route(["hello"])[0]
    assert (weak.route, weak.model, weak.threshold) == ("weak", "b", 0.4)
    with pytest.raises(RouterFailure, match="could not be loaded: CheckpointError"):
        Pool.pair(None, strong="a", weak="b", threshold=0.4, failure_policy="raise").route(["hello"])
    with pytest.raises(ValueError, match="text 0 is empty"):   # bad input is never absorbed
        lazy.route([" "])
    monkeypatch.undo()
    with pytest.raises(ValueError, match="failure_policy must be 'raise' or one of the routes"):
        Pool.of(None, NWAY, failure_policy="gpt-9")
    assert Pool.of(None, NWAY).failure_policy == NWAY[0]


def test_shared_call_helpers():
    kwargs = {"temperature": 0, "routellm_threshold": 0.8, "routellm_lambdas": None}
    assert pop_settings(kwargs) == {"threshold": 0.8} and kwargs == {"temperature": 0}
    assert first_settings({}, None, {"routellm_strong_fraction": 0.2}) == {"strong_fraction": 0.2}
    assert first_settings({"threshold": None}) == {}
    assert content_text("hi") == "hi" and content_text(None) == ""
    assert content_text([{"type": "image_url"}, "a", {"type": "text", "text": "b"}]) == "a\nb"

    class Block:
        block_type = "text"
        text = "from an object"

    assert content_text([Block()]) == "from an object"
    assert usage_of({"input_tokens": 3, "output_tokens": 4}) == (3, 4)
    assert usage_of(None, {"usage": {"prompt_tokens": 5, "completion_tokens": 6}}) == (5, 6)
    assert usage_of({"usage": {"prompt_tokens": True, "completion_tokens": 6}}) is None
    assert usage_of({}) is None


def test_router_route_and_nway_route_return_the_one_decision_type(toy):
    router, _ = toy
    d = router.route([HARD[0]], threshold=0.5)[0]
    assert isinstance(d, Decision) and d.rule == "threshold" and d.models == {"strong": "big-model",
                                                                             "weak": "small-model"}
    nway = shared_router("default", nway=True)
    n = nway.route([HARD[0]], lambdas={"cost": 0.1})[0]
    assert isinstance(n, Decision) and n.rule == "utility" and n.route == n.model


def test_settings_the_lazily_loaded_default_cannot_serve_are_errors_not_router_failures():
    lazy = Pool.pair(None, strong="gpt-4o", weak="mini", threshold=0.5, aliases={"gpt-4o": "gpt-9"})
    with pytest.raises(ValueError, match="does not know"):       # never absorbed by the failure policy
        lazy.route(["hello"])


def test_a_newcomers_settings_give_a_mix_of_routes_or_a_clear_warning():
    from routellm_core.routing import RoutingSettingWarning
    from tests.routing_fixtures import EASY, HARD

    texts = [*HARD, *EASY]
    auto = Pool.pair(strong="a", weak="b")            # neither setting: half the calls strong, calibrated
    routes = [d.route for d in auto.route(texts)]
    assert auto.route(["hi"])[0].threshold == pytest.approx(shared_router("default").calibration_.threshold_for(0.5))
    assert "strong" in routes or "weak" in routes
    for t in (0.6, 0.7):                                # above every win rate of the default: all weak
        with pytest.warns(RoutingSettingWarning, match=rf"threshold={t} sends 0% of router .* strong_fraction="):
            Pool.pair(strong="a", weak="b", threshold=t).route(texts)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RoutingSettingWarning)
        mid = shared_router("default").calibration_.threshold_for(0.5)
        Pool.pair(strong="a", weak="b", threshold=mid).route(texts)   # a threshold inside the band: no warning
        shared_router("default").route(texts, threshold=mid)


def test_the_core_router_warns_about_a_one_sided_threshold_where_it_is_called():
    from routellm_core.routing import RoutingSettingWarning
    from tests.routing_fixtures import EASY, HARD

    router = shared_router("default")
    for t in (0.5, 0.7):                                # below / above every calibration win rate
        with pytest.warns(RoutingSettingWarning, match=rf"threshold={t} sends (100|0)% of router") as seen:
            decisions = router.route([*HARD, *EASY], threshold=t)
        assert seen[0].filename == __file__             # points at the caller's line
        assert {d.route for d in decisions} == {"strong" if t == 0.5 else "weak"}
