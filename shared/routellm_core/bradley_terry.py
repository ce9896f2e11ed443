"""Bradley-Terry maximum likelihood from a matrix of (weighted) win counts.

``wins[i, j]`` is the weight of outcomes where ``i`` beat ``j`` (a tie counts half for each
side). Ratings ``r`` maximise ``sum_ij wins[i, j] * log sigmoid(beta * (r_i - r_j))`` with
``beta = ln(base)``: the logistic regression RouteLLM fits with scikit-learn (no intercept,
no penalty), solved here by Newton's method on the aggregated counts, so its cost depends on
the number of players, not the number of battles.

Example:
    >>> import numpy as np
    >>> from routellm_core.bradley_terry import fit_bradley_terry
    >>> r = fit_bradley_terry(np.array([[0.0, 3.0], [1.0, 0.0]]), base=np.e)
    >>> round(float(r[0] - r[1]), 4)      # log(3 / 1)
    1.0986
"""

from __future__ import annotations

import numpy as np


def fit_bradley_terry(
    wins: np.ndarray,
    *,
    base: float = 10.0,
    max_iter: int = 100,
    tol: float = 1e-10,
    ridge: float = 1e-9,
) -> np.ndarray:
    """Ratings (in units of log-base odds) that maximise the Bradley-Terry likelihood.

    Ratings are centred to mean 0. ``ridge`` (relative to the total weight) only keeps the
    problem well-posed when a player has no games or never loses; it moves ratings by far
    less than any printed digit otherwise.
    """
    m = np.asarray(wins, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"wins must be a square matrix, got shape {m.shape}")
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError("wins must be finite and non-negative")
    t = m.shape[0]
    beta = float(np.log(base))
    n = m + m.T
    lam = ridge * max(float(n.sum()), 1.0)
    r = np.zeros(t)
    for _ in range(max_iter):
        diff = beta * (r[:, None] - r[None, :])
        p = 0.5 * (1.0 + np.tanh(0.5 * diff))
        grad = beta * (m - n * p).sum(axis=1) - lam * r
        c = beta * beta * n * p * (1.0 - p)
        hess = c.copy()
        np.fill_diagonal(hess, 0.0)
        hess[np.diag_indices(t)] = -c.sum(axis=1) + np.diag(c)
        hess -= lam * np.eye(t)
        # The likelihood only sees differences: pin the mean with a rank-one term.
        step = np.linalg.solve(hess - np.ones((t, t)) / t, -grad)
        r += step
        if np.max(np.abs(step)) < tol:
            break
    return r - r.mean()
