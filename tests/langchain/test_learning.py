"""The learning loop on ChatRouteLLM and RouterRunnable: call ids, capture into the traffic store,
shadow labelling, feedback and hot router swaps. The router is real (the embedded default, or a
real random router to swap to); the chat models behind it are fakes, the store a real SQLite
database."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import ConfigurableField, RunnableLambda
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_routellm import ChatRouteLLM, RouterRunnable, get_routing_cost_callback
from routellm_core.checkpoints import save_router
from routellm_core.learning import JudgePrompt, ShadowLabeller, StoreError, TrafficCapture, TrafficStore
from routellm_core.routers.random import RandomRouter
from routellm_core.routing import shared_router
from tests.langchain.fake_models import FakeToolChatModel, FlakyChatModel

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5), "judge": (5.0, 15.0)}
Q_HI = "Write a haiku about tea."                    # the router's win rate: higher
Q_LO = "What is the capital of France?"              # lower
Q_TOOL = "What is 3 plus 4?"
PROMPTS = {"pair-v2": JudgePrompt("pair-v2", "Judge.", "Q: {question}\nA: {answer_a}\nB: {answer_b}"),
           "pair-math-v1": JudgePrompt("pair-math-v1", "Judge.", "Q: {question}\nR: {ref_answer_1}\nA: {answer_a}\n"
                                                                "B: {answer_b}")}
CALL_ID = "routellm_call_id"


class SlowChatModel(FakeToolChatModel):
    """A :class:`FakeToolChatModel` whose async calls (what shadow labelling makes) take a second."""

    async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        await asyncio.sleep(1)
        return self._generate(messages, stop, None, **kwargs)


class Answer(BaseModel):
    text: str


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def judge(system: str, user: str) -> str:
    """Prefers the strong model's answer, in whichever position it is."""
    a = user.split("\nA: ")[1].split("\nB: ")[0]
    return "[[A]]" if "[fake-strong]" in a else "[[B]]"


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


@pytest.fixture(scope="module")
def mid(router) -> float:
    """A threshold between the two queries' win rates: Q_HI goes strong, Q_LO weak."""
    hi, lo = router.win_rate([Q_HI, Q_LO])
    assert hi > lo
    return float((hi + lo) / 2)


def make(threshold: float, router: Any, **kw: Any) -> ChatRouteLLM:
    strong = kw.pop("strong", None) or FakeToolChatModel(model_name="fake-strong")
    weak = kw.pop("weak", None) or FakeToolChatModel(model_name="fake-weak")
    return ChatRouteLLM(strong=strong, weak=weak, router=router, threshold=threshold, prices=PRICES, **kw)


def user(text: str) -> list[Any]:
    return [SystemMessage("Be brief."), HumanMessage(text)]


def redact(text: str) -> str:
    return text.replace("tea", "<drink>")


def shadow_labeller(path: Any, **kw: Any) -> ShadowLabeller:
    return ShadowLabeller(judge, path, judge_prompts=PROMPTS, fraction=1.0, prices=PRICES, seed=0, **kw)


