"""``RoutingCostEventHandler``: totals of routed calls from instrumentation events.

Example:
    .. code-block:: python

        from llama_index.core.instrumentation import get_dispatcher
        from llamaindex_routellm import RoutingCostEventHandler

        costs = RoutingCostEventHandler()
        get_dispatcher().add_event_handler(costs)      # the root dispatcher
        query_engine.query("...")
        t = costs.totals
        t.total_cost, t.strong_cost, t.savings, t.strong_share, t.by_model
"""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent

from llamaindex_routellm.events import RoutingCostEvent, RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core.costs import CostLedger, CostRecord, CostTotals


class RoutingCostEventHandler(BaseEventHandler):
    """Accumulates every :class:`RoutingCostEvent` into a core :class:`CostLedger`.

    Attach it to the root dispatcher (``get_dispatcher().add_event_handler(handler)``) or to
    ``get_dispatcher("llamaindex_routellm.llms")``; :meth:`detach` removes it again. It also
    keeps the :class:`RoutingDecisionEvent` s it saw in ``decisions`` and the
    :class:`RoutingFallbackEvent` s in ``fallbacks``.
    """

    ledger: CostLedger = Field(default_factory=CostLedger, description="Where records go.")
    decisions: list = Field(default_factory=list, description="RoutingDecisionEvents seen.")
    fallbacks: list = Field(default_factory=list, description="RoutingFallbackEvents seen.")

    @classmethod
    def class_name(cls) -> str:
        return "RoutingCostEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, RoutingCostEvent):
            self.ledger.add(event.to_record())
        elif isinstance(event, RoutingDecisionEvent):
            self.decisions.append(event)
        elif isinstance(event, RoutingFallbackEvent):
            self.fallbacks.append(event)

    @property
    def records(self) -> list[CostRecord]:
        return self.ledger.records

    @property
    def totals(self) -> CostTotals:
        """Total cost, strong (all-strong counterfactual) cost, savings, strong share, per model."""
        return self.ledger.totals()

    def detach(self, dispatcher_name: str | None = None) -> None:
        """Remove this handler from the dispatcher it was added to (the root by default)."""
        d = get_dispatcher(dispatcher_name) if dispatcher_name else get_dispatcher()
        d.event_handlers = [h for h in d.event_handlers if h is not self]


__all__ = ["RoutingCostEventHandler"]
