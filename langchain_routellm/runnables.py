"""``RouterRunnable``: a learned strong/weak decision in front of any two runnables.

The routing machinery here is shared with :class:`~langchain_routellm.ChatRouteLLM`: per-call
thresholds from ``config["configurable"]``, one router call per batch, and transparent
delegation (the chosen runnable's own run is the one LangChain records, with the decision
added as tags and metadata).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import ensure_config, get_config_list, run_in_executor
from pydantic import ConfigDict, Field, model_validator

from routellm_core.fallback import (
    FallbackPolicy,
    acall_with_fallback,
    astream_with_fallback,
    call_with_fallback,
    coerce_fallback,
    note_fallback_failure,
    stream_with_fallback,
)
from routellm_core.policy import (
    FAILURE_POLICIES,
    PolicyDecision,
    check_routing_settings,
    check_setting,
    decide_lazy,
    get_default_router,
)
from routellm_core.queries import check_query_text, query_from_turns
from routellm_core.routers.base import Router

THRESHOLD_KEY = "routellm_threshold"
STRONG_FRACTION_KEY = "routellm_strong_fraction"


# --------------------------------------------------------------------------- query text
def message_text(message: BaseMessage) -> str:
    """The text of a message: its string content, or its text blocks joined by newlines."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(p for p in parts if p)


def query_from_messages(messages: Sequence[BaseMessage], query_from: Any = "last_user") -> str:
    """The text to route on: the last user turn (RouteLLM), all user turns, or a callable's."""
    if callable(query_from):
        return check_query_text(query_from(list(messages)), "the query_from callable's result")
    return query_from_turns([(m.type, message_text(m)) for m in messages], query_from)


def default_query_text(value: Any) -> str:
    """Query text of a runnable input: a string, a dict's ``question``/``query``/``input``, or
    the last user turn of messages or a prompt value."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("empty query: routing needs text")
        return value
    if isinstance(value, PromptValue):
        return query_from_messages(value.to_messages())
    if isinstance(value, dict):
        for key in ("question", "query", "input"):
            if isinstance(value.get(key), str):
                return default_query_text(value[key])
        raise TypeError(f"cannot find the query in a dict with keys {sorted(value)}; expected "
                        "'question', 'query' or 'input', or pass query=callable")
    if isinstance(value, (list, tuple)) and value and all(isinstance(m, BaseMessage) for m in value):
        return query_from_messages(value)
    raise TypeError(f"cannot take the query text out of a {type(value).__name__}; pass query=callable")


# --------------------------------------------------------------------------- shared machinery
def routed_config(config: RunnableConfig | None, decision: PolicyDecision) -> RunnableConfig:
    """``config`` plus the decision as a tag (``routellm:<route>``) and metadata."""
    config = ensure_config(config)
    return {
        **config,
        "tags": [*config.get("tags", []), f"routellm:{decision.route}"],
        "metadata": {**config.get("metadata", {}), **decision.as_metadata()},
    }


async def ainvoke_routed(targets: dict[str, Runnable], input: Any, config: RunnableConfig | None,
                         decision: Any, policy: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``(output, decision)`` of the chosen target's ``ainvoke`` (with model fallbacks). Each
    attempt runs with a run id known here (the first keeps one the caller gave), so that a
    cancelled call ends its model run (:func:`end_cancelled_runs`) instead of leaving it open."""
    started: list[RunnableConfig] = []

    def attempt(dd: Any) -> Any:
        cfg = routed_config(config, dd)
        cfg["run_id"] = (cfg.get("run_id") if not started else None) or uuid.uuid4()
        started.append(cfg)
        return targets[dd.route].ainvoke(input, cfg, **kwargs)

    try:
        return await acall_with_fallback(decision, attempt, policy)
    except asyncio.CancelledError:
        await end_cancelled_runs(started[-1:])
        raise


