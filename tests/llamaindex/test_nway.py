"""RouteLLM(models=...): N-way routing in LlamaIndex query engines, on the real embedded N-way router."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler

from llamaindex_routellm import (
    RouteLLM,
    RoutingCostEvent,
    RoutingCostEventHandler,
    RoutingDecisionEvent,
    RoutingFallbackEvent,
    routing_overrides,
)
from routellm_core.encoders import QueryEncoder
from routellm_core.nway import load_nway_router
from routellm_core.routing import RouterFailure, shared_router
from tests.llamaindex.fakes import FakeLLM, FakeModelError, FlakyLLM

BIG, MID, SMALL = (
    "llama-3.1-nemotron-51b-instruct",
    "llama-3.1-8b-instruct",
    "gemma-2-9b-it",
)
CHEAP, COSTLY = {"cost": 100.0}, {"cost": -100.0}
DOCS = [
    Document(text="Green tea is steeped at 80 degrees for two minutes."),
    Document(text="Paris is the capital of France."),
]


class Collector(BaseEventHandler):
    events: list = []  # noqa: RUF012 - a pydantic field

    @classmethod
    def class_name(cls) -> str:
        return "NWayCollector"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def events():
    root = get_dispatcher()
    c = Collector(events=[])
    root.add_event_handler(c)
    yield c
    root.event_handlers = [h for h in root.event_handlers if h is not c]


PRICES = {BIG: (0.9, 0.9), MID: (0.2, 0.2), SMALL: (0.1, 0.1)}


def make(failing: tuple[str, ...] = (), **kw: Any) -> RouteLLM:
    kw.setdefault("prices", PRICES)
    models = {name: FlakyLLM(model=name, fail_percent=100 if name in failing else 0, max_delay=0.0)
              for name in (BIG, MID, SMALL)}
    return RouteLLM(models=models, **kw)


def test_chat_and_complete_route_by_lambdas_and_dispatch_events(events):
    llm = make(lambdas=CHEAP)
    msg = [ChatMessage(role=MessageRole.USER, content="What is the capital of France?")]
    resp = llm.chat(msg)
    assert str(resp.message.content).startswith(f"[{SMALL}]")
    assert resp.additional_kwargs["routellm_model"] == SMALL
    assert llm.complete("hello", routellm_lambdas=COSTLY).text.startswith(f"[{BIG}]")
    decisions = [e for e in events.events if isinstance(e, RoutingDecisionEvent)]
    costs = [e for e in events.events if isinstance(e, RoutingCostEvent)]
    assert [d.model for d in decisions] == [SMALL, BIG] and decisions[
        0
    ].lambdas == CHEAP
    assert (
        set(decisions[0].scores) == {BIG, MID, SMALL}
        and decisions[0].router == "quality"
    )
    assert [c.model for c in costs] == [SMALL, BIG] and costs[
        0
    ].decision_id == decisions[0].id_


def test_decision_matches_the_core_objective():
    llm = make()
    text = "Write a Python function that merges two sorted lists."
    d = llm.route(prompt=text, routellm_lambdas={"cost": 0.05})
    core = shared_router("default", nway=True).route(
        [text], lambdas={"cost": 0.05}, models=[BIG, MID, SMALL]
    )[0]
    assert d.model == core.model


def test_query_engines_each_with_their_lambdas_route_on_the_question():
    index = VectorStoreIndex.from_documents(
        DOCS, embed_model=MockEmbedding(embed_dim=8)
    )
    llm = make(lambdas=CHEAP)
    handler = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(handler)
    try:
        cheap = index.as_query_engine(llm=llm, similarity_top_k=1)
        costly = index.as_query_engine(
            llm=llm.with_routing(lambdas=COSTLY), similarity_top_k=1
        )
        assert str(cheap.query("What is the capital of France?")).startswith(
            f"[{SMALL}]"
        )
        assert str(costly.query("What is the capital of France?")).startswith(
            f"[{BIG}]"
        )
        streaming = index.as_query_engine(llm=llm, streaming=True, similarity_top_k=1)
        assert "".join(
            streaming.query("How is green tea made?").response_gen
        ).startswith(f"[{SMALL}]")
    finally:
        handler.detach()
    assert [r.model for r in handler.records] == [SMALL, BIG, SMALL]
    assert costly._response_synthesizer._llm.models[BIG] is llm.models[BIG]


def test_async_and_streaming_calls():
    llm = make(lambdas=COSTLY)
    msg = [ChatMessage(role=MessageRole.USER, content="Tell me about tea.")]
    assert str(asyncio.run(llm.achat(msg)).message.content).startswith(f"[{BIG}]")
    assert asyncio.run(llm.acomplete("tea", routellm_lambdas=CHEAP)).text.startswith(
        f"[{SMALL}]"
    )
    chunks = list(llm.stream_chat(msg))
    assert chunks[-1].additional_kwargs["routellm_model"] == BIG


def test_router_failure_policy_and_bad_input():
    broken = load_nway_router("default", encoder=QueryEncoder("/nonexistent/encoder"))
    resp = make(router=broken, failure_policy=MID).complete("hello")
    assert (
        resp.text.startswith(f"[{MID}]")
        and resp.additional_kwargs["routellm_router_failed"] is True
    )
    with pytest.raises(RouterFailure, match="failed while scoring"):
        make(router=broken, failure_policy="raise").complete("hello")
    with pytest.raises(
        ValueError, match="model 'gpt-9' is unknown"
    ):  # pydantic wraps UnknownModelError
        RouteLLM(models={"gpt-9": FakeLLM(), SMALL: FakeLLM()})
    with pytest.raises(ValueError, match="unknown constraint 'latency'"):
        make().with_routing(lambdas={"latency": 1.0})
    with pytest.raises(TypeError, match="lambdas must be a mapping"):
        make().complete("hi", routellm_lambdas=1.0)
    with pytest.raises(ValueError, match="empty"):
        make().chat([ChatMessage(role=MessageRole.USER, content="  ")])
    with pytest.raises(ValueError, match="'no/such-router'"):
        RouteLLM(models={BIG: FakeLLM(), SMALL: FakeLLM()}, router="no/such-router")


def test_a_failing_model_falls_back_down_the_ranking_with_events(events):
    llm = make(failing=(SMALL,), lambdas=CHEAP)
    resp = llm.complete("hello there")
    ranking = llm.route(prompt="hello there").ranking()
    assert ranking[0] == SMALL and resp.additional_kwargs["routellm_model"] == ranking[1]
    assert resp.additional_kwargs["routellm_fallback_from"] == SMALL
    fb = [e for e in events.events if isinstance(e, RoutingFallbackEvent)]
    assert [(e.failed_model, e.model) for e in fb] == [(SMALL, ranking[1])]
    costs = [e for e in events.events if isinstance(e, RoutingCostEvent)]
    assert [(c.model, c.failed) for c in costs] == [(SMALL, True), (ranking[1], False)]
    chunks = list(llm.stream_chat([ChatMessage(role=MessageRole.USER, content="hello there")]))
    assert chunks[-1].additional_kwargs["routellm_fallback_from"] == SMALL
    a = asyncio.run(llm.achat([ChatMessage(role=MessageRole.USER, content="hello there")]))
    assert a.additional_kwargs["routellm_fallback_from"] == SMALL
    with pytest.raises(FakeModelError, match=SMALL):
        make(failing=(SMALL, MID, BIG), lambdas=CHEAP).complete("hello there")
    with pytest.raises(FakeModelError, match=SMALL):
        make(failing=(SMALL,), lambdas=CHEAP, fallback="none").complete("hello there")


def test_savings_are_counted_against_the_first_model(events):
    make(lambdas=CHEAP).complete("hello there")
    (cost,) = [e for e in events.events if isinstance(e, RoutingCostEvent)]
    assert cost.model == SMALL and cost.strong_model == BIG
    assert cost.strong_cost == 9 * cost.cost and cost.savings > 0


def test_tool_calling_and_a_function_agent_route_among_three_models():
    from llama_index.core.tools import FunctionTool

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    tool = FunctionTool.from_defaults(add)
    llm = make(lambdas=CHEAP)
    assert llm.metadata.is_function_calling_model
    resp = llm.chat_with_tools([tool], user_msg="What is 3 plus 4?")
    assert resp.additional_kwargs["routellm_model"] == SMALL
    assert llm.get_tool_calls_from_response(resp)[0].tool_kwargs == {"a": 3, "b": 4}
    assert str(llm.predict_and_call([tool], user_msg="What is 3 plus 4?")) == "7"
    mixed = RouteLLM(models={BIG: FakeLLM(model=BIG), SMALL: FakeLLM(model=SMALL, function_calling=False)},
                     lambdas=CHEAP)
    with pytest.raises(TypeError, match="does not support tool calling"):
        mixed.chat_with_tools([tool], user_msg="What is 3 plus 4?")


def test_routing_overrides_take_lambdas():
    llm = make(lambdas=COSTLY)
    with routing_overrides(lambdas=CHEAP):
        assert llm.complete("hello").text.startswith(f"[{SMALL}]")
    with pytest.raises(ValueError, match="not both"):
        with routing_overrides(lambdas=CHEAP, threshold=0.5):
            pass
    with routing_overrides(threshold=0.99):  # a pair's setting, for other engines: not this one's
        assert llm.complete("hello").text.startswith(f"[{BIG}]")
    with pytest.raises(ValueError, match="threshold applies to a strong/weak pair"):
        llm.complete("hello", routellm_threshold=0.5)
    pair = RouteLLM(strong=FakeLLM(model="s"), weak=FakeLLM(model="w"), threshold=0.5)
    with pytest.raises(ValueError, match="lambdas apply to a pool of models"):
        pair.complete("hello", routellm_lambdas=CHEAP)


def test_pair_and_pool_settings_do_not_mix():
    pool = {BIG: FakeLLM(model=BIG), SMALL: FakeLLM(model=SMALL)}
    with pytest.raises(ValueError, match="not both"):
        RouteLLM(models=pool, strong=FakeLLM(), weak=FakeLLM())
    with pytest.raises(ValueError, match="routed by lambdas"):
        RouteLLM(models=pool, strong_fraction=0.3)
    with pytest.raises(ValueError, match="apply to several models"):
        RouteLLM(strong=FakeLLM(), weak=FakeLLM(), threshold=0.5, costs={BIG: 1.0})
    with pytest.raises(TypeError, match="need an N-way router"):
        RouteLLM(models=pool, router=shared_router("default"))
    with pytest.raises(ValueError, match="threshold applies to a strong/weak pair; a pool of models is routed by"):
        RouteLLM(models=pool).with_routing(threshold=0.5)
    with pytest.raises(ValueError, match="direction of a strong/weak pair"):
        RouteLLM(models=pool, fallback="strong_to_weak")
