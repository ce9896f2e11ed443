"""The learning loop on the LangChain side: what an answered LangChain call hands on, read off
LangChain's outputs (the rest is :mod:`routellm_core.adapter`, shared with LlamaIndex).

What each answered call hands on (off the call path, never failing it):

- to ``capture=`` (a :class:`~routellm_core.learning.TrafficCapture`): the call id, the routed
  query text, the final decision (after fallbacks) and the answer's cost record;
- to ``shadow=`` (a :class:`~routellm_core.learning.ShadowLabeller`, ``ChatRouteLLM`` only):
  the decision, the query, the answer text and the plain routed chat models.

The call id is the LangChain run id of the chosen model's run (the first attempt): the
caller's ``config["run_id"]`` when given, else a new one; ``ChatRouteLLM`` puts it in the
answer's ``response_metadata["routellm_call_id"]``, and ``rate(call_id, ...)`` takes it.

Example:
    >>> from langchain_core.messages import AIMessage
    >>> answer_text({"raw": AIMessage("hi"), "parsed": None})
    'hi'
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import BaseMessage

from routellm_core.adapter import hand_on
from routellm_core.calls import answer_record, content_text, usage_of
from routellm_core.costs import CostRecord, PriceSource
from routellm_core.routing import Decision

SOURCE = "langchain"  # the adapter's name in stored calls and its log, ``langchain_routellm``


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
    """Hand one answered call to the capture and the shadow labeller
    (:func:`routellm_core.adapter.hand_on`); never raises (an error is a warning in the
    ``langchain_routellm`` log, once per error type)."""
    msg = answer_message(output)

    def record() -> CostRecord:
        usage = usage_of(getattr(msg, "usage_metadata", None)) if msg is not None else None
        return answer_record(
            decision.record_fields(), usage=usage, prompt_texts=prompt_texts() if usage is None else [],
            output_text=answer_text(output), prices=prices, run_id=str(call_id),
            error_type=decision.error_type if decision.router_failed else None)

    shadowed = shadow is not None and shadow_models is not None and msg is not None
    hand_on(capture=capture, shadow=shadow, call_id=str(call_id), query=query, decision=decision, record=None,
            build_record=record, answer=content_text(msg.content) if shadowed and msg is not None else None,
            shadow_models=shadow_models, source=SOURCE)


__all__ = ["Collected", "after_answer", "answer_message", "answer_text", "new_call_id"]
