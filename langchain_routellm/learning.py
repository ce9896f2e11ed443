"""The learning loop on the LangChain side: capture of routed calls, shadow labelling, feedback
by call id, and a router that can be swapped while the model serves.

What each answered call hands on (off the call path, never failing it):

- to ``capture=`` (a :class:`~routellm_core.learning.TrafficCapture`): the call id, the routed
  query text, the final decision (after fallbacks) and the answer's cost record;
- to ``shadow=`` (a :class:`~routellm_core.learning.ShadowLabeller`, ``ChatRouteLLM`` only):
  the decision, the query, the answer text and the plain routed chat models.

The call id is the LangChain run id of the chosen model's run (the first attempt): the
caller's ``config["run_id"]`` when given, else a new one; ``ChatRouteLLM`` puts it in the
answer's ``response_metadata["routellm_call_id"]``, and ``rate(call_id, ...)`` takes it.

Example:
    >>> from routellm_core.routing import Pool
    >>> holder = PoolHolder(Pool.pair(strong="a", weak="b", threshold=0.5))
    >>> holder.pool.models
    {'strong': 'a', 'weak': 'b'}
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import BaseMessage

from routellm_core.calls import answer_record, content_text, usage_of
from routellm_core.costs import PriceSource
from routellm_core.routing import Decision, Pool

logger = logging.getLogger("langchain_routellm")
CALL_ID_KEY = "routellm_call_id"
CAPTURE_DESCRIPTION = ("Capture of routed calls into a traffic store, off the call path: a TrafficCapture "
                       "(e.g. TrafficCapture('traffic.db', redact=fn)), a TrafficStore, a SQLite path or a "
                       "SQLAlchemy URL; None (default) captures nothing.")
SHADOW_DESCRIPTION = ("A ShadowLabeller: for a fraction of answered calls, the model not chosen answers too "
                      "in the background and a judge compares the two; None (default) shadows nothing.")

_warned: set[str] = set()
_warned_lock = threading.Lock()


class PoolHolder:
    """The pool a routed model decides with, in one object that the model's copies share
    (``model_copy``, ``bind``, ``with_config``), so that ``swap_router`` reaches them all."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def swap(self, router: Any) -> None:
        """Decide with ``router`` from the next call on (checked first; the old pool stays on failure)."""
        self.pool = self.pool.with_router(router)

    def follow(self, router: Any) -> None:
        """When ``router`` (the model's ``router=``) is a
        :class:`~routellm_core.routing.RouterFromStore`, take each router version it loads; held
        weakly: following does not keep the model alive."""
        from routellm_core.routing.follow import follow

        follow(router, self, PoolHolder.swap, pool=self.pool)


def check_capture(value: Any) -> Any:
    """``capture=`` as a :class:`~routellm_core.learning.TrafficCapture` (``None`` stays ``None``);
    the learning modules are imported only when a capture is set."""
    if value is None:
        return None
    from routellm_core.learning.capture import coerce_capture

    return coerce_capture(value, source="langchain")


def check_shadow(value: Any) -> Any:
    """``shadow=``: ``None`` or a :class:`~routellm_core.learning.ShadowLabeller`."""
    if value is None:
        return None
    from routellm_core.learning.shadow import ShadowLabeller

    if not isinstance(value, ShadowLabeller):
        raise TypeError(f"shadow must be a routellm_core.learning.ShadowLabeller, got a {type(value).__name__}")
    return value


def new_call_id(config: Mapping[str, Any]) -> uuid.UUID:
    """The id of a call's first run: the caller's ``run_id`` when given, else a new one."""
    run_id = config.get("run_id")
    return run_id if run_id is not None else uuid.uuid4()


def answer_message(output: Any) -> BaseMessage | None:
    """The message of an answer: the output itself, or the ``raw`` message of structured output
    with ``include_raw=True``; ``None`` for other outputs."""
    if isinstance(output, BaseMessage):
        return output
    if isinstance(output, dict) and isinstance(output.get("raw"), BaseMessage):
        return output["raw"]
    return None


def answer_text(output: Any) -> str:
    """The text of an answer for token estimates: a message's text and tool-call arguments, a
    string, or the JSON of anything else."""
    msg = answer_message(output)
    if msg is not None:
        calls = getattr(msg, "tool_calls", None) or []
        return content_text(msg.content) + "".join(json.dumps(c.get("args", {}), default=str) for c in calls)
    if isinstance(output, str):
        return output
    if hasattr(output, "model_dump_json"):
        return str(output.model_dump_json())
    return json.dumps(output, default=str)


class Collected:
    """The chunks of a stream added up (``chunk + chunk``, as LangChain does), for what is
    captured once the stream has finished; chunks that cannot be added keep the last one."""

    def __init__(self) -> None:
        self.value: Any = None

    def add(self, chunk: Any) -> None:
        if self.value is None:
            self.value = chunk
            return
        try:
            self.value = self.value + chunk
        except TypeError:
            self.value = chunk


def after_answer(*, capture: Any, shadow: Any, call_id: uuid.UUID | str, query: str, decision: Decision,
                 output: Any, prompt_texts: Callable[[], list[str]], prices: PriceSource,
                 shadow_models: Mapping[str, Any] | None) -> None:
    """Hand one answered call to the capture and the shadow labeller; never raises (an error is
    a warning in the ``langchain_routellm`` log, once per error type)."""
    try:
        msg = answer_message(output)
        if capture is not None:
            usage = usage_of(getattr(msg, "usage_metadata", None)) if msg is not None else None
            record = answer_record(
                decision.record_fields(), usage=usage, prompt_texts=prompt_texts() if usage is None else [],
                output_text=answer_text(output), prices=prices, run_id=str(call_id),
                error_type=decision.error_type if decision.router_failed else None)
            capture.record(str(call_id), query=query, decision=decision, record=record,
                           source=capture.source or "langchain")
        if shadow is not None and shadow_models is not None and msg is not None:
            shadow.submit(decision, query=query, answer=content_text(msg.content), models=shadow_models,
                          call_id=str(call_id))
    except Exception as exc:  # learning never fails the user's call
        with _warned_lock:
            first = type(exc).__name__ not in _warned
            _warned.add(type(exc).__name__)
        if first:
            logger.warning("capture / shadow of a routed call failed (%s: %s); the call is unaffected",
                           type(exc).__name__, str(exc)[:200])


def rate_call(capture: Any, call_id: Any, rating: str | float, comment: str | None) -> None:
    """Store a rating of a captured call in ``capture``'s store (see :meth:`ChatRouteLLM.rate`)."""
    if capture is None:
        raise ValueError("rate() stores feedback in the traffic store of capture=, and this model has none: "
                         "build it with capture=TrafficCapture('traffic.db') (or a path / SQLAlchemy URL)")
    if isinstance(call_id, uuid.UUID):
        call_id = str(call_id)
    if not isinstance(call_id, str) or not call_id:
        raise TypeError(f"call_id must be the call's id (response_metadata['{CALL_ID_KEY}'], a str or UUID), "
                        f"got {call_id!r}")
    if comment is not None and not isinstance(comment, str):
        raise TypeError(f"comment must be a str or None, got a {type(comment).__name__}")
    if isinstance(rating, bool) or not isinstance(rating, (str, int, float)):
        raise TypeError(f"rating must be 'up', 'down' or a score in [0, 1], got {rating!r}")
    capture.rate(call_id, rating, comment=comment)  # flushes the queued calls first


__all__ = ["CALL_ID_KEY", "Collected", "PoolHolder", "after_answer", "answer_text", "check_capture",
           "check_shadow", "new_call_id", "rate_call"]
