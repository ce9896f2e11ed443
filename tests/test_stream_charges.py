"""A stream that breaks after the provider sent output is a failed attempt charged for what it
consumed (the prompt and the output so far, priced as an answer); one that breaks before any
output is charged 0 and falls back as before. The core rule (routellm_core.calls
.stream_failed_record), then both adapters with the real embedded router in front of fake models
that drop the stream on demand (tests/langchain/fake_models.py, tests/llamaindex/fakes.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from routellm_core.calls import attempt_failed_record, stream_failed_record
from routellm_core.costs import CostLedger, PriceSource, count_tokens, estimate_message_tokens
from routellm_core.routing import Decision, shared_router

pytestmark = pytest.mark.filterwarnings("ignore::routellm_core.calibration.RoutingSettingWarning")

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}
Q = "Write a haiku about tea."
SOURCE = PriceSource(PRICES, use_library=False)


def decision(route: str = "weak") -> dict[str, Any]:
    return Decision.by_threshold(0.2, 1.0 if route == "weak" else 0.0,
                                 {"strong": "fake-strong", "weak": "fake-weak"}, router="r").record_fields()


def priced(model: str, inp: int, out: int) -> Decimal:
    cost = SOURCE.cost(model, input_tokens=inp, output_tokens=out)
    assert cost is not None
    return cost


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


# --------------------------------------------------------------------------- the core rule
def test_nothing_received_is_charged_zero_as_any_failed_attempt():
    err = ConnectionError("reset")
    for usage, text in ((None, ""), (None, None), ((0, 0), "")):
        r = stream_failed_record(decision(), err, usage=usage, prompt_texts=[Q], output_text=text, prices=SOURCE)
        assert r == attempt_failed_record(decision(), err)
        assert r.failed and r.cost == r.strong_cost == 0 and r.input_tokens == r.output_tokens == 0


def test_text_received_is_charged_for_the_prompt_and_the_text_estimated():
    text = "Steam curls from the cup,"
    r = stream_failed_record(decision(), ConnectionError("reset"), usage=None, prompt_texts=[Q],
                             output_text=text, prices=SOURCE, run_id="c1")
    assert r.failed and r.error_type == "ConnectionError" and r.run_id == "c1" and r.tokens_estimated
    assert (r.input_tokens, r.output_tokens) == (estimate_message_tokens([Q]), count_tokens(text))
    assert r.cost == priced("fake-weak", r.input_tokens, r.output_tokens)
    # no savings claimed: the call's all-strong counterfactual is carried by the answer, if any
    assert r.strong_cost == r.cost and r.savings == 0
    # a plain completion prompt is counted as one text, as answer_record does with chat=False
    c = stream_failed_record(decision(), "ReadError", usage=None, prompt_texts=[Q], output_text=text,
                             prices=SOURCE, chat=False)
    assert c.input_tokens == count_tokens(Q) and c.error_type == "ReadError"


def test_on_the_strong_model_the_counterfactual_is_the_cost():
    r = stream_failed_record(decision("strong"), ConnectionError(), usage=None, prompt_texts=[Q],
                             output_text="Steam", prices=SOURCE)
    assert r.model == "fake-strong" and r.cost == r.strong_cost > 0 and r.savings == 0


def test_a_reported_usage_is_used_but_never_charges_less_output_than_the_text_received():
    text = "one two three four five six seven"
    full = stream_failed_record(decision(), ConnectionError(), usage=(40, 50), prompt_texts=[Q],
                                output_text=text, prices=SOURCE)
    assert (full.input_tokens, full.output_tokens, full.tokens_estimated) == (40, 50, False)
    early = stream_failed_record(decision(), ConnectionError(), usage=(40, 1), prompt_texts=[Q],  # input first
                                 output_text=text, prices=SOURCE)
    assert (early.input_tokens, early.output_tokens, early.tokens_estimated) == (40, count_tokens(text), True)
    only = stream_failed_record(decision(), ConnectionError(), usage=(40, 0), prompt_texts=[Q], output_text="",
                                prices=SOURCE)
    assert only.failed and only.input_tokens == 40 and only.cost == priced("fake-weak", 40, 0) > 0


def test_the_ledger_counts_it_as_a_failed_call_with_its_money():
    broken = stream_failed_record(decision(), ConnectionError(), usage=None, prompt_texts=[Q],
                                  output_text="Steam curls", prices=SOURCE)
    ledger = CostLedger([broken])
    t = ledger.totals()
    assert (t.calls, t.failed_calls) == (0, 1)
    assert (t.total_cost, t.strong_cost, t.savings) == (broken.cost, broken.strong_cost, broken.savings)
    assert t.by_model["fake-weak"].failed_calls == 1 and t.by_model["fake-weak"].cost == broken.cost


def test_an_unknown_price_stays_unknown_not_zero():
    with pytest.warns(UserWarning, match="no price for model") as warned:
        r = stream_failed_record(decision(), ConnectionError(), usage=None, prompt_texts=[Q],
                                 output_text="Steam", prices=PriceSource({}, use_library=False))
    assert r.failed and r.cost is None and r.strong_cost is None and r.output_tokens > 0
    assert {"fake-weak", "fake-strong"} <= {str(w.message).split("'")[1] for w in warned}


# --------------------------------------------------------------------------- LangChain
def chat_route(router: Any, fail_after_chunks: int) -> Any:
    from langchain_routellm import ChatRouteLLM
    from tests.langchain.fake_models import FlakyChatModel

    return ChatRouteLLM(strong=FlakyChatModel(model_name="fake-strong"),
                        weak=FlakyChatModel(model_name="fake-weak", fail_percent=100,
                                            fail_after_chunks=fail_after_chunks),
                        router=router, threshold=1.0)


def test_langchain_a_stream_broken_after_text_is_charged_for_it(router):
    from langchain_routellm import get_routing_cost_callback
    from tests.langchain.fake_models import FakeModelError

    llm = chat_route(router, fail_after_chunks=3)
    seen: list[str] = []
    with get_routing_cost_callback(PRICES) as cb, pytest.raises(FakeModelError, match="mid-stream"):
        for c in llm.stream(Q):
            seen.append(c.content)
    assert len(seen) == 3 and llm.strong.calls == 0  # text reached the caller: no fallback
    (r,) = cb.records
    assert r.failed and r.model == "fake-weak" and r.error_type == "FakeModelError" and r.tokens_estimated
    # the fake reports its input tokens in the first chunk; the output is the text streamed so far
    assert (r.input_tokens, r.output_tokens) == (len(Q.split()) + 1, count_tokens("".join(seen)))
    assert r.cost == priced("fake-weak", r.input_tokens, r.output_tokens) == r.strong_cost
    assert (cb.totals.calls, cb.totals.failed_calls, cb.totals.total_cost) == (0, 1, r.cost)


def test_langchain_async_and_router_runnable_streams_are_charged_too(router):
    from langchain_core.prompts import ChatPromptTemplate

    from langchain_routellm import RouterRunnable, get_routing_cost_callback
    from tests.langchain.fake_models import FakeModelError, FlakyChatModel

    async def drain(stream: Any) -> list[Any]:
        got = []
        with pytest.raises(FakeModelError, match="mid-stream"):
            async for c in stream:
                got.append(c)
        return got

    with get_routing_cost_callback(PRICES) as cb:
        got = asyncio.run(drain(chat_route(router, fail_after_chunks=2).astream(Q)))
    (r,) = cb.records
    assert r.failed and r.output_tokens == count_tokens("".join(c.content for c in got)) > 0
    assert r.cost == priced("fake-weak", r.input_tokens, r.output_tokens) > 0

    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    rr = RouterRunnable(strong=prompt | FlakyChatModel(model_name="fake-strong"),
                        weak=prompt | FlakyChatModel(model_name="fake-weak", fail_percent=100, fail_after_chunks=2),
                        router=router, threshold=1.0, query=lambda x: x["question"])
    with get_routing_cost_callback(PRICES) as cb, pytest.raises(FakeModelError, match="mid-stream"):
        for _ in rr.stream({"question": Q}):
            pass
    (r,) = cb.records
    assert r.failed and r.model == "fake-weak" and r.output_tokens > 0 and r.cost > 0


def test_langchain_an_invoke_that_streams_inside_and_breaks_is_charged_then_falls_back(router):
    from langchain_routellm import ChatRouteLLM, get_routing_cost_callback
    from tests.langchain.fake_models import FlakyChatModel

    class Streaming(FlakyChatModel):  # invoke() streams when streaming=True is set, as providers' do
        streaming: bool = False

    llm = ChatRouteLLM(strong=FlakyChatModel(model_name="fake-strong"),
                       weak=Streaming(model_name="fake-weak", fail_percent=100, fail_after_chunks=2, streaming=True),
                       router=router, threshold=1.0)
    with get_routing_cost_callback(PRICES) as cb:
        msg = llm.invoke(Q)
    assert msg.content.startswith("[fake-strong]")  # nothing reached the caller: it fell back
    broken, answer = cb.records  # the broken attempt's two chunks were billed: charged for them
    assert broken.failed and broken.model == "fake-weak" and broken.output_tokens > 0
    assert broken.cost == priced("fake-weak", broken.input_tokens, broken.output_tokens) > 0
    assert answer.fallback_from == "weak" and not answer.failed
    assert cb.totals.total_cost == broken.cost + answer.cost


def test_langchain_a_stream_broken_before_its_first_chunk_falls_back_and_is_charged_zero(router):
    from langchain_routellm import get_routing_cost_callback

    llm = chat_route(router, fail_after_chunks=0)
    with get_routing_cost_callback(PRICES) as cb:
        text = "".join(c.content for c in llm.stream(Q))
    assert text.startswith("[fake-strong]")
    failed, answer = cb.records
    assert failed.failed and failed.cost == 0 and failed.input_tokens == failed.output_tokens == 0
    assert answer.fallback_from == "weak" and not answer.failed and answer.cost > 0


# --------------------------------------------------------------------------- LlamaIndex
@pytest.fixture
def costs():
    from llama_index.core.instrumentation import get_dispatcher

    from llamaindex_routellm import RoutingCostEventHandler

    handlers = [RoutingCostEventHandler(), RoutingCostEventHandler(prices={"fake-weak": (100.0, 300.0)})]
    for h in handlers:
        get_dispatcher().add_event_handler(h)
    yield handlers
    for h in handlers:
        h.detach()


def route_llm(router: Any, fail_after_chunks: int) -> Any:
    from llamaindex_routellm import RouteLLM
    from tests.llamaindex.fakes import FakeLLM, FlakyLLM

    return RouteLLM(strong=FakeLLM(model="fake-strong"),
                    weak=FlakyLLM(model="fake-weak", fail_percent=100, fail_after_chunks=fail_after_chunks),
                    router=router, threshold=1.0, prices=PRICES)


def test_llamaindex_a_stream_broken_after_text_is_charged_for_it(router, costs):
    from llama_index.core.llms import ChatMessage

    from tests.llamaindex.fakes import FakeModelError

    plain, repriced = costs
    llm = route_llm(router, fail_after_chunks=2)
    got: list[Any] = []
    with pytest.raises(FakeModelError, match="mid-stream"):
        for c in llm.stream_chat([ChatMessage(role="user", content=Q)]):
            got.append(c)
    assert len(got) == 2 and llm.strong.calls == 0
    (r,) = plain.records
    assert r.failed and r.model == "fake-weak" and r.error_type == "FakeModelError" and r.tokens_estimated
    assert (r.input_tokens, r.output_tokens) == (estimate_message_tokens([Q]), count_tokens(got[-1].message.content))
    assert r.cost == priced("fake-weak", r.input_tokens, r.output_tokens) == r.strong_cost
    assert r.run_id == got[0].additional_kwargs["routellm_call_id"]
    # a handler with its own price table re-prices it as an answer
    (again,) = repriced.records
    assert again.failed and again.cost == Decimal(100 * r.input_tokens + 300 * r.output_tokens) / 1_000_000

    async def drain() -> str:
        text = ""
        with pytest.raises(FakeModelError, match="mid-stream"):
            async for c in await route_llm(router, fail_after_chunks=1).astream_chat([ChatMessage(role="user",
                                                                                                  content=Q)]):
                text = c.message.content
        return text

    text = asyncio.run(drain())
    r = plain.records[-1]
    assert r.failed and r.output_tokens == count_tokens(text) > 0 and r.cost > 0
    assert (plain.totals.calls, plain.totals.failed_calls) == (0, 2)


def test_llamaindex_a_completion_stream_counts_its_prompt_as_one_text(router, costs):
    from llamaindex_routellm import RouteLLM
    from tests.llamaindex.fakes import FakeLLM, FakeModelError, FlakyLLM

    class Breaking(FlakyLLM):  # FlakyLLM breaks chat streams; this one its completion streams too
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            return self._breaking(super().stream_complete(prompt, formatted, **kwargs), prompt)

    llm = RouteLLM(strong=FakeLLM(model="fake-strong"),
                   weak=Breaking(model="fake-weak", fail_percent=100, fail_after_chunks=2),
                   router=router, threshold=1.0, prices=PRICES)
    got: list[Any] = []
    with pytest.raises(FakeModelError, match="mid-stream"):
        for c in llm.stream_complete(Q):
            got.append(c)
    (r,) = costs[0].records
    assert r.failed and (r.input_tokens, r.output_tokens) == (count_tokens(Q), count_tokens(got[-1].text))
    assert r.cost == priced("fake-weak", r.input_tokens, r.output_tokens) > 0


def test_llamaindex_a_stream_broken_before_its_first_chunk_falls_back_and_is_charged_zero(router, costs):
    from llama_index.core.llms import ChatMessage

    plain, _ = costs
    chunks = list(route_llm(router, fail_after_chunks=0).stream_chat([ChatMessage(role="user", content=Q)]))
    assert chunks[-1].message.content.startswith("[fake-strong]")
    failed, answer = plain.records
    assert failed.failed and failed.cost == 0 and failed.input_tokens == failed.output_tokens == 0
    assert answer.fallback_from == "weak" and not answer.failed and answer.cost > 0
