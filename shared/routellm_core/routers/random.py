"""The random router: the paper's baseline, a uniform random win rate per query.

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
    """Win rate drawn uniformly from [0, 1], independent of the query."""

    router_type: ClassVar[str] = "random"
    uses_encoder: ClassVar[bool] = False

    def __init__(self, *, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def fit(
        self, battles: Any = None, *, seed: int = 0, show_progress: bool = False, sample_weight: Any = None
    ) -> RandomRouter:
        return self

    def _win_rate_texts(self, texts: list[str], strong: str, weak: str) -> np.ndarray:
        with self._lock:
            return self._rng.uniform(0.0, 1.0, size=len(texts))
