"""Where routed models' names come from (routellm_core.naming), in the core and both adapters:
one model at two settings, two unnamed models of one class, reasoning tokens in the ledger, and
N-way pools with the user's own names and prices. The router is always the real one."""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import MockLLM

from langchain_routellm import ChatRouteLLM, get_routing_cost_callback
from llamaindex_routellm import RouteLLM, RoutingCostEventHandler
from routellm_core.calls import usage_of
from routellm_core.costs import PriceSource, billed_output_tokens
from routellm_core.naming import DuplicateModelNameWarning, ModelName, model_name, name_models
from routellm_core.routing import Pool
from tests.langchain.fake_models import FakeToolChatModel
from tests.llamaindex.fakes import FakeLLM

GPT5 = (1.25, 10.0)  # dollars per million input / output tokens
BIG, MID, SMALL = "llama-3.1-nemotron-51b-instruct", "llama-3.1-8b-instruct", "gemma-2-9b-it"
Q = "Prove that there are infinitely many primes."


def money(model: tuple[float, float], inp: int, out: int) -> Decimal:
    return (Decimal(str(model[0])) * inp + Decimal(str(model[1])) * out) / Decimal(1_000_000)


@pytest.fixture
def li_costs():
    h = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(h)
    yield h
    h.detach()


# --------------------------------------------------------------------------- the rule, in the core
def test_the_naming_rule_given_names_guesses_and_clashes():
    class Chat:
        def __init__(self, model: str | None = None) -> None:
            if model is not None:
                self.model = model

    named = name_models({"strong": Chat("gpt-5"), "weak": Chat("gpt-5")},
                        {"strong": "gpt-5@high", "weak": "gpt-5@minimal"})
    assert named["strong"] == ModelName("strong", "gpt-5@high", "gpt-5", True)
    assert named["weak"].price_keys == ("gpt-5@minimal", "gpt-5")
    assert name_models({"strong": Chat("big"), "weak": Chat("small")})["weak"].name == "small"
    # a user's name that says nothing about the model is priced by the model it runs
    assert name_models({"strong": Chat("gpt-5"), "weak": Chat("x")}, {"strong": "fast"})["strong"].price_keys \
        == ("fast", "gpt-5")
    with pytest.warns(DuplicateModelNameWarning, match=r"named 'Chat'.*'Chat@strong', 'Chat@weak'.*names="):
        clash = name_models({"strong": Chat(), "weak": Chat()})
    assert [n.name for n in clash.values()] == ["Chat@strong", "Chat@weak"]
    assert clash["weak"].price_keys == ("Chat@weak", "Chat")
    # a given name keeps its name; only the guessed one moves aside
    with pytest.warns(DuplicateModelNameWarning):
        mixed = name_models({"strong": Chat("gpt-5"), "weak": Chat("gpt-5")}, {"strong": "gpt-5"})
    assert (mixed["strong"].name, mixed["weak"].name) == ("gpt-5", "gpt-5@weak")
    assert model_name(MockLLM()) == "MockLLM" and model_name(FakeLLM(model="m")) == "m"


@pytest.mark.parametrize("names, error, match", [
    ({"strng": "a"}, ValueError, r"names has a key 'strng', which is not a route; did you mean 'strong'\?"),
    ({"banana": "a"}, ValueError, r"'banana', which is not a route\. The routes are \['strong', 'weak'\]"),
    ({"strong": ""}, TypeError, r"names\['strong'\] must be a non-empty string"),
    ({"strong": 5}, TypeError, r"names\['strong'\] must be a non-empty string, got 5"),
    ({"strong": "x", "weak": "x"}, ValueError, "gives the name 'x' to both 'strong' and 'weak'"),
    (["gpt-5@high"], TypeError, "names must map routes to names"),
])
def test_bad_names_are_clear_errors(names, error, match):
    with pytest.raises(error, match=match):
        name_models({"strong": object(), "weak": object()}, names)
    if not isinstance(names, dict):  # the adapters' typed field refuses it first
        error, match = ValueError, "valid dictionary"
    with pytest.raises(error, match=match):  # the same error through each adapter
        ChatRouteLLM(strong=FakeToolChatModel(model_name="gpt-5"), weak=FakeToolChatModel(model_name="gpt-5"),
                     names=names, threshold=0.5)
    with pytest.raises(error, match=match):
        RouteLLM(strong=FakeLLM(model="gpt-5"), weak=FakeLLM(model="gpt-5"), names=names, threshold=0.5)


