"""What both framework adapters do around a routed call, written once.

An adapter translates its framework's objects into plain values and calls these:

- **settings**: the routing keywords of a call (``routellm_threshold``,
  ``routellm_strong_fraction``, ``routellm_lambdas``) are taken out of the call's keyword
  arguments (:func:`pop_settings`, so they never reach a provider), and the first source that
  gives any wins (:func:`first_settings`: the call, then the chain or engine, then the model);
  :meth:`routellm_core.routing.Pool.setting` checks them.
- **query text**: the text of a message's content (:func:`content_text`) and the query of a
  conversation (:func:`query_text`).
- **usage and cost**: the token usage a model reported (:func:`usage_of`), the cost record
  of an answered call (:func:`answer_record`), of a failed one (:func:`attempt_failed_record`)
  and of a stream that broke after output (:func:`stream_failed_record`).

Example:
    >>> from routellm_core.calls import first_settings, pop_settings
    >>> kwargs = {"temperature": 0, "routellm_threshold": 0.8}
    >>> call = pop_settings(kwargs)
    >>> kwargs, first_settings(call, {"routellm_strong_fraction": 0.3})
    ({'temperature': 0}, {'threshold': 0.8})
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from routellm_core.costs import (
    CostRecord,
    PriceSource,
    billed_output_tokens,
    cost_record,
    count_tokens,
    failed_attempt_record,
    partial_attempt_record,
    token_counts,
)
from routellm_core.queries import check_query_text, query_from_turns

SETTING_KEYS: dict[str, str] = {
    "routellm_threshold": "threshold",
    "routellm_strong_fraction": "strong_fraction",
    "routellm_lambdas": "lambdas",
}


def check_setting_keys(keys: Any, where: str = "the call") -> None:
    """Raise a ``TypeError`` for a key that starts with ``routellm_`` but is no routing keyword
    (a misspelled ``routellm_treshold`` would otherwise reach the provider, or be ignored),
    naming the close matches.

    Example:
        >>> check_setting_keys(["temperature", "routellm_treshold"])
        Traceback (most recent call last):
        ...
        TypeError: the call got an unknown routing keyword 'routellm_treshold'; did you mean 'routellm_threshold'?
    """
    for key in keys:
        if isinstance(key, str) and key.startswith("routellm_") and key not in SETTING_KEYS:
            close = ["routellm_" + c for c in difflib.get_close_matches(  # compared without the prefix
                key[len("routellm_"):], [k[len("routellm_"):] for k in SETTING_KEYS], n=2, cutoff=0.6)]
            hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                    else f"the routing keywords are {', '.join(SETTING_KEYS)}")
            raise TypeError(f"{where} got an unknown routing keyword {key!r}; {hint}")


def pop_settings(kwargs: dict[str, Any], where: str = "the call") -> dict[str, Any]:
    """Remove the routing keywords from a call's ``kwargs`` (in place) and return them, keyed
    ``threshold`` / ``strong_fraction`` / ``lambdas`` (``None`` values dropped).

    Raises:
        TypeError: a keyword that starts with ``routellm_`` and is no routing keyword
            (:func:`check_setting_keys`), before anything is removed.
    """
    check_setting_keys(kwargs, where)
    found = {SETTING_KEYS[k]: kwargs.pop(k) for k in list(kwargs) if k in SETTING_KEYS}
    return {k: v for k, v in found.items() if v is not None}


def first_settings(*sources: Mapping[str, Any] | None) -> dict[str, Any]:
    """The routing settings of the first source that gives any (a source is keyed by the
    ``routellm_*`` keywords or by the plain names); ``{}`` when none does (the model's own
    settings apply).

    Example:
        >>> first_settings(None, {}, {"routellm_lambdas": {"cost": 1.0}}, {"threshold": 0.5})
        {'lambdas': {'cost': 1.0}}
    """
    plain = set(SETTING_KEYS.values())
    for source in sources:
        if not source:
            continue
        found = {SETTING_KEYS.get(k, k): v for k, v in source.items()
                 if (k in SETTING_KEYS or k in plain) and v is not None}
        if found:
            return found
    return {}


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or its text blocks joined by newlines (a
    block is a string, a ``{"type": "text", "text": ...}`` dict, or an object with a ``text``
    attribute whose ``type`` / ``block_type`` is ``"text"``); ``""`` when it has no text.

    Example:
        >>> content_text(["a", {"type": "image_url", "image_url": "..."}, {"type": "text", "text": "b"}])
        'a\\nb'
    """
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping):
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        elif "text" in (getattr(block, "type", None), getattr(block, "block_type", None)):
            text = getattr(block, "text", None)
            if isinstance(text, str):
                parts.append(text)
    return "\n".join(p for p in parts if p)


