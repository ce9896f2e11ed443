"""Cost of routed calls: a callback handler and a context manager that fill a cost ledger.

Example:
    .. code-block:: python

        from langchain_routellm import get_routing_cost_callback

        with get_routing_cost_callback(prices={"my-big": (5.0, 15.0)}) as cb:
            llm.invoke("...")          # any routed call inside the block, chains included
        cb.totals.total_cost, cb.totals.savings, cb.totals.strong_share, cb.records
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, GenerationChunk, LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_routellm.runnables import PRICE_AS_KEY, PRICES_KEY
from routellm_core.adapter import CostLedgerView
from routellm_core.calls import answer_record, content_text, stream_failed_record, usage_of
from routellm_core.costs import CostLedger, PriceSource, record_fields_from_metadata


class _CallPrices:
    """The handler's own price table first, then the routed model's ``prices=``, then the
    handler's library prices (genai-prices): the same order as LlamaIndex's handler. A routed
    name is looked up, in each table, by the names it is priced as (``routellm_price_as``:
    ``"gpt-5@high"``, then ``"gpt-5"``; see :mod:`routellm_core.naming`), the first found winning."""

    def __init__(self, own: Mapping[str, Any] | None, handler: PriceSource,
                 price_as: Mapping[str, Any] | None = None) -> None:
        self.own = PriceSource(own, use_library=False, price_as=price_as)
        self.handler = handler.with_price_as(price_as)

    def cost(self, model: str, *, input_tokens: int, output_tokens: int) -> Decimal | None:
        for key in self.handler.keys(model):
            for source in (self.handler, self.own):
                if key in source.prices:
                    return source.cost(key, input_tokens=input_tokens, output_tokens=output_tokens)
        return self.handler.cost(model, input_tokens=input_tokens, output_tokens=output_tokens)


class RoutingCostCallbackHandler(CostLedgerView, BaseCallbackHandler):
    """Records a :class:`~routellm_core.costs.CostRecord` for every routed chat-model call.

    A call is *routed* when its run carries ``routellm_route`` metadata (what
    :class:`~langchain_routellm.ChatRouteLLM` and :class:`~langchain_routellm.RouterRunnable`
    add to the chosen model's run). The counterfactual (``strong_cost``, and so ``savings``) is
    the strong model's price, or for N-way routing the reference model's (the first model).
    Prices: this handler's table first (it wins for the models it lists), then the routed
    model's own ``prices=`` (carried on its run as ``routellm_prices``), then genai-prices.
    Tokens come from the answer's ``usage_metadata``; where a model reports none they are
    estimated with tiktoken and the record says so. A routed run
    that raises is recorded as a failed attempt (``failed=True``); it is charged 0 (see
    :func:`~routellm_core.costs.failed_attempt_record`) unless its stream had sent output
    (``on_llm_new_token``): then it is charged for the prompt and that output
    (:func:`~routellm_core.calls.stream_failed_record`). A fallback's answer carries
    ``fallback_from``.

    Printing the handler shows a summary (in the manner of LangChain's OpenAI callback):
    calls, the strong share, tokens, the cost, what sending every call to the strong
    (reference) model would have cost, and the savings.

    Args:
        prices: ``{model: (input_per_million, output_per_million)}`` in dollars, or a
            :class:`~routellm_core.costs.PriceSource`; other models are priced by
            ``genai-prices``, unknown ones get cost ``None`` and a warning.
        ledger: where records go (a new :class:`CostLedger` by default).

    Example:
        >>> str(RoutingCostCallbackHandler()).splitlines()[0]
        'Routed calls: 0 (strong: 0, 0.0%)'
    """

    raise_error = False
    run_inline = True

    def __init__(self, prices: Mapping[str, tuple[float, float]] | PriceSource | None = None,
                 *, ledger: CostLedger | None = None) -> None:
        super().__init__()
        self.prices = prices if isinstance(prices, PriceSource) else PriceSource(prices)
        self.ledger = ledger if ledger is not None else CostLedger()
        self._runs: dict[UUID, tuple[dict[str, Any], list[str]]] = {}
        self._streamed: dict[UUID, list[ChatGenerationChunk]] = {}  # what each routed run has sent so far
        self._lock = threading.Lock()

    def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], *, run_id: UUID,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not metadata or "routellm_route" not in metadata:
            return
        texts = [content_text(m.content) for m in (messages[0] if messages else [])]
        with self._lock:
            self._runs[run_id] = (dict(metadata), texts)

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], *,
                         chunk: GenerationChunk | ChatGenerationChunk | None = None, run_id: UUID,
                         **kwargs: Any) -> None:
        """Keep what a routed run streams: if it then raises, it is charged for it."""
        if run_id not in self._runs:
            return
        if not isinstance(chunk, ChatGenerationChunk):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token or ""))
        with self._lock:
            self._streamed.setdefault(run_id, []).append(chunk)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, response: LLMResult | None = None,
                     **kwargs: Any) -> None:
        """A routed call whose model raised is recorded as a failed attempt: charged 0, or, when
        its stream had sent output, for the prompt and that output; a stream the caller stopped
        reading (``GeneratorExit``) as an answered call, with what was generated until then."""
        with self._lock:
            started = self._runs.pop(run_id, None)
            streamed = self._streamed.pop(run_id, [])
        if started is None:
            return
        # what it streamed: langchain-core's merged chunks when it gives them, else the tokens seen here
        partial = response.generations[:1] if response is not None and len(response.generations) > 1 else []
        if isinstance(error, GeneratorExit):
            self._add_answer(started, LLMResult(generations=partial), run_id)
            return
        if isinstance(error, asyncio.CancelledError) and response is not None and any(response.generations):
            self._add_answer(started, response, run_id)  # a stream cancelled after its first chunk
            return
        if not partial and streamed:
            partial = [[_merged(streamed)]]
        usage, out_text = _usage_and_text(LLMResult(generations=partial))
        self.ledger.add(stream_failed_record(
            record_fields_from_metadata(started[0]), error, usage=usage, prompt_texts=started[1],
            output_text=out_text, prices=self._prices_for(started[0]), run_id=str(run_id)))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            started = self._runs.pop(run_id, None)
            self._streamed.pop(run_id, None)
        if started is not None:
            self._add_answer(started, response, run_id)

    def _add_answer(self, started: tuple[dict[str, Any], list[str]], response: LLMResult, run_id: UUID) -> None:
        meta, prompt_texts = started
        usage, out_text = _usage_and_text(response)
        self.ledger.add(answer_record(
            record_fields_from_metadata(meta), usage=usage, prompt_texts=prompt_texts, output_text=out_text,
            prices=self._prices_for(meta), run_id=str(run_id), error_type=meta.get("routellm_error_type")))

    def _prices_for(self, meta: Mapping[str, Any]) -> Any:  # a PriceSource, or _CallPrices that prices like one
        own, price_as = meta.get(PRICES_KEY), meta.get(PRICE_AS_KEY)
        return _CallPrices(own, self.prices, price_as) if own or price_as else self.prices


def _merged(chunks: list[ChatGenerationChunk]) -> ChatGenerationChunk:
    """The chunks a run streamed as one (text joined, usage added, tool-call chunks merged)."""
    return chunks[0] + chunks[1:] if len(chunks) > 1 else chunks[0]


def _usage_and_text(response: LLMResult) -> tuple[tuple[int, int] | None, str]:
    """The usage a response reports (or ``None``) and its text, tool-call arguments included."""
    usage = None
    out_text = ""
    for gens in response.generations:
        for g in gens:
            if isinstance(g, ChatGeneration):
                usage = usage or usage_of(getattr(g.message, "usage_metadata", None))
                out_text += g.text or ""
                tool_calls = getattr(g.message, "tool_calls", None) or []
                out_text += "".join(str(tc.get("args", "")) for tc in tool_calls)
    return usage, out_text


_cost_callback_var: ContextVar[RoutingCostCallbackHandler | None] = ContextVar(
    "routellm_cost_callback", default=None)
register_configure_hook(_cost_callback_var, inheritable=True)


@contextmanager
def get_routing_cost_callback(
    prices: Mapping[str, tuple[float, float]] | PriceSource | None = None,
    *, ledger: CostLedger | None = None,
) -> Iterator[RoutingCostCallbackHandler]:
    """Record the cost of every routed call made inside the ``with`` block.

    In the style of :func:`langchain_core.callbacks.get_usage_metadata_callback`: the handler is
    attached to every run started in this context (sync or async), so nothing has to be passed
    to the calls.
    """
    cb = RoutingCostCallbackHandler(prices, ledger=ledger)
    token = _cost_callback_var.set(cb)
    try:
        yield cb
    finally:
        _cost_callback_var.reset(token)
