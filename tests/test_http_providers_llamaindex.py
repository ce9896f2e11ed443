"""RouteLLM over HTTP: two real models served by llama-cpp-python's OpenAI-compatible server,
reached through LlamaIndex's ``OpenAILike`` (``llama-index-llms-openai-like``), with the
fault-injecting proxy of ``tests/http_faults.py`` in between (fixtures in ``tests/conftest.py``).
Cost events are checked against the ``usage`` the server put in its responses, as the proxy saw
it. Answers are a few tokens long: these tests check the plumbing, not answer quality."""

from __future__ import annotations

import asyncio

import pytest

from tests.http_faults import PRICES, assert_server_usage, cost_of

pytestmark = [
    pytest.mark.local_models,
    pytest.mark.filterwarnings("ignore::routellm_core.calibration.RoutingSettingWarning"),
]

STRONG, WEAK = 0.0, 1.0  # per-call thresholds that pin the route


def openai_like(proxy, model: str, **kwargs):
    from llama_index.llms.openai_like import OpenAILike

    options = {"max_tokens": 8, "temperature": 0.0, "max_retries": 0, "timeout": 120.0, **kwargs}
    return OpenAILike(model=model, api_base=proxy.url, api_key="sk-local", is_chat_model=True,
                      is_function_calling_model=True, context_window=1024, **options)


def routed(server, proxy, strong_kwargs=None, weak_kwargs=None, **kwargs):
    from llamaindex_routellm import RouteLLM

    return RouteLLM(strong=openai_like(proxy, server.strong, **(strong_kwargs or {})),
                    weak=openai_like(proxy, server.weak, **(weak_kwargs or {})), prices=PRICES, **kwargs)


@pytest.fixture
def costs():
    from llama_index.core.instrumentation import get_dispatcher

    from llamaindex_routellm import RoutingCostEventHandler

    handler = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(handler)
    yield handler
    handler.detach()


def answered(proxy):
    return [r for r in proxy.log if r.path.endswith("/chat/completions") and r.status == 200]


# --------------------------------------------------------------------------- calls
def test_chat_and_complete_route_and_are_charged_the_servers_usage(llama_server, fault_proxy, costs):
    from llama_index.core.llms import ChatMessage

    llm = routed(llama_server, fault_proxy)
    questions = ["hi", "Prove that there are infinitely many primes."]
    decisions = [llm.route(q) for q in questions]
    replies = [llm.chat([ChatMessage(role="user", content=q)]) for q in questions]
    completion = llm.complete("Name a fruit.", routellm_threshold=WEAK)
    areply = asyncio.run(llm.acomplete("Name a colour.", routellm_threshold=STRONG))
    assert all(r.message.content.strip() for r in replies) and completion.text.strip() and areply.text.strip()
    assert [r.additional_kwargs["routellm_route"] for r in replies] == [d.route for d in decisions]
    requests = answered(fault_proxy)
    assert [r.model for r in requests] == [d.model for d in decisions] + [llama_server.weak, llama_server.strong]
    assert [r.model for r in costs.records] == [r.model for r in requests]
    for record, request in zip(costs.records, requests):
        assert_server_usage(record, request)
    assert costs.totals.calls == 4 and costs.totals.total_cost == sum(r.cost for r in costs.records)


def test_streaming_chat_records_one_call_after_the_stream_ends(llama_server, fault_proxy, costs):
    from llama_index.core.llms import ChatMessage

    llm = routed(llama_server, fault_proxy)
    chunks = list(llm.stream_chat([ChatMessage(role="user", content="Name a colour.")], routellm_threshold=WEAK))
    assert chunks and chunks[-1].message.content.strip()
    (request,) = answered(fault_proxy)
    assert request.stream and request.model == llama_server.weak
    (record,) = costs.records
    assert record.route == "weak" and not record.failed
    if request.usage:  # servers that send usage on streams
        assert_server_usage(record, request)
    else:  # llama-cpp-python's server sends none: estimated, and flagged
        assert record.tokens_estimated and record.output_tokens > 0 and record.cost > 0


def test_a_query_engine_over_a_summary_index(llama_server, fault_proxy, costs):
    from llama_index.core import Document, SummaryIndex

    llm = routed(llama_server, fault_proxy, weak_kwargs={"max_tokens": 12})
    index = SummaryIndex.from_documents([Document(text="Mercury is the planet closest to the Sun.")])
    engine = index.as_query_engine(llm=llm.with_routing(threshold=WEAK), response_mode="compact")
    answer = engine.query("Which planet is closest to the Sun?")
    assert str(answer).strip()
    (request,) = answered(fault_proxy)
    assert request.model == llama_server.weak
    (record,) = costs.records
    assert_server_usage(record, request)
    decision = costs.decisions[-1]
    assert decision.route == "weak"


def test_a_function_agent_calls_the_tool_through_the_routed_llm(llama_server, fault_proxy, costs):
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool

    calls = []

    def add(a: int, b: int) -> int:
        """Add two integers."""
        calls.append((a, b))
        return a + b

    # return_direct: the tool's result is the answer, so the agent makes one routed call (a second
    # one would send the tool-call turn back with "content": null, which llama-cpp-python's server
    # refuses; see docs/providers.md)
    tool = FunctionTool.from_defaults(add, return_direct=True)
    llm = routed(llama_server, fault_proxy, strong_kwargs={"max_tokens": 48})
    async def run():  # a workflow is built and run inside an event loop
        # streaming=False: llama-cpp-python's server cannot stream with tool_choice="auto" (its
        # stream ends empty), so the agent asks for whole answers
        agent = FunctionAgent(tools=[tool], llm=llm.with_routing(threshold=STRONG), streaming=False)
        return await agent.run("What is 3 plus 4? Use the add tool.")

    result = asyncio.run(run())
    assert calls and "7" in str(result)
    requests = answered(fault_proxy)
    assert [r.model for r in requests] == [llama_server.strong]
    (record,) = costs.records
    assert record.route == "strong"
    if requests[0].usage:
        assert_server_usage(record, requests[0])


