"""When the chosen model raises: call another one, in the spirit of LangChain's ``with_fallbacks``.

The router picks a model; that model may still fail (a timeout, a rate limit, a server error).
A :class:`FallbackPolicy` says which model is called instead, and for which exceptions:

- ``"auto"`` (the default): a pair falls back from weak to strong (the answer gets better, the
  bill bigger; a failing strong model raises, since falling back to the weak one would silently
  lower quality), a pool down its utility ranking (what the rule would have chosen without the
  failed model);
- ``"weak_to_strong"``, ``"strong_to_weak"``, ``"both"``: the directions of a pair;
- ``"next_best"``: down the ranking (for a pair the same as ``"both"``);
- ``"none"``: never.

Only ``Exception`` subclasses are ever handled: ``KeyboardInterrupt``, ``SystemExit``,
``GeneratorExit`` and ``asyncio.CancelledError`` always propagate. The fallback is recorded in
the decision (``fallback_from``, the error, ``tried``); both adapters call the helpers here, so
sync, async and streaming calls fall back the same way. A stream falls back only before its
first chunk: once text reached the caller, an error propagates. When every model tried fails,
the first model's exception is raised, with notes naming the fallbacks' failures.

Example:
    >>> from routellm_core.routing import Decision, FallbackPolicy, call_with_fallback
    >>> d = Decision.by_threshold(0.2, 0.5, {"strong": "big", "weak": "small"}, router="sw_ranking")
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

from routellm_core.routing.decision import Decision

T = TypeVar("T")
OnError = Callable[[Decision, BaseException, "Decision | None"], None]

FALLBACK_MODES: tuple[str, ...] = ("auto", "weak_to_strong", "strong_to_weak", "both", "next_best", "none")
_PAIR_DIRECTIONS: dict[str, tuple[bool, bool]] = {  # (weak -> strong, strong -> weak)
    "auto": (True, False), "weak_to_strong": (True, False), "strong_to_weak": (False, True),
    "both": (True, True), "next_best": (True, True), "none": (False, False),
}


@dataclass(frozen=True)
class FallbackPolicy:
    """Which failed calls are retried, and on which model.

    Args:
        mode: one of :data:`FALLBACK_MODES` (see the module docstring).
        max_fallbacks: fallbacks per call at most (``None``: every remaining model; 0: none).
        exceptions: exception types that trigger a fallback (default every ``Exception``);
            others propagate at once. Non-``Exception`` types are never handled.

    Example:
        >>> from routellm_core.routing import Decision
        >>> d = Decision(route="b", model="b", router="quality", rule="utility",
        ...              models={"a": "a", "b": "b", "c": "c"}, reference="a",
        ...              utilities={"a": 0.1, "b": 0.7, "c": 0.4})
        >>> nxt = FallbackPolicy().target(d, TimeoutError("b timed out"))
        >>> nxt.model, nxt.fallback_from, nxt.tried
        ('c', 'b', ('b',))
    """

    mode: str = "auto"
    max_fallbacks: int | None = None
    exceptions: tuple[type[Exception], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.mode not in FALLBACK_MODES:
            raise ValueError(f"fallback must be one of {list(FALLBACK_MODES)}, got {self.mode!r}")
        m = self.max_fallbacks
        if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m < 0):
            raise ValueError(f"max_fallbacks must be an integer >= 0 or None, got {m!r}")
        exc = self.exceptions
        if isinstance(exc, type):
            exc = (exc,)
            object.__setattr__(self, "exceptions", exc)
        if not isinstance(exc, tuple) or not all(isinstance(e, type) and issubclass(e, Exception) for e in exc):
            raise TypeError(f"exceptions must be a tuple of Exception subclasses, got {self.exceptions!r}")

    @classmethod
    def coerce(cls, value: FallbackPolicy | str | bool | None) -> FallbackPolicy:
        """A policy from a policy, a mode name, or a bool (``True``: ``"auto"``, ``False`` /
        ``None``: ``"none"``).

        Example:
            >>> FallbackPolicy.coerce("both")
            FallbackPolicy(mode='both', max_fallbacks=None, exceptions=(<class 'Exception'>,))
        """
        if isinstance(value, cls):
            return value
        if value is None or isinstance(value, bool):
            return cls(mode="auto" if value else "none")
        if isinstance(value, str) and value in FALLBACK_MODES:
            return cls(mode=value)
        raise ValueError(f"fallback must be one of {list(FALLBACK_MODES)}, a bool, or a FallbackPolicy; "
                         f"got {value!r}")

    def check_for(self, rule: str) -> FallbackPolicy:
        """``self`` if its mode applies to the rule (``"threshold"`` or ``"utility"``), else a
        ``ValueError``: a pool has no strong/weak directions."""
        if rule == "utility" and self.mode in ("weak_to_strong", "strong_to_weak"):
            raise ValueError(f"fallback {self.mode!r} is a direction of a strong/weak pair; a pool of "
                             "models falls back 'next_best' (or 'auto', 'both', 'none')")
        return self

    def handles(self, exc: BaseException) -> bool:
        """Whether ``exc`` may trigger a fallback (an ``Exception`` of a configured type)."""
        return isinstance(exc, Exception) and isinstance(exc, self.exceptions)

    def target(self, decision: Decision, exc: BaseException) -> Decision | None:
        """The decision for the next call after ``decision``'s model raised ``exc``, or ``None``
        when this failure is not retried."""
        if self.mode == "none" or not self.handles(exc):
            return None
        tried = (*decision.tried, decision.route)
        if self.max_fallbacks is not None and len(tried) > self.max_fallbacks:
            return None
        if decision.rule == "threshold":
            up, down = _PAIR_DIRECTIONS[self.mode]
            allowed = {"weak": up, "strong": down}
            rest = [r for r in decision.ranking() if r not in tried and allowed.get(decision.route, False)]
        else:
            rest = [r for r in decision.ranking() if r not in tried]
        if not rest:
            return None
        return dataclasses.replace(
            decision, route=rest[0], model=decision.models[rest[0]], fallback_from=decision.route,
            tried=tried, fallback_error_type=type(exc).__name__, fallback_error_message=str(exc)[:500])


def add_note(exc: BaseException, note: str) -> BaseException:
    """Add ``note`` to ``exc`` once (``BaseException.add_note``; on Python 3.10, which lacks
    it, the note is kept in ``__notes__`` but not printed with the traceback)."""
    notes = list(getattr(exc, "__notes__", ()))
    if note not in notes:
        if hasattr(exc, "add_note"):
            exc.add_note(note)
        else:
            exc.__notes__ = [*notes, note]  # type: ignore[attr-defined]
    return exc


def note_fallback_failure(first: BaseException, fallback: Decision,
                          second: BaseException) -> BaseException:
    """``first`` (the chosen model's error) with a note saying the ``fallback`` call raised
    ``second``; raised when every model tried failed."""
    where = f"the {fallback.route} model " if fallback.route != fallback.model else "the model "
    return add_note(first, f"routellm: fell back to {where}{fallback.model!r}, which "
                           f"failed too: {type(second).__name__}: {str(second)[:300]}")


def call_with_fallback(
    decision: Decision,
    call: Callable[[Decision], T],
    policy: FallbackPolicy,
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
    policy: FallbackPolicy,
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
                   policy: FallbackPolicy, on_error: OnError | None) -> tuple[Decision, BaseException]:
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
    policy: FallbackPolicy,
    on_error: OnError | None = None,
) -> Iterator[tuple[Decision, Any]]:
    """Yield ``(decision, chunk)`` from ``open_stream(decision)``; when opening the stream or
    reading its first chunk raises, fall back as :func:`call_with_fallback` does. After the
    first chunk, errors propagate (the caller has already seen the answer's start).

    Example:
        >>> from routellm_core.routing import Decision
        >>> d = Decision.by_threshold(0.2, 0.5, {"strong": "big", "weak": "small"}, router="r")
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
    policy: FallbackPolicy,
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
    "FallbackPolicy",
    "OnError",
    "acall_with_fallback",
    "add_note",
    "astream_with_fallback",
    "call_with_fallback",
    "note_fallback_failure",
    "stream_with_fallback",
]
