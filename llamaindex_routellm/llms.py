"""``RouteLLM``: a LlamaIndex LLM that routes every call to a strong or a weak LLM, or among several
(N-way)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Optional, Union

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    TextBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, model_validator
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from routellm_core.costs import (
    PriceSource,
    cost_record,
    failed_attempt_record,
    token_counts,
)
from routellm_core.fallback import (
    OnError,
    acall_with_fallback,
    astream_with_fallback,
    call_with_fallback,
    coerce_fallback,
    stream_with_fallback,
)
from routellm_core.nway.base import NWayDecision
from routellm_core.nway.policy import NWayPool, check_adapter_settings, coerce_lambdas, routed_models
from routellm_core.policy import (
    FAILURE_POLICIES,
    PolicyDecision,
    check_setting,
    decide_lazy,
    get_default_router,
)
from routellm_core.queries import check_query_text, query_from_turns
from routellm_core.routers.base import Router

from llamaindex_routellm.events import (
    RoutingCostEvent,
    RoutingFallbackEvent,
    decision_event,
)

dispatcher = get_dispatcher(__name__)
Decision = Union[PolicyDecision, NWayDecision]

THRESHOLD_KWARG = "routellm_threshold"
STRONG_FRACTION_KWARG = "routellm_strong_fraction"
LAMBDAS_KWARG = "routellm_lambdas"
_SETTING_KWARGS = (THRESHOLD_KWARG, STRONG_FRACTION_KWARG, LAMBDAS_KWARG)
_DECISION_KWARG = "routellm_decision"
# (owner id, query text, routing kwargs) set by predict()/stream() for the calls inside
_call_ctx: ContextVar[Optional[tuple[int, Optional[str], dict[str, Any]]]] = ContextVar(
    "routellm_llamaindex_call", default=None)
_overrides: ContextVar[Optional[dict[str, Any]]] = ContextVar("routellm_llamaindex_overrides", default=None)


@contextlib.contextmanager
def routing_overrides(*, threshold: float | None = None, strong_fraction: float | None = None,
                      lambdas: dict[str, float] | None = None) -> Iterator[None]:
    """Route every ``RouteLLM`` call inside the block with this threshold or strong share (a
    strong/weak pair), or these ``lambdas`` (N-way).

    For calls that take no extra arguments, e.g. ``query_engine.query(...)``::

        with routing_overrides(threshold=0.7):
            query_engine.query("...")
    """
    if lambdas is not None:
        if threshold is not None or strong_fraction is not None:
            raise ValueError("give lambdas (N-way) or threshold / strong_fraction (strong/weak), not both")
        values: dict[str, Any] = {LAMBDAS_KWARG: coerce_lambdas(lambdas)}
    else:
        check_setting(threshold, strong_fraction)
        values = {THRESHOLD_KWARG: threshold, STRONG_FRACTION_KWARG: strong_fraction}
    token = _overrides.set(values)
    try:
        yield
    finally:
        _overrides.reset(token)


def llm_name(llm: Any) -> str:
    """An LLM's name: its metadata ``model_name``, else a ``model`` / ``model_name`` field, else its class."""
    try:
        name = llm.metadata.model_name
    except Exception:  # a metadata property that needs a client
        name = None
    if isinstance(name, str) and name and name != "unknown":
        return name
    for attr in ("model", "model_name", "model_id"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


def message_text(message: ChatMessage) -> str:
    """The text blocks of a message, joined by newlines ("" when it has none)."""
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock) and b.text)


def _usage(resp: Any) -> tuple[int, int] | None:
    """(input, output) tokens the model reported in ``raw`` or ``additional_kwargs``, if any."""
    candidates: list[Any] = []
    raw = getattr(resp, "raw", None)
    if raw is not None:
        if isinstance(raw, dict):
            candidates += [raw.get("usage"), raw.get("usage_metadata")]
        else:
            candidates += [getattr(raw, "usage", None), getattr(raw, "usage_metadata", None)]
    candidates.append(getattr(resp, "additional_kwargs", None))
    for usage in candidates:
        if usage is None:
            continue
        if not isinstance(usage, dict):
            usage = usage.model_dump() if hasattr(usage, "model_dump") else getattr(usage, "__dict__", {})
        inp = next((usage[k] for k in ("prompt_tokens", "input_tokens", "prompt_token_count") if k in usage), None)
        out = next((usage[k] for k in ("completion_tokens", "output_tokens", "candidates_token_count")
                    if k in usage), None)
        if isinstance(inp, int) and isinstance(out, int):
            return inp, out
    return None


