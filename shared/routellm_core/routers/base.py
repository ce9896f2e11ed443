"""The one small interface every router implements.

A router estimates, for each query, the *win rate*: P(strong model's answer beats the weak
model's). A query goes to the strong model exactly when ``win_rate >= threshold``.

Estimator conventions follow scikit-learn (see :mod:`routellm_core.estimator`): ``__init__``
only stores parameters (``seed`` among them), :meth:`Router.fit` learns from a battles frame (see
:mod:`routellm_core.data.schema`), learned state ends in ``_``. A router implements two hooks,
both abstract: ``fit`` and ``_win_rate`` (texts -> win rates); checkpoints call ``_state`` /
``_extra_state`` / ``_set_state``; :func:`routellm_core.testing.check_router` checks a router
keeps all of this.

Example:
    >>> from routellm_core import load_router
    >>> router = load_router("default")
    >>> router.win_rate(["Prove that there are infinitely many primes."]).shape
    (1,)
    >>> router.route(["hi!"], strong_fraction=0.3)[0].route in ("strong", "weak")
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from routellm_core.calibration import CalibrationTable, check_strong_fraction, check_threshold
from routellm_core.checkpoints import PretrainedMixin
from routellm_core.data.schema import canonical_model_name
from routellm_core.decision import Decision, PairSetting, pair_threshold
from routellm_core.encoders import QueryEncoder, validate_texts
from routellm_core.errors import NonFiniteScoreError, UnknownModelError
from routellm_core.errors import NotFittedError as NotFittedError  # re-exported
from routellm_core.estimator import EstimatorParams

DEFAULT_STRONG = "gpt-4-1106-preview"
DEFAULT_WEAK = "mixtral-8x7b-instruct-v0.1"


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


class Router(PretrainedMixin, EstimatorParams, ABC):
    """Base class: scores queries and turns scores into routing decisions.

    Args:
        strong_model: name of the strong model (canonicalised; see ``aliases``).
        weak_model: name of the weak model.
        encoder: a :class:`~routellm_core.encoders.QueryEncoder`, a sentence-transformers id
            or path, or ``None`` for the offline default all-MiniLM-L6-v2.
        aliases: extra names mapped onto known model names, e.g.
            ``{"gpt-4o": "gpt-4-1106-preview"}`` to route a pair the router never saw.
        seed: seed of everything random in training (and of the random router's draws).
        strip_templates: learn, in :meth:`fit`, the lines that the training prompts of one
            source share (instruction templates, few-shot blocks: :mod:`routellm_core.data.templates`)
            and strip them from every text before reading it, in training and scoring alike.

    Learned state (set by :meth:`fit` or loading, absent before): what each router lists in
    ``fitted_attributes``, plus ``calibration_``, ``card_`` and ``query_template_`` (``None``
    until set).
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
        seed: int | None = 0,
        strip_templates: bool = True,
    ) -> None:
        self.strong_model = strong_model
        self.weak_model = weak_model
        self.encoder = encoder
        self.aliases = aliases
        self.seed = seed
        self.strip_templates = strip_templates

    # ----------------------------------------------------------------- models
    @property
    def known_models(self) -> list[str] | None:
        """Models the router can score, or ``None`` when any name is accepted (the random
        router). :class:`NotFittedError` before :meth:`fit` or loading, as for N-way routers."""
        self._check_fitted()
        return self._known_models()

    def _known_models(self) -> list[str] | None:
        """The learned model names (a router that learns names overrides this)."""
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

    def resolve_pair(
        self, strong_model: str | None = None, weak_model: str | None = None
    ) -> tuple[str, str]:
        """The canonical (strong, weak) pair the router scores (default: its own pair).

        Raises :class:`UnknownModelError` for a name it does not know, ``ValueError`` for a
        pair it cannot tell apart, :class:`NotFittedError` before :meth:`fit` or loading.
        """
        strong = self.resolve_model(strong_model or self.strong_model)
        weak = self.resolve_model(weak_model or self.weak_model)
        if strong == weak and self.known_models is not None:
            raise ValueError(f"strong and weak model are the same model {strong!r}")
        return strong, weak

    def _pair(self, strong_model: str | None, weak_model: str | None) -> tuple[str, str]:
        # kept for callers written before resolve_pair was public
        return self.resolve_pair(strong_model, weak_model)

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
        texts = self.query_text(validate_texts(texts))
        self._check_fitted()
        strong, weak = self.resolve_pair(strong_model, weak_model)
        scores = check_finite_scores(
            np.asarray(self._win_rate(texts, strong, weak), dtype=np.float64), self.name
        )
        return np.clip(scores, 0.0, 1.0)

    @abstractmethod
    def _win_rate(self, texts: list[str], strong: str, weak: str) -> np.ndarray:
        """Win rates of ``strong`` over ``weak`` for validated ``texts`` (fitted router, known
        canonical names). A router that uses the encoder embeds the texts here; a router that
        cannot score raises, and the caller's failure policy decides."""

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
    ) -> list[Decision]:
        """Decide strong or weak for each text (strong exactly when ``win_rate >= threshold``).

        A convenience over :func:`routellm_core.decision.pair_threshold`, the threshold rule the
        pools of :mod:`routellm_core.routing` apply too, except that exactly one of ``threshold``
        or ``strong_fraction`` is required here. A ``threshold`` that would send (almost) every
        calibration prompt one way raises a :class:`~routellm_core.errors.RoutingSettingWarning`,
        as it does in the adapters.
        """
        if (threshold is None) == (strong_fraction is None):  # a pool has a default; a bare router has none
            raise ValueError("give exactly one of threshold or strong_fraction")
        t = pair_threshold(self, PairSetting(threshold, strong_fraction), stacklevel=3)
        strong, weak = self.resolve_pair(strong_model, weak_model)
        rates = self.win_rate(texts, strong_model=strong, weak_model=weak)
        models = {"strong": strong, "weak": weak}
        return [Decision.by_threshold(r, t, models, router=self.name) for r in rates]

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
        show_progress: bool = False,
        sample_weight: np.ndarray | None = None,
    ) -> Router:
        """Learn from a battles frame (see :mod:`routellm_core.data.schema`), optionally
        weighted; randomness comes from the ``seed`` parameter. Returns the router."""

    def _training_battles(self, battles: pd.DataFrame, *, learn: bool = True) -> pd.DataFrame:
        """``battles`` as :meth:`fit` reads them, with the ``query_template_`` stripped from every
        query; ``learn`` first learns the template from their queries, per ``source`` (an update
        of a fitted router keeps the template it has)."""
        if "query" not in battles.columns:
            return battles  # the router's own validation names what is missing
        if learn:
            from routellm_core.data.templates import queries_by_source

            self._learn_query_template(queries_by_source(battles))
        if self.query_template_ is None:
            return battles
        return battles.assign(query=self.query_text(battles["query"].tolist()))

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
