"""Batch scoring on Ray Data: the router as a callable class in ``map_batches`` actors.

Each actor loads the checkpoint (by name or path) and its encoder once, in ``__init__``, and
then scores batch after batch. Without an address, a local Ray starts on this machine (no
dashboard; ``num_workers + 1`` logical CPUs); with one (``"auto"``, ``"ray://head:10001"``)
the work goes to that cluster, whose workers need ``routellm-lc`` installed and must be able
to read the checkpoint (the embedded default and Hub ids always are).

Needs the ``ray`` extra (``pip install "routellm-lc[ray]"``). Use it through
:func:`routellm_core.offline_scoring.score_prompts` with ``engine="ray"``; for example
(not run here, Ray takes seconds to start)::

    >>> from routellm_core.offline_scoring import score_prompts
    >>> score_prompts("prompts.parquet", engine="ray", num_workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.checkpoints import as_router, save_router
from routellm_core.data.prompts import PROMPT_FIELDS, is_prompt_file, prompt_of_record, prompt_texts
from routellm_core.encoders import QueryEncoder
from routellm_core.routers import Router

RAY_MISSING = (
    'engine="ray" needs Ray Data: pip install "routellm-lc[ray]" (or "ray[data]>=2.9")'
)


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(f"{RAY_MISSING} ({exc})") from exc
    return ray


@contextmanager
def ray_session(
    address: str | None = None, *, num_cpus: int | None = None, quiet: bool = True
) -> Iterator[Any]:
    """Use the running Ray, or start one for the block (local, or joining ``address``) and stop it after."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not quiet}
    if address is None:
        options["num_cpus"] = num_cpus
    else:
        options["address"] = address
    if quiet:
        options["logging_level"] = logging.WARNING
    ray.init(**options)
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def _log_level(name: str, level: int | None) -> Iterator[None]:
    logger = logging.getLogger(name)
    before = logger.level
    if level is not None:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


class RouterScorer:
    """A Ray Data actor: loads the router once, then scores batches of prompts.

    Args:
        router: what :func:`~routellm_core.checkpoints.load_router` takes.
        revision, encoder, cache_dir: as in :func:`routellm_core.offline_scoring.score_prompts`.
        strong_model / weak_model: the pair to score.
        num_threads: torch threads of this actor (its share of the CPU).
    """

    def __init__(
        self,
        router: str,
        *,
        revision: str | None = None,
        encoder: str | None = None,
        cache_dir: str | None = None,
        strong_model: str | None = None,
        weak_model: str | None = None,
        num_threads: int = 1,
    ) -> None:
        import torch

        torch.set_num_threads(max(1, num_threads))
        # the same budget for the default encoder on ONNX Runtime (read when its session opens)
        os.environ.setdefault("ROUTELLM_ENCODER_THREADS", str(max(1, num_threads)))
        self.router = as_router(router, revision=revision, encoder=encoder, cache_dir=cache_dir)
        self.strong_model = strong_model
        self.weak_model = weak_model
        if self.router.uses_encoder:
            self.router.encoder_.model  # noqa: B018 - load the weights now, once per actor

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["prompt"]]
        errors = [str(e) for e in batch["error"]]
        rates = np.full(len(texts), np.nan)
        ok = [i for i, e in enumerate(errors) if not e]
        if ok:
            rates[ok] = self.router.win_rate(
                [texts[i] for i in ok],
                strong_model=self.strong_model,
                weak_model=self.weak_model,
            )
        return {
            "prompt": np.asarray(texts, dtype=object),
            "win_rate": rates,
            "error": np.asarray(errors, dtype=object),
            "worker": np.full(len(texts), os.getpid()),
        }


# Bad input found by a worker travels back as data (an ``error`` per row), so the caller gets
# a ValueError naming the file and the line rather than a Ray task traceback.
def _rows(texts: list[str], errors: list[str]) -> dict[str, np.ndarray]:
    keep = [i for i, (t, e) in enumerate(zip(texts, errors)) if e or t.strip()]
    return {
        "prompt": np.asarray([texts[i] for i in keep], dtype=object),
        "error": np.asarray([errors[i] for i in keep], dtype=object),
    }


