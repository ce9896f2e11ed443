"""Candidates for the embedded default router, compared on validation data only.

Every variant is trained on the default's data (RouterBench ARC-Challenge, MBPP and Winogrande
train splits plus LLMRouter's train split; gold labels; MIT-licensed), decontaminated against
RouteLLM's evaluation sets as ``routellm train`` does. The figure that chooses is the
**validation APGR** (strong gpt-4-1106-preview vs weak mixtral-8x7b-instruct-v0.1, the only
pair of the default with gold scores in the training data): leave one task out, for each of
RouterBench's three tasks train without its train split and score its *test* split, then take
the mean. Scoring the test splits after training on every task (``routerbench-test``) is in
distribution and, measured, does not predict out-of-domain quality, so it is reported but does
not choose. MMLU and GSM8K (RouteLLM's evaluation sets) are scored out of domain and reported
next to it, never used to choose::

    ROUTELLM_DATA_DIR=../shared/data python benchmarks/default_variants.py [--json OUT] [--skip-eval]

Variants:

- ``sw``: the default's recipe as it is embedded (similarity-weighted ranking over Elo tiers of
  all 20 models, query text as in the files);
- ``sw+templates``: the same with the shared template lines stripped (``strip_templates``);
- ``sw-fast``: the same recipe on the static encoder (``static:`` MiniLM, as the embedded
  ``default-fast``);
- ``joint``: one model of every model's correctness on every training query (the N-way
  ``quality`` router: an MLP from the query embedding to 20 per-model correctness
  probabilities, missing scores masked), read as a pair router: P(strong beats weak) =
  0.5 + (p_strong - p_weak) / 2, the expected outcome with ties counted half;
- ``irt`` / ``irt-mlp``: item response theory over every model (see :class:`IRTPair`), the
  difficulty linear in the embedding / an MLP of it;
- ``sw+joint``, ``sw+irt``: the mean of two, each as a z-score of its logit on the Arena-Hard
  calibration prompts (so neither dominates by scale), mapped back through a sigmoid.

Writes ``benchmarks/results/default_variants.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"
RB = "{data}/routerdc_7model_and_routerbench_subset/routerbench_zs"
SPECS = [
    f"gold:{RB}/arc_challenge_train.csv",
    f"gold:{RB}/mbpp_train.csv",
    f"gold:{RB}/winograde_train.csv",
    "gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__train.json",
]
VALIDATION = [f"{RB}/{task}_test.csv" for task in ("arc_challenge", "mbpp", "winograde")]
CALIBRATION = "{data}/arena_hard_prompts/arena-hard-v0.1_question.jsonl"
FAST_ENCODER = "static:sentence-transformers/all-MiniLM-L6-v2"


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def validation_benchmark(paths: list[str]) -> Any:
    """RouterBench test splits as a :class:`Benchmark` of the default's pair."""
    from routellm_core.data import load_gold_matrix
    from routellm_core.evaluation import Benchmark
    from routellm_core.training import expand_spec

    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for path in paths:
        m = load_gold_matrix(expand_spec(path))
        i, j = m.models.index(STRONG), m.models.index(WEAK)
        keep = ~np.isnan(m.scores[:, [i, j]]).any(axis=1)
        prompts += [q for q, k in zip(m.queries, keep) if k]
        strong += m.scores[keep, i].tolist()
        weak += m.scores[keep, j].tolist()
    n = len(prompts)
    return Benchmark("routerbench", prompts, np.array(strong), np.array(weak), np.arange(n),
                     STRONG, WEAK, 0, 100.0)


def union_matrix(specs: list[str], loaded: dict[str, Any] | None = None) -> Any:
    """The specs' score matrices (``loaded`` ones where given) over the union of their models,
    NaN where a pool lacks one."""
    from routellm_core.data.schema import ScoreMatrix
    from routellm_core.nway.training import load_score_matrix

    parts = [(loaded or {}).get(s) or load_score_matrix([s])[0] for s in specs]
    models = sorted({m for p in parts for m in p.models})
    rows = []
    for p in parts:
        block = np.full((len(p), len(models)), np.nan)
        block[:, [models.index(m) for m in p.models]] = p.scores
        rows.append(block)
    return ScoreMatrix([q for p in parts for q in p.queries], models, np.vstack(rows), source="union")


class JointPair:
    """A pair's win rate read off a many-model correctness model (see the module docstring)."""

    name = "joint"

    def __init__(self, quality: Any) -> None:
        self.quality = quality
        self.s = quality.known_models.index(STRONG)
        self.w = quality.known_models.index(WEAK)

    def win_rate(self, texts: list[str]) -> np.ndarray:
        p = self.quality.predict_quality(texts)
        return 0.5 + (p[:, self.s] - p[:, self.w]) / 2