async def end_cancelled_runs(configs: Sequence[RunnableConfig]) -> None:
    """End the model runs of ``configs`` (each with a ``run_id``) as failed with ``CancelledError``.

    langchain-core reports no end and no error for a chat-model run whose task is cancelled in
    ``ainvoke`` / ``abatch`` (its ``agenerate`` awaits a gather that the cancellation
    interrupts), so callbacks never hear of it: a cost handler would lose the attempt and keep
    its state. This sends the ``on_llm_error`` that langchain-core sends for a cancelled
    stream; handlers that never saw a run start, or saw it end, ignore it.
    """
    from langchain_core.callbacks import AsyncCallbackManager
    from langchain_core.callbacks.manager import AsyncCallbackManagerForLLMRun

    for cfg in configs:
        manager = AsyncCallbackManager.configure(
            inheritable_callbacks=cfg.get("callbacks"), inheritable_tags=cfg.get("tags"),
            inheritable_metadata=cfg.get("metadata"))
        run = AsyncCallbackManagerForLLMRun(
            run_id=cfg["run_id"], handlers=manager.handlers,
            inheritable_handlers=manager.inheritable_handlers, parent_run_id=manager.parent_run_id,
            tags=manager.tags, inheritable_tags=manager.inheritable_tags,
            metadata=manager.metadata, inheritable_metadata=manager.inheritable_metadata)
        await asyncio.shield(run.on_llm_error(asyncio.CancelledError()))


def with_decision(output: Any, decision: PolicyDecision) -> Any:
    """A message output with the decision added to its ``response_metadata``; others as is."""
    if isinstance(output, (BaseMessage, BaseMessageChunk)) and hasattr(output, "response_metadata"):
        return output.model_copy(
            update={"response_metadata": {**output.response_metadata, **decision.as_metadata()}}
        )
    return output


class _RoutingMixin:
    """Fields and logic shared by :class:`RouterRunnable` and ``ChatRouteLLM``: per-call
    settings from ``config["configurable"]`` and one router call per batch. N-way routing
    (``ChatRouteLLM(models=...)``) overrides :meth:`_setting_for` and :meth:`_decide_texts`."""

    router: Router | None
    threshold: float | None
    strong_fraction: float | None
    failure_policy: str | None
    fallback: Any

    def _fallback_policy(self) -> Any:
        return coerce_fallback(self.fallback, nway=False)

    def _router(self) -> Router:
        return self.router if self.router is not None else get_default_router()

    def _names(self) -> tuple[str, str]:
        raise NotImplementedError

    def _query_text(self, input: Any) -> str:
        raise NotImplementedError

    def _setting_for(self, config: RunnableConfig) -> Any:
        """The call's (threshold, strong_fraction), checked; resolved once the router is loaded."""
        conf = config.get("configurable") or {}
        t, f = conf.get(THRESHOLD_KEY), conf.get(STRONG_FRACTION_KEY)
        if t is not None and f is not None:
            raise ValueError(f"give one of configurable {THRESHOLD_KEY!r} or {STRONG_FRACTION_KEY!r}, not both")
        if t is None and f is None:
            t, f = self.threshold, self.strong_fraction
        return check_setting(t, f)

    def _decide_texts(self, texts: list[str], settings: list[Any]) -> list[Any]:
        """One decision per text under its setting (see :meth:`_setting_for`), in one router call."""
        name = "default" if self.router is None else self.router.name
        return decide_lazy(self._router, texts, settings=settings, policy=self.failure_policy or "strong",
                           models=self._names(), router_name=name)

    def _decide(self, inputs: Sequence[Any], configs: Sequence[RunnableConfig],
                return_exceptions: bool = False) -> list[Any]:
        """One decision per input, scoring all the valid ones in a single router call; with
        ``return_exceptions`` an input's bad query or setting is its exception."""
        out: list[Any] = [None] * len(inputs)
        texts, settings, idx = [], [], []
        for i, (inp, cfg) in enumerate(zip(inputs, configs)):
            try:
                setting = self._setting_for(cfg)
                text = self._query_text(inp)
            except Exception as exc:
                if not return_exceptions:
                    raise
                out[i] = exc
                continue
            texts.append(text)
            settings.append(setting)
            idx.append(i)
        if texts:
            for i, d in zip(idx, self._decide_texts(texts, settings)):
                out[i] = d
        return out