def _prompts_from_lines(
    batch: dict[str, np.ndarray], *, jsonl: bool, where: str
) -> dict[str, np.ndarray]:
    texts, errors = [], []
    for line in batch["text"]:
        line = str(line)
        text, error = line, ""
        if jsonl and line.strip():
            try:
                text = prompt_of_record(json.loads(line), where)
            except json.JSONDecodeError as exc:
                text, error = (
                    "",
                    f"{where}: a line is not valid JSON ({exc}): {line[:80]!r}",
                )
            except ValueError as exc:
                text, error = "", str(exc)
        texts.append(text)
        errors.append(error)
    return _rows(texts, errors)


def _prompts_from_column(
    batch: dict[str, np.ndarray], *, column: str
) -> dict[str, np.ndarray]:
    values = [
        str(v)
        for v in batch[column]
        if v is not None and not (isinstance(v, float) and np.isnan(v))
    ]
    return _rows(values, [""] * len(values))


def _from_texts(ray: Any, texts: list[str]) -> Any:
    return ray.data.from_pandas(
        pd.DataFrame({"prompt": texts, "error": [""] * len(texts)})
    )


def read_prompt_dataset(prompts: str | os.PathLike[str] | Sequence[str]) -> Any:
    """A Ray Dataset of columns ``prompt`` and ``error`` (empty unless the row could not be read).

    Parquet, JSONL and text files are read by Ray Data itself; JSON and CSV here.
    """
    ray = _ray()
    if not is_prompt_file(prompts):
        return _from_texts(ray, prompt_texts(prompts))
    path = Path(prompts)  # type: ignore[arg-type]
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        column = next((c for c in PROMPT_FIELDS if c in names), None)
        if column is None:
            raise ValueError(
                f"{path}: no prompt column; expected one of {list(PROMPT_FIELDS)}, found {names}"
            )
        ds = ray.data.read_parquet(str(path), columns=[column])
        return ds.map_batches(
            _prompts_from_column, fn_kwargs={"column": column}, batch_format="numpy"
        )
    if suffix in (
        ".json",
        ".csv",
    ):  # whole-file formats: read here, as read_prompts does
        return _from_texts(ray, prompt_texts(prompts))
    ds = ray.data.read_text(str(path))
    return ds.map_batches(
        _prompts_from_lines,
        fn_kwargs={"jsonl": suffix == ".jsonl", "where": str(path)},
        batch_format="numpy",
    )


def _split(ds: Any, batch_size: int, num_workers: int) -> Any:
    """Blocks of about ``batch_size`` rows, so that a single file feeds every actor."""
    import inspect

    if "target_num_rows_per_block" in inspect.signature(ds.repartition).parameters:
        return ds.repartition(
            target_num_rows_per_block=batch_size
        )  # streaming, Ray >= 2.44
    return ds.repartition(max(4 * num_workers, 1))


def _checkpoint_for_workers(
    router: Router | str | os.PathLike[str], address: str | None, stack: list
) -> tuple[str, str | None, str | None]:
    """(spec the workers load, encoder name, cache dir) for ``router``."""
    if not isinstance(router, Router):
        return str(router), None, None
    if address is not None:
        raise ValueError(
            "a router object can only be shipped to a local Ray; on a cluster pass a checkpoint "
            "path the workers can read or a Hub id (save it with save_router first)"
        )
    if router.router_type == "random":
        return "random", None, None
    tmp = tempfile.TemporaryDirectory(prefix="routellm-ray-")
    stack.append(tmp)
    save_router(router, Path(tmp.name) / "router")
    enc = router.encoder if isinstance(router.encoder, QueryEncoder) else None
    cache = (
        str(enc.cache_dir) if enc is not None and enc.cache_dir is not None else None
    )
    return (
        str(Path(tmp.name) / "router"),
        router.encoder_.name if router.uses_encoder else None,
        cache,
    )


