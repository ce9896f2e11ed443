"""Building ChatRouteLLM / RouterRunnable: unknown arguments are errors, the router may be named
by a string, prices and aliases are settings of the model, and RouterRunnable names its
branches after the chat models inside them."""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from langchain_routellm import ChatRouteLLM, RouterRunnable, get_routing_cost_callback
from routellm_core import save_router
from routellm_core.costs import PriceSource, UnknownPriceWarning
from routellm_core.routers import SWRankingRouter
from routellm_core.routing import shared_router
from tests.langchain.fake_models import FakeToolChatModel
from tests.routing_fixtures import EASY, HARD, toy_battles

HARD_Q = "Prove that there are infinitely many primes."


def models(strong: str = "fake-strong", weak: str = "fake-weak") -> dict[str, Any]:
    return {"strong": FakeToolChatModel(model_name=strong), "weak": FakeToolChatModel(model_name=weak)}


@pytest.mark.parametrize("cls", [ChatRouteLLM, RouterRunnable])
@pytest.mark.parametrize("typo, meant", [("failure_polcy", "failure_policy"), ("fallbak", "fallback"),
                                         ("treshold", "threshold"), ("strong_fracton", "strong_fraction")])
def test_a_misspelled_argument_is_an_error_naming_it_and_the_setting_meant(cls, typo, meant):
    with pytest.raises(TypeError, match=rf"{cls.__name__}\(\) got an unexpected argument '{typo}'; "
                                        rf"did you mean '{meant}'"):
        cls(**models(), threshold=0.5, **{typo: "x"})


def test_an_argument_that_belongs_elsewhere_says_so():
    with pytest.raises(TypeError, match="unexpected argument 'colour'; its settings are strong, weak"):
        ChatRouteLLM(**models(), threshold=0.5, colour="blue")
    with pytest.raises(TypeError, match="calls no API itself; give api_key to the routed chat models"):
        ChatRouteLLM(**models(), threshold=0.5, api_key="sk-...")


def test_router_default_is_loaded_on_first_use_and_shared():
    llm = ChatRouteLLM(**models(), router="default", threshold=0.5)
    assert llm.router == "default" and llm._pool._router is None      # nothing loaded yet
    d = llm.route(HARD_Q)
    assert d.router == shared_router("default").name
    assert d.win_rate == pytest.approx(shared_router("default").win_rate([HARD_Q])[0])


def test_router_by_checkpoint_path(tmp_path):
    router = SWRankingRouter(n_tiers=3, strong_model="big-model", weak_model="small-model").fit(toy_battles())
    router.calibrate(HARD + EASY, source="toy")
    path = save_router(router, tmp_path / "toy-router")
    for spec in (str(path), path):
        llm = ChatRouteLLM(**models(), router=spec, threshold=0.5)
        d = llm.route(HARD_Q)
        assert d.router == router.name
        assert d.win_rate == pytest.approx(router.win_rate([HARD_Q])[0])
    rr = RouterRunnable(**models(), router=str(path), strong_fraction=0.5)
    assert rr.route(HARD_Q).router == router.name


def test_bad_router_specs_are_short_clear_errors(tmp_path):
    with pytest.raises(Exception, match="neither 'default', 'default-fast', 'random', an existing checkpoint"):
        ChatRouteLLM(**models(), router="no/such/dir/here", threshold=0.5)
    with pytest.raises(Exception, match="no checkpoint directory 'org/name'"):
        ChatRouteLLM(**models(), router="org/name", threshold=0.5)
    with pytest.raises(Exception, match="router must be a loaded router, 'default', a checkpoint path"):
        ChatRouteLLM(**models(), router=42, threshold=0.5)


def test_prices_on_the_model_price_its_calls_in_the_cost_callback():
    prices = {"house-big": (10.0, 30.0), "house-small": (1.0, 3.0)}
    for given in (prices, PriceSource(prices)):
        llm = ChatRouteLLM(**models("house-big", "house-small"), router="default", threshold=0.0, prices=given)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnknownPriceWarning)   # both models are priced
            with get_routing_cost_callback() as cb:
                llm.invoke("hello there")
                llm.invoke("hello there", routellm_threshold=1.0)
        strong, weak = cb.records
        assert (strong.model, weak.model) == ("house-big", "house-small")
        cost = (Decimal(10) * strong.input_tokens + Decimal(30) * strong.output_tokens) / 1_000_000
        assert strong.cost == cost and strong.strong_cost == cost
        assert weak.cost * 10 == weak.strong_cost and cb.totals.savings > 0
    # the handler's table wins for the models it lists (as in LlamaIndex); the model's prices the rest
    with get_routing_cost_callback(prices={"house-big": (100.0, 300.0)}) as cb:
        llm.invoke("hello there")
    r = cb.records[0]
    assert r.model == "house-big" and r.cost == (Decimal(100) * r.input_tokens + Decimal(300) * r.output_tokens) / 10**6
    with pytest.raises(ValueError, match="must be \\(input_per_million, output_per_million\\)"):
        ChatRouteLLM(**models(), threshold=0.5, prices={"fake-strong": 3.0})


