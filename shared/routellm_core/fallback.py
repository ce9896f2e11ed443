"""When the chosen model raises: call the other one, in the spirit of LangChain's ``with_fallbacks``.

The router picks a model; that model may still fail (a timeout, a rate limit, a server error).
A :class:`FallbackPolicy` says, per direction, whether the other model is called instead and
for which exceptions. By default a failing weak model falls back to the strong one (the answer
gets better, the bill bigger) and a failing strong model raises (falling back to the weak one
would silently lower quality); both are configurable. Only ``Exception`` subclasses are ever
handled: ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit`` and ``asyncio.CancelledError``
always propagate.

The fallback is recorded in the decision (``fallback_from`` and the error, see
:class:`~routellm_core.policy.PolicyDecision`); both adapters call the helpers here, so sync,
async and streaming calls fall back the same way. A stream falls back only before its first
chunk: once text reached the caller, an error propagates. When the fallback model fails too,
the first model's exception is raised, with a note naming the fallback's failure.

N-way routing (several models) has its own :class:`NWayFallbackPolicy`: a failed model is
replaced by the one with the next-best utility under the same decision, down the ranking.

Example:
    >>> from routellm_core.fallback import FallbackPolicy, call_with_fallback
    >>> from routellm_core.policy import PolicyDecision
    >>> d = PolicyDecision(route="weak", model="small", win_rate=0.2, threshold=0.5,
    ...                    router="sw_ranking", strong_model="big", weak_model="small")
    >>> def call(decision):
    ...     if decision.route == "weak":
    ...         raise TimeoutError("small timed out")
    ...     return f"answer from {decision.model}"
    >>> answer, used = call_with_fallback(d, call, FallbackPolicy())
    >>> answer, used.route, used.fallback_from, used.fallback_error_type
    ('answer from big', 'strong', 'weak', 'TimeoutError')
    >>> FallbackPolicy.coerce("none").target(d, TimeoutError()) is None
    True
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from routellm_core.policy import PolicyDecision

T = TypeVar("T")

FALLBACK_MODES: dict[str, tuple[bool, bool]] = {
    "weak_to_strong": (True, False),
    "strong_to_weak": (False, True),
    "both": (True, True),
    "none": (False, False),
}

Decision = Any  # a PolicyDecision, or an N-way decision (routellm_core.nway.base.NWayDecision)
AnyFallbackPolicy = Any  # FallbackPolicy or NWayFallbackPolicy
OnError = Callable[[Decision, BaseException, Decision | None], None]


@dataclass(frozen=True)
class FallbackPolicy:
    """Which failed calls are retried on the other model.

    Args:
        weak_to_strong: when the weak model raises, call the strong one (default on).
        strong_to_weak: when the strong model raises, call the weak one (default off).
        exceptions: exception types that trigger a fallback (default every ``Exception``);
            others propagate at once. Non-``Exception`` types are never handled.
    """

    weak_to_strong: bool = True
    strong_to_weak: bool = False
    exceptions: tuple[type[Exception], ...] = (Exception,)

    def __post_init__(self) -> None:
        exc = self.exceptions
        if isinstance(exc, type):
            exc = (exc,)
            object.__setattr__(self, "exceptions", exc)
        if not isinstance(exc, tuple) or not all(isinstance(e, type) and issubclass(e, Exception) for e in exc):
            raise TypeError(f"exceptions must be a tuple of Exception subclasses, got {self.exceptions!r}")

    @classmethod
    def coerce(cls, value: FallbackPolicy | str | bool | None) -> FallbackPolicy:
        """A policy from a policy, a mode name (one of :data:`FALLBACK_MODES`), or a bool
        (``True`` = ``"weak_to_strong"``, ``False`` / ``None`` = ``"none"``).

        Example:
            >>> FallbackPolicy.coerce("both")
            FallbackPolicy(weak_to_strong=True, strong_to_weak=True, exceptions=(<class 'Exception'>,))
        """
        if isinstance(value, cls):
            return value
        if value is None or isinstance(value, bool):
            return cls(weak_to_strong=bool(value), strong_to_weak=False)
        if isinstance(value, str) and value in FALLBACK_MODES:
            w2s, s2w = FALLBACK_MODES[value]
            return cls(weak_to_strong=w2s, strong_to_weak=s2w)
        raise ValueError(f"fallback must be one of {list(FALLBACK_MODES)}, a bool, or a FallbackPolicy; "
                         f"got {value!r}")

    def handles(self, exc: BaseException) -> bool:
        """Whether ``exc`` may trigger a fallback (an ``Exception`` of a configured type)."""
        return isinstance(exc, Exception) and isinstance(exc, self.exceptions)

    def target(self, decision: PolicyDecision, exc: BaseException) -> PolicyDecision | None:
        """The decision for the fallback call after ``decision``'s model raised ``exc``, or
        ``None`` when this failure is not retried (direction off, exception not handled, or a
        decision that already is a fallback)."""
        if decision.fallback_from is not None or not self.handles(exc):
            return None
        if decision.route == "weak" and self.weak_to_strong:
            route, model = "strong", decision.strong_model
        elif decision.route == "strong" and self.strong_to_weak:
            route, model = "weak", decision.weak_model
        else:
            return None
        return dataclasses.replace(
            decision, route=route, model=model, fallback_from=decision.route,
            fallback_error_type=type(exc).__name__, fallback_error_message=str(exc)[:500])


@dataclass(frozen=True)
class NWayFallbackPolicy:
    """Which failed calls of an N-way decision are retried, and on which model.

    When the chosen model raises, the model with the next-best utility under the same decision
    (what the objective would have picked without the failed model) is called, then the next,
    until one answers or ``max_fallbacks`` fallbacks were made. When the router itself failed
    there are no utilities and the candidates are tried in the order of the mapping.

    Args:
        max_fallbacks: fallbacks per call at most (``None``: every remaining model; 0: none).
        exceptions: exception types that trigger a fallback (default every ``Exception``).

    Example:
        >>> from routellm_core.nway.base import NWayDecision
        >>> d = NWayDecision(model="b", scores={}, utilities={"a": 0.1, "b": 0.7, "c": 0.4},
        ...                  lambdas={}, router="quality", candidates=("a", "b", "c"))
        >>> nxt = NWayFallbackPolicy().target(d, TimeoutError("b timed out"))
        >>> nxt.model, nxt.fallback_from, nxt.tried
        ('c', 'b', ('b',))
    """

    max_fallbacks: int | None = None
    exceptions: tuple[type[Exception], ...] = (Exception,)

    def __post_init__(self) -> None:
        FallbackPolicy.__post_init__(self)  # type: ignore[arg-type]
        m = self.max_fallbacks
        if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m < 0):
            raise ValueError(f"max_fallbacks must be an integer >= 0 or None, got {m!r}")

    handles = FallbackPolicy.handles

    def target(self, decision: Any, exc: BaseException) -> Any:
        """The decision for the next call after ``decision``'s model raised ``exc``, or ``None``."""
        if not self.handles(exc):
            return None
        tried = (*decision.tried, decision.model)
        if self.max_fallbacks is not None and len(tried) > self.max_fallbacks:
            return None
        rest = [m for m in decision.ranking() if m not in tried]
        if not rest:
            return None
        return dataclasses.replace(
            decision, model=rest[0], fallback_from=decision.model, tried=tried,
            fallback_error_type=type(exc).__name__, fallback_error_message=str(exc)[:500])


