"""What the encoders read: validated texts, cut to a bounded size, keyed for the caches."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def validate_texts(texts: Sequence[str]) -> list[str]:
    """Return ``texts`` as a list, or raise a ``ValueError``/``TypeError`` naming the bad item."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of strings, got a single string; wrap it in a list")
    texts = list(texts)
    if not texts:
        raise ValueError("expected at least one text to score, got an empty sequence")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is {type(t).__name__}, not str: {t!r:.80}")
        if not t.strip():
            raise ValueError(f"text {i} is empty or whitespace only")
    return texts


MAX_CHARS = 100_000


def scoring_text(text: str, max_chars: int = MAX_CHARS) -> str:
    """The part of ``text`` the encoder reads: its first ``max_chars`` characters, with lone
    UTF-16 surrogates (invalid Unicode, e.g. from a broken client's JSON) replaced by U+FFFD.

    The model then keeps its own token window (256 tokens for all-MiniLM-L6-v2), so for any
    ordinary text the cut changes nothing; it only bounds the tokenizer's work on huge inputs.

    Example:
        >>> scoring_text("ab\\ud800cd") == "ab\\ufffdcd", len(scoring_text("x" * 200_000))
        (True, 100000)
    """
    text = text[:max_chars]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _key(text: str) -> str:
    """The cache key of a text (sha1 of its UTF-8 bytes)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
