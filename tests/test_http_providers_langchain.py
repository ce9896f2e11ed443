"""ChatRouteLLM over HTTP: two real models served by llama-cpp-python's OpenAI-compatible server,
reached through ``langchain-openai``'s ``ChatOpenAI(base_url=...)``, with a fault-injecting
proxy in between (``tests/http_faults.py``; the ``llama_server`` / ``fault_proxy`` fixtures
are in ``tests/conftest.py``). Every cost record is checked against the ``usage`` the server
put in its response, as the proxy saw it. Answers are a few tokens long: these tests check
the plumbing (routing, usage, retries, fallback, the ledger), not answer quality."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from tests.http_faults import PRICES, assert_server_usage, cost_of

pytestmark = [
    pytest.mark.local_models,
    # thresholds of 0 and 1 pin a route on purpose
    pytest.mark.filterwarnings("ignore::routellm_core.calibration.RoutingSettingWarning"),
]

STRONG, WEAK = 0.0, 1.0  # per-call thresholds that pin the route: win_rate >= 0 / win_rate >= 1


def chat(server, proxy, model: str, max_tokens: int = 8, **kwargs):
    from langchain_openai import ChatOpenAI

    options = {"temperature": 0, "max_retries": 0, "timeout": 120, **kwargs}
    # langchain-openai sends max_tokens as "max_completion_tokens", which llama-cpp-python's server
    # ignores (it would write up to the context size): send "max_tokens" too
    return ChatOpenAI(model=model, base_url=proxy.url, api_key="sk-local", max_tokens=max_tokens,
                      extra_body={"max_tokens": max_tokens}, **options)


def routed(server, proxy, strong_kwargs=None, weak_kwargs=None, **kwargs):
    from langchain_routellm import ChatRouteLLM

    return ChatRouteLLM(strong=chat(server, proxy, server.strong, **(strong_kwargs or {})),
                        weak=chat(server, proxy, server.weak, **(weak_kwargs or {})), **kwargs)


def client_error(server, proxy, kind: str, **kwargs) -> str:
    """The type name of the exception the weak model's client raises for fault ``kind`` (called directly)."""
    proxy.inject(kind, model=server.weak, hold=5)
    try:
        chat(server, proxy, server.weak, **kwargs).invoke("hi")
    except Exception as exc:  # noqa: BLE001 - whatever the client raises is what the ledger must name
        proxy.reset()
        return type(exc).__name__
    raise AssertionError(f"the client did not raise on an injected {kind}")


def answered(proxy):
    return [r for r in proxy.log if r.path.endswith("/chat/completions") and r.status == 200]


# --------------------------------------------------------------------------- calls
def test_invoke_goes_to_the_routers_choice_and_is_charged_the_servers_usage(llama_server, fault_proxy):
    from langchain_routellm import get_routing_cost_callback

    llm = routed(llama_server, fault_proxy, strong_fraction=0.5)
    questions = ["hi", "Prove that there are infinitely many primes."]
    with get_routing_cost_callback(prices=PRICES) as cb:
        messages = [llm.invoke(q) for q in questions]
    decisions = [llm.route(q) for q in questions]
    requests = answered(fault_proxy)
    assert [r.model for r in requests] == [d.model for d in decisions]
    for msg, decision, record, request in zip(messages, decisions, cb.records, requests):
        assert msg.content.strip()
        assert msg.response_metadata["routellm_route"] == decision.route == record.route
        assert msg.response_metadata["model_name"] == decision.model == record.model
        assert msg.usage_metadata["input_tokens"] == request.usage["prompt_tokens"]
        assert request.payload["max_completion_tokens"] == request.payload["max_tokens"] == 8
        assert request.usage["completion_tokens"] <= 8  # the server honoured the limit
        assert_server_usage(record, request)
    assert cb.totals.calls == 2
    assert cb.totals.total_cost == sum(r.cost for r in cb.records)


