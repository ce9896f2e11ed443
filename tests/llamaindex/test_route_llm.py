"""RouteLLM on real LlamaIndex objects (index, query engine, chat engine, FunctionAgent) and the
real embedded router; only the LLMs behind it are fakes (tests/llamaindex/fakes.py)."""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatStartEvent, LLMCompletionStartEvent
from llama_index.core.tools import FunctionTool

import llamaindex_routellm
from llamaindex_routellm import (
    RouteLLM,
    RoutingCostEvent,
    RoutingCostEventHandler,
    RoutingDecisionEvent,
    routing_overrides,
)
from routellm_core.checkpoints import load_router
from routellm_core.costs import PriceSource
from routellm_core.encoders import QueryEncoder
from routellm_core.routing import RouterFailure, shared_router
from tests.llamaindex.fakes import FakeLLM, words

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}
Q_HI = "Write a haiku about tea."                    # the router's win rate: higher
Q_LO = "What is the capital of France?"              # lower


class Collector(BaseEventHandler):
    events: list = []

    @classmethod
    def class_name(cls) -> str:
        return "Collector"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


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
def events():
    root = get_dispatcher()
    c = Collector(events=[])
    root.add_event_handler(c)
    yield c
    root.event_handlers = [h for h in root.event_handlers if h is not c]


@pytest.fixture
def costs():
    h = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(h)
    yield h
    h.detach()


def make(threshold: float | None = 0.5, router: Any = None, cm: CallbackManager | None = None,
         **kw: Any) -> RouteLLM:
    if "strong_fraction" in kw:
        threshold = None
    extra = {"callback_manager": cm} if cm is not None else {}
    strong = kw.pop("strong", None) or FakeLLM(model="fake-strong", **extra)
    weak = kw.pop("weak", None) or FakeLLM(model="fake-weak", context_window=2048, num_output=128, **extra)
    return RouteLLM(strong=strong, weak=weak, router=router, threshold=threshold,
                    prices=kw.pop("prices", PRICES), **kw)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.SYSTEM, content="Be brief."),
            ChatMessage(role=MessageRole.USER, content=text)]


def cost(model: str, inp: int, out: int) -> Decimal:
    pin, pout = (Decimal(str(x)) for x in PRICES[model])
    return (pin * inp + pout * out) / Decimal(1_000_000)


# --------------------------------------------------------------------------- identity
def test_all_is_sorted_and_resolves():
    assert llamaindex_routellm.__all__ == sorted(llamaindex_routellm.__all__)
    for name in llamaindex_routellm.__all__:
        assert hasattr(llamaindex_routellm, name)


def test_metadata_is_honest_for_the_pair_and_construction_shares_the_router():
    llm = make(router=None)
    md = llm.metadata
    assert (md.context_window, md.num_output) == (2048, 128)
    assert md.is_chat_model and md.is_function_calling_model
    assert md.model_name == "routellm(fake-strong|fake-weak)"
    assert RouteLLM.class_name() == "RouteLLM"
    assert llm.router is None and llm.route(user(Q_HI)).router == shared_router("default").name
    plain = make(weak=FakeLLM(model="fake-weak", function_calling=False, chat_model=False))
    assert not plain.metadata.is_function_calling_model and not plain.metadata.is_chat_model
    assert llm.with_routing(threshold=0.9).threshold == 0.9


@pytest.mark.parametrize("kw, match", [
    ({"threshold": 1.5}, "threshold"),
    ({"threshold": 0.5, "strong_fraction": 0.5}, "not both"),
    ({"threshold": 0.5, "failure_policy": "maybe"}, "failure_policy"),
    ({"threshold": 0.5, "query_from": "first_user"}, "query_from"),
])
def test_bad_configuration_is_a_clear_error(kw, match):
    with pytest.raises(ValueError, match=match):
        RouteLLM(strong=FakeLLM(model="a"), weak=FakeLLM(model="b"), prices=PRICES, **kw)