class IRTPair:
    """Item response theory over every model: P(model m answers q) = sigmoid(a_m (t_m - b(q))),
    one ability t_m and discrimination a_m per model, one difficulty b(q) per query, linear in
    its embedding; trained on every observed (query, model) score of the union matrix, then read
    as a pair router like ``joint``. Difficulty is learned from all 20 models, so what LLMRouter's
    models find hard informs the gpt-4 / Mixtral pair, which only RouterBench scores."""

    name = "irt"

    def __init__(self, encoder: Any, matrix: Any, *, hidden: int = 0, epochs: int = 300, seed: int = 0) -> None:
        import torch

        torch.manual_seed(seed)
        self.encoder = encoder
        x = torch.from_numpy(encoder.encode(matrix.queries).astype(np.float32))
        y = torch.from_numpy(np.nan_to_num(matrix.scores, nan=0.0).astype(np.float32))
        mask = torch.from_numpy(~np.isnan(matrix.scores))
        d, k = x.shape[1], y.shape[1]
        self.net = (torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
                    if hidden else torch.nn.Linear(d, 1))
        self.theta = torch.nn.Parameter(torch.zeros(k))
        self.log_a = torch.nn.Parameter(torch.zeros(k))
        opt = torch.optim.Adam([*self.net.parameters(), self.theta, self.log_a], lr=1e-2, weight_decay=1e-5)
        rng = np.random.default_rng(seed)
        val = torch.from_numpy(rng.random(len(x)) < 0.1)
        best, best_state, waited = np.inf, None, 0
        for _ in range(epochs):
            opt.zero_grad()
            loss_all = torch.nn.functional.binary_cross_entropy_with_logits(self._logits(x), y, reduction="none")
            train = (loss_all * (mask & ~val[:, None])).sum() / (mask & ~val[:, None]).sum()
            train.backward()
            opt.step()
            with torch.no_grad():
                v = float((loss_all * (mask & val[:, None])).sum() / (mask & val[:, None]).sum())
            if v < best - 1e-5:
                best, waited = v, 0
                best_state = ([p.detach().clone() for p in self.net.parameters()],
                              self.theta.detach().clone(), self.log_a.detach().clone())
            else:
                waited += 1
                if waited > 20:
                    break
        if best_state is not None:
            with torch.no_grad():
                for p, b in zip(self.net.parameters(), best_state[0]):
                    p.copy_(b)
                self.theta.copy_(best_state[1])
                self.log_a.copy_(best_state[2])
        self.s, self.w = matrix.models.index(STRONG), matrix.models.index(WEAK)

    def _logits(self, x: Any) -> Any:
        import torch

        b = self.net(x)  # (n, 1) difficulty
        return torch.exp(self.log_a)[None, :] * (self.theta[None, :] - b)

    def win_rate(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            p = torch.sigmoid(self._logits(torch.from_numpy(self.encoder.encode(texts).astype(np.float32)))).numpy()
        return 0.5 + (p[:, self.s] - p[:, self.w]) / 2


class ZMean:
    """The mean of several scorers' logits, each standardised on calibration prompts."""

    def __init__(self, parts: list[Any], calibration: list[str]) -> None:
        self.parts = parts
        self.stats = []
        for part in parts:
            z = _logit(part.win_rate(calibration))
            self.stats.append((float(z.mean()), float(z.std() or 1.0)))

    def win_rate(self, texts: list[str]) -> np.ndarray:
        z = np.mean([(_logit(p.win_rate(texts)) - m) / s for p, (m, s) in zip(self.parts, self.stats)], axis=0)
        return 1 / (1 + np.exp(-z))


class PairScorer:
    def __init__(self, router: Any) -> None:
        self.router = router

    def win_rate(self, texts: list[str]) -> np.ndarray:
        return self.router.win_rate(texts, strong_model=STRONG, weak_model=WEAK)


TASKS = ("arc_challenge", "mbpp", "winograde")


def main() -> None:
    from routellm_core.cli.common import cache_dir, eval_data_dir
    from routellm_core.data.decontaminate import decontaminate, load_eval_prompts
    from routellm_core.data.prompts import read_prompts
    from routellm_core.encoders import QueryEncoder
    from routellm_core.evaluation import load_benchmark
    from routellm_core.evaluation.metrics import evaluate_win_rates
    from routellm_core.nway import QualityRouter
    from routellm_core.routers import SWRankingRouter
    from routellm_core.training import expand_spec
    from routellm_core.training.pipeline import load_training_battles

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/default_variants.json"))
    ap.add_argument("--skip-eval", action="store_true", help="validation only: no MMLU / GSM8K")
    ap.add_argument("--only", nargs="*", help="score only these variants")
    args = ap.parse_args()

    t0 = time.perf_counter()
    encoder = QueryEncoder(cache_dir=cache_dir())
    fast_encoder = QueryEncoder(FAST_ENCODER)
    held = load_eval_prompts(eval_data_dir(None))
    battles, _ = load_training_battles(SPECS)
    battles, report = decontaminate(battles, held, encoder=encoder)
    parts = {spec: decontaminate(union_matrix([spec]), held, encoder=encoder)[0] for spec in SPECS}
    calibration = read_prompts(expand_spec(CALIBRATION))
    print(report, f"\n[data {time.perf_counter() - t0:.0f} s]", flush=True)

    def builders(without: str | None) -> dict[str, Any]:
        """Every variant, trained on the default's data less the train split of task ``without``."""
        specs = [s for s in SPECS if without is None or f"/{without}_train" not in s]
        b = battles[~battles["source"].str.contains(f"{without}_train")] if without else battles
        matrix = union_matrix(specs, parts)
        sw = PairScorer(SWRankingRouter(strong_model=STRONG, weak_model=WEAK, encoder=encoder,
                                        strip_templates=False).fit(b))
        joint = JointPair(QualityRouter(encoder=encoder, seed=0).fit(matrix))
        irt = IRTPair(encoder, matrix)
        out = {
            "sw": sw,
            "sw+templates": PairScorer(SWRankingRouter(strong_model=STRONG, weak_model=WEAK, encoder=encoder,
                                                       strip_templates=True).fit(b)),
            "sw-fast": PairScorer(SWRankingRouter(strong_model=STRONG, weak_model=WEAK, encoder=fast_encoder,
                                                  strip_templates=False).fit(b)),
            "joint": joint,
            "irt": irt,
            "irt-mlp": IRTPair(encoder, matrix, hidden=128),
            "sw+joint": ZMean([sw, joint], calibration),
            "sw+irt": ZMean([sw, irt], calibration),
        }
        return {k: v for k, v in out.items() if not args.only or k in args.only}

    def score(scorer: Any, bench: Any, name: str) -> dict[str, Any]:
        t = time.perf_counter()
        rates = np.concatenate([scorer.win_rate(bench.prompts[i:i + 2048])
                                for i in range(0, len(bench.prompts), 2048)])
        r = evaluate_win_rates(bench, rates, router_name=name)
        return {"apgr": r["apgr"], "random_apgr": r["random_apgr"], "ece": r["ece"],
                "win_rate_p5_p95": [float(np.percentile(rates, 5)), float(np.percentile(rates, 95))],
                "n": len(bench), "seconds": round(time.perf_counter() - t, 1)}

    results: dict[str, dict[str, Any]] = {}
    for task in TASKS:  # leave one task out: the task's test split scores routers that never saw the task
        bench = validation_benchmark([path for path in VALIDATION if f"/{task}_test" in path])
        for name, scorer in builders(task).items():
            results.setdefault(name, {})[f"unseen:{task}"] = score(scorer, bench, name)
    benches = {"routerbench-test": validation_benchmark(VALIDATION)}
    if not args.skip_eval:
        data = eval_data_dir(None)
        benches |= {"mmlu": load_benchmark("mmlu", data), "gsm8k": load_benchmark("gsm8k", data)}
    for name, scorer in builders(None).items():
        row = results[name]
        for bname, bench in benches.items():
            row[bname] = score(scorer, bench, name)
        row["validation_apgr"] = float(np.mean([row[f"unseen:{t}"]["apgr"] for t in TASKS]))
        print(name, f"validation {row['validation_apgr']:.3f}",
              {b: round(v["apgr"], 3) for b, v in row.items() if isinstance(v, dict)}, flush=True)

    chosen = max(results, key=lambda v: results[v]["validation_apgr"])
    out = {
        "about": "candidates for the embedded default, chosen on validation_apgr only: the mean APGR "
                 "(gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1) over RouterBench's three tasks, each "
                 "scored on its test split by variants trained without that task (leave one task out, "
                 "as out of domain as the data allow); routerbench-test (all tasks trained) and MMLU / "
                 "GSM8K out of domain are reported, never used to choose",
        "command": "python benchmarks/default_variants.py",
        "training_data": SPECS,
        "decontamination": str(report),
        "validation": VALIDATION,
        "results": results,
        "chosen_on_validation": chosen,
        "machine": platform.processor() or platform.machine(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"chosen on validation: {chosen}; wrote {args.json}")


if __name__ == "__main__":
    main()
