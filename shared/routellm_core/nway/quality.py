"""Tryage-style router: predict every model's quality on the query, then weigh it against constraints.

One multi-output head on the query embedding predicts, for each model of the pool, the
probability that its answer is right (or its expected score in [0, 1]); it is trained with
per-model binary cross-entropy on a gold score matrix, missing scores masked out. Routing is
:meth:`~routellm_core.nway.base.NWayRouter.select`: ``argmax_m q(m) - sum_j lambda_j C_j(m)``.

Example:
    >>> import numpy as np
    >>> from routellm_core.data.loaders import ScoreMatrix
    >>> from routellm_core.nway import QualityRouter
    >>> from routellm_core.nway.constraints import Constraint
    >>> m = ScoreMatrix(["add 2 and 2", "write a poem", "prove a theorem", "say hi"],
    ...                 ["big", "small"], np.array([[1, 1], [1, 0], [1, 0], [1, 1.0]]))
    >>> r = QualityRouter(epochs=20).fit(m, constraints=[Constraint("cost", {"big": 1, "small": 0.1})])
    >>> r.predict_quality(["add 3 and 3"]).shape
    (1, 2)
    >>> r.select(["add 3 and 3"], lambdas={"cost": 10.0})[0].model
    'small'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from routellm_core.data.loaders import ScoreMatrix
from routellm_core.nway.base import NWayRouter
from routellm_core.nway.constraints import Constraint
from routellm_core.nway.mlp import MLPHead

__all__ = ["QualityRouter"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class QualityRouter(NWayRouter):
    """Per-model quality predictor (a multi-output MLP head on the embedding).

    Args:
        hidden: hidden units (0: one linear layer, i.e. a logistic regression per model).
        dropout, epochs, batch_size, lr, weight_decay, val_fraction, patience: training of the
            head (AdamW, early stopping on held-out queries; see :class:`~routellm_core.nway.mlp.MLPHead`).
    """

    router_type: ClassVar[str] = "quality"

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
        self.hidden, self.dropout, self.epochs, self.batch_size = (
            hidden,
            dropout,
            epochs,
            batch_size,
        )
        self.lr, self.weight_decay, self.val_fraction, self.patience = (
            lr,
            weight_decay,
            val_fraction,
            patience,
        )

    def _head(self) -> MLPHead:
        return MLPHead(
            hidden=self.hidden,
            dropout=self.dropout,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            val_fraction=self.val_fraction,
            patience=self.patience,
            seed=self.seed,
        )

    def fit(
        self,
        matrix: ScoreMatrix,
        *,
        embeddings: np.ndarray | None = None,
        show_progress: bool = False,
        constraints: Sequence[Constraint] | None = None,
    ) -> QualityRouter:
        """Learn each model's quality from ``matrix`` (scores must lie in [0, 1]; NaN = missing).

        ``constraints`` become the router's own (``constraints_``); default: the matrix's mean
        per-query cost per model when it records costs, else none.
        """
        cons = _default_constraints(matrix, constraints)
        emb = self._embed(matrix, embeddings, show_progress)
        scores = np.asarray(matrix.scores, dtype=np.float64)
        finite = scores[~np.isnan(scores)]
        if finite.size == 0:
            raise ValueError("the score matrix has no scores")
        if finite.min() < 0 or finite.max() > 1:
            raise ValueError(
                f"quality scores must lie in [0, 1]; got [{finite.min()}, {finite.max()}]: "
                "rescale them first"
            )
        self.head_ = self._head().fit(
            emb, scores, loss="bce", show_progress=show_progress
        )
        self.models_ = list(matrix.models)
        self.constraints_ = cons
        return self

    def predict_quality_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """P(model's answer is right) for each query and model."""
        self._check_fitted()
        return _sigmoid(self.head_.logits(embeddings))

    def _state(self) -> dict[str, np.ndarray]:
        return self.head_.state("head.")

    def _set_state(
        self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]
    ) -> None:
        super()._set_state(arrays, extra)
        self.head_ = MLPHead.from_weights(arrays, "head.")
        if self.head_.weights_[f"b{len(self.head_.weights_) // 2 - 1}"].shape[0] != len(
            self.models_
        ):
            raise ValueError(
                f"the head has the wrong number of outputs for {len(self.models_)} models"
            )


def _default_constraints(
    matrix: ScoreMatrix, given: Sequence[Constraint] | None
) -> list[Constraint]:
    from routellm_core.nway.constraints import mean_cost

    if not isinstance(matrix, ScoreMatrix):
        raise TypeError(f"fit() needs a ScoreMatrix, got {type(matrix).__name__}")
    if given is not None:
        out = list(given)
        for c in out:
            if not isinstance(c, Constraint):
                raise TypeError(
                    f"constraints must be Constraint objects, got {type(c).__name__}"
                )
            c.raw(matrix.models)  # every model of the pool needs a value
        return out
    if matrix.costs is not None:
        return [mean_cost(matrix.costs, matrix.models)]
    return []
