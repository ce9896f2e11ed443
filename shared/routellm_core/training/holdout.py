"""Hold-out splits by query: the same seed leaves out the same queries, whatever else is in the data.

``routellm train --holdout 0.2`` leaves out exactly the queries that ``routellm promote
--holdout 0.2`` evaluates on: :func:`holdout_mask` hashes each query's normalised text with the
seed. :mod:`routellm_core.learning.promote` re-exports both names.

Example:
    >>> from routellm_core.training.holdout import holdout_mask
    >>> queries = ["a", "b", "c", "d"]
    >>> holdout_mask(queries, 0.5, seed=0).tolist() == holdout_mask(queries[::-1], 0.5, seed=0).tolist()[::-1]
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from routellm_core.data.templates import normalize_text

__all__ = ["holdout_mask", "split_holdout"]


def holdout_mask(queries: Sequence[str], fraction: float, *, seed: int = 0) -> np.ndarray:
    """``True`` for the queries held out: a seeded hash of the normalised text below ``fraction``
    (the same query is always on the same side, whatever else is in the data)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction!r}")
    out = np.empty(len(queries), dtype=bool)
    for i, q in enumerate(queries):
        digest = hashlib.sha256(f"{seed}\x00{normalize_text(q)}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2**64 < fraction
    return out


def split_holdout(battles: pd.DataFrame, fraction: float, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(training, held_out)`` battles by :func:`holdout_mask` of their queries."""
    mask = holdout_mask(battles["query"].tolist(), fraction, seed=seed)
    return battles[~mask].reset_index(drop=True), battles[mask].reset_index(drop=True)
