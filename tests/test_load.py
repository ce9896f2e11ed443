"""Load: 1,000 concurrent async calls through ChatRouteLLM and through RouteLLM, and calls from
several threads at once, all on the real embedded router (its shared encoder and caches).

The models behind the router are fakes that answer after a random delay and fail on a fixed
share of queries (which ones is a function of the text, so the test knows each call's expected
outcome whatever order the calls finish in). Checked per call: the answer and the recorded win
rate are its own query's, the route and any fallback are what the settings prescribe, and
failures raise the model's own error; checked overall: no other exception, and the ledger's
totals equal the sum of its records.

Nine in ten queries are embedded in one batch before the run (a warm cache, as in a service that
has seen them); the other tenth is encoded during the run, one text per call, concurrently with
the cache reads. That keeps the encoder time to seconds on a 2-core machine; encoding from many
threads at once is also covered in tests/test_encoders.py.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation import get_dispatcher

from langchain_routellm import (
    ChatRouteLLM,
    RoutingCostCallbackHandler,
    get_routing_cost_callback,
)
from llamaindex_routellm import RouteLLM, RoutingCostEventHandler
from routellm_core.checkpoints import load_router
from routellm_core.encoders import QueryEncoder
from routellm_core.routing import shared_router
from tests.langchain.fake_models import FakeModelError as LCFakeError
from tests.langchain.fake_models import FlakyChatModel, fails
from tests.llamaindex.fakes import FakeModelError as LIFakeError
from tests.llamaindex.fakes import FlakyLLM

N = 1000
PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}
WEAK_FAILS, STRONG_FAILS = 12, 6  # percent of queries each model fails on
TOPICS = [
    "prime numbers",
    "tea",
    "a haiku",
    "Rust lifetimes",
    "the French revolution",
    "sorting algorithms",
    "a birthday card",
    "tax law",
    "black holes",
    "sourdough bread",
]


def queries(tag: str, n: int = N) -> list[str]:
    """Short, distinct queries, so that a call answered or scored for another query shows."""
    return [
        f"{tag} {i}: tell me about {TOPICS[i % len(TOPICS)]} ({i * 7919 % 1009})"
        for i in range(n)
    ]


def load_queries(tag: str) -> list[str]:
    """N queries: nine in ten shared by both adapters' tests (embedded in one batch before the
    run), one in ten, spread through the list, new to this test (encoded during the run)."""
    warm, cold = queries("load", N - N // 10), queries(tag, N // 10)
    return [cold[i // 10] if i % 10 == 0 else warm[i - i // 10 - 1] for i in range(N)]


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


def warm(router: Any, texts: list[str]) -> None:
    """Embed the shared nine in ten of ``texts`` in one batch (the cache the calls will read)."""
    router.win_rate([t for i, t in enumerate(texts) if i % 10])


def batch_rates(router: Any, texts: list[str]) -> dict[str, float]:
    """Each text's win rate, scored in one batch after the run (from the cache)."""
    return {t: float(r) for t, r in zip(texts, router.win_rate(texts))}


def check_route(recorded: float, expected: float, threshold: float) -> str:
    """The call was scored on its own query (its win rate is that query's, up to the last bits
    a batch computes differently), and the route follows from it; returns that route."""
    assert recorded == pytest.approx(expected, abs=1e-6)
    return "strong" if recorded >= threshold else "weak"


def expected_outcome(
    text: str, route: str, *, strong_to_weak: bool
) -> tuple[str, str | None]:
    """(route that answers, fallback_from) or ("error", None), as the fallback settings prescribe."""
    bad = {
        "strong": fails("fake-strong", text, STRONG_FAILS),
        "weak": fails("fake-weak", text, WEAK_FAILS),
    }
    if not bad[route]:
        return route, None
    other = "weak" if route == "strong" else "strong"
    allowed = route == "weak" or strong_to_weak
    if allowed and not bad[other]:
        return other, route
    return "error", None


@pytest.fixture(scope="module")
def fresh_router():
    return load_router("default", encoder=QueryEncoder(cache_size=0))


def check_against_fresh_router(
    fresh: Any, texts: list[str], got: dict[str, float]
) -> None:
    """A sample re-scored by a separate router with its own, cache-less encoder."""
    sample = [t for t in texts if t in got][:: len(texts) // 40]
    assert np.allclose([got[t] for t in sample], fresh.win_rate(sample), atol=1e-5)


def test_1000_concurrent_async_calls_through_chat_route_llm(router, fresh_router):
    texts = load_queries("lc")
    llm = ChatRouteLLM(
        strong=FlakyChatModel(
            model_name="fake-strong", fail_percent=STRONG_FAILS, max_delay=0.02
        ),
        weak=FlakyChatModel(
            model_name="fake-weak", fail_percent=WEAK_FAILS, max_delay=0.02
        ),
        router=router,
        strong_fraction=0.5,
    )  # default fallback: weak -> strong

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(llm.ainvoke(t) for t in texts), return_exceptions=True
        )

    warm(router, texts)
    with get_routing_cost_callback(PRICES) as cb:
        results = asyncio.run(run())

    assert [
        r
        for r in results
        if isinstance(r, BaseException) and not isinstance(r, LCFakeError)
    ] == []
    threshold, rates = (
        router.resolve_threshold(strong_fraction=0.5),
        batch_rates(router, texts),
    )
    outcomes = []
    for text, res in zip(texts, results):
        if isinstance(
            res, LCFakeError
        ):  # both allowed attempts failed: the model's own error
            outcomes.append(("error", None))
            continue
        md = res.response_metadata
        outcome = expected_outcome(
            text,
            check_route(md["routellm_win_rate"], rates[text], threshold),
            strong_to_weak=False,
        )
        assert res.content == f"[fake-{outcome[0]}] {text}"  # its own query's answer
        assert (md["routellm_route"], md.get("routellm_fallback_from")) == outcome
        outcomes.append(outcome)
    for text, o in zip(texts, outcomes):  # and every error was due
        if o[0] == "error":
            route = "strong" if rates[text] >= threshold else "weak"
            assert expected_outcome(text, route, strong_to_weak=False) == (
                "error",
                None,
            )
    check_against_fresh_router(
        fresh_router,
        texts,
        {
            t: r.response_metadata["routellm_win_rate"]
            for t, r in zip(texts, results)
            if not isinstance(r, Exception)
        },
    )

    t = cb.totals
    assert (
        t.calls == sum(o[0] != "error" for o in outcomes) and 0 < N - t.calls < N // 10
    )
    assert t.fallbacks == sum(o[1] is not None for o in outcomes) > 0
    assert t.failed_calls == llm.strong.failures + llm.weak.failures > 0
    assert t.strong_calls == sum(o[0] == "strong" for o in outcomes)
    assert t.total_cost == sum((r.cost for r in cb.records), Decimal(0))
    assert t.strong_cost == sum((r.strong_cost for r in cb.records), Decimal(0))
    assert len(cb.records) == t.calls + t.failed_calls


