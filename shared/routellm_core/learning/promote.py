"""Promote a retrained router only when it is not worse than the current one on held-out traffic.

Labelled traffic (judged battles and rated calls, :meth:`TrafficStore.training_battles`) is
split by query, reproducibly: :func:`holdout_mask` (from :mod:`routellm_core.training.holdout`)
hashes each query with a seed, so ``routellm train --holdout 0.2`` leaves out exactly the
queries that ``routellm promote --holdout 0.2`` evaluates on. The held-out battles of the routed pair become a
:class:`~routellm_core.evaluation.benchmarks.Benchmark` (per query, the strong model's share of
wins and ties as its score, the weak model's as the rest), and both routers are scored with the
same metric code as ``routellm eval`` (APGR), with a paired bootstrap interval of the
difference. The candidate replaces the current router when its APGR is not below the current
one's by more than ``tolerance``; the replacement is one atomic exchange on Linux
(:func:`replace_checkpoint`). :func:`publish_promoted` records the promoted checkpoint as the
next router version of a traffic store, which every replica's ``RouterFromStore`` loads.

Example:
    >>> from routellm_core.learning.promote import holdout_mask
    >>> queries = ["a", "b", "c", "d"]
    >>> holdout_mask(queries, 0.5, seed=0).tolist() == holdout_mask(queries[::-1], 0.5, seed=0).tolist()[::-1]
    True
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.evaluation.benchmarks import Benchmark
from routellm_core.evaluation.metrics import apgr, routing_curve
from routellm_core.training.holdout import holdout_mask, split_holdout

_LABEL = {"a": 1.0, "b": 0.0, "tie": 0.5}


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


SHARES = (0.1, 0.3, 0.5)  # the strong_fraction settings whose strong share promote reports


def strong_shares(router: Any, bench: Benchmark, fractions: Sequence[float] = SHARES) -> dict[str, float | None]:
    """The share of ``bench``'s queries that ``router`` sends strong at each ``strong_fraction``
    (through its own calibration table; ``None`` for a router without one): what a model set
    with that share would do on this traffic with this router.

    Example:
        >>> import numpy as np
        >>> from routellm_core.checkpoints import load_router
        >>> b = Benchmark(name="t", prompts=["hi", "Prove that 2 is prime."], strong_scores=np.array([0., 1.]),
        ...               weak_scores=np.array([1., 0.]), question_ids=np.arange(2), strong_model="a",
        ...               weak_model="b", n_removed_contaminated=0)
        >>> sorted(strong_shares(load_router("default"), b))
        ['0.1', '0.3', '0.5']
    """
    from routellm_core.routing import Pool

    table = router.calibration_
    if table is None:
        return {str(f): None for f in fractions}
    rates = Pool.pair(router, strong=bench.strong_model, weak=bench.weak_model, threshold=0.5).win_rates(bench.prompts)
    return {str(f): float(np.mean(rates >= table.threshold_for(f))) for f in fractions}


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


def _refuse_unless_checkpoint(path: Path, role: str) -> None:
    """``ValueError`` naming ``path`` unless it is a router checkpoint directory (the loader's
    own test: a ``config.json`` of this library's format)."""
    from routellm_core.checkpoints import CheckpointError, _read_config

    if not path.exists():
        raise ValueError(f"{role} {str(path)!r} is not a checkpoint directory: it does not exist")
    if not path.is_dir():
        raise ValueError(f"{role} {str(path)!r} is not a checkpoint directory: it is a file")
    try:
        _read_config(path)
    except CheckpointError as exc:
        raise ValueError(f"{role} {str(path)!r} is not a checkpoint directory ({exc})") from None


def _ours(path: Path) -> bool:
    """Whether ``path`` is a directory that :func:`replace_checkpoint` made (its marker inside)."""
    from routellm_core.checkpoints import PROMOTE_MARKER

    return path.is_dir() and not path.is_symlink() and (path / PROMOTE_MARKER).is_file()


def _refuse_unless_ours(path: Path, what: str) -> None:
    """``ValueError`` when ``path`` exists and is not a directory this module made."""
    if not os.path.lexists(path) or _ours(path):
        return
    kind = ("a symlink" if path.is_symlink() else "a directory that routellm promote did not create"
            if path.is_dir() else "a file")
    raise ValueError(
        f"{str(path)!r} is {kind}; promote keeps the {what} there and deletes only what it made "
        "itself: move it away (or rename it), then promote again"
    )


def _mark(directory: Path) -> bool:
    """Write the marker that makes ``directory`` ours; ``True`` when it was not there before."""
    from routellm_core.checkpoints import PROMOTE_MARKER

    marker = directory / PROMOTE_MARKER
    if marker.is_file():
        return False
    marker.write_text("made by routellm promote (replace_checkpoint); it may delete this directory\n")
    return True


def _unmark(directory: Path) -> None:
    from routellm_core.checkpoints import PROMOTE_MARKER

    (directory / PROMOTE_MARKER).unlink(missing_ok=True)


def _within(path: Path, other: Path) -> bool:
    return path == other or other in path.parents


def replace_checkpoint(candidate: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy the checkpoint directory ``candidate`` over ``target``; the one it replaces is kept
    beside it as ``<target>.previous``.

    The copy is made beside ``target`` first (``<target>.incoming``), then swapped in. On Linux
    the swap is one atomic exchange: a reader finds the old checkpoint or the new one, never a
    mix and never nothing. Where the system cannot exchange two paths it takes two renames, and
    for the instant between them ``target`` is absent (:func:`~routellm_core.checkpoints.load_router`
    retries a load that the swap disturbed; a router being served keeps running on the one it has).

    Nothing is deleted that this function did not make. ``target`` must be absent or a router
    checkpoint directory (not a symlink), and ``candidate`` a checkpoint directory other than
    ``target``, its ``.incoming`` or its ``.previous``; an existing ``.incoming`` or ``.previous``
    must be a directory that this function created (it writes the marker file
    :data:`~routellm_core.checkpoints.PROMOTE_MARKER` in each, which the loader ignores). All of
    this is checked before anything is copied or moved, and the copy is verified
    (:func:`~routellm_core.checkpoints.verify_checkpoint`) before it is swapped in. If a step
    after the swap fails, the swap is undone: ``target`` is left as it was.

    Raises:
        ValueError: any of the conditions above, naming the path and what to do.
        OSError: the copy or a rename failed (``target`` unchanged).
    """
    from routellm_core.checkpoints import CheckpointError, verify_checkpoint

    src, dst = Path(candidate), Path(target)
    if dst.name in ("", ".", ".."):
        dst = dst.resolve()
    staging = dst.with_name(dst.name + ".incoming")
    old = dst.with_name(dst.name + ".previous")
    _refuse_unless_checkpoint(src, "candidate")
    if dst.is_symlink():
        raise ValueError(
            f"target {str(dst)!r} is a symlink (to {os.readlink(dst)!r}); promote swaps a checkpoint "
            "directory itself: pass the directory, not a link to it"
        )
    if os.path.lexists(dst):
        _refuse_unless_checkpoint(dst, "target")
    real = src.resolve()
    for path, what in ((dst, "the target"), (staging, "the target's staging directory"),
                       (old, "the target's previous version")):
        if _within(real, path.resolve()):
            raise ValueError(
                f"candidate {str(src)!r} is {what} {str(path)!r} (or inside it), which promote replaces "
                "or deletes: copy the candidate elsewhere first"
            )
    _refuse_unless_ours(staging, "a copy in progress")
    _refuse_unless_ours(old, "previous checkpoint")
    if os.path.lexists(staging):
        shutil.rmtree(staging)  # ours, left by a promote that stopped part way
    try:
        shutil.copytree(src, staging)
        _mark(staging)
        try:  # what is swapped in is a whole, valid checkpoint
            verify_checkpoint(staging)
        except CheckpointError as exc:
            raise ValueError(f"candidate {str(src)!r} does not verify, as copied to {str(staging)!r}: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not os.path.lexists(dst):
        os.rename(staging, dst)
        return dst
    try:
        if os.path.lexists(old):
            shutil.rmtree(old)  # ours: the version before the current one
        exchanged = exchange_paths(staging, dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if exchanged:
        # ``staging`` now holds the old checkpoint: keep it as ``old``, or undo the exchange
        marked = False
        try:
            marked = _mark(staging)
            os.rename(staging, old)
        except BaseException:
            if marked:
                _unmark(staging)
            if exchange_paths(staging, dst):  # undone: ``staging`` holds the new copy again
                shutil.rmtree(staging, ignore_errors=True)
            raise
        return dst
    try:
        os.rename(dst, old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    marked = False
    try:
        marked = _mark(old)
        os.rename(staging, dst)
    except BaseException:
        if marked:
            _unmark(old)
        os.rename(old, dst)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dst


def who_publishes(by: str | None = None) -> str:
    """``by``, else the OS user running the process (``"unknown"`` when it has no name).

    Example:
        >>> who_publishes("ops")
        'ops'
    """
    if by:
        return by
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return "unknown"


def publish_promoted(store: Any, candidate: str | os.PathLike[str], *, figures: Mapping[str, Any] | None = None,
                     location: str | None = None, by: str | None = None, note: str | None = None) -> Any:
    """Publish a promoted checkpoint as the next router version of ``store`` (what
    ``routellm promote --publish STORE`` does after a promotion): its location, its digest
    (:func:`~routellm_core.routing.follow.checkpoint_sha256`), the comparison ``figures``,
    who (``by``, else the OS user) and when. Every ``RouterFromStore`` of the store loads it
    at its next poll.

    Args:
        store: a :class:`~routellm_core.learning.TrafficStore` or its path / URL.
        candidate: the promoted checkpoint directory.
        location: where replicas find it, when not at ``candidate``'s absolute path: a copy on
            shared storage or an ``hf://org/name[@revision]`` upload; it must hold the same
            checkpoint (same digest).
        by / note: recorded with the version.

    Returns:
        The :class:`~routellm_core.store.RouterVersion` published.

    Raises:
        ValueError: ``candidate`` is not a checkpoint directory, or ``location`` holds another
            checkpoint than ``candidate``.
        StoreError: the store cannot be opened or written.

    Example:
        >>> import os, tempfile
        >>> from routellm_core.checkpoints import DEFAULT_DIR
        >>> from routellm_core.learning import TrafficStore
        >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "t.db"))
        >>> publish_promoted(store, DEFAULT_DIR, figures={"candidate_apgr": 0.6}, by="ops").version
        1
    """
    from routellm_core.checkpoints import CheckpointError
    from routellm_core.routing.follow import _digest_of, _fetch, checkpoint_sha256
    from routellm_core.store import open_store

    _refuse_unless_checkpoint(Path(candidate), "candidate")
    try:
        digest = checkpoint_sha256(candidate)
    except CheckpointError as exc:
        raise ValueError(f"candidate {str(candidate)!r} does not verify: {exc}") from None
    if location is None:
        location = str(Path(candidate).resolve())
    elif not location.startswith("hf://"):
        location = str(Path(location).expanduser().resolve())
    if location != str(Path(candidate).resolve()):
        try:
            directory, root = _fetch(location)
            found = _digest_of(directory, root)
        except CheckpointError as exc:
            raise ValueError(f"the location {location!r} does not hold a valid checkpoint: {exc}") from None
        if found != digest:
            raise ValueError(f"the location {location!r} holds another checkpoint than the candidate "
                             f"{str(candidate)!r} (sha256 {found[:12]}... vs {digest[:12]}...): copy the candidate "
                             "there first")
    return open_store(store).publish_router(location, sha256=digest, figures=figures, by=who_publishes(by), note=note)


__all__ = ["Comparison", "compare", "holdout_mask", "publish_promoted", "replace_checkpoint", "split_holdout",
           "strong_shares", "traffic_benchmark", "who_publishes"]
