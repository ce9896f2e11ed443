"""RouteLLM's settings in the places the LangChain adapter takes them (constructor arguments,
router forms, aliases, prices on the cost handler), routing keywords that never reach a model,
errors that name the model at fault, and the printed cost summary. The router is the real
embedded one; the LLMs behind it are fakes (tests/llamaindex/fakes.py)."""

from __future__ import annotations

import asyncio
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, LLMMetadata, MessageRole
from llama_index.core.bridge.pydantic import BaseModel
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RouteLLM, RoutingCostEventHandler
from routellm_core.checkpoints import DEFAULT_DIR, NWAY_DEFAULT_DIR
from routellm_core.costs import PriceSource
from routellm_core.routing import shared_router
from tests.llamaindex.fakes import FakeLLM, FakeModelError, FlakyLLM

PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)}
Q = "Write a haiku about tea."
BIG, MID, SMALL = "llama-3.1-nemotron-51b-instruct", "llama-3.1-8b-instruct", "gemma-2-9b-it"
POOL_PRICES = {BIG: (0.9, 0.9), MID: (0.2, 0.2), SMALL: (0.1, 0.1)}


def pair(**kw: Any) -> RouteLLM:
    kw.setdefault("threshold", 1.0)  # every call weak unless the call says otherwise
    kw.setdefault("prices", PRICES)
    strong = kw.pop("strong", None) or FakeLLM(model="fake-strong")
    weak = kw.pop("weak", None) or FakeLLM(model="fake-weak")
    return RouteLLM(strong=strong, weak=weak, **kw)


def pool(**kw: Any) -> RouteLLM:
    kw.setdefault("lambdas", {"cost": 100.0})  # the cheapest model unless the call says otherwise
    kw.setdefault("prices", POOL_PRICES)
    return RouteLLM(models={m: FakeLLM(model=m) for m in (BIG, MID, SMALL)}, **kw)


def user(text: str = Q) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOL = FunctionTool.from_defaults(add)


@pytest.fixture
def costs():
    h = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(h)
    yield h
    h.detach()


# --------------------------------------------------------------------------- constructor arguments
@pytest.mark.parametrize("kw, match", [
    ({"failure_polcy": "weak"}, "unexpected argument 'failure_polcy'; did you mean 'failure_policy'"),
    ({"fallbak": "none"}, "unexpected argument 'fallbak'; did you mean 'fallback'"),
    ({"treshold": 0.3}, "did you mean 'threshold'"),
    ({"routellm_threshold": 0.3}, "'routellm_threshold': it is a per-call keyword .* threshold="),
    ({"routellm_strong_fraction": 0.3}, "per-call keyword .* strong_fraction="),
    ({"config": {}}, "LangChain's per-call config"),
    ({"banana": 1, "kiwi": 2}, r"'banana' \(and 1 more: \['kiwi'\]\); its settings are .*failure_policy"),
])
def test_unknown_or_misplaced_arguments_are_named(kw, match):
    with pytest.raises(TypeError, match=match):
        pair(**kw)


def test_a_pool_names_unknown_arguments_too_and_good_ones_still_work():
    with pytest.raises(TypeError, match="did you mean 'lambdas'"):
        RouteLLM(models={BIG: FakeLLM(model=BIG), SMALL: FakeLLM(model=SMALL)}, lambda_={"cost": 1.0})
    with pytest.raises(TypeError, match="'routellm_lambdas': it is a per-call keyword .* lambdas="):
        RouteLLM(models={BIG: FakeLLM(model=BIG), SMALL: FakeLLM(model=SMALL)}, routellm_lambdas={"cost": 1.0})
    llm = pair(failure_policy="weak", fallback="none", system_prompt="Be brief.")
    assert llm.with_routing(threshold=0.0).complete(Q).additional_kwargs["routellm_route"] == "strong"
    with pytest.raises(ValueError, match="no field"):  # pydantic: no attribute of that name either
        llm.treshold = 0.3


# --------------------------------------------------------------------------- router forms
def test_router_as_default_a_checkpoint_path_or_an_object_routes_the_same():
    router = shared_router("default")
    lazy = pair(router="default", threshold=0.5)
    assert lazy.pool.router_name == "default"  # not loaded at construction: on first use
    expected = float(router.win_rate([Q])[0])
    for spec in ("default", None, router, str(DEFAULT_DIR), Path(DEFAULT_DIR)):
        d = pair(router=spec, threshold=0.5).route(user())
        assert d.win_rate == pytest.approx(expected) and d.router == router.name and not d.router_failed
    nway = pool(router=str(NWAY_DEFAULT_DIR)).route(prompt=Q)
    assert nway.model == pool().route(prompt=Q).model and nway.rule == "utility"