def _output_text(resp: Any) -> str:
    if isinstance(resp, CompletionResponse):
        return resp.text or ""
    msg = resp.message
    text = message_text(msg)
    calls = msg.additional_kwargs.get("tool_calls")
    blocks = [b for b in msg.blocks if getattr(b, "block_type", None) == "tool_call"]
    if calls:
        text += json.dumps(calls, default=str)
    for b in blocks:
        text += f"{b.tool_name}{json.dumps(b.tool_kwargs, default=str)}"
    return text


class RouteLLM(FunctionCallingLLM):
    """A strong and a weak LlamaIndex LLM, or several, behind a learned router (RouteLLM, Tryage).

    For every call it scores the query and hands the *original* call to the chosen LLM: chat,
    complete, their streaming and async forms, and tool calling. The query is the last user turn
    (``query_from="all_user"`` or a callable for more); inside ``predict`` / ``stream`` (what
    query engines call) it is the prompt's ``query_str`` / ``question``, the user's question,
    not the whole templated prompt with retrieved context.

    Counted once: ``RouteLLM``'s own methods carry no LLM callback decorator and dispatch no LLM
    events; the chosen LLM's decorated call is the one ``TokenCountingHandler`` and LLM events
    see. Attach callback handlers to the child LLMs (or to ``Settings.callback_manager`` before
    building them). Each call dispatches a :class:`RoutingDecisionEvent` and, when it completes,
    a :class:`RoutingCostEvent`.

    Instantiate:
        .. code-block:: python

            from llamaindex_routellm import RouteLLM

            llm = RouteLLM(strong=OpenAI(model="gpt-4o"), weak=OpenAI(model="gpt-4o-mini"),
                           strong_fraction=0.3)     # or threshold=0.58
            pool = RouteLLM(models={"llama-3.1-nemotron-51b-instruct": big,
                                    "llama-3.1-8b-instruct": mid, "gemma-2-9b-it": small},
                            lambdas={"cost": 0.2})  # N-way: Tryage's objective

    Use:
        .. code-block:: python

            index.as_query_engine(llm=llm).query("...")
            llm.complete("...", routellm_threshold=0.6)        # per call
            strict = llm.with_routing(threshold=0.9)          # another engine, same router
            pool.complete("...", routellm_lambdas={"cost": 1.0})
            thrifty = pool.with_routing(lambdas={"cost": 1.0})

    ``router=None`` uses the embedded default, loaded once per process on first use and shared
    by reference, so building a ``RouteLLM`` is cheap.

    **Several models** (``models={name: LLM}``, names the N-way router knows) are routed by
    Tryage's objective ``argmax_m score(m) - sum_j lambda_j C_j(m)`` with the weights
    ``lambdas``; the route is the chosen name, the decision event a
    :class:`NWayRoutingDecisionEvent`, and the first model the reference savings are counted
    against.

    When the chosen LLM raises (timeout, rate limit, server error), another one is called as
    ``fallback`` says (default ``"auto"``: ``"weak_to_strong"`` for a pair, ``"next_best"`` by
    utility for several; see :mod:`routellm_core.fallback`), for streams only before the first chunk.
    Each failed attempt dispatches a :class:`RoutingCostEvent` with ``failed=True`` (charged 0)
    and a fallback a :class:`RoutingFallbackEvent`; the answer's ``additional_kwargs`` then
    hold ``routellm_fallback_from`` and the failed model's error.
    """

    strong: Optional[LLM] = Field(default=None, description="The strong (expensive) LLM.")
    weak: Optional[LLM] = Field(default=None, description="The weak (cheap) LLM.")
    models: Optional[dict[str, LLM]] = Field(
        default=None, description="Several LLMs to route among (N-way), by router model name.")
    router: Optional[Any] = Field(
        default=None, exclude=True,
        description="A loaded router (N-way for models=); None = the shared embedded default.")
    threshold: Optional[float] = Field(default=None, description="Strong exactly when win_rate >= threshold.")
    strong_fraction: Optional[float] = Field(
        default=None, description="Target share of strong calls, via the router's calibration table.")
    lambdas: Optional[dict[str, float]] = Field(
        default=None, description="N-way: constraint weights of Tryage's objective, e.g. {'cost': 0.2}.")
    costs: Optional[dict[str, float]] = Field(
        default=None, description="N-way: cost per call of each model (shorthand for a 'cost' constraint).")
    constraints: Optional[list[Any]] = Field(
        default=None, exclude=True, description="N-way: constraints keyed by the model names.")
    failure_policy: Optional[str] = Field(
        default=None, description=f"When the router fails: one of {FAILURE_POLICIES} (default 'strong'); "
                                  "N-way: a model name or 'raise' (default the first model).")
    query_from: Union[str, Callable[[list[ChatMessage]], str]] = Field(
        default="last_user", exclude=True,
        description="What to score: 'last_user' (RouteLLM), 'all_user', or a callable over the messages.")
    prompt_query_keys: tuple[str, ...] = Field(
        default=("query_str", "question"),
        description="Prompt variables of predict()/stream() that hold the user's question.")
    prices: Optional[Any] = Field(
        default=None, exclude=True,
        description="{model: (input_per_million, output_per_million)} or a PriceSource; else genai-prices.")
    fallback: Optional[Any] = Field(
        default="auto", exclude=True,
        description="When the chosen LLM raises: 'auto' (= 'weak_to_strong' for a pair, 'next_best' for "
                    "several models), 'weak_to_strong', 'strong_to_weak', 'both', 'next_best', 'none', "
                    "or a routellm_core.fallback policy object.")

    _prices: PriceSource = PrivateAttr()
    _fallback: Any = PrivateAttr()
    _pool: Optional[NWayPool] = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _validate_routing(self) -> RouteLLM:
        self._pool, self.failure_policy, self._fallback = check_adapter_settings(self)
        p = self.prices
        self._prices = p if isinstance(p, PriceSource) else PriceSource(p)
        return self

    # ------------------------------------------------------------------ identity
    @classmethod
    def class_name(cls) -> str:
        return "RouteLLM"

    def _children(self) -> dict[str, LLM]:
        """The routed models by route: ``strong`` / ``weak``, or the N-way names."""
        return routed_models(self)

    @property
    def metadata(self) -> LLMMetadata:
        """What every routed model can serve: the smallest context window and output size."""
        children = list(self._children().values())
        metas = [c.metadata for c in children]
        return LLMMetadata(
            context_window=min(m.context_window for m in metas),
            num_output=min(m.num_output for m in metas),
            is_chat_model=all(m.is_chat_model for m in metas),
            is_function_calling_model=all(m.is_function_calling_model for m in metas),
            model_name=f"routellm({'|'.join(llm_name(c) for c in children)})",
            system_role=metas[0].system_role,
        )

    def with_routing(self, *, threshold: float | None = None, strong_fraction: float | None = None,
                     lambdas: dict[str, float] | None = None) -> RouteLLM:
        """A copy routed with another threshold or strong share (a pair) or other ``lambdas``
        (N-way), sharing the models and the router."""
        if self._pool is not None:
            if lambdas is None or threshold is not None or strong_fraction is not None:
                raise ValueError("an N-way RouteLLM is routed by lambdas: give with_routing(lambdas=...)")
        elif lambdas is not None or (threshold is None) == (strong_fraction is None):
            raise ValueError("give exactly one of threshold or strong_fraction")
        return RouteLLM(
            strong=self.strong, weak=self.weak, models=self.models,
            router=self._pool.router if self._pool is not None else self.router,
            threshold=threshold, strong_fraction=strong_fraction, lambdas=lambdas, costs=self.costs,
            constraints=self.constraints, failure_policy=self.failure_policy,
            query_from=self.query_from, prompt_query_keys=self.prompt_query_keys,
            prices=self._prices, fallback=self._fallback, callback_manager=self.callback_manager,
            system_prompt=self.system_prompt, messages_to_prompt=self.messages_to_prompt,
            completion_to_prompt=self.completion_to_prompt,
        )

    # ------------------------------------------------------------------ routing
    def _router(self) -> Router:
        return self.router if self.router is not None else get_default_router()

    def _names(self) -> tuple[str, str]:
        return llm_name(self.strong), llm_name(self.weak)

    def _ctx(self) -> tuple[Optional[str], dict[str, Any]]:
        ctx = _call_ctx.get()
        if ctx is None or ctx[0] != id(self):
            return None, {}
        return ctx[1], ctx[2]

    def _setting(self, kwargs: dict[str, Any]) -> Any:
        """The call's setting, checked: ``(threshold, strong_fraction)`` for a pair (resolved once
        the router is loaded), the lambdas for N-way. The call's keyword arguments come first,
        then those of a ``predict()``, then :func:`routing_overrides`, then this model's own."""
        given = {k: kwargs.pop(k) for k in _SETTING_KWARGS if k in kwargs}
        wrong = [k for k, v in given.items() if v is not None and (k == LAMBDAS_KWARG) != (self._pool is not None)]
        if wrong:  # the call's own keyword (ambient settings of the other mode are for other models)
            mode = ("an N-way RouteLLM is routed by routellm_lambdas" if self._pool is not None else
                    "a strong/weak RouteLLM is routed by routellm_threshold or routellm_strong_fraction")
            raise ValueError(f"{wrong[0]!r} does not apply here: {mode}")
        for source in (given, self._ctx()[1], _overrides.get() or {}):
            if any(source.get(k) is not None for k in _SETTING_KWARGS):
                break
        else:
            source = {}
        if self._pool is not None:
            return self._pool.check_lambdas(coerce_lambdas(source.get(LAMBDAS_KWARG)))
        t, f = source.get(THRESHOLD_KWARG), source.get(STRONG_FRACTION_KWARG)
        if t is not None and f is not None:
            raise ValueError(f"give one of {THRESHOLD_KWARG!r} or {STRONG_FRACTION_KWARG!r}, not both")
        if t is None and f is None:
            t, f = self.threshold, self.strong_fraction
        return check_setting(t, f)

    def _decide_one(self, text: str, setting: Any) -> PolicyDecision | NWayDecision:
        if self._pool is not None:
            return self._pool.decide([text], lambdas=[setting])[0]
        name = "default" if self.router is None else self.router.name
        return decide_lazy(self._router, [text], settings=[setting], policy=self.failure_policy or "strong",
                           models=self._names(), router_name=name)[0]

    def _query(self, messages: Sequence[ChatMessage] | None, prompt: str | None) -> str:
        query, _ = self._ctx()
        if query is not None:
            return check_query_text(query, "the prompt's question")
        if messages is None:
            messages = [ChatMessage(role=MessageRole.USER, content=check_query_text(prompt, "the prompt"))]
        if callable(self.query_from):
            return check_query_text(self.query_from(list(messages)), "the text query_from returned")
        return query_from_turns([(m.role.value, message_text(m)) for m in messages], self.query_from)

    def decide(self, messages: Sequence[ChatMessage] | None = None, prompt: str | None = None,
               **kwargs: Any) -> PolicyDecision | NWayDecision:
        """The decision for ``messages`` (or a completion ``prompt``) without calling a model."""
        setting = self._setting(dict(kwargs))
        return self._decide_one(self._query(messages, prompt), setting)

    def _route(self, call: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
               kwargs: dict[str, Any]) -> tuple[Decision, str, dict[str, Any]]:
        kwargs = dict(kwargs)
        pinned = kwargs.pop(_DECISION_KWARG, None)
        if pinned is not None:  # decided in _prepare_chat_with_tools
            for k in _SETTING_KWARGS:
                kwargs.pop(k, None)
            return pinned[0], pinned[1], kwargs
        setting = self._setting(kwargs)
        d = self._decide_one(self._query(messages, prompt), setting)
        event = decision_event(d, call)
        dispatcher.event(event)
        return d, event.id_, kwargs

    async def _aroute(self, call: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
                      kwargs: dict[str, Any]) -> tuple[Decision, str, dict[str, Any]]:
        if _DECISION_KWARG in kwargs:
            return self._route(call, messages, prompt, kwargs)
        return await asyncio.to_thread(self._route, call, messages, prompt, kwargs)

    def _child(self, d: Decision) -> LLM:
        return self._children()[d.route]

    def _tool_child(self, d: Decision) -> FunctionCallingLLM:
        child = self._child(d)
        if not isinstance(child, FunctionCallingLLM) or not child.metadata.is_function_calling_model:
            raise TypeError(f"the {d.route} model {llm_name(child)!r} ({type(child).__name__}) does not "
                            "support tool calling; RouteLLM calls tools only when every routed model "
                            "is a function-calling LLM")
        return child

    # ------------------------------------------------------------------ recording
    def _tag(self, resp: Any, d: Decision) -> Any:
        resp.additional_kwargs = {**(resp.additional_kwargs or {}), **d.as_metadata()}
        return resp

    def _record(self, call: str, d: Decision, decision_id: str, resp: Any,
                messages: Sequence[ChatMessage] | None, prompt: str | None,
                usage: tuple[int, int] | None = None, text: str | None = None) -> None:
        usage = usage if usage is not None else _usage(resp)
        inp, out, estimated = token_counts(
            usage,
            prompt_texts=[message_text(m) for m in messages] if messages is not None else [prompt or ""],
            output_text=(text if text is not None else _output_text(resp)) if usage is None else None,
            chat=messages is not None,
        )
        record = cost_record(
            **d.record_fields(), input_tokens=inp, output_tokens=out, prices=self._prices,
            tokens_estimated=estimated, error_type=d.error_type, run_id=decision_id)
        dispatcher.event(RoutingCostEvent.from_record(record, call=call, decision_id=decision_id))

    def _policy(self, kwargs: dict[str, Any]) -> Any:
        """The fallback policy of a call; none for a call whose tools were formatted for the
        chosen model by :meth:`_prepare_chat_with_tools` (the others cannot read them)."""
        if _DECISION_KWARG in kwargs:
            return coerce_fallback("none", nway=self._pool is not None)
        return self._fallback

    def _on_error(self, call: str, decision_id: str) -> OnError:
        """Dispatch a failed-attempt cost event, and a fallback event when one follows."""

        def on_error(d: Decision, exc: BaseException, fallback: Decision | None) -> None:
            record = failed_attempt_record(**d.record_fields(), error=exc, run_id=decision_id)
            dispatcher.event(RoutingCostEvent.from_record(record, call=call, decision_id=decision_id))
            if fallback is not None:
                dispatcher.event(RoutingFallbackEvent.from_decision(fallback, call=call, decision_id=decision_id))

        return on_error

    def _wrap(self, call: str, d: Decision, decision_id: str, pairs: Any,
              messages: Sequence[ChatMessage] | None, prompt: str | None) -> Generator[Any, None, None]:
        last, usage, text = None, None, ""
        try:
            for used, chunk in pairs:
                d, last = used, chunk
                usage = _usage(chunk) or usage
                text = chunk.text if isinstance(chunk, CompletionResponse) else _output_text(chunk)
                yield self._tag(chunk, d)
        except GeneratorExit:  # the caller stopped reading: an answered call, charged for what it got
            self._record(call, d, decision_id, last, messages, prompt, usage=usage, text=text)
            raise
        except Exception as exc:
            if last is not None:  # broke after its first chunk (earlier failures are recorded already)
                self._on_error(call, decision_id)(d, exc, None)
            raise
        self._record(call, d, decision_id, last, messages, prompt, usage=usage, text=text)

    async def _awrap(self, call: str, d: Decision, decision_id: str, pairs: Any,
                     messages: Sequence[ChatMessage] | None,
                     prompt: str | None) -> AsyncGenerator[Any, None]:
        last, usage, text = None, None, ""
        try:
            async for used, chunk in pairs:
                d, last = used, chunk
                usage = _usage(chunk) or usage
                text = chunk.text if isinstance(chunk, CompletionResponse) else _output_text(chunk)
                yield self._tag(chunk, d)
        except GeneratorExit:  # the caller stopped reading: an answered call, charged for what it got
            self._record(call, d, decision_id, last, messages, prompt, usage=usage, text=text)
            raise
        except asyncio.CancelledError as exc:  # like a stop after chunks; before any, a cancelled attempt
            if last is not None:
                self._record(call, d, decision_id, last, messages, prompt, usage=usage, text=text)
            else:
                self._on_error(call, decision_id)(d, exc, None)
            raise
        except Exception as exc:
            if last is not None:  # broke after its first chunk (earlier failures are recorded already)
                self._on_error(call, decision_id)(d, exc, None)
            raise
        self._record(call, d, decision_id, last, messages, prompt, usage=usage, text=text)

    # ------------------------------------------------------------------ chat / complete
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        policy = self._policy(kwargs)
        d, did, kwargs = self._route("chat", messages, None, kwargs)
        resp, d = call_with_fallback(d, lambda dd: self._child(dd).chat(messages, **kwargs), policy,
                                     self._on_error("chat", did))
        self._record("chat", d, did, resp, messages, None)
        return self._tag(resp, d)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        d, did, kwargs = self._route("complete", None, prompt, kwargs)
        resp, d = call_with_fallback(d, lambda dd: self._child(dd).complete(prompt, formatted=formatted, **kwargs),
                                     self._fallback, self._on_error("complete", did))
        self._record("complete", d, did, resp, None, prompt)
        return self._tag(resp, d)

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        policy = self._policy(kwargs)
        d, did, kwargs = self._route("stream_chat", messages, None, kwargs)
        pairs = stream_with_fallback(d, lambda dd: self._child(dd).stream_chat(messages, **kwargs), policy,
                                     self._on_error("stream_chat", did))
        return self._wrap("stream_chat", d, did, pairs, messages, None)

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        d, did, kwargs = self._route("stream_complete", None, prompt, kwargs)
        pairs = stream_with_fallback(
            d, lambda dd: self._child(dd).stream_complete(prompt, formatted=formatted, **kwargs),
            self._fallback, self._on_error("stream_complete", did))
        return self._wrap("stream_complete", d, did, pairs, None, prompt)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        policy = self._policy(kwargs)
        d, did, kwargs = await self._aroute("achat", messages, None, kwargs)
        resp, d = await acall_with_fallback(d, lambda dd: self._child(dd).achat(messages, **kwargs), policy,
                                            self._on_error("achat", did))
        self._record("achat", d, did, resp, messages, None)
        return self._tag(resp, d)

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        d, did, kwargs = await self._aroute("acomplete", None, prompt, kwargs)
        resp, d = await acall_with_fallback(
            d, lambda dd: self._child(dd).acomplete(prompt, formatted=formatted, **kwargs),
            self._fallback, self._on_error("acomplete", did))
        self._record("acomplete", d, did, resp, None, prompt)
        return self._tag(resp, d)

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        policy = self._policy(kwargs)
        d, did, kwargs = await self._aroute("astream_chat", messages, None, kwargs)
        pairs = astream_with_fallback(d, lambda dd: self._child(dd).astream_chat(messages, **kwargs), policy,
                                      self._on_error("astream_chat", did))
        return self._awrap("astream_chat", d, did, pairs, messages, None)

    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        d, did, kwargs = await self._aroute("astream_complete", None, prompt, kwargs)
        pairs = astream_with_fallback(
            d, lambda dd: self._child(dd).astream_complete(prompt, formatted=formatted, **kwargs),
            self._fallback, self._on_error("astream_complete", did))
        return self._awrap("astream_complete", d, did, pairs, None, prompt)

    # ------------------------------------------------------------------ predict: route on the question
    @contextlib.contextmanager
    def _prompt_ctx(self, prompt: Any, prompt_args: dict[str, Any]) -> Iterator[None]:
        settings = {k: prompt_args.pop(k) for k in _SETTING_KWARGS if k in prompt_args}
        # the question is a prompt variable, or partially formatted into the template (Refine)
        variables = {**(getattr(prompt, "kwargs", None) or {}), **prompt_args}
        query = next((variables[k] for k in self.prompt_query_keys
                      if isinstance(variables.get(k), str) and variables[k].strip()), None)
        if query is None and not settings:
            yield
            return
        token = _call_ctx.set((id(self), query, settings))
        try:
            yield
        finally:
            _call_ctx.reset(token)

    def predict(self, prompt: Any, output_cls: Any = None, **prompt_args: Any) -> str:
        with self._prompt_ctx(prompt, prompt_args):
            return super().predict(prompt, output_cls=output_cls, **prompt_args)

    def stream(self, prompt: Any, output_cls: Any = None, **prompt_args: Any) -> Any:
        with self._prompt_ctx(prompt, prompt_args):
            return super().stream(prompt, output_cls=output_cls, **prompt_args)

    async def apredict(self, prompt: Any, output_cls: Any = None, **prompt_args: Any) -> str:
        with self._prompt_ctx(prompt, prompt_args):
            return await super().apredict(prompt, output_cls=output_cls, **prompt_args)

    async def astream(self, prompt: Any, output_cls: Any = None, **prompt_args: Any) -> Any:
        with self._prompt_ctx(prompt, prompt_args):
            return await super().astream(prompt, output_cls=output_cls, **prompt_args)

    # ------------------------------------------------------------------ tools
    @staticmethod
    def _tool_messages(user_msg: Any, chat_history: Any) -> list[ChatMessage]:
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
        elif user_msg is not None:
            messages.append(user_msg)
        return messages

    def chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                        verbose: bool = False, allow_parallel_tool_calls: bool = False,
                        tool_required: bool = False, **kwargs: Any) -> ChatResponse:
        messages = self._tool_messages(user_msg, chat_history)
        d, did, kwargs = self._route("chat_with_tools", messages, None, kwargs)
        self._tool_child(d)
        resp, d = call_with_fallback(d, lambda dd: self._tool_child(dd).chat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs),
            self._fallback, self._on_error("chat_with_tools", did))
        self._record("chat_with_tools", d, did, resp, messages, None)
        return self._tag(resp, d)

    async def achat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                               verbose: bool = False, allow_parallel_tool_calls: bool = False,
                               tool_required: bool = False, **kwargs: Any) -> ChatResponse:
        messages = self._tool_messages(user_msg, chat_history)
        d, did, kwargs = await self._aroute("achat_with_tools", messages, None, kwargs)
        self._tool_child(d)
        resp, d = await acall_with_fallback(d, lambda dd: self._tool_child(dd).achat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs),
            self._fallback, self._on_error("achat_with_tools", did))
        self._record("achat_with_tools", d, did, resp, messages, None)
        return self._tag(resp, d)

    def stream_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                               verbose: bool = False, allow_parallel_tool_calls: bool = False,
                               tool_required: bool = False, **kwargs: Any) -> ChatResponseGen:
        messages = self._tool_messages(user_msg, chat_history)
        d, did, kwargs = self._route("stream_chat_with_tools", messages, None, kwargs)
        self._tool_child(d)
        pairs = stream_with_fallback(d, lambda dd: self._tool_child(dd).stream_chat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs),
            self._fallback, self._on_error("stream_chat_with_tools", did))
        return self._wrap("stream_chat_with_tools", d, did, pairs, messages, None)

    async def astream_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                      chat_history: Any = None, verbose: bool = False,
                                      allow_parallel_tool_calls: bool = False,
                                      tool_required: bool = False, **kwargs: Any) -> ChatResponseAsyncGen:
        messages = self._tool_messages(user_msg, chat_history)
        d, did, kwargs = await self._aroute("astream_chat_with_tools", messages, None, kwargs)
        self._tool_child(d)
        pairs = astream_with_fallback(d, lambda dd: self._tool_child(dd).astream_chat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs),
            self._fallback, self._on_error("astream_chat_with_tools", did))
        return self._awrap("astream_chat_with_tools", d, did, pairs, messages, None)

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                 chat_history: Any = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict[str, Any]:
        """Decide now and let the chosen model format the tools; the following ``chat`` /
        ``stream_chat`` with these kwargs goes to that model (the decision travels in them)."""
        messages = self._tool_messages(user_msg, chat_history)
        d, did, kwargs = self._route("chat_with_tools", messages, None, kwargs)
        prepared = self._tool_child(d)._prepare_chat_with_tools_compat(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs)
        return {**prepared, _DECISION_KWARG: (d, did)}

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list[ToolSelection]:
        """Parse tool calls with the model that wrote ``response`` (read from its routing metadata)."""
        route = (response.additional_kwargs or {}).get("routellm_route")
        children = self._children()
        if route not in children:
            raise ValueError(f"this response carries no routellm_route of this RouteLLM ({route!r}): it was "
                             "not produced by it, so the model that must parse its tool calls is unknown")
        child = children[route]
        if not isinstance(child, FunctionCallingLLM):
            raise TypeError(f"the {route} model {llm_name(child)!r} does not support tool calling")
        return child.get_tool_calls_from_response(response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)


__all__ = ["RouteLLM", "llm_name", "routing_overrides"]
