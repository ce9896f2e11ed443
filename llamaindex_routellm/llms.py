"""``RouteLLM``: a LlamaIndex LLM that routes every call to a strong or a weak LLM, or among several
(N-way)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import types
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, model_validator
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection

from llamaindex_routellm.events import RoutingCostEvent, RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core.calibration import check_strong_fraction, check_threshold
from routellm_core.calls import (
    answer_record,
    attempt_failed_record,
    check_arguments,
    content_text,
    first_settings,
    pop_settings,
    query_text,
    stream_failed_record,
    turn_text,
    usage_of,
)
from routellm_core.costs import PriceSource
from routellm_core.naming import model_name, routed_names
from routellm_core.queries import NoQueryText, check_query_mode, check_query_text
from routellm_core.routing import (
    Decision,
    FallbackPolicy,
    OnError,
    Pool,
    acall_with_fallback,
    add_note,
    astream_with_fallback,
    call_with_fallback,
    make_pool,
    stream_with_fallback,
)
from routellm_core.routing.follow import follow
from routellm_core.routing.pool import fresh_router

if TYPE_CHECKING:
    from routellm_core.learning.capture import TrafficCapture
    from routellm_core.learning.shadow import ShadowLabeller

# arguments that belong somewhere else, and where
MISPLACED: dict[str, str] = {
    "routellm_threshold": "it is a per-call keyword (llm.chat(..., routellm_threshold=0.7)); on the "
                          "constructor it is threshold=",
    "routellm_strong_fraction": "it is a per-call keyword (llm.chat(..., routellm_strong_fraction=0.3)); on "
                                "the constructor it is strong_fraction=",
    "routellm_lambdas": "it is a per-call keyword (llm.chat(..., routellm_lambdas={'cost': 1.0})); on the "
                        "constructor it is lambdas=",
    "config": "it is LangChain's per-call config; in LlamaIndex give routellm_* keywords on the call, or use "
              "routing_overrides(...)",
    "llm": "it is not a setting: give strong= and weak=, or models={name: llm}",
    "llms": "it is not a setting: give strong= and weak=, or models={name: llm}",
}


dispatcher = get_dispatcher(__name__)

_DECISION_KWARG = "routellm_decision"
# (owner id, query text, routing settings) set by predict()/stream() for the calls inside
_call_ctx: ContextVar[tuple[int, str | None, dict[str, Any]] | None] = ContextVar(
    "routellm_llamaindex_call", default=None)
_overrides: ContextVar[dict[str, Any] | None] = ContextVar("routellm_llamaindex_overrides", default=None)
# set inside structured_predict(): its answers are not shadowed
_structured: ContextVar[bool] = ContextVar("routellm_llamaindex_structured", default=False)
CALL_ID_KEY = "routellm_call_id"


@dataclass(frozen=True)
class _Call:
    """One routed call: the method, its decision (before any fallback), its id (the decision
    event's id, which the answer carries as ``routellm_call_id``), the routed query text
    (``None``: the call had none, its decision is the failure policy's), and whether shadow
    labelling may take it (not tool calls, not structured output)."""

    name: str
    decision: Decision
    id: str
    query: str | None
    shadow: bool


def _swap_member(llm: RouteLLM, router: Any) -> None:
    """Route ``llm`` with ``router`` from its next call (a new version of its ``RouterFromStore``;
    each member follows on its own, so ``llm.router`` stays the follower)."""
    pool = llm._pool.with_router(router)  # checked first: on failure the old pool stays
    with llm._shared.lock:
        llm._pool = pool


class _Shared:
    """What a ``RouteLLM`` and its :meth:`RouteLLM.with_routing` copies share: the capture, the
    shadow labeller, and the members that one :meth:`RouteLLM.swap_router` reaches."""

    def __init__(self, capture: TrafficCapture | None, shadow: ShadowLabeller | None) -> None:
        self.capture, self.shadow = capture, shadow
        self.lock = threading.Lock()
        self._members: list[weakref.ref[RouteLLM]] = []

    def add(self, llm: RouteLLM) -> None:
        with self.lock:
            self._members = [r for r in self._members if r() is not None] + [weakref.ref(llm)]

    def members(self) -> list[RouteLLM]:
        return [m for m in (r() for r in self._members) if m is not None]


def _check_shadow(shadow: Any) -> ShadowLabeller | None:
    if shadow is None:
        return None
    from routellm_core.learning.shadow import ShadowLabeller

    if not isinstance(shadow, ShadowLabeller):
        raise TypeError(f"shadow must be a routellm_core.learning.ShadowLabeller, got a {type(shadow).__name__}")
    return shadow


@contextlib.contextmanager
def routing_overrides(*, threshold: float | None = None, strong_fraction: float | None = None,
                      lambdas: Mapping[str, float] | None = None) -> Iterator[None]:
    """Route every ``RouteLLM`` call inside the block with this threshold or strong share (a
    strong/weak pair), or these ``lambdas`` (several models); each ``RouteLLM`` takes the
    settings of its own rule and ignores the others.

    For calls that take no extra arguments, e.g. ``query_engine.query(...)``::

        with routing_overrides(threshold=0.7):
            query_engine.query("...")
    """
    if lambdas is not None:
        if threshold is not None or strong_fraction is not None:
            raise ValueError("give lambdas (several models) or threshold / strong_fraction (a strong/weak "
                             "pair), not both")
        if not isinstance(lambdas, Mapping):
            raise TypeError(f"lambdas must be a mapping {{constraint name: weight}}, got {type(lambdas).__name__}")
        values: dict[str, Any] = {"lambdas": dict(lambdas)}
    else:
        if (threshold is None) == (strong_fraction is None):
            raise ValueError("give exactly one of threshold or strong_fraction (or lambdas)")
        if threshold is not None:
            values = {"threshold": check_threshold(threshold)}
        else:
            values = {"strong_fraction": check_strong_fraction(strong_fraction)}  # type: ignore[arg-type]
    token = _overrides.set(values)
    try:
        yield
    finally:
        _overrides.reset(token)


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


def _text(message: ChatMessage) -> str:
    return content_text(message.blocks)


def _reported_usage(resp: Any) -> tuple[int, int] | None:
    return usage_of(getattr(resp, "raw", None), getattr(resp, "additional_kwargs", None))


def _output_text(resp: Any) -> str:
    if isinstance(resp, CompletionResponse):
        return resp.text or ""
    msg = resp.message
    text = _text(msg)
    calls = msg.additional_kwargs.get("tool_calls")
    blocks = [b for b in msg.blocks if getattr(b, "block_type", None) == "tool_call"]
    if calls:
        text += json.dumps(calls, default=str)
    for b in blocks:
        text += f"{b.tool_name}{json.dumps(b.tool_kwargs, default=str)}"
    return text


def _name_model(exc: BaseException, where: str, call: str) -> None:
    """Add a note to ``exc`` naming the routed model that raised it (its type is kept, so
    callers' ``except`` clauses and fallback policies still match)."""
    if not isinstance(exc, Exception):
        return
    add_note(exc, f"routellm: raised by {where} (RouteLLM.{call})")


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

    strong: LLM | None = Field(default=None, description="The strong (expensive) LLM.")
    weak: LLM | None = Field(default=None, description="The weak (cheap) LLM.")
    models: dict[str, LLM] | None = Field(
        default=None, description="Several LLMs to route among (N-way), by your names for them (each a model "
                                  "the N-way router knows, runs one, or is mapped onto one by aliases=).")
    names: dict[str, Any] | None = Field(
        default=None, description="Your names of the strong and weak LLMs in decisions, costs and aliases=, e.g. "
                                  "{'strong': 'gpt-5@high', 'weak': 'gpt-5@minimal'} (priced as the part before "
                                  "'@', or the LLM's own model name); default the LLMs' own names.")
    router: Any | None = Field(
        default=None, exclude=True,
        description="A loaded router (N-way for models=), None / 'default' (the shared embedded default), "
                    "a checkpoint directory or Hub id ('hf://org/name'), or a RouterFromStore (the live "
                    "version of a traffic store, followed).")
    aliases: dict[str, str] | None = Field(
        default=None, description="{your model's name: the name the router knows}, "
                                  "e.g. {'gpt-4o': 'gpt-4-1106-preview'}.")
    threshold: float | None = Field(default=None, description="Strong exactly when win_rate >= threshold.")
    strong_fraction: float | None = Field(
        default=None, description="Target share of strong calls, via the router's calibration table.")
    lambdas: dict[str, float] | None = Field(
        default=None, description="N-way: constraint weights of Tryage's objective, e.g. {'cost': 0.2}.")
    costs: dict[str, float] | None = Field(
        default=None, description="N-way: cost per call of each model (shorthand for a 'cost' constraint).")
    constraints: list[Any] | None = Field(
        default=None, exclude=True, description="N-way: constraints keyed by the model names.")
    failure_policy: str | None = Field(
        default=None, description="When the router fails: the route to take ('strong' / 'weak', or a name "
                                  "of models=) or 'raise'; default the strong (or first) model.")
    query_from: str | Callable[[list[ChatMessage]], str] = Field(
        default="last_user", exclude=True,
        description="What to score: 'last_user' (RouteLLM), 'all_user', or a callable over the messages.")
    prompt_query_keys: tuple[str, ...] = Field(
        default=("query_str", "question"),
        description="Prompt variables of predict()/stream() that hold the user's question.")
    prices: Any | None = Field(
        default=None, exclude=True,
        description="{model: (input_per_million, output_per_million)} or a PriceSource; else genai-prices.")
    fallback: Any | None = Field(
        default="auto", exclude=True,
        description="When the chosen LLM raises: 'auto' (= 'weak_to_strong' for a pair, 'next_best' for "
                    "several models), 'weak_to_strong', 'strong_to_weak', 'both', 'next_best', 'none', "
                    "or a routellm_core.routing.FallbackPolicy.")

    capture: Any | None = Field(
        default=None, exclude=True,
        description="Store every answered call: a TrafficCapture, a TrafficStore, a SQLite path or a SQLAlchemy "
                    "URL (read back as the TrafficCapture).")
    shadow: Any | None = Field(
        default=None, exclude=True,
        description="A routellm_core.learning.ShadowLabeller: label a share of answered calls in the background.")

    _prices: PriceSource = PrivateAttr()
    _pool: Pool = PrivateAttr()
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
        self._pool = make_pool(
            **naming.pool_args(), router=self.router, threshold=self.threshold,
            strong_fraction=self.strong_fraction, lambdas=self.lambdas, costs=self.costs,
            constraints=self.constraints, failure_policy=self.failure_policy, fallback=self.fallback,
            aliases=self.aliases, prices=None if naming.pair else self._prices)
        if self.capture is not None:
            from routellm_core.learning.capture import coerce_capture

            self.capture = coerce_capture(self.capture, source="llamaindex")
        self.shadow = _check_shadow(self.shadow)
        self._shared = _Shared(self.capture, self.shadow)
        self._shared.add(self)
        follow(self.router, self, _swap_member, pool=self._pool)  # router=RouterFromStore(...): each new version
        return self

    # ------------------------------------------------------------------ identity
    @classmethod
    def class_name(cls) -> str:
        return "RouteLLM"

    @property
    def pool(self) -> Pool:
        """The routing core: the router, the models' names by route, the rule and the policies."""
        return self._pool

    def _children(self) -> dict[str, LLM]:
        """The routed LLMs by route: ``strong`` / ``weak``, or the names of ``models``."""
        if self.models is not None:
            return dict(self.models)
        return {"strong": self.strong, "weak": self.weak}  # type: ignore[dict-item]

    def _model_at(self, route: str) -> str:
        """``the weak model 'gpt-4o-mini'`` / ``the model 'gemma-2-9b-it'``: who is at fault."""
        name = self._pool.models[route]
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
            model_name=f"routellm({'|'.join(self._pool.models.values())})",
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
        self._pool.setting(threshold=threshold, strong_fraction=strong_fraction, lambdas=lambdas)  # the rule's check
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(threshold=threshold, strong_fraction=strong_fraction,
                    lambdas=None if lambdas is None else dict(lambdas),
                    prices=self._prices, fallback=self._pool.fallback)
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
            StoreError: an unknown rating, a score out of [0, 1], a call id that is empty, too
                long (over 64 characters) or names no captured call, a comment over 10,000
                characters.
        """
        capture = self._shared.capture
        if capture is None:
            raise ValueError("RouteLLM.rate() stores ratings in the traffic store of capture=, and this RouteLLM "
                             "has none: build it with capture='traffic.db' (a path, a SQLAlchemy URL or a "
                             "TrafficCapture)")
        capture.rate(call_id, rating, comment=comment)  # flushes the queued calls first

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
            pools = [m._pool.with_router(router) for m in members]  # all checked before any is swapped
            for member, pool in zip(members, pools):
                member._pool = pool
                member.router = router

    # ------------------------------------------------------------------ routing
    def _ctx(self) -> tuple[str | None, dict[str, Any]]:
        ctx = _call_ctx.get()
        if ctx is None or ctx[0] != id(self):
            return None, {}
        return ctx[1], ctx[2]

    def _setting(self, kwargs: dict[str, Any], pool: Pool | None = None) -> Any:
        """The call's setting, checked by the pool (default: this model's now), and the routing
        keywords removed from ``kwargs``. The call's keywords come first, then those of a
        ``predict()``, then :func:`routing_overrides` (its settings of this pool's rule), then
        this model's own."""
        pool = pool if pool is not None else self._pool
        own = pop_settings(kwargs)
        ambient = pool.own_settings(_overrides.get())
        return pool.setting(**first_settings(own, self._ctx()[1], ambient))

    def _query(self, messages: Sequence[ChatMessage] | None, prompt: str | None) -> str:
        query, _ = self._ctx()
        if query is not None:
            return check_query_text(query, "the prompt's question")
        if isinstance(messages, str):  # llm.route("...") as in LangChain: a prompt
            messages, prompt = None, messages
        if messages is None:
            messages = [ChatMessage(role=MessageRole.USER, content=check_query_text(prompt, "the prompt"))]
        messages = list(messages)
        bad = next((m for m in messages if not isinstance(m, ChatMessage)), None)
        if bad is not None:
            raise TypeError(f"messages must be llama_index ChatMessage objects, got {type(bad).__name__}: {bad!r:.80}")
        return query_text([(m.role.value, turn_text(m.blocks)) for m in messages], self.query_from,
                          messages=messages)

    def route(self, messages: Sequence[ChatMessage] | None = None, prompt: str | None = None, *,
              routellm_threshold: float | None = None, routellm_strong_fraction: float | None = None,
              routellm_lambdas: Mapping[str, float] | None = None) -> Decision:
        """The decision for ``messages`` (or a completion ``prompt``, also given as a bare string)
        without calling a model."""
        setting = self._setting({"routellm_threshold": routellm_threshold,
                                 "routellm_strong_fraction": routellm_strong_fraction,
                                 "routellm_lambdas": routellm_lambdas})
        return self._pool.route([self._query(messages, prompt)], [setting])[0]

    def _prepare(self, call: str, pool: Pool, messages: Sequence[ChatMessage] | None, prompt: str | None,
                 kwargs: dict[str, Any]) -> tuple[_Call | None, Any, str]:
        """The cheap part of routing, before the router (``kwargs`` loses the routing keywords):
        ``(the call, None, "")`` for a call decided by :meth:`_prepare_chat_with_tools` or by the
        failure policy (no text to route on: images only), else
        ``(None, setting, query text)``."""
        pinned = kwargs.pop(_DECISION_KWARG, None)
        if pinned is not None:  # decided in _prepare_chat_with_tools
            pop_settings(kwargs)
            return _Call(call, pinned.decision, pinned.id, pinned.query, shadow=False), None, ""
        setting = self._setting(kwargs, pool)
        try:
            return None, setting, self._query(messages, prompt)
        except NoQueryText as exc:  # images only: the failure policy decides (or raises); nothing to learn from
            return self._decided(call, pool.unroutable(exc, setting), None, tools=False), None, ""

    def _decided(self, call: str, d: Decision, query: str | None, tools: bool) -> _Call:
        event = RoutingDecisionEvent.from_decision(d, call)
        dispatcher.event(event)
        return _Call(call, d, event.id_, query, shadow=query is not None and not tools and not _structured.get())

    def _route(self, call: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
               kwargs: dict[str, Any], tools: bool = False) -> tuple[_Call, dict[str, Any]]:
        kwargs = dict(kwargs)
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        pinned, setting, query = self._prepare(call, pool, messages, prompt, kwargs)
        if pinned is not None:
            return pinned, kwargs
        return self._decided(call, pool.route([query], [setting])[0], query, tools), kwargs

    async def _aroute(self, call: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
                      kwargs: dict[str, Any], tools: bool = False) -> tuple[_Call, dict[str, Any]]:
        """:meth:`_route` for async calls: the setting and query text on the event loop, then
        :meth:`Pool.aroute`, which scores the loop's concurrent calls together in one thread."""
        kwargs = dict(kwargs)
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        pinned, setting, query = self._prepare(call, pool, messages, prompt, kwargs)
        if pinned is not None:
            return pinned, kwargs
        return self._decided(call, (await pool.aroute([query], [setting]))[0], query, tools), kwargs

    def _child(self, d: Decision) -> LLM:
        return self._children()[d.route]

    def _tool_child(self, d: Decision) -> FunctionCallingLLM:
        child = self._child(d)
        if not isinstance(child, FunctionCallingLLM) or not child.metadata.is_function_calling_model:
            raise TypeError(f"{self._model_at(d.route)} ({type(child).__name__}) does not support tool "
                            "calling; RouteLLM calls tools only when every routed model is a "
                            "function-calling LLM")
        return child

    # ------------------------------------------------------------------ recording
    def _tag(self, resp: Any, d: Decision, call_id: str) -> Any:
        resp.additional_kwargs = {**(resp.additional_kwargs or {}), **d.as_metadata(), CALL_ID_KEY: call_id}
        return resp

    def _record(self, c: _Call, d: Decision, resp: Any, messages: Sequence[ChatMessage] | None,
                prompt: str | None, usage: tuple[int, int] | None = None, text: str | None = None,
                finished: bool = True) -> None:
        """Dispatch the answer's cost event and hand the call to ``capture`` and ``shadow``
        (``finished=False``: a stream the caller stopped, not shadowed)."""
        usage = usage if usage is not None else _reported_usage(resp)
        answer = text if text is not None else _output_text(resp)
        record = answer_record(
            d.record_fields(), usage=usage,
            prompt_texts=[_text(m) for m in messages] if messages is not None else [prompt or ""],
            output_text=answer if usage is None else None,
            prices=self._prices, run_id=c.id, chat=messages is not None, error_type=d.error_type)
        dispatcher.event(RoutingCostEvent.from_record(record, call=c.name, decision_id=c.id))
        shared = self._shared
        if c.query is None:  # no text was routed on (images only): nothing to capture or shadow
            return
        if shared.capture is not None:  # queued for a background thread; never raises
            shared.capture.record(c.id, query=c.query, decision=d, record=record,
                                  source=shared.capture.source or "llamaindex")
        # a fallback's other model is the one that just failed on this query: not asked again
        if shared.shadow is not None and finished and c.shadow and d.fallback_from is None:
            shared.shadow.submit(d, query=c.query, answer=answer, models=self._children(), call_id=c.id)

    def _policy(self, kwargs: dict[str, Any]) -> FallbackPolicy:
        """The fallback policy of a call; none for a call whose tools were formatted for the
        chosen model by :meth:`_prepare_chat_with_tools` (the others cannot read them)."""
        if _DECISION_KWARG in kwargs:
            return FallbackPolicy.coerce("none")
        return self._pool.fallback

    def _on_error(self, c: _Call) -> OnError:
        """Dispatch a failed-attempt cost event, and a fallback event when one follows; note on
        the exception which model raised it. Failed attempts are not captured."""

        def on_error(d: Decision, exc: BaseException, fallback: Decision | None) -> None:
            _name_model(exc, self._model_at(d.route), c.name)
            record = attempt_failed_record(d.record_fields(), exc, run_id=c.id)
            dispatcher.event(RoutingCostEvent.from_record(record, call=c.name, decision_id=c.id))
            if fallback is not None:
                dispatcher.event(RoutingFallbackEvent.from_decision(fallback, call=c.name, decision_id=c.id))

        return on_error

    def _broke(self, c: _Call, d: Decision, exc: BaseException, messages: Sequence[ChatMessage] | None,
               prompt: str | None, usage: tuple[int, int] | None, text: str) -> None:
        """Dispatch the cost event of a stream that raised after its first chunk: a failed
        attempt, charged for the prompt and the output it sent (0 if it sent none)."""
        _name_model(exc, self._model_at(d.route), c.name)
        record = stream_failed_record(
            d.record_fields(), exc, usage=usage, output_text=text, prices=self._prices, run_id=c.id,
            prompt_texts=[_text(m) for m in messages] if messages is not None else [prompt or ""],
            chat=messages is not None)
        dispatcher.event(RoutingCostEvent.from_record(record, call=c.name, decision_id=c.id))

    def _wrap(self, c: _Call, pairs: Any, messages: Sequence[ChatMessage] | None,
              prompt: str | None) -> Generator[Any, None, None]:
        d, last, usage, text = c.decision, None, None, ""
        try:
            for used, chunk in pairs:
                d, last = used, chunk
                usage = _reported_usage(chunk) or usage
                text = chunk.text if isinstance(chunk, CompletionResponse) else _output_text(chunk)
                yield self._tag(chunk, d, c.id)
        except GeneratorExit:  # the caller stopped reading: an answered call, charged for what it got
            self._record(c, d, last, messages, prompt, usage=usage, text=text, finished=False)
            raise
        except Exception as exc:
            if last is not None:  # broke after its first chunk (earlier failures are recorded already)
                self._broke(c, d, exc, messages, prompt, usage, text)
            raise
        self._record(c, d, last, messages, prompt, usage=usage, text=text)

    async def _awrap(self, c: _Call, pairs: Any, messages: Sequence[ChatMessage] | None,
                     prompt: str | None) -> AsyncGenerator[Any, None]:
        d, last, usage, text = c.decision, None, None, ""
        try:
            async for used, chunk in pairs:
                d, last = used, chunk
                usage = _reported_usage(chunk) or usage
                text = chunk.text if isinstance(chunk, CompletionResponse) else _output_text(chunk)
                yield self._tag(chunk, d, c.id)
        except GeneratorExit:  # the caller stopped reading: an answered call, charged for what it got
            self._record(c, d, last, messages, prompt, usage=usage, text=text, finished=False)
            raise
        except asyncio.CancelledError as exc:  # like a stop after chunks; before any, a cancelled attempt
            if last is not None:
                self._record(c, d, last, messages, prompt, usage=usage, text=text, finished=False)
            else:
                self._on_error(c)(d, exc, None)
            raise
        except Exception as exc:
            if last is not None:  # broke after its first chunk (earlier failures are recorded already)
                self._broke(c, d, exc, messages, prompt, usage, text)
            raise
        self._record(c, d, last, messages, prompt, usage=usage, text=text)

    # ------------------------------------------------------------------ chat / complete
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        policy = self._policy(kwargs)
        c, kwargs = self._route("chat", messages, None, kwargs)
        resp, d = call_with_fallback(c.decision, lambda dd: self._child(dd).chat(messages, **kwargs), policy,
                                     self._on_error(c))
        self._record(c, d, resp, messages, None)
        return self._tag(resp, d, c.id)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        c, kwargs = self._route("complete", None, prompt, kwargs)
        resp, d = call_with_fallback(
            c.decision, lambda dd: self._child(dd).complete(prompt, formatted=formatted, **kwargs),
            self._pool.fallback, self._on_error(c))
        self._record(c, d, resp, None, prompt)
        return self._tag(resp, d, c.id)

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        policy = self._policy(kwargs)
        c, kwargs = self._route("stream_chat", messages, None, kwargs)
        pairs = stream_with_fallback(c.decision, lambda dd: self._child(dd).stream_chat(messages, **kwargs),
                                     policy, self._on_error(c))
        return self._wrap(c, pairs, messages, None)

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        c, kwargs = self._route("stream_complete", None, prompt, kwargs)
        pairs = stream_with_fallback(
            c.decision, lambda dd: self._child(dd).stream_complete(prompt, formatted=formatted, **kwargs),
            self._pool.fallback, self._on_error(c))
        return self._wrap(c, pairs, None, prompt)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        policy = self._policy(kwargs)
        c, kwargs = await self._aroute("achat", messages, None, kwargs)
        resp, d = await acall_with_fallback(c.decision, lambda dd: self._child(dd).achat(messages, **kwargs),
                                            policy, self._on_error(c))
        self._record(c, d, resp, messages, None)
        return self._tag(resp, d, c.id)

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        c, kwargs = await self._aroute("acomplete", None, prompt, kwargs)
        resp, d = await acall_with_fallback(
            c.decision, lambda dd: self._child(dd).acomplete(prompt, formatted=formatted, **kwargs),
            self._pool.fallback, self._on_error(c))
        self._record(c, d, resp, None, prompt)
        return self._tag(resp, d, c.id)

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        policy = self._policy(kwargs)
        c, kwargs = await self._aroute("astream_chat", messages, None, kwargs)
        pairs = astream_with_fallback(c.decision, lambda dd: self._child(dd).astream_chat(messages, **kwargs),
                                      policy, self._on_error(c))
        return self._awrap(c, pairs, messages, None)

    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        c, kwargs = await self._aroute("astream_complete", None, prompt, kwargs)
        pairs = astream_with_fallback(
            c.decision, lambda dd: self._child(dd).astream_complete(prompt, formatted=formatted, **kwargs),
            self._pool.fallback, self._on_error(c))
        return self._awrap(c, pairs, None, prompt)

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

    @staticmethod
    @contextlib.contextmanager
    def _structured_ctx() -> Iterator[None]:
        token = _structured.set(True)
        try:
            yield
        finally:
            _structured.reset(token)

    def structured_predict(self, output_cls: Any, prompt: Any, llm_kwargs: dict[str, Any] | None = None,
                           **prompt_args: Any) -> Any:
        with self._prompt_ctx(prompt, prompt_args), self._structured_ctx():
            return super().structured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)

    async def astructured_predict(self, output_cls: Any, prompt: Any, llm_kwargs: dict[str, Any] | None = None,
                                  **prompt_args: Any) -> Any:
        with self._prompt_ctx(prompt, prompt_args), self._structured_ctx():
            return await super().astructured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)

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
        c, kwargs = self._route("chat_with_tools", messages, None, kwargs, tools=True)
        self._tool_child(c.decision)
        resp, d = call_with_fallback(c.decision, lambda dd: self._tool_child(dd).chat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs),
            self._pool.fallback, self._on_error(c))
        self._record(c, d, resp, messages, None)
        return self._tag(resp, d, c.id)

    async def achat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                               verbose: bool = False, allow_parallel_tool_calls: bool = False,
                               tool_required: bool = False, **kwargs: Any) -> ChatResponse:
        messages = self._tool_messages(user_msg, chat_history)
        c, kwargs = await self._aroute("achat_with_tools", messages, None, kwargs, tools=True)
        self._tool_child(c.decision)
        resp, d = await acall_with_fallback(c.decision, lambda dd: self._tool_child(dd).achat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs),
            self._pool.fallback, self._on_error(c))
        self._record(c, d, resp, messages, None)
        return self._tag(resp, d, c.id)

    def stream_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                               verbose: bool = False, allow_parallel_tool_calls: bool = False,
                               tool_required: bool = False, **kwargs: Any) -> ChatResponseGen:
        messages = self._tool_messages(user_msg, chat_history)
        c, kwargs = self._route("stream_chat_with_tools", messages, None, kwargs, tools=True)
        self._tool_child(c.decision)
        pairs = stream_with_fallback(c.decision, lambda dd: self._tool_child(dd).stream_chat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs),
            self._pool.fallback, self._on_error(c))
        return self._wrap(c, pairs, messages, None)

    async def astream_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                      chat_history: Any = None, verbose: bool = False,
                                      allow_parallel_tool_calls: bool = False,
                                      tool_required: bool = False, **kwargs: Any) -> ChatResponseAsyncGen:
        messages = self._tool_messages(user_msg, chat_history)
        c, kwargs = await self._aroute("astream_chat_with_tools", messages, None, kwargs, tools=True)
        self._tool_child(c.decision)
        pairs = astream_with_fallback(c.decision, lambda dd: self._tool_child(dd).astream_chat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs),
            self._pool.fallback, self._on_error(c))
        return self._awrap(c, pairs, messages, None)

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                 chat_history: Any = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict[str, Any]:
        """Decide now and let the chosen model format the tools; the following ``chat`` /
        ``stream_chat`` with these kwargs goes to that model (the decision travels in them)."""
        messages = self._tool_messages(user_msg, chat_history)
        c, kwargs = self._route("chat_with_tools", messages, None, kwargs, tools=True)
        prepared = self._tool_child(c.decision)._prepare_chat_with_tools_compat(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs)
        return {**prepared, _DECISION_KWARG: c}

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
