"""Build a router from data specs: load, decontaminate, fit, calibrate, describe.

A data spec is ``KIND:PATH`` (see :func:`routellm_core.data.specs.load_battles`); ``{data}`` in a
path stands for the data directory (``$ROUTELLM_DATA_DIR``), so a model
card's specs can be replayed on another machine.

Example:
    >>> from routellm_core.training import train_router
    >>> result = train_router("mf", ["gold:{data}/routerdc_7model_and_routerbench_subset/"
    ...                              "routerbench_zs/arc_challenge_train.csv"])  # doctest: +SKIP
    >>> result.router.win_rate(["What is 2 + 2?"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.routers import Router, get_router_class

# The embedded default's training data: every file here is permissively licensed (MIT).
# RouterDC (no license stated) and AlpacaEval (CC BY-NC) are left out of what ships.
DEFAULT_TRAINING_SPECS: tuple[str, ...] = tuple(
    f"gold:{{data}}/routerdc_7model_and_routerbench_subset/routerbench_zs/{name}_train.csv"
    for name in ("arc_challenge", "mbpp", "winograde")
) + ("gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__train.json",)

_LICENSES = {
    "routerbench_zs": "MIT (RouterBench)",
    "llmrouter_9model_gold": "MIT (LLMRouter)",
    "split2_model7": "none stated (RouterDC)",
    "alpaca_eval_judge_prefs": "CC BY-NC 4.0 (AlpacaEval data)",
    "arena_hard_prompts": "Apache-2.0 (Arena-Hard-Auto)",
}


# Where a trained router's calibration table comes from when no prompts are given: the traffic
# it will serve. Captured call queries of a store: spec first (when there are at least
# MIN_CAPTURED_QUERIES distinct ones), else the training queries (held-out ones removed; at least
# as many), else these Arena-Hard prompts, on which the embedded default was calibrated.
MIN_CAPTURED_QUERIES = 50
MAX_CALIBRATION_PROMPTS = 5000  # a seeded sample of more: the quantiles barely move
CHECKED_SHARES = (0.1, 0.3, 0.5)  # the card records the strong share these strong_fractions give
DEFAULT_CALIBRATION_PROMPTS: tuple[str, ...] = (
    "{data}/arena_hard_prompts/arena-hard-v0.1_question.jsonl",
    "{data}/arena_hard_prompts/arena-hard-v2.0_question.jsonl",
)


def license_of(path: str) -> str:
    """The license of a file from ``../shared/data`` by its folder; 'user data' otherwise."""
    for key, value in _LICENSES.items():
        if key in path:
            return value
    return "user data (license not recorded)"


def _data_dir() -> Path:
    from routellm_core.data.specs import default_data_dir

    found = default_data_dir()
    if found is None:
        raise FileNotFoundError(
            "a data spec uses {data} but no data directory was found: set ROUTELLM_DATA_DIR"
        )
    return Path(found)


def expand_spec(spec: str) -> str:
    """Replace ``{data}`` in ``spec`` with the data directory."""
    return spec.replace("{data}", str(_data_dir())) if "{data}" in spec else spec


def captured_queries(specs: Sequence[str], *, limit: int = MAX_CALIBRATION_PROMPTS,
                     seed: int = 0) -> tuple[list[str], list[str]]:
    """The distinct non-empty queries of the calls captured in the traffic stores among
    ``specs`` (``store:PATH_OR_URL``), at most ``limit`` of each store (a seeded uniform sample
    of its distinct queries, read in pages: :meth:`TrafficStore.sample_queries`), and the specs
    that gave them."""
    from routellm_core.data.specs import STORE_PREFIX
    from routellm_core.store import open_store

    seen: dict[str, None] = {}
    used = []
    for spec in specs:
        if not spec.startswith(STORE_PREFIX):
            continue
        store = open_store(expand_spec(spec))  # shared per process: not ours to close
        found = store.sample_queries(limit, seed=seed)
        if found:
            used.append(spec)
        seen.update(dict.fromkeys(found))
    return list(seen), used


def calibration_prompts_for(
    data_specs: Sequence[str], training_queries: Sequence[str], *, seed: int = 0
) -> tuple[list[str], str, str]:
    """The prompts to calibrate a newly trained router on when none are given, the table's
    source and what they are (for the card): the captured call queries of the ``store:``
    specs (at least :data:`MIN_CAPTURED_QUERIES` distinct ones), else ``training_queries``
    (at least as many, held-out queries already removed), else the Arena-Hard prompts of the
    data directory (:data:`DEFAULT_CALIBRATION_PROMPTS`, ``$ROUTELLM_DATA_DIR``; the training
    queries when it is not set).
    More than :data:`MAX_CALIBRATION_PROMPTS` are sampled down with ``seed``."""
    from routellm_core.data.specs import default_data_dir, shown_spec

    captured, stores = captured_queries(data_specs, seed=seed)
    training = list(dict.fromkeys(q for q in training_queries if isinstance(q, str) and q.strip()))
    if len(captured) >= MIN_CAPTURED_QUERIES:
        prompts, source, what = captured, ", ".join(shown_spec(s) for s in stores), "captured queries"
    elif len(training) >= MIN_CAPTURED_QUERIES or (training and default_data_dir() is None):
        prompts, source, what = training, ", ".join(shown_spec(s) for s in data_specs), "training queries"
    elif default_data_dir() is not None:
        from routellm_core.data.prompts import read_prompts

        prompts = [p for f in DEFAULT_CALIBRATION_PROMPTS for p in read_prompts(expand_spec(f))]
        source, what = ", ".join(DEFAULT_CALIBRATION_PROMPTS), "Arena-Hard prompts"
    else:
        raise ValueError("no prompts to calibrate the router on: no captured queries, no training queries and "
                         "no data directory (ROUTELLM_DATA_DIR) with the Arena-Hard prompts; pass calibration prompts")
    if len(prompts) > MAX_CALIBRATION_PROMPTS:
        idx = np.sort(np.random.default_rng(seed).choice(len(prompts), MAX_CALIBRATION_PROMPTS, replace=False))
        prompts = [prompts[i] for i in idx]
        what = f"{what} (a sample)"
    return prompts, source, what


@dataclass
class TrainingResult:
    """What :func:`train_router` produced: the router and its model card data."""

    router: Router
    card: dict[str, Any] = field(default_factory=dict)


def _calibrate(router: Router, prompts: Sequence[str] | None, source: str, data_specs: Sequence[str],
               training_queries: list[str], *, previous: Any, seed: int, show_progress: bool) -> dict[str, Any]:
    """Fit ``router``'s calibration table (see :func:`train_router`); its card entry."""
    from routellm_core.calibration import CalibrationTable
    from routellm_core.progress import win_rates_in_chunks

    if prompts is not None:
        what = "given prompts"
        prompts = [p for p in prompts if isinstance(p, str) and p.strip()]
        if not prompts:
            raise ValueError(f"the calibration prompts ({source or 'given'}) hold no non-empty prompt")
    else:
        prompts, source, what = calibration_prompts_for(data_specs, training_queries, seed=seed)
    rates = win_rates_in_chunks(router, prompts, show_progress=show_progress, desc="calibrating")
    router.calibration_ = CalibrationTable.from_win_rates(rates, source=source)
    table = router.calibration_
    entry: dict[str, Any] = {"source": source, "n_prompts": len(prompts), "prompts": what,
                             # what the table gives on its own prompts: far off when many share one win rate
                             "strong_share": {str(f): float(np.mean(rates >= table.threshold_for(f)))
                                              for f in CHECKED_SHARES}}
    if previous is not None:  # what strong_fraction 0.5 would have done with the old table
        entry["strong_share_at_0.5"] = {
            "old_table": float(np.mean(rates >= previous.threshold_for(0.5))),
            "new_table": float(np.mean(rates >= table.threshold_for(0.5))),
        }
    return entry


