"""ChatRouteLLM, RouterRunnable and the cost callback, on the real embedded router."""

from __future__ import annotations

import asyncio
import warnings
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import langchain_routellm
from langchain_routellm import ChatRouteLLM, RouterRunnable, get_routing_cost_callback
from routellm_core.checkpoints import load_router
from routellm_core.costs import UnknownPriceWarning
from routellm_core.encoders import QueryEncoder
from routellm_core.routing import RouterFailure, shared_router
from tests.langchain.fake_models import FakeToolChatModel

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


def make(router: Any = None, **kw: Any) -> ChatRouteLLM:
    if "strong_fraction" not in kw:
        kw.setdefault("threshold", 0.5)
    return ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"),
                        weak=FakeToolChatModel(model_name="fake-weak"), router=router, **kw)


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized, messages, *, tags=None, metadata=None, **kw):
        self.starts.append({"name": kw.get("name"), "tags": tags, "metadata": metadata,
                            "ls_model": (metadata or {}).get("ls_model_name")})


def test_all_is_sorted_and_resolves():
    assert langchain_routellm.__all__ == sorted(langchain_routellm.__all__)
    for name in langchain_routellm.__all__:
        assert hasattr(langchain_routellm, name)


def test_construction_is_cheap_and_shares_the_default_router():
    llm = make(router=None)
    assert llm.router is None and llm._pool._router is None   # nothing loaded at construction
    assert llm.route("hi").router == shared_router("default").name
    assert llm._pool._router is None and llm._pool._load() is shared_router("default")  # shared, by reference


def test_decision_is_on_the_child_run_and_in_response_metadata(router):
    rec = Recorder()
    llm = make(router, threshold=0.0)
    msg = llm.invoke("Prove that there are infinitely many primes.", config={"callbacks": [rec]})
    assert len(rec.starts) == 1                      # one LLM run: the chosen model's
    start = rec.starts[0]
    assert start["ls_model"] == "fake-strong"
    assert "routellm:strong" in start["tags"]
    md = start["metadata"]
    assert md["routellm_route"] == "strong" and md["routellm_router"] == "sw_ranking"
    expected = router.win_rate(["Prove that there are infinitely many primes."])[0]
    assert md["routellm_win_rate"] == pytest.approx(expected)
    assert msg.response_metadata["routellm_route"] == "strong"
    assert msg.response_metadata["model_name"] == "fake-strong"


def test_configurable_threshold_routes_each_call_as_configured(router):
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | make(router, threshold=0.5) | StrOutputParser()
    q = {"q": "Write a haiku about tea."}
    assert chain.invoke(q, config={"configurable": {"routellm_threshold": 0.0}}).startswith("[fake-strong]")
    assert chain.invoke(q, config={"configurable": {"routellm_threshold": 1.0}}).startswith("[fake-weak]")
    assert chain.invoke(q, config={"configurable": {"routellm_strong_fraction": 1.0}}).startswith("[fake-strong]")
    assert chain.invoke(q, config={"configurable": {"routellm_strong_fraction": 0.0}}).startswith("[fake-weak]")
    # per chain: with_config binds it once
    assert chain.with_config(configurable={"routellm_threshold": 1.0}).invoke(q).startswith("[fake-weak]")
    # per call in one batch
    outs = chain.batch([q, q], config=[{"configurable": {"routellm_threshold": 0.0}},
                                        {"configurable": {"routellm_threshold": 1.0}}])
    assert [o.split("]")[0] for o in outs] == ["[fake-strong", "[fake-weak"]
    with pytest.raises(ValueError, match="threshold must be in"):
        chain.invoke(q, config={"configurable": {"routellm_threshold": 1.5}})


