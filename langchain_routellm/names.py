"""The LangChain side of naming routed models: where the model inside a runnable is. The names
themselves come from the one rule of :mod:`routellm_core.naming` (its :func:`model_name`,
re-exported here), at route time and label time alike.

Example:
    >>> from langchain_core.language_models import FakeListChatModel
    >>> model_name(FakeListChatModel(responses=["hi"]))
    'FakeListChatModel'
"""

from __future__ import annotations

from typing import Any

from routellm_core.naming import model_name

_MAX_DEPTH = 16


def runnable_model_name(runnable: Any, _depth: int = 0) -> str | None:
    """The name of the first language model inside ``runnable``, or ``None`` when it holds none.

    Looks through bindings (``bind_tools``, ``with_config``), configurable alternatives (their
    default), fallbacks (the primary), sequences and parallel maps, in order.

    Example:
        >>> from langchain_core.language_models import FakeListChatModel
        >>> from langchain_core.prompts import ChatPromptTemplate
        >>> chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | FakeListChatModel(responses=["a"])
        >>> runnable_model_name(chain)
        'FakeListChatModel'
        >>> runnable_model_name(ChatPromptTemplate.from_messages([("human", "{q}")])) is None
        True
    """
    from langchain_core.language_models import BaseLanguageModel

    if isinstance(runnable, BaseLanguageModel):
        return model_name(runnable)
    if _depth >= _MAX_DEPTH:
        return None
    inner: list[Any] = []
    for attr in ("bound", "default", "runnable"):  # bindings, configurable alternatives, fallbacks
        if getattr(runnable, attr, None) is not None:
            inner.append(getattr(runnable, attr))
    steps = getattr(runnable, "steps", None)  # a sequence
    if isinstance(steps, list):
        inner.extend(steps)
    parallel = getattr(runnable, "steps__", None)  # a parallel map
    if isinstance(parallel, dict):
        inner.extend(parallel.values())
    for part in inner:
        found = runnable_model_name(part, _depth + 1)
        if found is not None:
            return found
    return None


__all__ = ["model_name", "runnable_model_name"]
