"""Routing keywords per call (``routellm_threshold=`` ...) on every call form: they route the call,
win over ``configurable`` and the model's own setting, and never reach the chosen model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from langchain_routellm import ChatRouteLLM, RouterRunnable
from routellm_core.routing import shared_router
from tests.langchain.fake_models import FakeToolChatModel

Q = "Write a haiku about tea."
BIG, MID, SMALL = "llama-3.1-nemotron-51b-instruct", "llama-3.1-8b-instruct", "gemma-2-9b-it"


class KwargsRecorder(FakeToolChatModel):
    """Remembers the keyword arguments each call reached the model with."""

    seen: list[dict[str, Any]] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(dict(kwargs))
        return super()._generate(messages, stop, run_manager, **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(dict(kwargs))
        yield from super()._stream(messages, stop, run_manager, **kwargs)


def pair(**kw: Any) -> ChatRouteLLM:
    kw.setdefault("threshold", 0.5)
    return ChatRouteLLM(strong=KwargsRecorder(model_name="fake-strong", seen=[]),
                        weak=KwargsRecorder(model_name="fake-weak", seen=[]),
                        router=shared_router("default"), **kw)


def routes(outs: list[Any]) -> list[str]:
    return [o.response_metadata["routellm_route"] for o in outs]


def forwarded(llm: ChatRouteLLM) -> list[dict[str, Any]]:
    return llm.strong.seen + llm.weak.seen  # type: ignore[union-attr]


def test_every_call_form_routes_by_the_call_keyword_and_never_forwards_it():
    llm = pair(threshold=0.5)
    for t, route in ((0.0, "strong"), (1.0, "weak")):
        assert routes([llm.invoke(Q, routellm_threshold=t)]) == [route]
        assert routes([list(llm.stream(Q, routellm_threshold=t))[0]]) == [route]
        assert routes(llm.batch([Q, Q], routellm_threshold=t)) == [route, route]
        assert routes([asyncio.run(llm.ainvoke(Q, routellm_threshold=t))]) == [route]
        assert routes(asyncio.run(llm.abatch([Q, Q], routellm_threshold=t))) == [route, route]

        async def first_chunk(t: float = t) -> Any:
            return [c async for c in llm.astream(Q, routellm_threshold=t)][0]

        assert routes([asyncio.run(first_chunk())]) == [route]
    assert routes([llm.invoke(Q, routellm_strong_fraction=1.0)]) == ["strong"]
    assert routes([llm.invoke(Q, routellm_strong_fraction=0.0)]) == ["weak"]
    seen = forwarded(llm)
    assert len(seen) >= 14 and not any(k.startswith("routellm_") for kw in seen for k in kw)


def test_the_call_keyword_wins_over_configurable_which_wins_over_the_model():
    llm = pair(threshold=1.0)                           # the model's own: weak
    strong_conf = {"configurable": {"routellm_threshold": 0.0}}
    assert routes([llm.invoke(Q)]) == ["weak"]
    assert routes([llm.invoke(Q, config=strong_conf)]) == ["strong"]
    assert routes([llm.invoke(Q, config=strong_conf, routellm_threshold=1.0)]) == ["weak"]
    # the call's strong_fraction replaces configurable's threshold (no "both given" error)
    assert routes([llm.invoke(Q, config=strong_conf, routellm_strong_fraction=0.0)]) == ["weak"]
    assert llm.route(Q, strong_conf, routellm_threshold=1.0).route == "weak"
    # bound keywords are call keywords too
    assert routes([llm.bind(routellm_threshold=0.0).invoke(Q)]) == ["strong"]


def test_bad_call_keywords_are_clear_errors():
    llm = pair()
    with pytest.raises(ValueError, match="threshold must be in"):
        llm.invoke(Q, routellm_threshold=1.5)
    with pytest.raises(ValueError, match="not both"):
        llm.invoke(Q, routellm_threshold=0.5, routellm_strong_fraction=0.5)
    with pytest.raises(ValueError, match="lambdas apply to a pool"):
        llm.invoke(Q, routellm_lambdas={"cost": 1.0})
    with pytest.raises(TypeError, match="only routing keywords"):
        llm.route(Q, temperature=0)
    assert forwarded(llm) == []                         # nothing was called


def test_a_pool_takes_lambdas_per_call_and_ignores_configurable_keys_of_a_pair():
    pool = ChatRouteLLM(models={n: FakeToolChatModel(model_name=n) for n in (BIG, MID, SMALL)},
                        lambdas={"cost": 0.1})
    assert pool.invoke("hello there", routellm_lambdas={"cost": 100.0}).content.startswith(f"[{SMALL}]")
    assert pool.invoke("hello there", routellm_lambdas={"cost": -100.0}).content.startswith(f"[{BIG}]")
    # a chain's threshold is for the pairs in it; a pool goes on with its own lambdas
    out = pool.invoke("hello there", config={"configurable": {"routellm_threshold": 0.3}})
    assert out.response_metadata["routellm_lambdas"] == {"cost": 0.1}
    with pytest.raises(ValueError, match="threshold applies to a strong/weak pair"):
        pool.invoke("hello there", routellm_threshold=0.3)


def test_router_runnable_takes_the_keywords_and_does_not_pass_them_on():
    strong, weak = KwargsRecorder(model_name="fake-strong", seen=[]), KwargsRecorder(model_name="fake-weak", seen=[])
    rr = RouterRunnable(strong=strong, weak=weak, router=shared_router("default"), threshold=0.5)

    def text(out: Any) -> str:
        return out.content.split("]")[0] + "]"

    assert text(rr.invoke("q", routellm_threshold=0.0)) == "[fake-strong]"
    assert text(rr.invoke("q", routellm_threshold=1.0)) == "[fake-weak]"
    assert [text(o) for o in rr.batch(["a"], routellm_threshold=1.0)] == ["[fake-weak]"]
    assert text(list(rr.stream("s", routellm_threshold=0.0))[0]) == "[fake-strong]"
    assert text(asyncio.run(rr.ainvoke("c", routellm_threshold=1.0))) == "[fake-weak]"
    assert [text(o) for o in asyncio.run(rr.abatch(["d"], routellm_threshold=0.0))] == ["[fake-strong]"]
    assert rr.route("q", routellm_threshold=0.0).route == "strong"
    seen = strong.seen + weak.seen
    assert len(seen) == 6 and not any(k.startswith("routellm_") for kw in seen for k in kw)


def test_the_generate_path_takes_the_keywords_too():
    from langchain_core.messages import HumanMessage

    llm = pair(threshold=0.5)
    result = llm.generate([[HumanMessage(Q)]], routellm_threshold=0.0)
    assert result.generations[0][0].message.response_metadata["routellm_route"] == "strong"
    assert not any(k.startswith("routellm_") for kw in forwarded(llm) for k in kw)
