"""A battles frame as the arrays routers train on, and per-battle sample weights checked.

Example:
    >>> from routellm_core.data.schema import make_battles
    >>> rows = [{"query": "q1", "model_a": "big", "model_b": "small", "winner": "a", "source": "doc"},
    ...         {"query": "q2", "model_a": "small", "model_b": "big", "winner": "tie", "source": "doc"}]
    >>> queries, models, q_idx, a_idx, b_idx, label = battle_arrays(make_battles(rows))
    >>> models, a_idx.tolist(), label.tolist()
    (['big', 'small'], [0, 1], [1.0, 0.5])
    >>> check_sample_weight(None, 2).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["battle_arrays", "check_sample_weight"]


def check_sample_weight(sample_weight: np.ndarray | None, n: int) -> np.ndarray:
    """``sample_weight`` as float64 (ones when ``None``), or a ``ValueError`` unless it holds
    ``n`` finite non-negative numbers with a positive sum."""
    if sample_weight is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"sample_weight must be {n} finite non-negative numbers with a positive sum")
    return w


def balanced_weight(n_general: int, n_domain: int, domain_weight: float = 1.0) -> float:
    """The weight of each in-domain battle added to ``n_general`` general ones so that the
    in-domain battles together weigh as much as the general data (times ``domain_weight``):
    few labels of the user's own domain would otherwise vanish among the general battles.
    ``routellm eval --cv`` and ``routellm train --init`` both use it.

    Example:
        >>> balanced_weight(56_000, 500)
        112.0
    """
    if n_domain < 1:
        raise ValueError(f"no in-domain battles to weigh (n_domain={n_domain})")
    return max(n_general, n_domain) / n_domain * domain_weight


def battle_arrays(
    battles: pd.DataFrame, models: list[str] | None = None
) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index a battles frame: unique queries, models, and per-battle (query, a, b, label) arrays.

    Labels are P(a wins): 1 for "a", 0 for "b", 0.5 for "tie".
    """
    queries, q_idx = np.unique(battles["query"].to_numpy(dtype=object), return_inverse=True)
    if models is None:
        models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    m_index = {m: i for i, m in enumerate(models)}
    a = battles["model_a"].map(m_index).to_numpy()
    b = battles["model_b"].map(m_index).to_numpy()
    label = battles["winner"].map({"a": 1.0, "b": 0.0, "tie": 0.5}).to_numpy(dtype=np.float32)
    return list(queries), models, q_idx.astype(np.int64), a.astype(np.int64), b.astype(np.int64), label