def test_aliases_let_a_router_route_models_it_was_not_trained_on():
    router = shared_router("default")
    llm = ChatRouteLLM(**models("gpt-4o", "gpt-4o-mini"), router=router, threshold=0.5,
                       aliases={"gpt-4o": "gpt-4-1106-preview", "gpt-4o-mini": "mistral-7b-chat"})
    d = llm.route(HARD_Q)
    expected = router.win_rate([HARD_Q], strong_model="gpt-4-1106-preview", weak_model="mistral-7b-chat")[0]
    assert d.win_rate == pytest.approx(expected) and d.win_rate != pytest.approx(router.win_rate([HARD_Q])[0])
    assert d.model in ("gpt-4o", "gpt-4o-mini")                      # costs use the user's names
    with pytest.raises(ValueError, match="aliases for \\['gpt-5'\\], which are not among the routed models"):
        ChatRouteLLM(**models("gpt-4o", "gpt-4o-mini"), threshold=0.5, aliases={"gpt-5": "gpt-4-1106-preview"})
    # several models: a name the N-way router does not know, mapped onto one it does
    pool = {"my-llama": FakeToolChatModel(model_name="my-llama"),
            "gemma-2-9b-it": FakeToolChatModel(model_name="gemma-2-9b-it")}
    with pytest.raises(ValueError, match="'my-llama' is unknown"):
        ChatRouteLLM(models=pool)
    with pytest.raises(ValueError, match="no price for 'my-llama': the pool has no 'cost' constraint"):
        ChatRouteLLM(models=pool, aliases={"my-llama": "llama-3.1-8b-instruct"}, lambdas={"cost": -100.0})
    nway = ChatRouteLLM(models=pool, aliases={"my-llama": "llama-3.1-8b-instruct"}, lambdas={"cost": -100.0},
                        prices={"my-llama": (0.2, 0.2)})
    assert nway.invoke("hello there").content.startswith("[")
    assert set(nway.route("hello there").scores) == {"my-llama", "gemma-2-9b-it"}


def test_router_runnable_names_its_branches_after_their_chat_models():
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    big, small = FakeToolChatModel(model_name="house-big"), FakeToolChatModel(model_name="house-small")
    rr = RouterRunnable(strong=prompt | big.bind(stop=["!"]), weak=(prompt | small).with_fallbacks([small]),
                        router="default", threshold=0.0, prices={"house-big": (10.0, 30.0), "house-small": (1.0, 3.0)})
    assert rr.branch_names() == ("house-big", "house-small")
    with get_routing_cost_callback() as cb:
        out = rr.invoke({"question": "What is RAG?"})
    assert out.content == "[house-big] What is RAG?"
    (rec,) = cb.records
    assert rec.model == "house-big" and rec.cost is not None and rec.cost > 0
    # explicit names win; branches without a chat model are "strong" / "weak"
    named = RouterRunnable(strong=prompt | big, weak=prompt | small, threshold=0.5, strong_name="big-rag")
    assert named.branch_names() == ("big-rag", "house-small")
    lambdas = RouterRunnable(strong=RunnableLambda(str), weak=RunnableLambda(str), threshold=0.5)
    assert lambdas.branch_names() == ("strong", "weak")
    # two branches running one model get "<name>@<route>" names, with a warning, priced as the model
    with pytest.warns(UserWarning, match="named 'house-big'"):
        twice = RouterRunnable(strong=prompt | big, weak=big, threshold=0.5)
    assert twice.branch_names() == ("house-big@strong", "house-big@weak")
    with pytest.raises(ValueError, match="strong_name='a' and names\\['strong'\\]='b' disagree"):
        RouterRunnable(strong=prompt | big, weak=big, threshold=0.5, strong_name="a", names={"strong": "b"})


def test_standard_parameters_are_passed_to_the_chosen_model_or_said_to_belong_there():
    class Recorder(FakeToolChatModel):
        seen: list[dict[str, Any]] = []

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            self.seen.append(dict(kwargs))
            return super()._generate(messages, stop, run_manager, **kwargs)

    weak = Recorder(model_name="fake-weak", seen=[])
    llm = ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"), weak=weak, router="default",
                       threshold=1.0, temperature=0.2, max_tokens=64)
    llm.invoke("hi")
    llm.invoke("hi", temperature=0.9)
    assert weak.seen == [{"temperature": 0.2, "max_tokens": 64}, {"temperature": 0.9, "max_tokens": 64}]
    assert llm._get_ls_params()["ls_temperature"] == 0.2
    with pytest.warns(UserWarning, match="does not apply max_retries: set it on the routed chat models"):
        ChatRouteLLM(**models(), threshold=0.5, max_retries=3)
