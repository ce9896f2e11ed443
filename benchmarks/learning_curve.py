"""Learning curves: how much in-domain labelled traffic lifts the embedded default router.

For each data set and each k in ``--ks``, for ``--seeds`` seeds: k questions are drawn at random
as the user's labelled traffic, the default SW router is updated with their battles
(``SWRankingRouter.partial_fit``, as ``routellm train --init default`` does), and APGR is
measured on the other questions (at most ``--eval-size`` of them, drawn with the same seed).
The in-domain battles together weigh as much as the default's own battles (the rule
``routellm eval --cv`` uses; not tuned on these curves). Next to it, a plain baseline:
logistic regression on the same MiniLM embeddings trained on the k labels alone (label: the
strong model did better; ties left out), scored on the same held-out questions.

Selection strategies (``--strategies random uncertain uncertain-diverse``,
:mod:`routellm_core.learning.select`): the protocol above draws its held-out questions from
those it did not label, so on GSM8K and AlpacaEval (fewer questions than ``--eval-size``) nothing
is left to select from. Each strategy is therefore compared on its own split, the same for
every strategy: for each (data set, k, seed), at most ``--eval-size`` and at most ``n - 2k``
questions are held out at random (seeded by seed and k), and each strategy picks its k
questions from the rest (the pool, at least 2k questions) with
:func:`~routellm_core.learning.select.select_queries` (``random`` there is a seeded random
sample of the pool). Uncertainty is the starting default router's win rate against the
threshold that sends half of the pool strong (strong share 0.5 on the pool, the middle of the
routing curve). The update and the scoring are the protocol's. A k whose split would hold out
fewer than 100 questions is skipped. The JSON keeps the protocol's figures (``points``) and
adds ``strategies`` (per strategy, a point per k).

Data (from ``$ROUTELLM_DATA_DIR``, else ``../shared/data`` beside the checkout):

- ``mmlu``, ``gsm8k``: RouteLLM's evaluation sets, gold labels (gpt-4-1106-preview vs Mixtral
  correctness), decontaminated as ``routellm eval`` does;
- ``alpacaeval``: AlpacaEval's GPT-4-Turbo judge preferences for gpt-4-1106-preview vs
  Mixtral-8x7B-Instruct on its 805 instructions, standing in for a user's chat traffic (strong
  score 1 / 0.5 / 0 for a win / tie / loss). CC BY-NC 4.0: used here to measure, never shipped.

::

    python benchmarks/learning_curve.py [--datasets mmlu gsm8k alpacaeval] [--seeds 3] \\
        [--strategies random uncertain uncertain-diverse] [--ks 0 50 100 200 500 1000] \\
        [--json benchmarks/results/learning_curve.json] [--plot benchmarks/results/learning_curve.png]

MiniLM embeddings are read from and written to the encoder's on-disk cache
(``$ROUTELLM_CACHE_DIR``, else ``~/.cache/routellm``; ``--no-cache`` embeds from scratch).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from routellm_core.evaluation.benchmarks import Benchmark, load_benchmark  # noqa: E402
from routellm_core.evaluation.metrics import apgr, routing_curve  # noqa: E402
from routellm_core.learning.select import POOL_FACTOR, STRATEGIES, check_strategy, select_queries  # noqa: E402
from routellm_core.routers.battles import balanced_weight  # noqa: E402
from routellm_core.routing import shared_router  # noqa: E402

KS = (0, 50, 100, 200, 500, 1000)
STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


def data_dir() -> Path:
    path = Path(os.environ.get("ROUTELLM_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not path.is_dir():
        raise SystemExit(f"no data directory at {path}: set ROUTELLM_DATA_DIR")
    return path


def alpacaeval(root: Path) -> Benchmark:
    raw = json.loads((root / "alpaca_eval_judge_prefs" /
                      "raw_annotations_Mixtral-8x7B-Instruct-v0.1_vs_gpt4_1106_preview.json").read_text())
    rows = [(r["instruction"], float(r["preference"])) for r in raw if r.get("preference") is not None]
    prompts = [q for q, _ in rows]
    strong = np.array([{1.0: 1.0, 1.5: 0.5, 2.0: 0.0}[p] for _, p in rows])  # output_1 is gpt4_1106_preview
    return Benchmark("alpacaeval", prompts, strong, 1.0 - strong, np.arange(len(prompts)), STRONG, WEAK, 0,
                     score_scale=100.0, score_unit="judge win share (%)")


def load(name: str, root: Path) -> Benchmark:
    if name == "alpacaeval":
        return alpacaeval(root)
    return load_benchmark(name, root / "routellm_evals")


def subsample(bench: Benchmark, max_questions: int | None) -> Benchmark:
    """At most ``max_questions`` of the benchmark's questions, a seeded random subset (all rows of each)."""
    groups = np.unique(bench.question_ids)
    if not max_questions or len(groups) <= max_questions:
        return bench
    keep = np.random.default_rng(20261206).choice(groups, max_questions, replace=False)
    return bench.subset(np.flatnonzero(np.isin(bench.question_ids, keep)))