NWAY_FALLBACK_MODES = ("next_best", "none")


def coerce_fallback(value: Any, *, nway: bool) -> FallbackPolicy | NWayFallbackPolicy:
    """The fallback policy of an adapter from its ``fallback`` setting.

    ``"auto"`` is ``"weak_to_strong"`` for a strong/weak pair and ``"next_best"`` for N-way
    routing; a pair takes the names of :data:`FALLBACK_MODES`, N-way ``"next_best"`` or
    ``"none"``; ``True`` / ``False`` / ``None`` and policy objects work for both.

    Example:
        >>> coerce_fallback("auto", nway=True)
        NWayFallbackPolicy(max_fallbacks=None, exceptions=(<class 'Exception'>,))
        >>> coerce_fallback("none", nway=False).weak_to_strong
        False
    """
    if not nway:
        if isinstance(value, NWayFallbackPolicy):
            raise ValueError("an NWayFallbackPolicy needs several models (models=...), not strong/weak")
        return FallbackPolicy.coerce("weak_to_strong" if value == "auto" else value)
    if isinstance(value, NWayFallbackPolicy):
        return value
    if value in ("auto", "next_best", True):
        return NWayFallbackPolicy()
    if value in ("none", False, None):
        return NWayFallbackPolicy(max_fallbacks=0)
    raise ValueError(f"fallback for N-way routing must be one of {list(NWAY_FALLBACK_MODES)}, a bool, "
                     f"or an NWayFallbackPolicy; got {value!r}")


def note_fallback_failure(first: BaseException, fallback: Decision,
                          second: BaseException) -> BaseException:
    """``first`` (the chosen model's error) with a note saying the ``fallback`` call raised
    ``second``; raised when every model tried failed."""
    where = f"the {fallback.route} model " if fallback.route != fallback.model else "the model "
    first.add_note(f"routellm: fell back to {where}{fallback.model!r}, which "
                   f"failed too: {type(second).__name__}: {str(second)[:300]}")
    return first


