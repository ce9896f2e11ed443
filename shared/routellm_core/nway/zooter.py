"""ZOOTER: a classifier over models distilled from per-query rewards of every model.

For each training query, the rewards ``r`` of the pool's models (gold scores, or a reward
model's / judge's scores) are first *smoothed by tag*: mixed with the mean rewards of the
queries that share the query's tag, ``r' = (1 - beta) r + beta mean_tag(r)`` (``beta = 0.3`` in
the paper), which damps label noise. The target is ``softmax(r' / temperature)``, and an MLP head
on the query embedding is trained to match it by KL divergence. Tags come from the data's task
labels (``tags="data"``) or from k-means clusters of the query embeddings (``tags="kmeans"``,
scikit-learn).

The router's score of a model is the distilled probability that it is the best one for the
query; :meth:`select` weighs it against constraints like any N-way router (with all
``lambda = 0`` it is ZOOTER's argmax).

Example:
    >>> import numpy as np
    >>> from routellm_core.nway.zooter import reward_targets, smooth_by_tag
    >>> r = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    >>> smooth_by_tag(r, ["a", "a", "b"], beta=0.5).tolist()
    [[0.75, 0.0], [0.25, 0.0], [0.0, 1.0]]
    >>> reward_targets(np.array([[1.0, 0.0]]), temperature=1.0).round(3).tolist()
    [[0.731, 0.269]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from routellm_core.data.schema import ScoreMatrix
from routellm_core.nway.head_router import MLPHeadRouter

__all__ = ["ZooterRouter", "kmeans_tags", "reward_targets", "smooth_by_tag"]

TAG_SOURCES = ("data", "kmeans", "none")


def smooth_by_tag(
    rewards: np.ndarray, tags: Sequence[object] | None, *, beta: float = 0.3
) -> np.ndarray:
    """Mix each row with the mean of the rows sharing its tag: ``(1 - beta) r + beta mean_tag(r)``.

    NaN rewards stay NaN and are left out of the tag means; a query with no tag (``None``) is
    left as is.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(
            f"beta (the tag mixing weight) must be in [0, 1], got {beta!r}"
        )
    r = np.asarray(rewards, dtype=np.float64)
    if tags is None or beta == 0.0:
        return r.copy()
    tags = list(tags)
    if len(tags) != len(r):
        raise ValueError(f"got {len(tags)} tags for {len(r)} queries")
    out = r.copy()
    groups: dict[object, list[int]] = {}
    for i, t in enumerate(tags):
        if t is not None:
            groups.setdefault(t, []).append(i)
    for rows in groups.values():
        block = r[rows]
        with np.errstate(invalid="ignore"):
            counts = (~np.isnan(block)).sum(axis=0)
            mean = np.where(
                counts > 0, np.nansum(block, axis=0) / np.maximum(counts, 1), np.nan
            )
        mixed = (1.0 - beta) * block + beta * mean[None, :]
        out[rows] = np.where(np.isnan(mean)[None, :], block, mixed)
    return out


def reward_targets(rewards: np.ndarray, *, temperature: float = 0.1) -> np.ndarray:
    """``softmax(rewards / temperature)`` per row; NaN rewards get probability 0."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    r = np.asarray(rewards, dtype=np.float64)
    if np.isnan(r).all(axis=1).any():
        raise ValueError("a query has no reward for any model")
    z = np.where(np.isnan(r), -np.inf, r / temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def kmeans_tags(embeddings: np.ndarray, n_clusters: int, *, seed: int = 0) -> list[str]:
    """Cluster labels of query embeddings by k-means (scikit-learn), as tags ``"cluster-<k>"``."""
    try:
        from sklearn.cluster import KMeans
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tags='kmeans' needs scikit-learn: pip install 'routellm-lc[nway]'"
        ) from exc
    if n_clusters < 1 or n_clusters > len(embeddings):
        raise ValueError(
            f"n_clusters must be in [1, {len(embeddings)}], got {n_clusters}"
        )
    labels = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(
        embeddings
    )
    return [f"cluster-{k}" for k in labels]


class ZooterRouter(MLPHeadRouter):
    """Reward-distilled classifier over the pool's models (ZOOTER).

    Args:
        temperature: of the target ``softmax(rewards / temperature)``.
        beta: tag smoothing weight (0.3 in the paper; 0 disables smoothing).
        tags: ``"data"`` (the matrix's task labels), ``"kmeans"`` (clusters of the embeddings)
            or ``"none"``.
        n_clusters: clusters for ``tags="kmeans"``.
        hidden, dropout, epochs, batch_size, lr, weight_decay, val_fraction, patience: the MLP head.
    """

    router_type: ClassVar[str] = "zooter"
    loss = "kl"

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        beta: float = 0.3,
        tags: str = "data",
        n_clusters: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.temperature, self.beta, self.tags, self.n_clusters = temperature, beta, tags, n_clusters

    def training_targets(
        self, matrix: ScoreMatrix, embeddings: np.ndarray
    ) -> np.ndarray:
        """The distillation targets: tag-smoothed rewards through the tempered softmax."""
        if self.tags not in TAG_SOURCES:
            raise ValueError(
                f"tags must be one of {list(TAG_SOURCES)}, got {self.tags!r}"
            )
        tags: list[Any] | None = None
        if self.tags == "data":
            if matrix.tags is None:
                raise ValueError(
                    f"tags='data' but {matrix.source or 'the matrix'} has no task labels; "
                    "use tags='kmeans' or tags='none'"
                )
            tags = list(matrix.tags)
        elif self.tags == "kmeans":
            tags = kmeans_tags(
                embeddings, min(self.n_clusters, len(matrix)), seed=self.seed
            )
        self.tag_counts_ = (
            {}
            if tags is None
            else {str(t): tags.count(t) for t in sorted(set(map(str, tags)))}
        )
        smoothed = smooth_by_tag(matrix.scores, tags, beta=self.beta)
        return reward_targets(smoothed, temperature=self.temperature)

    def predict_quality_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """The distilled distribution over models for each query (rows sum to 1)."""
        self._check_fitted()
        z = self.head_.logits(embeddings)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
