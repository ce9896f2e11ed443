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
    return fit_bradley_terry_batch(m[None], base=base, max_iter=max_iter, tol=tol, ridge=ridge)[0]


def fit_bradley_terry_batch(
    wins: np.ndarray,
    *,
    base: float = 10.0,
    max_iter: int = 100,
    tol: float = 1e-10,
    ridge: float = 1e-9,
) -> np.ndarray:
    """:func:`fit_bradley_terry` for a stack ``(batch, players, players)`` of win matrices at
    once (Newton steps for every matrix together): ``(batch, players)`` ratings.

    Example:
        >>> r = fit_bradley_terry_batch(np.array([[[0.0, 3.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]]), base=np.e)
        >>> np.round(r[:, 0] - r[:, 1], 4).tolist()
        [1.0986, 0.0]
    """
    m = np.asarray(wins, dtype=np.float64)
    if m.ndim != 3 or m.shape[1] != m.shape[2]:
        raise ValueError(f"wins must be a stack of square matrices, got shape {m.shape}")
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError("wins must be finite and non-negative")
    b, t = m.shape[0], m.shape[1]
    beta = float(np.log(base))
    n = m + m.transpose(0, 2, 1)
    lam = ridge * np.maximum(n.sum(axis=(1, 2)), 1.0)[:, None]
    # The likelihood only sees differences: pin the mean with a rank-one term.
    pin = np.eye(t)[None] * lam[:, :, None] + np.ones((t, t))[None] / t
    r = np.zeros((b, t))
    active = np.arange(b)
    for _ in range(max_iter):
        ra, na, ma = r[active], n[active], m[active]
        p = 0.5 * (1.0 + np.tanh(0.5 * beta * (ra[:, :, None] - ra[:, None, :])))
        grad = beta * (ma - na * p).sum(axis=2) - lam[active] * ra
        c = beta * beta * na * p * (1.0 - p)
        hess = c.copy()
        diag = np.arange(t)
        hess[:, diag, diag] = -c.sum(axis=2) + c[:, diag, diag]
        step = np.linalg.solve(hess - pin[active], -grad[:, :, None])[:, :, 0]
        r[active] = ra + step
        active = active[np.max(np.abs(step), axis=1) >= tol]
        if active.size == 0:
            break
    return r - r.mean(axis=1, keepdims=True)
