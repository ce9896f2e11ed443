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

from routellm_core.routers.base import NotFittedError, Router


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _check_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"sample_weight must be {n} finite non-negative numbers with a positive sum")
    return w


def battle_arrays(
    battles: pd.DataFrame, models: list[str] | None = None
) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index a battles frame: unique queries, models, and per-battle (query, a, b, label) arrays.

    Labels are P(a wins): 1 for "a", 0 for "b", 0.5 for "tie".
    """
    queries, q_idx = np.unique(battles["query"].to_numpy(dtype=object), return_inverse=True)
    if models is None:
        models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    m_index = {m: i for i, m in enumerate(models)}
    a = battles["model_a"].map(m_index).to_numpy()
    b = battles["model_b"].map(m_index).to_numpy()
    label = battles["winner"].map({"a": 1.0, "b": 0.0, "tie": 0.5}).to_numpy(dtype=np.float32)
    return list(queries), models, q_idx.astype(np.int64), a.astype(np.int64), b.astype(np.int64), label


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
    """

    router_type: ClassVar[str] = "mf"

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

    # ----------------------------------------------------------------- scoring
    @property
    def known_models(self) -> list[str] | None:
        return list(getattr(self, "models_", [])) or None

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_vectors_"):
            raise NotFittedError("this mf router is not trained: call fit() or load a checkpoint")

    def model_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """``s(m, q)`` for every query row and every known model: ``(n_queries, n_models)``."""
        self._check_fitted()
        vm = self.model_vectors_ / np.linalg.norm(self.model_vectors_, axis=1, keepdims=True)
        proj = embeddings.astype(np.float32) @ self.projection_.T
        return proj @ (vm * self.classifier_).T

    def _win_rate_embeddings(self, embeddings: np.ndarray, strong: str, weak: str) -> np.ndarray:
        vm = self.model_vectors_ / np.linalg.norm(self.model_vectors_, axis=1, keepdims=True)
        i, j = self.models_.index(strong), self.models_.index(weak)
        direction = self.projection_.T @ (self.classifier_ * (vm[i] - vm[j]))
        return _sigmoid(embeddings.astype(np.float64) @ direction.astype(np.float64))

    # ----------------------------------------------------------------- learning
    def fit(
        self,
        battles: pd.DataFrame,
        *,
        seed: int = 0,
        show_progress: bool = False,
        embeddings: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> MatrixFactorizationRouter:
        """Train on ``battles``.

        ``embeddings`` may hold precomputed rows for the sorted unique queries (as
        :func:`battle_arrays` orders them) to skip encoding; ``sample_weight`` weighs each
        battle's loss (e.g. to balance in-domain labels against general data).
        """
        import torch
        from tqdm.auto import tqdm

        if self.ties not in ("half", "drop"):
            raise ValueError(f"ties must be 'half' or 'drop', got {self.ties!r}")
        weights = _check_weights(sample_weight, len(battles))
        if self.ties == "drop":
            keep = (battles["winner"] != "tie").to_numpy()
            battles, weights = battles[keep], weights[keep]
        if len(battles) == 0:
            raise ValueError("cannot train an mf router on zero battles")
        queries, models, q_idx, a_idx, b_idx, label = battle_arrays(battles)
        if embeddings is None:
            embeddings = self.encoder_.encode(queries, show_progress=show_progress)
        if len(embeddings) != len(queries):
            raise ValueError(f"got {len(embeddings)} embeddings for {len(queries)} unique queries")

        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        is_val_query = rng.random(len(queries)) < self.val_fraction
        val = is_val_query[q_idx]
        if val.all() or not val.any():
            val = np.zeros(len(q_idx), dtype=bool)

        emb = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))
        P = torch.nn.Parameter(torch.randn(len(models), self.dim) * 0.1)
        W = torch.nn.Parameter(torch.randn(self.dim, emb.shape[1]) / emb.shape[1] ** 0.5)
        w = torch.nn.Parameter(torch.randn(self.dim) / self.dim**0.5)
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
        best = (float("inf"), None, 0)
        history: list[dict[str, float]] = []
        bar = tqdm(range(self.epochs), desc="mf epochs", disable=not show_progress)
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
        P_best, W_best, w_best = best[1]  # type: ignore[misc]
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
