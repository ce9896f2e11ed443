"""Hostile and odd input, property-based (hypothesis), through the core and both adapters.

Message lists and prompts are drawn from: empty and blank text, system-only and assistant-only
conversations, multimodal content (text with images, images alone), tool messages, ``None``,
text far beyond the encoder's window, and odd Unicode (lone surrogates, zero-width and
direction marks, emoji, NUL and other control characters). Every one must give either a routed
call, scored by the router without a failure, or a ``ValueError`` / ``TypeError`` that names the
problem; and the cost ledger must stay exact (its totals the sum of its records, one record
per answered call). The router and its encoder are the real embedded ones.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock

from langchain_routellm import ChatRouteLLM, get_routing_cost_callback
from llamaindex_routellm import RouteLLM, RoutingCostEventHandler
from routellm_core.encoders import MAX_CHARS, scoring_text
from routellm_core.queries import query_from_turns
from routellm_core.routing import Pool, shared_router
from tests.langchain.fake_models import FakeToolChatModel
from tests.llamaindex.fakes import FakeLLM

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}
ROUTER = shared_router("default")
PAIR = Pool.pair(ROUTER, strong="fake-strong", weak="fake-weak", threshold=0.5)
LONG = "Explain how a compiler turns source code into machine code, step by step. " * 2000  # > window
ODD = [
    "", " ", "\n\t  \r\n", "\x00", "a\x00b", "\u200b\u200b", "\u200f\u202eevil.exe", "\ufeffhello",
    "שלום, מה שלומך?", "مرحبا بالعالم", "😀🚀🔥" * 5, "e\u0301\u0301\u0301", "ab\ud800cd", "\udfff",
    "\ud83d\ude00 paired surrogates", "\U0010ffff\U000e0001", "\x1b[31mred\x1b[0m", LONG, "x" * (MAX_CHARS + 5),
]
texts = st.one_of(
    st.sampled_from(ODD),
    st.text(max_size=60),
    st.text(st.characters(categories=["Cs", "Cf", "Cc", "Zs", "So", "Mn"]), max_size=30),
)
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# errors that name the problem: what the message must say for each kind of unroutable input
PROBLEM_WORDS = ("empty", "no user message", "no text content", "must be a str", "Invalid input",
                 "routing needs text")


def routable(text: Any) -> bool:
    return isinstance(text, str) and bool(text.strip())


def assert_clear_error(exc: BaseException) -> None:
    assert isinstance(exc, (ValueError, TypeError)), f"{type(exc).__name__}: {exc}"
    assert any(w in str(exc) for w in PROBLEM_WORDS), str(exc)


# --------------------------------------------------------------------------- the core
@FAST
@given(text=st.one_of(texts, st.none(), st.integers(), st.binary(max_size=8)))
def test_the_core_routes_any_text_or_names_the_problem(text):
    try:
        d = PAIR.route([text])[0]
    except (ValueError, TypeError) as exc:
        assert not routable(text)
        assert "empty" in str(exc) or "not str" in str(exc)
        return
    assert routable(text)
    assert not d.router_failed, d.error_message       # the encoder never crashed on it
    assert 0.0 <= d.win_rate <= 1.0 and d.route == ("strong" if d.win_rate >= 0.5 else "weak")


turns = st.lists(st.tuples(st.sampled_from(["user", "human", "system", "assistant", "ai", "tool"]),
                           st.one_of(texts, st.none())), max_size=6)


@settings(max_examples=200, deadline=None)
@given(turns=turns, mode=st.sampled_from(["last_user", "all_user"]))
def test_query_selection_returns_user_text_or_names_what_is_missing(turns, mode):
    users = [t for r, t in turns if r in ("user", "human")]
    try:
        q = query_from_turns(turns, mode)
    except ValueError as exc:
        assert "no user message" in str(exc) or "no text content" in str(exc)
        assert not users or (mode == "last_user" and not routable(users[-1])) or not any(map(routable, users))
        return
    assert routable(q)
    assert q == users[-1] if mode == "last_user" else all(u in q for u in users if routable(u))


def test_text_beyond_the_window_is_truncated_the_defined_way():
    """Past the encoder's 256 tokens nothing changes the score; past MAX_CHARS characters the
    text is not even tokenized; lone surrogates are scored as U+FFFD."""
    head = "Explain how a compiler turns source code into machine code, step by step. " * 40  # > 256 tokens
    a, b, c = ROUTER.win_rate([head, head + "Also write a sonnet. " * 500, head + "x" * (10 * MAX_CHARS)])
    assert a == pytest.approx(b, abs=1e-6) and a == pytest.approx(c, abs=1e-6)
    assert len(scoring_text("y" * (MAX_CHARS + 1))) == MAX_CHARS
    assert ROUTER.win_rate(["ab\ud800cd"])[0] == pytest.approx(ROUTER.win_rate(["ab\ufffdcd"])[0], abs=1e-9)


# --------------------------------------------------------------------------- LangChain
def lc_content(text: str, image: bool) -> Any:
    if not image:
        return text
    blocks: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    return ([{"type": "text", "text": text}] + blocks) if text else blocks


@st.composite
def lc_messages(draw: Any) -> list[Any]:
    out: list[Any] = []
    for kind in draw(st.lists(st.sampled_from(["human", "system", "ai", "tool"]), max_size=5)):
        text, image = draw(texts), draw(st.booleans())
        if kind == "human":
            out.append(HumanMessage(content=lc_content(text, image)))
        elif kind == "system":
            out.append(SystemMessage(content=text))
        elif kind == "ai":
            out.append(AIMessage(content=text))
        else:
            out.append(ToolMessage(content=text, tool_call_id="call_1"))
    return out


def lc_query(messages: list[Any]) -> str | None:
    from routellm_core.calls import content_text

    users = [content_text(m.content) for m in messages if m.type == "human"]
    return users[-1] if users else None


LC = ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"), weak=FakeToolChatModel(model_name="fake-weak"),
                  router=ROUTER, threshold=0.5, failure_policy="raise")  # images only: an error, not the policy


@FAST
@given(messages=st.one_of(lc_messages(), st.none(), st.just([]), texts))
def test_chat_route_llm_routes_or_names_the_problem(messages):
    query = messages if isinstance(messages, str) else lc_query(messages) if isinstance(messages, list) else None
    with get_routing_cost_callback(PRICES) as cb:
        try:
            out = LC.invoke(messages)
        except Exception as exc:  # noqa: BLE001 - the assertion names what was raised
            assert_clear_error(exc)
            assert not routable(query)
            assert cb.records == []
            return
    assert routable(query)
    md = out.response_metadata
    assert md["routellm_route"] in ("strong", "weak") and md["routellm_router_failed"] is False
    assert md["routellm_win_rate"] == pytest.approx(float(ROUTER.win_rate([query])[0]), abs=1e-6)
    (record,) = cb.records
    assert cb.totals.total_cost == record.cost and record.cost is not None and record.cost >= 0


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(st.one_of(lc_messages(), texts), min_size=1, max_size=5))
def test_a_batch_with_bad_items_answers_the_good_ones(batch):
    with get_routing_cost_callback(PRICES) as cb:
        outs = LC.batch(batch, return_exceptions=True)
        outs_async = asyncio.run(LC.abatch(batch, return_exceptions=True))
    for item, out, out_async in zip(batch, outs, outs_async):
        query = item if isinstance(item, str) else lc_query(item)
        if routable(query):
            assert out.response_metadata["routellm_router_failed"] is False
            assert out_async.response_metadata["routellm_route"] == out.response_metadata["routellm_route"]
        else:
            assert_clear_error(out)
            assert_clear_error(out_async)
    good = sum(not isinstance(o, Exception) for o in outs + outs_async)
    assert cb.totals.calls == len(cb.records) == good
    assert cb.totals.total_cost == sum((r.cost for r in cb.records), Decimal(0))


# --------------------------------------------------------------------------- LlamaIndex
@st.composite
def li_messages(draw: Any) -> list[ChatMessage]:
    roles = [MessageRole.USER, MessageRole.SYSTEM, MessageRole.ASSISTANT, MessageRole.TOOL]
    out = []
    for role in draw(st.lists(st.sampled_from(roles), max_size=5)):
        text, image = draw(st.one_of(texts, st.none())), draw(st.booleans())
        blocks: list[Any] = [TextBlock(text=text)] if text is not None else []
        if image:
            blocks.append(ImageBlock(url="https://example.com/cat.png"))
        out.append(ChatMessage(role=role, blocks=blocks))
    return out


def li_query(messages: list[ChatMessage]) -> str | None:
    from routellm_core.calls import content_text

    users = [content_text(m.blocks) for m in messages if m.role == MessageRole.USER]
    return users[-1] if users else None


LI = RouteLLM(strong=FakeLLM(model="fake-strong"), weak=FakeLLM(model="fake-weak"), router=ROUTER,
              threshold=0.5, prices=PRICES, failure_policy="raise")  # images only: an error, not the policy


def li_costs() -> RoutingCostEventHandler:
    from llama_index.core.instrumentation import get_dispatcher

    h = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(h)
    return h


@FAST
@given(messages=li_messages())
def test_route_llm_chat_routes_or_names_the_problem(messages):
    query = li_query(messages)
    costs = li_costs()
    try:
        try:
            resp = LI.chat(messages)
        except Exception as exc:  # noqa: BLE001
            assert_clear_error(exc)
            assert not routable(query)
            assert costs.records == [] and costs.decisions == []
            return
    finally:
        costs.detach()
    assert routable(query)
    assert resp.additional_kwargs["routellm_router_failed"] is False
    assert resp.additional_kwargs["routellm_win_rate"] == pytest.approx(float(ROUTER.win_rate([query])[0]), abs=1e-6)
    (record,) = costs.records
    assert costs.totals.total_cost == record.cost


@FAST
@given(prompt=st.one_of(texts, st.none(), st.integers()))
def test_route_llm_complete_routes_or_names_the_problem(prompt):
    costs = li_costs()
    try:
        try:
            resp = LI.complete(prompt)
            chunks = list(LI.stream_complete(prompt))
        except Exception as exc:  # noqa: BLE001
            assert_clear_error(exc)
            assert not routable(prompt)
            assert costs.records == []
            return
    finally:
        costs.detach()
    assert routable(prompt)
    assert resp.additional_kwargs["routellm_router_failed"] is False
    assert chunks and chunks[-1].additional_kwargs["routellm_route"] == resp.additional_kwargs["routellm_route"]
    assert len(costs.records) == 2
    assert costs.totals.total_cost == sum((r.cost for r in costs.records), Decimal(0))


def test_odd_unicode_leaves_the_encoder_and_its_cache_intact():
    """After every odd string, the encoder still gives the same vectors for plain text."""
    enc = ROUTER.encoder_
    before = enc.encode(["What is the capital of France?"])
    vecs = enc.encode([t for t in ODD if t.strip()])
    assert np.all(np.isfinite(vecs)) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(enc.encode(["What is the capital of France?"]), before)