def turn_text(content: Any) -> str | None:
    """A turn's text for :func:`query_text`: :func:`content_text`, or ``None`` when the content
    holds non-text blocks only (images, files) and no text: a turn with no text to route on,
    which the failure policy decides (:class:`~routellm_core.queries.NoQueryText`).

    Example:
        >>> turn_text([{"type": "image_url", "image_url": "..."}]) is None, turn_text("")
        (True, '')
    """
    text = content_text(content)
    if text.strip() or isinstance(content, str) or not content:
        return text
    return None if any(not _is_text_block(b) for b in content) else text


def _is_text_block(block: Any) -> bool:
    if isinstance(block, str):
        return True
    if isinstance(block, Mapping):
        return block.get("type") == "text"
    return "text" in (getattr(block, "type", None), getattr(block, "block_type", None))


def query_text(turns: Sequence[tuple[str, str | None]], query_from: Any = "last_user", *,
               messages: Sequence[Any] = ()) -> str:
    """The text to route on: the last user turn (RouteLLM), all user turns, or what the
    ``query_from`` callable returns for the framework's ``messages``.

    Example:
        >>> query_text([("system", "Be brief."), ("user", "hi")])
        'hi'
    """
    if callable(query_from):
        return check_query_text(query_from(list(messages)), "the text query_from returned")
    return query_from_turns(turns, query_from)


_INPUT_KEYS = ("input_tokens", "prompt_tokens", "prompt_token_count")
_OUTPUT_KEYS = ("output_tokens", "completion_tokens", "candidates_token_count")


def usage_of(*candidates: Any) -> tuple[int, int] | None:
    """``(input_tokens, output_tokens)`` from the first candidate that reports both: a usage
    mapping (LangChain's ``usage_metadata``, OpenAI's ``usage``, Gemini's counts), an object
    with such attributes, or a raw response holding one under ``usage`` / ``usage_metadata``.
    Reasoning tokens are output tokens, counted once
    (:func:`~routellm_core.costs.billed_output_tokens`: added only where the provider reports
    them apart from the output, as Gemini does).

    Example:
        >>> usage_of(None, {"usage": {"prompt_tokens": 12, "completion_tokens": 3}})
        (12, 3)
    """
    for c in candidates:
        found = _usage(c)
        if found is not None:
            return found
    return None


def _usage(obj: Any, depth: int = 0) -> tuple[int, int] | None:
    if obj is None or depth > 2:
        return None
    data = obj if isinstance(obj, Mapping) else (
        obj.model_dump() if hasattr(obj, "model_dump") else getattr(obj, "__dict__", None))
    if not isinstance(data, Mapping):
        return None
    inp = next((data[k] for k in _INPUT_KEYS if k in data), None)
    out = next((data[k] for k in _OUTPUT_KEYS if k in data), None)
    if isinstance(inp, int) and isinstance(out, int) and not isinstance(inp, bool):
        return inp, billed_output_tokens(data, inp, out)  # reasoning tokens counted as output, once
    for key in ("usage", "usage_metadata"):
        nested = data.get(key) if isinstance(obj, Mapping) else getattr(obj, key, data.get(key))
        found = _usage(nested, depth + 1)
        if found is not None:
            return found
    return None


def answer_record(decision: Mapping[str, Any], *, usage: tuple[int, int] | None, prompt_texts: Sequence[str],
                  output_text: str | None, prices: PriceSource, run_id: str | None = None,
                  chat: bool = True, error_type: str | None = None) -> CostRecord:
    """The cost record of an answered call: the model's reported usage, or a tiktoken estimate
    of the prompt and the output (flagged as estimated), priced with ``prices``.

    Args:
        decision: the decision's record fields (:meth:`Decision.record_fields`, or
            :func:`routellm_core.costs.record_fields_from_metadata` of a routed run).

    Example:
        >>> from routellm_core.costs import PriceSource
        >>> from routellm_core.routing import Decision
        >>> d = Decision.by_threshold(0.2, 0.5, {"strong": "big", "weak": "small"}, router="r")
        >>> r = answer_record(d.record_fields(), usage=(1000, 100), prompt_texts=["hi"], output_text=None,
        ...                   prices=PriceSource({"big": (10.0, 30.0), "small": (1.0, 3.0)}))
        >>> r.model, float(r.cost), float(r.savings)
        ('small', 0.0013, 0.0117)
    """
    inp, out, estimated = token_counts(usage, prompt_texts=prompt_texts,
                                       output_text=output_text if usage is None else None, chat=chat)
    return cost_record(**decision, input_tokens=inp, output_tokens=out, prices=prices,
                       tokens_estimated=estimated, error_type=error_type, run_id=run_id)