@pytest.mark.parametrize("spec, error, match", [
    ("defualt", ValueError, "'defualt' is neither 'default'"),
    ("org/name", ValueError, "no checkpoint directory 'org/name'"),
    ("hf://org/name", ValueError, "could not fetch router 'org/name'"),
    ("  ", ValueError, "empty string"),
    (42, TypeError, "router must be a loaded router, 'default', a checkpoint path or a Hub id"),
    (str(NWAY_DEFAULT_DIR), TypeError, "needs a binary router"),
])
def test_a_bad_router_is_a_clear_error(spec, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unpinned-revision warning of a Hub id
        with pytest.raises(error, match=match):
            pair(router=spec)


# --------------------------------------------------------------------------- aliases
def test_aliases_route_the_pair_they_name():
    router = shared_router("default")
    named = {"gpt-4o": "gpt-4-1106-preview", "gpt-4o-mini": "gemma-2-9b-it"}
    llm = pair(strong=FakeLLM(model="gpt-4o"), weak=FakeLLM(model="gpt-4o-mini"), router=router,
               aliases=named, threshold=0.5)
    d = llm.route(user())
    assert d.models == {"strong": "gpt-4o", "weak": "gpt-4o-mini"}
    assert d.win_rate == pytest.approx(float(router.win_rate([Q], strong_model="gpt-4-1106-preview",
                                                               weak_model="gemma-2-9b-it")[0]))
    assert d.win_rate != pytest.approx(float(router.win_rate([Q])[0]))  # not the router's own pair
    with pytest.raises(ValueError, match=r"aliases for \['gpt4o'\], which are not among the routed models"):
        pair(strong=FakeLLM(model="gpt-4o"), weak=FakeLLM(model="gpt-4o-mini"), aliases={"gpt4o": "x"})
    with pytest.raises(ValueError, match=r"does not know 'gpt-4o' \(aliased to 'no-such-model'\), 'gpt-4o-mini'"):
        pair(strong=FakeLLM(model="gpt-4o"), weak=FakeLLM(model="gpt-4o-mini"), router=router,
             aliases={"gpt-4o": "no-such-model"})


def test_aliases_let_a_pool_use_its_own_names():
    mine = {"my-big": BIG, "my-mid": MID, "my-small": SMALL}
    llm = RouteLLM(models={k: FakeLLM(model=k) for k in mine}, aliases=mine, lambdas={"cost": 0.05},
                   prices={k: POOL_PRICES[v] for k, v in mine.items()})
    d = llm.route(prompt="Write a Python function that merges two sorted lists.")
    ref = pool(lambdas={"cost": 0.05}).route(prompt="Write a Python function that merges two sorted lists.")
    assert d.scores == {k: pytest.approx(ref.scores[v]) for k, v in mine.items()}
    assert d.model == {v: k for k, v in mine.items()}[ref.model]
    resp = llm.complete("Write a Python function that merges two sorted lists.", routellm_lambdas={"cost": 0.05})
    assert resp.additional_kwargs["routellm_model"] == d.model and resp.text.startswith(f"[{d.model}]")
    with pytest.raises(ValueError, match="model 'gpt-9' is unknown"):
        RouteLLM(models={"a": FakeLLM(model="a"), "b": FakeLLM(model="b")}, aliases={"a": "gpt-9", "b": SMALL})


# --------------------------------------------------------------------------- keywords never forwarded
class Sum(BaseModel):
    a: int
    b: int


def _no_routing_keywords(*llms: FakeLLM) -> None:
    for llm in llms:
        for kwargs in llm.received:
            assert not [k for k in kwargs if k.startswith("routellm_")], kwargs


def test_routing_keywords_reach_no_model_in_any_call_form():
    strong, weak = FakeLLM(model="fake-strong"), FakeLLM(model="fake-weak")
    llm = pair(strong=strong, weak=weak)
    go = {"routellm_threshold": 0.0}  # this call: strong (the model's own threshold sends all weak)
    prompt = PromptTemplate("Answer: {query_str}")

    async def run_async() -> list[Any]:
        return [
            await llm.achat(user(), **go), await llm.acomplete(Q, **go),
            [c async for c in await llm.astream_chat(user(), **go)][-1],
            [c async for c in await llm.astream_complete(Q, **go)][-1],
            await llm.achat_with_tools([TOOL], user_msg="What is 3 plus 4?", **go),
            [c async for c in await llm.astream_chat_with_tools([TOOL], user_msg="What is 3 plus 4?", **go)][-1],
            await llm.apredict(prompt, query_str=Q, **go),
            "".join([t async for t in await llm.astream(prompt, query_str=Q, **go)]),
            await llm.astructured_predict(Sum, PromptTemplate("Add {query_str}"), query_str="3 and 4", **go),
        ]

    answers = [
        llm.chat(user(), **go), llm.complete(Q, **go),
        list(llm.stream_chat(user(), **go))[-1], list(llm.stream_complete(Q, **go))[-1],
        llm.chat_with_tools([TOOL], user_msg="What is 3 plus 4?", **go),
        list(llm.stream_chat_with_tools([TOOL], user_msg="What is 3 plus 4?", **go))[-1],
        llm.predict(prompt, query_str=Q, **go), "".join(llm.stream(prompt, query_str=Q, **go)),
        llm.chat(**llm._prepare_chat_with_tools([TOOL], user_msg="What is 3 plus 4?", **go)),
        llm.structured_predict(Sum, PromptTemplate("Add {query_str}"), query_str="3 and 4", **go),
        llm.structured_predict(Sum, PromptTemplate("Add {query_str}"), query_str="3 and 4", llm_kwargs=go),
        *asyncio.run(run_async()),
    ]
    assert str(llm.predict_and_call([TOOL], user_msg="What is 3 plus 4?", **go)) == "7"
    assert weak.received == []                          # every call took the per-call setting
    assert len(strong.received) == len(answers) + 1
    _no_routing_keywords(strong, weak)
    for a in answers:
        if isinstance(a, str):
            assert a.startswith("[fake-strong]")
        elif isinstance(a, Sum):
            assert (a.a, a.b) == (3, 4)
        else:
            assert a.additional_kwargs["routellm_route"] == "strong"


def test_a_pools_routing_keywords_reach_no_model_either():
    llm = pool()
    go = {"routellm_lambdas": {"cost": -100.0}}  # this call: the biggest model
    llm.chat(user(), **go)
    llm.complete(Q, **go)
    list(llm.stream_chat(user(), **go))
    llm.chat_with_tools([TOOL], user_msg="What is 3 plus 4?", **go)
    llm.predict(PromptTemplate("{query_str}"), query_str=Q, **go)
    asyncio.run(llm.acomplete(Q, **go))
    children = llm.models
    assert len(children[BIG].received) == 6 and not children[SMALL].received and not children[MID].received
    _no_routing_keywords(*children.values())


# --------------------------------------------------------------------------- errors name the model
def _notes(exc: BaseException) -> str:
    return "\n".join(getattr(exc, "__notes__", ()))


@pytest.mark.parametrize("form", ["chat", "complete", "stream_chat", "achat", "acomplete", "chat_with_tools"])
def test_a_failing_model_is_named_on_its_error(form):
    weak = FlakyLLM(model="fake-weak", fail_percent=100)
    llm = pair(weak=weak, fallback="none")
    calls = {
        "chat": lambda: llm.chat(user()), "complete": lambda: llm.complete(Q),
        "stream_chat": lambda: list(llm.stream_chat(user())), "achat": lambda: asyncio.run(llm.achat(user())),
        "acomplete": lambda: asyncio.run(llm.acomplete(Q)),
        "chat_with_tools": lambda: llm.chat_with_tools([TOOL], user_msg="What is 3 plus 4?"),
    }
    with pytest.raises(FakeModelError) as info:  # the model's own type: callers' except clauses still match
        calls[form]()
    assert f"raised by the weak model 'fake-weak' (RouteLLM.{form})" in _notes(info.value)


def test_after_a_failed_fallback_both_models_are_named():
    llm = pair(weak=FlakyLLM(model="fake-weak", fail_percent=100),
               strong=FlakyLLM(model="fake-strong", fail_percent=100))
    with pytest.raises(FakeModelError, match="fake-weak") as info:
        llm.chat(user())
    notes = _notes(info.value)
    assert "raised by the weak model 'fake-weak'" in notes and "'fake-strong', which failed too" in notes
    many = RouteLLM(models={m: FlakyLLM(model=m, fail_percent=100 if m == SMALL else 0) for m in (BIG, SMALL)},
                    lambdas={"cost": 100.0}, fallback="none")
    with pytest.raises(FakeModelError) as info:
        many.complete(Q)
    assert f"raised by the model '{SMALL}' (RouteLLM.complete)" in _notes(info.value)


class NoMetadata(FakeLLM):
    """An LLM whose metadata needs something it lacks (as OpenAI's does for an unknown model)."""

    @property
    def metadata(self) -> LLMMetadata:
        raise ValueError(f"Unknown model {self.model!r}: give context_window")


def test_a_model_without_metadata_is_named():
    llm = pair(weak=NoMetadata(model="my-finetune"))
    with pytest.raises(ValueError, match="the weak model 'my-finetune' \\(NoMetadata\\) could not give its "
                                         "metadata: ValueError: Unknown model 'my-finetune'"):
        _ = llm.metadata
    no_tools = pair(weak=FakeLLM(model="fake-weak", function_calling=False))
    with pytest.raises(TypeError, match="the weak model 'fake-weak' \\(FakeLLM\\) does not support tool calling"):
        no_tools.chat_with_tools([TOOL], user_msg="What is 3 plus 4?")


# --------------------------------------------------------------------------- prices on the handler
def _price(table: dict, model: str, inp: int, out: int) -> Decimal:
    pin, pout = (Decimal(str(x)) for x in table[model])
    return (pin * inp + pout * out) / Decimal(1_000_000)


def test_the_handlers_prices_win_for_the_models_in_its_table(costs):
    mine = {"fake-strong": (100.0, 300.0)}
    handler = RoutingCostEventHandler(prices=mine)
    get_dispatcher().add_event_handler(handler)
    try:
        llm = pair()  # priced with PRICES on the LLM
        llm.complete(Q, routellm_threshold=0.0)
        llm.complete(Q)
    finally:
        handler.detach()
    strong, weak = handler.records
    assert strong.cost == strong.strong_cost == _price(mine, "fake-strong", strong.input_tokens, strong.output_tokens)
    assert weak.cost == _price(PRICES, "fake-weak", weak.input_tokens, weak.output_tokens)  # not in its table
    assert weak.strong_cost == _price(mine, "fake-strong", weak.input_tokens, weak.output_tokens)
    # the events themselves are unchanged: another handler sees the LLM's prices
    assert [r.cost for r in costs.records] == [_price(PRICES, r.model, r.input_tokens, r.output_tokens)
                                               for r in costs.records]


def test_prices_only_on_the_handler_as_in_langchain():
    handler = RoutingCostEventHandler(prices=PRICES)
    get_dispatcher().add_event_handler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the LLM knows no price: it warns, the handler prices
            llm = pair(prices=PriceSource(use_library=False))
            llm.chat(user(), routellm_threshold=0.0)
            llm.chat(user())
    finally:
        handler.detach()
    t = handler.totals
    assert t.unknown_cost_calls == 0 and t.total_cost == sum(r.cost for r in handler.records) > 0
    assert t.savings == t.strong_cost - t.total_cost > 0
    with pytest.raises(ValueError, match="price of 'fake-strong' must be"):
        RoutingCostEventHandler(prices={"fake-strong": 1.0})


# --------------------------------------------------------------------------- printed summary
def test_printing_the_handler_shows_a_cost_summary(costs):
    assert str(costs).startswith("Routed calls: 0 (strong: 0, 0.0%)")
    llm = pair()
    llm.complete(Q, routellm_threshold=0.0)
    llm.complete(Q)
    llm.chat(user())
    t = costs.totals
    text = str(costs)
    assert text.splitlines()[0] == "Routed calls: 3 (strong: 1, 33.3%)"
    assert f"Tokens Used: {t.input_tokens + t.output_tokens}" in text
    assert f"  Prompt Tokens: {t.input_tokens}" in text and f"  Completion Tokens: {t.output_tokens}" in text
    assert f"Total Cost (USD): ${t.total_cost:,.6f}" in text
    assert f"All-strong Cost (USD): ${t.strong_cost:,.6f}" in text
    assert f"Savings (USD): ${t.savings:,.6f} ({t.savings / t.strong_cost:.1%})" in text
    flaky = pair(weak=FlakyLLM(model="fake-weak", fail_percent=100))
    flaky.complete(Q)  # falls back to strong
    assert "  1 fallbacks, 1 failed attempts" in str(costs).splitlines()