class _BatchRound:
    """The state of a routed batch across its rounds: the chosen models, then fallbacks.

    The models are always called with ``return_exceptions=True`` so that one failure neither
    hides the other answers nor stops their fallbacks (as ``RunnableWithFallbacks.batch``).
    """

    def __init__(self, decisions: Sequence[Any], policy: FallbackPolicy) -> None:
        self.outputs: list[Any] = list(decisions)
        self.pending = {i: d for i, d in enumerate(decisions) if not isinstance(d, BaseException)}
        self.next_pending: dict[int, PolicyDecision] = {}
        self.first_errors: dict[int, BaseException] = {}
        self.policy = policy

    def groups(self) -> list[tuple[str, list[int]]]:
        groups: dict[str, list[int]] = {}
        for i, d in self.pending.items():
            groups.setdefault(d.route, []).append(i)
        return list(groups.items())

    def take(self, idx: list[int], results: Sequence[Any]) -> None:
        retry: dict[int, Any] = {}
        for i, r in zip(idx, results):
            d = self.pending[i]
            if not isinstance(r, Exception):
                self.outputs[i] = with_decision(r, d)
                continue
            fallback = self.policy.target(d, r)
            first = self.first_errors.get(i)
            if first is not None and self.policy.handles(r):  # a fallback failed too
                r = note_fallback_failure(first, d, r)
            if fallback is not None:
                self.first_errors.setdefault(i, r)
                retry[i] = fallback
            self.outputs[i] = r
        self.next_pending.update(retry)

    def rounds(self) -> Iterator[list[tuple[str, list[int]]]]:
        while self.pending:
            yield self.groups()
            self.pending, self.next_pending = self.next_pending, {}

    def result(self, return_exceptions: bool) -> list[Any]:
        if not return_exceptions:
            for out in self.outputs:
                if isinstance(out, Exception):
                    raise out
        return self.outputs


def run_batch(self: Any, targets: dict[str, Runnable], inputs: list[Any], config: Any,
              return_exceptions: bool, kwargs: dict[str, Any]) -> list[Any]:
    configs = get_config_list(config, len(inputs))
    batch = _BatchRound(self._decide(inputs, configs, return_exceptions), self._fallback_policy())
    for groups in batch.rounds():
        for route, idx in groups:
            res = targets[route].batch(
                [inputs[i] for i in idx], [routed_config(configs[i], batch.pending[i]) for i in idx],
                return_exceptions=True, **kwargs)
            batch.take(idx, res)
    return batch.result(return_exceptions)


async def arun_batch(self: Any, targets: dict[str, Runnable], inputs: list[Any], config: Any,
                     return_exceptions: bool, kwargs: dict[str, Any]) -> list[Any]:
    configs = get_config_list(config, len(inputs))
    decisions = await run_in_executor(configs[0] if configs else None, self._decide, inputs,
                                      configs, return_exceptions)
    batch = _BatchRound(decisions, self._fallback_policy())
    for n, groups in enumerate(batch.rounds()):
        # run ids known here, to end the runs of a cancelled round; the first round keeps the caller's
        round_configs = {route: [{**routed_config(configs[i], batch.pending[i]),
                                  "run_id": (configs[i].get("run_id") if n == 0 else None) or uuid.uuid4()}
                                 for i in idx] for route, idx in groups}
        try:
            results = await asyncio.gather(*(
                targets[route].abatch([inputs[i] for i in idx], round_configs[route],
                                      return_exceptions=True, **kwargs)
                for route, idx in groups
            ))
        except asyncio.CancelledError:
            await end_cancelled_runs([c for cfgs in round_configs.values() for c in cfgs])
            raise
        for (_, idx), res in zip(groups, results):
            batch.take(idx, res)
    return batch.result(return_exceptions)


def _check_routing_fields(obj: Any) -> Any:
    check_routing_settings(obj.threshold, obj.strong_fraction, obj.failure_policy)
    obj.fallback = coerce_fallback(obj.fallback, nway=False)
    return obj


