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
