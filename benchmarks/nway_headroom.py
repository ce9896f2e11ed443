"""How much of the oracle's headroom N-way routing can capture on the two gold pools, and what limits it.

For each pool (LLMRouter: 9 models, price table; RouterBench: 11 models, recorded per-query cost)
the train split trains and the test split scores, as ``benchmarks/nway_routing.sh``. The figure
is the **headroom share**: (AIQ - random choice AIQ) / (oracle AIQ - random choice AIQ). Rows:

- ``quality``: the N-way ``quality`` router (an MLP from the MiniLM embedding to every model's
  score), as shipped;
- ``knn k=K tau=T``: each model's score on a query predicted as the similarity-weighted mean of
  its scores on the K most similar training queries (weights ``exp(cosine / T)``), shrunk
  toward its mean with a pseudo-count of 10;
- ``blend``: the mean of ``quality`` and ``knn k=200 tau=0.5``;
- ``task known``: a router told each test query's task (LLMRouter's 14 task labels, RouterBench's
  three files), predicting the task's mean training scores: what knowing the task alone is worth.

The **raw-sweep noise floor** asks how far below random choice the raw lambda sweep falls for a
router that knows each test query's task and nothing about the query itself: the ``task known``
scores plus Gaussian noise (standard deviation 0.05, and 0.13, about the spread of the
``quality`` router's predictions for one model across the queries of a RouterBench fold,
0.05-0.18), 20 seeds each. Its worst dip is what per-query noise alone costs on a test split of
this size.

Every row also has a **validation** headroom share: 5 folds of the train split (never the test
split), the figure a choice among the rows would be made on. Training queries that repeat a test
query are dropped first (the project's decontamination, exact and cosine >= 0.95)::

    ROUTELLM_DATA_DIR=../shared/data python benchmarks/nway_headroom.py [--json OUT]

Writes ``benchmarks/results/nway_headroom.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LLMROUTER = "{data}/llmrouter_9model_gold"
RB = "{data}/routerdc_7model_and_routerbench_subset/routerbench_zs"
TASKS = ("arc_challenge", "mbpp", "winograde")
POOLS = {
    "llmrouter": ([f"gold:{LLMROUTER}/dcrouter_preprocessed__train.json"],
                  [f"gold:{LLMROUTER}/dcrouter_preprocessed__test.json"]),
    "routerbench": ([f"gold:{RB}/{t}_train.csv" for t in TASKS], [f"gold:{RB}/{t}_test.csv" for t in TASKS]),
}
PRICES = f"{LLMROUTER}/example_data__llm_candidates__default_llm.json"
NOISE, SEEDS = (0.05, 0.13), 20
Predictor = Callable[[np.ndarray, np.ndarray, np.ndarray, list[str]], np.ndarray]


def knn_scores(train_emb: np.ndarray, train_scores: np.ndarray, query_emb: np.ndarray, *,
               k: int, tau: float, prior: float = 10.0) -> np.ndarray:
    """Similarity-weighted mean score of each model over the ``k`` nearest training queries."""
    mean = np.nanmean(train_scores, axis=0)
    sims = query_emb @ train_emb.T
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    out = np.empty((len(query_emb), train_scores.shape[1]))
    for r in range(len(query_emb)):
        s = sims[r, top[r]]
        w = np.exp((s - s.max()) / tau)[:, None]
        scores = train_scores[top[r]]
        seen = ~np.isnan(scores)
        out[r] = ((w * np.nan_to_num(scores)).sum(0) + prior * mean) / ((w * seen).sum(0) + prior)
    return out


def headroom(result: dict[str, Any]) -> float:
    return (result["aiq"] - result["random_aiq"]) / (result["oracle_aiq"] - result["random_aiq"])


def task_known(train_scores: np.ndarray, train_tasks: np.ndarray, query_tasks: np.ndarray) -> np.ndarray:
    """Each query's task's mean training scores (the overall mean for a task never trained on)."""
    overall = np.nanmean(train_scores, axis=0)
    return np.stack([np.nanmean(train_scores[train_tasks == t], axis=0) if (train_tasks == t).any() else overall
                     for t in query_tasks])


def pool_data(pool: str, encoder: Any) -> dict[str, Any]:
    """Train and test matrices of a pool (test columns in the train order), tasks, costs, embeddings."""
    from routellm_core.data.decontaminate import decontaminate
    from routellm_core.data.gold import read_task_labels
    from routellm_core.data.schema import ScoreMatrix
    from routellm_core.nway.training import constraints_from_prices, drop_incomplete, load_score_matrix
    from routellm_core.training import expand_spec

    train_specs, test_specs = POOLS[pool]
    train, _ = load_score_matrix(train_specs)
    full_test, _ = load_score_matrix(test_specs)
    test, _ = drop_incomplete(full_test)
    order = [test.models.index(m) for m in train.models]
    test = ScoreMatrix(test.queries, train.models, test.scores[:, order], source=test.source,
                       costs=None if test.costs is None else test.costs[:, order])
    complete = ~np.isnan(full_test.scores).any(axis=1)
    if pool == "llmrouter":
        labels = expand_spec(f"{LLMROUTER}/dcrouter_task_labels.csv")
        train_tasks = np.array(read_task_labels(labels, "train"))
        test_tasks = np.array(read_task_labels(labels, "test"))[complete]
    else:
        sizes = [len(load_score_matrix([s])[0]) for s in train_specs]
        train_tasks = np.concatenate([[t] * n for t, n in zip(TASKS, sizes)])
        test_sizes = [len(load_score_matrix([s])[0]) for s in test_specs]
        test_tasks = np.concatenate([[t] * n for t, n in zip(TASKS, test_sizes)])[complete]
    _, report = decontaminate(train, {"test": test.queries}, encoder=encoder)
    keep = np.ones(len(train), dtype=bool)
    keep[report.dropped_indices] = False
    train = train.subset(keep)
    if pool == "llmrouter":
        cons = constraints_from_prices(expand_spec(PRICES), train.models)
        cost_vector = next(c for c in cons if c.name == "cost").raw(train.models)
        test_costs, train_costs = cost_vector[None, :], None
    else:
        cost_vector = np.nanmean(train.costs, axis=0)
        test_costs, train_costs = test.costs, train.costs
    return {"train": train, "test": test, "train_tasks": train_tasks[keep], "test_tasks": test_tasks,
            "cost_vector": cost_vector, "test_costs": test_costs, "train_costs": train_costs,
            "train_emb": encoder.encode(train.queries), "test_emb": encoder.encode(test.queries),
            "decontamination": str(report), "specs": (train_specs, test_specs)}


def score_pool(d: dict[str, Any], predictors: dict[str, Predictor]) -> dict[str, Any]:
    """Validation (5 folds of the train split) and test headroom share of every predictor."""
    from routellm_core.nway.evaluation import evaluate_nway

    train, test = d["train"], d["test"]
    folds = np.random.default_rng(0).integers(0, 5, len(train))

    def evaluate(scores: np.ndarray, costs: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
        return evaluate_nway(scores, train.models, costs, predicted=predicted, cost_vector=d["cost_vector"])

    def validation(predict: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> float:
        shares = []
        for f in range(5):
            held = folds == f
            idx = np.flatnonzero(held)[~np.isnan(train.scores[held]).any(axis=1)]
            costs = d["test_costs"] if d["train_costs"] is None else d["train_costs"][idx]
            shares.append(headroom(evaluate(train.scores[idx], costs, predict(folds != f, idx))))
        return float(np.mean(shares))

    def row(val: float, r: dict[str, Any], seconds: float) -> dict[str, Any]:
        return {"validation_headroom": val, "test_headroom": headroom(r), "aiq": r["aiq"],
                "raw_above_random_everywhere": r["raw_above_random_everywhere"],
                "raw_min_margin_vs_random": r["raw_min_margin_vs_random"], "seconds": round(seconds, 1)}

    emb, scores, tasks = d["train_emb"], train.scores, d["train_tasks"]
    rows: dict[str, Any] = {}
    r: dict[str, Any] = {}
    for name, fn in predictors.items():
        t = time.perf_counter()
        val = validation(lambda fit, idx, fn=fn: fn(emb[fit], scores[fit], emb[idx], train.models))
        r = evaluate(test.scores, d["test_costs"], fn(emb, scores, d["test_emb"], train.models))
        rows[name] = row(val, r, time.perf_counter() - t)
        print(f"{name:22s}", {k: round(v, 4) if isinstance(v, float) else v for k, v in rows[name].items()}, flush=True)
    t = time.perf_counter()
    val = validation(lambda fit, idx: task_known(scores[fit], tasks[fit], tasks[idx]))
    base = task_known(scores, tasks, d["test_tasks"])
    r = evaluate(test.scores, d["test_costs"], base)
    rows["task known"] = row(val, r, time.perf_counter() - t)
    print("task known", rows["task known"], flush=True)
    noise_floor = []
    for sd in NOISE:
        rng = np.random.default_rng(0)
        dips = [evaluate(test.scores, d["test_costs"], base + sd * rng.standard_normal(base.shape))
                ["raw_min_margin_vs_random"] for _ in range(SEEDS)]
        noise_floor.append({"noise_sd": sd, "seeds": SEEDS, "raw_min_margin_median": float(np.median(dips)),
                            "raw_min_margin_range": [float(min(dips)), float(max(dips))],
                            "share_of_seeds_below_random": float(np.mean(np.array(dips) < -1e-12))})
        print("noise floor", noise_floor[-1], flush=True)
    chosen = max((n for n in rows if n != "task known"), key=lambda n: rows[n]["validation_headroom"])
    return {"train": d["specs"][0], "test": d["specs"][1], "decontamination": d["decontamination"],
            "n_train": len(train), "n_test": len(test), "random_aiq": r["random_aiq"],
            "oracle_aiq": r["oracle_aiq"], "rows": rows, "chosen_on_validation": chosen,
            "raw_sweep_noise_floor": noise_floor}


def main() -> None:
    from routellm_core.cli.common import cache_dir
    from routellm_core.data.schema import ScoreMatrix
    from routellm_core.encoders import QueryEncoder
    from routellm_core.nway import QualityRouter

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/nway_headroom.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    encoder = QueryEncoder(cache_dir=cache_dir())

    def quality(tr_emb: np.ndarray, tr_scores: np.ndarray, q_emb: np.ndarray, models: list[str]) -> np.ndarray:
        matrix = ScoreMatrix([f"q{i}" for i in range(len(tr_emb))], models, tr_scores)
        router = QualityRouter(encoder=encoder, strip_templates=False).fit(matrix, embeddings=tr_emb)
        return router.predict_quality_embeddings(q_emb)

    def knn(k: int, tau: float) -> Predictor:
        return lambda tr_emb, tr_scores, q_emb, models: knn_scores(tr_emb, tr_scores, q_emb, k=k, tau=tau)

    predictors: dict[str, Predictor] = {"quality": quality}
    for k in (50, 200, 1000):
        for tau in (0.05, 0.2, 0.5):
            predictors[f"knn k={k} tau={tau}"] = knn(k, tau)
    predictors["blend"] = lambda *a: 0.5 * quality(*a) + 0.5 * knn(200, 0.5)(*a)

    out: dict[str, Any] = {"command": "python benchmarks/nway_headroom.py", "pools": {}}
    for pool in POOLS:
        print(pool, flush=True)
        out["pools"][pool] = score_pool(pool_data(pool, encoder), predictors)
    out["machine"] = platform.processor() or platform.machine()
    out["seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
