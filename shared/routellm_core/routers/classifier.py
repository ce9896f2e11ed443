"""Common ground of the two fine-tuned classifier routers (:mod:`.bert`, :mod:`.causal_llm`).

A classifier router reads the query text itself (no sentence encoder) and predicts the shares of
strong wins, ties and weak wins (see :mod:`routellm_core.routers._torch_loop` for the labels);
the win rate is ``1 - P(tie) - P(weak wins)``, as the paper defines it. This module holds what
both share: training orchestration, batching, and the checkpoint hooks (weights as
safetensors, the Hugging Face model config as JSON, the tokenizer files in a ``tokenizer/``
folder).

Scoring never hides a failure: when the model raises, its error propagates, and when its
output is unusable (non-finite logits) :class:`~routellm_core.routers.base.NonFiniteScoreError`
names the router and the queries. The caller's router-failure policy then routes the call and
records ``router_failed``, as for any other router.

Example:
    >>> from routellm_core.routers.classifier import win_rate_from_logits
    >>> import numpy as np
    >>> win_rate_from_logits(np.log(np.array([[0.6, 0.3, 0.1]]))).round(3)
    array([0.6])
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from routellm_core.routers.base import NonFiniteScoreError, Router

TOKENIZER_DIR = "tokenizer"


def win_rate_from_logits(logits: np.ndarray) -> np.ndarray:
    """``1 - P(tie) - P(weak wins)`` from (n, 3) logits ordered strong, tie, weak."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return 1.0 - p[:, 1] - p[:, 2]


def hub_error(what: str, name: str, exc: Exception) -> ValueError:
    """A ``ValueError`` saying that ``name`` could not be loaded, with an offline hint."""
    import os

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    hint = (
        " (HF_HUB_OFFLINE is set and it is not a local path or in the local cache)"
        if offline
        else ""
    )
    return ValueError(
        f"could not load the {what} {name!r}{hint}: {type(exc).__name__}: {exc}"
    )


