"""``RouterRunnable``: a learned strong/weak decision in front of any two runnables.

The routing machinery here is shared with :class:`~langchain_routellm.ChatRouteLLM`: per-call
thresholds from ``config["configurable"]``, one router call per batch, and transparent
delegation (the chosen runnable's own run is the one LangChain records, with the decision
added as tags and metadata).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import ensure_config, get_config_list, run_in_executor
from pydantic import ConfigDict, Field, model_validator

from routellm_core.policy import (
    FAILURE_POLICIES,
    PolicyDecision,
    check_routing_settings,
    decide_many,
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


def with_decision(output: Any, decision: PolicyDecision) -> Any:
    """A message output with the decision added to its ``response_metadata``; others as is."""
    if isinstance(output, (BaseMessage, BaseMessageChunk)) and hasattr(output, "response_metadata"):
        return output.model_copy(
            update={"response_metadata": {**output.response_metadata, **decision.as_metadata()}}
        )
    return output


class _RoutingMixin:
    """Fields and logic shared by :class:`RouterRunnable` and ``ChatRouteLLM``."""

    router: Router | None
    threshold: float | None
    strong_fraction: float | None
    failure_policy: str

    def _router(self) -> Router:
        return self.router if self.router is not None else get_default_router()

    def _names(self) -> tuple[str, str]:
        raise NotImplementedError

    def _query_text(self, input: Any) -> str:
        raise NotImplementedError

    def _threshold_for(self, config: RunnableConfig) -> float:
        conf = config.get("configurable") or {}
        t, f = conf.get(THRESHOLD_KEY), conf.get(STRONG_FRACTION_KEY)
        if t is not None and f is not None:
            raise ValueError(f"give one of configurable {THRESHOLD_KEY!r} or {STRONG_FRACTION_KEY!r}, not both")
        if t is None and f is None:
            t, f = self.threshold, self.strong_fraction
        return self._router().resolve_threshold(t, f)

    def _decide(self, inputs: Sequence[Any], configs: Sequence[RunnableConfig],
                return_exceptions: bool = False) -> list[PolicyDecision | Exception]:
        """One decision per input, scoring all the valid ones in a single router call."""
        out: list[PolicyDecision | Exception | None] = [None] * len(inputs)
        texts, ths, idx = [], [], []
        for i, (inp, cfg) in enumerate(zip(inputs, configs)):
            try:
                ths.append(self._threshold_for(cfg))
                texts.append(self._query_text(inp))
                idx.append(i)
            except Exception as exc:
                if not return_exceptions:
                    raise
                if len(ths) > len(texts):
                    ths.pop()
                out[i] = exc
        if texts:
            for i, d in zip(idx, decide_many(self._router(), texts, thresholds=ths,
                                             policy=self.failure_policy, models=self._names())):
                out[i] = d
        return out  # type: ignore[return-value]


def _split(inputs: Sequence[Any], decisions: Sequence[Any], configs: Sequence[RunnableConfig]):
    groups: dict[str, list[int]] = {"strong": [], "weak": []}
    for i, d in enumerate(decisions):
        if isinstance(d, PolicyDecision):
            groups[d.route].append(i)
    return groups


def run_batch(self: Any, targets: dict[str, Runnable], inputs: list[Any], config: Any,
              return_exceptions: bool, kwargs: dict[str, Any]) -> list[Any]:
    configs = get_config_list(config, len(inputs))
    decisions = self._decide(inputs, configs, return_exceptions)
    outputs: list[Any] = list(decisions)
    for route, idx in _split(inputs, decisions, configs).items():
        if not idx:
            continue
        res = targets[route].batch(
            [inputs[i] for i in idx], [routed_config(configs[i], decisions[i]) for i in idx],
            return_exceptions=return_exceptions, **kwargs)
        for i, r in zip(idx, res):
            outputs[i] = r if isinstance(r, Exception) else with_decision(r, decisions[i])
    return outputs


async def arun_batch(self: Any, targets: dict[str, Runnable], inputs: list[Any], config: Any,
                     return_exceptions: bool, kwargs: dict[str, Any]) -> list[Any]:
    configs = get_config_list(config, len(inputs))
    decisions = await run_in_executor(configs[0] if configs else None, self._decide, inputs,
                                      configs, return_exceptions)
    outputs: list[Any] = list(decisions)
    groups = [(r, idx) for r, idx in _split(inputs, decisions, configs).items() if idx]
    results = await asyncio.gather(*(
        targets[route].abatch(
            [inputs[i] for i in idx], [routed_config(configs[i], decisions[i]) for i in idx],
            return_exceptions=return_exceptions, **kwargs)
        for route, idx in groups
    ))
    for (route, idx), res in zip(groups, results):
        for i, r in zip(idx, res):
            outputs[i] = r if isinstance(r, Exception) else with_decision(r, decisions[i])
    return outputs


def _check_routing_fields(obj: Any) -> Any:
    check_routing_settings(obj.threshold, obj.strong_fraction, obj.failure_policy)
    return obj


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
        return self._targets()[d.route].invoke(input, routed_config(config, d), **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        d = await run_in_executor(config, self.decide, input, config)
        return await self._targets()[d.route].ainvoke(input, routed_config(config, d), **kwargs)

    def batch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
              **kwargs: Any) -> list[Any]:
        return run_batch(self, self._targets(), inputs, config, return_exceptions, kwargs)

    async def abatch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
                     **kwargs: Any) -> list[Any]:
        return await arun_batch(self, self._targets(), inputs, config, return_exceptions, kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        d = self.decide(input, config)
        yield from self._targets()[d.route].stream(input, routed_config(config, d), **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[Any]:
        d = await run_in_executor(config, self.decide, input, config)
        async for chunk in self._targets()[d.route].astream(input, routed_config(config, d), **kwargs):
            yield chunk