def apgr_of(rates: np.ndarray, bench: Benchmark) -> float:
    s, w = bench.strong_scores, bench.weak_scores
    curve = routing_curve(rates, s, w, scale=bench.score_scale)
    return apgr(curve, bench.score_scale * s.mean(), bench.score_scale * w.mean())


def battles_of(bench: Benchmark, idx: np.ndarray) -> pd.DataFrame:
    s, w = bench.strong_scores[idx], bench.weak_scores[idx]
    winner = np.where(s > w, "a", np.where(s < w, "b", "tie"))
    return pd.DataFrame({"query": [bench.prompts[i] for i in idx], "model_a": STRONG, "model_b": WEAK,
                         "winner": winner, "source": f"{bench.name}:labelled"})


def sw_rates(router, emb: np.ndarray, chunk: int = 1024) -> np.ndarray:
    strong, weak = router.resolve_pair(STRONG, WEAK)
    return np.concatenate([router.win_rate_embeddings(emb[i:i + chunk], strong, weak)
                           for i in range(0, len(emb), chunk)])


def baseline_rates(train_emb: np.ndarray, bench: Benchmark, idx: np.ndarray, test_emb: np.ndarray,
                   seed: int) -> np.ndarray | None:
    from sklearn.linear_model import LogisticRegression

    s, w = bench.strong_scores[idx], bench.weak_scores[idx]
    keep = s != w
    y = (s > w)[keep].astype(int)
    if len(np.unique(y)) < 2:
        return None
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(train_emb[keep], y)
    return clf.predict_proba(test_emb)[:, 1]


def update(default, bench: Benchmark, labelled: np.ndarray):
    """The default updated with the battles of the rows ``labelled`` (as ``train --init default``)."""
    weight = balanced_weight(default.n_battles_, len(labelled))
    return copy.copy(default).partial_fit(battles_of(bench, labelled), embeddings=None,
                                          sample_weight=np.full(len(labelled), weight))


def selected_rows(strategy: str, k: int, seed: int, bench: Benchmark, held: np.ndarray, emb: np.ndarray,
                  start_rates: np.ndarray) -> np.ndarray:
    """The rows of the k questions ``strategy`` picks from the questions not in ``held``."""
    pool_ids = np.setdiff1d(np.unique(bench.question_ids), bench.question_ids[held])
    _, first = np.unique(bench.question_ids, return_index=True)      # one row stands for each question
    rep_rows = first[np.isin(bench.question_ids[first], pool_ids)]
    rates = start_rates[rep_rows]
    threshold = float(np.quantile(rates, 0.5))                      # strong share 0.5 on the pool
    picked = select_queries([bench.prompts[i] for i in rep_rows], k, strategy=strategy, win_rates=rates,
                            threshold=threshold, embeddings=emb[rep_rows], seed=seed)
    chosen = bench.question_ids[rep_rows[picked]]
    return np.flatnonzero(np.isin(bench.question_ids, chosen))