def test_structured_output_with_a_named_tool_call(llama_server, fault_proxy, costs):
    from llama_index.core.program import FunctionCallingProgram
    from pydantic import BaseModel

    class Capital(BaseModel):
        country: str
        city: str

    llm = routed(llama_server, fault_proxy, weak_kwargs={"max_tokens": 32})
    # structured_predict asks for tool_choice="required", which llama-cpp-python's server (0.3)
    # answers with a 500; a program that names the tool works there (and on any OpenAI-compatible server)
    program = FunctionCallingProgram.from_defaults(
        output_cls=Capital, prompt_template_str="What is the capital of {country}?",
        llm=llm.with_routing(threshold=WEAK), tool_choice="Capital")
    out = program(country="France")
    assert isinstance(out, Capital)
    (request,) = answered(fault_proxy)
    assert request.model == llama_server.weak
    assert request.payload["tool_choice"] == {"type": "function", "function": {"name": "Capital"}}
    (record,) = costs.records
    assert_server_usage(record, request)


# --------------------------------------------------------------------------- faults
def test_a_429_is_retried_by_the_client_and_charged_once(llama_server, fault_proxy, costs):
    llm = routed(llama_server, fault_proxy, weak_kwargs={"max_retries": 1})
    fault_proxy.inject("429", model=llama_server.weak, retry_after=1)
    reply = llm.complete("hi", routellm_threshold=WEAK)
    assert reply.text.strip()
    first, second = fault_proxy.log
    assert (first.status, second.status) == (429, 200) and second.at - first.at >= 0.9
    (record,) = costs.records
    assert record.route == "weak" and record.fallback_from is None
    assert_server_usage(record, second)


def test_a_500_falls_back_and_the_failed_attempt_is_charged_nothing(llama_server, fault_proxy, costs):
    llm = routed(llama_server, fault_proxy)
    fault_proxy.inject("500", model=llama_server.weak)
    reply = llm.complete("hi", routellm_threshold=WEAK)
    assert reply.text.strip()
    assert [(r.model, r.status) for r in fault_proxy.log] == [(llama_server.weak, 500), (llama_server.strong, 200)]
    failed, answer = costs.records
    assert failed.failed and failed.model == llama_server.weak and failed.cost == 0
    assert (failed.input_tokens, failed.output_tokens) == (0, 0)
    assert answer.fallback_from == "weak" and answer.model == llama_server.strong
    assert_server_usage(answer, fault_proxy.log[1])
    assert (costs.totals.calls, costs.totals.failed_calls, costs.totals.fallbacks) == (1, 1, 1)


def test_a_stream_dropped_after_text_is_charged_for_what_it_sent(llama_server, fault_proxy, costs):
    import httpx
    import openai
    from llama_index.core.llms import ChatMessage

    from routellm_core.costs import count_tokens, estimate_message_tokens

    llm = routed(llama_server, fault_proxy, weak_kwargs={"max_tokens": 16})
    fault_proxy.inject("drop_stream", model=llama_server.weak, after_events=3)
    got = []
    with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)) as info:
        for chunk in llm.stream_chat([ChatMessage(role="user", content="Count from one to ten.")],
                                     routellm_threshold=WEAK):
            got.append(chunk)
    assert got and len(fault_proxy.log) == 1, info.value  # no fallback once text has reached the caller
    received = got[-1].message.content or ""
    assert received.strip(), f"the {fault_proxy.log[0].events} relayed events carried no text"
    (record,) = costs.records  # failed, charged for the prompt and the text sent (estimated)
    assert record.failed and record.model == llama_server.weak and record.tokens_estimated
    assert record.input_tokens == estimate_message_tokens(["Count from one to ten."])
    assert record.output_tokens == count_tokens(received)
    assert record.cost == cost_of(llama_server.weak, record.input_tokens, record.output_tokens) > 0
    assert record.strong_cost == record.cost  # no savings claimed for a broken attempt
    assert (costs.totals.calls, costs.totals.failed_calls) == (0, 1)


def test_a_timeout_then_a_dropped_stream_fall_back(llama_server, fault_proxy, costs):
    from llama_index.core.llms import ChatMessage

    llm = routed(llama_server, fault_proxy, weak_kwargs={"timeout": 0.5})
    fault_proxy.inject("timeout", model=llama_server.weak, hold=5)
    assert llm.complete("hi", routellm_threshold=WEAK).text.strip()
    fault_proxy.inject("drop_stream", model=llama_server.weak, after_events=0)
    chunks = list(llm.stream_chat([ChatMessage(role="user", content="hi")], routellm_threshold=WEAK))
    assert chunks and chunks[-1].message.content.strip()
    assert [(r.model, r.fault) for r in fault_proxy.log] == [
        (llama_server.weak, "timeout"), (llama_server.strong, None),
        (llama_server.weak, "drop_stream"), (llama_server.strong, None)]
    timed_out, answer, dropped, streamed = costs.records
    assert timed_out.failed and dropped.failed and timed_out.cost == dropped.cost == 0
    assert "Timeout" in (timed_out.error_type or "")
    assert answer.fallback_from == streamed.fallback_from == "weak"
    assert_server_usage(answer, fault_proxy.log[1])