class TorchClassifierRouter(Router):
    """Base of the fine-tuned classifier routers; see :class:`~.bert.BertClassifierRouter`.

    Args:
        base_model: Hugging Face id or local path of the model to fine-tune.
        max_length: query tokens kept (longer queries are truncated).
        batch_size: examples per optimiser step (and per validation batch).
        epochs: passes over the training queries.
        max_steps: stop after this many optimiser steps (``None``: no cap).
        lr, weight_decay: AdamW settings.
        val_fraction: share of training queries held out for early stopping.
        eval_every: optimiser steps between validation evaluations.
        patience: evaluations without validation improvement before stopping.
        max_train_examples: train on a seeded random subset of this many queries (``None``: all).
        pairs: ``"all"`` labels each battle relative to its higher-rated model (Elo over the
            training battles); ``"router"`` keeps only battles of the router's own pair.
        device: ``"auto"`` (CUDA when present, else CPU) or a torch device name.
        inference_batch_size: queries per forward pass when scoring.
    """

    uses_encoder = False
    fitted_attributes: ClassVar[tuple[str, ...]] = ("model_", "ratings_")
    # None when a checkpoint does not record them
    best_step_: int | None
    n_train_queries_: int | None

    def __init__(
        self,
        *,
        base_model: str | None = None,
        max_length: int = 128,
        batch_size: int = 16,
        epochs: int = 1,
        max_steps: int | None = None,
        lr: float = 3e-5,
        weight_decay: float = 0.01,
        val_fraction: float = 0.1,
        eval_every: int = 100,
        patience: int = 3,
        max_train_examples: int | None = None,
        pairs: str = "all",
        device: str = "auto",
        inference_batch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_model = base_model
        self.max_length = max_length
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.eval_every = eval_every
        self.patience = patience
        self.max_train_examples = max_train_examples
        self.pairs = pairs
        self.device = device
        self.inference_batch_size = inference_batch_size

    # ----------------------------------------------------------------- checks
    def _check_params(self) -> None:
        from routellm_core.routers._torch_loop import (
            PAIR_MODES,
            check_loop_settings,
            resolve_device,
        )

        check_loop_settings(self._loop_settings())
        for name in ("max_length", "inference_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_train_examples is not None and (
            not isinstance(self.max_train_examples, int) or self.max_train_examples < 2
        ):
            raise ValueError(
                f"max_train_examples must be an integer >= 2 or None, got {self.max_train_examples!r}"
            )
        if self.pairs not in PAIR_MODES:
            raise ValueError(
                f"pairs must be one of {list(PAIR_MODES)}, got {self.pairs!r}"
            )
        resolve_device(self.device)

    def _loop_settings(self) -> Any:
        from routellm_core.routers._torch_loop import LoopSettings

        return LoopSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            max_steps=self.max_steps,
            eval_every=self.eval_every,
            patience=self.patience,
            val_fraction=self.val_fraction,
        )

    @property
    def device_(self) -> str:
        """The torch device the model runs on."""
        from routellm_core.routers._torch_loop import resolve_device

        return resolve_device(self.device)

    def _known_models(self) -> list[str]:
        return sorted(self.ratings_)

    # ----------------------------------------------------------------- subclass hooks
    @abstractmethod
    def _load_pretrained(self) -> tuple[Any, Any]:
        """(model, tokenizer) of ``base_model``, ready to fine-tune."""

    @abstractmethod
    def _model_from_config(self, config: Mapping[str, Any]) -> Any:
        """An untrained model of the architecture in ``config`` (a HF config dict)."""

    @abstractmethod
    def _training_parts(self) -> tuple[list[Any], Any, Any]:
        """(trainable params, ``texts -> logits`` in training mode, snapshot function)."""

    @abstractmethod
    def _finish_training(self, best: Mapping[str, Any] | None) -> None:
        """Restore the ``best`` snapshot (if any) and leave ``model_`` a plain inference model."""

    @abstractmethod
    def _label_logits(self, texts: list[str]) -> Any:
        """(n, 3) logits over strong, tie, weak for ``texts`` (inference mode)."""

    def _tied_keys_of(self, model: Any) -> list[str]:
        """State-dict keys of ``model`` that share storage with another key (saved once)."""
        return []

    # ----------------------------------------------------------------- learning
    def fit(
        self,
        battles: pd.DataFrame,
        *,
        show_progress: bool = False,
        sample_weight: np.ndarray | None = None,
    ) -> TorchClassifierRouter:
        """Fine-tune ``base_model`` on ``battles`` (one soft-labelled example per query); the
        subset, the held-out queries and the batch order come from ``seed``."""
        import torch

        from routellm_core.routers._torch_loop import (
            classifier_examples,
            train_classifier,
        )

        self._check_params()
        seed = (
            self.seed if self.seed is not None else int(np.random.default_rng().integers(2**31))
        )
        strong, weak = (
            (self.resolve_model(m) for m in (self.strong_model, self.weak_model))
            if self.pairs == "router"
            else (None, None)
        )
        examples = classifier_examples(
            self._training_battles(battles),
            sample_weight=sample_weight,
            pairs=self.pairs,
            strong_model=strong,
            weak_model=weak,
        )
        if (
            self.max_train_examples is not None
            and len(examples.queries) > self.max_train_examples
        ):
            keep = np.sort(
                np.random.default_rng(seed).choice(
                    len(examples.queries), self.max_train_examples, replace=False
                )
            )
            examples.queries = [examples.queries[i] for i in keep]
            examples.targets = examples.targets[keep]
            examples.weights = examples.weights[keep] / examples.weights[keep].mean()
        torch.manual_seed(seed)
        self.model_, self.tokenizer_ = self._load_pretrained()
        self.model_.to(self.device_)
        params, train_logits, snapshot = self._training_parts()
        self.model_.train()
        history, best, best_step = train_classifier(
            params,
            train_logits,
            examples,
            self._loop_settings(),
            seed=seed,
            show_progress=show_progress,
            desc=f"{self.router_type} steps",
            snapshot=snapshot,
        )
        self._finish_training(best)
        self.model_.eval()
        self.ratings_ = examples.ratings
        self.history_ = history
        self.best_step_ = best_step
        self.n_train_queries_ = len(examples.queries)
        return self

    # ----------------------------------------------------------------- scoring
    def _win_rate(self, texts: list[str], strong: str, weak: str) -> np.ndarray:
        """Win rates, texts of similar length batched together. An error of the model
        propagates; non-finite logits raise :class:`NonFiniteScoreError` naming the queries."""
        import torch

        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty(len(texts), dtype=np.float64)
        bad: list[int] = []
        for start in range(0, len(texts), self.inference_batch_size):
            rows = order[start : start + self.inference_batch_size]
            with torch.no_grad():
                logits = self._label_logits([texts[i] for i in rows]).float().cpu().numpy()
            finite = np.isfinite(logits).all(axis=1)
            bad.extend(int(i) for i in rows[~finite])
            if finite.any():
                out[rows[finite]] = win_rate_from_logits(logits[finite])
        if bad:
            raise NonFiniteScoreError(self._non_finite_message(texts, sorted(bad)))
        return out

    def _non_finite_message(self, texts: Sequence[str], rows: list[int]) -> str:
        shown = ", ".join(f"#{i} {texts[i][:60]!r}" for i in rows[:3])
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        return (
            f"router {self.name!r} gave non-finite label logits for {len(rows)} of "
            f"{len(texts)} quer{'y' if len(texts) == 1 else 'ies'}: {shown}{more}; its weights "
            "may be corrupt"
        )

    # ----------------------------------------------------------------- checkpoint hooks
    def _state(self) -> dict[str, np.ndarray]:
        from routellm_core.routers._torch_loop import module_state

        self._check_fitted()
        return module_state(self.model_, skip=self._tied_keys_of(self.model_))

    def _extra_state(self) -> dict[str, Any]:
        return {
            "hf_config": self.model_.config.to_dict(),
            "ratings": self.ratings_,
            "history": getattr(self, "history_", []),
            "best_step": getattr(self, "best_step_", None),
            "n_train_queries": getattr(self, "n_train_queries_", None),
        }

    def _save_files(self, directory: Path) -> list[str]:
        """Write the tokenizer files under ``tokenizer/``; return their relative paths."""
        folder = Path(directory) / TOKENIZER_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer_.save_pretrained(str(folder))
        return sorted(
            f"{TOKENIZER_DIR}/{p.name}" for p in folder.iterdir() if p.is_file()
        )

    def _load_files(self, directory: Path) -> None:
        """Load the tokenizer that :meth:`_save_files` wrote (files verified by the loader)."""
        from transformers import AutoTokenizer

        folder = Path(directory) / TOKENIZER_DIR
        if not folder.is_dir():
            raise ValueError(
                f"{directory}: the tokenizer folder {TOKENIZER_DIR}/ is missing"
            )
        self.tokenizer_ = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
        self._after_tokenizer_loaded()

    def _after_tokenizer_loaded(self) -> None:
        pass

    def _set_state(
        self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]
    ) -> None:
        from routellm_core.routers._torch_loop import build_checked_module, load_module_state

        self._check_params()  # scoring reads them too (max_length, batch sizes, device)
        model = build_checked_module(
            self._model_from_config, dict(extra["hf_config"]), arrays, self._tied_keys_of
        )
        load_module_state(model, arrays, allowed_missing=self._tied_keys_of(model))
        if self._tied_keys_of(model):
            model.tie_weights()
        self.model_ = model.to(self.device_).eval()
        self.ratings_ = {str(k): float(v) for k, v in dict(extra["ratings"]).items()}
        self.history_ = list(extra.get("history") or [])
        self.best_step_ = extra.get("best_step")
        self.n_train_queries_ = extra.get("n_train_queries")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_model={self.base_model!r}, pairs={self.pairs!r})"
