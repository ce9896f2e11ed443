"""Offline scoring: win rates, calibration and benchmark metrics over many prompts at once (a
list or a prompt file), in this process or on Ray Data. Live calls are routed one by one by
:mod:`routellm_core.routing` instead (async ones micro-batched by its ``RouteBatcher``).

``engine="local"`` scores in this process; ``engine="ray"`` runs the router in
``num_workers`` Ray Data actors (see :mod:`routellm_core.ray_engine`), each loading the
checkpoint and the encoder once. Both give the same win rates, in input order.

Example:
    >>> from routellm_core.offline_scoring import score_prompts
    >>> df = score_prompts(["Prove that there are infinitely many primes.", "hi!"], router="default")
    >>> list(df.columns), len(df), bool(df.win_rate.between(0, 1).all())
    (['prompt', 'win_rate'], 2, True)

Prompts are a list of strings or a prompt file (``.parquet``, ``.jsonl``, ``.json``, ``.csv``
or plain text; see :mod:`routellm_core.data.prompts`). On Ray, Parquet, JSONL and text files
are read by Ray Data itself, so a large file never passes through this process whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from routellm_core.calibration import CalibrationTable
from routellm_core.checkpoints import as_router
from routellm_core.data.prompts import is_prompt_file, prompt_texts
from routellm_core.encoders import validate_texts
from routellm_core.routers import Router

Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")
PromptSource = str | os.PathLike[str] | Sequence[str]


def check_engine(engine: str, num_workers: int) -> None:
    """Raise a ``ValueError`` naming the problem unless ``engine`` and ``num_workers`` are valid."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {list(ENGINES)}")
    if (
        isinstance(num_workers, bool)
        or not isinstance(num_workers, int)
        or num_workers < 1
    ):
        raise ValueError(f"num_workers must be a positive integer, got {num_workers!r}")


def score_prompts(
    prompts: PromptSource,
    router: Router | str | os.PathLike[str] = "default",
    *,
    engine: Engine = "local",
    num_workers: int = 1,
    ray_address: str | None = None,
    revision: str | None = None,
    encoder: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    strong_model: str | None = None,
    weak_model: str | None = None,
    batch_size: int = 256,
    cpus_per_worker: float = 1.0,
    show_progress: bool = False,
) -> pd.DataFrame:
    """Win rates of ``prompts`` as a DataFrame with columns ``prompt`` and ``win_rate``, in input order.

    Args:
        prompts: a list of prompts, or the path of a prompt file.
        router: a router, or what :func:`~routellm_core.checkpoints.load_router` takes
            (``"default"``, a checkpoint directory, a Hub id). Ray workers load it by path.
        engine: ``"local"`` (this process) or ``"ray"`` (Ray Data actors).
        num_workers: Ray actors, each with its own copy of the router and encoder.
        ray_address: a Ray cluster to join (``"auto"``, ``"ray://host:10001"``); ``None``
            starts a local Ray on this machine (or reuses the one already started).
        revision: Hub revision of ``router``.
        encoder: sentence-transformers id or path replacing the router's encoder.
        cache_dir: the on-disk embedding cache (shared by local workers).
        strong_model / weak_model: the pair to score (default: the router's).
        batch_size: prompts per Ray batch.
        cpus_per_worker: CPUs each Ray actor reserves (its torch thread count, too).
        show_progress: Ray Data progress bars and worker logs.

    Raises:
        ValueError / TypeError: no prompts, an empty or non-text prompt, an unknown engine,
            ``num_workers`` < 1. ImportError: ``engine="ray"`` without Ray installed.
    """
    check_engine(engine, num_workers)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if engine == "ray":
        from routellm_core.ray_engine import ray_win_rates

        # bad input fails here, before Ray starts
        if not is_prompt_file(prompts):
            prompts = validate_texts(prompts)  # type: ignore[arg-type]
        elif os.fspath(prompts).startswith("store:"):  # type: ignore[arg-type]
            prompts = prompt_texts(prompts)  # a traffic store's queries: read here, sent as texts
        elif not Path(prompts).is_file():  # type: ignore[arg-type]
            raise FileNotFoundError(f"prompt file {prompts} does not exist")

        return ray_win_rates(
            prompts,
            router,
            num_workers=num_workers,
            address=ray_address,
            revision=revision,
            encoder=encoder,
            cache_dir=cache_dir,
            strong_model=strong_model,
            weak_model=weak_model,
            batch_size=batch_size,
            cpus_per_worker=cpus_per_worker,
            show_progress=show_progress,
        )
    texts = prompt_texts(prompts)
    scorer = as_router(router, revision=revision, encoder=encoder, cache_dir=cache_dir)
    rates = scorer.win_rate(texts, strong_model=strong_model, weak_model=weak_model)
    return pd.DataFrame({"prompt": texts, "win_rate": rates})


def calibrate_prompts(
    prompts: PromptSource,
    router: Router | str | os.PathLike[str] = "default",
    *,
    source: str | None = None,
    **score_options: Any,
) -> CalibrationTable:
    """The calibration table of ``router`` on ``prompts`` (scored as :func:`score_prompts` does).

    Example:
        >>> table = calibrate_prompts(["hi", "Prove Fermat's little theorem.", "Sort a list in C."])
        >>> table.n_prompts, 0.0 <= table.threshold_for(0.5) <= 1.0
        (3, True)
    """
    scores = score_prompts(prompts, router, **score_options)
    if source is None:
        source = str(prompts) if is_prompt_file(prompts) else f"{len(scores)} prompts"
    return CalibrationTable.from_win_rates(scores["win_rate"].to_numpy(), source=source)


def evaluate_benchmark(
    router: Router | str | os.PathLike[str],
    benchmark: Any,
    *,
    router_name: str | None = None,
    **score_options: Any,
) -> dict[str, Any]:
    """The paper's metrics (APGR, CPT, ...) of ``router`` on a loaded benchmark, out of domain.

    The benchmark's prompts are scored as :func:`score_prompts` does, so ``engine="ray"``
    spreads them over Ray workers. ``--cv`` retrains per fold and is not offered here.
    """
    from routellm_core.evaluation.metrics import evaluate_win_rates

    scores = score_prompts(
        list(benchmark.prompts),
        router,
        strong_model=benchmark.strong_model,
        weak_model=benchmark.weak_model,
        **score_options,
    )
    if router_name is None:
        loaded = as_router(router, revision=score_options.get("revision"))
        router_name = loaded.name
    result = evaluate_win_rates(
        benchmark, np.asarray(scores["win_rate"]), router_name=router_name
    )
    result["cv_folds"] = 0
    return result
