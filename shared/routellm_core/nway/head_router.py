"""N-way routers that are one MLP head on the query embedding: the shared training and state.

:class:`~routellm_core.nway.quality.QualityRouter` and
:class:`~routellm_core.nway.zooter.ZooterRouter` differ only in the head's targets and loss
(per-model correctness by binary cross-entropy; a distribution over models by KL divergence)
and in how logits become scores; the head's parameters, the fit and the checkpoint state are
here.

Example:
    >>> from routellm_core.nway import QualityRouter, ZooterRouter
    >>> issubclass(QualityRouter, MLPHeadRouter) and issubclass(ZooterRouter, MLPHeadRouter)
    True
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from routellm_core.data.schema import ScoreMatrix
from routellm_core.nway.base import NWayRouter
from routellm_core.nway.constraints import Constraint
from routellm_core.nway.mlp import MLPHead

__all__ = ["MLPHeadRouter"]


class MLPHeadRouter(NWayRouter):
    """Base of N-way routers that train one :class:`~routellm_core.nway.mlp.MLPHead`.

    Args:
        hidden: hidden units (0: one linear layer).
        dropout, epochs, batch_size, lr, weight_decay, val_fraction, patience: training of the
            head (AdamW, early stopping on held-out queries; see :class:`MLPHead`).
    """

    fitted_attributes: ClassVar[tuple[str, ...]] = ("models_", "constraints_", "head_")

    def __init__(
        self,
        *,
        hidden: int = 128,
        dropout: float = 0.1,
        epochs: int = 200,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        val_fraction: float = 0.1,
        patience: int = 15,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden, self.dropout, self.epochs, self.batch_size = hidden, dropout, epochs, batch_size
        self.lr, self.weight_decay = lr, weight_decay
        self.val_fraction, self.patience = val_fraction, patience

    @abstractmethod
    def training_targets(self, matrix: ScoreMatrix, embeddings: np.ndarray) -> np.ndarray:
        """The head's training targets for ``matrix`` (one row per query)."""

    loss: str = "bce"  # the head's loss on :meth:`training_targets` ("bce" or "kl")

    def fit(
        self,
        matrix: ScoreMatrix,
        *,
        embeddings: np.ndarray | None = None,
        show_progress: bool = False,
        constraints: Sequence[Constraint] | None = None,
    ) -> MLPHeadRouter:
        """Train the head on ``matrix`` (NaN = missing score).

        ``constraints`` become the router's own (``constraints_``); default: the matrix's mean
        per-query cost per model when it records costs, else none.
        """
        cons = default_constraints(matrix, constraints)
        emb = self._embed(matrix, embeddings, show_progress)
        targets = self.training_targets(matrix, emb)
        self.head_ = MLPHead(
            hidden=self.hidden,
            dropout=self.dropout,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            val_fraction=self.val_fraction,
            patience=self.patience,
            seed=self.seed,
        ).fit(emb, targets, loss=self.loss, show_progress=show_progress)
        self.models_ = list(matrix.models)
        self.constraints_ = cons
        return self

    def _state(self) -> dict[str, np.ndarray]:
        return self.head_.state("head.")

    def _set_state(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        super()._set_state(arrays, extra)
        self.head_ = MLPHead.from_weights(arrays, "head.")
        if self.head_.weights_[f"b{len(self.head_.weights_) // 2 - 1}"].shape[0] != len(self.models_):
            raise ValueError(f"the head has the wrong number of outputs for {len(self.models_)} models")


def default_constraints(matrix: ScoreMatrix, given: Sequence[Constraint] | None) -> list[Constraint]:
    """``given`` checked against the pool, else the matrix's mean cost per model, else none."""
    from routellm_core.nway.constraints import mean_cost

    if not isinstance(matrix, ScoreMatrix):
        raise TypeError(f"fit() needs a ScoreMatrix, got {type(matrix).__name__}")
    if given is not None:
        out = list(given)
        for c in out:
            if not isinstance(c, Constraint):
                raise TypeError(f"constraints must be Constraint objects, got {type(c).__name__}")
            c.raw(matrix.models)  # every model of the pool needs a value
        return out
    if matrix.costs is not None:
        return [mean_cost(matrix.costs, matrix.models)]
    return []