# --------------------------------------------------------------------------- decisions
def test_chat_routes_where_the_router_says_and_records_events(router, mid, events):
    llm = make(mid, router)
    hi = llm.chat(user(Q_HI))
    lo = llm.chat(user(Q_LO))
    assert hi.message.content.startswith("[fake-strong]") and hi.additional_kwargs["routellm_route"] == "strong"
    assert lo.message.content.startswith("[fake-weak]") and lo.additional_kwargs["routellm_route"] == "weak"
    dec = events.of(RoutingDecisionEvent)
    assert [(d.route, d.model, d.call) for d in dec] == [("strong", "fake-strong", "chat"),
                                                          ("weak", "fake-weak", "chat")]
    rates = router.win_rate([Q_HI, Q_LO])
    assert [d.win_rate for d in dec] == pytest.approx(list(rates))
    assert all(d.threshold == mid and d.router == "sw_ranking" and not d.router_failed for d in dec)
    costs_ = events.of(RoutingCostEvent)
    assert [c.decision_id for c in costs_] == [d.id_ for d in dec]
    # exact tokens (the fakes report words) and dollars
    c_hi = costs_[0]
    assert (c_hi.input_tokens, c_hi.output_tokens, c_hi.tokens_estimated) == (
        words("Be brief.") + words(Q_HI), words(hi.message.content), False)
    assert c_hi.cost == c_hi.strong_cost == cost("fake-strong", c_hi.input_tokens, c_hi.output_tokens)
    c_lo = costs_[1]
    assert c_lo.cost == cost("fake-weak", c_lo.input_tokens, c_lo.output_tokens)
    assert c_lo.strong_cost == cost("fake-strong", c_lo.input_tokens, c_lo.output_tokens)
    assert c_lo.savings == c_lo.strong_cost - c_lo.cost > 0


def test_per_call_threshold_and_overrides(router, mid):
    llm = make(mid, router)
    assert llm.complete(Q_LO, routellm_threshold=0.0).additional_kwargs["routellm_route"] == "strong"
    assert llm.complete(Q_HI, routellm_threshold=1.0).additional_kwargs["routellm_route"] == "weak"
    assert llm.chat(user(Q_LO), routellm_strong_fraction=1.0).additional_kwargs["routellm_route"] == "strong"
    with routing_overrides(threshold=1.0):
        assert llm.complete(Q_HI).additional_kwargs["routellm_route"] == "weak"
    assert llm.complete(Q_HI).additional_kwargs["routellm_route"] == "strong"
    with pytest.raises(ValueError, match="threshold"):
        llm.complete(Q_HI, routellm_threshold=2.0)
    with pytest.raises(ValueError, match="not both"):
        llm.complete(Q_HI, routellm_threshold=0.2, routellm_strong_fraction=0.2)
    with pytest.raises(ValueError):
        routing_overrides(threshold=-0.1).__enter__()


def test_strong_fraction_uses_the_calibration(router):
    llm = make(router=router, strong_fraction=0.5)
    d = llm.route(user(Q_HI))
    assert d.threshold == pytest.approx(router.resolve_threshold(strong_fraction=0.5))


def test_bad_input_is_a_clear_error(router):
    llm = make(0.5, router)
    with pytest.raises(ValueError, match="no user message"):
        llm.chat([ChatMessage(role=MessageRole.SYSTEM, content="only a system prompt")])
    img = ChatMessage(role=MessageRole.USER, blocks=[ImageBlock(url="https://example.com/x.png")])
    with pytest.raises(ValueError, match="no text content"):   # images only follow the failure policy
        make(0.5, router, failure_policy="raise").chat([img])
    with pytest.raises(ValueError, match="empty"):
        llm.complete("   ")


def test_query_from_all_user_and_callable(router):
    msgs = [ChatMessage(role="user", content=Q_HI), ChatMessage(role="assistant", content="ok"),
            ChatMessage(role="user", content=Q_LO)]
    both = router.win_rate([f"{Q_HI}\n\n{Q_LO}"])[0]
    assert make(0.5, router, query_from="all_user").route(msgs).win_rate == pytest.approx(both)
    first = make(0.5, router, query_from=lambda ms: ms[0].content)
    assert first.route(msgs).win_rate == pytest.approx(router.win_rate([Q_HI])[0])
    with pytest.raises(ValueError, match="empty"):
        make(0.5, router, query_from=lambda ms: " ").route(msgs)


class _Broken:
    """An encoder that cannot load: the router fails at call time."""

    name = "broken"

    def encode(self, texts):  # noqa: D401
        raise OSError("encoder weights missing")