def run(name: str, root: Path, ks: list[int], seeds: int, eval_size: int, strategies: list[str] | None = None,
        encoder=None, max_questions: int | None = None) -> dict:
    strategies = strategies or ["random"]
    full = load(name, root)
    bench = subsample(full, max_questions)
    default = shared_router("default")
    t0 = time.perf_counter()
    emb = (encoder or default.encoder_).encode(bench.prompts)
    out = {"dataset": name, "n_questions": len(bench), "n_questions_in_dataset": len(full),
           "strong_model": STRONG, "weak_model": WEAK,
           "encode_seconds": round(time.perf_counter() - t0, 1), "points": []}
    compare = len(strategies) > 1
    if compare:
        out["strategies"] = {s: [] for s in strategies}
    start_rates = sw_rates(default, emb) if compare else None
    groups = np.unique(bench.question_ids)
    for k in ks:
        if k >= len(groups) - 50:
            print(f"{name}: k={k} leaves too few questions to score, skipped", flush=True)
            continue
        router_scores, base_scores = [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            chosen = set(rng.choice(groups, k, replace=False).tolist()) if k else set()
            labelled = np.flatnonzero(np.isin(bench.question_ids, list(chosen)))
            rest = np.flatnonzero(~np.isin(bench.question_ids, list(chosen)))
            held = np.sort(rng.choice(rest, min(eval_size, len(rest)), replace=False))
            test = bench.subset(held)
            router = update(default, bench, labelled) if k else default
            router_scores.append(apgr_of(sw_rates(router, emb[held]), test))
            if k:
                rates = baseline_rates(emb[labelled], bench, labelled, emb[held], seed)
                if rates is not None:
                    base_scores.append(apgr_of(rates, test))
        point = {"k": k, "router_apgr_mean": float(np.mean(router_scores)),
                 "router_apgr_std": float(np.std(router_scores)), "router_apgr": router_scores,
                 "baseline_apgr_mean": float(np.mean(base_scores)) if base_scores else None,
                 "baseline_apgr_std": float(np.std(base_scores)) if base_scores else None,
                 "baseline_apgr": base_scores, "eval_questions": int(len(held))}
        out["points"].append(point)
        base = f"{point['baseline_apgr_mean']:.3f}" if base_scores else "  n/a"
        line = (f"{name:<11} k={k:<5} default+k {point['router_apgr_mean']:.3f} ± {point['router_apgr_std']:.3f}   "
                f"logreg(k) {base}")
        if compare:
            assert start_rates is not None
            line += "   |" + compare_strategies(out["strategies"], bench, default, emb, start_rates, strategies,
                                                k, seeds, eval_size, len(groups))
        print(line, flush=True)
    return out


def compare_strategies(into: dict[str, list[dict]], bench: Benchmark, default, emb: np.ndarray,
                       start_rates: np.ndarray, strategies: list[str], k: int, seeds: int, eval_size: int,
                       n_groups: int) -> str:
    """Every strategy at one k on one split per seed: held-out questions drawn at random (at most
    ``eval_size``, and at most ``n_groups - 2k``, so the pool holds at least twice k), the k
    picked from the rest. Appends a point per strategy to ``into``; returns a summary."""
    held_n = min(eval_size, n_groups - 2 * k)
    if held_n < 100:
        return f" too few questions for a pool of 2k and 100 held out at k={k}, skipped"
    groups = np.unique(bench.question_ids)
    scores: dict[str, list[float]] = {s: [] for s in strategies}
    for seed in range(seeds):
        rng = np.random.default_rng([seed, k, 1])                   # apart from the random protocol's stream
        held_ids = rng.choice(groups, held_n, replace=False)
        held = np.flatnonzero(np.isin(bench.question_ids, held_ids))
        test = bench.subset(held)
        for strategy in strategies:
            router = update(default, bench, selected_rows(strategy, k, seed, bench, held, emb, start_rates)) \
                if k else default
            scores[strategy].append(apgr_of(sw_rates(router, emb[held]), test))
    for strategy, values in scores.items():
        into[strategy].append({"k": k, "router_apgr_mean": float(np.mean(values)),
                               "router_apgr_std": float(np.std(values)), "router_apgr": values,
                               "eval_questions": int(held_n), "pool_questions": int(n_groups - held_n)})
    return "".join(f" {s} {np.mean(v):.3f}" for s, v in scores.items())


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
    for ax, r in zip(axes[0], results):
        ks = [p["k"] for p in r["points"]]
        m = np.array([p["router_apgr_mean"] for p in r["points"]])
        sd = np.array([p["router_apgr_std"] for p in r["points"]])
        ax.errorbar(ks, m, yerr=sd, marker="o", capsize=3, label="default + k labels (SW)")
        bk = [p["k"] for p in r["points"] if p["baseline_apgr_mean"] is not None]
        bm = [p["baseline_apgr_mean"] for p in r["points"] if p["baseline_apgr_mean"] is not None]
        bs = [p["baseline_apgr_std"] for p in r["points"] if p["baseline_apgr_mean"] is not None]
        ax.errorbar(bk, bm, yerr=bs, marker="s", capsize=3, label="logistic regression on k labels")
        for strategy, points in r.get("strategies", {}).items():
            if strategy == "random":
                continue
            ax.errorbar([p["k"] for p in points], [p["router_apgr_mean"] for p in points],
                        yerr=[p["router_apgr_std"] for p in points], marker="^", capsize=3,
                        label=f"default + k {strategy} labels (SW)")
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_xscale("symlog", linthresh=50)
        ax.set_title(r["dataset"])
        ax.set_xlabel("labelled in-domain questions (k)")
        ax.set_ylabel("APGR on held-out questions")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["mmlu", "gsm8k", "alpacaeval"])
    ap.add_argument("--ks", nargs="+", type=int, default=list(KS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--eval-size", type=int, default=3000, help="held-out questions scored per run (at most)")
    ap.add_argument("--strategies", nargs="+", default=["random"], metavar="STRATEGY",
                    help=f"how the k questions are chosen: {', '.join(STRATEGIES)} (default: random)")
    ap.add_argument("--no-cache", action="store_true", help="embed without the encoder's on-disk cache")
    ap.add_argument("--max-questions", type=int, default=None,
                    help="use a seeded random subset of at most this many questions of each data set")
    ap.add_argument("--note", default=None, help="a note stored in the JSON (e.g. why fewer ks were run)")
    ap.add_argument("--json", default="benchmarks/results/learning_curve.json")
    ap.add_argument("--plot", default="benchmarks/results/learning_curve.png")
    args = ap.parse_args()
    try:
        strategies = list(dict.fromkeys(check_strategy(s) for s in args.strategies))
    except ValueError as exc:
        ap.error(str(exc))
    if "random" not in strategies:
        strategies.insert(0, "random")  # the other strategies score on random's held-out questions
    root = data_dir()
    encoder = None
    if not args.no_cache:
        from routellm_core.cli.common import cache_dir
        from routellm_core.encoders import QueryEncoder

        encoder = QueryEncoder(cache_dir=cache_dir())  # the default's encoder (all-MiniLM-L6-v2), cached on disk
    started = time.perf_counter()
    results = [run(name, root, args.ks, args.seeds, args.eval_size, strategies, encoder, args.max_questions)
               for name in args.datasets]
    payload = {"benchmark": "learning_curve", "command": shlex.join(["python", *sys.argv]),
               "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
               "seeds": args.seeds, "eval_size": args.eval_size, "ks": args.ks, "strategies": strategies,
               "selection": {"pool": "the questions not held out", "uncertainty": "the starting default's win rate",
                             "threshold": "strong share 0.5 on the pool (the pool's median win rate)",
                             "diverse_pool_factor": POOL_FACTOR},
               "max_questions": args.max_questions, "note": args.note,
               "seconds": round(time.perf_counter() - started, 1),
               "results": results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.json}")
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
