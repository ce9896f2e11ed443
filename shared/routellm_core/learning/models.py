"""Chat models for labelling, framework-free: any LangChain chat model, any LlamaIndex LLM, an
import path with keyword arguments, or a plain async function.

Labelling calls three models (strong, weak, judge) with a system prompt and one user turn.
:func:`as_chat_fn` turns each into one shape, an async ``fn(system, user) -> Generation``, by
duck typing: the core imports neither framework (a LlamaIndex LLM's ``ChatMessage`` class is
taken from the already imported LlamaIndex module that the object itself comes from).

Example:
    >>> import asyncio
    >>> from routellm_core.learning.models import Generation, as_chat_fn
    >>> async def echo(system, user):
    ...     return Generation(text=user.upper(), model="echo")
    >>> fn = as_chat_fn(echo)
    >>> asyncio.run(fn(None, "hi")).text
    'HI'
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routellm_core.calls import content_text, usage_of
from routellm_core.naming import model_name  # the one naming rule, re-exported here

ChatFn = Callable[[str | None, str], Awaitable["Generation"]]


@dataclass(frozen=True)
class Generation:
    """One model answer: its text, the model's name and the token usage it reported (``None``
    when it reported none; the labeller then estimates it).

    Raises:
        ValueError: a token count that is negative, not finite or not whole (naming the model):
            the call counts as a failed model call, never as money paid back.
    """

    text: str
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None

    def __post_init__(self) -> None:
        # a usage that is negative, not finite or not a whole number is the model's error: priced,
        # it would pay money back into the ledger (and past a budget), so the call is refused
        for field_name in ("input_tokens", "output_tokens"):
            value = getattr(self, field_name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0 or value != int(value):
                raise ValueError(f"model {self.model!r} reported {field_name}={value!r}; a token count must be "
                                 "a whole number >= 0")
            object.__setattr__(self, field_name, int(value))


def import_object(spec: str, what: str = "model") -> Any:
    """The object at an import path ``"package.module:name"`` (or ``package.module.name``).

    Raises:
        ValueError: a malformed path; ImportError / AttributeError naming what is missing.
    """
    hint = "ClassName" if what == "model" else "name"
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a {what} is given as 'package.module:{hint}', got {spec!r}")
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"a {what} is given as 'package.module:{hint}', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import {module_name!r} for {what} {spec!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no {attr!r} ({what} {spec!r})") from None


def load_model(spec: str, kwargs: Mapping[str, Any] | None = None) -> Any:
    """Build a model from an import path ``"package.module:ClassName"`` (or ``package.module.ClassName``)
    and keyword arguments, e.g. ``load_model("langchain_openai:ChatOpenAI", {"model": "gpt-4o"})``.

    Raises:
        ValueError: a malformed path; ImportError / AttributeError naming what is missing.
    """
    return import_object(spec, "model")(**dict(kwargs or {}))


def as_chat_fn(model: Any) -> ChatFn:
    """An async ``fn(system, user) -> Generation`` for ``model``: a LangChain chat model
    (``ainvoke``), a LlamaIndex LLM (``achat``), or an async function returning a
    :class:`Generation` or a string.

    Raises:
        TypeError: anything else, naming what was given.
    """
    name = model_name(model)
    if hasattr(model, "ainvoke") and hasattr(model, "invoke"):
        async def langchain_fn(system: str | None, user: str) -> Generation:
            messages = ([("system", system)] if system else []) + [("human", user)]
            msg = await model.ainvoke(messages)
            usage = usage_of(getattr(msg, "usage_metadata", None))
            return _generation(content_text(getattr(msg, "content", msg)), name, usage)

        return langchain_fn
    if hasattr(model, "achat") and hasattr(model, "metadata"):
        chat_message = _llamaindex_chat_message(model)

        async def llamaindex_fn(system: str | None, user: str) -> Generation:
            messages = ([chat_message(role="system", content=system)] if system else []) + [
                chat_message(role="user", content=user)]
            resp = await model.achat(messages)
            usage = usage_of(getattr(resp, "raw", None), getattr(resp, "additional_kwargs", None))
            return _generation(content_text(resp.message.blocks) or (resp.message.content or ""), name, usage)

        return llamaindex_fn
    call_method = vars(type(model)).get("__call__")  # an object whose __call__ is async
    if inspect.iscoroutinefunction(model) or inspect.iscoroutinefunction(call_method):
        async def plain_fn(system: str | None, user: str) -> Generation:
            out = await model(system, user)
            if isinstance(out, Generation):
                return out
            if isinstance(out, str):
                return Generation(text=out, model=name)
            raise TypeError(f"model function {name!r} returned a {type(out).__name__}; expected a str or "
                            "a Generation")

        return plain_fn
    raise TypeError(f"cannot call {type(model).__name__} {name!r} as a chat model: give a LangChain chat "
                    "model, a LlamaIndex LLM, an import path, or an async function (system, user) -> str")


def _generation(text: str, name: str, usage: tuple[int, int] | None) -> Generation:
    return Generation(text=text, model=name, input_tokens=usage[0] if usage else None,
                      output_tokens=usage[1] if usage else None)


def _llamaindex_chat_message(model: Any) -> Any:
    module = sys.modules.get("llama_index.core.base.llms.types")
    if module is None:  # an LLM-like object that does not come from LlamaIndex
        raise TypeError(f"{type(model).__name__} has achat() but LlamaIndex is not loaded; give an async "
                        "function (system, user) -> str instead")
    return module.ChatMessage


__all__ = ["ChatFn", "Generation", "as_chat_fn", "import_object", "load_model", "model_name"]
