"""Model fallbacks in ChatRouteLLM and RouterRunnable: which failures fall back, what is recorded
in the metadata, and what the cost ledger charges. The router is the real embedded one; the
chat models behind it are fakes that fail on demand (tests/langchain/fake_models.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda

from langchain_routellm import ChatRouteLLM, RouterRunnable, get_routing_cost_callback
from routellm_core.routing import FallbackPolicy, shared_router
from tests.langchain.fake_models import FakeModelError, FlakyChatModel

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}
Q = "Write a haiku about tea."


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


def make(router: Any, *, weak_fails: int = 0, strong_fails: int = 0, route: str = "weak",
         fail_after_chunks: int | None = None, **kw: Any) -> ChatRouteLLM:
    """Threshold 1.0 sends every call weak, 0.0 every call strong."""
    return ChatRouteLLM(
        strong=FlakyChatModel(model_name="fake-strong", fail_percent=strong_fails,
                              fail_after_chunks=fail_after_chunks),
        weak=FlakyChatModel(model_name="fake-weak", fail_percent=weak_fails,
                            fail_after_chunks=fail_after_chunks),
        router=router, threshold=1.0 if route == "weak" else 0.0, **kw)


def check_ledger(cb: Any, *, calls: int, failed: int, fallbacks: int, charged: int = 0) -> None:
    """``charged``: failed attempts that streamed output before they broke (charged for it)."""
    t = cb.totals
    assert (t.calls, t.failed_calls, t.fallbacks) == (calls, failed, fallbacks)
    assert t.total_cost == sum(r.cost for r in cb.records)
    zero = [r for r in cb.records if r.failed and r.cost == Decimal(0) and r.input_tokens == 0]
    assert len(zero) == failed - charged


def test_a_failing_weak_model_falls_back_to_strong_and_both_calls_are_recorded(router):
    llm = make(router, weak_fails=100)
    with get_routing_cost_callback(PRICES) as cb:
        msg = llm.invoke(Q)
    md = msg.response_metadata
    assert msg.content == f"[fake-strong] {Q}"
    assert md["routellm_route"] == "strong" and md["routellm_model"] == "fake-strong"
    assert md["routellm_fallback_from"] == "weak" and md["routellm_fallback_error_type"] == "FakeModelError"
    assert "overloaded" in md["routellm_fallback_error_message"]
    assert md["routellm_win_rate"] == pytest.approx(float(router.win_rate([Q])[0]))  # the router's verdict stays
    assert llm.weak.failures == 1 and llm.strong.calls == 1
    failed, answered = cb.records
    assert (failed.model, failed.failed, failed.error_type) == ("fake-weak", True, "FakeModelError")
    assert (answered.model, answered.failed, answered.fallback_from) == ("fake-strong", False, "weak")
    assert answered.cost > 0
    check_ledger(cb, calls=1, failed=1, fallbacks=1)
    assert cb.totals.strong_share == 1.0 and cb.totals.by_model["fake-weak"].failed_calls == 1


def test_no_fallback_metadata_when_nothing_failed(router):
    msg = make(router).invoke(Q)
    assert msg.response_metadata["routellm_route"] == "weak"
    assert not any(k.startswith("routellm_fallback") for k in msg.response_metadata)


def test_strong_failures_raise_by_default_and_fall_back_to_weak_when_asked(router):
    with get_routing_cost_callback(PRICES) as cb, pytest.raises(FakeModelError, match="overloaded"):
        make(router, strong_fails=100, route="strong").invoke(Q)
    check_ledger(cb, calls=0, failed=1, fallbacks=0)
    for mode in ("both", "strong_to_weak", FallbackPolicy(mode="strong_to_weak")):
        msg = make(router, strong_fails=100, route="strong", fallback=mode).invoke(Q)
        assert msg.response_metadata["routellm_route"] == "weak"
        assert msg.response_metadata["routellm_fallback_from"] == "strong"


@pytest.mark.parametrize("off", ["none", False, None, "strong_to_weak"])
def test_fallback_can_be_turned_off(router, off):
    llm = make(router, weak_fails=100, fallback=off)
    with pytest.raises(FakeModelError):
        llm.invoke(Q)
    assert llm.strong.calls == 0


def test_only_the_configured_exceptions_fall_back(router):
    only_timeouts = FallbackPolicy(exceptions=(TimeoutError,))
    llm = make(router, weak_fails=100, fallback=only_timeouts)
    with pytest.raises(FakeModelError):
        llm.invoke(Q)
    assert llm.strong.calls == 0
    llm = make(router, weak_fails=100, fallback=FallbackPolicy(exceptions=(FakeModelError,)))
    assert llm.invoke(Q).response_metadata["routellm_route"] == "strong"


def test_an_interrupt_is_never_absorbed(router):
    class Interrupting(FlakyChatModel):
        def _generate(self, *a: Any, **k: Any) -> Any:
            raise KeyboardInterrupt

    llm = ChatRouteLLM(strong=FlakyChatModel(model_name="fake-strong"),
                       weak=Interrupting(model_name="fake-weak"), router=router, threshold=1.0)
    with pytest.raises(KeyboardInterrupt):
        llm.invoke(Q)
    assert llm.strong.calls == 0


def test_when_both_models_fail_the_first_error_is_raised_naming_the_second(router):
    llm = make(router, weak_fails=100, strong_fails=100)
    with get_routing_cost_callback(PRICES) as cb, pytest.raises(FakeModelError) as info:
        llm.invoke(Q)
    assert "fake-weak is overloaded" in str(info.value)
    assert any("fell back to the strong model 'fake-strong'" in n for n in info.value.__notes__)
    check_ledger(cb, calls=0, failed=2, fallbacks=0)
    assert [r.model for r in cb.records] == ["fake-weak", "fake-strong"]


def test_bad_fallback_settings_are_clear_errors(router):
    with pytest.raises(ValueError, match="fallback must be one of"):
        make(router, fallback="always")
    with pytest.raises(TypeError, match="Exception subclasses"):
        FallbackPolicy(exceptions=(BaseException,))


def test_async_invoke_falls_back(router):
    llm = make(router, weak_fails=100)
    with get_routing_cost_callback(PRICES) as cb:
        msg = asyncio.run(llm.ainvoke(Q))
    assert msg.response_metadata["routellm_fallback_from"] == "weak"
    check_ledger(cb, calls=1, failed=1, fallbacks=1)


def test_a_stream_falls_back_before_its_first_chunk(router):
    llm = make(router, weak_fails=100)
    with get_routing_cost_callback(PRICES) as cb:
        chunks = list(llm.stream(Q))
    assert "".join(c.content for c in chunks) == f"[fake-strong] {Q}"
    assert chunks[0].response_metadata["routellm_fallback_from"] == "weak"
    check_ledger(cb, calls=1, failed=1, fallbacks=1)

    lazy = make(router, weak_fails=100, fail_after_chunks=0)  # fails on the first read, not at open
    assert "".join(c.content for c in lazy.stream(Q)).startswith("[fake-strong]")

    async def astream() -> list[Any]:
        return [c async for c in make(router, weak_fails=100).astream(Q)]

    achunks = asyncio.run(astream())
    assert achunks[0].response_metadata["routellm_route"] == "strong"
    assert "".join(c.content for c in achunks) == f"[fake-strong] {Q}"


def test_a_stream_that_breaks_after_its_first_chunk_raises(router):
    llm = make(router, weak_fails=100, fail_after_chunks=2)
    seen: list[str] = []
    with get_routing_cost_callback(PRICES) as cb, pytest.raises(FakeModelError, match="mid-stream"):
        for c in llm.stream(Q):
            seen.append(c.content)
    assert len(seen) == 2 and llm.strong.calls == 0   # the caller saw text: no second answer
    check_ledger(cb, calls=0, failed=1, fallbacks=0, charged=1)
    (broken,) = cb.records  # the provider billed the prompt and the two chunks: charged for them
    assert broken.failed and broken.error_type == "FakeModelError" and broken.model == "fake-weak"
    assert broken.input_tokens > 0 and broken.output_tokens > 0 and broken.tokens_estimated
    assert 0 < broken.cost == broken.strong_cost

    async def astream() -> None:
        async for _ in make(router, weak_fails=100, fail_after_chunks=1).astream(Q):
            pass

    with get_routing_cost_callback(PRICES) as cb, pytest.raises(FakeModelError, match="mid-stream"):
        asyncio.run(astream())
    check_ledger(cb, calls=0, failed=1, fallbacks=0, charged=1)
    assert cb.records[0].output_tokens > 0


def test_batch_falls_back_per_item(router):
    from tests.langchain.fake_models import fails

    texts = [f"short question number {i}" for i in range(12)]
    failing = [fails("fake-weak", t, 40) for t in texts]
    assert 0 < sum(failing) < len(texts)
    llm = make(router, weak_fails=40)
    with get_routing_cost_callback(PRICES) as cb:
        outs = llm.batch(texts)
    for out, bad in zip(outs, failing):
        assert out.response_metadata["routellm_route"] == ("strong" if bad else "weak")
        assert out.response_metadata.get("routellm_fallback_from") == ("weak" if bad else None)
    check_ledger(cb, calls=12, failed=sum(failing), fallbacks=sum(failing))

    outs = asyncio.run(llm.abatch(texts))
    assert [o.response_metadata["routellm_route"] for o in outs] == ["strong" if b else "weak" for b in failing]

    both = make(router, weak_fails=40, strong_fails=100)
    got = both.batch(texts, return_exceptions=True)
    assert [isinstance(g, FakeModelError) for g in got] == failing
    assert all(g.__notes__ for g in got if isinstance(g, Exception))
    with pytest.raises(FakeModelError):
        both.batch(texts)
    got = asyncio.run(both.abatch(texts, return_exceptions=True))
    assert [isinstance(g, FakeModelError) for g in got] == failing


def test_generate_path_falls_back(router):
    from langchain_core.messages import HumanMessage

    result = make(router, weak_fails=100).generate([[HumanMessage(Q)]])
    assert result.generations[0][0].message.response_metadata["routellm_fallback_from"] == "weak"


def test_router_runnable_falls_back(router):
    def broken(_: Any) -> str:
        raise FakeModelError("the cheap chain is down")

    rr = RouterRunnable(strong=RunnableLambda(lambda x: f"strong: {x['question']}"),
                        weak=RunnableLambda(broken), router=router, threshold=1.0)
    assert rr.invoke({"question": Q}) == f"strong: {Q}"
    assert asyncio.run(rr.ainvoke({"question": Q})) == f"strong: {Q}"
    assert list(rr.stream({"question": Q})) == [f"strong: {Q}"]
    assert rr.batch([{"question": Q}]) == [f"strong: {Q}"]
    with pytest.raises(FakeModelError, match="cheap chain"):
        RouterRunnable(strong=RunnableLambda(lambda x: "s"), weak=RunnableLambda(broken), router=router,
                       threshold=1.0, fallback="none").invoke({"question": Q})


def test_the_readme_fallback_example_runs_as_written():
    import contextlib
    import io

    from tests.readme_snippets import section_code

    (block,) = [b for b in section_code(doc="docs/failure-policy.md") if "fallback=" in b]
    namespace: dict[str, Any] = {"big": FlakyChatModel(model_name="fake-strong"),
                                 "small": FlakyChatModel(model_name="fake-weak", fail_percent=100)}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README:fallback", "exec"), namespace)  # noqa: S102 - the README, as written
    route, fallback_from, error = out.getvalue().split()
    assert route == "strong"
    assert (fallback_from, error) in (("weak", "FakeModelError"), ("None", "None"))


def test_a_stream_the_caller_stops_reading_is_an_answered_call_not_a_failure(router):
    llm = make(router, fallback="none")
    with get_routing_cost_callback(PRICES) as cb:
        it = llm.stream(Q)
        first = next(it)
        it.close()
    assert first.response_metadata["routellm_route"] == "weak"
    (record,) = cb.records
    assert not record.failed and record.model == "fake-weak" and record.input_tokens > 0
    check_ledger(cb, calls=1, failed=0, fallbacks=0)
