"""A router whose weights hold NaN gives a non-finite score, and that is a router failure: the
failure policy routes and the decision says ``router_failed``, for every router type. (A
checkpoint whose weights hold NaN or an infinity is refused at load:
``tests/test_loop_promote.py``; here the weights are poisoned after loading, as a diverged
training run could leave them in memory.)"""

from __future__ import annotations

import numpy as np
import pytest

from routellm_core import load_router, save_router
from routellm_core.routers import MatrixFactorizationRouter, NonFiniteScoreError, SWRankingRouter
from routellm_core.routing import Decision, Pool, RouterFailure
from tests.routing_fixtures import EASY, HARD, toy_battles

PAIR = {"strong_model": "big-model", "weak_model": "small-model"}


def decide(router, text: str, *, threshold: float, policy: str | None = None) -> Decision:
    pool = Pool.pair(router, strong="big-model", weak="small-model", threshold=threshold, failure_policy=policy)
    return pool.route([text])[0]


def poison(router, value: float = np.nan):
    """Set every float weight of a loaded router to ``value``, in memory."""
    arrays = {k: (np.full_like(v, value) if v.dtype.kind == "f" else v) for k, v in router._state().items()}
    router._set_state(arrays, router._extra_state())
    return router


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    battles = toy_battles()
    out = {}
    for kind, router in {
        "mf": MatrixFactorizationRouter(epochs=3, **PAIR).fit(battles),
        "sw_ranking": SWRankingRouter(n_tiers=3, **PAIR).fit(battles),
    }.items():
        out[kind] = poison(load_router(save_router(router, tmp_path_factory.mktemp(kind) / "ckpt")))
    return out


@pytest.mark.parametrize("kind", ["mf", "sw_ranking"])
def test_nan_weights_are_a_router_failure_under_the_policy(poisoned, kind):
    router = poisoned[kind]
    with pytest.raises(NonFiniteScoreError, match=r"non-finite win rate for 2 of 2 queries"):
        router.win_rate([HARD[0], EASY[0]])
    d = decide(router, HARD[0], threshold=0.0)  # a NaN used to route weak even at 0.0
    assert (d.route, d.router_failed, d.error_type) == ("strong", True, "NonFiniteScoreError")
    assert decide(router, HARD[0], threshold=0.0, policy="weak").route == "weak"
    with pytest.raises(RouterFailure, match="non-finite"):
        decide(router, HARD[0], threshold=0.0, policy="raise")


def test_a_classifier_router_with_nan_weights_raises_and_the_policy_records_it(tmp_path, monkeypatch):
    """No hidden fallback inside classifier routers: NaN logits raise, naming the router and
    the queries, and the caller's policy decides (``router_failed``), the router unchanged."""
    from routellm_core.routers.causal_llm import CausalLLMRouter
    from tests.test_classifier_routers import FAST, _tiny_causal_lm

    _tiny_causal_lm(tmp_path / "tiny-llama", chat_template=False)
    monkeypatch.chdir(tmp_path)  # a checkpoint names its base model relative to the cwd
    router = CausalLLMRouter(**PAIR, **FAST, base_model="tiny-llama", lora_r=0, max_steps=1, batch_size=8)
    bad = poison(load_router(save_router(router.fit(toy_battles()), tmp_path / "ckpt")))
    state = {k: id(v) for k, v in vars(bad).items()}
    with pytest.raises(NonFiniteScoreError, match=r"router 'causal_llm' gave non-finite label logits "
                       r"for 2 of 2 queries: #0 'Prove that there are .*', #1 'Hi there!'"):
        bad.win_rate([HARD[0], EASY[0]])
    d = decide(bad, HARD[0], threshold=1.0)
    assert (d.route, d.router_failed, d.error_type) == ("strong", True, "NonFiniteScoreError")
    assert decide(bad, HARD[0], threshold=0.0, policy="weak").route == "weak"
    assert {k: id(v) for k, v in vars(bad).items()} == state and not hasattr(bad, "failures_")


def test_infinite_weights_too(tmp_path):
    router = MatrixFactorizationRouter(epochs=3, **PAIR).fit(toy_battles())
    bad = poison(load_router(save_router(router, tmp_path / "ckpt")), np.inf)
    assert decide(bad, EASY[0], threshold=1.0).router_failed


def test_both_adapters_route_by_the_policy_and_record_the_failure(poisoned):
    from llama_index.core.llms import ChatMessage

    from langchain_routellm import ChatRouteLLM
    from llamaindex_routellm import RouteLLM
    from tests.langchain.fake_models import FakeToolChatModel
    from tests.llamaindex.fakes import FakeLLM

    router = poisoned["mf"]
    lc = ChatRouteLLM(strong=FakeToolChatModel(model_name="big"), weak=FakeToolChatModel(model_name="small"),
                      router=router, threshold=0.0)
    msg = lc.invoke("What is 2 + 2?")
    assert msg.response_metadata["routellm_route"] == "strong"
    assert msg.response_metadata["routellm_router_failed"] is True
    li = RouteLLM(strong=FakeLLM(model="big"), weak=FakeLLM(model="small"), router=router,
                  threshold=0.0, failure_policy="weak")
    r = li.chat([ChatMessage(role="user", content="What is 2 + 2?")])
    assert r.additional_kwargs["routellm_route"] == "weak"
    assert r.additional_kwargs["routellm_router_failed"] is True


def test_an_nway_router_with_nan_weights_fails_under_the_policy(tmp_path):
    from routellm_core.nway import QualityRouter
    from tests.test_nway import COST, FAST, pool_matrix

    router = QualityRouter(**FAST).fit(pool_matrix(), constraints=[COST])
    bad = poison(load_router(save_router(router, tmp_path / "nway")))
    with pytest.raises(NonFiniteScoreError, match="non-finite quality score"):
        bad.predict_quality([HARD[0]])
    (d,) = Pool.of(bad, ["big", "coder", "small"], failure_policy="small").route([HARD[0]])
    assert (d.model, d.router_failed, d.error_type) == ("small", True, "NonFiniteScoreError")


def test_a_router_failure_is_logged_once_per_cause(poisoned, caplog, monkeypatch):
    import logging

    import routellm_core.routing.failure as policy

    monkeypatch.setattr(policy, "_reported", set())  # causes seen by earlier tests
    router = poisoned["sw_ranking"]
    with caplog.at_level(logging.WARNING, logger="routellm_core.routing"):
        for text in (HARD[0], EASY[0], HARD[1]):
            assert decide(router, text, threshold=0.5).router_failed
    warnings = [r for r in caplog.records if r.name == "routellm_core.routing"]
    assert len(warnings) == 1
    assert "NonFiniteScoreError" in warnings[0].getMessage() and "'strong'" in warnings[0].getMessage()