FALLBACK_DESCRIPTION = ("When the chosen model raises: 'weak_to_strong' (default; 'auto' is the same), "
                        "'strong_to_weak', 'both', 'none', or a routellm_core.fallback.FallbackPolicy.")


class RouterRunnable(_RoutingMixin, RunnableSerializable[Any, Any]):
    """Send each input to ``strong`` or ``weak`` by a learned router's win rate on its query.

    Unlike :class:`langchain_core.runnables.RouterRunnable`, which dispatches on an explicit
    ``{"key": ..., "input": ...}`` chosen by the caller, this one *decides* the branch itself:
    it takes the query text out of the input (``query``), scores it with the router, and calls
    ``strong`` when ``win_rate >= threshold``. The chosen runnable's run is the one LangChain
    records (no wrapper run), with the decision as tags and metadata.

    Example:
        .. code-block:: python

            from langchain_routellm import RouterRunnable

            rag = RouterRunnable(strong=expensive_rag_chain, weak=cheap_rag_chain,
                                 strong_fraction=0.3, query=lambda x: x["question"])
            rag.invoke({"question": "..."})
            rag.invoke({"question": "..."}, config={"configurable": {"routellm_threshold": 0.6}})
    """

    strong: Runnable = Field(description="Runnable for queries the router sends strong.")
    weak: Runnable = Field(description="Runnable for the other queries.")
    router: Router | None = Field(default=None, description="A loaded router; None = the shared embedded default.")
    threshold: float | None = Field(default=None, description="Strong when win_rate >= threshold.")
    strong_fraction: float | None = Field(default=None, description="Target share of strong calls (calibrated).")
    query: Callable[[Any], str] | None = Field(default=None, description="Takes the query text out of an input.")
    failure_policy: str = Field(default="strong", description=f"When the router fails: one of {FAILURE_POLICIES}.")
    fallback: FallbackPolicy | str | bool | None = Field(default="weak_to_strong", description=FALLBACK_DESCRIPTION)
    strong_name: str = Field(default="strong", description="Name of the strong branch in decisions and costs.")
    weak_name: str = Field(default="weak", description="Name of the weak branch in decisions and costs.")

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @model_validator(mode="after")
    def _validate(self) -> RouterRunnable:
        return _check_routing_fields(self)

    def _names(self) -> tuple[str, str]:
        return self.strong_name, self.weak_name

    def _query_text(self, input: Any) -> str:
        if self.query is None:
            return default_query_text(input)
        text = self.query(input)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"query function returned {text!r}; routing needs non-empty text")
        return text

    def _targets(self) -> dict[str, Runnable]:
        return {"strong": self.strong, "weak": self.weak}

    def decide(self, input: Any, config: RunnableConfig | None = None) -> PolicyDecision:
        """The decision for ``input`` under ``config``, without calling either runnable."""
        return self._decide([input], [ensure_config(config)])[0]  # type: ignore[return-value]

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        d = self.decide(input, config)
        targets = self._targets()
        out, _ = call_with_fallback(
            d, lambda dd: targets[dd.route].invoke(input, routed_config(config, dd), **kwargs),
            self._fallback_policy())
        return out

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        d = await run_in_executor(config, self.decide, input, config)
        out, _ = await ainvoke_routed(self._targets(), input, config, d, self._fallback_policy(),
                                      **kwargs)
        return out

    def batch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
              **kwargs: Any) -> list[Any]:
        return run_batch(self, self._targets(), inputs, config, return_exceptions, kwargs)

    async def abatch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
                     **kwargs: Any) -> list[Any]:
        return await arun_batch(self, self._targets(), inputs, config, return_exceptions, kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        d = self.decide(input, config)
        targets = self._targets()
        for _, chunk in stream_with_fallback(
                d, lambda dd: targets[dd.route].stream(input, routed_config(config, dd), **kwargs),
                self._fallback_policy()):
            yield chunk

    async def astream(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[Any]:
        d = await run_in_executor(config, self.decide, input, config)
        targets = self._targets()
        async for _, chunk in astream_with_fallback(
                d, lambda dd: targets[dd.route].astream(input, routed_config(config, dd), **kwargs),
                self._fallback_policy()):
            yield chunk
