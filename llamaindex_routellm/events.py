"""Instrumentation events of routed calls: the routing decision and the call's cost.

They are dispatched by :class:`~llamaindex_routellm.RouteLLM` through LlamaIndex's
instrumentation (``get_dispatcher("llamaindex_routellm.llms")``, which propagates to the root
dispatcher), so any ``BaseEventHandler`` on the root dispatcher sees them next to the chosen
model's own ``LLMChatStartEvent`` / ``LLMChatEndEvent``.

Example:
    .. code-block:: python

        from llama_index.core.instrumentation import get_dispatcher
        from llama_index.core.instrumentation.event_handlers import BaseEventHandler
        from llamaindex_routellm import RoutingCostEvent, RoutingDecisionEvent

        class Printer(BaseEventHandler):
            def handle(self, event, **kwargs):
                if isinstance(event, RoutingDecisionEvent):
                    print(event.route, event.model, event.win_rate, event.threshold)
                elif isinstance(event, RoutingCostEvent):
                    print(event.model, event.input_tokens, event.output_tokens, event.cost)

        get_dispatcher().add_event_handler(Printer())
"""

from __future__ import annotations

from decimal import Decimal

from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.events import BaseEvent

from routellm_core.costs import CostRecord
from routellm_core.routing import Decision


class RoutingDecisionEvent(BaseEvent):
    """The router's decision for one call, dispatched before the chosen model is called: the
    one :class:`~routellm_core.routing.Decision`, for a strong/weak pair and for several models.

    A pair (``rule="threshold"``) fills ``win_rate`` / ``threshold`` and ``strong_model`` /
    ``weak_model``; several models (``rule="utility"``) fill ``scores`` / ``utilities`` /
    ``lambdas``, and ``strong_model`` is the reference (the first) model. ``win_rate`` is ``None``
    and ``scores`` empty when the router failed; then ``router_failed`` is true, the route is the
    failure policy's, and ``error_type`` / ``error_message`` say why.
    """

    call: str = Field(description="The routed method: chat, complete, stream_chat, chat_with_tools, ...")
    route: str = Field(description="'strong' / 'weak' for a pair; the chosen name for several models.")
    model: str = Field(description="Name of the chosen model.")
    router: str = Field(description="The router's name, e.g. 'sw_ranking' or 'quality'.")
    rule: str = Field(description="'threshold' (a pair) or 'utility' (several models).")
    models: dict[str, str] = Field(description="Every candidate: {route: model name}, in order.")
    candidates: list[str] = Field(description="The routes routed among, in order.")
    reference: str = Field(description="The route calls would take without routing (savings are counted "
                                       "against it): 'strong', or the first model.")
    strong_model: str = Field(description="Name of the strong model (several models: the reference model).")
    weak_model: str | None = Field(default=None, description="Name of the weak model (a pair only).")
    win_rate: float | None = Field(
        default=None, description="A pair: P(strong beats weak) for the query; None if the router failed.")
    threshold: float | None = Field(default=None, description="A pair: strong exactly when win_rate >= threshold.")
    scores: dict[str, float] = Field(default_factory=dict, description="Several models: predicted quality.")
    utilities: dict[str, float] = Field(
        default_factory=dict, description="Several models: score - sum_j lambda_j C_j of every candidate.")
    lambdas: dict[str, float] = Field(default_factory=dict, description="Several models: the constraint weights.")
    router_failed: bool = Field(default=False, description="The router raised; the failure policy routed.")
    error_type: str | None = Field(default=None, description="Exception type when the router failed.")
    error_message: str | None = Field(default=None, description="Exception message when the router failed.")

    @classmethod
    def class_name(cls) -> str:
        return "RoutingDecisionEvent"

    @classmethod
    def from_decision(cls, decision: Decision, call: str) -> RoutingDecisionEvent:
        d = decision
        return cls(
            call=call, route=d.route, model=d.model, router=d.router, rule=d.rule, models=dict(d.models),
            candidates=list(d.candidates), reference=d.reference, strong_model=d.strong_model,
            weak_model=d.weak_model, win_rate=d.win_rate, threshold=d.threshold, scores=dict(d.scores),
            utilities=dict(d.utilities), lambdas=dict(d.lambdas), router_failed=d.router_failed,
            error_type=d.error_type, error_message=d.error_message,
        )


