"""What both framework adapters do, written once: call ids, the ``capture=`` / ``shadow=``
checks, ratings, handing an answered call to the learning loop, router swaps shared by a
model's copies, and the help texts of the settings both adapters take.

Each adapter keeps only the translation between its framework's objects and these.

Example:
    >>> from routellm_core.routing import Pool
    >>> holder = PoolHolder(Pool.pair(strong="a", weak="b", threshold=0.5))
    >>> holder.pool.models
    {'strong': 'a', 'weak': 'b'}
    >>> check_shadow(None) is None
    True
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from routellm_core.costs import CostLedger, CostRecord, CostTotals
from routellm_core.local_models import LocalChatModel, LocalGeneration
from routellm_core.routing import Decision, Pool

CALL_ID_KEY = "routellm_call_id"

CAPTURE_HELP = ("Store every answered call, off the call path: a TrafficCapture (e.g. TrafficCapture('traffic.db', "
                "redact=fn)), a TrafficStore, a SQLite path or a SQLAlchemy URL; None (default) captures nothing.")
SHADOW_HELP = ("A routellm_core.learning.ShadowLabeller: for a share of answered calls, the model not chosen answers "
               "too in the background and a judge compares the two; None (default) shadows nothing.")
FALLBACK_HELP = ("When the chosen model raises: 'auto' (default: 'weak_to_strong' for a pair, 'next_best' for several "
                 "models), 'weak_to_strong', 'strong_to_weak', 'both', 'next_best', 'none', or a "
                 "routellm_core.routing.FallbackPolicy.")
ROUTER_HELP = ("A loaded router (N-way for models=), None / 'default' (the shared embedded default), a checkpoint "
               "directory or Hub id ('hf://org/name'), or a RouterFromStore (the live version of a traffic store, "
               "followed).")
ALIASES_HELP = "{your model's name: the name the router knows}, e.g. {'gpt-4o': 'gpt-4-1106-preview'}."
STRONG_HELP = "The strong (expensive) model."
WEAK_HELP = "The weak (cheap) model."
MODELS_HELP = ("Several models to route among (N-way), by your names for them (each a model the N-way router knows, "
               "runs one, or is mapped onto one by aliases=).")
NAMES_HELP = ("Your names of the strong and weak models in decisions, costs and aliases=, e.g. {'strong': "
              "'gpt-5@high', 'weak': 'gpt-5@minimal'} (priced as the part before '@', or the model's own name); "
              "default the models' own names.")
THRESHOLD_HELP = "Strong exactly when win_rate >= threshold, in [0, 1]."
STRONG_FRACTION_HELP = "Target share of strong calls, via the router's calibration table."
LAMBDAS_HELP = "N-way: constraint weights of Tryage's objective, e.g. {'cost': 0.2}."
COSTS_HELP = "N-way: cost per call of each model (shorthand for a 'cost' constraint)."
CONSTRAINTS_HELP = "N-way: constraints keyed by the model names; default the router's own."
FAILURE_POLICY_HELP = ("When the router fails: the route to take ('strong' / 'weak', or a name of models=) or "
                       "'raise'; default the strong (or first) model.")
PRICES_HELP = "{model: (input_per_million, output_per_million)} or a PriceSource; else genai-prices."


class PoolHolder:
    """The pool a routed model decides with, in one object that the model's copies share, so
    that one ``swap_router`` reaches them all."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.lock = threading.Lock()

    def swap(self, router: Any) -> None:
        """Decide with ``router`` from the next call on (checked first; the old pool stays on failure)."""
        pool = self.pool.with_router(router)
        with self.lock:
            self.pool = pool

    def follow(self, router: Any) -> None:
        """When ``router`` (the model's ``router=``) is a
        :class:`~routellm_core.routing.RouterFromStore`, take each router version it loads; held
        weakly: following does not keep the model alive."""
        from routellm_core.routing.follow import follow

        follow(router, self, PoolHolder.swap, pool=self.pool)


def check_capture(value: Any, *, source: str) -> Any:
    """``capture=`` as a :class:`~routellm_core.learning.TrafficCapture` (``None`` stays ``None``);
    ``source`` names the adapter in the stored calls. The learning modules are imported only
    when a capture is set."""
    if value is None:
        return None
    from routellm_core.learning.capture import coerce_capture

    return coerce_capture(value, source=source)


def check_shadow(value: Any) -> Any:
    """``shadow=``: ``None`` or a :class:`~routellm_core.learning.ShadowLabeller`."""
    if value is None:
        return None
    from routellm_core.learning.shadow import ShadowLabeller

    if not isinstance(value, ShadowLabeller):
        raise TypeError(f"shadow must be a routellm_core.learning.ShadowLabeller, got a {type(value).__name__}")
    return value


