"""Tryage-style router: predict every model's quality on the query, then weigh it against constraints.

One multi-output head on the query embedding predicts, for each model of the pool, the
probability that its answer is right (or its expected score in [0, 1]); it is trained with
per-model binary cross-entropy on a gold score matrix, missing scores masked out. Routing is
:meth:`~routellm_core.nway.base.NWayRouter.route`: ``argmax_m q(m) - sum_j lambda_j C_j(m)``.

Example:
    >>> import numpy as np
    >>> from routellm_core.data.schema import ScoreMatrix
    >>> from routellm_core.nway import QualityRouter
    >>> from routellm_core.nway.constraints import Constraint
    >>> m = ScoreMatrix(["add 2 and 2", "write a poem", "prove a theorem", "say hi"],
    ...                 ["big", "small"], np.array([[1, 1], [1, 0], [1, 0], [1, 1.0]]))
    >>> r = QualityRouter(epochs=20).fit(m, constraints=[Constraint("cost", {"big": 1, "small": 0.1})])
    >>> r.predict_quality(["add 3 and 3"]).shape
    (1, 2)
    >>> r.route(["add 3 and 3"], lambdas={"cost": 10.0})[0].model
    'small'
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routellm_core.data.schema import ScoreMatrix
from routellm_core.nway.head_router import MLPHeadRouter

__all__ = ["QualityRouter"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class QualityRouter(MLPHeadRouter):
    """Per-model quality predictor (a multi-output MLP head on the embedding), trained by
    per-model binary cross-entropy; scores must lie in [0, 1] (NaN = missing).

    Args:
        hidden, dropout, epochs, batch_size, lr, weight_decay, val_fraction, patience: the MLP
            head (see :class:`~routellm_core.nway.head_router.MLPHeadRouter`).
    """

    router_type: ClassVar[str] = "quality"
    loss = "bce"

    def training_targets(self, matrix: ScoreMatrix, embeddings: np.ndarray) -> np.ndarray:
        """The scores themselves, checked to lie in [0, 1]."""
        scores = np.asarray(matrix.scores, dtype=np.float64)
        finite = scores[~np.isnan(scores)]
        if finite.size == 0:
            raise ValueError("the score matrix has no scores")
        if finite.min() < 0 or finite.max() > 1:
            raise ValueError(
                f"quality scores must lie in [0, 1]; got [{finite.min()}, {finite.max()}]: "
                "rescale them first"
            )
        return scores

    def predict_quality_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """P(model's answer is right) for each query and model."""
        self._check_fitted()
        return _sigmoid(self.head_.logits(embeddings))