@pytest.mark.parametrize("policy, route", [("strong", "strong"), ("weak", "weak")])
def test_router_failure_follows_the_policy(policy, route, events):
    broken = load_router("default")
    broken.encoder = QueryEncoder.__new__(QueryEncoder)
    broken.encoder.encode = _Broken().encode  # type: ignore[method-assign]
    llm = make(0.5, broken, failure_policy=policy)
    resp = llm.chat(user("hello"))
    assert resp.additional_kwargs["routellm_route"] == route
    d = events.of(RoutingDecisionEvent)[-1]
    assert d.router_failed and d.win_rate is None and d.error_type == "OSError"
    assert events.of(RoutingCostEvent)[-1].router_failed


def test_router_failure_raises_under_raise_policy():
    broken = load_router("default")
    broken.encoder = QueryEncoder.__new__(QueryEncoder)
    broken.encoder.encode = _Broken().encode  # type: ignore[method-assign]
    with pytest.raises(RouterFailure, match="encoder weights missing"):
        make(0.5, broken, failure_policy="raise").chat(user("hello"))


# --------------------------------------------------------------------------- count once
def test_token_counting_handler_and_llm_events_count_each_call_once(router, mid, events):
    counter = TokenCountingHandler(tokenizer=lambda s: s.split())
    cm = CallbackManager([counter])
    llm = make(mid, router, cm=cm, callback_manager=cm)     # even with the same manager on the wrapper
    r1 = llm.chat(user(Q_HI))
    r2 = llm.complete(Q_LO)
    assert len(counter.llm_token_counts) == 2
    assert counter.prompt_llm_token_count == words("Be brief.") + words(Q_HI) + words(Q_LO)
    assert counter.completion_llm_token_count == words(r1.message.content) + words(r2.text)
    starts = events.of(LLMChatStartEvent) + events.of(LLMCompletionStartEvent)
    assert len(starts) == 2
    assert [e.model_dict["model_name"] for e in starts] == ["fake-strong", "fake-weak"]


# --------------------------------------------------------------------------- streaming, async
def test_streaming_yields_the_chosen_models_tokens_and_costs_after_the_end(router, mid, events):
    llm = make(mid, router)
    gen = llm.stream_chat(user(Q_HI))
    assert events.of(RoutingCostEvent) == []
    deltas = [c.delta for c in gen]
    assert "".join(deltas) == f"[fake-strong] answer to: {Q_HI}" and len(deltas) > 3
    (c,) = events.of(RoutingCostEvent)
    assert c.call == "stream_chat" and c.output_tokens == len(deltas) and not c.tokens_estimated
    text = "".join(c.delta for c in llm.stream_complete(Q_LO))
    assert text.startswith("[fake-weak]")


@pytest.mark.asyncio
async def test_async_forms_route_and_record(router, mid, costs):
    llm = make(mid, router)
    assert (await llm.achat(user(Q_HI))).additional_kwargs["routellm_route"] == "strong"
    assert (await llm.acomplete(Q_LO)).text.startswith("[fake-weak]")
    deltas = [c.delta async for c in await llm.astream_chat(user(Q_LO))]
    assert "".join(deltas).startswith("[fake-weak]")
    deltas = [c.delta async for c in await llm.astream_complete(Q_HI)]
    assert "".join(deltas).startswith("[fake-strong]")
    t = costs.totals
    assert t.calls == 4 and t.strong_calls == 2
    assert t.total_cost == sum(r.cost for r in costs.records)


def test_tokens_are_estimated_when_the_model_reports_none(router):
    h = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(h)
    try:
        llm = make(0.0, router, strong=FakeLLM(model="fake-strong", report_usage=False))
        resp = llm.complete(Q_HI)
    finally:
        h.detach()
    (r,) = h.records
    from routellm_core.costs import count_tokens
    assert r.tokens_estimated and r.input_tokens == count_tokens(Q_HI)
    assert r.output_tokens == count_tokens(resp.text)


# --------------------------------------------------------------------------- real LlamaIndex objects
DOCS = [Document(text="Green tea is steeped at 80 degrees for two minutes."),
        Document(text="Paris is the capital of France."),
        Document(text="Euclid proved that there are infinitely many primes.")]


@pytest.fixture(scope="module")
def index():
    return VectorStoreIndex.from_documents(DOCS, embed_model=MockEmbedding(embed_dim=8))