class RoutingCostEvent(BaseEvent):
    """Tokens and dollars of one routed call, dispatched when the call completes.

    For streaming calls it comes after the stream is exhausted. A call whose model raised gets
    one with ``failed=True``, zero tokens and cost 0 (``error_type`` is the model's exception);
    a stream that raised after it had sent output is charged for the prompt and that output
    (as an answer, tokens estimated unless reported). When it falls back, the fallback's
    answer gets one with ``fallback_from`` set: one event per model call made. Tokens are the
    chosen model's reported usage; where it reports none they are estimated with tiktoken and
    ``tokens_estimated`` is true. ``strong_cost`` is the counterfactual: the same tokens priced
    at the strong model (N-way: at the reference model, the first of ``models``, named in
    ``strong_model``). A cost is ``None`` when the model has no known price.
    """

    call: str = Field(description="The routed method.")
    decision_id: str = Field(description="id_ of the RoutingDecisionEvent of this call.")
    route: str
    model: str
    strong_model: str
    win_rate: float | None
    threshold: float
    router: str
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: Decimal | None = Field(description="Dollars, or None when the model has no price.")
    strong_cost: Decimal | None = Field(description="The same tokens at the strong model's price.")
    router_failed: bool = False
    error_type: str | None = None
    failed: bool = Field(default=False, description="The model raised: a failed attempt, charged 0, or for "
                                                    "what its stream sent before it broke.")
    fallback_from: str | None = Field(
        default=None, description="On a fallback's answer: the route whose model raised first.")

    @classmethod
    def class_name(cls) -> str:
        return "RoutingCostEvent"

    @property
    def savings(self) -> Decimal | None:
        """``strong_cost - cost``, or ``None`` when either is unknown."""
        if self.cost is None or self.strong_cost is None:
            return None
        return self.strong_cost - self.cost

    @classmethod
    def from_record(cls, record: CostRecord, *, call: str, decision_id: str) -> RoutingCostEvent:
        return cls(
            call=call, decision_id=decision_id, route=record.route, model=record.model,
            strong_model=record.strong_model, win_rate=record.win_rate,
            threshold=record.threshold, router=record.router, input_tokens=record.input_tokens,
            output_tokens=record.output_tokens, tokens_estimated=record.tokens_estimated,
            cost=record.cost, strong_cost=record.strong_cost,
            router_failed=record.router_failed, error_type=record.error_type,
            failed=record.failed, fallback_from=record.fallback_from,
        )

    def to_record(self) -> CostRecord:
        """The event as the core's :class:`~routellm_core.costs.CostRecord`."""
        return CostRecord(
            route=self.route, model=self.model, win_rate=self.win_rate,
            threshold=self.threshold, router=self.router, input_tokens=self.input_tokens,
            output_tokens=self.output_tokens, tokens_estimated=self.tokens_estimated,
            cost=self.cost, strong_model=self.strong_model, strong_cost=self.strong_cost,
            router_failed=self.router_failed, error_type=self.error_type,
            run_id=self.decision_id, failed=self.failed, fallback_from=self.fallback_from,
        )


class RoutingFallbackEvent(BaseEvent):
    """The chosen model raised and another one is called instead (see ``fallback``); for several
    models both routes are model names."""

    call: str = Field(description="The routed method.")
    decision_id: str = Field(description="id_ of the RoutingDecisionEvent of this call.")
    failed_route: str = Field(description="The route whose model raised.")
    failed_model: str = Field(description="Name of the model that raised.")
    route: str = Field(description="The route called instead.")
    model: str = Field(description="Name of the model called instead.")
    error_type: str = Field(description="Type of the exception the failed model raised.")
    error_message: str = Field(description="Its message (first 500 characters).")

    @classmethod
    def class_name(cls) -> str:
        return "RoutingFallbackEvent"

    @classmethod
    def from_decision(cls, fallback: Decision, *, call: str, decision_id: str) -> RoutingFallbackEvent:
        """The event for ``fallback``, a decision made by a fallback policy's ``target``."""
        failed = fallback.fallback_from or ""
        return cls(
            call=call, decision_id=decision_id, failed_route=failed,
            failed_model=fallback.models.get(failed, failed), route=fallback.route, model=fallback.model,
            error_type=fallback.fallback_error_type or "", error_message=fallback.fallback_error_message or "",
        )


__all__ = ["RoutingCostEvent", "RoutingDecisionEvent", "RoutingFallbackEvent"]