# --------------------------------------------------------------------------- capture
def test_every_call_form_is_captured_with_its_call_id(tmp_path, router, mid):
    capture = TrafficCapture(tmp_path / "traffic.db", redact=redact)
    llm = make(mid, router, capture=capture)
    assert llm.capture is capture
    ids: dict[str, str] = {}
    queries: dict[str, str] = {}

    def one(kind: str, msg: Any, query: str) -> None:
        ids[kind], queries[kind] = msg.response_metadata[CALL_ID], query

    given = uuid.uuid4()
    with get_routing_cost_callback(PRICES) as cb:
        one("invoke", llm.invoke(user(Q_HI)), Q_HI)
        one("invoke_run_id", llm.invoke(Q_LO, config={"run_id": given}), Q_LO)
        for i, (msg, q) in enumerate(zip(llm.batch([Q_HI, Q_LO]), [Q_HI, Q_LO])):
            one(f"batch{i}", msg, q)
        chunks = list(llm.stream(user(Q_LO)))
        assert CALL_ID in chunks[0].response_metadata and not any(CALL_ID in c.response_metadata for c in chunks[1:])
        one("stream", chunks[0], Q_LO)
        one("tools", llm.bind_tools([add]).invoke(Q_TOOL), Q_TOOL)

        async def calls() -> None:
            one("ainvoke", await llm.ainvoke(user(Q_LO)), Q_LO)
            for i, (msg, q) in enumerate(zip(await llm.abatch([Q_LO, Q_HI]), [Q_LO, Q_HI])):
                one(f"abatch{i}", msg, q)
            one("astream", [c async for c in llm.astream(Q_HI)][0], Q_HI)

        asyncio.run(calls())
    structured = llm.with_structured_output(Answer, include_raw=True).invoke(Q_HI)
    one("structured", structured["raw"], Q_HI)
    one("generate", llm.generate([user(Q_LO)]).generations[0][0].message, Q_LO)

    assert ids["invoke_run_id"] == str(given)                        # the caller's run id is the call id
    assert capture.flush()
    rows = capture.store.calls().set_index("call_id")
    assert set(rows.index) == set(ids.values()) and len(ids) == 12
    records = {r.run_id: r for r in cb.records}
    assert set(records) <= set(ids.values()) and len(records) == 10  # the call id is the chosen model's run id
    for kind, call_id in ids.items():
        row = rows.loc[call_id]
        assert row["query"] == redact(queries[kind]), kind
        assert row["source"] == "langchain" and not row["failed"]
        assert (row["strong_model"], row["weak_model"]) == ("fake-strong", "fake-weak")
        assert row["router"] == router.name and row["rule"] == "threshold"
        assert row["threshold"] == pytest.approx(mid) and row["cost"] > 0 and not row["tokens_estimated"]
        if queries[kind] in (Q_HI, Q_LO):
            assert row["route"] == ("strong" if queries[kind] == Q_HI else "weak"), kind
        if call_id in records:
            r = records[call_id]
            assert (row["route"], row["model"], row["win_rate"]) == (r.route, r.model, pytest.approx(r.win_rate))
            assert (row["input_tokens"], row["output_tokens"]) == (r.input_tokens, r.output_tokens), kind
            assert Decimal(str(row["cost"])) == pytest.approx(r.cost), kind
    assert rows.loc[ids["invoke"], "route"] == "strong" and rows.loc[ids["ainvoke"], "route"] == "weak"
    assert rows.loc[ids["invoke"], "model"] == "fake-strong"
    assert "<drink>" in rows.loc[ids["invoke"], "query"]
    assert rows.loc[ids["stream"], "output_tokens"] == len("[fake-weak] What is the capital of France?".split())


def test_capture_takes_a_path_and_rejects_other_values(tmp_path, router, mid):
    llm = make(mid, router, capture=str(tmp_path / "t.db"))
    assert isinstance(llm.capture, TrafficCapture) and llm.capture.source == "langchain"
    msg = llm.invoke(Q_LO)
    assert llm.capture.flush()
    assert llm.capture.store.calls()["call_id"].tolist() == [msg.response_metadata[CALL_ID]]
    with pytest.raises(TypeError, match="capture must be a TrafficCapture"):
        make(mid, router, capture=42)
    with pytest.raises(TypeError, match="shadow must be a routellm_core.learning.ShadowLabeller"):
        make(mid, router, shadow="traffic.db")
    with pytest.raises(TypeError, match="capture must be a TrafficCapture"):
        RouterRunnable(strong=RunnableLambda(str), weak=RunnableLambda(str), threshold=0.5, capture=[1])


def test_an_unavailable_store_never_fails_the_call(tmp_path, router, mid, caplog):
    capture = TrafficCapture(tmp_path / "t.db")
    capture.store.engine = sqlalchemy.create_engine("sqlite:////nonexistent-dir/x.db")
    llm = make(mid, router, capture=capture)
    with caplog.at_level(logging.WARNING, logger="routellm_core.learning"):
        assert llm.invoke(user(Q_HI)).content.startswith("[fake-strong]")
        assert capture.flush()
    assert capture.errors == 1
    assert any("traffic store write failed" in r.getMessage() for r in caplog.records)


def test_failed_calls_are_not_captured_and_fallbacks_keep_the_call_id(tmp_path, router, mid):
    broken = {"strong": FlakyChatModel(model_name="fake-strong", fail_percent=100),
              "weak": FlakyChatModel(model_name="fake-weak", fail_percent=100)}
    llm = make(mid, router, capture=tmp_path / "t.db", **broken)
    with pytest.raises(Exception, match="overloaded"):
        llm.invoke(Q_LO)
    out = llm.batch([Q_LO, Q_HI], return_exceptions=True)
    assert all(isinstance(o, Exception) for o in out)
    assert llm.capture.flush() and llm.capture.store.calls().empty

    given = uuid.uuid4()
    flaky_weak = make(mid, router, capture=tmp_path / "t2.db",
                      weak=FlakyChatModel(model_name="fake-weak", fail_percent=100))
    msg = flaky_weak.invoke(Q_LO, config={"run_id": given})            # weak fails, strong answers
    assert msg.response_metadata["routellm_fallback_from"] == "weak" and msg.response_metadata[CALL_ID] == str(given)
    assert flaky_weak.capture.flush()
    row = flaky_weak.capture.store.calls().iloc[0]
    assert (row["call_id"], row["route"], row["model"]) == (str(given), "strong", "fake-strong")


