"""Which unlabelled queries to spend judge labels on.

A judge label costs two model answers and two judge calls, so a learning cycle labels a few
hundred of the queries it has captured, not all of them. :func:`select_queries` picks them:

- ``"random"`` (the default: no other strategy beat it reliably on the learning curves): a
  seeded random sample;
- ``"uncertain"``: the queries whose win rate lies nearest the live threshold
  (``|win_rate - threshold|`` smallest): the calls the router is least sure how to route at the
  setting in use, where a label can flip a decision;
- ``"uncertain-diverse"``: a pool of the ``pool_factor * k`` most uncertain queries (4 times k),
  cut into ``k`` clusters by k-means on their embeddings, and the most uncertain query of each
  cluster, so that the labels do not all land on one topic that happens to sit near the
  threshold;
- ``"diverse"``: no win rates, only coverage: the queries cut into ``k`` clusters by k-means on
  their embeddings, and the query nearest each cluster's centre, so that the labels spread over
  the topics of the traffic in proportion to it.

Every strategy returns distinct indices into ``queries``, at most ``k`` of them, the same ones
for the same ``seed``; queries whose normalised text (lower case, runs of non-alphanumerics as
one space) is the same are one query and never picked twice (the first in the strategy's order
stands for them). Ties in uncertainty are broken by a seeded random order, not by position.

``benchmarks/learning_curve.py --strategies`` measures them (see ``docs/learning.md``).

Example:
    >>> import numpy as np
    >>> from routellm_core.learning.select import select_queries
    >>> queries = ["hi", "Hi!", "prove Fermat", "2+2?", "write a sonnet"]
    >>> win_rates = [0.50, 0.50, 0.90, 0.20, 0.45]
    >>> select_queries(queries, 2, strategy="uncertain", win_rates=win_rates, threshold=0.5)  # "hi" = "Hi!"
    [0, 4]
    >>> emb = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0.1]])  # two topics: chat, and maths
    >>> select_queries(queries, 2, strategy="uncertain-diverse", win_rates=win_rates, threshold=0.5,
    ...                embeddings=emb)                                   # one of each topic
    [0, 3]
    >>> select_queries(queries, 3, strategy="random", seed=1) == select_queries(queries, 3, strategy="random", seed=1)
    True
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence

import numpy as np

from routellm_core.data.templates import normalize_text

STRATEGIES: tuple[str, ...] = ("random", "uncertain", "uncertain-diverse", "diverse")
"""The strategies :func:`select_queries` knows."""

POOL_FACTOR = 4
"""``"uncertain-diverse"`` clusters the ``POOL_FACTOR * k`` most uncertain queries."""

_KMEANS_ITERATIONS = 25


def check_strategy(strategy: object) -> str:
    """``strategy`` if it is one of :data:`STRATEGIES`, else a ``ValueError`` naming the close match.

    Example:
        >>> check_strategy("uncertian")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown selection strategy 'uncertian'; did you mean 'uncertain'? (choose from 'random', ...)
    """
    if isinstance(strategy, str) and strategy in STRATEGIES:
        return strategy
    close = difflib.get_close_matches(str(strategy), STRATEGIES, n=1, cutoff=0.6) if isinstance(strategy, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown selection strategy {strategy!r}{hint} (choose from "
                     f"{', '.join(repr(s) for s in STRATEGIES)})")


def uncertainty_order(win_rates: Sequence[float] | np.ndarray, threshold: float, *, seed: int = 0) -> np.ndarray:
    """Indices of ``win_rates`` from nearest the threshold to farthest; ties in a seeded random order.

    Example:
        >>> uncertainty_order([0.9, 0.52, 0.3, 0.48], 0.5).tolist()[2:]
        [2, 0]
    """
    rates = _rates(win_rates, None)
    thr = _threshold(threshold)
    tiebreak = np.random.default_rng(seed).permutation(len(rates))
    return np.lexsort((tiebreak, np.abs(rates - thr)))


def select_queries(
    queries: Sequence[str],
    k: int,
    *,
    strategy: str = "random",
    win_rates: Sequence[float] | np.ndarray | None = None,
    threshold: float | None = None,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
) -> list[int]:
    """Pick at most ``k`` of ``queries`` to label (see the module docstring).

    Args:
        queries: the unlabelled query texts.
        k: how many to pick (fewer when there are fewer distinct queries).
        strategy: one of :data:`STRATEGIES`.
        win_rates: the live router's win rate of each query (``"uncertain"``,
            ``"uncertain-diverse"``).
        threshold: the live threshold the win rates are compared with (the same two).
        embeddings: one row per query (``"uncertain-diverse"``), e.g.
            ``router.encoder_.encode(queries)``.
        seed: seeds the random sample, the order of ties and k-means.

    Returns:
        Distinct indices into ``queries``: for ``"uncertain"`` from the most uncertain on, for
        the others in the order picked.

    Raises:
        ValueError: an unknown strategy (with the close match), ``k`` that is not an integer
            >= 0, missing ``win_rates`` / ``threshold`` / ``embeddings`` for a strategy that
            needs them, win rates or embeddings that are not finite, or whose length differs
            from ``queries``.

    Example:
        >>> select_queries(["a", "b", "c"], 2, strategy="uncertain", win_rates=[0.2, 0.55, 0.7], threshold=0.6)
        [1, 2]
    """
    strategy = check_strategy(strategy)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if isinstance(queries, str):
        raise ValueError("queries must be a sequence of query texts, not one string")
    n = len(queries)
    rates = None if win_rates is None else _rates(win_rates, n)
    emb = None if embeddings is None else _embeddings(embeddings, n)
    if strategy in ("uncertain", "uncertain-diverse"):
        if rates is None or threshold is None:
            missing = " and ".join(name for name, v in (("win_rates", rates), ("threshold", threshold)) if v is None)
            raise ValueError(f"strategy {strategy!r} needs {missing}: the live router's win rate of each query and "
                             "the threshold it routes with")
        thr = _threshold(threshold)
    if strategy in ("uncertain-diverse", "diverse") and emb is None:
        raise ValueError(f"strategy {strategy!r} needs embeddings: one row per query, e.g. "
                         "router.encoder_.encode(queries)")
    if k == 0 or n == 0:
        return []
    keys = [normalize_text(str(q)) for q in queries]
    if strategy == "random":
        return _distinct(np.random.default_rng(seed).permutation(n), keys, k)
    if strategy == "diverse":
        assert emb is not None
        distinct = _distinct(np.random.default_rng(seed).permutation(n), keys, n)
        if len(distinct) <= k:
            return distinct
        labels, centres = _kmeans(emb[distinct], k, seed)
        dist = ((emb[distinct] - centres[labels]) ** 2).sum(1)
        best: dict[int, tuple[float, int]] = {}
        for i, label, d in zip(distinct, labels.tolist(), dist.tolist()):
            if label not in best or d < best[label][0]:
                best[label] = (d, i)
        return [best[label][1] for label in sorted(best)]
    assert rates is not None
    order = uncertainty_order(rates, thr, seed=seed)
    if strategy == "uncertain":
        return _distinct(order, keys, k)
    assert emb is not None
    pool = _distinct(order, keys, POOL_FACTOR * k)
    if len(pool) <= k:
        return pool
    labels, _ = _kmeans(emb[pool], k, seed)
    picked: list[int] = []
    seen: set[int] = set()
    for i, label in zip(pool, labels):  # the pool runs from the most uncertain on
        if label not in seen:
            seen.add(int(label))
            picked.append(i)
    if len(picked) < k:  # fewer non-empty clusters than k: the most uncertain of the rest
        chosen = set(picked)
        picked += [i for i in pool if i not in chosen][: k - len(picked)]
    return picked


def _distinct(order: Sequence[int] | np.ndarray, keys: list[str], k: int) -> list[int]:
    out: list[int] = []
    seen: set[str] = set()
    for i in order:
        key = keys[int(i)]
        if key in seen:
            continue
        seen.add(key)
        out.append(int(i))
        if len(out) == k:
            break
    return out


def _rates(win_rates: Sequence[float] | np.ndarray, n: int | None) -> np.ndarray:
    try:
        rates = np.asarray(win_rates, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("win_rates must be numbers, one per query") from None
    if rates.ndim != 1:
        raise ValueError(f"win_rates must be one number per query (1-D), got shape {rates.shape}")
    if n is not None and len(rates) != n:
        raise ValueError(f"win_rates has {len(rates)} value(s) but there are {n} queries")
    if not np.isfinite(rates).all():
        bad = int(np.flatnonzero(~np.isfinite(rates))[0])
        raise ValueError(f"win_rates must be finite: win_rates[{bad}] is {rates[bad]}")
    return rates


def _threshold(threshold: float) -> float:
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number, got {threshold!r}") from None
    if not math.isfinite(thr):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    return thr


def _embeddings(embeddings: np.ndarray, n: int) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (one row per query), got shape {emb.shape}")
    if len(emb) != n:
        raise ValueError(f"embeddings has {len(emb)} row(s) but there are {n} queries")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings must be finite")
    return emb


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster labels of the rows of ``x`` into ``k`` clusters, and the centres: k-means++
    seeding, then Lloyd steps."""
    rng = np.random.default_rng(seed)
    n = len(x)
    sq = (x * x).sum(1)
    centres = [int(rng.integers(n))]
    d2 = np.maximum(sq + sq[centres[0]] - 2 * x @ x[centres[0]], 0.0)
    for _ in range(1, k):
        total = d2.sum()
        nxt = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centres.append(nxt)
        d2 = np.minimum(d2, np.maximum(sq + sq[nxt] - 2 * x @ x[nxt], 0.0))
    c = x[centres].copy()
    labels = np.full(n, -1)
    for _ in range(_KMEANS_ITERATIONS):
        dist = sq[:, None] + (c * c).sum(1)[None, :] - 2 * x @ c.T
        new = dist.argmin(1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(c)
        np.add.at(sums, labels, x)
        filled = counts > 0  # an empty cluster keeps its centre
        c[filled] = sums[filled] / counts[filled, None]
    return labels, c


__all__ = ["POOL_FACTOR", "STRATEGIES", "check_strategy", "select_queries", "uncertainty_order"]
