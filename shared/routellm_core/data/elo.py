"""Elo ratings from battles (Bradley-Terry MLE with ties) and the paper's grouping into tiers.

:func:`compute_elo` reproduces RouteLLM's ``compute_elo_mle_with_tie`` without scikit-learn:
RouteLLM duplicates every battle, labels an "a" win Y=1 twice, a "b" win Y=0 twice and a tie
once each way, then fits a logistic regression with no intercept on +ln(base) / -ln(base)
model indicators. The same likelihood, halved, is a Bradley-Terry fit on a win-count matrix
where a tie counts half for each side; it is solved by Newton's method on the aggregated
counts (:func:`routellm_core.bradley_terry.fit_bradley_terry`), so the cost grows with the
number of models, not of battles.

Example:
    >>> import pandas as pd
    >>> from routellm_core.data.elo import compute_elo, group_tiers
    >>> battles = pd.DataFrame({
    ...     "model_a": ["gpt-4"] * 6 + ["mixtral"] * 2,
    ...     "model_b": ["mixtral"] * 3 + ["llama"] * 3 + ["llama"] * 2,
    ...     "winner": ["a", "a", "b", "a", "a", "a", "a", "tie"]})
    >>> ratings = compute_elo(battles)
    >>> ratings.round(1).to_dict()
    {'gpt-4': 1213.5, 'mixtral': 1040.6, 'llama': 745.8}
    >>> group_tiers(ratings, n_tiers=2)
    {'llama': 0, 'mixtral': 1, 'gpt-4': 1}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from routellm_core.bradley_terry import fit_bradley_terry

__all__ = ["compute_elo", "group_tiers"]

# RouteLLM's raw arena labels are accepted beside the schema's "a" / "b" / "tie".
_WIN_A = frozenset({"a", "model_a"})
_WIN_B = frozenset({"b", "model_b"})
_TIE = frozenset({"tie", "tie (bothbad)"})


def compute_elo(
    battles: pd.DataFrame,
    *,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    sample_weight: Sequence[float] | np.ndarray | None = None,
) -> pd.Series:
    """Bradley-Terry (Elo-scale) ratings of the models in ``battles``, highest first.

    Args:
        battles: a frame with ``model_a``, ``model_b`` and ``winner`` ("a", "b" or "tie";
            RouteLLM's "model_a", "model_b", "tie (bothbad)" are accepted too).
        scale, base, init_rating: Elo conventions, ``P(a beats b) = 1 / (1 + base **
            ((R_b - R_a) / scale))``; ratings are centred so that their mean is ``init_rating``.
        sample_weight: one non-negative weight per battle (RouteLLM's similarity weights).

    Returns:
        A float Series indexed by model name, sorted from highest to lowest rating.

    Raises:
        ValueError: missing columns, no battles, an unknown winner, bad weights.
    """
    missing = [c for c in ("model_a", "model_b", "winner") if c not in battles.columns]
    if missing:
        raise ValueError(f"battles are missing columns {missing}")
    if len(battles) == 0:
        raise ValueError("cannot compute ratings from zero battles")
    if not (scale > 0 and base > 1):
        raise ValueError(f"need scale > 0 and base > 1, got scale={scale}, base={base}")
    winner = battles["winner"].astype(object).to_numpy()
    a_win = np.isin(winner, list(_WIN_A))
    b_win = np.isin(winner, list(_WIN_B))
    tie = np.isin(winner, list(_TIE))
    unknown = ~(a_win | b_win | tie)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise ValueError(f"battle {i} has winner {winner[i]!r}; expected 'a', 'b' or 'tie'")

    n = len(battles)
    if sample_weight is None:
        w = np.ones(n)
    else:
        w = np.asarray(sample_weight, dtype=np.float64).ravel()
        if w.shape != (n,):
            raise ValueError(f"sample_weight has {w.size} entries; expected one per battle ({n})")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("sample_weight must be finite and non-negative")

    codes, models = pd.factorize(
        pd.concat([battles["model_a"], battles["model_b"]], ignore_index=True), sort=True
    )
    ia, ib = codes[:n], codes[n:]
    if np.any(ia == ib):
        i = int(np.flatnonzero(ia == ib)[0])
        raise ValueError(f"battle {i} pits {models[ia[i]]!r} against itself")
    k = len(models)
    wins = np.zeros((k, k))
    np.add.at(wins, (ia[a_win], ib[a_win]), w[a_win])
    np.add.at(wins, (ib[b_win], ia[b_win]), w[b_win])
    np.add.at(wins, (ia[tie], ib[tie]), 0.5 * w[tie])
    np.add.at(wins, (ib[tie], ia[tie]), 0.5 * w[tie])

    ratings = fit_bradley_terry(wins, base=base)
    elo = scale * (ratings - ratings.mean()) + init_rating
    return pd.Series(elo, index=pd.Index(list(models), name="model"), name="elo").sort_values(
        ascending=False, kind="stable"
    )


def group_tiers(ratings: pd.Series | Mapping[str, float], n_tiers: int = 10) -> dict[str, int]:
    """Split models into ``n_tiers`` contiguous rating bands of least within-tier variance.

    Models are sorted by rating and the sorted list is cut into ``n_tiers`` non-empty groups
    that minimise the total sum of squared deviations from each group's mean (exact dynamic
    programming, as the RouteLLM paper groups Chatbot-Arena models into 10 tiers). Tier 0
    holds the lowest ratings. With no more models than tiers every model gets its own tier.

    Example:
        >>> group_tiers({"a": 1.0, "b": 1.1, "c": 5.0, "d": 5.2}, n_tiers=2)
        {'a': 0, 'b': 0, 'c': 1, 'd': 1}
    """
    if isinstance(n_tiers, bool) or not isinstance(n_tiers, (int, np.integer)) or n_tiers < 1:
        raise ValueError(f"n_tiers must be a positive integer, got {n_tiers!r}")
    s = pd.Series(ratings, dtype=float)
    if s.isna().any():
        raise ValueError(f"ratings contain NaN for {list(s.index[s.isna()])}")
    if not s.index.is_unique:
        raise ValueError("ratings list a model more than once")
    s = s.sort_values(kind="stable")
    names = [str(m) for m in s.index]
    n = len(s)
    if n <= n_tiers:
        return {m: i for i, m in enumerate(names)}

    v = s.to_numpy()
    s1 = np.concatenate([[0.0], np.cumsum(v)])
    s2 = np.concatenate([[0.0], np.cumsum(v * v)])

    def sse(i: int, j: np.ndarray | int) -> np.ndarray:
        """Sum of squared deviations of v[i:j] (vectorised over i)."""
        cnt = j - i
        return (s2[j] - s2[i]) - (s1[j] - s1[i]) ** 2 / cnt

    # best[t, j]: least cost of cutting v[:j] into t + 1 tiers; cut[t, j]: start of the last tier.
    best = np.full((n_tiers, n + 1), np.inf)
    cut = np.zeros((n_tiers, n + 1), dtype=int)
    best[0, 1:] = [sse(0, j) for j in range(1, n + 1)]
    for t in range(1, n_tiers):
        for j in range(t + 1, n + 1):
            starts = np.arange(t, j)
            total = best[t - 1, starts] + sse(starts, j)  # type: ignore[arg-type]
            pick = int(np.argmin(total))
            best[t, j], cut[t, j] = total[pick], starts[pick]
    bounds = [n]
    for t in range(n_tiers - 1, 0, -1):
        bounds.append(cut[t, bounds[-1]])
    bounds.append(0)
    bounds.reverse()
    return {names[i]: tier for tier in range(n_tiers) for i in range(bounds[tier], bounds[tier + 1])}
