"""The core cost ledger and price sources (framework-free), and the failure policy."""

from __future__ import annotations

import threading
import warnings
from decimal import Decimal

import pytest

from routellm_core.costs import (
    CostLedger,
    PriceSource,
    UnknownPriceWarning,
    cost_record,
    count_tokens,
    estimate_message_tokens,
)
from routellm_core.routing import Pool, RouterFailure

PRICES = {"big": (10.0, 30.0), "small": (0.5, 1.5)}


def test_user_table_prices_and_counterfactual():
    r = cost_record(route="weak", model="small", strong_model="big", win_rate=0.2, threshold=0.5,
                    router="sw_ranking", input_tokens=1000, output_tokens=500,
                    prices=PriceSource(PRICES, use_library=False))
    assert r.cost == Decimal("0.00125") and r.strong_cost == Decimal("0.025")
    assert r.savings == Decimal("0.02375")


def test_genai_prices_is_the_default_source_offline():
    cost = PriceSource().cost("gpt-4o", input_tokens=1_000_000, output_tokens=0)
    assert cost is not None and Decimal("0.5") < cost < Decimal("20")


def test_unknown_model_is_an_explicit_unknown_with_a_warning_never_zero():
    source = PriceSource(PRICES, use_library=True)
    with pytest.warns(UnknownPriceWarning, match="no price for model 'my-private-llm'"):
        assert source.cost("my-private-llm", input_tokens=10, output_tokens=10) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per model, not on every call
        assert source.cost("my-private-llm", input_tokens=10, output_tokens=10) is None
    with pytest.raises(ValueError, match="input_per_million, output_per_million"):
        PriceSource({"x": (1.0,)})


def test_tiktoken_counts_offline():
    assert count_tokens("hello world") == 2
    assert estimate_message_tokens(["hello world", "hi"]) == (2 + 3) + (1 + 3) + 3
    assert estimate_message_tokens([]) == 0


def test_ledger_totals_equal_the_sum_of_records_from_many_threads():
    prices = PriceSource(PRICES, use_library=False)
    ledger = CostLedger()

    def work(k: int) -> None:
        for i in range(250):
            route = "strong" if (i + k) % 3 == 0 else "weak"
            ledger.add(cost_record(route=route, model="big" if route == "strong" else "small",
                                   strong_model="big", win_rate=0.5, threshold=0.5, router="t",
                                   input_tokens=100 + i, output_tokens=7 * k + 1, prices=prices))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records, totals = ledger.records, ledger.totals()
    assert len(records) == totals.calls == 1000
    assert totals.total_cost == sum(r.cost for r in records)
    assert totals.strong_cost == sum(r.strong_cost for r in records)
    assert totals.savings == totals.strong_cost - totals.total_cost
    assert totals.strong_calls == sum(r.route == "strong" for r in records)
    assert totals.by_model["big"].calls + totals.by_model["small"].calls == 1000
    with pytest.raises(TypeError, match="expected a CostRecord"):
        ledger.add({"cost": 1})



def test_failure_policy_routes_by_policy_and_records_the_error(tmp_path):
    from routellm_core import load_router
    from routellm_core.encoders import QueryEncoder

    router = load_router("default", encoder=QueryEncoder(str(tmp_path / "no-such-encoder")))
    def pair(policy: str | None = None) -> Pool:
        return Pool.pair(router, strong="big", weak="small", threshold=0.5, failure_policy=policy)

    strong = pair().route(["hello"])[0]
    assert strong.route == "strong" and strong.router_failed and strong.win_rate is None
    assert strong.error_type == "RuntimeError" and "no-such-encoder" in strong.error_message
    assert pair("weak").route(["hello"])[0].route == "weak"
    with pytest.raises(RouterFailure, match="failed while scoring 1 query"):
        pair("raise").route(["hello"])
    with pytest.raises(ValueError, match="failure_policy must be 'raise' or one of the routes"):
        pair("retry")
    with pytest.raises(ValueError, match="text 0 is empty"):  # bad input is never absorbed
        pair().route([" "])
    with pytest.raises(ValueError, match="threshold must be in"):
        pair().route(["hello"], [pair().setting(threshold=2.0)])


def test_token_counts_of_a_huge_prompt_are_bounded_in_time_and_close():
    """A 5 MB prompt from a model that reports no usage: counted in a bounded time (it used to
    hold the event loop about 2 s), within a few percent of the exact count."""
    import time

    from routellm_core.costs import EXACT_TOKEN_CHARS, _encoding, count_tokens, token_counts

    words = "routing saves money when the cheap model is good enough; ".split()
    text = " ".join(words[i % len(words)] + str(i % 97) for i in range(700_000))
    assert len(text) > 40 * EXACT_TOKEN_CHARS
    count_tokens("warm up")
    start = time.perf_counter()
    inp, out, estimated = token_counts(None, prompt_texts=[text], output_text="ok")
    assert time.perf_counter() - start < 0.5 and estimated
    exact = len(_encoding("cl100k_base").encode(text, disallowed_special=()))
    assert abs(inp - exact) / exact < 0.03
    assert count_tokens(text[:1000]) == len(_encoding("cl100k_base").encode(text[:1000]))