def test_the_pair_refusing_one_name_points_to_names():
    with pytest.raises(ValueError, match=r"same name 'a'; name them with names=\{'strong': \.\.\., 'weak': \.\.\.\}"):
        Pool.pair(strong="a", weak="a", threshold=0.5)
    with pytest.raises(ValueError, match="with models=.* the keys are the names"):
        ChatRouteLLM(models={SMALL: FakeToolChatModel(model_name=SMALL), MID: FakeToolChatModel(model_name=MID)},
                     names={"strong": "x"})


def test_prices_follow_the_names_a_call_is_priced_as():
    source = PriceSource({"gpt-5": GPT5, "gpt-5@high": (2.0, 20.0)},
                         price_as={"gpt-5@high": ["gpt-5"], "gpt-5@minimal": ["gpt-5"]})
    assert source.cost("gpt-5@minimal", input_tokens=1000, output_tokens=100) == money(GPT5, 1000, 100)
    assert source.cost("gpt-5@high", input_tokens=1000, output_tokens=100) == money((2.0, 20.0), 1000, 100)
    with pytest.warns(UserWarning, match=r"no price for model 'x@y' \(nor for 'x', the model it runs\).*prices=\{'x'"):
        assert PriceSource(use_library=False, price_as={"x@y": ["x"]}).cost("x@y", input_tokens=1,
                                                                               output_tokens=1) is None
    with pytest.raises(TypeError, match=r"price_as\['a'\] must be names"):
        PriceSource(price_as={"a": [1]})


# --------------------------------------------------------------------------- one model at two settings
def test_langchain_routes_one_model_at_two_settings_with_the_models_price():
    high = FakeToolChatModel(model_name="gpt-5")  # as ChatOpenAI(model="gpt-5", reasoning_effort="high")
    minimal = FakeToolChatModel(model_name="gpt-5")  # ... and reasoning_effort="minimal"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateModelNameWarning)  # named by the user: no warning
        llm = ChatRouteLLM(strong=high, weak=minimal, names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"},
                           threshold=0.5, prices={"gpt-5": GPT5})
    assert llm.route(Q).models == {"strong": "gpt-5@high", "weak": "gpt-5@minimal"}
    with get_routing_cost_callback() as cb:
        strong = llm.invoke(Q, routellm_threshold=0.0)
        weak = llm.invoke(Q, routellm_threshold=1.0)
    assert strong.response_metadata["routellm_model"] == "gpt-5@high" and high.calls == 1
    assert weak.response_metadata["routellm_model"] == "gpt-5@minimal" and minimal.calls == 1
    for r in cb.records:
        assert r.cost == money(GPT5, r.input_tokens, r.output_tokens) and r.strong_model == "gpt-5@high"
        assert r.savings == 0  # one model: nothing saved on price, only on the reasoning it does not do
    assert set(cb.totals.by_model) == {"gpt-5@high", "gpt-5@minimal"}
    # the handler's own table prices them by the model too, and a name of its own wins
    plain = ChatRouteLLM(strong=high, weak=minimal, names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"},
                         threshold=1.0)
    with get_routing_cost_callback(prices={"gpt-5": GPT5, "gpt-5@high": (2.0, 20.0)}) as cb:
        plain.invoke(Q)
    (r,) = cb.records
    assert r.model == "gpt-5@minimal" and r.cost == money(GPT5, r.input_tokens, r.output_tokens)
    assert r.strong_cost == money((2.0, 20.0), r.input_tokens, r.output_tokens)


def test_llamaindex_routes_one_model_at_two_settings_with_the_models_price(li_costs):
    high, minimal = FakeLLM(model="gpt-5"), FakeLLM(model="gpt-5")
    llm = RouteLLM(strong=high, weak=minimal, names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"},
                   threshold=0.5, prices={"gpt-5": GPT5})
    msgs = [ChatMessage(role=MessageRole.USER, content=Q)]
    llm.chat(msgs, routellm_threshold=0.0)
    resp = llm.complete(Q, routellm_threshold=1.0)
    assert resp.additional_kwargs["routellm_model"] == "gpt-5@minimal" and high.calls == minimal.calls == 1
    assert [r.model for r in li_costs.records] == ["gpt-5@high", "gpt-5@minimal"]
    for r in li_costs.records:
        assert r.cost == money(GPT5, r.input_tokens, r.output_tokens) and not r.tokens_estimated
    # a handler's own table re-prices them by the model too (the name's part before "@")
    repricing = RoutingCostEventHandler(prices={"gpt-5": (2.0, 20.0)})
    get_dispatcher().add_event_handler(repricing)
    try:
        llm.complete(Q, routellm_threshold=1.0)
    finally:
        repricing.detach()
    (r,) = repricing.records
    assert r.cost == r.strong_cost == money((2.0, 20.0), r.input_tokens, r.output_tokens)