def test_usage_is_counted_once(router):
    llm = make(router, threshold=1.0)
    with get_usage_metadata_callback() as ucb:
        msg = llm.invoke("hello there")
        chunks = list(llm.stream("hello again"))
        batch = llm.batch(["one", "two"])
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    expected = sum(m.usage_metadata["total_tokens"] for m in [msg, full, *batch])
    assert set(ucb.usage_metadata) == {"fake-weak"}
    assert ucb.usage_metadata["fake-weak"]["total_tokens"] == expected


def test_agent_loop_with_tools(router):
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = make(router, strong_fraction=0.5).bind_tools([add])
    messages: list[Any] = [SystemMessage("Use tools."), HumanMessage("What is 3 plus 4?")]
    with get_routing_cost_callback(PRICES) as cb:
        for _ in range(4):
            ai = llm.invoke(messages)
            messages.append(ai)
            if not ai.tool_calls:
                break
            for call in ai.tool_calls:
                messages.append(ToolMessage(str(add.invoke(call["args"])), tool_call_id=call["id"]))
    assert isinstance(messages[2], AIMessage) and messages[2].tool_calls[0]["args"] == {"a": 3, "b": 4}
    assert messages[-1].content == "The result is 7"
    routes = {r.route for r in cb.records}
    assert len(cb.records) == 2 and len(routes) == 1   # the same user turn routes the same way


def test_structured_output_and_stop_pass_through(router):
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    out = make(router).with_structured_output(Answer).invoke("Say hello")
    assert isinstance(out, Answer) and out.text == "Say hello"
    assert make(router, threshold=1.0).invoke("hello there you", stop=["you"]).content == "[fake-weak] hello there "


@pytest.mark.asyncio
async def test_abatch_of_1000_routes_each_call_and_costs_add_up(router):
    topics = ["primes", "tea", "rust lifetimes", "the French revolution", "sourdough", "eigenvalues",
              "haiku", "tax law", "black holes", "knitting"]
    verbs = ["Explain", "Prove a fact about", "Write a poem on", "Summarise", "Give tips on"]
    queries = [f"{verbs[i % 5]} {topics[(i // 5) % 10]} (question {i})" for i in range(1000)]
    rates = router.win_rate(queries)
    threshold = float(np.median(rates))
    llm = make(router, threshold=threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownPriceWarning)      # every model has a price
        with get_routing_cost_callback(PRICES) as cb:
            outs = await llm.abatch(queries)
    assert len(outs) == 1000
    for q, r, out in zip(queries, rates, outs):
        route = "strong" if r >= threshold else "weak"
        assert out.response_metadata["routellm_route"] == route
        assert out.content == f"[fake-{route}] {q}"   # each call answered from its own query
        assert out.response_metadata["routellm_win_rate"] == pytest.approx(r)
    records = cb.records
    assert len(records) == 1000
    t = cb.totals
    assert t.total_cost == sum((r.cost for r in records), Decimal(0))
    assert t.strong_cost == sum((r.strong_cost for r in records), Decimal(0))
    assert t.savings == t.strong_cost - t.total_cost
    assert t.strong_calls == sum(r >= threshold for r in rates)
    assert 0.3 < t.strong_share < 0.7
    assert sum(m.calls for m in t.by_model.values()) == 1000
    assert not any(r.tokens_estimated for r in records)


def test_unknown_price_is_unknown_not_zero_and_tokens_are_estimated_when_missing(router):
    class NoUsage(FakeToolChatModel):
        def _usage(self, messages, text):  # reports no usage
            return None  # type: ignore[return-value]

    llm = ChatRouteLLM(strong=NoUsage(model_name="mystery-big"), weak=NoUsage(model_name="mystery-small"),
                       router=router, threshold=0.0)
    with get_routing_cost_callback() as cb, pytest.warns(UnknownPriceWarning, match="mystery-big"):
        llm.invoke("hello there")
    (rec,) = cb.records
    assert rec.cost is None and rec.tokens_estimated and rec.input_tokens > 0 and rec.output_tokens > 0
    assert cb.totals.unknown_cost_calls == 1 and cb.totals.total_cost == 0


