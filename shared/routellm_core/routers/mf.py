"""Matrix factorization router (RouteLLM's best router).

Every model ``m`` gets a learned vector ``v_m``; a query embedding ``q`` is projected by a learned
``W``. The model's score for the query is ``s(m, q) = w . (normalize(v_m) * (W q))`` and
``P(a beats b | q) = sigmoid(s(a, q) - s(b, q))`` (Bradley-Terry). Training minimises the
Bradley-Terry loss over battles with Adam (lr 3e-4, weight decay 1e-5, as the paper); a tie is a
half win for each side. Scoring is a single matrix-vector product in numpy: torch is only
imported to train.

Example:
    >>> from routellm_core.data.schema import make_battles
    >>> from routellm_core.routers.mf import MatrixFactorizationRouter
    >>> rows = [{"query": q, "model_a": "big", "model_b": "small", "winner": w, "source": "doc"}
    ...         for q, w in [("prove a theorem", "a"), ("say hi", "tie"), ("add 2 and 2", "b")]]
    >>> mf = MatrixFactorizationRouter(strong_model="big", weak_model="small", epochs=5)
    >>> mf.fit(make_battles(rows)).known_models     # every model seen in training can be scored
    ['big', 'small']
    >>> mf.win_rate(["prove a lemma"]).shape
    (1,)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from routellm_core.estimator import is_fitted
from routellm_core.routers.base import Router
from routellm_core.routers.battles import battle_arrays, check_sample_weight

__all__ = ["MatrixFactorizationRouter", "battle_arrays"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class MatrixFactorizationRouter(Router):
    """Bilinear model-query scores trained with the Bradley-Terry loss.

    Args:
        dim: size of the model vectors and of the query projection (128 in the paper).
        epochs: maximum passes over the battles; the epoch with the lowest validation loss is
            kept (early stopping, ``patience`` epochs).
        batch_size: battles per Adam step.
        lr, weight_decay: Adam settings (the paper: 3e-4 and 1e-5).
        noise: std of the Gaussian noise added to query embeddings while training.
        val_fraction: share of queries held out (by query, not by battle) for early stopping.
        patience: epochs without validation improvement before stopping.
        ties: ``"half"`` counts a tie as half a win for each side; ``"drop"`` ignores ties.
        warm_start: when the router is fitted already, :meth:`fit` starts from its learned
            weights (models it knows keep their vectors; new models start at random) instead of
            from scratch, as scikit-learn's ``warm_start``: fine-tuning on new labels.
    """

    router_type: ClassVar[str] = "mf"
    fitted_attributes: ClassVar[tuple[str, ...]] = (
        "models_", "model_vectors_", "projection_", "classifier_")
    models_: list[str]
    model_vectors_: np.ndarray
    projection_: np.ndarray
    classifier_: np.ndarray

    def __init__(
        self,
        *,
        dim: int = 128,
        epochs: int = 100,
        batch_size: int = 256,
        lr: float = 3e-4,
        weight_decay: float = 1e-5,
        noise: float = 0.05,
        val_fraction: float = 0.1,
        patience: int = 10,
        ties: str = "half",
        warm_start: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.noise = noise
        self.val_fraction = val_fraction
        self.patience = patience
        self.ties = ties
        self.warm_start = warm_start

    # ----------------------------------------------------------------- scoring
    def _known_models(self) -> list[str]:
        return list(self.models_)

    def model_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """``s(m, q)`` for every query row and every known model: ``(n_queries, n_models)``."""
        self._check_fitted()
        vm = self.model_vectors_ / np.linalg.norm(self.model_vectors_, axis=1, keepdims=True)
        proj = embeddings.astype(np.float32) @ self.projection_.T
        return proj @ (vm * self.classifier_).T

    def _win_rate(self, texts: list[str], strong: str, weak: str) -> np.ndarray:
        return self.win_rate_embeddings(self.encoder_.encode(texts), strong, weak)

    def win_rate_embeddings(self, embeddings: np.ndarray, strong: str, weak: str) -> np.ndarray:
        """Win rates from query embeddings, for canonical model names (no checks)."""
        vm = self.model_vectors_ / np.linalg.norm(self.model_vectors_, axis=1, keepdims=True)
        i, j = self.models_.index(strong), self.models_.index(weak)
        direction = self.projection_.T @ (self.classifier_ * (vm[i] - vm[j]))
        return _sigmoid(embeddings.astype(np.float64) @ direction.astype(np.float64))

    # ----------------------------------------------------------------- learning
    def fit(
        self,
        battles: pd.DataFrame,
        *,
        show_progress: bool = False,
        embeddings: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> MatrixFactorizationRouter:
        """Train on ``battles``.

        ``embeddings`` may hold precomputed rows for the sorted unique queries (as
        :func:`battle_arrays` orders them) to skip encoding; ``sample_weight`` weighs each
        battle's loss (e.g. to balance in-domain labels against general data). The held-out
        queries, the initial weights, the noise and the batch order come from ``seed``.
        """
        import torch
        from tqdm.auto import tqdm

        from routellm_core.progress import progress_wanted

        if self.ties not in ("half", "drop"):
            raise ValueError(f"ties must be 'half' or 'drop', got {self.ties!r}")
        weights = check_sample_weight(sample_weight, len(battles))
        if self.ties == "drop":
            keep = (battles["winner"] != "tie").to_numpy()
            battles, weights = battles[keep], weights[keep]
        if len(battles) == 0:
            raise ValueError("cannot train an mf router on zero battles")
        if embeddings is None:
            battles = self._training_battles(battles, learn=not (self.warm_start and is_fitted(self)))
        else:
            self.query_template_ = None  # the given vectors fix what each query reads
        queries, models, q_idx, a_idx, b_idx, label = battle_arrays(battles)
        if embeddings is None:
            embeddings = self.encoder_.encode(queries, show_progress=show_progress)
        if len(embeddings) != len(queries):
            raise ValueError(f"got {len(embeddings)} embeddings for {len(queries)} unique queries")

        rng = np.random.default_rng(self.seed)
        torch.manual_seed(int(rng.integers(2**62)) if self.seed is None else self.seed)
        is_val_query = rng.random(len(queries)) < self.val_fraction
        val = is_val_query[q_idx]
        if val.all() or not val.any():
            val = np.zeros(len(q_idx), dtype=bool)

        emb = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))
        P0 = torch.randn(len(models), self.dim) * 0.1
        W0 = torch.randn(self.dim, emb.shape[1]) / emb.shape[1] ** 0.5
        w0 = torch.randn(self.dim) / self.dim**0.5
        if self.warm_start and is_fitted(self):
            if self.projection_.shape != tuple(W0.shape):
                raise ValueError(f"warm_start: the fitted projection is {self.projection_.shape}, this fit needs "
                                 f"{tuple(W0.shape)} (another dim or encoder); refit without warm_start")
            W0, w0 = torch.from_numpy(self.projection_.copy()), torch.from_numpy(self.classifier_.copy())
            for i, m in enumerate(models):
                if m in self.models_:
                    P0[i] = torch.from_numpy(self.model_vectors_[self.models_.index(m)].copy())
        P, W, w = torch.nn.Parameter(P0), torch.nn.Parameter(W0), torch.nn.Parameter(w0)
        opt = torch.optim.Adam([P, W, w], lr=self.lr, weight_decay=self.weight_decay)

        def logits(qi: torch.Tensor, ai: torch.Tensor, bi: torch.Tensor, train: bool) -> torch.Tensor:
            q = emb[qi]
            if train and self.noise:
                q = q + torch.randn_like(q) * self.noise
            proj = q @ W.T
            pn = torch.nn.functional.normalize(P, dim=1)
            return (proj * w * (pn[ai] - pn[bi])).sum(dim=1)

        t = {k: torch.from_numpy(v) for k, v in
             {"q": q_idx, "a": a_idx, "b": b_idx, "y": label,
              "w": (weights / weights.mean()).astype(np.float32)}.items()}
        train_rows = np.flatnonzero(~val)
        val_rows = torch.from_numpy(np.flatnonzero(val))
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        best: tuple[float, tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None, int] = (float("inf"), None, 0)
        history: list[dict[str, float]] = []
        bar = tqdm(range(self.epochs), desc="mf epochs", disable=not progress_wanted(show_progress))
        for epoch in bar:
            perm = torch.from_numpy(rng.permutation(train_rows))
            total = 0.0
            for start in range(0, len(perm), self.batch_size):
                rows = perm[start : start + self.batch_size]
                loss = bce(logits(t["q"][rows], t["a"][rows], t["b"][rows], True), t["y"][rows],
                           weight=t["w"][rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(rows)
            train_loss = total / max(len(perm), 1)
            with torch.no_grad():
                if len(val_rows):
                    val_loss = float(bce(logits(t["q"][val_rows], t["a"][val_rows],
                                                t["b"][val_rows], False), t["y"][val_rows],
                                         weight=t["w"][val_rows]))
                else:
                    val_loss = train_loss
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            if val_loss < best[0] - 1e-5:
                best = (val_loss, (P.detach().clone(), W.detach().clone(), w.detach().clone()), epoch)
            elif epoch - best[2] >= self.patience:
                break
        if best[1] is None:
            raise ValueError("mf training never reached a finite validation loss: "
                             "lower lr or check the battles and embeddings for NaN")
        P_best, W_best, w_best = best[1]
        self.models_ = list(models)
        self.model_vectors_ = P_best.numpy().astype(np.float32)
        self.projection_ = W_best.numpy().astype(np.float32)
        self.classifier_ = w_best.numpy().astype(np.float32)
        self.history_ = history
        self.best_epoch_ = int(best[2])
        return self

    # ----------------------------------------------------------------- checkpoint hooks
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "model_vectors": self.model_vectors_,
            "projection": self.projection_,
            "classifier": self.classifier_,
        }

    def _extra_state(self) -> dict[str, Any]:
        return {"models": list(self.models_), "best_epoch": getattr(self, "best_epoch_", None)}

    def _set_state(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        models = list(extra["models"])
        vectors, projection, classifier = (
            arrays["model_vectors"], arrays["projection"], arrays["classifier"])
        if vectors.shape != (len(models), classifier.shape[0]) or projection.shape[0] != classifier.shape[0]:
            raise ValueError(
                f"mf weights do not fit together: model_vectors {vectors.shape}, projection "
                f"{projection.shape}, classifier {classifier.shape}, {len(models)} models"
            )
        self.models_ = models
        self.model_vectors_ = vectors.astype(np.float32)
        self.projection_ = projection.astype(np.float32)
        self.classifier_ = classifier.astype(np.float32)
