"""``ChatRouteLLM``: a chat model that routes every call to a strong or a weak chat model, or
among several (N-way)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, run_in_executor
from pydantic import ConfigDict, Field, PrivateAttr, model_validator
from routellm_core.fallback import (
    astream_with_fallback,
    call_with_fallback,
    coerce_fallback,
    stream_with_fallback,
)
from routellm_core.nway.base import NWayDecision, NWayRouter
from routellm_core.nway.constraints import Constraint
from routellm_core.nway.policy import NWayPool, check_adapter_settings, coerce_lambdas, routed_models
from routellm_core.policy import FAILURE_POLICIES, PolicyDecision
from routellm_core.routers.base import Router

from langchain_routellm.runnables import (
    FALLBACK_DESCRIPTION,
    _RoutingMixin,
    ainvoke_routed,
    arun_batch,
    query_from_messages,
    routed_config,
    run_batch,
    with_decision,
)

LAMBDAS_KEY = "routellm_lambdas"
_TARGETS_KWARG = "routellm_targets"


def model_name(model: Any) -> str:
    """A chat model's name: ``model_name`` / ``model`` / ``model_id`` field, else its type."""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


class ChatRouteLLM(_RoutingMixin, BaseChatModel):
    """A strong and a weak chat model, or several, behind a learned router (RouteLLM, Tryage).

    For every call it scores the query (by default the last user turn) and hands the *original*
    call to the chosen model: invoke, batch, stream and their async forms, stop words, tools and
    structured output pass through. The chosen model's run is the one LangChain records, with
    its own name and usage, so usage and cost are counted once; the decision travels as the tag
    ``routellm:<route>``, as ``routellm_*`` metadata on that run, and in the answer's
    ``response_metadata``.

    **Two models** (``strong=``, ``weak=``): strong exactly when the router's win rate clears
    ``threshold`` (or the threshold that gives ``strong_fraction`` of calls to strong); the
    route is ``"strong"`` or ``"weak"``.

    **Several models** (``models={name: chat model}``, names the N-way router knows): the model
    maximising Tryage's ``score(m) - sum_j lambda_j C_j(m)`` with the weights ``lambdas``
    (``{"cost": 0.2}``; constraint values from ``costs=``, ``constraints=`` or the router's own
    price table); the route is the chosen name. ``router=None`` then means the embedded N-way
    default. The first model is the reference that savings are counted against.

    When the chosen model raises (timeout, rate limit, server error), another is called as
    ``fallback`` says (default ``"auto"``: ``"weak_to_strong"`` for a pair, ``"next_best"`` by
    utility for several; see :mod:`routellm_core.fallback`), for streams only before the first
    chunk; the answer's metadata then has ``routellm_fallback_from`` and the failed model's error.

    Instantiate:
        .. code-block:: python

            from langchain_routellm import ChatRouteLLM

            llm = ChatRouteLLM(strong=ChatOpenAI(model="gpt-4o"),
                               weak=ChatOpenAI(model="gpt-4o-mini"),
                               strong_fraction=0.3)   # or threshold=0.6
            pool = ChatRouteLLM(models={"llama-3.1-nemotron-51b-instruct": big,
                                        "llama-3.1-8b-instruct": mid, "gemma-2-9b-it": small},
                                lambdas={"cost": 0.2})

    Invoke / stream:
        .. code-block:: python

            msg = llm.invoke("Prove that there are infinitely many primes.")
            msg.response_metadata["routellm_route"]          # "strong" or "weak"
            for chunk in llm.stream("hi!"):
                print(chunk.text, end="")

    Per call / per chain:
        .. code-block:: python

            llm.invoke("...", config={"configurable": {"routellm_threshold": 0.8}})
            llm.invoke("...", config={"configurable": {"routellm_strong_fraction": 0.1}})
            pool.invoke("...", config={"configurable": {"routellm_lambdas": {"cost": 1.0}}})

    The router is held by reference: ``router=None`` uses the embedded default, loaded once per
    process on the first call, so building a two-model ``ChatRouteLLM`` costs microseconds (one
    with ``models=`` loads the small N-way default at once, to check the names).
    """

    strong: BaseChatModel | None = Field(default=None, description="The strong (expensive) chat model.")
    weak: BaseChatModel | None = Field(default=None, description="The weak (cheap) chat model.")
    models: dict[str, BaseChatModel] | None = Field(
        default=None, description="Several chat models to route among (N-way), by router model name.")
    router: Router | NWayRouter | None = Field(
        default=None, description="A loaded router (N-way for models=); None uses the shared embedded default.")
    threshold: float | None = Field(
        default=None, description="Strong exactly when win_rate >= threshold, in [0, 1].")
    strong_fraction: float | None = Field(
        default=None, description="Target share of strong calls, via the router's calibration.")
    lambdas: dict[str, float] | None = Field(
        default=None, description="N-way: constraint weights of Tryage's objective, e.g. {'cost': 0.2}.")
    costs: dict[str, float] | None = Field(
        default=None, description="N-way: cost per call of each model (shorthand for a 'cost' constraint).")
    constraints: list[Constraint] | None = Field(
        default=None, description="N-way: constraints keyed by the model names; default the router's own.")
    query_from: Literal["last_user", "all_user"] | Callable[[list[BaseMessage]], str] = Field(
        default="last_user",
        description="What to score: the last user turn (RouteLLM), all user turns, or a callable.")
    failure_policy: str | None = Field(
        default=None, description=f"When the router fails: one of {FAILURE_POLICIES} (default 'strong'); "
                                  "N-way: a model name or 'raise' (default the first model).")
    fallback: Any = Field(
        default="auto", description=FALLBACK_DESCRIPTION + " For models=: 'auto' is 'next_best' (down the "
                                    "utility ranking); 'none' or an NWayFallbackPolicy.")
    stop: list[str] | None = Field(
        default=None, description="Default stop words passed to the chosen model.")

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _pool: NWayPool | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _validate(self) -> ChatRouteLLM:
        self._pool, self.failure_policy, self.fallback = check_adapter_settings(self)
        return self

    # ------------------------------------------------------------------ identity
    @property
    def _llm_type(self) -> str:
        return "routellm"

    def _children(self) -> dict[str, BaseChatModel]:
        """The routed models by route: ``strong`` / ``weak``, or the N-way names."""
        return routed_models(self)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        if self._pool is not None:
            return {"models": list(self._pool.names), "lambdas": self._pool.lambdas,
                    "router": self._pool.router.name}
        return {"strong": model_name(self.strong), "weak": model_name(self.weak),
                "threshold": self.threshold, "strong_fraction": self.strong_fraction,
                "router": self.router.name if self.router is not None else "default"}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        names = self._pool.names if self._pool is not None else self._names()
        params: dict[str, Any] = {
            "ls_provider": "routellm",
            "ls_model_name": kwargs.get("model", "|".join(names)),
            "ls_model_type": "chat",
        }
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ------------------------------------------------------------------ routing
    def _names(self) -> tuple[str, str]:
        return model_name(self.strong), model_name(self.weak)

    def _query_text(self, input: Any) -> str:
        return query_from_messages(self._convert_input(input).to_messages(), self.query_from)

    def _fallback_policy(self) -> Any:
        return coerce_fallback(self.fallback, nway=self._pool is not None)

    def _setting_for(self, config: RunnableConfig) -> Any:
        if self._pool is None:
            return super()._setting_for(config)
        return self._pool.check_lambdas(coerce_lambdas((config.get("configurable") or {}).get(LAMBDAS_KEY)))

    def _decide_texts(self, texts: list[str], settings: list[Any]) -> list[Any]:
        if self._pool is None:
            return super()._decide_texts(texts, settings)
        return self._pool.decide(texts, lambdas=settings)

    def decide(self, input: LanguageModelInput,
               config: RunnableConfig | None = None) -> PolicyDecision | NWayDecision:
        """The routing decision for ``input`` under ``config``, without calling a model."""
        return self._decide([input], [ensure_config(config)])[0]  # type: ignore[return-value]

    def _own_config(self, config: Any) -> Any:
        """Add this model's own ``callbacks``, ``tags`` and ``metadata`` to the call's config(s)."""
        if not (self.callbacks or self.tags or self.metadata):
            return config
        if isinstance(config, list):
            return [self._own_config(c) for c in config]
        config = ensure_config(config)
        callbacks = config.get("callbacks")
        if self.callbacks:
            own = self.callbacks if isinstance(self.callbacks, list) else self.callbacks.handlers
            if callbacks is None or isinstance(callbacks, list):
                callbacks = [*(callbacks or []), *own]
            else:
                callbacks = callbacks.copy()
                for h in own:
                    callbacks.add_handler(h, inherit=True)
        return {**config, "callbacks": callbacks,
                "tags": [*config.get("tags", []), *(self.tags or [])],
                "metadata": {**(self.metadata or {}), **config.get("metadata", {})}}

    def _targets(self, kwargs: dict[str, Any]) -> dict[str, Runnable]:
        targets = kwargs.pop(_TARGETS_KWARG, None)
        return dict(targets) if targets is not None else self._children()

    def _call_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        stop = stop if stop is not None else self.stop
        return {**kwargs, "stop": stop} if stop is not None else kwargs

    # ------------------------------------------------------------------ delegation
    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Any:
        targets = self._targets(kwargs)
        config = self._own_config(config)
        d = self.decide(input, config)
        kw = self._call_kwargs(stop, kwargs)
        out, d = call_with_fallback(
            d, lambda dd: targets[dd.route].invoke(input, routed_config(config, dd), **kw),
            self._fallback_policy())
        return with_decision(out, d)

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> Any:
        targets = self._targets(kwargs)
        config = self._own_config(config)
        d = await run_in_executor(config, self.decide, input, config)
        out, d = await ainvoke_routed(targets, input, config, d, self._fallback_policy(),
                                      **self._call_kwargs(stop, kwargs))
        return with_decision(out, d)

    def batch(self, inputs: list[LanguageModelInput], config: Any = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        targets = self._targets(kwargs)
        return run_batch(self, targets, inputs, self._own_config(config), return_exceptions,
                         self._call_kwargs(kwargs.pop("stop", None), kwargs))

    async def abatch(self, inputs: list[LanguageModelInput], config: Any = None, *,
                     return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        targets = self._targets(kwargs)
        return await arun_batch(self, targets, inputs, self._own_config(config), return_exceptions,
                                self._call_kwargs(kwargs.pop("stop", None), kwargs))

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[Any]:
        targets = self._targets(kwargs)
        config = self._own_config(config)
        d = self.decide(input, config)
        kw = self._call_kwargs(stop, kwargs)
        first = True
        for used, chunk in stream_with_fallback(
                d, lambda dd: targets[dd.route].stream(input, routed_config(config, dd), **kw),
                self._fallback_policy()):
            yield with_decision(chunk, used) if first else chunk
            first = False

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        targets = self._targets(kwargs)
        config = self._own_config(config)
        d = await run_in_executor(config, self.decide, input, config)
        kw = self._call_kwargs(stop, kwargs)
        first = True
        async for used, chunk in astream_with_fallback(
                d, lambda dd: targets[dd.route].astream(input, routed_config(config, dd), **kw),
                self._fallback_policy()):
            yield with_decision(chunk, used) if first else chunk
            first = False

    def stream_events(self, input: Any, config: RunnableConfig | None = None, *,
                      version: str = "v2", stop: list[str] | None = None, **kwargs: Any) -> Any:
        if version != "v3":
            return super().stream_events(input, config, version=version, stop=stop, **kwargs)  # type: ignore[call-overload]
        targets = self._targets(kwargs)
        config = self._own_config(config)
        d = self.decide(input, config)
        return targets[d.route].stream_events(  # type: ignore[call-overload]
            input, routed_config(config, d), version="v3", **self._call_kwargs(stop, kwargs))

    def astream_events(self, input: Any, config: RunnableConfig | None = None, *,
                       version: str = "v2", stop: list[str] | None = None, **kwargs: Any) -> Any:
        if version != "v3":
            return super().astream_events(input, config, version=version, stop=stop, **kwargs)  # type: ignore[call-overload]

        async def _v3() -> Any:
            targets = self._targets(kwargs)
            cfg = self._own_config(config)
            d = await run_in_executor(cfg, self.decide, input, cfg)
            return await targets[d.route].astream_events(  # type: ignore[call-overload]
                input, routed_config(cfg, d), version="v3", **self._call_kwargs(stop, kwargs))

        return _v3()

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        """The ``generate()`` path: here this model's own LLM run records the call and its usage
        (the chosen model is called without callbacks so nothing is counted twice); per-call
        ``configurable`` thresholds are not seen on this path, use ``invoke``."""
        targets = self._targets(kwargs)
        d = self.decide(messages)
        if not all(isinstance(t, BaseChatModel) for t in targets.values()):
            raise NotImplementedError("generate() on a model with bound tools or structured output; use invoke()")
        kw = self._call_kwargs(stop, kwargs)
        result, d = call_with_fallback(
            d, lambda dd: targets[dd.route]._generate(messages, **kw), self._fallback_policy())
        for g in result.generations:
            g.message = with_decision(g.message, d)
        return result

    # ------------------------------------------------------------------ tools and structure
    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools`` to every routed model (each in its own format); routing is unchanged."""
        extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
        bound = {route: m.bind_tools(tools, **extra, **kwargs) for route, m in self._children().items()}
        return self.bind(**{_TARGETS_KWARG: bound})

    def with_structured_output(self, schema: Any, *, include_raw: bool = False,
                               **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Structured output of every routed model (each its own method); routing is unchanged."""
        bound = {route: m.with_structured_output(schema, include_raw=include_raw, **kwargs)
                 for route, m in self._children().items()}
        return self.bind(**{_TARGETS_KWARG: bound})


__all__ = ["LAMBDAS_KEY", "ChatRouteLLM"]