def test_two_unnamed_models_of_one_class_get_names_with_a_warning(li_costs):
    with pytest.warns(DuplicateModelNameWarning, match="'FakeListChatModel@strong'.*names="):
        llm = ChatRouteLLM(strong=FakeListChatModel(responses=["big"]), weak=FakeListChatModel(responses=["small"]),
                           threshold=0.5)
    assert llm.invoke(Q, routellm_threshold=0.0).content == "big"
    assert llm.invoke(Q, routellm_threshold=1.0).response_metadata["routellm_model"] == "FakeListChatModel@weak"
    with pytest.warns(DuplicateModelNameWarning, match="'MockLLM@strong', 'MockLLM@weak'"):
        li = RouteLLM(strong=MockLLM(), weak=MockLLM(), threshold=1.0)
    li.complete(Q)
    assert li_costs.records[-1].model == "MockLLM@weak"
    # one model at two settings, unnamed: "<model>@<route>", priced as the model
    with pytest.warns(DuplicateModelNameWarning, match="priced as 'gpt-5'"):
        same = ChatRouteLLM(strong=FakeToolChatModel(model_name="gpt-5"), weak=FakeToolChatModel(model_name="gpt-5"),
                            threshold=1.0, prices={"gpt-5": GPT5})
    with get_routing_cost_callback() as cb:
        same.invoke(Q)
    (r,) = cb.records
    assert r.model == "gpt-5@weak" and r.cost == money(GPT5, r.input_tokens, r.output_tokens)


def test_a_langchain_models_own_name_is_its_name_and_its_model_still_prices_it():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateModelNameWarning)
        llm = ChatRouteLLM(strong=FakeListChatModel(responses=["a"], name="gpt-4o"),
                           weak=FakeToolChatModel(model_name="gpt-5", name="gpt-5-minimal"), threshold=1.0,
                           prices={"gpt-5": GPT5, "gpt-4o": (2.5, 10.0)})
    assert llm.route(Q).models == {"strong": "gpt-4o", "weak": "gpt-5-minimal"}
    with get_routing_cost_callback() as cb:
        llm.invoke(Q)
    (r,) = cb.records
    assert r.model == "gpt-5-minimal" and r.cost == money(GPT5, r.input_tokens, r.output_tokens)
    assert r.strong_cost == money((2.5, 10.0), r.input_tokens, r.output_tokens)


def test_aliases_are_keyed_by_name_or_by_route():
    big, small = FakeToolChatModel(model_name="gpt-5"), FakeToolChatModel(model_name="gpt-5")
    names = {"strong": "gpt-5@high", "weak": "gpt-5@minimal"}
    by_route = ChatRouteLLM(strong=big, weak=small, names=names, threshold=0.5,
                            aliases={"strong": "gpt-4-1106-preview", "weak": "mixtral-8x7b-instruct-v0.1"})
    by_name = ChatRouteLLM(strong=big, weak=small, names=names, threshold=0.5,
                           aliases={"gpt-5@high": "gpt-4-1106-preview", "gpt-5@minimal": "mixtral-8x7b-instruct-v0.1"})
    assert by_route.route(Q).win_rate == pytest.approx(by_name.route(Q).win_rate)
    with pytest.raises(ValueError, match=r"aliases for \['gpt-5@hihg'\].*did you mean 'gpt-5@high'"):
        ChatRouteLLM(strong=big, weak=small, names=names, threshold=0.5, aliases={"gpt-5@hihg": "x"})


