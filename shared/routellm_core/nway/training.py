"""Train and evaluate N-way routers from data specs: load score matrices, decontaminate, fit, describe.

A spec is ``gold:PATH`` (per-query gold scores: RouterBench, LLMRouter, RouterDC, a plain
table) or ``judge:PATH?instructions=FILE`` (AlpacaEval's wide reward matrix), optionally
``#m1,m2,...`` to keep some models (see :mod:`routellm_core.data.specs`); ``{data}`` stands for the data
directory. Several specs of one model pool (say
RouterBench's three train files) are stacked; pools with different models are an error,
since a router is trained per pool.

Example:
    >>> from routellm_core.nway.training import load_score_matrix
    >>> spec = "gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__test.json"
    >>> m, entries = load_score_matrix([spec])  # doctest: +SKIP
    >>> m.scores.shape  # doctest: +SKIP
    (500, 9)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routellm_core.data.schema import ScoreMatrix
from routellm_core.nway.base import NWayRouter
from routellm_core.nway.constraints import Constraint, cost_per_call, model_size

__all__ = [
    "NWayTrainingResult",
    "evaluate_nway_router",
    "load_score_matrix",
    "train_nway_router",
]


def _load_one(spec: str, aliases: Mapping[str, str] | None) -> ScoreMatrix:
    from routellm_core.data.specs import load_matrix
    from routellm_core.training.pipeline import expand_spec

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a data spec must be 'gold:PATH' or 'judge:PATH', got {spec!r}")
    return load_matrix(expand_spec(spec), aliases=aliases)


def stack_matrices(matrices: Sequence[ScoreMatrix]) -> ScoreMatrix:
    """One matrix from several of the same model pool (columns aligned by name).

    Tags are kept; a part without tags is tagged with its source. Costs are kept when every part
    has them.
    """
    if not matrices:
        raise ValueError("no score matrices to stack")
    first = matrices[0]
    models = list(first.models)
    for m in matrices[1:]:
        if set(m.models) != set(models):
            raise ValueError(
                f"{m.source} has models {sorted(m.models)}, {first.source} has {sorted(models)}: an N-way "
                "router is trained per model pool; give files of one pool (or select models with '#m1,m2')"
            )
    if len(matrices) == 1:
        return first
    cols = [[m.models.index(name) for name in models] for m in matrices]
    costs = None
    if all(m.costs is not None for m in matrices):
        costs = np.concatenate([m.costs[:, c] for m, c in zip(matrices, cols)])  # type: ignore[index]
    tags: list[str | None] = []
    for m in matrices:
        tags += list(m.tags) if m.tags is not None else [m.source] * len(m)
    return ScoreMatrix(
        queries=[q for m in matrices for q in m.queries],
        models=models,
        scores=np.concatenate([m.scores[:, c] for m, c in zip(matrices, cols)]),
        source="+".join(m.source for m in matrices),
        tags=tags,
        costs=costs,
    )


def load_score_matrix(
    specs: Sequence[str], *, aliases: Mapping[str, str] | None = None
) -> tuple[ScoreMatrix, list[dict[str, Any]]]:
    """Load and stack the matrices of ``specs``; also return one model-card entry per spec."""
    from routellm_core.training.pipeline import license_of

    if isinstance(specs, str) or not specs:
        raise ValueError(
            "give a list of at least one data spec ('gold:PATH' or 'judge:PATH')"
        )
    parts = [_load_one(s, aliases) for s in specs]
    entries = [
        {
            "spec": s,
            "queries": len(m),
            "models": len(m.models),
            "license": license_of(s),
        }
        for s, m in zip(specs, parts)
    ]
    return stack_matrices(parts), entries


def drop_incomplete(matrix: ScoreMatrix) -> tuple[ScoreMatrix, int]:
    """The rows where every model has a score, and how many rows were dropped."""
    keep = ~np.isnan(matrix.scores).any(axis=1)
    return (matrix if keep.all() else matrix.subset(keep)), int((~keep).sum())


def constraints_from_prices(
    path: str | os.PathLike[str],
    models: Sequence[str],
    *,
    input_tokens: int = 500,
    output_tokens: int = 500,
) -> list[Constraint]:
    """``cost`` (dollars per call) from a price file, plus ``size`` when the file records sizes."""
    import json
    from pathlib import Path

    from routellm_core.data.schema import canonical_model_name
    from routellm_core.nway.constraints import load_price_table

    table = load_price_table(path)
    missing = [m for m in models if m not in table]
    if missing:
        raise KeyError(f"{path}: no price for {missing}")
    out = [
        cost_per_call(
            table, models, input_tokens=input_tokens, output_tokens=output_tokens
        )
    ]
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    sizes: dict[str, Any] = {
        canonical_model_name(k): v.get("size")
        for k, v in raw.items()
        if isinstance(v, dict)
    }
    if all(sizes.get(m) for m in models):
        out.append(model_size({m: sizes[m] for m in models}))
    return out


@dataclass
class NWayTrainingResult:
    """What :func:`train_nway_router` produced: the router and its model card data."""

    router: NWayRouter
    card: dict[str, Any] = field(default_factory=dict)


def _decontaminated_away(before: Any, left: int, report: Any) -> str:
    """Why no training is left: decontamination dropped (almost) every training query."""
    where = ", ".join(f"{k} ({v})" for k, v in report.per_benchmark.items() if v) or "the held-out prompts"
    some = [before.queries[i] for i in report.dropped_indices[:3]]
    shown = "; ".join(repr(q[:80]) for q in some)
    return (
        f"decontamination dropped {report.n_dropped} of the {len(before)} training queries "
        f"({report.n_dropped_exact} exact repeats, {report.n_dropped_near} near ones at cosine >= "
        f"{report.threshold}) as repeats of evaluation prompts: {where}; {left} left, and training "
        f"needs at least 2. Dropped, for example: {shown}. These data repeat the evaluation set: train "
        "on other data, or pass --no-decontaminate (decontaminate=False) to train on them anyway, and "
        "then do not evaluate the router on that set"
    )


def train_nway_router(
    router_type: str,
    data_specs: Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    holdout_specs: Sequence[str] = (),
    eval_data_dir: str | os.PathLike[str] | None = None,
    decontaminate: bool = True,
    near_duplicate_threshold: float = 0.95,
    constraints: Sequence[Constraint] | None = None,
    prices: str | os.PathLike[str] | None = None,
    aliases: Mapping[str, str] | None = None,
    show_progress: bool = False,
    command: str | None = None,
) -> NWayTrainingResult:
    """Train an N-way router of ``router_type`` (``quality`` or ``zooter``) on ``data_specs``.

    Training queries that repeat or nearly repeat (cosine >= ``near_duplicate_threshold``) a
    query of ``holdout_specs`` (the test split you will evaluate on) or a prompt of RouteLLM's
    evaluation sets under ``eval_data_dir`` are dropped first; the card says how many.
    Constraints: ``constraints`` as given, else ``cost`` (and ``size``) from the ``prices`` file
    (``{data}`` in it stands for the data directory, as in a data spec), else the data's mean
    per-query cost when it records costs.
    """
    from routellm_core.nway import get_nway_router_class

    cls = get_nway_router_class(router_type)
    alias_arg: dict[str, Any] = {"aliases": dict(aliases)} if aliases else {}
    router = cls(**dict(params or {}), **alias_arg)
    matrix, entries = load_score_matrix(data_specs, aliases=aliases)
    card: dict[str, Any] = {
        "router_type": router_type,
        "data": entries,
        "command": command or " ".join(["routellm", *sys.argv[1:]]),
        "queries_before_decontamination": len(matrix),
    }
    if decontaminate:
        from routellm_core.data.decontaminate import decontaminate as drop_repeats
        from routellm_core.data.decontaminate import load_eval_prompts

        held: dict[str, list[str]] = {}
        if eval_data_dir is not None:
            held.update(load_eval_prompts(eval_data_dir))
        for spec in holdout_specs:
            held[f"holdout:{spec}"] = load_score_matrix([spec], aliases=aliases)[
                0
            ].queries
        if not held:
            raise ValueError(
                "decontamination needs held-out prompts: pass holdout_specs and/or "
                "eval_data_dir, or decontaminate=False"
            )
        before = matrix
        matrix, report = drop_repeats(
            matrix, held, encoder=router.encoder_, threshold=near_duplicate_threshold
        )
        if len(matrix) < 2 <= len(before):
            raise ValueError(_decontaminated_away(before, len(matrix), report))
        card["decontamination"] = str(report)
        card["holdout"] = list(holdout_specs)
    if constraints is None and prices is not None:
        from routellm_core.training.pipeline import expand_spec

        constraints = constraints_from_prices(expand_spec(os.fspath(prices)), matrix.models)
        card["prices"] = os.fspath(prices)  # as given: a {data} spec stays portable in the card
    router.fit(matrix, show_progress=show_progress, constraints=constraints)  # type: ignore[call-arg]
    card["queries"] = len(matrix)
    card["models"] = list(matrix.models)
    card["constraints"] = [c.to_dict() for c in router.constraints_]
    router.card_ = card
    return NWayTrainingResult(router=router, card=card)


def evaluate_nway_router(
    router: NWayRouter,
    matrix: ScoreMatrix,
    *,
    cost: str = "cost",
) -> dict[str, Any]:
    """:func:`~routellm_core.nway.evaluation.evaluate_nway` of ``router`` on a test ``matrix``.

    The sweep weighs the router's own constraint ``cost``. Realised costs are the matrix's
    per-query costs when it has them, else the constraint's own values. Rows with a missing
    score are dropped (counted in ``dropped_incomplete``).
    """
    from routellm_core.nway.evaluation import evaluate_nway

    matrix, dropped = drop_incomplete(matrix)
    if len(matrix) == 0:
        raise ValueError(f"{matrix.source}: no query has a score for every model")
    models = list(matrix.models)
    unknown = [m for m in models if m not in router.known_models]
    if unknown:
        raise ValueError(
            f"the test data has models the router does not know: {unknown}; "
            f"it knows {router.known_models}"
        )
    constraint = router.constraint(cost)
    pred_all = router.predict_quality(matrix.queries)
    pred = pred_all[:, [router.known_models.index(m) for m in models]]
    if matrix.costs is not None:
        realised, unit = matrix.costs, "$ per query (recorded in the data)"
    else:
        realised, unit = constraint.raw(models)[None, :], constraint.unit or cost
    result = evaluate_nway(
        matrix.scores,
        models,
        realised,
        predicted=pred,
        cost_vector=constraint.raw(models),
        router_name=router.name,
        cost_unit=unit,
        data=matrix.source,
    )
    result["dropped_incomplete"] = dropped
    result["constraint"] = constraint.to_dict()
    return result
