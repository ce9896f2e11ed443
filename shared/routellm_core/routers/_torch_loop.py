"""What the two classifier routers (BERT, causal LLM) share to train: labels, the loop, weights.

Private to the routers (:mod:`routellm_core.training.torch_loop` re-exports it for old imports).

Both classifiers learn P(strong wins), P(tie), P(weak wins) for a query, as RouteLLM's BERT and
causal-LLM routers do. A battle is labelled relative to its stronger side: the model with the
higher Elo rating over the training battles (``pairs="all"``), or the router's own strong model
when only battles of the router's pair are kept (``pairs="router"``). The classifier sees only the
query, so every battle of one query is merged into a single example whose target is the
weighted share of the three outcomes: the cross-entropy against that soft target equals the sum
of the per-battle losses, at a fraction of the cost (gold data holds every pair of models for
each query).

Example:
    >>> from routellm_core.data.schema import make_battles
    >>> from routellm_core.routers._torch_loop import classifier_examples
    >>> rows = [{"query": q, "model_a": a, "model_b": b, "winner": w, "source": "doc"}
    ...         for q, a, b, w in [("prove it", "big", "small", "a"), ("prove it", "small", "big", "b"),
    ...                            ("say hi", "big", "small", "tie"), ("add 2", "small", "big", "a")]]
    >>> ex = classifier_examples(make_battles(rows))
    >>> ex.queries, ex.targets.tolist()          # columns: strong wins, tie, weak wins
    (['add 2', 'prove it', 'say hi'], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

LABELS: tuple[str, str, str] = ("strong", "tie", "weak")
PAIR_MODES: tuple[str, ...] = ("all", "router")


@dataclass
class ClassifierExamples:
    """One soft-labelled example per unique query.

    Attributes:
        queries: the unique query texts, sorted.
        targets: ``(n, 3)`` shares of strong wins, ties and weak wins (rows sum to 1).
        weights: ``(n,)`` total battle weight behind each query, scaled to mean 1.
        ratings: Elo rating of every model in the battles (orients ``pairs="all"``).
        n_battles: battles that carried a label (battles between equally rated models carry none).
    """

    queries: list[str]
    targets: np.ndarray
    weights: np.ndarray
    ratings: dict[str, float]
    n_battles: int


def classifier_examples(
    battles: pd.DataFrame,
    *,
    sample_weight: np.ndarray | None = None,
    pairs: str = "all",
    strong_model: str | None = None,
    weak_model: str | None = None,
) -> ClassifierExamples:
    """Merge ``battles`` into soft 3-way targets per query (see the module docstring).

    Raises:
        ValueError: an unknown ``pairs`` mode, bad weights, or no battle left to learn from.
    """
    from routellm_core.data.elo import compute_elo
    from routellm_core.routers.battles import check_sample_weight

    if pairs not in PAIR_MODES:
        raise ValueError(f"pairs must be one of {list(PAIR_MODES)}, got {pairs!r}")
    weights = check_sample_weight(sample_weight, len(battles))
    if len(battles) == 0:
        raise ValueError("cannot train a classifier router on zero battles")
    ratings = compute_elo(battles, sample_weight=weights)
    a, b = (
        battles["model_a"].to_numpy(dtype=object),
        battles["model_b"].to_numpy(dtype=object),
    )
    if pairs == "router":
        a_strong = (a == strong_model) & (b == weak_model)
        keep = a_strong | ((a == weak_model) & (b == strong_model))
        if not keep.any():
            raise ValueError(
                f"pairs='router' keeps only battles of {strong_model!r} against {weak_model!r}, "
                "and the training data holds none; use pairs='all' or data with that pair"
            )
    else:
        ra, rb = ratings.reindex(a).to_numpy(), ratings.reindex(b).to_numpy()
        a_strong = ra > rb
        keep = ra != rb
    winner = battles["winner"].to_numpy(dtype=object)
    outcome = np.where(winner == "tie", 1, np.where((winner == "a") == a_strong, 0, 2))
    keep &= weights > 0
    if not keep.any():
        raise ValueError(
            "no battle carries a label: every battle is between equally rated models"
        )
    queries, q_idx = np.unique(
        battles["query"].to_numpy(dtype=object)[keep], return_inverse=True
    )
    counts = np.zeros((len(queries), 3))
    np.add.at(counts, (q_idx, outcome[keep]), weights[keep])
    totals = counts.sum(axis=1)
    return ClassifierExamples(
        queries=[str(q) for q in queries],
        targets=counts / totals[:, None],
        weights=totals / totals.mean(),
        ratings={str(k): float(v) for k, v in ratings.items()},
        n_battles=int(keep.sum()),
    )


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is present, else ``"cpu"``; other names pass through.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    if not isinstance(device, str) or not device:
        raise ValueError(
            f"device must be 'auto' or a torch device name, got {device!r}"
        )
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def soft_cross_entropy(logits: Any, targets: Any, weights: Any) -> Any:
    """Weighted mean cross-entropy of ``logits`` (n, k) against soft ``targets`` (n, k)."""
    import torch

    per_row = -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    return (per_row * weights).sum() / weights.sum().clamp_min(1e-12)


@dataclass
class LoopSettings:
    """Optimiser and schedule of :func:`train_classifier` (the routers' constructor params)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    max_steps: int | None
    eval_every: int
    patience: int
    val_fraction: float


def check_loop_settings(s: LoopSettings) -> None:
    """Raise a ``ValueError`` naming the first out-of-range setting."""
    ints = {
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "eval_every": s.eval_every,
        "patience": s.patience,
    }
    for name, value in ints.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if s.max_steps is not None and (
        not isinstance(s.max_steps, int) or s.max_steps < 1
    ):
        raise ValueError(
            f"max_steps must be a positive integer or None, got {s.max_steps!r}"
        )
    if not (isinstance(s.lr, (int, float)) and math.isfinite(s.lr) and s.lr > 0):
        raise ValueError(f"lr must be a positive number, got {s.lr!r}")
    if not (isinstance(s.weight_decay, (int, float)) and s.weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {s.weight_decay!r}")
    if not (isinstance(s.val_fraction, (int, float)) and 0 <= s.val_fraction < 1):
        raise ValueError(f"val_fraction must be in [0, 1), got {s.val_fraction!r}")


def train_classifier(
    params: Sequence[Any],
    batch_logits: Callable[[list[str]], Any],
    examples: ClassifierExamples,
    settings: LoopSettings,
    *,
    seed: int = 0,
    show_progress: bool = False,
    desc: str = "train",
    snapshot: Callable[[], dict[str, Any]] | None = None,
) -> tuple[list[dict[str, float | None]], dict[str, Any] | None, int]:
    """AdamW over ``params`` with early stopping on a held-out share of the queries.

    ``batch_logits(texts)`` returns the (n, 3) logits of the model being trained, in training
    mode. Every ``eval_every`` steps (and at the end) the validation loss is computed; the
    parameters with the lowest one are kept (``snapshot()`` copies them), and training stops
    after ``patience`` evaluations without improvement.

    Returns:
        The history (one entry per evaluation: step, mean train loss since the last one,
        validation loss or ``None`` without a validation split), the best snapshot (``None`` when
        the last state is the best) and its step.
    """
    import torch
    from tqdm.auto import tqdm

    from routellm_core.progress import progress_wanted

    check_loop_settings(settings)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n = len(examples.queries)
    is_val = rng.random(n) < settings.val_fraction
    if is_val.all() or not is_val.any():
        is_val[:] = False
    train_rows, val_rows = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    targets = torch.tensor(examples.targets, dtype=torch.float32)
    weights = torch.tensor(examples.weights, dtype=torch.float32)
    steps_per_epoch = math.ceil(len(train_rows) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    opt = torch.optim.AdamW(
        [p for p in params if p.requires_grad],
        lr=settings.lr,
        weight_decay=settings.weight_decay,
    )

    def loss_on(rows: np.ndarray) -> Any:
        logits = batch_logits([examples.queries[i] for i in rows])
        idx = torch.from_numpy(rows)
        return soft_cross_entropy(
            logits.float(),
            targets[idx].to(logits.device),
            weights[idx].to(logits.device),
        )

    def val_loss() -> float | None:
        if not len(val_rows):
            return None
        total_loss, total_w = 0.0, 0.0
        with torch.no_grad():
            for start in range(0, len(val_rows), settings.batch_size):
                rows = val_rows[start : start + settings.batch_size]
                w = float(examples.weights[rows].sum())
                total_loss += float(loss_on(rows)) * w
                total_w += w
        return total_loss / total_w

    history: list[dict[str, float | None]] = []
    best: tuple[float, dict[str, Any] | None, int] = (float("inf"), None, 0)
    since_best, step, running = 0, 0, []
    bar = tqdm(total=total, desc=desc, disable=not progress_wanted(show_progress))
    stop = False
    while step < total and not stop:
        for start in range(0, len(train_rows), settings.batch_size):
            if step >= total:
                break
            if start == 0:
                order = rng.permutation(train_rows)
            loss = loss_on(order[start : start + settings.batch_size])
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss became {float(loss)} at step {step}; "
                    "lower lr or check the data"
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            running.append(float(loss.detach()))
            bar.update(1)
            if step % settings.eval_every == 0 or step == total:
                v = val_loss()
                train_loss = float(np.mean(running))
                entry = {"step": step, "train_loss": train_loss, "val_loss": v}
                history.append(entry)
                bar.set_postfix(
                    train=f"{entry['train_loss']:.4f}",
                    val="-" if v is None else f"{v:.4f}",
                )
                running = []
                score = train_loss if v is None else v
                if score < best[0] - 1e-6:
                    is_last = step == total
                    best = (
                        score,
                        None if is_last or snapshot is None else snapshot(),
                        step,
                    )
                    since_best = 0
                else:
                    since_best += 1
                    if since_best >= settings.patience:
                        stop = True
                        break
    bar.close()
    if best[2] == history[-1]["step"]:
        return history, None, best[2]
    return history, best[1], best[2]


def module_state(module: Any, skip: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """A module's parameters and buffers as float32/int numpy arrays, minus ``skip`` keys."""
    out = {}
    for key, tensor in module.state_dict().items():
        if key in skip:
            continue
        t = tensor.detach().cpu()
        out[key] = (t.float() if t.is_floating_point() else t).numpy().copy()
    return out


# Hugging Face config keys that size a model: bounded by the weights before anything is built.
SIZE_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "head_dim", "type_vocab_size",
    "max_position_embeddings", "num_labels",
)


def build_checked_module(
    build: Callable[[Mapping[str, Any]], Any],
    config: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    allowed_missing: Callable[[Any], Sequence[str]] = lambda m: (),
) -> Any:
    """``build(config)``, once the weights are known to fit it, so that a tampered config
    cannot make the loader allocate (or loop) far beyond what the weights hold.

    First every size key of ``config`` is bounded by the weights (a layer count by the number
    of arrays, any other size by their largest dimension); then the model is built on the
    ``meta`` device (no memory) and each parameter's shape is compared with the array of its
    name. Only then is the real model built.

    Raises:
        ValueError: naming the key or the parameter that does not fit.
    """
    import torch

    if not arrays:
        raise ValueError("the checkpoint holds no weights for its model")
    largest = max((max(a.shape) for a in arrays.values() if a.ndim), default=0)
    for key in SIZE_KEYS:
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"hf_config.{key} must be a non-negative integer, got {value!r:.80}")
        limit = len(arrays) if key == "num_hidden_layers" else max(largest, 1)
        if key == "max_position_embeddings":
            limit = max(limit, 1 << 20)  # rotary models learn no table of that size
        if value > limit:
            raise ValueError(
                f"hf_config.{key} = {value} is larger than anything the weights hold "
                f"({limit}); the config does not belong to these weights"
            )
    with torch.device("meta"):
        shaped = build(config)
    skip = set(allowed_missing(shaped))
    for name, param in shaped.state_dict().items():
        if name in skip:
            continue
        if name not in arrays:
            raise ValueError(f"the weights lack {name!r}, which the config's model has")
        if tuple(arrays[name].shape) != tuple(param.shape):
            raise ValueError(
                f"{name!r} has shape {tuple(arrays[name].shape)} in the weights but "
                f"{tuple(param.shape)} in the config's model"
            )
    return build(config)


def load_module_state(
    module: Any, arrays: Mapping[str, np.ndarray], allowed_missing: Sequence[str] = ()
) -> None:
    """Load numpy ``arrays`` into ``module``; a missing or unexpected key raises ``ValueError``."""
    import torch

    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in allowed_missing]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"the weights do not fit the model: missing {missing[:5]}, "
            f"unexpected {list(result.unexpected_keys)[:5]}"
        )


def snapshot_params(module: Any) -> Callable[[], dict[str, Any]]:
    """A function copying ``module``'s trainable parameters (for :func:`train_classifier`)."""

    def take() -> dict[str, Any]:
        return {
            k: copy.deepcopy(p.detach())
            for k, p in module.named_parameters()
            if p.requires_grad
        }

    return take


def restore_params(module: Any, saved: Mapping[str, Any]) -> None:
    """Put a :func:`snapshot_params` copy back into ``module``."""
    import torch

    with torch.no_grad():
        for k, p in module.named_parameters():
            if k in saved:
                p.copy_(saved[k])


__all__ = [
    "LABELS",
    "PAIR_MODES",
    "SIZE_KEYS",
    "ClassifierExamples",
    "LoopSettings",
    "build_checked_module",
    "check_loop_settings",
    "classifier_examples",
    "load_module_state",
    "module_state",
    "resolve_device",
    "restore_params",
    "snapshot_params",
    "soft_cross_entropy",
    "train_classifier",
]
