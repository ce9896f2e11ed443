"""The core fallback logic both adapters share: policies, the decision record, sync / async /
streaming calls, and the ledger's view of failed attempts."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from routellm_core.costs import CostLedger, PriceSource, cost_record, failed_attempt_record
from routellm_core.routing import (
    Decision,
    FallbackPolicy,
    acall_with_fallback,
    astream_with_fallback,
    call_with_fallback,
    stream_with_fallback,
)

PAIR = {"strong": "big", "weak": "small"}
WEAK = Decision.by_threshold(0.2, 0.5, PAIR, router="sw_ranking")
STRONG = Decision.by_threshold(0.8, 0.5, PAIR, router="sw_ranking")
POOL = Decision(route="b", model="b", router="quality", rule="utility", models={"a": "a", "b": "b", "c": "c"},
                reference="a", utilities={"a": 0.1, "b": 0.7, "c": 0.4})


class Boom(Exception):
    pass


def failing_on(*routes: str, exc: BaseException | None = None):
    calls: list[str] = []

    def call(d: Decision) -> str:
        calls.append(d.route)
        if d.route in routes:
            raise exc or Boom(f"{d.model} failed")
        return f"answer from {d.model}"

    return call, calls


@pytest.mark.parametrize("value, w2s, s2w", [
    ("auto", True, False), ("weak_to_strong", True, False), ("strong_to_weak", False, True),
    ("both", True, True), ("next_best", True, True), ("none", False, False), (True, True, False),
    (False, False, False), (None, False, False),
])
def test_one_policy_for_pairs_directions(value, w2s, s2w):
    p = FallbackPolicy.coerce(value)
    assert (p.target(WEAK, Boom()) is not None, p.target(STRONG, Boom()) is not None) == (w2s, s2w)
    assert FallbackPolicy.coerce(p) is p


def test_one_policy_for_pools_goes_down_the_ranking():
    p = FallbackPolicy()                                     # "auto" is next-best for a pool
    first = p.target(POOL, Boom())
    assert (first.route, first.tried, first.fallback_from) == ("c", ("b",), "b")
    second = p.target(first, Boom())
    assert (second.route, second.tried) == ("a", ("b", "c"))
    assert p.target(second, Boom()) is None                  # every model tried
    assert FallbackPolicy(max_fallbacks=1).target(first, Boom()) is None
    assert FallbackPolicy.coerce("none").target(POOL, Boom()) is None
    with pytest.raises(ValueError, match="direction of a strong/weak pair"):
        FallbackPolicy.coerce("weak_to_strong").check_for("utility")
    with pytest.raises(ValueError, match="max_fallbacks"):
        FallbackPolicy(max_fallbacks=-1)


def test_bad_policies_are_clear_errors():
    with pytest.raises(ValueError, match="fallback must be one of"):
        FallbackPolicy.coerce("retry")
    with pytest.raises(ValueError, match="fallback must be one of"):
        FallbackPolicy.coerce(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Exception subclasses"):
        FallbackPolicy(exceptions=(KeyboardInterrupt,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Exception subclasses"):
        FallbackPolicy(exceptions=("TimeoutError",))  # type: ignore[arg-type]
    assert FallbackPolicy(exceptions=TimeoutError).exceptions == (TimeoutError,)  # type: ignore[arg-type]


def test_the_fallback_decision_records_what_failed():
    fb = FallbackPolicy().target(WEAK, TimeoutError("read timed out"))
    assert (fb.route, fb.model, fb.win_rate, fb.threshold) == ("strong", "big", 0.2, 0.5)
    assert (fb.fallback_from, fb.fallback_error_type, fb.fallback_error_message) == (
        "weak", "TimeoutError", "read timed out")
    md = fb.as_metadata()
    assert md["routellm_fallback_from"] == "weak" and md["routellm_route"] == "strong"
    assert "routellm_fallback_from" not in WEAK.as_metadata()
    assert FallbackPolicy().target(fb, Boom()) is None                  # never a second fallback
    assert FallbackPolicy().target(STRONG, Boom()) is None              # strong -> weak is off
    assert FallbackPolicy().target(WEAK, KeyboardInterrupt()) is None   # never on interrupts
    assert FallbackPolicy(exceptions=(TimeoutError,)).target(WEAK, Boom()) is None


def test_call_with_fallback_and_the_error_hook():
    seen: list[tuple[str, str, str | None]] = []
    hook = lambda d, e, fb: seen.append((d.route, type(e).__name__, fb and fb.route))  # noqa: E731
    call, calls = failing_on("weak")
    out, used = call_with_fallback(WEAK, call, FallbackPolicy(), hook)
    assert out == "answer from big" and used.fallback_from == "weak" and calls == ["weak", "strong"]
    assert seen == [("weak", "Boom", "strong")]

    seen.clear()
    call, calls = failing_on("weak", "strong")
    with pytest.raises(Boom, match="small failed") as info:
        call_with_fallback(WEAK, call, FallbackPolicy(), hook)
    assert info.value.__notes__ == ["routellm: fell back to the strong model 'big', which failed too: Boom: big failed"]
    assert seen == [("weak", "Boom", "strong"), ("strong", "Boom", None)]

    call, calls = failing_on("weak", exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        call_with_fallback(WEAK, call, FallbackPolicy())
    assert calls == ["weak"]


def test_async_call_with_fallback_and_cancellation():
    async def call(d: Decision) -> str:
        if d.route == "weak":
            raise Boom("down")
        return d.model

    out, used = asyncio.run(acall_with_fallback(WEAK, call, FallbackPolicy()))
    assert (out, used.route) == ("big", "strong")

    async def cancelled(d: Decision) -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(acall_with_fallback(WEAK, cancelled, FallbackPolicy()))


def test_streams_fall_back_before_the_first_chunk_only():
    def gen(d: Decision, fail_at: int | None):
        for i, piece in enumerate(["a", "b", "c"]):
            if fail_at == i and d.route == "weak":
                raise Boom("cut")
            yield f"{d.model}:{piece}"

    pairs = list(stream_with_fallback(WEAK, lambda d: gen(d, 0), FallbackPolicy()))
    assert [c for _, c in pairs] == ["big:a", "big:b", "big:c"] and pairs[0][0].fallback_from == "weak"
    got: list[str] = []
    with pytest.raises(Boom):
        for _, c in stream_with_fallback(WEAK, lambda d: gen(d, 1), FallbackPolicy()):
            got.append(c)
    assert got == ["small:a"]
    assert list(stream_with_fallback(WEAK, lambda d: iter(()), FallbackPolicy())) == []

    closed: list[bool] = []

    def tracked(d: Decision):
        try:
            yield from gen(d, None)
        finally:
            closed.append(True)

    it = stream_with_fallback(WEAK, tracked, FallbackPolicy())
    next(it)
    it.close()                     # the caller stops early: the model's stream is closed too
    assert closed == [True]


def test_async_streams_open_lazily_or_through_an_awaitable():
    async def agen(d: Decision):
        if d.route == "weak":
            raise Boom("no")
        for piece in "xy":
            yield f"{d.model}:{piece}"

    async def opener(d: Decision):  # LlamaIndex style: await the call, then iterate
        return agen(d)

    async def collect(open_stream: Any) -> list[str]:
        return [c async for _, c in astream_with_fallback(WEAK, open_stream, FallbackPolicy())]

    assert asyncio.run(collect(agen)) == ["big:x", "big:y"]
    assert asyncio.run(collect(opener)) == ["big:x", "big:y"]


def test_the_ledger_counts_failed_attempts_apart_and_charges_them_nothing():
    prices = PriceSource({"big": (10.0, 30.0), "small": (0.5, 1.5)})
    ledger = CostLedger()
    ledger.add(failed_attempt_record(route="weak", model="small", strong_model="big", win_rate=0.2,
                                     threshold=0.5, router="r", error=TimeoutError()))
    ledger.add(cost_record(route="strong", model="big", strong_model="big", win_rate=0.2, threshold=0.5,
                           router="r", input_tokens=100, output_tokens=10, prices=prices,
                           fallback_from="weak"))
    ledger.add(cost_record(route="weak", model="small", strong_model="big", win_rate=0.1, threshold=0.5,
                           router="r", input_tokens=100, output_tokens=10, prices=prices))
    t = ledger.totals()
    assert (t.calls, t.failed_calls, t.fallbacks, t.strong_calls) == (2, 1, 1, 1)
    assert t.strong_share == 0.5
    assert t.total_cost == sum(r.cost for r in ledger.records) == Decimal("0.001365")
    assert t.by_model["small"].calls == 1 and t.by_model["small"].failed_calls == 1
    assert t.as_dict()["failed_calls"] == 1 and t.as_dict()["fallbacks"] == 1