# --------------------------------------------------------------------------- shadow
def test_shadow_stores_a_battle_with_the_call_id_and_its_cost_apart(tmp_path, router, mid):
    shadow = shadow_labeller(tmp_path / "t.db")
    llm = make(mid, router, shadow=shadow)
    with get_routing_cost_callback(PRICES) as cb:
        msg = llm.invoke(user(Q_LO))                                   # weak answers, strong is asked too
        assert shadow.flush()
    battles = shadow.store.battles()
    assert len(battles) == 1
    b = battles.iloc[0]
    assert (b["call_id"], b["source"], b["query"]) == (msg.response_metadata[CALL_ID], "shadow", Q_LO)
    assert (b["model_a"], b["model_b"], b["winner"]) == ("fake-strong", "fake-weak", "a")
    assert b["answer_b"] == msg.content and b["answer_a"] == f"[fake-strong] {Q_LO}"
    assert shadow.ledger.totals().shadow_cost > 0 and shadow.ledger.totals().shadow_calls == 3  # other + 2 judge
    assert len(cb.records) == 1 and not any(r.shadow for r in cb.records)  # the call's own cost only
    assert cb.totals.shadow_cost == 0


def test_a_slow_other_model_does_not_slow_the_call(tmp_path, router, mid):
    shadow = shadow_labeller(tmp_path / "t.db")
    llm = make(mid, router, shadow=shadow, strong=SlowChatModel(model_name="fake-strong"))
    llm.route(Q_LO)                                                    # the router is loaded
    for call in (lambda: llm.invoke(user(Q_LO)), lambda: asyncio.run(llm.ainvoke(user(Q_LO)))):
        start = time.perf_counter()
        msg = call()
        assert time.perf_counter() - start < 0.5
        assert msg.response_metadata["routellm_route"] == "weak"
    assert shadow.flush()
    assert shadow.labelled == 2 and len(shadow.store.battles()) == 1   # the same query: one battle


def test_streams_are_shadowed_when_they_end_and_tools_are_not(tmp_path, router, mid):
    shadow = shadow_labeller(tmp_path / "t.db")
    llm = make(mid, router, shadow=shadow, capture=tmp_path / "c.db")
    chunks = list(llm.stream(user(Q_LO)))
    stopped = llm.stream(user("Tell me about the weather on Mars."))
    next(stopped)
    stopped.close()                                                    # the caller stopped reading
    llm.bind_tools([add]).invoke(Q_TOOL)
    llm.with_structured_output(Answer).invoke(Q_LO)
    assert shadow.flush() and llm.capture.flush()
    battles = shadow.store.battles()
    call_id = chunks[0].response_metadata[CALL_ID]
    assert battles["call_id"].tolist() == [call_id]
    assert battles.iloc[0]["answer_b"] == "".join(c.content for c in chunks)
    # the stopped stream is an answered call (as the cost callback counts it): captured, not shadowed
    assert set(llm.capture.store.calls()["query"]) == {Q_LO, Q_TOOL, "Tell me about the weather on Mars."}


# --------------------------------------------------------------------------- feedback
def test_rate_stores_feedback_that_becomes_a_label(tmp_path, router, mid):
    llm = make(mid, router, capture=tmp_path / "t.db")
    weak = llm.invoke(user(Q_LO)).response_metadata[CALL_ID]
    strong = llm.invoke(user(Q_HI)).response_metadata[CALL_ID]
    llm.rate(uuid.UUID(weak), "down", comment="wrong capital")
    llm.rate(strong, 0.9)
    assert llm.capture.flush()
    store: TrafficStore = llm.capture.store
    rated = store.calls().set_index("call_id")
    assert (rated.loc[weak, "rating"], rated.loc[weak, "rating_label"]) == (0.0, "down")
    assert rated.loc[strong, "rating"] == 0.9
    labels = store.training_battles()
    assert labels[["query", "model_a", "model_b", "winner", "source"]].values.tolist() == [
        [Q_LO, "fake-strong", "fake-weak", "a", "feedback"]]        # strong calls' ratings give no label
    with pytest.raises(StoreError, match="rating must be one of"):
        llm.rate(weak, "meh")
    with pytest.raises(StoreError, match=r"in \[0, 1\]"):
        llm.rate(weak, 1.5)
    with pytest.raises(TypeError, match="rating must be 'up', 'down' or a score"):
        llm.rate(weak, True)
    with pytest.raises(TypeError, match="call_id must be the call's id"):
        llm.rate(None, "up")
    with pytest.raises(ValueError, match="has none: build it with capture="):
        make(mid, router).rate(weak, "up")


