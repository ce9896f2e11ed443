"""How ``RouteLLM`` makes a routed call, written once for every call form: route on the pool
taken once per call, call the chosen LLM with that pool's fallback policy, record the answer
(cost event, capture, shadow) and tag it with the decision. :class:`RoutedCalls` holds the four
paths (sync, async, sync stream, async stream) that ``RouteLLM``'s public methods go through."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM

from llamaindex_routellm import _overrides
from llamaindex_routellm.events import RoutingCostEvent, RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core.adapter import CALL_ID_KEY, hand_on
from routellm_core.calls import (
    answer_record,
    attempt_failed_record,
    content_text,
    first_settings,
    pop_settings,
    query_text,
    stream_failed_record,
    turn_text,
    usage_of,
)
from routellm_core.queries import NoQueryText, check_query_text
from routellm_core.routing import (
    Decision,
    FallbackPolicy,
    OnError,
    Pool,
    acall_with_fallback,
    add_note,
    astream_with_fallback,
    call_with_fallback,
    stream_with_fallback,
)

if TYPE_CHECKING:
    from routellm_core.adapter import PoolHolder
    from routellm_core.costs import PriceSource

# the dispatcher of RouteLLM's events, named after the module users know it by
dispatcher = get_dispatcher("llamaindex_routellm.llms")

DECISION_KWARG = "routellm_decision"  # carries a decision from _prepare_chat_with_tools to its chat
_NO_FALLBACK = FallbackPolicy.coerce("none")

# the chosen LLM's method, called with the call's keywords (routing keywords removed)
Invoke = Callable[[Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class RoutedCall:
    """One routed call: the method, its decision (before any fallback), its id (the decision
    event's id, which the answer carries as ``routellm_call_id``), the routed query text
    (``None``: the call had none, its decision is the failure policy's), whether shadow
    labelling may take it (not tool calls, not structured output), and the fallback policy of
    the pool that decided it."""

    name: str
    decision: Decision
    id: str
    query: str | None
    shadow: bool
    policy: FallbackPolicy


def message_text(message: ChatMessage) -> str:
    return content_text(message.blocks)


def reported_usage(resp: Any) -> tuple[int, int] | None:
    return usage_of(getattr(resp, "raw", None), getattr(resp, "additional_kwargs", None))


def output_text(resp: Any) -> str:
    """An answer's text, with its tool calls written out (what its output is priced by)."""
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


def name_model(exc: BaseException, where: str, call: str) -> None:
    """Add a note to ``exc`` naming the routed model that raised it (its type is kept, so
    callers' ``except`` clauses and fallback policies still match)."""
    if not isinstance(exc, Exception):
        return
    add_note(exc, f"routellm: raised by {where} (RouteLLM.{call})")


def tool_messages(user_msg: Any, chat_history: Any) -> list[ChatMessage]:
    """The messages of a tool call: the history, then the user's message (a str or a ChatMessage)."""
    messages = list(chat_history or [])
    if isinstance(user_msg, str):
        messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
    elif user_msg is not None:
        messages.append(user_msg)
    return messages


def _prompt_texts(messages: Sequence[ChatMessage] | None, prompt: str | None) -> list[str]:
    return [message_text(m) for m in messages] if messages is not None else [prompt or ""]


class RoutedCalls:
    """The routing, calling and recording of ``RouteLLM`` (mixed in before its LlamaIndex base).

    Every public call form goes through :meth:`_call`, :meth:`_acall`, :meth:`_stream` or
    :meth:`_astream`: ``messages`` (chat forms) or ``prompt`` (completion forms) is what is
    routed on and priced, ``invoke(llm, kwargs)`` calls the chosen LLM, and ``tools=True`` asks
    for a function-calling LLM."""

    if TYPE_CHECKING:
        _routing: PoolHolder
        _prices: PriceSource
        _shared: Any
        query_from: Any
        prompt_query_keys: tuple[str, ...]

        def _children(self) -> dict[str, LLM]: ...
        def _model_at(self, route: str) -> str: ...

    # ------------------------------------------------------------------ the four call paths
    def _call(self, name: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
              kwargs: dict[str, Any], invoke: Invoke, tools: bool = False) -> Any:
        c, kwargs = self._route(name, messages, prompt, kwargs, tools)
        resp, d = call_with_fallback(c.decision, lambda dd: invoke(self._pick(dd, tools), kwargs), c.policy,
                                     self._on_error(c))
        self._record(c, d, resp, messages, prompt)
        return self._tag(resp, d, c.id)

    async def _acall(self, name: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
                     kwargs: dict[str, Any], invoke: Invoke, tools: bool = False) -> Any:
        c, kwargs = await self._aroute(name, messages, prompt, kwargs, tools)
        resp, d = await acall_with_fallback(c.decision, lambda dd: invoke(self._pick(dd, tools), kwargs),
                                            c.policy, self._on_error(c))
        self._record(c, d, resp, messages, prompt)
        return self._tag(resp, d, c.id)

    def _stream(self, name: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
                kwargs: dict[str, Any], invoke: Invoke, tools: bool = False) -> Generator[Any, None, None]:
        c, kwargs = self._route(name, messages, prompt, kwargs, tools)
        pairs = stream_with_fallback(c.decision, lambda dd: invoke(self._pick(dd, tools), kwargs), c.policy,
                                     self._on_error(c))
        return self._wrap(c, pairs, messages, prompt)

    async def _astream(self, name: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
                       kwargs: dict[str, Any], invoke: Invoke, tools: bool = False) -> AsyncGenerator[Any, None]:
        c, kwargs = await self._aroute(name, messages, prompt, kwargs, tools)
        pairs = astream_with_fallback(c.decision, lambda dd: invoke(self._pick(dd, tools), kwargs), c.policy,
                                      self._on_error(c))
        return self._awrap(c, pairs, messages, prompt)

    @staticmethod
    def _tool_call(name: str, tools: Sequence[Any], user_msg: Any, chat_history: Any, kwargs: dict[str, Any],
                   **options: Any) -> tuple[str, list[ChatMessage], None, dict[str, Any], Invoke]:
        """The arguments of a call path for the tool-calling method ``name``: the chosen LLM's
        method of that name is called with the same tools, messages and ``options``."""
        return (name, tool_messages(user_msg, chat_history), None, kwargs,
                lambda llm, kw: getattr(llm, name)(tools, user_msg=user_msg, chat_history=chat_history,
                                                   **options, **kw))

    # ------------------------------------------------------------------ routing
    def _ctx(self) -> tuple[str | None, dict[str, Any]]:
        ctx = _overrides.call_context.get()
        if ctx is None or ctx[0] != id(self):
            return None, {}
        return ctx[1], ctx[2]

    def _setting(self, kwargs: dict[str, Any], pool: Pool | None = None) -> Any:
        """The call's setting, checked by the pool (default: this model's now), and the routing
        keywords removed from ``kwargs``. The call's keywords come first, then those of a
        ``predict()``, then :func:`routing_overrides` (its settings of this pool's rule), then
        this model's own."""
        pool = pool if pool is not None else self._routing.pool
        own = pop_settings(kwargs)
        ambient = pool.own_settings(_overrides.overrides.get())
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

    def _prepare(self, call: str, pool: Pool, messages: Sequence[ChatMessage] | None, prompt: str | None,
                 kwargs: dict[str, Any], tools: bool) -> tuple[RoutedCall | None, Any, str]:
        """The cheap part of routing, before the router (``kwargs`` loses the routing keywords):
        ``(the call, None, "")`` for a call decided by ``_prepare_chat_with_tools`` (no
        fallback: the others cannot read the tools formatted for the chosen model) or by the
        failure policy (no text to route on: images only), else ``(None, setting, query text)``."""
        pinned = kwargs.pop(DECISION_KWARG, None)
        if pinned is not None:
            pop_settings(kwargs)
            return RoutedCall(call, pinned.decision, pinned.id, pinned.query, False, _NO_FALLBACK), None, ""
        setting = self._setting(kwargs, pool)
        try:
            return None, setting, self._query(messages, prompt)
        except NoQueryText as exc:  # images only: the failure policy decides (or raises); nothing to learn from
            return self._decided(call, pool, pool.unroutable(exc, setting), None, tools=False), None, ""

    def _decided(self, call: str, pool: Pool, d: Decision, query: str | None, tools: bool) -> RoutedCall:
        event = RoutingDecisionEvent.from_decision(d, call)
        dispatcher.event(event)
        shadow = query is not None and not tools and not _overrides.structured.get()
        return RoutedCall(call, d, event.id_, query, shadow, pool.fallback)

    def _route(self, call: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
               kwargs: dict[str, Any], tools: bool = False) -> tuple[RoutedCall, dict[str, Any]]:
        kwargs = dict(kwargs)
        pool = self._routing.pool  # one pool for the whole call, even when the router is swapped meanwhile
        pinned, setting, query = self._prepare(call, pool, messages, prompt, kwargs, tools)
        c = pinned or self._decided(call, pool, pool.route([query], [setting])[0], query, tools)
        if tools:
            self._tool_child(c.decision)  # before any fallback: a model that cannot call tools is an error
        return c, kwargs

    async def _aroute(self, call: str, messages: Sequence[ChatMessage] | None, prompt: str | None,
                      kwargs: dict[str, Any], tools: bool = False) -> tuple[RoutedCall, dict[str, Any]]:
        """:meth:`_route` for async calls: the setting and query text on the event loop, then
        :meth:`Pool.aroute`, which scores the loop's concurrent calls together in one thread."""
        kwargs = dict(kwargs)
        pool = self._routing.pool  # one pool for the whole call, even when the router is swapped meanwhile
        pinned, setting, query = self._prepare(call, pool, messages, prompt, kwargs, tools)
        c = pinned or self._decided(call, pool, (await pool.aroute([query], [setting]))[0], query, tools)
        if tools:
            self._tool_child(c.decision)
        return c, kwargs

    def _pick(self, d: Decision, tools: bool) -> LLM:
        return self._tool_child(d) if tools else self._children()[d.route]

    def _tool_child(self, d: Decision) -> FunctionCallingLLM:
        child = self._children()[d.route]
        if not isinstance(child, FunctionCallingLLM) or not child.metadata.is_function_calling_model:
            raise TypeError(f"{self._model_at(d.route)} ({type(child).__name__}) does not support tool "
                            "calling; RouteLLM calls tools only when every routed model is a "
                            "function-calling LLM")
        return child

    # ------------------------------------------------------------------ recording
    @staticmethod
    def _tag(resp: Any, d: Decision, call_id: str) -> Any:
        resp.additional_kwargs = {**(resp.additional_kwargs or {}), **d.as_metadata(), CALL_ID_KEY: call_id}
        return resp

    def _record(self, c: RoutedCall, d: Decision, resp: Any, messages: Sequence[ChatMessage] | None,
                prompt: str | None, usage: tuple[int, int] | None = None, text: str | None = None,
                finished: bool = True) -> None:
        """Dispatch the answer's cost event and hand the call to ``capture`` and ``shadow``
        (``finished=False``: a stream the caller stopped, not shadowed)."""
        usage = usage if usage is not None else reported_usage(resp)
        answer = text if text is not None else output_text(resp)
        record = answer_record(
            d.record_fields(), usage=usage, prompt_texts=_prompt_texts(messages, prompt),
            output_text=answer if usage is None else None,
            prices=self._prices, run_id=c.id, chat=messages is not None, error_type=d.error_type)
        dispatcher.event(RoutingCostEvent.from_record(record, call=c.name, decision_id=c.id))
        if c.query is None:  # no text was routed on (images only): nothing to capture or shadow
            return
        # a fallback's other model is the one that just failed on this query: not asked again
        shadowed = finished and c.shadow and d.fallback_from is None
        hand_on(capture=self._shared.capture, shadow=self._shared.shadow, call_id=c.id, query=c.query, decision=d,
                record=record, answer=answer, shadow_models=self._children() if shadowed else None,
                source="llamaindex")

    def _on_error(self, c: RoutedCall) -> OnError:
        """Dispatch a failed-attempt cost event, and a fallback event when one follows; note on
        the exception which model raised it. Failed attempts are not captured."""

        def on_error(d: Decision, exc: BaseException, fallback: Decision | None) -> None:
            name_model(exc, self._model_at(d.route), c.name)
            record = attempt_failed_record(d.record_fields(), exc, run_id=c.id)
            dispatcher.event(RoutingCostEvent.from_record(record, call=c.name, decision_id=c.id))
            if fallback is not None:
                dispatcher.event(RoutingFallbackEvent.from_decision(fallback, call=c.name, decision_id=c.id))

        return on_error

    def _broke(self, c: RoutedCall, d: Decision, exc: BaseException, messages: Sequence[ChatMessage] | None,
               prompt: str | None, usage: tuple[int, int] | None, text: str) -> None:
        """Dispatch the cost event of a stream that raised after its first chunk: a failed
        attempt, charged for the prompt and the output it sent (0 if it sent none)."""
        name_model(exc, self._model_at(d.route), c.name)
        record = stream_failed_record(
            d.record_fields(), exc, usage=usage, output_text=text, prices=self._prices, run_id=c.id,
            prompt_texts=_prompt_texts(messages, prompt), chat=messages is not None)
        dispatcher.event(RoutingCostEvent.from_record(record, call=c.name, decision_id=c.id))

    def _wrap(self, c: RoutedCall, pairs: Iterator[tuple[Decision, Any]], messages: Sequence[ChatMessage] | None,
              prompt: str | None) -> Generator[Any, None, None]:
        sent = _Sent(self, c, messages, prompt)
        try:
            for used, chunk in pairs:
                yield sent.take(used, chunk)
        except GeneratorExit:  # the caller stopped reading: an answered call, charged for what it got
            sent.record(finished=False)
            raise
        except Exception as exc:
            sent.broke(exc)
            raise
        sent.record()

    async def _awrap(self, c: RoutedCall, pairs: AsyncIterator[tuple[Decision, Any]],
                     messages: Sequence[ChatMessage] | None, prompt: str | None) -> AsyncGenerator[Any, None]:
        sent = _Sent(self, c, messages, prompt)
        try:
            async for used, chunk in pairs:
                yield sent.take(used, chunk)
        except GeneratorExit:  # the caller stopped reading: an answered call, charged for what it got
            sent.record(finished=False)
            raise
        except asyncio.CancelledError as exc:  # like a stop after chunks; before any, a cancelled attempt
            if sent.last is not None:
                sent.record(finished=False)
            else:
                self._on_error(c)(sent.decision, exc, None)
            raise
        except Exception as exc:
            sent.broke(exc)
            raise
        sent.record()


class _Sent:
    """What a routed stream has sent so far: the decision that answers (a fallback's, once one
    took over), its last chunk, the usage it reported and its text."""

    def __init__(self, owner: RoutedCalls, c: RoutedCall, messages: Sequence[ChatMessage] | None,
                 prompt: str | None) -> None:
        self.owner, self.call, self.messages, self.prompt = owner, c, messages, prompt
        self.decision, self.last, self.text = c.decision, None, ""
        self.usage: tuple[int, int] | None = None

    def take(self, used: Decision, chunk: Any) -> Any:
        """Note ``chunk``, answered by ``used``, and return it tagged."""
        self.decision, self.last = used, chunk
        self.usage = reported_usage(chunk) or self.usage
        self.text = output_text(chunk)
        return self.owner._tag(chunk, used, self.call.id)

    def record(self, finished: bool = True) -> None:
        """Record the stream as answered (``finished=False``: the caller stopped it)."""
        self.owner._record(self.call, self.decision, self.last, self.messages, self.prompt, usage=self.usage,
                           text=self.text, finished=finished)

    def broke(self, exc: BaseException) -> None:
        """Record a stream that raised after its first chunk (earlier failures are recorded already)."""
        if self.last is not None:
            self.owner._broke(self.call, self.decision, exc, self.messages, self.prompt, self.usage, self.text)

__all__ = ["DECISION_KWARG", "RoutedCall", "RoutedCalls", "dispatcher", "tool_messages"]