def test_query_engines_each_with_their_threshold_route_on_the_question(index, router, mid, costs):
    base = make(mid, router)
    qe = index.as_query_engine(llm=base, similarity_top_k=2)
    r_hi = qe.query(Q_HI)
    r_lo = qe.query(Q_LO)
    assert str(r_hi).startswith("[fake-strong]") and str(r_lo).startswith("[fake-weak]")
    # the decision scored the user's question, not the templated prompt with context
    assert [d.win_rate for d in costs.decisions] == pytest.approx(list(router.win_rate([Q_HI, Q_LO])))
    # a second engine, its own threshold, the same loaded router and models
    strict = index.as_query_engine(llm=base.with_routing(threshold=1.0), similarity_top_k=2)
    assert strict._response_synthesizer._llm.router is router
    assert str(strict.query(Q_HI)).startswith("[fake-weak]")
    with routing_overrides(threshold=0.0):
        assert str(qe.query(Q_LO)).startswith("[fake-strong]")
    t = costs.totals
    assert (t.calls, t.strong_calls) == (4, 2)
    assert t.total_cost == sum(r.cost for r in costs.records)
    assert t.strong_cost == sum(r.strong_cost for r in costs.records)
    assert t.savings == t.strong_cost - t.total_cost > 0
    assert t.strong_share == 0.5


def test_streaming_query_engine(index, router, mid):
    qe = index.as_query_engine(llm=make(mid, router), streaming=True)
    text = "".join(qe.query(Q_LO).response_gen)
    assert text.startswith("[fake-weak] answer to:")


def test_chat_engine_routes_each_turn(index, router, mid, costs):
    engine = index.as_chat_engine(chat_mode="context", llm=make(mid, router))
    assert str(engine.chat(Q_HI)).startswith("[fake-strong]")
    assert str(engine.chat(Q_LO)).startswith("[fake-weak]")
    assert [d.route for d in costs.decisions] == ["strong", "weak"]


@pytest.mark.asyncio
async def test_function_agent_with_a_tool_runs_through_route_llm(router, costs):
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    q = "What is 3 plus 4?"
    w = float(router.win_rate([q])[0])
    for threshold, model in ((w, "fake-strong"), (min(1.0, w + 1e-6), "fake-weak")):
        llm = make(threshold, router)
        agent = FunctionAgent(tools=[add], llm=llm)          # as in the README
        out = await agent.run(q)
        assert "The result is 7" in str(out)
        steps = costs.records[-2:]
        assert [r.model for r in steps] == [model, model]      # the whole turn on one model
    assert len(costs.records) == 4


def test_tools_need_two_function_calling_models(router):
    llm = make(0.0, router, strong=FakeLLM(model="fake-strong", function_calling=False))
    tool = FunctionTool.from_defaults(lambda a, b: a + b, name="add", description="add")
    with pytest.raises(TypeError, match="does not support tool calling"):
        llm.chat_with_tools([tool], user_msg="What is 3 plus 4?")


def test_predict_and_call_and_prepare_chat_with_tools(router):
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    tool = FunctionTool.from_defaults(add)
    llm = make(1.0, router)
    out = llm.predict_and_call([tool], user_msg="What is 3 plus 4?")
    assert str(out) == "7"
    kwargs = llm._prepare_chat_with_tools([tool], user_msg="What is 3 plus 4?")
    resp = llm.chat(**kwargs)
    assert resp.additional_kwargs["routellm_route"] == "weak"
    assert llm.get_tool_calls_from_response(resp)[0].tool_kwargs == {"a": 3, "b": 4}
    with pytest.raises(ValueError, match="routellm_route"):
        llm.get_tool_calls_from_response(type(resp)(message=resp.message))


def test_unknown_price_is_none_with_a_warning(router):
    h = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(h)
    try:
        llm = make(0.0, router, prices=PriceSource({"fake-weak": (1.0, 1.0)}, use_library=False))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            llm.complete(Q_HI)
    finally:
        h.detach()
    assert h.records[0].cost is None and h.totals.unknown_cost_calls == 1
    assert any("fake-strong" in str(w.message) for w in caught)


def test_route_takes_a_bare_prompt_and_names_what_is_not_a_message(router):
    llm = make(0.5, router)
    assert llm.route(Q_HI).win_rate == pytest.approx(float(router.win_rate([Q_HI])[0]))
    with pytest.raises(TypeError, match="ChatMessage objects, got dict"):
        llm.route([{"role": "user", "content": Q_HI}])
