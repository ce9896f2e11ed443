"""Routing speed on this machine: one decision, batch throughput, and SW ranking vs a full refit.

Prints the figures and writes them to a JSON file (default ``benchmarks/results/routing_speed.json``)::

    python benchmarks/routing_speed.py [--json OUT] [--refit-queries 5]

1. Median (p90, p99) latency of one routing decision (encoder included, each query new to the
   encoder's cache) next to the encoder's own time for one text (its model's ``encode``, no
   router, no cache; interleaved with the decisions) and their ratio, for three routers side by
   side: the embedded default (MiniLM on ONNX Runtime), the same router with its encoder forced
   onto torch (the fallback, ``ROUTELLM_ENCODER_BACKEND=torch``) and ``default-fast`` (the same
   recipe on the static encoder distilled from MiniLM); for short questions (about 12 words) and
   for real Arena-Hard prompts (long, most fill the encoder's 256-token window), and for a
   repeated query (cache hit).
2. Batch throughput: win rates for 1,000 distinct prompts in one call, short and Arena-Hard.
3. SW ranking on real battles (RouterBench ARC-Challenge train from ../shared/data, or the test
   fixture when the data is absent): time per decision with the sufficient-statistics solver
   next to RouteLLM's full per-query scikit-learn refit over the same battles, and the largest
   difference between their win rates.
4. With ``--bert CHECKPOINT`` / ``--causal-llm CHECKPOINT`` (trained classifier routers; add
   ``--classifiers-only`` to skip 1-3): median time per decision and batch throughput, short
   and Arena-Hard prompts::

       python benchmarks/routing_speed.py --classifiers-only --bert runs/bert \\
           --json benchmarks/results/bert_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from routellm_core import load_router  # noqa: E402


def default_data_dir() -> Path | None:
    """The shared data sets: $ROUTELLM_DATA_DIR, else ../shared/data beside this checkout."""
    path = Path(os.environ.get("ROUTELLM_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    return path if path.is_dir() else None


def distinct_prompts(n: int, *, short: bool = False) -> list[str]:
    """``n`` distinct prompts: Arena-Hard (long, real) when present, or short templated questions."""
    data = default_data_dir()
    prompts: list[str] = []
    if data is not None and not short:
        from routellm_core.data.prompts import read_prompts

        for name in ("arena-hard-v0.1_question.jsonl", "arena-hard-v2.0_question.jsonl"):
            path = data / "arena_hard_prompts" / name
            if path.exists():
                prompts += read_prompts(path)
    topics = ["prime numbers", "sorting algorithms", "the French revolution", "photosynthesis",
              "tax law", "a birthday poem", "SQL joins", "black holes", "sourdough bread", "chess"]
    i = 0
    while len(prompts) < n:
        prompts.append(f"Question {i}: explain {topics[i % len(topics)]} to a {10 + i % 50}-year-old.")
        i += 1
    # a short suffix makes every prompt new to the encoder cache without changing its length much
    return [f"{p} ({k})" for k, p in enumerate(prompts[:n])]


#: The routers compared side by side: the accurate default on ONNX Runtime, the same router with
#: its encoder forced onto torch (the fallback), and the fast one (issue 18).
ROUTERS = {"minilm": "default", "torch": "default", "fast": "default-fast"}
PREFIX = {"minilm": "", "torch": "torch_", "fast": "fast_"}


def _key(prefix: str, name: str) -> str:
    # the MiniLM default keeps the key names of earlier runs; the others are prefixed
    return PREFIX[prefix] + name


def make_router(which: str) -> Any:
    """The router to time: ``torch`` is the default with its encoder forced onto torch."""
    if which == "torch":
        from routellm_core.encoders import QueryEncoder

        return load_router("default", encoder=QueryEncoder(backend="torch"))
    return load_router(ROUTERS[which])


def percentiles(name: str, times: list[float]) -> dict[str, float]:
    return {f"{name}_median_ms": 1000 * statistics.median(times),
            f"{name}_p90_ms": 1000 * float(np.percentile(times, 90)),
            f"{name}_p99_ms": 1000 * float(np.percentile(times, 99))}


def bench_decision(n: int, which: str = "minilm") -> dict[str, object]:
    """Encoder alone and the whole decision, side by side, one new query at a time.

    The two are interleaved (encoder, decision, encoder, ...; each on its own new query) so that
    a change in the machine's load touches both alike. "Encoder alone" is the encoder model's
    own ``encode([text])`` (ONNX session or ``SentenceTransformer``, normalised), no cache, no
    router: what the issue compares the decision with.
    """
    router = make_router(which)
    router.win_rate(["warm-up"])  # loads the encoder weights once
    encoder = router.encoder_
    model = encoder.model
    out: dict[str, object] = {_key(which, "decision_queries"): n, _key(which, "router"): ROUTERS[which],
                              _key(which, "encoder"): encoder.name, _key(which, "encoder_backend"): encoder.backend_}
    for kind, short in (("short", True), ("arena_hard", False)):
        prompts = distinct_prompts(2 * n, short=short)
        alone, whole = [], []
        for k in range(n):
            t0 = time.perf_counter()
            if encoder.is_static:
                encoder._model_encode(model, [prompts[2 * k]], False)
            else:
                model.encode([prompts[2 * k]], normalize_embeddings=True, convert_to_numpy=True)
            alone.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            router.route([prompts[2 * k + 1]], strong_fraction=0.5)
            whole.append(time.perf_counter() - t0)
        for name, value in percentiles(f"encoder_{kind}", alone).items():
            out[_key(which, name)] = value
        for name, value in percentiles(f"decision_{kind}", whole).items():
            out[_key(which, name)] = value
        out[_key(which, f"decision_over_encoder_{kind}")] = statistics.median(whole) / statistics.median(alone)
    cached = []
    for _ in range(n):
        t0 = time.perf_counter()
        router.route([prompts[1]], strong_fraction=0.5)
        cached.append(time.perf_counter() - t0)
    out[_key(which, "decision_cached_median_ms")] = 1000 * statistics.median(cached)
    return out


def bench_batch(n: int, which: str = "minilm") -> dict[str, object]:
    router = make_router(which)
    router.win_rate(["warm-up"])
    out: dict[str, object] = {_key(which, "batch_size"): n}
    for kind, short in (("short", True), ("arena_hard", False)):
        prompts = [f"batch {p}" for p in distinct_prompts(n, short=short)]
        t0 = time.perf_counter()
        router.win_rate(prompts)
        out[_key(which, f"batch_{kind}_queries_per_second")] = n / (time.perf_counter() - t0)
    return out


def bench_sw(refit_queries: int) -> dict[str, object]:
    from routellm_core.routers import SWRankingRouter
    from routellm_core.routers.sw_ranking import full_refit_win_rate

    data = default_data_dir()
    if data is not None:
        from routellm_core.data.specs import load_battles

        path = data / "routerdc_7model_and_routerbench_subset/routerbench_zs/arc_challenge_train.csv"
        battles = load_battles(f"gold:{path}")
        source = "RouterBench arc_challenge_train.csv (all 11 models, all pairs)"
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.routing_fixtures import toy_battles

        battles = toy_battles("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "claude-v1")
        source = "test fixture (shared data absent)"
    router = SWRankingRouter().fit(battles)
    queries = distinct_prompts(refit_queries)
    router.win_rate(queries)  # embed once so both methods time routing, not encoding
    fast, slow, diffs = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        a = float(router.win_rate([q])[0])
        fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = full_refit_win_rate(router, battles, q)
        slow.append(time.perf_counter() - t0)
        diffs.append(abs(a - b))
    return {
        "sw_source": source,
        "sw_battles": int(len(battles)),
        "sw_unique_queries": int(battles["query"].nunique()),
        "sw_tiers": int(max(router.tiers_.values()) + 1),
        "sw_decision_median_ms": 1000 * statistics.median(fast),
        "sw_full_refit_median_ms": 1000 * statistics.median(slow),
        "sw_speedup": statistics.median(slow) / statistics.median(fast),
        "sw_max_abs_win_rate_difference": max(diffs),
        "sw_queries_compared": len(queries),
    }


def bench_classifier(name: str, checkpoint: str, n_decisions: int, n_batch: int) -> dict[str, float]:
    """A trained classifier router (BERT or causal LLM): decision latency and batch throughput.

    The classifiers read the text itself (no embedding cache), so a repeated query costs as
    much as a new one.
    """
    router = load_router(checkpoint)
    router.win_rate(["warm-up"])
    out: dict[str, float] = {f"{name}_checkpoint": checkpoint, f"{name}_device": router.device_,
                             f"{name}_max_length": router.max_length}
    for kind, short in (("short", True), ("arena_hard", False)):
        times = []
        for p in distinct_prompts(n_decisions, short=short):
            t0 = time.perf_counter()
            router.route([p], threshold=0.5)
            times.append(time.perf_counter() - t0)
        out[f"{name}_decision_{kind}_median_ms"] = 1000 * statistics.median(times)
        prompts = distinct_prompts(n_batch, short=short)
        t0 = time.perf_counter()
        router.win_rate(prompts)
        out[f"{name}_batch_{kind}_queries_per_second"] = n_batch / (time.perf_counter() - t0)
    out[f"{name}_decision_queries"] = n_decisions
    out[f"{name}_batch_queries"] = n_batch
    return out


def print_side_by_side(results: dict[str, object]) -> None:
    """One row per figure: the MiniLM default (ONNX), the same on torch and the fast default."""
    def show(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    others = [p for p in ("torch_", "fast_") if any(k.startswith(p) for k in results)]
    cols = {p: {k[len(p):]: v for k, v in results.items() if k.startswith(p)} for p in others}
    rows = [(k, show(v), *(show(cols[p][k]) if k in cols[p] else "" for p in others))
            for k, v in results.items() if not any(k.startswith(p) for p in others)]
    width = max(len(r[0]) for r in rows)
    titles = {"torch_": "default on torch", "fast_": "default-fast (static)"}
    print(f"{'':<{width}}  {'default (MiniLM)':>24}" + "".join(f"  {titles[p]:>24}" for p in others))
    for key, *values in rows:
        print(f"{key:<{width}}" + "".join(f"  {v:>24}" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="output file (default: results/routing_speed.json, or "
                        "results/bert_causal_llm_speed.json with --classifiers-only)")
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--refit-queries", type=int, default=5)
    parser.add_argument("--routers", nargs="+", choices=list(ROUTERS), default=list(ROUTERS),
                        help="which routers to time: minilm (default, ONNX Runtime), torch (default with its "
                        "encoder on torch, the fallback) and fast (default-fast)")
    parser.add_argument("--bert", metavar="CHECKPOINT", help="also time this trained BERT router")
    parser.add_argument("--causal-llm", metavar="CHECKPOINT", help="also time this causal-LLM router")
    parser.add_argument("--classifier-decisions", type=int, default=50)
    parser.add_argument("--classifier-batch", type=int, default=200)
    parser.add_argument("--classifiers-only", action="store_true",
                        help="time only the checkpoints given with --bert / --causal-llm")
    args = parser.parse_args()
    if args.json is None:
        name = "bert_causal_llm_speed.json" if args.classifiers_only else "routing_speed.json"
        args.json = str(Path(__file__).parent / "results" / name)
    import torch

    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "command": "python benchmarks/routing_speed.py " + " ".join(sys.argv[1:]),
        "load_average_at_start": list(os.getloadavg()),
        "encoder_settings": {k: os.environ.get(k) for k in (
            "ROUTELLM_ENCODER_BACKEND", "ROUTELLM_ENCODER_THREADS", "ROUTELLM_ENCODER_SPIN")},
    }
    try:
        import onnxruntime

        results["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        results["onnxruntime"] = None
    if not args.classifiers_only:
        for which in args.routers:
            results.update(bench_decision(args.decisions, which))
            results.update(bench_batch(args.batch, which))
        results.update(bench_sw(args.refit_queries))
    for name, checkpoint in (("bert", args.bert), ("causal_llm", args.causal_llm)):
        if checkpoint:
            results.update(bench_classifier(name, checkpoint, args.classifier_decisions,
                                            args.classifier_batch))
    results["load_average_at_end"] = list(os.getloadavg())
    print_side_by_side(results)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
