"""Tryage's objective: pick ``argmax_m quality(x, m) - sum_j lambda_j * C_j(m)`` for each query.

Example:
    >>> import numpy as np
    >>> from routellm_core.nway.constraints import Constraint
    >>> from routellm_core.nway.objective import select
    >>> quality = np.array([[0.9, 0.8], [0.9, 0.2]])          # 2 queries x (big, small)
    >>> cost = Constraint("cost", {"big": 1.0, "small": 0.1})
    >>> idx, utility = select(quality, ["big", "small"], [cost], {"cost": 0.0})
    >>> idx.tolist()
    [0, 0]
    >>> select(quality, ["big", "small"], [cost], {"cost": 0.5})[0].tolist()
    [1, 0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from routellm_core.nway.constraints import Constraint, check_lambdas

__all__ = ["lambda_breakpoints", "penalty", "select"]


def penalty(
    models: Sequence[str],
    constraints: Sequence[Constraint],
    lambdas: Mapping[str, float] | None,
) -> np.ndarray:
    """``sum_j lambda_j * C_j(m)`` for each model in ``models`` (a constraint without a lambda weighs 0)."""
    weights = check_lambdas(lambdas, constraints)
    total = np.zeros(len(models), dtype=np.float64)
    for c in constraints:
        w = weights.get(c.name, 0.0)
        if w:
            total += w * c.vector(models)
    return total


def select(
    quality: np.ndarray,
    models: Sequence[str],
    constraints: Sequence[Constraint] = (),
    lambdas: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the chosen model per row of ``quality`` ``(n, m)``, and the utilities ``(n, m)``.

    Ties go to the model with the smaller penalty, then the smaller (normalised) constraint
    values, then the earlier column: a query with equal predicted quality goes to the cheaper
    model even when no weight is given.
    """
    q = np.asarray(quality, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != len(models) or q.shape[0] == 0:
        raise ValueError(f"quality must be (n_queries, {len(models)}), got {q.shape}")
    pen = penalty(models, constraints, lambdas)
    utility = q - pen[None, :]
    best = utility.max(axis=1, keepdims=True)
    tied = np.isclose(utility, best, rtol=0.0, atol=1e-12)
    # among tied models: the smallest penalty, then the smallest constraint values, then the first
    burden = sum((c.vector(models) for c in constraints), np.zeros(len(models)))
    rank = np.where(tied, pen[None, :] + 1e-9 * burden[None, :], np.inf)
    return rank.argmin(axis=1), utility


def lambda_breakpoints(
    quality: np.ndarray,
    cost: np.ndarray,
    *,
    max_points: int = 400,
    negative: bool = True,
) -> np.ndarray:
    """Weights where some query's choice can change when one cost vector is weighed by lambda.

    For models ``i`` costlier than ``j`` on a query, the choice between them flips at
    ``(q_i - q_j) / (c_i - c_j)``: a positive weight where ``i`` is predicted better, a negative
    one (rewarding cost) where it is predicted worse. Returns up to ``max_points`` quantiles of
    the positive values, ``0``, and a weight above all of them (every query on its cheapest
    model); with ``negative``, also up to ``max_points`` quantiles of the negative values and a
    weight below all of them (every query on its costliest model). Sorted.

    Example:
        >>> lambda_breakpoints(np.array([[0.9, 0.5]]), np.array([1.0, 0.0])).round(3).tolist()
        [0.0, 0.4, 0.8]
        >>> lambda_breakpoints(np.array([[0.5, 0.9]]), np.array([1.0, 0.0])).round(3).tolist()
        [-0.8, -0.4, 0.0, 1.0]
    """
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    dq = q[:, :, None] - q[:, None, :]
    dc = c[:, None] - c[None, :]
    costlier = np.broadcast_to(dc[None, :, :] > 0, dq.shape)
    slopes = (dq / np.where(dc > 0, dc, 1.0)[None, :, :])[costlier]
    parts = [np.array([0.0])]
    for sign, chosen in (
        (1.0, slopes[slopes > 0]),
        (-1.0, slopes[slopes < 0] if negative else slopes[:0]),
    ):
        if chosen.size == 0:
            if sign > 0:
                parts.append(np.array([1.0]))
            continue
        chosen = np.unique(chosen)
        if chosen.size > max_points:
            chosen = np.quantile(chosen, np.linspace(0.0, 1.0, max_points))
        extreme = float(np.abs(chosen).max()) * 2.0 + 1e-9
        parts += [chosen, np.array([sign * extreme])]
    return np.unique(np.concatenate(parts))
