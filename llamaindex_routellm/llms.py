"""``RouteLLM``: a LlamaIndex LLM that routes every call to a strong or a weak LLM, or among several
(N-way). Its call paths are in :mod:`llamaindex_routellm._calls`, where the routing settings of a
call come from in :mod:`llamaindex_routellm._overrides`."""

from __future__ import annotations

import contextlib
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, model_validator
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection

from llamaindex_routellm import _overrides
from llamaindex_routellm._calls import DECISION_KWARG, RoutedCalls, tool_messages
from llamaindex_routellm._calls import dispatcher as dispatcher  # importable from here, as before
from llamaindex_routellm._overrides import MISPLACED, routing_overrides
from routellm_core import adapter
from routellm_core.adapter import (
    CALL_ID_KEY as CALL_ID_KEY,  # importable from here, as before
)
from routellm_core.adapter import PoolHolder, check_capture, check_shadow, rate_call
from routellm_core.calls import check_arguments, pop_settings
from routellm_core.costs import PriceSource
from routellm_core.naming import model_name, routed_names
from routellm_core.queries import check_query_mode
from routellm_core.routing import Decision, Pool, make_pool
from routellm_core.routing.pool import fresh_router


class _Shared:
    """What a ``RouteLLM`` and its :meth:`RouteLLM.with_routing` copies share: the capture, the
    shadow labeller, and the members that one :meth:`RouteLLM.swap_router` reaches (each with
    its own pool, in its own :class:`~routellm_core.adapter.PoolHolder`)."""

    def __init__(self, capture: Any, shadow: Any) -> None:
        self.capture, self.shadow = capture, shadow
        self.lock = threading.Lock()
        self._members: list[weakref.ref[RouteLLM]] = []

    def add(self, llm: RouteLLM) -> None:
        with self.lock:
            self._members = [r for r in self._members if r() is not None] + [weakref.ref(llm)]

    def members(self) -> list[RouteLLM]:
        return [m for m in (r() for r in self._members) if m is not None]


def _asked_by_function_agent() -> bool:
    """Whether the caller of ``RouteLLM.metadata`` is a LlamaIndex ``FunctionAgent`` step, which
    checks ``is_function_calling_model`` and would stop with an error that names no model."""
    frame: types.FrameType | None = sys._getframe(2)  # this function <- metadata <- its caller
    for _ in range(2):
        if frame is None:
            return False
        if frame.f_code.co_name == "take_step":
            from llama_index.core.agent.workflow import FunctionAgent

            return isinstance(frame.f_locals.get("self"), FunctionAgent)
        frame = frame.f_back
    return False


def llm_name(llm: Any) -> str:
    """An LLM's name: a ``model_name`` / ``model`` / ``model_id`` field, else its metadata
    ``model_name``, else its class (:func:`routellm_core.naming.model_name`, the rule both
    adapters share)."""
    return model_name(llm)


