"""Batch-scoring throughput: one process, and Ray Data with 1 and 2 workers, on real prompts.

Prints the figures and writes them to a JSON file (default ``benchmarks/results/ray_throughput.json``)::

    python benchmarks/ray_throughput.py [--n 2000] [--workers 1 2] [--json OUT]

The prompts are ``--n`` MMLU questions from RouteLLM's evaluation set in ../shared/data
(``routellm_evals/mmlu``, a seeded random sample), written to a Parquet file that every run
reads. Every run embeds them from scratch: no on-disk embedding cache, and each Ray actor
starts with an empty in-memory one. The embedded default router scores them.

- ``local``: ``score_prompts(path, engine="local")`` in this process (torch uses every core);
  the encoder's load time is reported apart and not counted.
- ``ray, k workers``: ``score_prompts(path, engine="ray", num_workers=k)``; each actor
  reserves one CPU and runs torch on one thread. The time counts everything after Ray has
  started: reading the file, starting the actors and loading the encoder in each, scoring.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd

from routellm_core import QueryEncoder, load_router
from routellm_core.offline_scoring import score_prompts


def default_data_dir() -> Path | None:
    """The shared data sets: $ROUTELLM_DATA_DIR, else ../shared/data beside this checkout."""
    path = Path(os.environ.get("ROUTELLM_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    return path if path.is_dir() else None


def mmlu_prompts(n: int, seed: int = 0) -> tuple[list[str], str]:
    from routellm_core.evaluation.benchmarks import load_benchmark

    data = default_data_dir()
    if data is None:
        raise SystemExit(
            "needs the shared data (../shared/data or $ROUTELLM_DATA_DIR) for the MMLU prompts"
        )
    bench = load_benchmark("mmlu", data / "routellm_evals")
    unique = list(dict.fromkeys(bench.prompts))
    idx = np.random.default_rng(seed).choice(
        len(unique), min(n, len(unique)), replace=False
    )
    return [
        unique[i] for i in sorted(idx)
    ], f"{{data}}/routellm_evals/mmlu ({len(unique)} distinct questions)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--json", default=str(Path(__file__).parent / "results" / "ray_throughput.json")
    )
    args = parser.parse_args(argv)

    import ray

    prompts, source = mmlu_prompts(args.n)
    tmp = Path(tempfile.mkdtemp(prefix="ray-throughput-"))
    path = tmp / "prompts.parquet"
    pd.DataFrame({"prompt": prompts}).to_parquet(path)
    chars = np.array([len(p) for p in prompts])
    print(
        f"{len(prompts)} MMLU prompts from {source}; median {int(np.median(chars))} characters"
    )
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, ray {ray.__version__}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "prompts": {
            "n": len(prompts),
            "source": source,
            "median_chars": int(np.median(chars)),
        },
        "router": "default (sw_ranking, all-MiniLM-L6-v2, 256-token window)",
        "embedding_cache": "none: every run embeds every prompt",
        "command": "python benchmarks/ray_throughput.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "runs": [],
    }

    import torch

    t0 = time.perf_counter()
    router = load_router("default", encoder=QueryEncoder())
    router.encoder_.model  # noqa: B018 - load the weights before timing
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    local = score_prompts(path, router)
    wall = time.perf_counter() - t0
    run = {
        "engine": "local",
        "workers": 1,
        "torch_threads": torch.get_num_threads(),
        "seconds": round(wall, 2),
        "prompts_per_s": round(len(prompts) / wall, 1),
        "encoder_load_s_not_counted": round(load_s, 2),
    }
    results["runs"].append(run)
    print(
        f"local (1 process, {run['torch_threads']} torch threads): {wall:.1f} s, {run['prompts_per_s']} prompts/s"
    )

    t0 = time.perf_counter()
    ray.init(
        num_cpus=max(args.workers) + 1, include_dashboard=False, log_to_driver=False
    )
    results["ray_init_s"] = round(time.perf_counter() - t0, 2)
    print(f"ray.init (local): {results['ray_init_s']} s, not counted below")
    try:
        for k in args.workers:
            t0 = time.perf_counter()
            df = score_prompts(
                path, "default", engine="ray", num_workers=k, batch_size=args.batch_size
            )
            wall = time.perf_counter() - t0
            diff = float(
                np.abs(df.win_rate.to_numpy() - local.win_rate.to_numpy()).max()
            )
            assert list(df.prompt) == list(local.prompt)
            run = {
                "engine": "ray",
                "workers": k,
                "torch_threads": 1,
                "batch_size": args.batch_size,
                "seconds": round(wall, 2),
                "prompts_per_s": round(len(prompts) / wall, 1),
                "max_abs_diff_to_local": diff,
            }
            results["runs"].append(run)
            print(
                f"ray, {k} worker(s) x 1 CPU: {wall:.1f} s, {run['prompts_per_s']} prompts/s "
                f"(largest win-rate difference to local: {diff:.1e})"
            )
    finally:
        ray.shutdown()
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