def ray_win_rates(
    prompts: str | os.PathLike[str] | Sequence[str],
    router: Router | str | os.PathLike[str] = "default",
    *,
    num_workers: int = 1,
    address: str | None = None,
    revision: str | None = None,
    encoder: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    strong_model: str | None = None,
    weak_model: str | None = None,
    batch_size: int = 256,
    cpus_per_worker: float = 1.0,
    show_progress: bool = False,
    with_worker: bool = False,
) -> pd.DataFrame:
    """Win rates of ``prompts`` computed by ``num_workers`` Ray actors; columns ``prompt``, ``win_rate``.

    Arguments are those of :func:`routellm_core.offline_scoring.score_prompts`; ``with_worker`` adds a
    column ``worker``, the process id of the actor that scored each row.
    """
    _ray()  # a clear ImportError first when Ray is missing
    if not cpus_per_worker > 0:
        raise ValueError(f"cpus_per_worker must be positive, got {cpus_per_worker!r}")
    # What can fail before any work (a bad checkpoint, an unknown model) fails here, clearly.
    checked = as_router(router, revision=revision)
    checked.resolve_pair(strong_model, weak_model)
    keep: list = []
    spec, saved_encoder, saved_cache = _checkpoint_for_workers(router, address, keep)
    encoder = encoder or saved_encoder
    cache = str(cache_dir) if cache_dir is not None else saved_cache
    local_cpus = (
        int(np.ceil(num_workers * cpus_per_worker)) + 1
    )  # + 1 for reading the file
    try:
        with (
            ray_session(address, num_cpus=local_cpus, quiet=not show_progress),
            _log_level("ray.data", None if show_progress else logging.WARNING),
            _data_context(show_progress),
        ):
            from ray.data import ActorPoolStrategy

            ds = _split(read_prompt_dataset(prompts), batch_size, num_workers)
            scored = ds.map_batches(
                RouterScorer,
                fn_constructor_kwargs={
                    "router": spec,
                    "revision": revision,
                    "encoder": encoder,
                    "cache_dir": cache,
                    "strong_model": strong_model,
                    "weak_model": weak_model,
                    "num_threads": max(1, int(cpus_per_worker)),
                },
                compute=ActorPoolStrategy(
                    size=num_workers, max_tasks_in_flight_per_actor=2
                ),
                num_cpus=cpus_per_worker,
                batch_size=batch_size,
                batch_format="numpy",
            )
            with warnings.catch_warnings():
                if not show_progress:  # small inputs: fewer blocks than actors is fine
                    warnings.filterwarnings(
                        "ignore", message="The minimum number of concurrent actors"
                    )
                df = scored.to_pandas()
    finally:
        for tmp in keep:
            tmp.cleanup()
    if df.empty:
        where = str(prompts) if isinstance(prompts, (str, os.PathLike)) else "the input"
        raise ValueError(f"{where} holds no prompts")
    errors = df["error"][df["error"].astype(str) != ""]
    if len(errors):
        more = f" (and {len(errors) - 1} more bad rows)" if len(errors) > 1 else ""
        raise ValueError(f"{errors.iloc[0]}{more}")
    columns = ["prompt", "win_rate", *(["worker"] if with_worker else [])]
    return df[columns].reset_index(drop=True)


@contextmanager
def _data_context(show_progress: bool) -> Iterator[None]:
    """Ray Data settings for one run: rows in input order, all actors up before work starts."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = (
        ctx.execution_options.preserve_order,
        ctx.enable_progress_bars,
        getattr(ctx, "wait_for_min_actors_s", None),
    )
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = show_progress
    ctx.wait_for_min_actors_s = 600  # so that every worker gets a share of the batches
    try:
        yield
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved[:2]
        if saved[2] is not None:
            ctx.wait_for_min_actors_s = saved[2]


__all__ = [
    "RAY_MISSING",
    "RouterScorer",
    "ray_session",
    "ray_win_rates",
    "read_prompt_dataset",
]
