"""Where a ``RouteLLM`` call's routing settings come from besides its own keywords: the
:func:`routing_overrides` block, the question of a ``predict()`` / ``stream()`` prompt, whether
the call is structured output; and the constructor arguments that belong somewhere else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from routellm_core.routing import Pool

# arguments that belong somewhere else, and where
MISPLACED: dict[str, str] = {
    "routellm_threshold": "it is a per-call keyword (llm.chat(..., routellm_threshold=0.7)); on the "
                          "constructor it is threshold=",
    "routellm_strong_fraction": "it is a per-call keyword (llm.chat(..., routellm_strong_fraction=0.3)); on "
                                "the constructor it is strong_fraction=",
    "routellm_lambdas": "it is a per-call keyword (llm.chat(..., routellm_lambdas={'cost': 1.0})); on the "
                        "constructor it is lambdas=",
    "config": "it is LangChain's per-call config; in LlamaIndex give routellm_* keywords on the call, or use "
              "routing_overrides(...)",
    "llm": "it is not a setting: give strong= and weak=, or models={name: llm}",
    "llms": "it is not a setting: give strong= and weak=, or models={name: llm}",
}

# (owner id, query text, routing settings) set by predict()/stream() for the calls inside
call_context: ContextVar[tuple[int, str | None, dict[str, Any]] | None] = ContextVar(
    "routellm_llamaindex_call", default=None)
overrides: ContextVar[dict[str, Any] | None] = ContextVar("routellm_llamaindex_overrides", default=None)
# set inside structured_predict(): its answers are not shadowed
structured: ContextVar[bool] = ContextVar("routellm_llamaindex_structured", default=False)

# checks a strong/weak pair's settings with the pool's own rule; it never loads its router
_PAIR_RULE = Pool.pair(strong="strong", weak="weak")


@contextlib.contextmanager
def routing_overrides(*, threshold: float | None = None, strong_fraction: float | None = None,
                      lambdas: Mapping[str, float] | None = None) -> Iterator[None]:
    """Route every ``RouteLLM`` call inside the block with this threshold or strong share (a
    strong/weak pair), or these ``lambdas`` (several models); each ``RouteLLM`` takes the
    settings of its own rule and ignores the others.

    For calls that take no extra arguments, e.g. ``query_engine.query(...)``::

        with routing_overrides(threshold=0.7):
            query_engine.query("...")
    """
    if lambdas is not None:
        if threshold is not None or strong_fraction is not None:
            raise ValueError("give lambdas (several models) or threshold / strong_fraction (a strong/weak "
                             "pair), not both")
        if not isinstance(lambdas, Mapping):
            raise TypeError(f"lambdas must be a mapping {{constraint name: weight}}, got {type(lambdas).__name__}")
        values: dict[str, Any] = {"lambdas": dict(lambdas)}  # checked by each pool of models it routes
    else:
        if threshold is None and strong_fraction is None:
            raise ValueError("give exactly one of threshold or strong_fraction (or lambdas)")
        setting = _PAIR_RULE.setting(threshold=threshold, strong_fraction=strong_fraction)
        values = {k: v for k, v in setting._asdict().items() if v is not None}
    token = overrides.set(values)
    try:
        yield
    finally:
        overrides.reset(token)


@contextlib.contextmanager
def structured_call() -> Iterator[None]:
    """Mark the calls inside as structured output (not shadowed)."""
    token = structured.set(True)
    try:
        yield
    finally:
        structured.reset(token)


__all__ = ["MISPLACED", "routing_overrides"]