def test_batch_and_async_calls_each_route_on_their_own(llama_server, fault_proxy):
    from langchain_routellm import get_routing_cost_callback

    llm = routed(llama_server, fault_proxy)
    qs = ["What is 2 + 2?", "Write a Python function that reverses a linked list."]
    rates = [llm.route(q).win_rate for q in qs]
    threshold = (rates[0] + rates[1]) / 2  # between the two: one goes strong, the other weak
    expected = ["strong" if r >= threshold else "weak" for r in rates]
    assert sorted(expected) == ["strong", "weak"]
    with get_routing_cost_callback(prices=PRICES) as cb:
        out = llm.batch(qs, routellm_threshold=threshold)
        aout = asyncio.run(llm.abatch(qs, routellm_threshold=threshold))
        single = asyncio.run(llm.ainvoke(qs[0], routellm_threshold=threshold))
    assert [m.response_metadata["routellm_route"] for m in out] == expected
    assert [m.response_metadata["routellm_route"] for m in aout] == expected
    assert single.response_metadata["routellm_route"] == expected[0]
    assert len(cb.records) == 5 and sorted(r.route for r in cb.records) == sorted(expected * 2 + expected[:1])
    requests = answered(fault_proxy)
    assert len(requests) == 5
    # batch order on the wire is not fixed: compare the multisets of (model, tokens)
    served = Counter((r.model, r.usage["prompt_tokens"], r.usage["completion_tokens"]) for r in requests)
    recorded = Counter((r.model, r.input_tokens, r.output_tokens) for r in cb.records)
    assert recorded == served
    for record in cb.records:
        assert not record.tokens_estimated
        assert record.cost == cost_of(record.model, record.input_tokens, record.output_tokens)


def test_streaming_yields_the_chosen_models_chunks_and_records_one_call(llama_server, fault_proxy):
    from langchain_routellm import get_routing_cost_callback

    llm = routed(llama_server, fault_proxy, weak_kwargs={"stream_usage": True})
    with get_routing_cost_callback(prices=PRICES) as cb:
        chunks = list(llm.stream("Name a colour.", routellm_threshold=WEAK))
    text = "".join(c.content for c in chunks)
    assert text.strip() and len(chunks) > 2
    (request,) = answered(fault_proxy)
    assert request.stream and request.model == llama_server.weak and request.events >= len(chunks) - 1
    (record,) = cb.records
    assert record.route == "weak" and record.model == llama_server.weak and not record.failed
    if request.usage:  # servers that honour stream_options.include_usage (vLLM, llama.cpp's llama-server)
        assert_server_usage(record, request)
    else:  # llama-cpp-python's server sends no usage on streams: the ledger estimates, and says so
        assert record.tokens_estimated and record.output_tokens > 0 and record.cost > 0


def test_async_streaming(llama_server, fault_proxy):
    llm = routed(llama_server, fault_proxy)

    async def collect():
        return [c async for c in llm.astream("Say hello.", routellm_threshold=WEAK)]

    chunks = asyncio.run(collect())
    assert "".join(c.content for c in chunks).strip()
    assert chunks[0].response_metadata.get("routellm_route", "weak") == "weak"
    assert [r.model for r in answered(fault_proxy)] == [llama_server.weak]


def test_tool_calls_and_an_agent_loop(llama_server, fault_proxy):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    from langchain_routellm import get_routing_cost_callback

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = routed(llama_server, fault_proxy, strong_kwargs={"max_tokens": 48}, weak_kwargs={"max_tokens": 48})
    # a named tool_choice: the server constrains the answer to the tool's schema (weak model)
    forced = llm.bind_tools([add], tool_choice="add").invoke("What is 3 plus 4?", routellm_threshold=WEAK)
    assert forced.response_metadata["routellm_route"] == "weak"
    (call,) = forced.tool_calls
    assert call["name"] == "add" and set(call["args"]) == {"a", "b"}
    assert all(isinstance(v, int) for v in call["args"].values())
    # the documented agent loop, tool_choice="auto", on the strong model
    agent = llm.bind_tools([add], tool_choice="auto")
    messages = [HumanMessage("What is 3 plus 4? Use the add tool.")]
    with get_routing_cost_callback(prices=PRICES) as cb:
        for _ in range(3):
            ai = agent.invoke(messages, routellm_threshold=STRONG)
            if not ai.tool_calls:
                break
            # llama-cpp-python's server (0.3) refuses an assistant turn with "content": null, which
            # is what OpenAI clients send for a tool-call turn without text (the OpenAI API accepts it)
            ai.content = ai.content or " "
            messages.append(ai)
            for tc in ai.tool_calls:
                messages.append(ToolMessage(str(add.invoke(tc["args"])), tool_call_id=tc["id"]))
    assert any(isinstance(m, ToolMessage) and m.content == "7" for m in messages)
    assert all(r.route == "strong" for r in cb.records) and len(cb.records) >= 2
    for record, request in zip(cb.records, answered(fault_proxy)[1:]):
        assert_server_usage(record, request)


