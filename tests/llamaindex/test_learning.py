"""The learning loop on RouteLLM: call ids, capture into the traffic store, shadow labelling,
feedback and hot router swaps. The router is real (the embedded default, or a real random
router to swap to); the LLMs behind it are fakes, the store a real SQLite database."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy
from llama_index.core import PromptTemplate
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RouteLLM, RoutingCostEventHandler
from routellm_core.checkpoints import save_router
from routellm_core.learning import JudgePrompt, ShadowLabeller, StoreError, TrafficCapture, TrafficStore
from routellm_core.routers.random import RandomRouter
from routellm_core.routing import shared_router
from tests.llamaindex.fakes import FakeLLM

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5), "judge": (5.0, 15.0)}
Q_HI = "Write a haiku about tea."                    # the router's win rate: higher
Q_LO = "What is the capital of France?"              # lower
Q_TOOL = "What is 3 plus 4?"
PROMPTS = {"pair-v2": JudgePrompt("pair-v2", "Judge.", "Q: {question}\nA: {answer_a}\nB: {answer_b}"),
           "pair-math-v1": JudgePrompt("pair-math-v1", "Judge.", "Q: {question}\nR: {ref_answer_1}\nA: {answer_a}\n"
                                                                "B: {answer_b}")}
CALL_ID = "routellm_call_id"


class SlowLLM(FakeLLM):
    """A :class:`FakeLLM` whose ``achat`` (what shadow labelling calls) takes a second."""

    @classmethod
    def class_name(cls) -> str:
        return "SlowLLM"

    @llm_chat_callback()
    async def achat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        await asyncio.sleep(1)
        return self._chat(messages, kwargs)


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


@pytest.fixture
def costs():
    h = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(h)
    yield h
    h.detach()


def make(threshold: float, router: Any, **kw: Any) -> RouteLLM:
    strong = kw.pop("strong", None) or FakeLLM(model="fake-strong")
    return RouteLLM(strong=strong, weak=FakeLLM(model="fake-weak"), router=router, threshold=threshold,
                    prices=PRICES, **kw)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.SYSTEM, content="Be brief."),
            ChatMessage(role=MessageRole.USER, content=text)]


def redact(text: str) -> str:
    return text.replace("tea", "<drink>")


def shadow_labeller(path: Any, **kw: Any) -> ShadowLabeller:
    return ShadowLabeller(judge, path, judge_prompts=PROMPTS, fraction=1.0, prices=PRICES, seed=0, **kw)


# --------------------------------------------------------------------------- capture
def test_every_call_form_is_captured_with_its_call_id(tmp_path, router, mid, costs):
    capture = TrafficCapture(tmp_path / "traffic.db", redact=redact)
    llm = make(mid, router, capture=capture)
    assert llm.capture is capture
    tool = FunctionTool.from_defaults(lambda a, b: a + b, name="add", description="add")
    ids: dict[str, str] = {}
    queries = {}

    def one(kind: str, resp: Any, query: str) -> None:
        ids[kind], queries[kind] = resp.additional_kwargs[CALL_ID], query

    def streamed(kind: str, chunks: list[Any], query: str) -> None:
        assert len({c.additional_kwargs[CALL_ID] for c in chunks}) == 1   # every chunk, one id
        one(kind, chunks[-1], query)

    one("chat", llm.chat(user(Q_HI)), Q_HI)
    one("complete", llm.complete(Q_LO), Q_LO)
    streamed("stream_chat", list(llm.stream_chat(user(Q_LO))), Q_LO)
    streamed("stream_complete", list(llm.stream_complete(Q_HI)), Q_HI)
    one("chat_with_tools", llm.chat_with_tools([tool], user_msg=Q_TOOL), Q_TOOL)

    async def calls() -> None:
        one("achat", await llm.achat(user(Q_LO)), Q_LO)
        one("acomplete", await llm.acomplete(Q_HI), Q_HI)
        streamed("astream_chat", [c async for c in await llm.astream_chat(user(Q_HI))], Q_HI)
        streamed("astream_complete", [c async for c in await llm.astream_complete(Q_LO)], Q_LO)

    asyncio.run(calls())
    answer = llm.predict(PromptTemplate("Context: tea is a drink.\nQuestion: {query_str}\nAnswer:"), query_str=Q_LO)
    assert answer.startswith("[fake-weak]")
    ids["predict"], queries["predict"] = costs.decisions[-1].id_, Q_LO   # the question, not the prompt

    assert capture.flush()
    rows = capture.store.calls().set_index("call_id")
    assert set(rows.index) == set(ids.values()) and len(ids) == 10
    # the call id is the decision event's id and the cost records' run id
    assert {d.id_ for d in costs.decisions} == set(ids.values())
    records = {r.run_id: r for r in costs.records}
    decisions = {d.id_: d for d in costs.decisions}
    for kind, call_id in ids.items():
        row, record, decision = rows.loc[call_id], records[call_id], decisions[call_id]
        assert row["query"] == redact(queries[kind]), kind
        assert row["source"] == "llamaindex"
        assert (row["route"], row["model"]) == (decision.route, record.model), kind
        assert (row["strong_model"], row["weak_model"]) == ("fake-strong", "fake-weak")
        assert row["router"] == router.name and row["rule"] == "threshold"
        assert row["win_rate"] == pytest.approx(decision.win_rate) and row["threshold"] == pytest.approx(mid)
        assert (row["input_tokens"], row["output_tokens"]) == (record.input_tokens, record.output_tokens)
        assert Decimal(str(row["cost"])) == pytest.approx(record.cost) and not row["failed"]
    assert rows.loc[ids["chat"], "route"] == "strong" and rows.loc[ids["complete"], "route"] == "weak"
    assert "<drink>" in rows.loc[ids["chat"], "query"]


def test_capture_takes_a_path_and_rejects_other_values(tmp_path, router, mid):
    llm = make(mid, router, capture=str(tmp_path / "t.db"))
    assert isinstance(llm.capture, TrafficCapture) and llm.capture.source == "llamaindex"
    resp = llm.chat(user(Q_LO))
    assert llm.capture.flush()
    assert llm.capture.store.calls()["call_id"].tolist() == [resp.additional_kwargs[CALL_ID]]
    with pytest.raises(TypeError, match="capture must be a TrafficCapture"):
        make(mid, router, capture=42)
    with pytest.raises(TypeError, match="shadow must be a routellm_core.learning.ShadowLabeller"):
        make(mid, router, shadow="traffic.db")


def test_an_unavailable_store_never_fails_the_call(tmp_path, router, mid, caplog):
    capture = TrafficCapture(tmp_path / "t.db")
    capture.store.engine = sqlalchemy.create_engine("sqlite:////nonexistent-dir/x.db")
    llm = make(mid, router, capture=capture)
    with caplog.at_level(logging.WARNING, logger="routellm_core.learning"):
        assert llm.chat(user(Q_HI)).message.content.startswith("[fake-strong]")
        assert capture.flush()
    assert capture.errors == 1
    assert any("traffic store write failed" in r.getMessage() for r in caplog.records)


def test_a_call_on_which_every_model_raised_is_not_captured(tmp_path, router, mid):
    class Broken(FakeLLM):
        def _answer(self, messages: Any, kwargs: Any) -> ChatMessage:
            raise ConnectionError("down")

    llm = RouteLLM(strong=Broken(model="fake-strong"), weak=Broken(model="fake-weak"), router=router,
                   threshold=mid, prices=PRICES, capture=tmp_path / "t.db")
    with pytest.raises(ConnectionError):
        llm.chat(user(Q_LO))
    assert llm.capture.flush() and llm.capture.store.calls().empty


# --------------------------------------------------------------------------- shadow
def test_shadow_stores_a_battle_with_the_call_id_and_its_cost_apart(tmp_path, router, mid, costs):
    shadow = shadow_labeller(tmp_path / "t.db")
    llm = make(mid, router, shadow=shadow)
    resp = llm.chat(user(Q_LO))                                     # weak answers, strong is asked too
    assert shadow.flush()
    battles = shadow.store.battles()
    assert len(battles) == 1
    b = battles.iloc[0]
    assert (b["call_id"], b["source"], b["query"]) == (resp.additional_kwargs[CALL_ID], "shadow", Q_LO)
    assert (b["model_a"], b["model_b"], b["winner"]) == ("fake-strong", "fake-weak", "a")
    assert b["answer_b"] == resp.message.content
    assert shadow.ledger.totals().shadow_cost > 0 and shadow.ledger.totals().shadow_calls == 3  # other + 2 judge
    assert len(costs.records) == 1 and not any(r.shadow for r in costs.records)  # the call's own cost only
    assert costs.totals.shadow_cost == 0


def test_a_slow_other_model_does_not_slow_the_call(tmp_path, router, mid):
    shadow = shadow_labeller(tmp_path / "t.db")
    llm = make(mid, router, shadow=shadow, strong=SlowLLM(model="fake-strong"))
    llm.route(user(Q_LO))                                           # the router is loaded
    for call in (lambda: llm.chat(user(Q_LO)), lambda: asyncio.run(llm.achat(user(Q_LO)))):
        start = time.perf_counter()
        resp = call()
        assert time.perf_counter() - start < 0.5
        assert resp.additional_kwargs["routellm_route"] == "weak"
    assert shadow.flush()
    assert shadow.labelled == 2 and len(shadow.store.battles()) == 1   # the same query: one battle


def test_streams_are_shadowed_when_they_end_and_tool_calls_are_not(tmp_path, router, mid):
    shadow = shadow_labeller(tmp_path / "t.db")
    llm = make(mid, router, shadow=shadow)
    chunks = list(llm.stream_chat(user(Q_LO)))
    stopped = llm.stream_chat(user("Tell me about the weather on Mars."))
    next(stopped)
    stopped.close()                                                 # the caller stopped: a partial answer
    tool = FunctionTool.from_defaults(lambda a, b: a + b, name="add", description="add")
    llm.chat_with_tools([tool], user_msg=Q_TOOL)
    assert shadow.flush()
    battles = shadow.store.battles()
    assert battles["call_id"].tolist() == [chunks[-1].additional_kwargs[CALL_ID]]
    assert battles.iloc[0]["answer_b"] == chunks[-1].message.content


# --------------------------------------------------------------------------- feedback
def test_rate_stores_feedback_that_becomes_a_label(tmp_path, router, mid):
    llm = make(mid, router, capture=tmp_path / "t.db")
    weak = llm.chat(user(Q_LO)).additional_kwargs[CALL_ID]
    strong = llm.chat(user(Q_HI)).additional_kwargs[CALL_ID]
    llm.rate(weak, "down", comment="wrong capital")
    llm.rate(strong, 0.9)
    assert llm.capture.flush()
    store: TrafficStore = llm.capture.store
    rated = store.calls().set_index("call_id")
    assert (rated.loc[weak, "rating"], rated.loc[weak, "rating_label"]) == (0.0, "down")
    assert rated.loc[strong, "rating"] == 0.9
    labels = store.training_battles()
    assert labels[["query", "model_a", "model_b", "winner", "source"]].values.tolist() == [
        [Q_LO, "fake-strong", "fake-weak", "a", "feedback"]]      # strong calls' ratings give no label
    with pytest.raises(StoreError, match="rating must be one of"):
        llm.rate(weak, "meh")
    with pytest.raises(StoreError, match=r"in \[0, 1\]"):
        llm.rate(weak, 1.5)
    with pytest.raises(ValueError, match="has none: build it with capture="):
        make(mid, router).rate(weak, "up")


# --------------------------------------------------------------------------- sharing and swapping
def test_with_routing_copies_share_capture_shadow_and_swaps(tmp_path, router, mid):
    shadow = shadow_labeller(tmp_path / "s.db")
    llm = make(mid, router, capture=tmp_path / "t.db", shadow=shadow)
    strict = llm.with_routing(threshold=1.0)
    assert strict.capture is llm.capture and strict.shadow is shadow
    a = llm.chat(user(Q_HI)).additional_kwargs[CALL_ID]
    b = strict.chat(user(Q_LO)).additional_kwargs[CALL_ID]
    assert llm.capture.flush() and shadow.flush()
    assert set(llm.capture.store.calls()["call_id"]) == {a, b}
    assert set(shadow.store.battles()["call_id"]) == {a, b}

    strict.swap_router(RandomRouter(seed=0))                        # reaches the model it was copied from
    assert llm.route(user(Q_LO)).router == strict.route(user(Q_LO)).router == "random"
    assert llm.with_routing(threshold=0.5).route(user(Q_LO)).router == "random"   # later copies too


def test_swap_router_changes_decisions_without_a_restart(tmp_path, router, mid):
    llm = make(mid, router)
    before = [llm.route(user(Q_LO)) for _ in range(20)]
    assert {d.route for d in before} == {"weak"} and {d.router for d in before} == {router.name}

    old_pool = llm.pool
    stream = llm.stream_chat(user(Q_HI))                            # decided on the old router
    llm.swap_router(RandomRouter(seed=0))
    assert llm.pool is not old_pool and all(c.additional_kwargs["routellm_router"] == router.name for c in stream)
    after = [llm.route(user(Q_LO)) for _ in range(20)]
    assert {d.route for d in after} == {"strong", "weak"} and {d.router for d in after} == {"random"}

    path = save_router(RandomRouter(seed=1), tmp_path / "retrained")
    llm.swap_router(str(path))                                      # a checkpoint, read from disk
    assert llm.route(user(Q_LO)).router == "random" and llm.router is not None
    llm.swap_router("default")
    assert [llm.route(user(q)).route for q in (Q_HI, Q_LO)] == ["strong", "weak"]

    with pytest.raises(TypeError, match="router must be a loaded router"):
        llm.swap_router(42)
    with pytest.raises(ValueError, match="empty string"):
        llm.swap_router(" ")
    assert llm.route(user(Q_LO)).router == router.name              # a failed swap changes nothing