@pytest.mark.parametrize("bad, match", [
    ([SystemMessage("be brief")], "no user message"),
    ([HumanMessage(content=[{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])],
     "no text content"),
    ("   ", "no text content"),
])
def test_bad_input_is_a_clear_error(router, bad, match):
    with pytest.raises(ValueError, match=match):   # images only follow the failure policy: "raise" here
        make(router, failure_policy="raise").invoke(bad)


def test_bad_settings_are_clear_errors(router):
    with pytest.raises(ValueError, match="threshold must be in"):
        make(router, threshold=2.0)
    with pytest.raises(ValueError, match="not both"):
        make(router, threshold=0.5, strong_fraction=0.5)
    with pytest.raises(ValueError, match="failure_policy"):
        make(router, failure_policy="cheap")
    auto = ChatRouteLLM(strong=FakeToolChatModel(model_name="a"), weak=FakeToolChatModel(model_name="b"))
    d = auto.route("hello")  # neither setting: half the calls strong, by the default's calibration table
    assert d.threshold == pytest.approx(router.calibration_.threshold_for(0.5))


def test_router_failure_follows_the_recorded_policy():
    broken = load_router("default", encoder=QueryEncoder("/nonexistent/encoder-dir"))
    llm = make(broken, threshold=0.5)
    msg = llm.invoke("hello")
    md = msg.response_metadata
    assert md["routellm_route"] == "strong" and md["routellm_router_failed"] is True
    assert md["routellm_error_type"] and md["routellm_win_rate"] is None
    assert make(broken, failure_policy="weak").invoke("hello").response_metadata["routellm_route"] == "weak"
    with pytest.raises(RouterFailure, match="failed while scoring"):
        make(broken, failure_policy="raise").invoke("hello")


@pytest.mark.asyncio
async def test_async_paths_route_and_stream(router):
    llm = make(router, threshold=1.0)
    msg = await llm.ainvoke("hi")
    assert msg.content == "[fake-weak] hi"
    chunks = [c async for c in llm.astream("hi there")]
    assert "".join(c.text for c in chunks) == "[fake-weak] hi there"
    assert chunks[0].response_metadata["routellm_route"] == "weak"


def test_query_from_all_user_and_callable(router):
    convo = [HumanMessage("Prove that sqrt(2) is irrational."), AIMessage("ok"), HumanMessage("thanks!")]
    last = make(router).route(convo)
    both = make(router, query_from="all_user").route(convo)
    custom = make(router, query_from=lambda ms: ms[0].content).route(convo)
    assert last.win_rate == pytest.approx(router.win_rate(["thanks!"])[0])
    assert both.win_rate == pytest.approx(router.win_rate(["Prove that sqrt(2) is irrational.\n\nthanks!"])[0])
    assert custom.win_rate == pytest.approx(router.win_rate(["Prove that sqrt(2) is irrational."])[0])


def test_router_runnable_picks_between_two_chains(router):
    strong = RunnableLambda(lambda x: f"strong:{x['question']}")
    weak = RunnableLambda(lambda x: f"weak:{x['question']}")
    rr = RouterRunnable(strong=strong, weak=weak, router=router, threshold=0.0)
    assert rr.invoke({"question": "What is RAG?"}) == "strong:What is RAG?"
    cfg = {"configurable": {"routellm_threshold": 1.0}}
    assert rr.invoke({"question": "What is RAG?"}, config=cfg) == "weak:What is RAG?"
    assert rr.batch([{"question": "a"}, {"question": "b"}], config=cfg) == ["weak:a", "weak:b"]
    assert asyncio.run(rr.ainvoke({"question": "c"})) == "strong:c"
    custom = RouterRunnable(strong=strong, weak=weak, router=router, threshold=0.0,
                            query=lambda x: x["q2"])
    assert custom.invoke({"question": "x", "q2": "hello"}) == "strong:x"
    with pytest.raises(TypeError, match="cannot find the query"):
        rr.invoke({"text": "no known key"})
