"""``RoutingCostEventHandler``: totals of routed calls from instrumentation events.

Example:
    .. code-block:: python

        from llama_index.core.instrumentation import get_dispatcher
        from llamaindex_routellm import RoutingCostEventHandler

        costs = RoutingCostEventHandler(prices={"my-big-model": (5.0, 15.0)})
        get_dispatcher().add_event_handler(costs)      # the root dispatcher
        query_engine.query("...")
        print(costs)                                    # calls, strong share, tokens, cost, savings
        t = costs.totals
        t.total_cost, t.strong_cost, t.savings, t.strong_share, t.by_model
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent

from llamaindex_routellm.events import RoutingCostEvent, RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core.adapter import CostLedgerView
from routellm_core.costs import CostLedger, CostRecord, PriceSource, repriced
from routellm_core.naming import base_model


class RoutingCostEventHandler(CostLedgerView, BaseEventHandler):
    """Accumulates every :class:`RoutingCostEvent` into a core :class:`CostLedger`.

    Attach it to the root dispatcher (``get_dispatcher().add_event_handler(handler)``) or to
    ``get_dispatcher("llamaindex_routellm.llms")``; :meth:`detach` removes it again. Its
    ``records``, ``totals`` and ``str`` are :class:`~routellm_core.adapter.CostLedgerView`'s. It also
    keeps the :class:`RoutingDecisionEvent` s it saw in ``decisions`` and the
    :class:`RoutingFallbackEvent` s in ``fallbacks``. ``print(handler)`` shows the totals.

    Prices: each event arrives priced by the ``RouteLLM`` that made it (its ``prices=``, else
    ``genai-prices``). With ``prices=`` here, the handler re-prices what it records: a model in
    this table (by its name, or the name's part before ``"@"``) is priced from it (the call's
    cost and, for the reference model, its all-strong cost); models it lacks keep the event's
    price. So the handler's table wins, and other handlers see the events unchanged.

    Args:
        prices: ``{model: (input_per_million, output_per_million)}`` in dollars, or a
            :class:`~routellm_core.costs.PriceSource` (its table is used).
    """

    ledger: CostLedger = Field(default_factory=CostLedger, description="Where records go.")
    decisions: list = Field(default_factory=list, description="RoutingDecisionEvents seen.")
    fallbacks: list = Field(default_factory=list, description="RoutingFallbackEvents seen.")
    prices: Mapping[str, Any] | PriceSource | None = Field(
        default=None, exclude=True,
        description="{model: (input_per_million, output_per_million)}: re-price the records of these models.")
    _prices: PriceSource | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        p = self.prices
        if p is not None:
            self._prices = p if isinstance(p, PriceSource) else PriceSource(dict(p), use_library=False)

    @classmethod
    def class_name(cls) -> str:
        return "RoutingCostEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, RoutingCostEvent):
            self.ledger.add(self._priced(event.to_record()))
        elif isinstance(event, RoutingDecisionEvent):
            self.decisions.append(event)
        elif isinstance(event, RoutingFallbackEvent):
            self.fallbacks.append(event)

    def _priced(self, r: CostRecord) -> CostRecord:
        """``r`` with the models of this handler's table priced from it (failed attempts charged
        nothing stay at 0; a stream that broke after output is re-priced as an answer)."""
        table = self._prices.prices if self._prices is not None else {}
        if not table:
            return r
        # a routed name is looked up as itself, then as the part before its "@" ("gpt-5@high": "gpt-5")
        source = self._prices.with_price_as(  # type: ignore[union-attr]
            {m: [base_model(m)] for m in (r.model, r.strong_model)})
        return repriced(r, source)

    def detach(self, dispatcher_name: str | None = None) -> None:
        """Remove this handler from the dispatcher it was added to (the root by default)."""
        d = get_dispatcher(dispatcher_name) if dispatcher_name else get_dispatcher()
        d.event_handlers = [h for h in d.event_handlers if h is not self]


__all__ = ["RoutingCostEventHandler"]
