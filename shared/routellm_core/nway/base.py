"""The interface of N-way routers: predict each model's quality, then pick by Tryage's objective.

An N-way router learns from a :class:`~routellm_core.data.schema.ScoreMatrix` (per-query
scores of a pool of models) and returns, for each query, a score per model
(:meth:`NWayRouter.predict_quality`). :meth:`NWayRouter.route` turns scores into decisions with
``argmax_m score(m) - sum_j lambda_j * C_j(m)`` over the constraints (cost, size, latency, ...).

Conventions are those of the binary :class:`~routellm_core.routers.base.Router`: ``__init__``
only stores keyword parameters, :meth:`fit` learns, learned state ends in ``_``, ``_state`` /
``_extra_state`` / ``_set_state`` feed the same safetensors checkpoints
(:func:`routellm_core.checkpoints.save_router` / ``load_router``).

Example:
    >>> from routellm_core.nway import load_nway_router
    >>> router = load_nway_router("default")            # embedded, trained on LLMRouter train
    >>> d = router.route(["Write a Python function that reverses a list."], lambdas={"cost": 0.1})[0]
    >>> d.model in router.models_, sorted(d.scores) == sorted(router.models_)
    (True, True)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from routellm_core.checkpoints import PretrainedMixin
from routellm_core.data.schema import ScoreMatrix, canonical_model_name
from routellm_core.decision import Decision
from routellm_core.encoders import QueryEncoder, validate_texts
from routellm_core.estimator import EstimatorParams
from routellm_core.nway.constraints import Constraint, check_lambdas
from routellm_core.nway.objective import select as tryage_select
from routellm_core.routers.base import UnknownModelError, check_finite_scores

__all__ = ["NWayRouter"]


class NWayRouter(PretrainedMixin, EstimatorParams, ABC):
    """Base class of N-way routers.

    Args:
        encoder: a :class:`~routellm_core.encoders.QueryEncoder`, a sentence-transformers id or
            path, or ``None`` for the offline default all-MiniLM-L6-v2.
        aliases: extra names mapped onto known model names (``{"my-qwen": "qwen2.5-7b-instruct"}``).
        seed: seed of the training run.
        strip_templates: learn, in :meth:`fit`, the lines the training queries share
            (instruction templates, few-shot blocks: :mod:`routellm_core.data.templates`) and
            strip them from every text before embedding it, in training and scoring alike.

    Learned state (set by :meth:`fit` or loading, absent before): ``models_`` (the pool),
    ``constraints_`` (the router's own constraints) and what a subclass adds to
    ``fitted_attributes``; ``calibration_`` and ``card_`` read ``None`` until set.
    """

    router_type: ClassVar[str] = ""
    uses_encoder: ClassVar[bool] = True
    fitted_attributes: ClassVar[tuple[str, ...]] = ("models_", "constraints_")

    def __init__(
        self,
        *,
        encoder: QueryEncoder | str | None = None,
        aliases: Mapping[str, str] | None = None,
        seed: int = 0,
        strip_templates: bool = True,
    ) -> None:
        self.encoder = encoder
        self.aliases = aliases
        self.seed = seed
        self.strip_templates = strip_templates

    # ----------------------------------------------------------------- models
    @property
    def known_models(self) -> list[str]:
        """The models of the pool this router was trained on; :class:`NotFittedError` before
        :meth:`fit` or loading, as for binary routers."""
        self._check_fitted()
        return list(self.models_)

    def resolve_model(self, name: str) -> str:
        """Canonical name of ``name`` as this router knows it, or :class:`UnknownModelError`."""
        canonical = canonical_model_name(name, self.aliases)
        if canonical not in self.known_models:
            raise UnknownModelError(
                f"model {name!r} is unknown to this {self.router_type} router; known models: "
                f"{sorted(self.known_models)}. Map a new name onto a known one with aliases={{{name!r}: ...}}"
            )
        return canonical

    # ----------------------------------------------------------------- scoring
    def predict_quality(self, texts: Sequence[str]) -> np.ndarray:
        """The router's score of every known model for each text: ``(len(texts), n_models)``.

        Columns follow :attr:`known_models`. Raises ``TypeError`` / ``ValueError`` for an empty
        sequence, a bare string, or an empty or non-text item.
        """
        texts = self.query_text(validate_texts(texts))
        self._check_fitted()
        scores = np.asarray(self.predict_quality_embeddings(self.encoder_.encode(texts)), dtype=np.float64)
        return check_finite_scores(scores, self.name, "quality score")

    @abstractmethod
    def predict_quality_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Scores from query embeddings ``(n, dim)`` -> ``(n, n_models)``."""

    def route(
        self,
        texts: Sequence[str],
        *,
        lambdas: Mapping[str, float] | None = None,
        constraints: Sequence[Constraint] | None = None,
        models: Sequence[str] | None = None,
    ) -> list[Decision]:
        """Choose a model per text by ``argmax_m score(m) - sum_j lambda_j * C_j(m)``.

        A convenience over the router's own model names: the same rule and decisions as an
        :class:`~routellm_core.routing.NWayPool`, which routes the user's names (aliases, prices,
        a failure policy) instead.

        Args:
            texts: the queries.
            lambdas: ``{constraint name: weight}``; missing names weigh 0. A positive weight
                penalises the constraint, a negative one rewards it.
            constraints: the constraint functions; default the router's own (``constraints_``,
                e.g. the cost per call of its training pool).
            models: route among these models only (known names or aliases); default all.
        """
        self._check_fitted()
        cons = list(self.constraints_ if constraints is None else constraints)
        for c in cons:
            if not isinstance(c, Constraint):
                raise TypeError(
                    f"constraints must be Constraint objects, got {type(c).__name__}"
                )
        weights = check_lambdas(lambdas, cons)
        pool = self._pool(models)
        cols = [self.models_.index(m) for m in pool]
        quality = self.predict_quality(texts)[:, cols]
        idx, utility = tryage_select(quality, pool, cons, weights)
        routes = {m: m for m in pool}
        return [
            Decision.by_utility(i, q, u, routes, weights, router=self.name)
            for i, q, u in zip(idx, quality, utility)
        ]

    def _pool(self, models: Sequence[str] | None) -> list[str]:
        if models is None:
            return list(self.models_)
        if isinstance(models, str):
            raise TypeError(
                "models must be a sequence of model names, not a single string"
            )
        pool = [self.resolve_model(m) for m in models]
        if not pool:
            raise ValueError("models is empty: give at least one model to route among")
        if len(set(pool)) != len(pool):
            raise ValueError(f"models lists a model twice: {list(models)}")
        return pool

    def constraint(self, name: str) -> Constraint:
        """The router's own constraint called ``name`` (e.g. ``"cost"``)."""
        for c in self.constraints_:
            if c.name == name:
                return c
        raise KeyError(
            f"this router has no constraint {name!r}; it has {[c.name for c in self.constraints_]}"
        )

    # ----------------------------------------------------------------- learning
    @abstractmethod
    def fit(
        self,
        matrix: ScoreMatrix,
        *,
        embeddings: np.ndarray | None = None,
        show_progress: bool = False,
    ) -> NWayRouter:
        """Learn from a score matrix (``embeddings``: precomputed rows for ``matrix.queries``)."""

    def _embed(
        self, matrix: ScoreMatrix, embeddings: np.ndarray | None, show_progress: bool
    ) -> np.ndarray:
        if not isinstance(matrix, ScoreMatrix):
            raise TypeError(f"fit() needs a ScoreMatrix, got {type(matrix).__name__}")
        if len(matrix) < 2 or len(matrix.models) < 2:
            raise ValueError(
                f"need at least 2 queries and 2 models to train, got {len(matrix)} x {len(matrix.models)}"
            )
        if embeddings is None:
            self._learn_query_template([matrix.queries])
            embeddings = self.encoder_.encode(
                self.query_text(matrix.queries), show_progress=show_progress
            )
        else:
            self.query_template_ = None  # the given vectors fix what each query reads
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(matrix):
            raise ValueError(
                f"got embeddings of shape {emb.shape} for {len(matrix)} queries"
            )
        return emb

    # ----------------------------------------------------------------- checkpoint hooks
    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _extra_state(self) -> dict[str, Any]:
        return {
            "models": list(self.models_),
            "constraints": [c.to_dict() for c in self.constraints_],
        }

    def _set_state(
        self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]
    ) -> None:
        models = extra["models"]
        if (
            not isinstance(models, list)
            or len(models) < 2
            or not all(isinstance(m, str) for m in models)
        ):
            raise ValueError(f"the checkpoint's model list is invalid: {models!r:.200}")
        self.models_ = list(models)
        self.constraints_ = [
            Constraint.from_dict(c) for c in extra.get("constraints") or []
        ]

    def __repr__(self) -> str:
        models = getattr(self, "models_", None)
        return f"{type(self).__name__}(models={models!r})"
