"""NWayRouteLLM: N-way routing in LlamaIndex query engines, on the real embedded N-way router."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from routellm_core.encoders import QueryEncoder
from routellm_core.nway import load_nway_router
from routellm_core.nway.policy import NWayRouterFailure, get_default_nway_router

from llamaindex_routellm import (
    NWayRouteLLM,
    NWayRoutingDecisionEvent,
    RoutingCostEvent,
    RoutingCostEventHandler,
)
from tests.llamaindex.fakes import FakeLLM

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


def make(**kw: Any) -> NWayRouteLLM:
    kw.setdefault("prices", PRICES)
    return NWayRouteLLM(
        models={name: FakeLLM(model=name) for name in (BIG, MID, SMALL)}, **kw
    )


def test_chat_and_complete_route_by_lambdas_and_dispatch_events(events):
    llm = make(lambdas=CHEAP)
    msg = [ChatMessage(role=MessageRole.USER, content="What is the capital of France?")]
    resp = llm.chat(msg)
    assert str(resp.message.content).startswith(f"[{SMALL}]")
    assert resp.additional_kwargs["routellm_model"] == SMALL
    assert llm.complete("hello", routellm_lambdas=COSTLY).text.startswith(f"[{BIG}]")
    decisions = [e for e in events.events if isinstance(e, NWayRoutingDecisionEvent)]
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
    d = llm.decide(prompt=text, routellm_lambdas={"cost": 0.05})
    core = get_default_nway_router().select(
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
    with pytest.raises(NWayRouterFailure, match="failed while scoring"):
        make(router=broken, failure_policy="raise").complete("hello")
    with pytest.raises(
        ValueError, match="model 'gpt-9' is unknown"
    ):  # pydantic wraps UnknownModelError
        NWayRouteLLM(models={"gpt-9": FakeLLM(), SMALL: FakeLLM()})
    with pytest.raises(ValueError, match="unknown constraint 'latency'"):
        make().with_routing(lambdas={"latency": 1.0})
    with pytest.raises(TypeError, match="lambdas must be a mapping"):
        make().complete("hi", routellm_lambdas=1.0)
    with pytest.raises(ValueError, match="empty"):
        make().chat([ChatMessage(role=MessageRole.USER, content="  ")])
    with pytest.raises(TypeError, match="N-way router"):
        NWayRouteLLM(models={BIG: FakeLLM(), SMALL: FakeLLM()}, router="default")