def call_with_fallback(
    decision: Decision,
    call: Callable[[Decision], T],
    policy: AnyFallbackPolicy,
    on_error: OnError | None = None,
) -> tuple[T, Decision]:
    """``(call(decision), decision)``, or a fallback's result and decision when the call
    raised and ``policy`` retries it (once for a pair; down the ranking for N-way).
    ``on_error(decision, exc, fallback_or_None)`` is told of every failed attempt before the
    fallback is made or the error re-raised."""
    first: BaseException | None = None
    while True:
        try:
            return call(decision), decision
        except BaseException as exc:
            decision, first = _after_failure(decision, exc, first, policy, on_error)


async def acall_with_fallback(
    decision: Decision,
    call: Callable[[Decision], Awaitable[T]],
    policy: AnyFallbackPolicy,
    on_error: OnError | None = None,
) -> tuple[T, Decision]:
    """The async form of :func:`call_with_fallback`; ``call`` returns an awaitable."""
    first: BaseException | None = None
    while True:
        try:
            return await call(decision), decision
        except BaseException as exc:
            decision, first = _after_failure(decision, exc, first, policy, on_error)


def _after_failure(decision: Decision, exc: BaseException, first: BaseException | None,
                   policy: AnyFallbackPolicy, on_error: OnError | None) -> tuple[Decision, BaseException]:
    """The next decision to call after ``decision``'s model raised ``exc``, and the first error
    of the call; raises when there is none (the first error, noting the fallbacks' failures)."""
    fallback = policy.target(decision, exc)
    if on_error is not None:
        on_error(decision, exc, fallback)
    if first is None:
        if fallback is None:
            raise exc
        return fallback, exc
    if not policy.handles(exc):
        raise exc
    note_fallback_failure(first, decision, exc)
    if fallback is None:
        raise first from None
    return fallback, first


def stream_with_fallback(
    decision: Decision,
    open_stream: Callable[[Decision], Any],
    policy: AnyFallbackPolicy,
    on_error: OnError | None = None,
) -> Iterator[tuple[Decision, Any]]:
    """Yield ``(decision, chunk)`` from ``open_stream(decision)``; when opening the stream or
    reading its first chunk raises, fall back as :func:`call_with_fallback` does. After the
    first chunk, errors propagate (the caller has already seen the answer's start).

    Example:
        >>> from routellm_core.policy import PolicyDecision
        >>> d = PolicyDecision(route="weak", model="small", win_rate=0.2, threshold=0.5,
        ...                    router="r", strong_model="big", weak_model="small")
        >>> def open_stream(dec):
        ...     if dec.route == "weak":
        ...         raise ConnectionError("reset")
        ...     return iter(["a", "b"])
        >>> [(dec.route, c) for dec, c in stream_with_fallback(d, open_stream, FallbackPolicy())]
        [('strong', 'a'), ('strong', 'b')]
    """

    def first_chunk(dec: Decision) -> tuple[Iterator[Any], list[Any]]:
        it = iter(open_stream(dec))
        try:
            return it, [next(it)]
        except StopIteration:
            return it, []
        except BaseException:
            _close(it)
            raise

    (it, head), used = call_with_fallback(decision, first_chunk, policy, on_error)
    try:
        for chunk in head:
            yield used, chunk
        for chunk in it:
            yield used, chunk
    finally:
        _close(it)


async def astream_with_fallback(
    decision: Decision,
    open_stream: Callable[[Decision], Any],
    policy: AnyFallbackPolicy,
    on_error: OnError | None = None,
) -> AsyncIterator[tuple[Decision, Any]]:
    """The async form of :func:`stream_with_fallback`: ``open_stream`` returns an async
    iterator, or an awaitable of one (as LlamaIndex's ``astream_chat`` does)."""

    async def first_chunk(dec: Decision) -> tuple[AsyncIterator[Any], list[Any]]:
        opened = open_stream(dec)
        if inspect.isawaitable(opened):
            opened = await opened
        it = opened.__aiter__()
        try:
            return it, [await it.__anext__()]
        except StopAsyncIteration:
            return it, []
        except BaseException:
            await _aclose(it)
            raise

    (it, head), used = await acall_with_fallback(decision, first_chunk, policy, on_error)
    try:
        for chunk in head:
            yield used, chunk
        async for chunk in it:
            yield used, chunk
    finally:
        await _aclose(it)


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()


async def _aclose(it: Any) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()


__all__ = [
    "FALLBACK_MODES",
    "NWAY_FALLBACK_MODES",
    "FallbackPolicy",
    "NWayFallbackPolicy",
    "coerce_fallback",
    "acall_with_fallback",
    "astream_with_fallback",
    "call_with_fallback",
    "note_fallback_failure",
    "stream_with_fallback",
]
