"""What a routed LangChain call reads off its input and writes on its config and output: the
query text of an input, the decision as tags and metadata on the chosen model's run and in the
answer's ``response_metadata``, the routed models' prices for the cost callback, and the end
of a cancelled run.

Example:
    >>> from langchain_core.messages import AIMessage, HumanMessage
    >>> default_query_text({"question": "What is 2 + 2?"})
    'What is 2 + 2?'
    >>> query_from_messages([HumanMessage("hi"), AIMessage("hello"), HumanMessage("why?")])
    'why?'
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config

from routellm_core.adapter import CALL_ID_KEY
from routellm_core.calls import query_text, turn_text
from routellm_core.costs import PriceSource
from routellm_core.queries import check_query_text
from routellm_core.routing import Decision

PRICES_KEY = "routellm_prices"
PRICE_AS_KEY = "routellm_price_as"  # {routed name: [names it is priced as]} (routellm_core.naming)


# --------------------------------------------------------------------------- query text
def query_from_messages(messages: Sequence[BaseMessage], query_from: Any = "last_user") -> str:
    """The text to route on: the last user turn (RouteLLM), all user turns, or a callable's."""
    return query_text([(m.type, turn_text(m.content)) for m in messages], query_from, messages=messages)


def default_query_text(value: Any) -> str:
    """Query text of a runnable input: a string, a dict's ``question``/``query``/``input``, or
    the last user turn of messages or a prompt value."""
    if isinstance(value, str):
        return check_query_text(value)
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


# --------------------------------------------------------------------------- prices
def price_table(prices: Mapping[str, tuple[float, float]] | PriceSource | None) -> dict[str, tuple[float, float]]:
    """``prices`` checked, as ``{model: (input_per_million, output_per_million)}`` (a
    :class:`PriceSource`'s own table)."""
    if prices is None:
        return {}
    source = prices if isinstance(prices, PriceSource) else PriceSource(prices)
    return {m: (float(i), float(o)) for m, (i, o) in source.prices.items()}


# --------------------------------------------------------------------------- the routed run
def routed_config(config: RunnableConfig | None, decision: Decision,
                  prices: Mapping[str, tuple[float, float]] | PriceSource | None = None) -> RunnableConfig:
    """``config`` plus the decision as a tag (``routellm:<route>``) and metadata, and the
    routed models' own prices (``routellm_prices``) and the names each is priced as
    (``routellm_price_as``, from a :class:`PriceSource`'s ``price_as``) for the cost callback."""
    config = ensure_config(config)
    meta = {**config.get("metadata", {}), **decision.as_metadata()}
    source = prices if isinstance(prices, PriceSource) else None
    table: Mapping[str, Any] = source.prices if source is not None else (prices or {})  # type: ignore[assignment]
    keys = {n: source.keys(n) if source is not None else (n,) for n in decision.models.values()}
    wanted = {k for ks in keys.values() for k in ks}
    own = {m: (float(p[0]), float(p[1])) for m, p in table.items() if m in wanted}
    if own:
        meta[PRICES_KEY] = own
    price_as = {n: list(ks[1:]) for n, ks in keys.items() if len(ks) > 1}
    if price_as:
        meta[PRICE_AS_KEY] = price_as
    return {**config, "tags": [*config.get("tags", []), f"routellm:{decision.route}"], "metadata": meta}


def with_decision(output: Any, decision: Decision, call_id: Any = None) -> Any:
    """An output with the decision (and the call id, ``routellm_call_id``, when given) in its
    message's ``response_metadata``: a message, or the ``raw`` message of
    ``with_structured_output(..., include_raw=True)``; others as is."""
    if isinstance(output, (BaseMessage, BaseMessageChunk)) and hasattr(output, "response_metadata"):
        meta = {**output.response_metadata, **decision.as_metadata()}
        if call_id is not None:
            meta[CALL_ID_KEY] = str(call_id)
        return output.model_copy(update={"response_metadata": meta})
    if isinstance(output, dict) and isinstance(output.get("raw"), BaseMessage):
        return {**output, "raw": with_decision(output["raw"], decision, call_id)}
    return output


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
        run_id = cfg.get("run_id")
        if run_id is None:  # not a run started here
            continue
        manager = AsyncCallbackManager.configure(
            inheritable_callbacks=cfg.get("callbacks"), inheritable_tags=cfg.get("tags"),
            inheritable_metadata=cfg.get("metadata"))
        run = AsyncCallbackManagerForLLMRun(
            run_id=run_id, handlers=manager.handlers,
            inheritable_handlers=manager.inheritable_handlers, parent_run_id=manager.parent_run_id,
            tags=manager.tags, inheritable_tags=manager.inheritable_tags,
            metadata=manager.metadata, inheritable_metadata=manager.inheritable_metadata)
        await asyncio.shield(run.on_llm_error(asyncio.CancelledError()))


__all__ = ["PRICES_KEY", "PRICE_AS_KEY", "default_query_text", "end_cancelled_runs", "price_table",
           "query_from_messages", "routed_config", "with_decision"]
