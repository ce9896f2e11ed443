"""Progress on long scoring runs: win rates in chunks behind a tqdm bar on stderr.

The bar shows only when asked and when stderr is a terminal, so logs and pipes stay clean.

Example:
    >>> from routellm_core.progress import win_rates_in_chunks
    >>> from routellm_core.routers import RandomRouter
    >>> r = RandomRouter(seed=0).fit(None)
    >>> win_rates_in_chunks(r, ["a", "b", "c"], chunk_size=2).shape
    (3,)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["progress_wanted", "win_rates_in_chunks"]

CHUNK_SIZE = 256


def progress_wanted(show_progress: bool) -> bool:
    """``show_progress`` and stderr is an interactive terminal.

    Example:
        >>> progress_wanted(False)
        False
    """
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(show_progress and callable(isatty) and isatty())


def win_rates_in_chunks(
    router: Any,
    texts: Sequence[str],
    *,
    show_progress: bool = False,
    desc: str = "scoring",
    chunk_size: int = CHUNK_SIZE,
    **win_rate_options: Any,
) -> np.ndarray:
    """``router.win_rate(texts, **win_rate_options)``, ``chunk_size`` texts at a time.

    The result equals one call on all texts; a tqdm bar counts the texts when
    :func:`progress_wanted` says so.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    texts = list(texts)
    if not progress_wanted(show_progress) or len(texts) <= chunk_size:
        return np.asarray(router.win_rate(texts, **win_rate_options), dtype=float)
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(texts), desc=desc, unit="prompt", file=sys.stderr) as bar:
        for start in range(0, len(texts), chunk_size):
            chunk = texts[start : start + chunk_size]
            parts.append(np.asarray(router.win_rate(chunk, **win_rate_options), dtype=float))
            bar.update(len(chunk))
    return np.concatenate(parts)
