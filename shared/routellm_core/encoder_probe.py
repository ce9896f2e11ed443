"""Which encoder a router was trained with, checked by behaviour: probe texts and their vectors.

A checkpoint records the vectors its encoder gave for a few fixed texts. Before a loaded router
embeds anything, the encoder it is given must reproduce them (cosine >= 0.99 for every probe),
whatever it is called: a local copy of the same model passes, another model or another
distillation fails with :class:`EncoderMismatchError`, instead of scoring with vectors the
router's weights were never fitted to.

Example:
    >>> from routellm_core.encoders import QueryEncoder
    >>> probe = encoder_probe(QueryEncoder())
    >>> check_encoder(QueryEncoder(), probe, router="sw_ranking")   # the same model: passes
    >>> check_encoder(QueryEncoder("static:sentence-transformers/all-MiniLM-L6-v2"), probe,
    ...               router="sw_ranking")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    routellm_core.errors.EncoderMismatchError: ...

A router loaded from a checkpoint holds the record as ``encoder_probe_``;
:func:`check_router_encoder` checks each encoder it is given against it, once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from routellm_core.errors import EncoderMismatchError

if TYPE_CHECKING:
    from routellm_core.encoders import QueryEncoder

PROBE_TEXTS = (
    "What is the capital of France?",
    "Write a Python function that reverses a singly linked list in place.",
    "Prove that there are infinitely many prime numbers.",
)
MIN_COSINE = 0.99


def encoder_probe(encoder: QueryEncoder) -> dict[str, Any]:
    """The probe record saved in checkpoints: encoder name, probe texts, their vectors."""
    vecs = encoder.encode(list(PROBE_TEXTS))
    return {
        "encoder": encoder.name,
        "texts": list(PROBE_TEXTS),
        "embeddings": [[round(float(x), 5) for x in row] for row in vecs],
    }


def check_probe(probe: Any) -> dict[str, Any]:
    """``probe`` if it is a well-formed probe record, else ``ValueError`` saying what is wrong."""
    if not isinstance(probe, Mapping):
        raise ValueError(f"encoder_probe must be a JSON object, got {type(probe).__name__}")
    texts, rows = probe.get("texts"), probe.get("embeddings")
    if not isinstance(texts, list) or not 1 <= len(texts) <= 16 or not all(
        isinstance(t, str) and t.strip() for t in texts
    ):
        raise ValueError("encoder_probe.texts must be a list of 1-16 non-empty strings")
    if not isinstance(rows, list) or len(rows) != len(texts):
        raise ValueError("encoder_probe.embeddings must hold one vector per probe text")
    sizes = {len(r) if isinstance(r, list) else -1 for r in rows}
    if len(sizes) != 1 or not 1 <= sizes.pop() <= 8192 or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for r in rows for x in r
    ):
        raise ValueError("encoder_probe.embeddings must be equal-length lists of finite numbers")
    return dict(probe)


def _hint(recorded: str, encoder: QueryEncoder) -> str:
    """What to do about a mismatch, after the error's first sentence."""
    if recorded == encoder.name:  # the very encoder the checkpoint names: its record is what changed
        return ("; the checkpoint names this encoder, so its recorded probe vectors (encoder_probe in "
                "config.json) were edited or are corrupt, or the model under this name changed: restore the "
                "checkpoint or retrain it")
    return (f"; load it with the encoder it was trained with ({recorded!r}, the default when you pass "
            "none) or retrain it on this one")


def check_encoder(encoder: QueryEncoder, probe: Mapping[str, Any], *, router: str) -> None:
    """:class:`EncoderMismatchError` unless ``encoder`` reproduces ``probe``'s vectors."""
    want = np.asarray(probe["embeddings"], dtype=np.float64)
    recorded = probe.get("encoder") or "its training encoder"
    got = encoder.encode(list(probe["texts"])).astype(np.float64)
    if got.shape != want.shape:
        raise EncoderMismatchError(
            f"{router} router was trained with {recorded!r} ({want.shape[1]}-dim vectors), but "
            f"the encoder {encoder.name!r} gives {got.shape[1]}-dim vectors{_hint(recorded, encoder)}"
        )
    cos = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    if float(cos.min()) < MIN_COSINE:
        raise EncoderMismatchError(
            f"{router} router was trained with {recorded!r}, but the encoder {encoder.name!r} embeds "
            f"its probe texts differently (cosine {float(cos.min()):.3f} < {MIN_COSINE}){_hint(recorded, encoder)}"
        )


def check_router_encoder(router: Any, encoder: QueryEncoder) -> None:
    """:func:`check_encoder` of ``encoder`` against the probe record of ``router`` (its
    ``encoder_probe_``, set when it was loaded from a checkpoint), once per encoder instance;
    nothing when ``router`` holds no record. Errors name the router by its ``name``.

    Example:
        >>> from types import SimpleNamespace
        >>> from routellm_core.encoders import QueryEncoder
        >>> loaded = SimpleNamespace(name="mf", encoder_probe_=encoder_probe(QueryEncoder()))
        >>> check_router_encoder(loaded, QueryEncoder())   # reproduces the record: passes
        >>> check_router_encoder(SimpleNamespace(name="mf"), QueryEncoder())   # no record: nothing to check
    """
    probe = getattr(router, "encoder_probe_", None)
    if probe is None or vars(router).get("_probe_checked") is encoder:
        return
    check_encoder(encoder, probe, router=router.name)
    vars(router)["_probe_checked"] = encoder