class RouteLLM(RoutedCalls, FunctionCallingLLM):
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
            llm.route(prompt="...").route                     # "strong" / "weak", no model called

    ``router`` is a loaded router, ``None`` / ``"default"`` (the embedded default, loaded once per
    process on first use and shared by reference, so building a ``RouteLLM`` is cheap), or a
    checkpoint directory or Hub id (``"hf://org/name"``), loaded at construction, once per
    process. ``aliases`` map your models' names onto names the router knows
    (``{"gpt-4o": "gpt-4-1106-preview"}``). Unknown constructor arguments are errors.
    ``names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"}`` names the two LLMs (default:
    their own model names; two LLMs left with one name become ``"<name>@strong"`` /
    ``"<name>@weak"``, with a warning); a call is priced by its name, else by the model it runs
    (:mod:`routellm_core.naming`).

    **Several models** (``models={name: LLM}``, names the N-way router knows) are routed by
    Tryage's objective ``argmax_m score(m) - sum_j lambda_j C_j(m)`` with the weights
    ``lambdas``; the route is the chosen name, and the first model is the reference the savings
    are counted against.

    When the chosen LLM raises (timeout, rate limit, server error), another one is called as
    ``fallback`` says (default ``"auto"``: ``"weak_to_strong"`` for a pair, ``"next_best"`` by
    utility for several; see :mod:`routellm_core.routing.fallback`), for streams only before the
    first chunk. Each failed attempt dispatches a :class:`RoutingCostEvent` with ``failed=True``
    (charged 0; a stream that broke after output: charged for the prompt and that output) and a
    fallback a :class:`RoutingFallbackEvent`; the answer's ``additional_kwargs``
    then hold ``routellm_fallback_from`` and the failed model's error. An error that reaches the
    caller keeps its type and carries a note naming the model that raised it.

    **Learning from traffic.** Every answer (and every stream chunk) carries its call id in
    ``additional_kwargs["routellm_call_id"]``: the id of the call's
    :class:`RoutingDecisionEvent` (and of its cost records), the id ``rate()`` takes.
    ``capture=`` (a :class:`~routellm_core.learning.TrafficCapture`, a ``TrafficStore``, a
    SQLite path or a SQLAlchemy URL; redact with ``capture=TrafficCapture("t.db", redact=fn)``)
    stores each answered call (the routed query, the final decision after fallbacks, tokens and
    cost) from a background thread: it never blocks or fails the call, a store error is a logged
    warning. Calls on which every model raised are not stored; a stream is stored when it ends
    or the caller stops reading it. ``shadow=`` (a
    :class:`~routellm_core.learning.ShadowLabeller`) asks, for a share of answered calls, the
    model that was not chosen as well, in the background, and stores the judged battle; tool
    calls, structured output, streams the caller stopped and answers after a fallback are not
    shadowed. ``llm.rate(call_id, "up" | "down" | score)`` stores feedback; ``llm.swap_router(r)``
    routes with another router from the next call on (copies made by :meth:`with_routing` share
    ``capture``, ``shadow`` and swaps)::

        llm = RouteLLM(strong=big, weak=small, threshold=0.5,
                       capture=TrafficCapture("traffic.db", redact=mask_emails),
                       shadow=ShadowLabeller(judge, "traffic.db", fraction=0.05))
        resp = llm.chat(messages)
        llm.rate(resp.additional_kwargs["routellm_call_id"], "down")
        llm.swap_router("checkpoints/retrained")
    """

    strong: LLM | None = Field(default=None, description=adapter.STRONG_HELP)
    weak: LLM | None = Field(default=None, description=adapter.WEAK_HELP)
    models: dict[str, LLM] | None = Field(default=None, description=adapter.MODELS_HELP)
    names: dict[str, Any] | None = Field(default=None, description=adapter.NAMES_HELP)
    router: Any | None = Field(default=None, exclude=True, description=adapter.ROUTER_HELP)
    aliases: dict[str, str] | None = Field(default=None, description=adapter.ALIASES_HELP)
    threshold: float | None = Field(default=None, description=adapter.THRESHOLD_HELP)
    strong_fraction: float | None = Field(default=None, description=adapter.STRONG_FRACTION_HELP)
    lambdas: dict[str, float] | None = Field(default=None, description=adapter.LAMBDAS_HELP)
    costs: dict[str, float] | None = Field(default=None, description=adapter.COSTS_HELP)
    constraints: list[Any] | None = Field(default=None, exclude=True, description=adapter.CONSTRAINTS_HELP)
    failure_policy: str | None = Field(default=None, description=adapter.FAILURE_POLICY_HELP)
    query_from: str | Callable[[list[ChatMessage]], str] = Field(
        default="last_user", exclude=True,
        description="What to score: 'last_user' (RouteLLM), 'all_user', or a callable over the messages.")
    prompt_query_keys: tuple[str, ...] = Field(
        default=("query_str", "question"),
        description="Prompt variables of predict()/stream() that hold the user's question.")
    prices: Any | None = Field(default=None, exclude=True, description=adapter.PRICES_HELP)
    fallback: Any | None = Field(default="auto", exclude=True, description=adapter.FALLBACK_HELP)
    capture: Any | None = Field(default=None, exclude=True, description=adapter.CAPTURE_HELP)
    shadow: Any | None = Field(default=None, exclude=True, description=adapter.SHADOW_HELP)

    _prices: PriceSource = PrivateAttr()
    _routing: PoolHolder = PrivateAttr()
    _shared: _Shared = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _check_arguments(cls, data: Any) -> Any:
        return check_arguments(cls, data, hints=MISPLACED, ignore=("class_name",))

    @model_validator(mode="after")
    def _build_pool(self) -> RouteLLM:
        check_query_mode(self.query_from)
        naming = routed_names(strong=self.strong, weak=self.weak, models=self.models, names=self.names,
                              what="LLMs")  # one rule for both adapters (routellm_core.naming)
        p = self.prices
        self._prices = (p if isinstance(p, PriceSource) else PriceSource(p)).with_price_as(naming.price_as)
        self._routing = PoolHolder(make_pool(
            **naming.pool_args(), router=self.router, threshold=self.threshold,
            strong_fraction=self.strong_fraction, lambdas=self.lambdas, costs=self.costs,
            constraints=self.constraints, failure_policy=self.failure_policy, fallback=self.fallback,
            aliases=self.aliases, prices=None if naming.pair else self._prices))
        self.capture = check_capture(self.capture, source="llamaindex")
        self.shadow = check_shadow(self.shadow)
        self._shared = _Shared(self.capture, self.shadow)
        self._shared.add(self)
        # router=RouterFromStore(...): each member takes each new version on its own (self.router stays it)
        self._routing.follow(self.router)
        return self

    # ------------------------------------------------------------------ identity
    @classmethod
    def class_name(cls) -> str:
        return "RouteLLM"

    @property
    def pool(self) -> Pool:
        """The routing core: the router, the models' names by route, the rule and the policies."""
        return self._routing.pool

    def _children(self) -> dict[str, LLM]:
        """The routed LLMs by route: ``strong`` / ``weak``, or the names of ``models``."""
        if self.models is not None:
            return dict(self.models)
        return {"strong": self.strong, "weak": self.weak}  # type: ignore[dict-item]

    def _model_at(self, route: str) -> str:
        """``the weak model 'gpt-4o-mini'`` / ``the model 'gemma-2-9b-it'``: who is at fault."""
        name = self.pool.models[route]
        return f"the {route} model {name!r}" if route != name else f"the model {name!r}"

    @property
    def metadata(self) -> LLMMetadata:
        """What every routed model can serve: the smallest context window and output size."""
        metas = []
        for route, child in self._children().items():
            try:
                metas.append(child.metadata)
            except Exception as exc:
                raise ValueError(f"RouteLLM.metadata: {self._model_at(route)} ({type(child).__name__}) "
                                 f"could not give its metadata: {type(exc).__name__}: {exc}") from exc
        not_calling = [r for (r, child), m in zip(self._children().items(), metas)
                       if not (m.is_function_calling_model and isinstance(child, FunctionCallingLLM))]
        if not_calling and _asked_by_function_agent():
            route = not_calling[0]
            raise TypeError(f"{self._model_at(route)} ({type(self._children()[route]).__name__}) does not "
                            "support tool calling; a FunctionAgent needs RouteLLM's models to be "
                            "function-calling LLMs, every one of them (or use a ReActAgent)")
        return LLMMetadata(
            context_window=min(m.context_window for m in metas),
            num_output=min(m.num_output for m in metas),
            is_chat_model=all(m.is_chat_model for m in metas),
            is_function_calling_model=not not_calling,
            model_name=f"routellm({'|'.join(self.pool.models.values())})",
            system_role=metas[0].system_role,
        )

    def with_routing(self, *, threshold: float | None = None, strong_fraction: float | None = None,
                     lambdas: Mapping[str, float] | None = None) -> RouteLLM:
        """A copy routed with another threshold or strong share (a pair) or other ``lambdas``
        (several models), sharing the models, the router, ``capture`` and ``shadow``; a
        :meth:`swap_router` on either swaps both."""
        if threshold is None and strong_fraction is None and lambdas is None:
            raise ValueError("give with_routing a setting: threshold= or strong_fraction= (a strong/weak pair), "
                             "lambdas= (several models)")
        pool = self.pool
        pool.setting(threshold=threshold, strong_fraction=strong_fraction, lambdas=lambdas)  # the rule's check
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(threshold=threshold, strong_fraction=strong_fraction,
                    lambdas=None if lambdas is None else dict(lambdas),
                    prices=self._prices, fallback=pool.fallback)
        with self._shared.lock:  # a swap in progress finishes first, so the copy gets the new router
            data["router"] = self.router
        copy = type(self)(**data)
        copy._shared = self._shared
        self._shared.add(copy)
        return copy

    # ------------------------------------------------------------------ learning
    def rate(self, call_id: str, rating: str | float, comment: str | None = None) -> None:
        """Store a user's rating of an answered call in the traffic store of ``capture``.

        ``call_id`` is the answer's ``additional_kwargs["routellm_call_id"]``; ``rating`` is
        ``"up"`` / ``"down"`` or a score in [0, 1]. ``store.training_battles()`` turns a rated
        weak answer into a label ("down": the strong model was needed).

        Raises:
            ValueError: this ``RouteLLM`` has no ``capture``.
            TypeError: a call id that is not a non-empty str or UUID, a comment that is not a str, a
                rating that is neither a str nor a number.
            StoreError: an unknown rating, a score out of [0, 1], a call id that is too long (over
                64 characters) or names no captured call, a comment over 10,000 characters.
        """
        rate_call(self._shared.capture, call_id, rating, comment, owner="RouteLLM")

    def swap_router(self, router: Any) -> None:
        """Route with another router from the next call on, without a restart.

        ``router``: a loaded router, ``"default"``, or a checkpoint directory / Hub id, read from
        disk again (e.g. after ``routellm promote`` replaced it). Calls in flight finish on the old
        router. The copies made by :meth:`with_routing` (and the model a copy was made from) swap
        too; copies made otherwise (``model_copy``) do not.

        Raises:
            TypeError / ValueError: as ``router=`` of the constructor (a binary router for
                a strong/weak pair, an N-way one for ``models=``, a calibration table for a
                ``strong_fraction``), or a router that cannot score (an ``EncoderMismatchError``
                for a checkpoint whose encoder probe was edited); nothing is swapped then.
        """
        router = fresh_router(router)  # read once, for every copy
        with self._shared.lock:
            members = self._shared.members()
            pools = [m.pool.with_router(router) for m in members]  # all checked before any is swapped
            for member, pool in zip(members, pools):
                with member._routing.lock:
                    member._routing.pool = pool
                member.router = router

    def route(self, messages: Sequence[ChatMessage] | None = None, prompt: str | None = None, *,
              routellm_threshold: float | None = None, routellm_strong_fraction: float | None = None,
              routellm_lambdas: Mapping[str, float] | None = None) -> Decision:
        """The decision for ``messages`` (or a completion ``prompt``, also given as a bare string)
        without calling a model."""
        pool = self.pool
        setting = self._setting({"routellm_threshold": routellm_threshold,
                                 "routellm_strong_fraction": routellm_strong_fraction,
                                 "routellm_lambdas": routellm_lambdas}, pool)
        return pool.route([self._query(messages, prompt)], [setting])[0]

    # ------------------------------------------------------------------ chat / complete
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._call("chat", messages, None, kwargs, lambda llm, kw: llm.chat(messages, **kw))

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._call("complete", None, prompt, kwargs,
                          lambda llm, kw: llm.complete(prompt, formatted=formatted, **kw))

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream("stream_chat", messages, None, kwargs, lambda llm, kw: llm.stream_chat(messages, **kw))

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return self._stream("stream_complete", None, prompt, kwargs,
                            lambda llm, kw: llm.stream_complete(prompt, formatted=formatted, **kw))

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._acall("achat", messages, None, kwargs, lambda llm, kw: llm.achat(messages, **kw))

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return await self._acall("acomplete", None, prompt, kwargs,
                                 lambda llm, kw: llm.acomplete(prompt, formatted=formatted, **kw))

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return await self._astream("astream_chat", messages, None, kwargs,
                                   lambda llm, kw: llm.astream_chat(messages, **kw))

    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        return await self._astream("astream_complete", None, prompt, kwargs,
                                   lambda llm, kw: llm.astream_complete(prompt, formatted=formatted, **kw))

    # ------------------------------------------------------------------ predict: route on the question
    @contextlib.contextmanager
    def _prompt_ctx(self, prompt: Any, prompt_args: dict[str, Any]) -> Iterator[None]:
        settings = pop_settings(prompt_args)
        # the question is a prompt variable, or partially formatted into the template (Refine)
        variables = {**(getattr(prompt, "kwargs", None) or {}), **prompt_args}
        query = next((variables[k] for k in self.prompt_query_keys
                      if isinstance(variables.get(k), str) and variables[k].strip()), None)
        if query is None and not settings:
            yield
            return
        token = _overrides.call_context.set((id(self), query, settings))
        try:
            yield
        finally:
            _overrides.call_context.reset(token)

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

    def structured_predict(self, output_cls: Any, prompt: Any, llm_kwargs: dict[str, Any] | None = None,
                           **prompt_args: Any) -> Any:
        with self._prompt_ctx(prompt, prompt_args), _overrides.structured_call():
            return super().structured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)

    async def astructured_predict(self, output_cls: Any, prompt: Any, llm_kwargs: dict[str, Any] | None = None,
                                  **prompt_args: Any) -> Any:
        with self._prompt_ctx(prompt, prompt_args), _overrides.structured_call():
            return await super().astructured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)

    # ------------------------------------------------------------------ tools
    def chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                        verbose: bool = False, allow_parallel_tool_calls: bool = False,
                        tool_required: bool = False, **kwargs: Any) -> ChatResponse:
        return self._call(*self._tool_call("chat_with_tools", tools, user_msg, chat_history, kwargs, verbose=verbose,
                                           allow_parallel_tool_calls=allow_parallel_tool_calls,
                                           tool_required=tool_required), tools=True)

    async def achat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                               verbose: bool = False, allow_parallel_tool_calls: bool = False,
                               tool_required: bool = False, **kwargs: Any) -> ChatResponse:
        return await self._acall(*self._tool_call("achat_with_tools", tools, user_msg, chat_history, kwargs,
                                                  verbose=verbose, allow_parallel_tool_calls=allow_parallel_tool_calls,
                                                  tool_required=tool_required), tools=True)

    def stream_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                               verbose: bool = False, allow_parallel_tool_calls: bool = False,
                               tool_required: bool = False, **kwargs: Any) -> ChatResponseGen:
        return self._stream(*self._tool_call("stream_chat_with_tools", tools, user_msg, chat_history, kwargs,
                                             verbose=verbose, allow_parallel_tool_calls=allow_parallel_tool_calls,
                                             tool_required=tool_required), tools=True)

    async def astream_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                      chat_history: Any = None, verbose: bool = False,
                                      allow_parallel_tool_calls: bool = False,
                                      tool_required: bool = False, **kwargs: Any) -> ChatResponseAsyncGen:
        return await self._astream(*self._tool_call(
            "astream_chat_with_tools", tools, user_msg, chat_history, kwargs, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required), tools=True)

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                 chat_history: Any = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict[str, Any]:
        """Decide now and let the chosen model format the tools; the following ``chat`` /
        ``stream_chat`` with these kwargs goes to that model (the decision travels in them)."""
        c, kwargs = self._route("chat_with_tools", tool_messages(user_msg, chat_history), None, kwargs, tools=True)
        prepared = self._tool_child(c.decision)._prepare_chat_with_tools_compat(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs)
        return {**prepared, DECISION_KWARG: c}

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
            raise TypeError(f"{self._model_at(route)} ({type(child).__name__}) does not support tool calling")
        return child.get_tool_calls_from_response(response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)


__all__ = ["RouteLLM", "llm_name", "routing_overrides"]
