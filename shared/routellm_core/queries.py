"""Which text a routed call is scored on: picking the query out of a conversation.

Both adapters turn a framework's messages into ``(role, text)`` turns and ask this module for
the query. ``role`` is the framework's own name for the speaker (``"user"``, ``"human"``,
``"assistant"``, ...); ``text`` is the turn's text, ``""`` when it is empty, or ``None`` when it
has no text, only images or files (:class:`NoQueryText`: the failure policy decides such a call).
By default the query is the last user turn, as in RouteLLM; ``"all_user"``
joins every user turn. Errors name what is missing, never a silent default.

Example:
    >>> from routellm_core.queries import query_from_turns
    >>> turns = [("system", "Be brief."), ("user", "hi"), ("assistant", "hello"),
    ...          ("user", "Prove that there are infinitely many primes.")]
    >>> query_from_turns(turns)
    'Prove that there are infinitely many primes.'
    >>> query_from_turns(turns, "all_user")
    'hi\\n\\nProve that there are infinitely many primes.'
"""

from __future__ import annotations

from collections.abc import Sequence

from routellm_core.errors import NoQueryText

QUERY_MODES: tuple[str, ...] = ("last_user", "all_user")
USER_ROLES: tuple[str, ...] = ("user", "human")


def check_query_mode(query_from: object) -> object:
    """Return ``query_from`` if it is a known mode or a callable, else raise ``ValueError``."""
    if callable(query_from) or query_from in QUERY_MODES:
        return query_from
    raise ValueError(f"query_from must be one of {list(QUERY_MODES)} or a callable, got {query_from!r}")


def check_query_text(text: object, source: str = "the query") -> str:
    """``text`` if it is a non-blank string; else a ``TypeError`` / ``ValueError`` naming ``source``."""
    if not isinstance(text, str):
        raise TypeError(f"{source} must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{source} is empty; routing needs text")
    return text


def query_from_turns(
    turns: Sequence[tuple[str, str | None]],
    query_from: str = "last_user",
    *,
    user_roles: Sequence[str] = USER_ROLES,
) -> str:
    """The text to route on: the last user turn (``"last_user"``) or all of them (``"all_user"``).

    Raises:
        NoQueryText: the user turn (or all of them) holds no text, only images or files.
        ValueError: no user turn, a user turn (or all of them) of blank text, or an unknown mode.
    """
    if query_from not in QUERY_MODES:
        raise ValueError(f"query_from must be one of {list(QUERY_MODES)}, got {query_from!r}")
    users = [text for role, text in turns if role in user_roles]
    if not users:
        kinds = sorted({str(role) for role, _ in turns}) or ["nothing"]
        raise ValueError(f"no user message to route on: the input holds {', '.join(kinds)}. "
                         "Routing scores the user's text; pass query_from=callable to choose another")
    if query_from == "last_user":
        text = users[-1]
        if text is None:
            raise NoQueryText("no text to route on: the last user message has no text content (only "
                              "non-text blocks such as images or files); routing needs text")
        if not text.strip():
            raise ValueError("the last user message has no text content (empty text, or only non-text "
                             "blocks such as images or files); routing needs text")
        return text
    text = "\n\n".join(t for t in users if t and t.strip())
    if not text:
        if all(u is None for u in users):
            raise NoQueryText("no text to route on: the user messages have no text content (only "
                              "non-text blocks such as images or files); routing needs text")
        raise ValueError("the user messages have no text content; routing needs text")
    return text


__all__ = ["QUERY_MODES", "USER_ROLES", "NoQueryText", "check_query_mode", "check_query_text", "query_from_turns"]
