"""Promote a retrained router only when it is not worse than the current one on held-out traffic.

Labelled traffic (judged battles and rated calls, :meth:`TrafficStore.training_battles`) is
split by query, reproducibly: :func:`holdout_mask` hashes each query with a seed, so ``routellm
train --holdout 0.2`` leaves out exactly the queries that ``routellm promote --holdout 0.2``
evaluates on. The held-out battles of the routed pair become a
:class:`~routellm_core.evaluation.benchmarks.Benchmark` (per query, the strong model's share of
wins and ties as its score, the weak model's as the rest), and both routers are scored with the
same metric code as ``routellm eval`` (APGR), with a paired bootstrap interval of the
difference. The candidate replaces the current router when its APGR is not below the current
one's by more than ``tolerance``; the replacement is one atomic exchange on Linux
(:func:`replace_checkpoint`).

Example:
    >>> from routellm_core.learning.promote import holdout_mask
    >>> queries = ["a", "b", "c", "d"]
    >>> holdout_mask(queries, 0.5, seed=0).tolist() == holdout_mask(queries[::-1], 0.5, seed=0).tolist()[::-1]
    True
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.data.templates import normalize_text
from routellm_core.evaluation.benchmarks import Benchmark
from routellm_core.evaluation.metrics import apgr, routing_curve

_LABEL = {"a": 1.0, "b": 0.0, "tie": 0.5}


def holdout_mask(queries: Sequence[str], fraction: float, *, seed: int = 0) -> np.ndarray:
    """``True`` for the queries held out: a seeded hash of the normalised text below ``fraction``
    (the same query is always on the same side, whatever else is in the data)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction!r}")
    out = np.empty(len(queries), dtype=bool)
    for i, q in enumerate(queries):
        digest = hashlib.sha256(f"{seed}\x00{normalize_text(q)}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2**64 < fraction
    return out


def split_holdout(battles: pd.DataFrame, fraction: float, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(training, held_out)`` battles by :func:`holdout_mask` of their queries."""
    mask = holdout_mask(battles["query"].tolist(), fraction, seed=seed)
    return battles[~mask].reset_index(drop=True), battles[mask].reset_index(drop=True)


def traffic_benchmark(battles: pd.DataFrame, strong: str, weak: str, *, name: str = "traffic") -> Benchmark:
    """A benchmark of the battles between ``strong`` and ``weak`` (either order): per query,
    the strong model's score is its share of wins (a tie counts half), the weak model's the rest.

    Raises:
        ValueError: no battle of that pair.
    """
    fwd = (battles["model_a"] == strong) & (battles["model_b"] == weak)
    rev = (battles["model_a"] == weak) & (battles["model_b"] == strong)
    pair = battles[fwd | rev]
    if pair.empty:
        models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
        raise ValueError(f"no labelled battle of {strong!r} vs {weak!r}; the data has {models}")
    label = pair["winner"].map(_LABEL).to_numpy(dtype=float)
    strong_share = np.where(rev[fwd | rev].to_numpy(), 1.0 - label, label)
    per_query = pd.Series(strong_share).groupby(pair["query"].to_numpy()).mean()
    prompts = list(per_query.index)
    s = per_query.to_numpy()
    return Benchmark(name=name, prompts=prompts, strong_scores=s, weak_scores=1.0 - s,
                     question_ids=np.arange(len(prompts)), strong_model=strong, weak_model=weak,
                     n_removed_contaminated=0, score_scale=100.0, score_unit="strong win share (%)")


@dataclass(frozen=True)
class Comparison:
    """Candidate against current on held-out traffic: both APGRs, the difference with its
    bootstrap interval (``level``), the number of queries, and the verdict."""

    candidate_apgr: float
    current_apgr: float
    difference: float
    interval: tuple[float, float]
    level: float
    n_queries: int
    promote: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _apgr(win_rates: np.ndarray, bench: Benchmark, idx: np.ndarray) -> float:
    s, w = bench.strong_scores[idx], bench.weak_scores[idx]
    curve = routing_curve(win_rates[idx], s, w, scale=bench.score_scale)
    strong, weak = bench.score_scale * s.mean(), bench.score_scale * w.mean()
    if np.isclose(strong, weak):
        return float("nan")
    return apgr(curve, strong, weak)


def compare(candidate: Any, current: Any, bench: Benchmark, *, bootstrap: int = 500, level: float = 0.95,
            tolerance: float = 0.0, seed: int = 0) -> Comparison:
    """Score both routers on ``bench`` (APGR) and decide: promote when the candidate's APGR is
    at least the current one's minus ``tolerance``.

    Raises:
        ValueError: too few queries (fewer than 10), or a benchmark on which the two models
            score the same (APGR is undefined).
    """
    from routellm_core.routing import Pool

    n = len(bench)
    if n < 10:
        raise ValueError(f"{n} held-out queries are too few to compare routers; label more traffic")
    rates = [Pool.pair(r, strong=bench.strong_model, weak=bench.weak_model, threshold=0.5).win_rates(bench.prompts)
             for r in (candidate, current)]
    every = np.arange(n)
    cand, curr = _apgr(rates[0], bench, every), _apgr(rates[1], bench, every)
    if np.isnan(cand) or np.isnan(curr):
        raise ValueError("the strong and weak models score the same on the held-out queries: APGR is undefined")
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(bootstrap):
        idx = rng.integers(0, n, n)
        d = _apgr(rates[0], bench, idx) - _apgr(rates[1], bench, idx)
        if not np.isnan(d):
            diffs.append(d)
    lo, hi = (np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2]) if diffs else (np.nan, np.nan))
    ok = cand >= curr - tolerance
    reason = (f"candidate APGR {cand:.3f} vs current {curr:.3f} on {n} held-out queries "
              f"(difference {cand - curr:+.3f}, {int(level * 100)}% interval [{lo:+.3f}, {hi:+.3f}]): "
              + ("not worse, promoted" if ok else "worse, kept the current router"))
    return Comparison(float(cand), float(curr), float(cand - curr), (float(lo), float(hi)), level, n, bool(ok),
                      reason)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``);
    ``False`` where the system or file system cannot, ``OSError`` for any other failure."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library older than glibc 2.28
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def replace_checkpoint(candidate: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy the checkpoint directory ``candidate`` over ``target``; the one it replaces is kept
    beside it as ``<target>.previous``.

    The copy is made beside ``target`` first, then swapped in. On Linux the swap is one atomic
    exchange: a reader finds the old checkpoint or the new one, never a mix and never nothing.
    Where the system cannot exchange two paths it takes two renames, and for the instant
    between them ``target`` is absent (a loader then raises ``CheckpointError``; a router being
    served keeps running on the one it has).
    """
    src, dst = Path(candidate), Path(target)
    if not src.is_dir():
        raise ValueError(f"candidate {str(src)!r} is not a checkpoint directory")
    staging = dst.with_name(dst.name + ".incoming")
    old = dst.with_name(dst.name + ".previous")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging)
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists() and exchange_paths(staging, dst):
        staging.rename(old)
        return dst
    if dst.exists():
        dst.rename(old)
    staging.rename(dst)
    return dst


__all__ = ["Comparison", "compare", "holdout_mask", "replace_checkpoint", "split_holdout", "traffic_benchmark"]