def attempt_failed_record(decision: Mapping[str, Any], error: BaseException | str, *,
                          run_id: str | None = None) -> CostRecord:
    """The record of an attempt whose model raised (charged 0; see
    :func:`routellm_core.costs.failed_attempt_record`)."""
    return failed_attempt_record(**decision, error=error, run_id=run_id)


def stream_failed_record(decision: Mapping[str, Any], error: BaseException | str, *,
                         usage: tuple[int, int] | None, prompt_texts: Sequence[str], output_text: str | None,
                         prices: PriceSource, run_id: str | None = None, chat: bool = True) -> CostRecord:
    """The record of a streamed attempt that raised, given what it streamed before the error.

    Nothing received (no text, no usage): a failed attempt charged 0, as
    :func:`attempt_failed_record`. Otherwise the provider billed the prompt and the output it
    sent: a failed attempt charged for them (:func:`routellm_core.costs.partial_attempt_record`),
    the tokens counted as :func:`answer_record` counts them (the reported usage, else a tiktoken
    estimate flagged ``tokens_estimated``). A usage reported early in the stream (Anthropic sends
    its input count first) never charges less output than the text received: then the output is
    the text's estimate, flagged as estimated.

    Example:
        >>> from routellm_core.costs import PriceSource
        >>> from routellm_core.routing import Decision
        >>> d = Decision.by_threshold(0.2, 0.5, {"strong": "big", "weak": "small"}, router="r").record_fields()
        >>> p = PriceSource({"big": (10.0, 30.0), "small": (1.0, 3.0)})
        >>> r = stream_failed_record(d, ConnectionError("reset"), usage=None, prompt_texts=["hello world"],
        ...                          output_text="Hello, how", prices=p)
        >>> r.failed, r.input_tokens, r.output_tokens, r.tokens_estimated, r.cost > 0
        (True, 8, 3, True, True)
        >>> stream_failed_record(d, "ConnectionError", usage=None, prompt_texts=["hi"], output_text="",
        ...                      prices=p).cost
        Decimal('0')
    """
    if not output_text and (usage is None or not any(usage)):
        return attempt_failed_record(decision, error, run_id=run_id)
    inp, out, estimated = token_counts(usage, prompt_texts=prompt_texts,
                                       output_text=output_text if usage is None else None, chat=chat)
    if usage is not None and output_text:
        seen = count_tokens(output_text)
        if seen > out:
            out, estimated = seen, True
    return partial_attempt_record(**decision, error=error, input_tokens=inp, output_tokens=out, prices=prices,
                                  tokens_estimated=estimated, run_id=run_id)


def check_arguments(cls: type, data: Any, *, own: Sequence[str] = (), hints: Mapping[str, str] | None = None,
                    ignore: Sequence[str] = ()) -> Any:
    """An adapter's constructor arguments, checked before its pydantic validation: ``data``
    unchanged when every key is a field of ``cls`` (or a field's alias); else a ``TypeError``
    naming the first unknown argument and the fields spelled like it, or where it belongs
    (``hints``: ``{argument: where it goes}``), or the class's own settings (``own``).
    ``ignore``: keys the framework itself adds (for example to serialized components).

    Example:
        >>> from pydantic import BaseModel
        >>> class Settings(BaseModel):
        ...     failure_policy: str = "strong"
        >>> check_arguments(Settings, {"failure_polcy": "weak"})
        Traceback (most recent call last):
        ...
        TypeError: Settings() got an unexpected argument 'failure_polcy'; did you mean 'failure_policy'?
    """
    if not isinstance(data, dict):
        return data
    fields = cls.model_fields  # type: ignore[attr-defined]
    known = set(fields)
    for info in fields.values():
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                known.add(alias)
    unknown = [k for k in data if k not in known and k not in ignore]
    if not unknown:
        return data
    name = str(unknown[0])
    more = f" (and {len(unknown) - 1} more: {unknown[1:]})" if len(unknown) > 1 else ""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    if hints and name in hints:
        hint = f": {hints[name]}"
    elif close:
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?"
    else:
        hint = f"; its settings are {', '.join(own or sorted(fields))}"
    raise TypeError(f"{cls.__name__}() got an unexpected argument {name!r}{more}{hint}")


QueryFrom = Callable[[list[Any]], str] | str

__all__ = [
    "SETTING_KEYS",
    "QueryFrom",
    "answer_record",
    "attempt_failed_record",
    "check_arguments",
    "check_setting_keys",
    "content_text",
    "first_settings",
    "pop_settings",
    "query_text",
    "stream_failed_record",
    "turn_text",
    "usage_of",
]
