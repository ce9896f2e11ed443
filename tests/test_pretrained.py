"""``save_pretrained`` / ``from_pretrained`` on every router, and the router-type registry behind loading.

The routers are real: the random baseline, routers trained on the toy battles and score matrix of
the other tests, and the embedded defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from routellm_core.checkpoints import (
    BINARY,
    NWAY,
    CheckpointError,
    load_router,
    register_router_type,
    router_class,
    router_kind,
    router_types,
    save_router,
)
from routellm_core.nway import NWAY_ROUTERS, NWayRouter, QualityRouter, ZooterRouter
from routellm_core.routers import (
    ROUTERS,
    MatrixFactorizationRouter,
    RandomRouter,
    Router,
    SWRankingRouter,
)
from tests.test_checkpoints import TEXTS, trained_pair_routers
from tests.test_nway import COST, FAST, pool_matrix


@pytest.fixture(scope="module")
def trained():
    return trained_pair_routers()


@pytest.fixture(scope="module")
def quality():
    return QualityRouter(**FAST).fit(pool_matrix(), constraints=[COST])


def test_random_router_round_trips(tmp_path):
    path = RandomRouter(seed=5).save_pretrained(tmp_path / "random")
    assert path == tmp_path / "random" and (path / "config.json").is_file()
    loaded = RandomRouter.from_pretrained(path)
    assert type(loaded) is RandomRouter and loaded.seed == 5


@pytest.mark.parametrize("kind", ["mf", "sw_ranking"])
def test_trained_routers_round_trip_with_identical_win_rates(trained, tmp_path, kind):
    router = trained[kind]
    router.save_pretrained(tmp_path / kind, card={"command": "pytest"})
    loaded = type(router).from_pretrained(tmp_path / kind)
    assert type(loaded) is type(router) and loaded.card_ == {"command": "pytest"}
    np.testing.assert_array_equal(loaded.win_rate(TEXTS), router.win_rate(TEXTS))
    # the base class takes any strong/weak router; load_router reads what save_pretrained wrote
    assert type(Router.from_pretrained(tmp_path / kind)) is type(router)
    assert type(load_router(tmp_path / kind)) is type(router)


def test_an_nway_router_round_trips(quality, tmp_path):
    quality.save_pretrained(tmp_path / "quality")
    loaded = QualityRouter.from_pretrained(tmp_path / "quality")
    np.testing.assert_allclose(loaded.predict_quality(TEXTS), quality.predict_quality(TEXTS), atol=1e-6)
    assert isinstance(NWayRouter.from_pretrained(tmp_path / "quality"), QualityRouter)


def test_a_checkpoint_of_another_router_type_is_refused_naming_both(trained, quality, tmp_path):
    trained["sw_ranking"].save_pretrained(tmp_path / "sw")
    with pytest.raises(CheckpointError, match=r"holds a 'sw_ranking' router \(SWRankingRouter\), not a "
                       r"MatrixFactorizationRouter \('mf'\) or a subclass of it"):
        MatrixFactorizationRouter.from_pretrained(tmp_path / "sw")
    with pytest.raises(CheckpointError, match=r"not a NWayRouter or a subclass"):
        NWayRouter.from_pretrained(tmp_path / "sw")
    quality.save_pretrained(tmp_path / "quality")
    with pytest.raises(CheckpointError, match=r"holds a 'quality' router \(QualityRouter\), not a Router or"):
        Router.from_pretrained(tmp_path / "quality")
    with pytest.raises(CheckpointError, match=r"not a ZooterRouter \('zooter'\)"):
        ZooterRouter.from_pretrained(tmp_path / "quality")


def test_from_pretrained_default_loads_the_embedded_router_of_the_class_kind():
    binary = SWRankingRouter.from_pretrained("default")
    assert type(binary) is SWRankingRouter and binary.calibration_ is not None
    assert Router.from_pretrained("default").router_type == "sw_ranking"
    assert QualityRouter.from_pretrained("default").router_type == "quality"
    assert len(NWayRouter.from_pretrained("default").known_models) == 9
    with pytest.raises(CheckpointError, match="not a RandomRouter"):
        RandomRouter.from_pretrained("default")
    assert RandomRouter.from_pretrained("random", seed=2).seed == 2


def test_the_file_hooks_default_to_no_files(tmp_path):
    router = RandomRouter(seed=0)
    assert router._save_files(tmp_path) == [] and router._load_files(tmp_path) is None
    assert list(tmp_path.iterdir()) == []
    assert sorted(p.name for p in save_router(router, tmp_path / "r").iterdir()) == ["README.md", "config.json"]


def test_the_registry_holds_the_router_packages_tables():
    assert router_types(BINARY) is ROUTERS and router_types(NWAY) is NWAY_ROUTERS
    assert router_class("mf") is MatrixFactorizationRouter and router_class("zooter") is ZooterRouter
    assert (router_kind(RandomRouter()), router_kind(QualityRouter), router_kind("random")) == (BINARY, NWAY, None)
    with pytest.raises(ValueError, match=r"unknown router 'oracle'; available routers: \['bert', "):
        router_class("oracle")


def test_registering_refuses_what_it_cannot_file():
    class Nameless(RandomRouter):
        router_type = ""

    class NotARouter:
        router_type = "not_a_router"

    class Clash(QualityRouter):
        router_type = "random"

    with pytest.raises(ValueError, match="no router_type"):
        register_router_type(Nameless)
    with pytest.raises(ValueError, match="derives from no registered router base"):
        register_router_type(NotARouter)
    with pytest.raises(ValueError, match="'random' is already a binary router"):
        register_router_type(Clash)
    assert ROUTERS["random"] is RandomRouter and "random" not in NWAY_ROUTERS


def test_loading_works_first_thing_in_a_fresh_interpreter():
    code = ("from routellm_core.checkpoints import load_nway_router, load_router\n"
            "print(load_router('default').router_type, load_nway_router('default').router_type)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.stdout.split() == ["sw_ranking", "quality"]
