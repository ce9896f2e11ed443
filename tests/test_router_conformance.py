"""Every router, binary and N-way, passes :func:`routellm_core.testing.check_router`.

The routers learn from a small real sample of the shared data (40 queries of LLMRouter's gold
test file, three models) when it is present, else from the toy sets of the other tests. The
classifier routers use the tiny settings of ``tests/test_classifier_routers.py``.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np
import pytest

import routellm_core.nway as nway_package
import routellm_core.routers as routers_package
from routellm_core.estimator import NotFittedError, check_is_fitted, clone
from routellm_core.nway import NWayRouter, QualityRouter, ZooterRouter
from routellm_core.routers import (
    BertClassifierRouter,
    CausalLLMRouter,
    MatrixFactorizationRouter,
    RandomRouter,
    Router,
    SWRankingRouter,
)
from routellm_core.testing import SampleData, check_router, sample_data
from tests.routing_fixtures import toy_battles

CLASSIFIER = {"val_fraction": 0.0, "eval_every": 4, "patience": 100, "max_length": 24,
              "max_steps": 3, "batch_size": 8}
NWAY = {"hidden": 16, "epochs": 20, "val_fraction": 0.0}

BINARY = {
    "random": lambda: RandomRouter(seed=0),
    "sw_ranking": lambda: SWRankingRouter(n_tiers=3),
    "mf": lambda: MatrixFactorizationRouter(dim=16, epochs=5, val_fraction=0.0),
    "bert": lambda: BertClassifierRouter(**CLASSIFIER),
    "causal_llm": lambda: CausalLLMRouter(**CLASSIFIER, base_model="tiny-llama", lora_r=0),
}
NWAY_ROUTERS = {
    "quality": lambda: QualityRouter(**NWAY),
    "zooter": lambda: ZooterRouter(**NWAY, tags="kmeans", n_clusters=3),
}


def _data_dir() -> Path | None:
    env = os.environ.get("ROUTELLM_DATA_DIR")
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(env) if env else (beside if beside.is_dir() else None)


@pytest.fixture(scope="module")
def sample() -> SampleData:
    try:
        return sample_data(data_dir=_data_dir())
    except FileNotFoundError:  # no shared data: the toy sets, real-typed all the same
        from tests.test_nway import pool_matrix

        return SampleData(pool_matrix(), toy_battles(), "big-model", "small-model")


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    from tests.test_classifier_routers import _tiny_causal_lm

    root = tmp_path_factory.mktemp("tiny")
    _tiny_causal_lm(root / "tiny-llama", chat_template=False)
    return root


def _concrete_subclasses(base: type) -> set[type]:
    out, todo = set(), [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if not inspect.isabstract(sub) and sub.__module__.startswith("routellm_core."):
                out.add(sub)
    return out


def test_every_router_class_is_checked():
    assert {cls.router_type for cls in _concrete_subclasses(Router)} == set(BINARY)
    assert set(routers_package.ROUTERS) == set(BINARY)
    assert {cls.router_type for cls in _concrete_subclasses(NWayRouter)} == set(NWAY_ROUTERS)
    assert set(nway_package.NWAY_ROUTERS) == set(NWAY_ROUTERS)


@pytest.mark.parametrize("kind", sorted(BINARY))
def test_binary_router_conforms(kind, sample, tiny_lm_dir, monkeypatch):
    if kind == "causal_llm":  # a checkpoint names its base model relative to the cwd
        monkeypatch.chdir(tiny_lm_dir)
    pair = {"strong_model": sample.strong_model, "weak_model": sample.weak_model}
    check_router(lambda: BINARY[kind]().set_params(**pair), sample.battles)


@pytest.mark.parametrize("kind", sorted(NWAY_ROUTERS))
def test_nway_router_conforms(kind, sample):
    check_router(NWAY_ROUTERS[kind], sample.matrix)


# ----------------------------------------------------------------------------- the check itself
def test_a_router_that_forgets_its_scoring_hook_fails_at_instantiation():
    class Forgetful(Router):
        router_type = "forgetful"

        def fit(self, battles, *, show_progress=False, sample_weight=None):
            return self

    with pytest.raises(TypeError, match="_win_rate"):
        Forgetful()

    class ForgetfulPool(NWayRouter):
        router_type = "forgetful_pool"

        def fit(self, matrix, *, embeddings=None, show_progress=False):
            return self

    with pytest.raises(TypeError, match="predict_quality_embeddings"):
        ForgetfulPool()


def test_known_models_and_the_fitted_check_behave_alike_in_both_bases():
    for router in (MatrixFactorizationRouter(), SWRankingRouter(), BertClassifierRouter(),
                   QualityRouter(), ZooterRouter()):
        with pytest.raises(NotFittedError, match=f"this {router.router_type} router is not trained"):
            _ = router.known_models
        with pytest.raises(NotFittedError):
            check_is_fitted(router)
        assert router.calibration_ is None and router.card_ is None
        assert not [k for k in vars(router) if k.endswith("_")]
    assert RandomRouter().known_models is None  # nothing to learn: any pair


def test_set_params_and_clone():
    router = MatrixFactorizationRouter(dim=8, aliases={"gpt-4o": "big"})
    assert router.set_params(dim=4, seed=7) is router and (router.dim, router.seed) == (4, 7)
    with pytest.raises(ValueError, match=r"unknown parameters 'dims', 'eopchs' for "
                       r"MatrixFactorizationRouter; valid parameters: \['aliases', 'batch_size'"):
        router.set_params(dims=3, eopchs=2)
    assert router.dim == 4  # nothing was set
    twin = clone(router, epochs=2)
    assert type(twin) is MatrixFactorizationRouter and twin.get_params() == {**router.get_params(), "epochs": 2}
    assert twin.aliases == router.aliases and twin.aliases is not router.aliases


def test_clone_drops_learned_state_and_seed_drives_training(sample):
    pair = {"strong_model": sample.strong_model, "weak_model": sample.weak_model}
    router = MatrixFactorizationRouter(dim=8, epochs=3, val_fraction=0.0, seed=1, **pair).fit(sample.battles)
    twin = clone(router)
    with pytest.raises(NotFittedError):
        twin.win_rate(["hi"])
    texts = ["Prove that 2 is prime.", "hello"]
    np.testing.assert_array_equal(twin.fit(sample.battles).win_rate(texts), router.win_rate(texts))
    other = clone(router, seed=2).fit(sample.battles)
    assert not np.array_equal(other.model_vectors_, router.model_vectors_)


def test_check_router_names_the_broken_convention(sample, monkeypatch):
    class StateInInit(RandomRouter):
        router_type = "state_in_init"

        def __init__(self, *, seed=None, **kwargs):
            super().__init__(seed=seed, **kwargs)
            self.history_ = []

    with pytest.raises(AssertionError, match=r"StateInInit .* 'parameters only in __init__'.*history_"):
        check_router(StateInInit, sample.battles)

    class Validates(RandomRouter):
        router_type = "validates"

        def __init__(self, *, aliases=None, **kwargs):
            super().__init__(aliases=dict(aliases or {}), **kwargs)

    with pytest.raises(AssertionError, match=r"does not store these arguments unchanged: \['aliases'\]"):
        check_router(Validates, sample.battles)

    class MutatesOnScoring(RandomRouter):
        router_type = "mutates"

        def _win_rate(self, texts, strong, weak):
            self.last_texts_ = texts
            return super()._win_rate(texts, strong, weak)

    with pytest.raises(AssertionError, match="does not save and load: .*unknown router 'mutates'"):
        check_router(MutatesOnScoring, sample.battles)
    monkeypatch.setitem(routers_package.ROUTERS, "mutates", MutatesOnScoring)
    with pytest.raises(AssertionError, match="scoring changes the router's attributes"):
        check_router(MutatesOnScoring, sample.battles)


def test_check_router_refuses_what_is_not_a_router(sample):
    with pytest.raises(TypeError, match="needs a Router or an NWayRouter, got dict"):
        check_router(dict, sample.battles)


def test_the_hooks_are_abstract_on_the_bases():
    assert {"fit", "_win_rate"} <= Router.__abstractmethods__
    assert {"fit", "predict_quality_embeddings"} <= NWayRouter.__abstractmethods__
