"""``ChatRouteLLM``: a chat model that routes every call to a strong or a weak chat model, or
among several (N-way)."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from langchain_routellm._loop import SOURCE
from langchain_routellm._routed import PRICES_DESCRIPTION, RoutingMixin
from langchain_routellm._translate import price_table, query_from_messages, routed_config, with_decision
from routellm_core.adapter import (
    ALIASES_HELP,
    CAPTURE_HELP,
    CONSTRAINTS_HELP,
    COSTS_HELP,
    FAILURE_POLICY_HELP,
    FALLBACK_HELP,
    LAMBDAS_HELP,
    MODELS_HELP,
    NAMES_HELP,
    ROUTER_HELP,
    SHADOW_HELP,
    STRONG_FRACTION_HELP,
    STRONG_HELP,
    THRESHOLD_HELP,
    WEAK_HELP,
    PoolHolder,
    check_capture,
    check_shadow,
)
from routellm_core.calls import check_arguments, content_text, pop_settings
from routellm_core.costs import PriceSource, count_tokens, estimate_message_tokens
from routellm_core.naming import routed_names
from routellm_core.nway.constraints import Constraint
from routellm_core.queries import check_query_mode
from routellm_core.routing import Decision, acall_with_fallback, call_with_fallback, make_pool
from routellm_core.routing.pool import check_router_spec

_TARGETS_KWARG = "routellm_targets"
_FORWARDED = ("temperature", "max_tokens", "timeout")  # standard parameters passed on to the chosen model
_NOT_APPLIED = ("max_retries", "streaming")  # standard parameters that only the routed models can apply
_ELSEWHERE = {name: f"ChatRouteLLM calls no API itself; give {name} to the routed chat models"
              for name in ("api_key", "base_url", "organization", "model", "model_name")}


def _counts_own_tokens(model: Any) -> bool:
    """Whether a chat model counts tokens its own way (not LangChain's default GPT-2 tokenizer)."""
    if not isinstance(model, BaseChatModel):
        return False
    if getattr(model, "custom_get_token_ids", None) is not None:
        return True
    return any(getattr(type(model), n) is not getattr(BaseChatModel, n)
               for n in ("get_num_tokens", "get_token_ids", "get_num_tokens_from_messages"))


class ChatRouteLLM(RoutingMixin, BaseChatModel):
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

    **Several models** (``models={name: chat model}``, names the N-way router knows, or
    ``aliases`` of them): the model maximising Tryage's ``score(m) - sum_j lambda_j C_j(m)``
    with the weights ``lambdas`` (``{"cost": 0.2}``; constraint values from ``costs=``,
    ``constraints=`` or the router's own price table); the route is the chosen name. The first
    model is the reference that savings are counted against.

    **Names** (:mod:`routellm_core.naming`): decisions, costs and ``aliases=`` know each model by
    ``names={"strong": ..., "weak": ...}``, else its own ``model_name`` / ``model`` field, else
    its class; two models left with one name become ``"<name>@strong"`` / ``"<name>@weak"``
    with a warning. A call is priced by its name, else by the model it runs, so one model at
    two settings is a pair: ``names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"}``,
    ``prices={"gpt-5": (1.25, 10.0)}``.

    When the chosen model raises (timeout, rate limit, server error), another is called as
    ``fallback`` says (default ``"auto"``: ``"weak_to_strong"`` for a pair, ``"next_best"`` by
    utility for several; see :mod:`routellm_core.routing.fallback`), for streams only before
    the first chunk; the answer's metadata then has ``routellm_fallback_from`` and the error.

    Instantiate:
        .. code-block:: python

            from langchain_routellm import ChatRouteLLM

            llm = ChatRouteLLM(strong=ChatOpenAI(model="gpt-4o"),
                               weak=ChatOpenAI(model="gpt-4o-mini"),
                               strong_fraction=0.3,            # or threshold=0.6
                               router="default",               # or a checkpoint dir / "hf://org/name"
                               aliases={"gpt-4o": "gpt-4-1106-preview"},
                               prices={"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)})
            pool = ChatRouteLLM(models={"llama-3.1-nemotron-51b-instruct": big,
                                        "llama-3.1-8b-instruct": mid, "gemma-2-9b-it": small},
                                lambdas={"cost": 0.2})

    Invoke / stream:
        .. code-block:: python

            msg = llm.invoke("Prove that there are infinitely many primes.")
            msg.response_metadata["routellm_route"]          # "strong" or "weak"
            for chunk in llm.stream("hi!"):
                print(chunk.text, end="")

    Per call / per chain (a call's keywords win over ``configurable``, which wins over the
    model's own settings; the keywords are never passed on to the chosen model):
        .. code-block:: python

            llm.invoke("...", routellm_threshold=0.8)
            llm.batch(["...", "..."], routellm_strong_fraction=0.1)
            llm.invoke("...", config={"configurable": {"routellm_threshold": 0.8}})
            pool.invoke("...", routellm_lambdas={"cost": 1.0})
            llm.route("...", routellm_threshold=0.8)        # the decision alone, no model call

    Structured output: ``with_structured_output(schema, include_raw=True)`` returns the
    decision in ``out["raw"].response_metadata``; with ``include_raw=False`` the parsed object
    has no room for it: it is on the chosen model's run as ``routellm_*`` metadata (callbacks,
    LangSmith), or ask :meth:`route` for it.

    Learning from traffic (all off by default, all off the call path: they never slow or fail
    a call; a store or judge error is a warning in the log):
        .. code-block:: python

            from routellm_core.learning import ShadowLabeller, TrafficCapture

            llm = ChatRouteLLM(strong=big, weak=small, strong_fraction=0.3,
                               capture=TrafficCapture("traffic.db", redact=mask_emails),
                               shadow=ShadowLabeller(judge, "traffic.db", fraction=0.05))
            msg = llm.invoke("...")
            call_id = msg.response_metadata["routellm_call_id"]
            llm.rate(call_id, "down")                       # or "up", or a score in [0, 1]
            llm.swap_router("runs/router-v2")               # e.g. after `routellm promote`

    ``capture=`` (a ``TrafficCapture``, a ``TrafficStore``, a SQLite path or a SQLAlchemy URL)
    stores each answered call: the routed query (after the capture's ``redact`` hook), the
    final decision (after fallbacks), the chosen model, tokens and cost. Calls whose every
    model raised are not stored; a stream the caller stopped reading is stored with what it
    got (as the cost callback counts it) but not shadowed. The call id
    (``routellm_call_id``, in the answer's ``response_metadata`` and a stream's first chunk)
    is the run id of the chosen model's run: your ``config["run_id"]`` when you give one (kept
    after a fallback), else a new one; :meth:`rate` takes it. ``shadow=`` (a
    ``ShadowLabeller``) asks the model not chosen the same query in the background for a
    sample of calls and stores the judged battle with the call id; calls with bound tools or
    structured output are not shadowed. :meth:`swap_router` replaces the router of this model
    and its copies while it serves.

    LangChain's standard parameters: ``temperature``, ``max_tokens`` and ``timeout`` are passed
    to the chosen model as call keywords when set (a call's own keywords win); ``max_retries``
    and ``streaming`` belong on the routed models (a warning says so when they are set here).
    ``get_num_tokens`` counts with the reference model (strong, or the first of several) when
    it has its own tokenizer, else with tiktoken's ``cl100k_base``.

    The router is held by reference: ``router=None`` or ``"default"`` uses the embedded default,
    loaded once per process on the first call, so building a two-model ``ChatRouteLLM`` costs
    microseconds (one with ``models=`` loads the small N-way default at once, to check the names).
    """

    strong: BaseChatModel | None = Field(default=None, description=STRONG_HELP)
    weak: BaseChatModel | None = Field(default=None, description=WEAK_HELP)
    models: dict[str, BaseChatModel] | None = Field(default=None, description=MODELS_HELP)
    names: dict[str, Any] | None = Field(default=None, description=NAMES_HELP)
    router: Any = Field(default=None, description=ROUTER_HELP)
    threshold: float | None = Field(default=None, description=THRESHOLD_HELP)
    strong_fraction: float | None = Field(default=None, description=STRONG_FRACTION_HELP)
    lambdas: dict[str, float] | None = Field(default=None, description=LAMBDAS_HELP)
    costs: dict[str, float] | None = Field(default=None, description=COSTS_HELP)
    constraints: list[Constraint] | None = Field(default=None, description=CONSTRAINTS_HELP)
    query_from: Literal["last_user", "all_user"] | Callable[[list[BaseMessage]], str] = Field(
        default="last_user",
        description="What to score: the last user turn (RouteLLM), all user turns, or a callable.")
    failure_policy: str | None = Field(default=None, description=FAILURE_POLICY_HELP)
    fallback: Any = Field(default="auto", description=FALLBACK_HELP)
    prices: Any = Field(default=None, description=PRICES_DESCRIPTION)
    aliases: dict[str, str] | None = Field(default=None, description=ALIASES_HELP)
    stop: list[str] | None = Field(default=None, description="Default stop words passed to the chosen model.")
    temperature: float | None = Field(default=None, description="Passed to the chosen model when set.")
    max_tokens: int | None = Field(default=None, description="Passed to the chosen model when set.")
    timeout: float | None = Field(default=None, description="Passed to the chosen model when set.")
    max_retries: int | None = Field(default=None, description="Not applied here: set it on the routed models.")
    streaming: bool | None = Field(default=None, description="Not applied here: set it on the routed models.")
    capture: Any = Field(default=None, description=CAPTURE_HELP)
    shadow: Any = Field(default=None, description=SHADOW_HELP)

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")
    _routing: PoolHolder = PrivateAttr()
    _prices: dict[str, tuple[float, float]] = PrivateAttr(default_factory=dict)
    _price_source: PriceSource = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _known_arguments(cls, data: Any) -> Any:
        own = tuple(n for n in cls.model_fields if n not in BaseChatModel.model_fields)
        return check_arguments(cls, data, own=own, hints=_ELSEWHERE)

    @field_validator("router")
    @classmethod
    def _router_spec(cls, router: Any) -> Any:
        return check_router_spec(router)

    @field_validator("capture")
    @classmethod
    def _capture(cls, capture: Any) -> Any:
        return check_capture(capture, source=SOURCE)

    @field_validator("shadow")
    @classmethod
    def _shadow(cls, shadow: Any) -> Any:
        return check_shadow(shadow)

    @model_validator(mode="after")
    def _validate(self) -> ChatRouteLLM:
        check_query_mode(self.query_from)
        self._prices = price_table(self.prices)
        naming = routed_names(strong=self.strong, weak=self.weak, models=self.models, names=self.names,
                              what="chat models")  # one rule for both adapters (routellm_core.naming)
        self._price_source = PriceSource(self._prices).with_price_as(naming.price_as)
        self._routing = PoolHolder(make_pool(
            **naming.pool_args(), router=self.router, threshold=self.threshold,
            strong_fraction=self.strong_fraction, lambdas=self.lambdas, costs=self.costs,
            constraints=self.constraints, failure_policy=self.failure_policy, fallback=self.fallback,
            aliases=self.aliases, prices=None if naming.pair else self._price_source))
        self._routing.follow(self.router)
        unused = [n for n in _NOT_APPLIED if getattr(self, n) is not None]
        if unused:
            warnings.warn(f"ChatRouteLLM does not apply {', '.join(unused)}: set {'them' if len(unused) > 1 else 'it'} "
                          "on the routed chat models", UserWarning, stacklevel=2)
        return self

    # ------------------------------------------------------------------ identity
    @property
    def _llm_type(self) -> str:
        return "routellm"

    def _children(self) -> dict[str, BaseChatModel]:
        """The routed models by route: ``strong`` / ``weak``, or the N-way names."""
        return dict(self.models or {"strong": self.strong, "weak": self.weak})  # type: ignore[dict-item]

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"models": dict(self._pool.models), "router": self._pool.router_name,
                "setting": self._pool.setting()}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="routellm", ls_model_type="chat",
                                 ls_model_name=kwargs.get("model", "|".join(self._pool.models.values())))
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ------------------------------------------------------------------ routing
    def _query_text(self, input: Any) -> str:
        return query_from_messages(self._convert_input(input).to_messages(), self.query_from)

    def _prompt_texts(self, input: Any, query: str) -> list[str]:
        return [content_text(m.content) for m in self._convert_input(input).to_messages()]

    def _shadow_models(self, targets: Mapping[str, Runnable]) -> dict[str, Any] | None:
        """The plain routed chat models; ``None`` (no shadowing) for calls with bound tools or
        structured output, whose other model would answer a different question."""
        if all(isinstance(t, BaseChatModel) for t in targets.values()):
            return dict(targets)
        return None

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
        return dict(targets if targets is not None else self._children())

    def _call_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keywords the chosen model gets: the call's, then this model's stop words and
        standard parameters where the call gives none."""
        out = dict(kwargs)
        stop = stop if stop is not None else self.stop
        if stop is not None:
            out["stop"] = stop
        for name in _FORWARDED:
            if getattr(self, name) is not None:
                out.setdefault(name, getattr(self, name))
        return out

    # ------------------------------------------------------------------ delegation
    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Any:
        targets = self._targets(kwargs)
        return self._invoke_routed(targets, input, self._own_config(config), self._call_kwargs(stop, kwargs), wrap=True)

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> Any:
        targets = self._targets(kwargs)
        return await self._ainvoke_routed(targets, input, self._own_config(config), self._call_kwargs(stop, kwargs),
                                   wrap=True)

    def batch(self, inputs: list[LanguageModelInput], config: Any = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        targets = self._targets(kwargs)
        return self._batch_routed(targets, inputs, self._own_config(config), return_exceptions,
                           self._call_kwargs(kwargs.pop("stop", None), kwargs))

    async def abatch(self, inputs: list[LanguageModelInput], config: Any = None, *,
                     return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        targets = self._targets(kwargs)
        return await self._abatch_routed(targets, inputs, self._own_config(config), return_exceptions,
                                  self._call_kwargs(kwargs.pop("stop", None), kwargs))

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[Any]:
        targets = self._targets(kwargs)
        yield from self._stream_routed(targets, input, self._own_config(config), self._call_kwargs(stop, kwargs),
                                wrap=True)

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        targets = self._targets(kwargs)
        async for chunk in self._astream_routed(targets, input, self._own_config(config),
                                         self._call_kwargs(stop, kwargs), wrap=True):
            yield chunk

    def stream_events(self, input: Any, config: RunnableConfig | None = None, *,
                      version: str = "v2", stop: list[str] | None = None, **kwargs: Any) -> Any:
        if version != "v3":
            return super().stream_events(input, config, version=version, stop=stop, **kwargs)  # type: ignore[call-overload]
        targets = self._targets(kwargs)
        call = pop_settings(kwargs)
        config = self._own_config(config)
        d = self._decide([input], [ensure_config(config)], call)[0]
        return targets[d.route].stream_events(
            input, routed_config(config, d, self._price_source), version="v3", **self._call_kwargs(stop, kwargs))

    def astream_events(self, input: Any, config: RunnableConfig | None = None, *,
                       version: str = "v2", stop: list[str] | None = None, **kwargs: Any) -> Any:
        if version != "v3":
            return super().astream_events(input, config, version=version, stop=stop, **kwargs)  # type: ignore[call-overload]

        async def _v3() -> Any:
            targets = self._targets(kwargs)
            call = pop_settings(kwargs)
            cfg = ensure_config(self._own_config(config))
            d = (await self._adecide([input], [cfg], call))[0]
            return await targets[d.route].astream_events(
                input, routed_config(cfg, d, self._price_source), version="v3", **self._call_kwargs(stop, kwargs))

        return _v3()

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        """The ``generate()`` path: here this model's own LLM run records the call and its usage
        (the chosen model is called without callbacks so nothing is counted twice); per-call
        ``configurable`` thresholds are not seen on this path (routing keywords are), use ``invoke``."""
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        targets = self._targets(kwargs)
        call = pop_settings(kwargs)
        d, query = self._route_inputs([messages], [ensure_config(None)], call, pool=pool)[0]
        chat_models = self._generate_models(targets)
        kw = self._call_kwargs(stop, kwargs)
        result, d = call_with_fallback(
            d, lambda dd: chat_models[dd.route]._generate(messages, **kw), pool.fallback)
        return self._generated(targets, messages, query, d, result, run_manager)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        """The ``agenerate()`` path, as :meth:`_generate`: routed by :meth:`Pool.aroute` (batched
        with the event loop's other calls), the chosen model called by its ``_agenerate``."""
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        targets = self._targets(kwargs)
        call = pop_settings(kwargs)
        d, query = (await self._aroute_inputs(pool, [messages], [ensure_config(None)], call))[0]
        chat_models = self._generate_models(targets)
        kw = self._call_kwargs(stop, kwargs)
        result, d = await acall_with_fallback(
            d, lambda dd: chat_models[dd.route]._agenerate(messages, **kw), pool.fallback)
        return self._generated(targets, messages, query, d, result, run_manager)

    @staticmethod
    def _generate_models(targets: Mapping[str, Runnable]) -> dict[str, BaseChatModel]:
        chat_models = {r: t for r, t in targets.items() if isinstance(t, BaseChatModel)}
        if len(chat_models) != len(targets):
            raise NotImplementedError("generate() on a model with bound tools or structured output; use invoke()")
        return chat_models

    def _generated(self, targets: dict[str, Runnable], messages: list[BaseMessage], query: str | None,
                   d: Decision, result: ChatResult, run_manager: Any) -> ChatResult:
        """The chosen model's result with the decision and call id on its messages, learned from."""
        call_id = run_manager.run_id if run_manager is not None else uuid.uuid4()
        for g in result.generations:
            g.message = with_decision(g.message, d, call_id)
        if result.generations:
            self._learn(targets, messages, query, d, call_id, result.generations[0].message)
        return result

    # ------------------------------------------------------------------ tokens
    def _reference_model(self) -> BaseChatModel:
        return self._children()[self._pool.reference]

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` as the reference model (strong, or the first of several) counts
        them when it has its own tokenizer, else by tiktoken's ``cl100k_base`` (offline)."""
        ref = self._reference_model()
        return ref.get_num_tokens(text) if _counts_own_tokens(ref) else count_tokens(text)

    def get_num_tokens_from_messages(self, messages: list[BaseMessage],
                                     tools: Sequence[Any] | None = None) -> int:
        """Prompt tokens of ``messages``, counted as :meth:`get_num_tokens` says (with
        tiktoken: each message's text plus OpenAI's per-message overhead; tools not counted)."""
        ref = self._reference_model()
        if _counts_own_tokens(ref):
            return ref.get_num_tokens_from_messages(messages, tools=tools)
        return estimate_message_tokens([content_text(m.content) for m in messages])

    # ------------------------------------------------------------------ tools and structure
    def _bind_each(self, what: str, bind: Callable[[BaseChatModel], Runnable]) -> dict[str, Runnable]:
        bound = {}
        for route, m in self._children().items():
            try:
                bound[route] = bind(m)
            except NotImplementedError as exc:
                name = self._pool.models[route]
                which = "the model" if route == name else f"the {route} model"
                raise NotImplementedError(
                    f"{which} {name!r} ({type(m).__name__}) does not support {what}: its "
                    f"{'bind_tools' if what == 'tool calling' else 'with_structured_output'}() is not "
                    "implemented. Route only among chat models that support it") from exc
        return bound

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools`` to every routed model (each in its own format); routing is unchanged.

        Raises:
            NotImplementedError: a routed model does not support tool calling (named in the message).
        """
        extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
        return self.bind(**{_TARGETS_KWARG: self._bind_each(
            "tool calling", lambda m: m.bind_tools(tools, **extra, **kwargs))})

    def with_structured_output(self, schema: Any, *, include_raw: bool = False,
                               **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Structured output of every routed model (each its own method); routing is unchanged.

        With ``include_raw=True`` the decision is in ``out["raw"].response_metadata``; without,
        it is on the chosen model's run (``routellm_*`` metadata seen by callbacks and tracers).
        """
        return self.bind(**{_TARGETS_KWARG: self._bind_each(
            "structured output", lambda m: m.with_structured_output(schema, include_raw=include_raw, **kwargs))})


__all__ = ["ChatRouteLLM"]
