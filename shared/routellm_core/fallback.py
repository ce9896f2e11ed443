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

OnError = Callable[[PolicyDecision, BaseException, PolicyDecision | None], None]


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


def note_fallback_failure(first: BaseException, fallback: PolicyDecision,
                          second: BaseException) -> BaseException:
    """``first`` (the chosen model's error) with a note saying the ``fallback`` call raised
    ``second``; raised when both models failed."""
    first.add_note(f"routellm: fell back to the {fallback.route} model {fallback.model!r}, which "
                   f"failed too: {type(second).__name__}: {str(second)[:300]}")
    return first


def call_with_fallback(
    decision: PolicyDecision,
    call: Callable[[PolicyDecision], T],
    policy: FallbackPolicy,
    on_error: OnError | None = None,
) -> tuple[T, PolicyDecision]:
    """``(call(decision), decision)``, or the fallback's result and decision when the first
    call raised and ``policy`` retries it. ``on_error(decision, exc, fallback_or_None)`` is
    told of every failed attempt before the fallback is made or the error re-raised."""
    try:
        return call(decision), decision
    except BaseException as exc:
        fallback = policy.target(decision, exc)
        if on_error is not None:
            on_error(decision, exc, fallback)
        if fallback is None:
            raise
        first = exc
    try:
        return call(fallback), fallback
    except BaseException as exc:
        if on_error is not None:
            on_error(fallback, exc, None)
        if not policy.handles(exc):
            raise
        raise note_fallback_failure(first, fallback, exc) from None


async def acall_with_fallback(
    decision: PolicyDecision,
    call: Callable[[PolicyDecision], Awaitable[T]],
    policy: FallbackPolicy,
    on_error: OnError | None = None,
) -> tuple[T, PolicyDecision]:
    """The async form of :func:`call_with_fallback`; ``call`` returns an awaitable."""
    try:
        return await call(decision), decision
    except BaseException as exc:
        fallback = policy.target(decision, exc)
        if on_error is not None:
            on_error(decision, exc, fallback)
        if fallback is None:
            raise
        first = exc
    try:
        return await call(fallback), fallback
    except BaseException as exc:
        if on_error is not None:
            on_error(fallback, exc, None)
        if not policy.handles(exc):
            raise
        raise note_fallback_failure(first, fallback, exc) from None


def stream_with_fallback(
    decision: PolicyDecision,
    open_stream: Callable[[PolicyDecision], Any],
    policy: FallbackPolicy,
    on_error: OnError | None = None,
) -> Iterator[tuple[PolicyDecision, Any]]:
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

    def first_chunk(dec: PolicyDecision) -> tuple[Iterator[Any], list[Any]]:
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
    decision: PolicyDecision,
    open_stream: Callable[[PolicyDecision], Any],
    policy: FallbackPolicy,
    on_error: OnError | None = None,
) -> AsyncIterator[tuple[PolicyDecision, Any]]:
    """The async form of :func:`stream_with_fallback`: ``open_stream`` returns an async
    iterator, or an awaitable of one (as LlamaIndex's ``astream_chat`` does)."""

    async def first_chunk(dec: PolicyDecision) -> tuple[AsyncIterator[Any], list[Any]]:
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
    "FallbackPolicy",
    "acall_with_fallback",
    "astream_with_fallback",
    "call_with_fallback",
    "note_fallback_failure",
    "stream_with_fallback",
]