def load_training_battles(
    specs: Sequence[str], *, aliases: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Load and concatenate battles from ``specs``; also return per-spec card entries."""
    from routellm_core.data.specs import load_battles, shown_spec

    if not specs:
        raise ValueError("no training data given: pass at least one data spec")
    frames, entries = [], []
    for spec in specs:
        df = load_battles(expand_spec(spec), aliases=aliases)
        frames.append(df)
        entries.append({"spec": shown_spec(spec), "battles": int(len(df)), "queries": int(df["query"].nunique()),
                        "license": license_of(spec)})
    return pd.concat(frames, ignore_index=True), entries


def train_router(
    router_type: str,
    data_specs: Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    eval_data_dir: str | os.PathLike[str] | None = None,
    decontaminate: bool = True,
    near_duplicate_threshold: float = 0.95,
    calibration_prompts: Sequence[str] | None = None,
    calibration_source: str = "",
    aliases: Mapping[str, str] | None = None,
    seed: int = 0,
    holdout: float | None = None,
    init: Router | None = None,
    show_progress: bool = False,
    command: str | None = None,
) -> TrainingResult:
    """Train a router of ``router_type`` on ``data_specs``.

    Training queries that repeat or nearly repeat (embedding cosine >= ``near_duplicate_threshold``)
    a prompt of the evaluation sets under ``eval_data_dir`` (RouteLLM's layout: MMLU, GSM8K,
    MT-Bench) are dropped first; the card says how many. ``seed`` is the router's ``seed``
    parameter (a ``seed`` in ``params`` takes precedence). ``holdout`` leaves out that fraction
    of the queries (:func:`routellm_core.training.holdout.holdout_mask` with ``seed``) for
    ``routellm promote`` to evaluate on; the card records it.

    ``init``: a fitted router of ``router_type`` to update with the data instead of training
    anew (``params`` and ``aliases`` are set on it): an sw_ranking router adds the battles
    (:meth:`~routellm_core.routers.SWRankingRouter.partial_fit`), an mf router fine-tunes from
    its weights (``warm_start``); the card lists the earlier data and the new.

    The router always gets a calibration table fitted after training (an ``init`` router's
    old table is replaced): on ``calibration_prompts`` when given, else on the traffic it will
    serve (:func:`calibration_prompts_for`). ``card["calibration"]`` records its source, size
    and, for ``init``, the share of those prompts that strong_fraction 0.5 sent strong with
    the old table and with the new.
    """
    cls = get_router_class(router_type)
    settings: dict[str, Any] = {"seed": seed, **dict(params or {})}  # a seed among params wins
    previous_table = None
    if init is not None:
        if not isinstance(init, cls):
            raise ValueError(f"init is a {type(init).__name__}, not a {router_type} router")
        if aliases:
            settings["aliases"] = {**(init.aliases or {}), **dict(aliases)}
        previous_table = init.calibration_  # replaced once the router is updated
        router = init
        router.set_params(**{k: v for k, v in settings.items() if k != "encoder"})
    else:
        if aliases:
            settings["aliases"] = dict(aliases)
        router = cls(**settings)
    battles, entries = load_training_battles(data_specs, aliases=aliases)
    card: dict[str, Any] = {
        "router_type": router_type,
        "data": entries,
        "seed": router.seed,
        "command": command or " ".join(["routellm", *sys.argv[1:]]),
        "battles_before_decontamination": int(len(battles)),
    }
    if holdout is not None:
        from routellm_core.training.holdout import split_holdout

        battles, held = split_holdout(battles, holdout, seed=seed)
        card["holdout"] = {"fraction": holdout, "seed": seed, "held_out_battles": int(len(held))}
    if decontaminate:
        if eval_data_dir is None:
            raise ValueError(
                "decontamination needs the evaluation sets: pass eval_data_dir (RouteLLM's eval "
                "layout) or decontaminate=False"
            )
        from routellm_core.data.decontaminate import decontaminate as drop_repeats
        from routellm_core.data.decontaminate import load_eval_prompts

        eval_prompts = load_eval_prompts(eval_data_dir)
        battles, report = drop_repeats(
            battles, eval_prompts, encoder=router.encoder_,  # the cached encoder, for every router
            threshold=near_duplicate_threshold,
        )
        card["decontamination"] = str(report)
    card["battles"] = int(len(battles))
    card["queries"] = int(battles["query"].nunique())
    card["models"] = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    if init is None:
        router.fit(battles, show_progress=show_progress)
    elif hasattr(router, "partial_fit"):  # the new battles together weigh as much as the router's own
        from routellm_core.routers.battles import balanced_weight

        weight = balanced_weight(int(getattr(router, "n_battles_", 0)), len(battles))
        router.partial_fit(battles, show_progress=show_progress, sample_weight=np.full(len(battles), weight))
    elif "warm_start" in router.get_params():
        router.set_params(warm_start=True)
        router.fit(battles, show_progress=show_progress)
    else:
        raise ValueError(f"a {router_type} router cannot be updated from a checkpoint; train it anew (no init)")
    if init is not None:
        card["init"] = {"data": list((init.card_ or {}).get("data", [])),
                        "battles": (init.card_ or {}).get("battles")}
    card["calibration"] = _calibrate(
        router, calibration_prompts, calibration_source, data_specs, list(battles["query"]),
        previous=previous_table, seed=seed, show_progress=show_progress)
    router.card_ = card
    return TrainingResult(router=router, card=card)