def test_structured_output_and_an_lcel_chain(llama_server, fault_proxy):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from pydantic import BaseModel

    from langchain_routellm import get_routing_cost_callback

    class Capital(BaseModel):
        country: str
        city: str

    llm = routed(llama_server, fault_proxy, weak_kwargs={"max_tokens": 32})
    structured = llm.with_structured_output(Capital, method="function_calling", include_raw=True)
    chain = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{question}")]) | llm
    chain = chain | StrOutputParser()
    with get_routing_cost_callback(prices=PRICES) as cb:
        out = structured.invoke("What is the capital of France?", routellm_threshold=WEAK)
        text = chain.invoke({"question": "What is the capital of Italy?"},
                            config={"configurable": {"routellm_threshold": WEAK}})
    assert isinstance(out["parsed"], Capital), out
    assert out["raw"].response_metadata["routellm_route"] == "weak"
    assert isinstance(text, str) and text.strip()
    assert [r.route for r in cb.records] == ["weak", "weak"]
    for record, request in zip(cb.records, answered(fault_proxy)):
        assert_server_usage(record, request)


# --------------------------------------------------------------------------- faults
def test_a_429_is_retried_by_the_client_after_retry_after_and_charged_once(llama_server, fault_proxy):
    from langchain_routellm import get_routing_cost_callback

    llm = routed(llama_server, fault_proxy, weak_kwargs={"max_retries": 2})
    fault_proxy.inject("429", model=llama_server.weak, retry_after=1)
    with get_routing_cost_callback(prices=PRICES) as cb:
        msg = llm.invoke("hi", routellm_threshold=WEAK)
    first, second = fault_proxy.log
    assert (first.status, second.status) == (429, 200) and first.model == second.model == llama_server.weak
    assert second.at - first.at >= 0.9  # the client waited for Retry-After
    assert msg.response_metadata["routellm_route"] == "weak"
    assert "routellm_fallback_from" not in msg.response_metadata  # the client's retry, not a fallback
    (record,) = cb.records
    assert_server_usage(record, second)


def test_a_500_on_the_weak_model_falls_back_to_the_strong_one(llama_server, fault_proxy):
    from langchain_routellm import get_routing_cost_callback

    error_type = client_error(llama_server, fault_proxy, "500")  # langchain-openai's own error class
    llm = routed(llama_server, fault_proxy)  # fallback="auto": a failed weak call goes strong
    fault_proxy.inject("500", model=llama_server.weak)
    with get_routing_cost_callback(prices=PRICES) as cb:
        msg = llm.invoke("hi", routellm_threshold=WEAK)
    assert [(r.model, r.status) for r in fault_proxy.log] == [(llama_server.weak, 500), (llama_server.strong, 200)]
    md = msg.response_metadata
    assert md["routellm_route"] == "strong" and md["routellm_fallback_from"] == "weak"
    assert md["routellm_fallback_error_type"] == error_type
    failed, answer = cb.records
    assert failed.failed and failed.model == llama_server.weak and failed.error_type == error_type
    assert (failed.input_tokens, failed.output_tokens, failed.cost) == (0, 0, Decimal(0))
    assert answer.fallback_from == "weak" and answer.model == llama_server.strong
    assert_server_usage(answer, fault_proxy.log[1])
    assert (cb.totals.calls, cb.totals.failed_calls, cb.totals.fallbacks) == (1, 1, 1)
    assert cb.totals.total_cost == answer.cost


