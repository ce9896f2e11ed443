"""The random router: the paper's baseline, a uniform random win rate per query.

It learns nothing: it scores any pair without :meth:`~RandomRouter.fit` (which returns the
router unchanged), and its draws come from ``seed`` (``None``: fresh entropy).

Example:
    >>> from routellm_core.routers.random import RandomRouter
    >>> r = RandomRouter(seed=0).fit(None)
    >>> float(r.win_rate(["a", "b"]).max()) <= 1.0
    True
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import numpy as np

from routellm_core.routers.base import Router


class RandomRouter(Router):
    """Win rate drawn uniformly from [0, 1], independent of the query.

    Args:
        seed: seed of the draws; two routers with the same seed draw the same sequence, and
            :meth:`set_params` with a new ``seed`` starts its sequence afresh.
    """

    router_type: ClassVar[str] = "random"
    uses_encoder: ClassVar[bool] = False

    def __init__(self, *, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)

    def set_params(self, **params: Any) -> RandomRouter:
        super().set_params(**params)
        if "seed" in params:
            with self._lock:
                self._rng = np.random.default_rng(self.seed)
        return self

    def fit(
        self, battles: Any = None, *, show_progress: bool = False, sample_weight: Any = None
    ) -> RandomRouter:
        """Nothing to learn: returns the router."""
        return self

    def _win_rate(self, texts: list[str], strong: str, weak: str) -> np.ndarray:
        with self._lock:
            return self._rng.uniform(0.0, 1.0, size=len(texts))