def test_1000_concurrent_async_calls_through_route_llm(router, fresh_router):
    texts = load_queries("li")
    llm = RouteLLM(
        strong=FlakyLLM(model="fake-strong", fail_percent=STRONG_FAILS, max_delay=0.02),
        weak=FlakyLLM(model="fake-weak", fail_percent=WEAK_FAILS, max_delay=0.02),
        router=router,
        strong_fraction=0.5,
        prices=PRICES,
        fallback="both",
    )
    costs = RoutingCostEventHandler()

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(
                llm.achat([ChatMessage(role=MessageRole.USER, content=t)])
                for t in texts
            ),
            return_exceptions=True,
        )

    warm(router, texts)
    get_dispatcher().add_event_handler(costs)
    try:
        results = asyncio.run(run())
    finally:
        costs.detach()

    assert [
        r
        for r in results
        if isinstance(r, BaseException) and not isinstance(r, LIFakeError)
    ] == []
    threshold, rates = (
        router.resolve_threshold(strong_fraction=0.5),
        batch_rates(router, texts),
    )
    outcomes = []
    for text, res in zip(texts, results):
        route = "strong" if rates[text] >= threshold else "weak"
        if isinstance(res, LIFakeError):
            assert expected_outcome(text, route, strong_to_weak=True) == ("error", None)
            outcomes.append(("error", None))
            continue
        kw = res.additional_kwargs
        outcome = expected_outcome(
            text,
            check_route(kw["routellm_win_rate"], rates[text], threshold),
            strong_to_weak=True,
        )
        assert (
            res.message.content
            == f"[fake-{outcome[0]}] answer to: {' '.join(text.split()[:6])}"
        )
        assert (kw["routellm_route"], kw.get("routellm_fallback_from")) == outcome
        outcomes.append(outcome)
    check_against_fresh_router(
        fresh_router,
        texts,
        {
            t: r.additional_kwargs["routellm_win_rate"]
            for t, r in zip(texts, results)
            if not isinstance(r, Exception)
        },
    )

    assert len(costs.decisions) == N
    assert sorted(d.win_rate for d in costs.decisions) == pytest.approx(
        sorted(rates.values()), abs=1e-6
    )
    t = costs.totals
    assert t.calls == sum(o[0] != "error" for o in outcomes)
    assert t.fallbacks == sum(o[1] is not None for o in outcomes) > 0
    # with fallback="both" a call errs only after its fallback failed too
    assert len(costs.fallbacks) == t.fallbacks + sum(o[0] == "error" for o in outcomes)
    assert t.failed_calls == llm.strong.failures + llm.weak.failures
    assert t.total_cost == sum((r.cost for r in costs.records), Decimal(0))
    assert len(costs.records) == t.calls + t.failed_calls


def test_many_threads_share_one_routed_model_and_router(router):
    texts = queries("threads", 64)
    lc = ChatRouteLLM(
        strong=FlakyChatModel(model_name="fake-strong"),
        weak=FlakyChatModel(model_name="fake-weak"),
        router=router,
        threshold=0.5,
    )
    li = RouteLLM(
        strong=FlakyLLM(model="fake-strong"),
        weak=FlakyLLM(model="fake-weak"),
        router=router,
        threshold=0.5,
        prices=PRICES,
    )
    handler = RoutingCostCallbackHandler(PRICES)

    def call(i_text: tuple[int, str]) -> tuple[float, str]:
        i, text = i_text
        if i % 2:
            md = lc.invoke(text, config={"callbacks": [handler]}).response_metadata
            return md["routellm_win_rate"], md["routellm_route"]
        kw = li.chat(
            [ChatMessage(role=MessageRole.USER, content=text)]
        ).additional_kwargs
        return kw["routellm_win_rate"], kw["routellm_route"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(call, enumerate(texts)))
    rates = batch_rates(router, texts)
    assert [check_route(g[0], rates[t], 0.5) for g, t in zip(got, texts)] == [
        g[1] for g in got
    ]
    assert handler.totals.calls == len(texts) // 2  # the LangChain half
    assert handler.totals.total_cost == sum(
        (r.cost for r in handler.records), Decimal(0)
    )