def test_router_runnable_captures_rates_and_swaps(tmp_path, router, mid):
    rr = RouterRunnable(strong=FakeToolChatModel(model_name="fake-strong"),
                        weak=FakeToolChatModel(model_name="fake-weak"), router=router, threshold=mid,
                        prices=PRICES, capture=tmp_path / "t.db")
    run_id = uuid.uuid4()
    assert rr.invoke(Q_LO, config={"run_id": run_id}).content.startswith("[fake-weak]")
    assert "".join(c.content for c in rr.stream(Q_HI)).startswith("[fake-strong]")
    rr.batch([Q_HI, Q_LO])
    rr.rate(run_id, "down")
    assert rr.capture.flush()
    rows = rr.capture.store.calls()
    assert len(rows) == 4 and str(run_id) in set(rows["call_id"]) and set(rows["source"]) == {"langchain"}
    assert rr.capture.store.training_battles()["query"].tolist() == [Q_LO]
    rr.swap_router(RandomRouter(seed=0))
    assert rr.route(Q_LO).router == "random"


# --------------------------------------------------------------------------- sharing and swapping
def test_swap_router_changes_decisions_without_a_restart(tmp_path, router, mid):
    llm = make(mid, router)
    before = [llm.route(Q_LO) for _ in range(20)]
    assert {d.route for d in before} == {"weak"} and {d.router for d in before} == {router.name}

    old_pool = llm._pool
    stream = llm.stream(Q_HI)
    first = next(stream)                                               # decided on the old router
    llm.swap_router(RandomRouter(seed=0))
    assert llm._pool is not old_pool and first.response_metadata["routellm_router"] == router.name
    assert list(stream)                                                # the call in flight finishes
    after = [llm.route(Q_LO) for _ in range(20)]
    assert {d.route for d in after} == {"strong", "weak"} and {d.router for d in after} == {"random"}

    path = save_router(RandomRouter(seed=1), tmp_path / "retrained")
    llm.swap_router(str(path))                                         # a checkpoint, read from disk
    assert llm.route(Q_LO).router == "random" and llm.router is not None
    llm.swap_router("default")
    assert [llm.route(q).route for q in (Q_HI, Q_LO)] == ["strong", "weak"]

    with pytest.raises(TypeError, match="router must be a loaded router"):
        llm.swap_router(42)
    with pytest.raises(ValueError, match="empty string"):
        llm.swap_router(" ")
    assert llm.route(Q_LO).router == router.name                      # a failed swap changes nothing


def test_copies_share_capture_shadow_and_swaps(tmp_path, router, mid):
    shadow = shadow_labeller(tmp_path / "s.db")
    llm = make(mid, router, capture=tmp_path / "t.db", shadow=shadow)
    copy = llm.model_copy()
    bound = llm.bind(stop=["zzz"]).with_config(tags=["x"])
    configurable = llm.configurable_fields(threshold=ConfigurableField(id="threshold"))
    a = llm.invoke(Q_HI).response_metadata[CALL_ID]
    b = copy.invoke(Q_HI).response_metadata[CALL_ID]
    c = bound.invoke(Q_HI).response_metadata[CALL_ID]
    d = configurable.invoke(Q_HI, config={"configurable": {"threshold": 1.0}}).response_metadata[CALL_ID]
    assert llm.capture.flush() and shadow.flush()
    assert set(llm.capture.store.calls()["call_id"]) == {a, b, c, d}
    assert set(shadow.store.battles()["call_id"]) <= {a, b, c, d}

    copy.swap_router(RandomRouter(seed=0))                             # reaches the model it was copied from
    assert llm.route(Q_LO).router == copy.route(Q_LO).router == "random"
    assert bound.invoke(Q_LO).response_metadata["routellm_router"] == "random"
    cfg = {"configurable": {"threshold": 0.5}}
    llm.swap_router(RandomRouter(seed=1))                              # models rebuilt from llm's fields see it
    assert llm.router.seed == 1
    assert configurable.invoke(Q_LO, config=cfg).response_metadata["routellm_router"] == "random"