# --------------------------------------------------------------------------- reasoning tokens
def test_reasoning_tokens_are_output_tokens_counted_once():
    # LangChain / OpenAI: output_tokens (completion_tokens) include the reasoning: total says so
    included = {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110,
                "output_token_details": {"reasoning": 64}}
    assert usage_of(included) == (10, 100)
    openai_raw = {"usage": {"prompt_tokens": 10, "completion_tokens": 100, "total_tokens": 110,
                            "completion_tokens_details": {"reasoning_tokens": 64}}}
    assert usage_of(openai_raw) == (10, 100)
    responses_api = {"input_tokens": 10, "output_tokens": 100, "output_tokens_details": {"reasoning_tokens": 64}}
    assert usage_of(responses_api) == (10, 100)  # no total: taken as included, as OpenAI documents
    # reported apart: a total of input + output + reasoning, and Gemini's raw thoughts_token_count
    apart = {"input_tokens": 10, "output_tokens": 36, "total_tokens": 110, "output_token_details": {"reasoning": 64}}
    assert usage_of(apart) == (10, 100)
    gemini = {"usage_metadata": {"prompt_token_count": 10, "candidates_token_count": 36, "thoughts_token_count": 64}}
    assert usage_of(gemini) == (10, 100)
    assert billed_output_tokens({"output_token_details": {"reasoning": 0}}, 1, 5) == 5
    assert billed_output_tokens({"output_token_details": {"reasoning": -3}, "total_tokens": 3}, 1, 5) == 5


class ReasoningChat(FakeToolChatModel):
    """Reports reasoning tokens: inside output_tokens (``apart=False``), or apart from them."""

    apart: bool = False

    def _usage(self, messages: list[BaseMessage], text: str) -> dict[str, Any]:
        usage = dict(super()._usage(messages, text))
        usage["output_token_details"] = {"reasoning": 500}
        if self.apart:
            usage["total_tokens"] += 500
        else:
            usage["output_tokens"] += 500
            usage["total_tokens"] += 500
        return usage


@pytest.mark.parametrize("apart", [False, True])
def test_langchain_ledger_counts_reasoning_as_output(apart):
    llm = ChatRouteLLM(strong=ReasoningChat(model_name="gpt-5", apart=apart), weak=FakeToolChatModel(model_name="x"),
                       names={"strong": "gpt-5@high"}, threshold=0.0, prices={"gpt-5": GPT5, "x": (0.0, 0.0)})
    with get_routing_cost_callback() as cb:
        msg = llm.invoke(Q)
    (r,) = cb.records
    answer_words = len(msg.content.split())
    assert r.output_tokens == answer_words + 500 and r.cost == money(GPT5, r.input_tokens, answer_words + 500)


class ReasoningLLM(FakeLLM):
    """Reports reasoning tokens as OpenAI does (in completion_tokens) or as Gemini does (apart)."""

    style: str = "openai"

    def _usage(self, prompt_texts: Any, answer: str) -> dict[str, Any]:
        usage = super()._usage(prompt_texts, answer)["usage"]
        if self.style == "openai":
            return {"usage": {**usage, "completion_tokens": usage["completion_tokens"] + 500,
                              "completion_tokens_details": {"reasoning_tokens": 500}}}
        return {"usage_metadata": {"prompt_token_count": usage["prompt_tokens"],
                                   "candidates_token_count": usage["completion_tokens"],
                                   "thoughts_token_count": 500}}


@pytest.mark.parametrize("style", ["openai", "gemini"])
def test_llamaindex_ledger_counts_reasoning_as_output(style, li_costs):
    llm = RouteLLM(strong=ReasoningLLM(model="gpt-5", style=style), weak=FakeLLM(model="x"), threshold=0.0,
                   prices={"gpt-5": GPT5, "x": (0.0, 0.0)})
    resp = llm.chat([ChatMessage(role=MessageRole.USER, content=Q)])
    (r,) = li_costs.records
    answer_words = len((resp.message.content or "").split())
    assert r.output_tokens == answer_words + 500 and r.cost == money(GPT5, r.input_tokens, answer_words + 500)