def rate_call(capture: Any, call_id: Any, rating: str | float, comment: str | None, *, owner: str) -> None:
    """Store a user's rating of a captured call in ``capture``'s store; ``owner`` (e.g.
    ``"ChatRouteLLM"``) names the model in the errors.

    Raises:
        ValueError: no capture.
        TypeError: a call id that is not a non-empty str or UUID, a comment that is not a str, a
            rating that is neither a str nor a number.
        StoreError: what the store refuses (an unknown rating, a score out of [0, 1], an
            unknown call id).
    """
    if capture is None:
        raise ValueError(f"{owner}.rate() stores ratings in the traffic store of capture=, and this {owner} has "
                         "none: build it with capture=TrafficCapture('traffic.db') (or a path / SQLAlchemy URL)")
    if isinstance(call_id, uuid.UUID):
        call_id = str(call_id)
    if not isinstance(call_id, str) or not call_id:
        raise TypeError(f"call_id must be the call's id (the answer's '{CALL_ID_KEY}', a str or UUID), got {call_id!r}")
    if comment is not None and not isinstance(comment, str):
        raise TypeError(f"comment must be a str or None, got a {type(comment).__name__}")
    if isinstance(rating, bool) or not isinstance(rating, (str, int, float)):
        raise TypeError(f"rating must be 'up', 'down' or a score in [0, 1], got {rating!r}")
    capture.rate(call_id, rating, comment=comment)  # flushes the queued calls first


class CostLedgerView:
    """What a cost handler shows of its ``ledger`` (a :class:`~routellm_core.costs.CostLedger`):
    the records, the totals, and the totals' summary as its ``str``.

    Example:
        >>> class Handler(CostLedgerView):
        ...     def __init__(self) -> None:
        ...         self.ledger = CostLedger()
        >>> Handler().records, repr(Handler()).startswith("Handler(")
        ([], True)
    """

    ledger: CostLedger

    @property
    def records(self) -> list[CostRecord]:
        """Every routed call's cost record, in order."""
        return self.ledger.records

    @property
    def totals(self) -> CostTotals:
        """Total cost, strong (all-strong counterfactual) cost, savings, strong share, per model."""
        return self.ledger.totals()

    def __str__(self) -> str:
        return self.totals.summary()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.totals.brief()})"


class LocalModelFields(BaseModel):
    """The settings of a framework model over a local GGUF chat model
    (:class:`~routellm_core.local_models.LocalChatModel`): mixed into each adapter's local model
    before its framework's base class. ``model_name`` defaults to the client's name."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: LocalChatModel = Field(description="The loaded-on-first-use local model.")
    model_name: str = Field(default="", description="Name in routing and cost records (default: the client's).")
    max_tokens: int = Field(default=256, ge=1, description="Most tokens to generate.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0 for greedy decoding.")

    @model_validator(mode="after")
    def _default_model_name(self) -> LocalModelFields:
        if not self.model_name:
            self.model_name = self.client.name
        return self

    def _local_generate(self, messages: Sequence[tuple[str, str]], roles: Mapping[str, str],
                        kwargs: Mapping[str, Any], stop: list[str] | None = None) -> LocalGeneration:
        """Answer ``messages``, the framework's ``(role, text)`` pairs, with the client: ``roles``
        maps the framework's roles onto the client's (another role is a ``ValueError``); a call's
        ``max_tokens`` / ``temperature`` in ``kwargs`` win over the fields."""
        turns = []
        for i, (role, text) in enumerate(messages):
            if role not in roles:
                raise ValueError(f"message {i} has role {role!r}; {type(self).__name__} supports "
                                 f"{sorted(roles)} messages, not a {role!r} message")
            turns.append((roles[role], text))
        return self.client.chat(turns, max_tokens=kwargs.get("max_tokens", self.max_tokens),
                                temperature=kwargs.get("temperature", self.temperature), stop=stop)


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def hand_on(*, capture: Any, shadow: Any, call_id: str, query: str, decision: Decision, record: Any,
            answer: str | None, shadow_models: Mapping[str, Any] | None, source: str,
            build_record: Callable[[], Any] | None = None) -> None:
    """Hand one answered call to ``capture`` (queued for its background writer) and to
    ``shadow`` (``answer`` and ``shadow_models`` given: the call may be shadowed). Never raises:
    learning never fails the user's call; an error is a warning in the ``source`` adapter's log,
    once per error type. ``build_record``: builds the cost record when ``record`` is ``None``,
    only for a capture and inside the guard (an adapter that has no record at hand)."""
    try:
        if capture is not None:
            if record is None and build_record is not None:
                record = build_record()
            capture.record(call_id, query=query, decision=decision, record=record, source=capture.source or source)
        if shadow is not None and shadow_models is not None and answer is not None:
            shadow.submit(decision, query=query, answer=answer, models=shadow_models, call_id=call_id)
    except Exception as exc:
        key = (source, type(exc).__name__)
        with _warned_lock:
            first = key not in _warned
            _warned.add(key)
        if first:
            logging.getLogger(f"{source}_routellm").warning(
                "capture / shadow of a routed call failed (%s: %s); the call is unaffected",
                type(exc).__name__, str(exc)[:200])


__all__ = ["ALIASES_HELP", "CALL_ID_KEY", "CAPTURE_HELP", "CONSTRAINTS_HELP", "COSTS_HELP", "CostLedgerView",
           "FAILURE_POLICY_HELP", "FALLBACK_HELP", "LAMBDAS_HELP", "LocalModelFields", "MODELS_HELP", "NAMES_HELP",
           "PRICES_HELP", "PoolHolder", "ROUTER_HELP", "SHADOW_HELP", "STRONG_FRACTION_HELP", "STRONG_HELP",
           "THRESHOLD_HELP", "WEAK_HELP", "check_capture", "check_shadow", "hand_on", "rate_call"]
