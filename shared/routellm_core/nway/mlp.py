"""The small MLP head both N-way routers put on query embeddings: trained with torch, run in numpy.

``embedding -> [Linear -> ReLU -> Dropout] -> Linear -> one logit per model``. Two losses:

- ``"bce"``: per-model binary cross-entropy against scores in [0, 1] (correctness, or a
  fractional score), NaN targets masked out: a quality predictor (Tryage's role);
- ``"kl"``: KL divergence from a target distribution over models to the softmax of the logits
  (ZOOTER's reward distillation).

Training holds out a share of queries for early stopping and keeps the best epoch. Inference
is two matrix products in numpy; torch is imported only to train.

Example:
    >>> import numpy as np
    >>> from routellm_core.nway.mlp import MLPHead
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(64, 8)).astype(np.float32)
    >>> y = (x[:, :2] > 0).astype(float)                 # model 0 right when x0 > 0, ...
    >>> head = MLPHead(hidden=16, epochs=60, lr=1e-2).fit(x, y, loss="bce")
    >>> head.logits(x).shape
    (64, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["MLPHead"]

LOSSES = ("bce", "kl")


class MLPHead:
    """One hidden layer (``hidden=0``: a linear layer) with early stopping on held-out queries."""

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
        seed: int = 0,
    ) -> None:
        if hidden < 0 or epochs < 1 or batch_size < 1:
            raise ValueError(
                f"hidden must be >= 0, epochs and batch_size >= 1; got {hidden}, {epochs}, {batch_size}"
            )
        if not 0.0 <= dropout < 1.0 or not 0.0 <= val_fraction < 1.0:
            raise ValueError(
                f"dropout and val_fraction must be in [0, 1); got {dropout}, {val_fraction}"
            )
        if lr <= 0 or weight_decay < 0:
            raise ValueError(
                f"lr must be > 0 and weight_decay >= 0; got {lr}, {weight_decay}"
            )
        self.hidden, self.dropout, self.epochs, self.batch_size = (
            hidden,
            dropout,
            epochs,
            batch_size,
        )
        self.lr, self.weight_decay, self.val_fraction = lr, weight_decay, val_fraction
        self.patience, self.seed = patience, seed
        self.weights_: dict[str, np.ndarray] = {}

    def fit(
        self, x: np.ndarray, y: np.ndarray, *, loss: str, show_progress: bool = False
    ) -> MLPHead:
        """Train on embeddings ``x`` (n, d) and targets ``y`` (n, k)."""
        import torch
        from tqdm.auto import tqdm

        from routellm_core.progress import progress_wanted

        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 2:
            raise ValueError(
                f"x must be (n, d) and y (n, k) with n >= 2; got {x.shape}, {y.shape}"
            )
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        val = rng.random(len(x)) < self.val_fraction
        if val.all() or not val.any():
            val = np.zeros(len(x), dtype=bool)
        d, k = x.shape[1], y.shape[1]
        layers: list[Any] = []
        if self.hidden:
            layers += [
                torch.nn.Linear(d, self.hidden),
                torch.nn.ReLU(),
                torch.nn.Dropout(self.dropout),
            ]
        layers.append(torch.nn.Linear(self.hidden or d, k))
        net = torch.nn.Sequential(*layers)
        opt = torch.optim.AdamW(
            net.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        X, Y = torch.from_numpy(x), torch.from_numpy(y)

        def loss_of(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            if loss == "bce":
                mask = ~torch.isnan(target)
                per = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, torch.nan_to_num(target), reduction="none"
                )
                return (per * mask).sum() / mask.sum().clamp(min=1)
            return torch.nn.functional.kl_div(
                torch.log_softmax(logits, dim=1), target, reduction="batchmean"
            )

        train_rows, val_rows = (
            np.flatnonzero(~val),
            torch.from_numpy(np.flatnonzero(val)),
        )
        best: tuple[float, Mapping[str, Any] | None, int] = (float("inf"), None, 0)
        history: list[dict[str, float]] = []
        bar = tqdm(range(self.epochs), desc=f"{loss} head", disable=not progress_wanted(show_progress))
        for epoch in bar:
            net.train()
            perm = torch.from_numpy(rng.permutation(train_rows))
            total = 0.0
            for start in range(0, len(perm), self.batch_size):
                rows = perm[start : start + self.batch_size]
                value = loss_of(net(X[rows]), Y[rows])
                opt.zero_grad()
                value.backward()
                opt.step()
                total += float(value.detach()) * len(rows)
            train_loss = total / max(len(perm), 1)
            net.eval()
            with torch.no_grad():
                val_loss = (
                    float(loss_of(net(X[val_rows]), Y[val_rows]))
                    if len(val_rows)
                    else train_loss
                )
            history.append(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}
            )
            if val_loss < best[0] - 1e-6:
                best = (
                    val_loss,
                    {n: p.detach().clone() for n, p in net.state_dict().items()},
                    epoch,
                )
            elif epoch - best[2] >= self.patience:
                break
        net.load_state_dict(best[1])  # type: ignore[arg-type]
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        self.weights_ = {}
        for i, lin in enumerate(linears):
            self.weights_[f"w{i}"] = (
                lin.weight.detach().numpy().T.astype(np.float32).copy()
            )
            self.weights_[f"b{i}"] = lin.bias.detach().numpy().astype(np.float32).copy()
        self.history_ = history
        self.best_epoch_ = int(best[2])
        return self

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(n, k)`` for embeddings ``x`` (numpy only)."""
        if not self.weights_:
            raise RuntimeError("the MLP head is not trained")
        h = np.asarray(x, dtype=np.float32)
        n_layers = len(self.weights_) // 2
        for i in range(n_layers):
            h = h @ self.weights_[f"w{i}"] + self.weights_[f"b{i}"]
            if i < n_layers - 1:
                h = np.maximum(h, 0.0)
        return h.astype(np.float64)

    @classmethod
    def from_weights(
        cls, arrays: Mapping[str, np.ndarray], prefix: str = ""
    ) -> MLPHead:
        """Rebuild a trained head from saved arrays (``{prefix}w0``, ``{prefix}b0``, ...)."""
        head = cls()
        i = 0
        while f"{prefix}w{i}" in arrays:
            w, b = (
                np.asarray(arrays[f"{prefix}w{i}"]),
                np.asarray(arrays.get(f"{prefix}b{i}")),
            )
            if w.ndim != 2 or b.ndim != 1 or w.shape[1] != b.shape[0]:
                raise ValueError(
                    f"layer {i} weights do not fit: {w.shape} and {b.shape}"
                )
            if i and head.weights_[f"w{i - 1}"].shape[1] != w.shape[0]:
                raise ValueError(
                    f"layer {i} input {w.shape[0]} does not match the previous layer's output"
                )
            head.weights_[f"w{i}"], head.weights_[f"b{i}"] = (
                w.astype(np.float32),
                b.astype(np.float32),
            )
            i += 1
        if not i:
            raise ValueError(f"no MLP weights named {prefix}w0 in the checkpoint")
        return head

    def state(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The weights as named arrays for safetensors."""
        return {f"{prefix}{k}": v for k, v in self.weights_.items()}