# --------------------------------------------------------------------------- N-way: the user's names and prices
def test_nway_takes_the_users_names_for_models_the_router_knows():
    models = {"fast": FakeToolChatModel(model_name=SMALL), "deep": FakeToolChatModel(model_name=BIG)}
    llm = ChatRouteLLM(models=models, lambdas={"cost": 0.0})  # no aliases: each runs a model the router knows
    d = llm.route(Q)
    assert set(d.scores) == {"fast", "deep"} and d.reference_model == "fast"
    li = RouteLLM(models={"fast": FakeLLM(model=SMALL), "deep": FakeLLM(model=BIG)}, lambdas={"cost": 0.0})
    assert li.route(prompt=Q).scores == pytest.approx(d.scores)
    with pytest.raises(ValueError, match=r"model 'gpt-4o' is unknown to this quality router.*aliases=\{'gpt-4o'"):
        ChatRouteLLM(models={"gpt-4o": FakeToolChatModel(model_name="gpt-4o"), "fast": models["fast"]})
    with pytest.raises(ValueError, match=r"'gemma-2-9b' is unknown .*nor is 'fake-model', the model it runs"
                                         r".*close: 'gemma-2-9b-it'"):
        ChatRouteLLM(models={"gemma-2-9b": FakeToolChatModel(), "deep": models["deep"]})


def test_an_aliased_pool_prices_each_model_as_itself_never_the_alias_target():
    # the user's big model is cheap and their small one dear: the opposite of the alias targets
    mine = {"my-big": BIG, "my-small": SMALL}
    prices = {"my-big": (0.1, 0.1), "my-small": (5.0, 5.0)}
    chat = {k: FakeToolChatModel(model_name=k) for k in mine}
    llm = ChatRouteLLM(models=chat, aliases=mine, prices=prices, lambdas={"cost": 0.0})
    (cost,) = [c for c in llm._pool.constraints if c.name == "cost"]
    assert cost.values[BIG] == pytest.approx(0.0001) and cost.values[SMALL] == pytest.approx(0.005)
    # with a weight on cost the user's cheap model wins, and the ledger prices it as itself
    with get_routing_cost_callback() as cb:
        msg = llm.invoke(Q, routellm_lambdas={"cost": 1.0})
    assert msg.response_metadata["routellm_model"] == "my-big"
    (r,) = cb.records
    assert r.cost == money(prices["my-big"], r.input_tokens, r.output_tokens) and r.savings == 0
    li = RouteLLM(models={k: FakeLLM(model=k) for k in mine}, aliases=mine, prices=prices, lambdas={"cost": 1.0})
    assert li.route(prompt=Q).model == "my-big"
    # no price of its own: no cost constraint (a warning), and a cost weight is an error naming the fix
    with pytest.warns(UserWarning, match=r"no price for 'my-big', 'my-small': the pool has no 'cost' constraint"):
        unpriced = ChatRouteLLM(models=chat, aliases=mine)
    with pytest.raises(ValueError, match=r"Give prices=\{'my-big'"):
        unpriced.invoke(Q, routellm_lambdas={"cost": 1.0})
    with pytest.raises(ValueError, match="no price for 'my-big'"):
        RouteLLM(models={k: FakeLLM(model=k) for k in mine}, aliases=mine, lambdas={"cost": 0.5})


# --------------------------------------------------------------------------- the guides' examples, as written
def _run_doc(code: str, name: str) -> list[str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), {})  # noqa: S102 - the documented example, as written
    return out.getvalue().splitlines()


def test_docs_model_names_examples_run_as_written(li_costs):
    import re

    from tests.readme_snippets import section_code

    (lc,) = section_code("Model names", doc="docs/langchain.md")
    assert 'ChatOpenAI(model="gpt-5", reasoning_effort="high")' in lc
    lc = lc.replace("from langchain_openai import ChatOpenAI",
                    "from tests.langchain.fake_models import FakeToolChatModel")
    lc = re.sub(r'ChatOpenAI\(model="([^"]+)", reasoning_effort="\w+"\)', r'FakeToolChatModel(model_name="\1")', lc)
    (line,) = _run_doc(lc, "docs/langchain.md:names")
    model, by_model = line.split(" ", 1)
    assert model in ("gpt-5@high", "gpt-5@minimal") and by_model == f"['{model}']"
    (li,) = section_code("Model names", doc="docs/llamaindex.md")
    li = li.replace("from llama_index.llms.openai import OpenAI", "from tests.llamaindex.fakes import FakeLLM")
    li = re.sub(r'OpenAI\(model="([^"]+)", reasoning_effort="\w+"\)', r'FakeLLM(model="\1")', li)
    assert _run_doc(li, "docs/llamaindex.md:names")[0] in ("gpt-5@high", "gpt-5@minimal")
    (r,) = li_costs.records
    assert r.cost == money(GPT5, r.input_tokens, r.output_tokens)
