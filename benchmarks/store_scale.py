"""One ``routellm learn`` cycle against a large traffic store: time and memory.

Generates a synthetic store of ``--calls`` captured calls (distinct synthetic queries, each with
a win rate and threshold as the adapters record them; no answers), then runs one learning cycle
(:func:`routellm_core.learning.cycle.learn_cycle`, 200 labels, ``select="uncertain"``, fake
strong / weak / judge models, the real default router) in a fresh process per store size, and
reports the cycle's wall time, its phases, and the process's peak memory above what loading the
router already took. Run at two sizes, the figures show what grows with the store and what does
not. SQLite by default; ``--url`` runs it on another database (e.g. a PostgreSQL server).

::

    python benchmarks/store_scale.py [--calls 100000 1000000] [--json benchmarks/results/store_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STRONG, WEAK, JUDGE = "big-model", "small-model", "judge-model"
PRICES = {STRONG: (10.0, 30.0), WEAK: (0.1, 0.3), JUDGE: (1.0, 1.0)}
JUDGE_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fastchat_mtbench_refs" / "judge_prompts.jsonl"
WORDS = ("integral", "poem", "proof", "email", "python", "recipe", "summary", "translate", "physics", "history",
         "sql", "haiku", "budget", "contract", "theorem", "story", "regex", "travel", "chemistry", "essay")


def generate(url: str, n: int, seed: int = 0, chunk: int = 20_000) -> float:
    """Fill a new store at ``url`` with ``n`` synthetic captured calls; returns seconds taken."""
    import numpy as np

    from routellm_core.learning.store import TrafficStore

    store = TrafficStore(url)
    rng = np.random.default_rng(seed)
    calls = store.tables["calls"]
    start, t0 = time.time() - n, time.perf_counter()
    with store.engine.begin() as conn:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            words = rng.integers(0, len(WORDS), size=(hi - lo, 3))
            rates = rng.beta(2, 2, size=hi - lo)
            rows = [{"call_id": f"{i:032x}", "created_at": start + i, "source": "synthetic",
                     "query": f"Request {i}: a {WORDS[w[0]]} about {WORDS[w[1]]} and {WORDS[w[2]]}, please.",
                     "route": "strong" if r >= 0.5 else "weak", "model": STRONG if r >= 0.5 else WEAK,
                     "strong_model": STRONG, "weak_model": WEAK, "router": "default", "rule": "threshold",
                     "win_rate": float(r), "threshold": 0.5, "router_failed": False, "decision": "{}"}
                    for i, w, r in zip(range(lo, hi), words, rates)]
            conn.execute(calls.insert(), rows)
    return time.perf_counter() - t0


async def _strong(system, user):
    return "A careful, complete answer."


async def _weak(system, user):
    return "Short."


async def _judge(system, user):
    return "[[A]]" if "careful" in user.split("[The End of Assistant A's Answer]")[0] else "[[B]]"


def child(url: str, out: str) -> None:
    """One cycle in this process; writes its figures to ``out``."""
    from routellm_core.checkpoints import load_router
    from routellm_core.learning.cycle import learn_cycle
    from routellm_core.learning.store import TrafficStore

    _strong.__name__, _weak.__name__, _judge.__name__ = STRONG, WEAK, JUDGE
    load_router("default").encoder_.encode(["warm up"])  # the router and encoder: memory every cycle has
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store = TrafficStore(url)
    t0 = time.perf_counter()
    report = learn_cycle(store, strong=_strong, weak=_weak, judge=_judge, to=tempfile.mkdtemp(), labels=200,
                         select="uncertain", prices=PRICES, judge_prompts=JUDGE_FILE)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps({
        "status": report.status, "labelled": report.labelled, "candidates": report.candidates,
        "cycle_seconds": round(seconds, 1), "baseline_mb": round(base), "peak_mb": round(peak),
        "cycle_mb": round(peak - base)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--url", help="a SQLAlchemy URL of an empty database to use instead of SQLite files "
                                  "(one size only)")
    ap.add_argument("--json", default="benchmarks/results/store_scale.json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.url and len(args.calls) > 1:
        raise SystemExit("--url takes one --calls size")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.calls:
            url = args.url or str(Path(tmp) / f"traffic_{n}.db")
            gen = generate(url, n)
            size_mb = Path(url).stat().st_size / 2**20 if not args.url else None
            out = Path(tmp) / f"cycle_{n}.json"
            subprocess.run([sys.executable, __file__, "--child", url, str(out)], check=True)
            row = {"calls": n, "database": "sqlite" if not args.url else args.url.split(":")[0],
                   "store_mb": None if size_mb is None else round(size_mb), "generate_seconds": round(gen, 1),
                   **json.loads(out.read_text())}
            results.append(row)
            print(f"{n:>9,} calls ({row['store_mb']} MB): cycle {row['cycle_seconds']} s, "
                  f"{row['cycle_mb']} MB above the {row['baseline_mb']} MB of the loaded router "
                  f"({row['status']}, {row['labelled']} labels)", flush=True)
    payload = {"benchmark": "store_scale", "command": "python benchmarks/store_scale.py " + " ".join(sys.argv[1:]),
               "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
               "labels": 200, "select": "uncertain", "results": results}
    Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
