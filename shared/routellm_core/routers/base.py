"""The one small interface every router implements.

A router estimates, for each query, the *win rate*: P(strong model's answer beats the weak
model's). A query goes to the strong model exactly when ``win_rate >= threshold``.

Estimator conventions follow scikit-learn: ``__init__`` only stores parameters, :meth:`fit`
learns from a battles frame (see :mod:`routellm_core.data.schema`), learned state ends in ``_``.

Example:
    >>> from routellm_core import load_router
    >>> router = load_router("default")
    >>> router.win_rate(["Prove that there are infinitely many primes."]).shape
    (1,)
    >>> router.route(["hi!"], threshold=0.5)[0].route in ("strong", "weak")
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from routellm_core.calibration import CalibrationTable, check_strong_fraction, check_threshold
from routellm_core.data.schema import canonical_model_name
from routellm_core.encoders import QueryEncoder, validate_texts
from routellm_core.estimator import EstimatorParams

DEFAULT_STRONG = "gpt-4-1106-preview"
DEFAULT_WEAK = "mixtral-8x7b-instruct-v0.1"


class UnknownModelError(ValueError):
    """A model name the router has not learned (and no alias maps it onto one it has)."""


class NonFiniteScoreError(ValueError):
    """A router produced a NaN or infinite score (corrupt weights, say): a router failure."""


def check_finite_scores(scores: np.ndarray, router: str, what: str = "win rate") -> np.ndarray:
    """``scores`` if every value is finite, else :class:`NonFiniteScoreError` naming the router.

    Adapters treat the error like any router failure: the failure policy routes, and the
    decision records ``router_failed``.
    """
    bad = ~np.isfinite(scores)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(scores), -1).any(axis=1))
        raise NonFiniteScoreError(
            f"router {router!r} gave a non-finite {what} for {len(rows)} of {len(scores)} "
            f"quer{'y' if len(scores) == 1 else 'ies'} (first: #{rows[0]}); its weights may be "
            "corrupt"
        )
    return scores


class NotFittedError(RuntimeError):
    """The router was used before :meth:`Router.fit` or loading a checkpoint."""


@dataclass(frozen=True)
class RoutingDecision:
    """What the router decided for one query."""

    route: Literal["strong", "weak"]
    model: str
    win_rate: float
    threshold: float
    router: str

    @classmethod
    def from_win_rate(
        cls, win_rate: float, threshold: float, strong: str, weak: str, router: str, **extra: Any
    ) -> RoutingDecision:
        """The decision for one win rate: strong exactly when ``win_rate >= threshold``."""
        strong_wins = win_rate >= threshold
        return cls(
            route="strong" if strong_wins else "weak",
            model=strong if strong_wins else weak,
            win_rate=float(win_rate),
            threshold=threshold,
            router=router,
            **extra,
        )

    def as_metadata(self) -> dict[str, Any]:
        """The decision as flat metadata, keys prefixed ``routellm_``."""
        return {f"routellm_{k}": v for k, v in asdict(self).items()}


class Router(EstimatorParams, ABC):
    """Base class: scores queries and turns scores into routing decisions.

    Args:
        strong_model: name of the strong model (canonicalised; see ``aliases``).
        weak_model: name of the weak model.
        encoder: a :class:`~routellm_core.encoders.QueryEncoder`, a sentence-transformers id
            or path, or ``None`` for the offline default all-MiniLM-L6-v2.
        aliases: extra names mapped onto known model names, e.g.
            ``{"gpt-4o": "gpt-4-1106-preview"}`` to route a pair the router never saw.
    """

    router_type: ClassVar[str] = ""
    uses_encoder: ClassVar[bool] = True

    def __init__(
        self,
        *,
        strong_model: str = DEFAULT_STRONG,
        weak_model: str = DEFAULT_WEAK,
        encoder: QueryEncoder | str | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.strong_model = strong_model
        self.weak_model = weak_model
        self.encoder = encoder
        self.aliases = aliases
        self.calibration_: CalibrationTable | None = None
        self.card_: dict[str, Any] = {}

    # ----------------------------------------------------------------- models
    @property
    def known_models(self) -> list[str] | None:
        """Models the router can score, or ``None`` when any name is accepted."""
        return None

    def resolve_model(self, name: str) -> str:
        """Canonical name of ``name`` as this router knows it, or :class:`UnknownModelError`."""
        canonical = canonical_model_name(name, self.aliases)
        known = self.known_models
        if known is not None and canonical not in known:
            raise UnknownModelError(
                f"model {name!r} is unknown to this {self.router_type} router; known models: "
                f"{sorted(known)}. Map a new name onto a known one with aliases={{{name!r}: ...}}"
            )
        return canonical

    def _pair(self, strong_model: str | None, weak_model: str | None) -> tuple[str, str]:
        strong = self.resolve_model(strong_model or self.strong_model)
        weak = self.resolve_model(weak_model or self.weak_model)
        if strong == weak and self.known_models is not None:
            raise ValueError(f"strong and weak model are the same model {strong!r}")
        return strong, weak

    # ----------------------------------------------------------------- scoring
    def win_rate(
        self,
        texts: Sequence[str],
        *,
        strong_model: str | None = None,
        weak_model: str | None = None,
    ) -> np.ndarray:
        """P(strong beats weak) for each text, as a float64 array in [0, 1].

        Raises:
            TypeError / ValueError: ``texts`` is empty, a single string, or holds an empty or
                non-text item.
            UnknownModelError: a model name the router does not know.
        """
        texts = validate_texts(texts)
        self._check_fitted()
        strong, weak = self._pair(strong_model, weak_model)
        if self.uses_encoder:
            scores = self._win_rate_embeddings(self.encoder_.encode(texts), strong, weak)
        else:
            scores = self._win_rate_texts(texts, strong, weak)
        scores = check_finite_scores(np.asarray(scores, dtype=np.float64), self.name)
        return np.clip(scores, 0.0, 1.0)

    def _win_rate_embeddings(self, embeddings: np.ndarray, strong: str, weak: str) -> np.ndarray:
        raise NotImplementedError

    def _win_rate_texts(self, texts: list[str], strong: str, weak: str) -> np.ndarray:
        raise NotImplementedError

    def resolve_threshold(
        self, threshold: float | None = None, strong_fraction: float | None = None
    ) -> float:
        """The threshold to use: ``threshold`` as given, or looked up from ``strong_fraction``."""
        if (threshold is None) == (strong_fraction is None):
            raise ValueError("give exactly one of threshold or strong_fraction")
        if threshold is not None:
            return check_threshold(threshold)
        check_strong_fraction(strong_fraction)  # type: ignore[arg-type]
        if self.calibration_ is None:
            raise ValueError(
                f"this {self.router_type} router has no calibration table, so strong_fraction "
                "cannot be turned into a threshold; run `routellm calibrate` or router.calibrate()"
            )
        return self.calibration_.threshold_for(strong_fraction)  # type: ignore[arg-type]

    def route(
        self,
        texts: Sequence[str],
        *,
        threshold: float | None = None,
        strong_fraction: float | None = None,
        strong_model: str | None = None,
        weak_model: str | None = None,
    ) -> list[RoutingDecision]:
        """Decide strong or weak for each text (strong exactly when ``win_rate >= threshold``)."""
        t = self.resolve_threshold(threshold, strong_fraction)
        strong, weak = self._pair(strong_model, weak_model)
        rates = self.win_rate(texts, strong_model=strong, weak_model=weak)
        return [RoutingDecision.from_win_rate(r, t, strong, weak, self.name) for r in rates]

    def calibrate(self, prompts: Sequence[str], *, source: str = "") -> CalibrationTable:
        """Compute and keep the threshold table for ``prompts`` (unlabelled, representative)."""
        self.calibration_ = CalibrationTable.from_win_rates(self.win_rate(prompts), source=source)
        return self.calibration_

    # ----------------------------------------------------------------- learning
    @abstractmethod
    def fit(
        self,
        battles: pd.DataFrame,
        *,
        seed: int = 0,
        show_progress: bool = False,
        sample_weight: np.ndarray | None = None,
    ) -> Router:
        """Learn from a battles frame (see :mod:`routellm_core.data.schema`), optionally weighted."""

    def _check_fitted(self) -> None:
        pass

    # ----------------------------------------------------------------- checkpoint hooks
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays saved as safetensors."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        """Learned JSON-ready state saved in the config."""
        return {}

    def _set_state(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        """Restore what :meth:`_state` and :meth:`_extra_state` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strong_model={self.strong_model!r}, weak_model={self.weak_model!r})"