def test_a_failing_strong_model_raises_by_default_and_is_charged_nothing(llama_server, fault_proxy):
    import openai

    from langchain_routellm import get_routing_cost_callback

    llm = routed(llama_server, fault_proxy, strong_kwargs={"max_retries": 1})
    fault_proxy.inject("500", model=llama_server.strong, times=2)  # the client's retry fails too
    with get_routing_cost_callback(prices=PRICES) as cb, pytest.raises(openai.InternalServerError):
        llm.invoke("hi", routellm_threshold=STRONG)
    assert [(r.model, r.status) for r in fault_proxy.log] == [(llama_server.strong, 500)] * 2
    (failed,) = cb.records
    assert failed.failed and failed.cost == 0 and cb.totals.total_cost == 0 and cb.totals.calls == 0


def test_a_timeout_falls_back_and_the_timed_out_attempt_is_charged_nothing(llama_server, fault_proxy):
    import time

    from langchain_routellm import get_routing_cost_callback

    error_type = client_error(llama_server, fault_proxy, "timeout", timeout=0.5)
    llm = routed(llama_server, fault_proxy, weak_kwargs={"timeout": 0.5})
    fault_proxy.inject("timeout", model=llama_server.weak, hold=5)
    start = time.monotonic()
    with get_routing_cost_callback(prices=PRICES) as cb:
        msg = llm.invoke("hi", routellm_threshold=WEAK)
    assert "Timeout" in error_type and msg.response_metadata["routellm_fallback_error_type"] == error_type
    assert time.monotonic() - start < 4.5  # did not wait for the hung request
    failed, answer = cb.records
    assert failed.failed and failed.error_type == error_type and failed.cost == 0
    assert_server_usage(answer, answered(fault_proxy)[0])


def test_a_stream_dropped_before_its_first_chunk_falls_back(llama_server, fault_proxy):
    from langchain_routellm import get_routing_cost_callback

    llm = routed(llama_server, fault_proxy)
    fault_proxy.inject("drop_stream", model=llama_server.weak, after_events=0)
    with get_routing_cost_callback(prices=PRICES) as cb:
        chunks = list(llm.stream("hi", routellm_threshold=WEAK))
    assert "".join(c.content for c in chunks).strip()
    assert [(r.model, r.events) for r in fault_proxy.log][0] == (llama_server.weak, 0)
    assert fault_proxy.log[1].model == llama_server.strong
    failed, answer = cb.records
    assert failed.failed and failed.cost == 0 and failed.model == llama_server.weak
    assert answer.fallback_from == "weak" and answer.model == llama_server.strong and not answer.failed


def test_a_stream_dropped_after_text_reached_the_caller_raises(llama_server, fault_proxy):
    import httpx
    import openai

    from langchain_routellm import get_routing_cost_callback

    llm = routed(llama_server, fault_proxy, weak_kwargs={"max_tokens": 16})
    fault_proxy.inject("drop_stream", model=llama_server.weak, after_events=3)
    got = []
    with get_routing_cost_callback(prices=PRICES) as cb, pytest.raises(
            (httpx.RemoteProtocolError, openai.APIConnectionError)):
        for chunk in llm.stream("Count from one to ten.", routellm_threshold=WEAK):
            got.append(chunk)
    assert got and len(fault_proxy.log) == 1  # no fallback once text has reached the caller
    (record,) = cb.records
    received = "".join(c.content for c in got)
    assert received.strip(), f"the {fault_proxy.log[0].events} relayed events carried no text"
    # the provider billed the prompt and the text it sent: a failed attempt charged for them
    # (estimated: the usage event never arrived), see docs/costs.md
    from routellm_core.costs import count_tokens, estimate_message_tokens

    assert record.failed and record.model == llama_server.weak and record.tokens_estimated
    assert record.input_tokens == estimate_message_tokens(["Count from one to ten."])
    assert record.output_tokens == count_tokens(received)
    assert record.cost == cost_of(llama_server.weak, record.input_tokens, record.output_tokens) > 0
    assert record.strong_cost == record.cost  # no savings claimed for a broken attempt
