"""Which learner makes the most of k in-domain labels: the default updated with them, logistic
regression on them, and combinations, all on the same MiniLM embeddings.

The protocol of ``benchmarks/learning_curve.py`` (k questions drawn per seed as the user's
labels; APGR on the other questions, at most ``--eval-size`` of them, drawn with the same seed;
gpt-4-1106-preview vs Mixtral), with several learners side by side:

- ``default+k``: the embedded default's ``SWRankingRouter.partial_fit`` with the k labels, their
  battles together weighing ``w`` times the default's own (``w`` = 0.3, 1, 3, 10; 1 is what
  ``routellm train --init default`` does);
- ``logreg C``: logistic regression on the k labels alone (strong better = 1; ties left out),
  inverse regularisation ``C`` = 0.1 or 1 (1 is the learning curve's baseline);
- ``logreg+default``: the same with the default's logit as one more feature;
- ``stack``: the mean of ``default+k`` (w = 1) and ``logreg C=1``, each as a z-score of its logit.

::

    ROUTELLM_DATA_DIR=../shared/data python benchmarks/label_learners.py \\
        [--datasets gsm8k mmlu alpacaeval] [--ks 100 500 1000] [--seeds 3] [--eval-size 2000]

Writes ``benchmarks/results/label_learners.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning_curve as lc  # noqa: E402  (the learning curve's data, battles and APGR)

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = (0.3, 1.0, 3.0, 10.0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _z(p: np.ndarray) -> np.ndarray:
    x = _logit(p)
    return (x - x.mean()) / (x.std() + 1e-9)


def learners(default: object, bench: object, emb: np.ndarray, labelled: np.ndarray, held: np.ndarray,
             seed: int) -> dict[str, np.ndarray]:
    """Held-out win rates of every learner trained on the ``labelled`` questions."""
    from sklearn.linear_model import LogisticRegression

    from routellm_core.routers.battles import balanced_weight

    s, w = bench.strong_scores[labelled], bench.weak_scores[labelled]  # type: ignore[attr-defined]
    keep = s != w
    y = (s > w)[keep].astype(int)
    out: dict[str, np.ndarray] = {}
    base = balanced_weight(default.n_battles_, len(labelled))  # type: ignore[attr-defined]
    for mult in WEIGHTS:
        router = copy.copy(default).partial_fit(  # type: ignore[attr-defined]
            lc.battles_of(bench, labelled), sample_weight=np.full(len(labelled), base * mult))
        out[f"default+k w={mult:g}"] = lc.sw_rates(router, emb[held])
    if len(np.unique(y)) < 2:
        return out
    prior_lab, prior_held = lc.sw_rates(default, emb[labelled]), lc.sw_rates(default, emb[held])
    for c in (0.1, 1.0):
        clf = LogisticRegression(max_iter=2000, C=c, random_state=seed).fit(emb[labelled][keep], y)
        out[f"logreg C={c:g}"] = clf.predict_proba(emb[held])[:, 1]
        feats = np.hstack([emb[labelled], 10 * _logit(prior_lab)[:, None]])[keep]
        clf = LogisticRegression(max_iter=2000, C=c, random_state=seed).fit(feats, y)
        held_feats = np.hstack([emb[held], 10 * _logit(prior_held)[:, None]])
        out[f"logreg+default C={c:g}"] = clf.predict_proba(held_feats)[:, 1]
    out["stack"] = 1 / (1 + np.exp(-(_z(out["default+k w=1"]) + _z(out["logreg C=1"])) / 2))
    return out


def main() -> None:
    from routellm_core.routing import shared_router

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["gsm8k", "mmlu", "alpacaeval"])
    ap.add_argument("--ks", nargs="+", type=int, default=[100, 500, 1000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--eval-size", type=int, default=2000)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/label_learners.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    root = lc.data_dir()
    default = shared_router("default")
    results = []
    for name in args.datasets:
        bench = lc.load(name, root)
        emb = default.encoder_.encode(bench.prompts)
        groups = np.unique(bench.question_ids)
        for k in args.ks:
            if k >= len(groups) - 50:
                print(f"{name}: k={k} leaves too few questions to score, skipped", flush=True)
                continue
            scores: dict[str, list[float]] = {}
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                chosen = rng.choice(groups, k, replace=False)
                labelled = np.flatnonzero(np.isin(bench.question_ids, chosen))
                rest = np.flatnonzero(~np.isin(bench.question_ids, chosen))
                held = np.sort(rng.choice(rest, min(args.eval_size, len(rest)), replace=False))
                test = bench.subset(held)
                for learner, rates in learners(default, bench, emb, labelled, held, seed).items():
                    scores.setdefault(learner, []).append(lc.apgr_of(rates, test))
            row = {"dataset": name, "k": k, "apgr_mean": {n: float(np.mean(v)) for n, v in scores.items()},
                   "apgr": scores}
            results.append(row)
            print(name, k, {n: round(v, 3) for n, v in row["apgr_mean"].items()}, flush=True)
    out = {"command": " ".join(["python benchmarks/label_learners.py", *sys.argv[1:]]),
           "seeds": args.seeds, "eval_size": args.eval_size,
           "strong_model": lc.STRONG, "weak_model": lc.WEAK, "results": results,
           "machine": platform.processor() or platform.machine(), "seconds": round(time.perf_counter() - t0, 1)}
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
