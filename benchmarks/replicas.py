"""Replicas on one PostgreSQL store, with scheduled learning: what a team runs in production.

Four app processes (two ``ChatRouteLLM``, two ``RouteLLM``; fake chat models that answer at once,
the real router) serve a stream of calls for ``--seconds``, each routing with
``RouterFromStore(URL, poll_interval=...)`` and capturing every call into the store
(``capture=URL``). A fifth process runs ``routellm learn`` cycles one after another on the same
store (:func:`~routellm_core.learning.cycle.learn_cycle`, a fake judge that prefers the strong
model's answer on the hard queries), then rolls the last version back. Reported:

- calls served and calls failed (target 0);
- rows captured against calls answered, after every replica flushed at exit (target equal);
- for each new live version (a publish or the rollback), the time from its publication to every
  replica routing with it (target under two polling intervals);
- the latency of a routed call (the fake models take no time, so it is the router's) p50 / p99
  while a replica is loading and swapping in a new version, and otherwise.

A PostgreSQL server is started for the run (``scripts/postgres_server.py``) unless ``--url``
names an empty database.

::

    python benchmarks/replicas.py [--seconds 150] [--poll 5] [--json benchmarks/results/replicas.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STRONG, WEAK, JUDGE = "fake-strong", "fake-weak", "fake-judge"
PRICES = {STRONG: (10.0, 30.0), WEAK: (0.5, 1.5), JUDGE: (1.0, 1.0)}
JUDGE_FILE = ROOT.parent / "shared" / "data" / "fastchat_mtbench_refs" / "judge_prompts.jsonl"
HARD = ["Prove that {} is irrational", "Compute the integral of x^{} sin(x)", "Solve the recurrence a(n) = {} a(n-1)",
        "Derive the eigenvalues of a {}x{} rotation matrix"]
EASY = ["Say hello to {}", "What colour is a {} banana", "Write a short greeting for {}", "Thank {} for lunch"]
KINDS = ("langchain", "langchain", "llamaindex", "llamaindex")


def queries(n: int = 600) -> list[str]:
    out = []
    for i in range(n):
        template = (HARD if i % 2 else EASY)[i // 2 % 4]
        out.append(template.format(*([i] * template.count("{}"))) + f" (case {i})")
    return out


# ----------------------------------------------------------------------------- one replica
def replica(kind: str, url: str, seconds: float, poll: float, rate: float, out: str, seed: int) -> None:
    from routellm_core.routing import RouterFromStore

    follow = RouterFromStore(url, poll_interval=poll)
    if kind == "langchain":
        from langchain_routellm import ChatRouteLLM
        from tests.langchain.fake_models import FakeToolChatModel

        llm: Any = ChatRouteLLM(strong=FakeToolChatModel(model_name=STRONG), weak=FakeToolChatModel(model_name=WEAK),
                                router=follow, strong_fraction=0.5, capture=url, prices=PRICES)

        def call(q: str) -> Any:
            return llm.ainvoke(q)
    else:
        from llama_index.core.base.llms.types import ChatMessage, MessageRole

        from llamaindex_routellm import RouteLLM
        from tests.llamaindex.fakes import FakeLLM

        llm = RouteLLM(strong=FakeLLM(model=STRONG), weak=FakeLLM(model=WEAK), router=follow, strong_fraction=0.5,
                       capture=url, prices=PRICES)

        def call(q: str) -> Any:
            return llm.achat([ChatMessage(role=MessageRole.USER, content=q)])

    pool, rng = queries(), random.Random(seed)
    records: list[tuple[float, float, int]] = []   # (start, latency, version routing then)
    failures: list[str] = []

    async def worker(deadline: float) -> None:
        while time.time() < deadline:
            q = rng.choice(pool)
            version = follow.version.version
            t, t0 = time.time(), time.perf_counter()
            try:
                await call(q)
                records.append((t, time.perf_counter() - t0, version))
            except Exception as exc:  # counted, never hidden
                failures.append(f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(rng.expovariate(rate / 8))  # 8 workers: about `rate` calls/s in all

    async def serve() -> None:
        deadline = time.time() + seconds
        await asyncio.gather(*(worker(deadline) for _ in range(8)))

    asyncio.run(call(pool[0]))  # warm up: the encoder loaded before the clock starts (captured too)
    asyncio.run(serve())
    follow.close()
    Path(out).write_text(json.dumps({"kind": kind, "records": records, "failures": failures, "warm_up_calls": 1}))


# ----------------------------------------------------------------------------- the learner
async def _strong(system, user):
    return "A careful, complete solution." if any(w in user for w in ("Prove", "integral", "Solve", "eigen")) \
        else "Hello!"


async def _weak(system, user):
    return "A guess." if any(w in user for w in ("Prove", "integral", "Solve", "eigen")) else "Hello!"


async def _judge(system, user):
    if "careful" not in user:
        return "[[C]]"
    return "[[A]]" if "careful" in user.split("[The End of Assistant A's Answer]")[0] else "[[B]]"


def learner(url: str, seconds: float, out: str, start_after: float, poll: float) -> None:
    """Cycles back to back while the replicas serve, each started only when it can finish with
    time to spare for the replicas to switch; then one rollback, likewise."""
    from routellm_core.learning.cycle import learn_cycle
    from routellm_core.learning.store import TrafficStore

    _strong.__name__, _weak.__name__, _judge.__name__ = STRONG, WEAK, JUDGE
    store = TrafficStore(url)
    deadline = time.time() + seconds
    time.sleep(start_after)  # the replicas capture some traffic first
    cycles: list[dict[str, Any]] = []
    to, last = tempfile.mkdtemp(prefix="routellm-replicas-"), 60.0
    while time.time() + last + 6 * poll < deadline:
        t = time.time()
        report = learn_cycle(store, strong=_strong, weak=_weak, judge=_judge, to=to, labels=100, select="uncertain",
                             prices=PRICES, judge_prompts=JUDGE_FILE)
        last = time.time() - t
        cycles.append({**report.as_dict(), "seconds": round(last, 1)})
        print(f"learner: {report.status} in {last:.0f} s ({report.reason[:100]})", flush=True)
        time.sleep(3 * poll)  # the replicas route a while with the new version
    rolled = None
    if time.time() + 3 * poll < deadline and len([v for v in store.router_versions() if not v.rolled_back]) > 1:
        rolled = store.rollback(by="replicas benchmark").version
        print(f"learner: rolled back, version {rolled} live again", flush=True)
    Path(out).write_text(json.dumps({"cycles": cycles, "rolled_back_to": rolled}))


# ----------------------------------------------------------------------------- the run
def _start_server() -> tuple[str, Any]:
    sys.path.insert(0, str(ROOT / "scripts"))
    import postgres_server

    server = postgres_server.start()
    return server.url, lambda: postgres_server.stop(server.data_dir)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    import numpy as np

    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None}
    a = np.array(values) * 1e3
    return {"n": len(values), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=150.0, help="how long the replicas serve (default 150)")
    ap.add_argument("--poll", type=float, default=5.0, help="the replicas' polling interval (default 5 s)")
    ap.add_argument("--rate", type=float, default=20.0, help="calls per second per replica (default 20)")
    ap.add_argument("--url", help="an empty PostgreSQL database (default: a throwaway server)")
    ap.add_argument("--json", default="benchmarks/results/replicas.json")
    ap.add_argument("--replica", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--learner", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.replica:
        kind, url, seconds, poll, out, seed = args.replica
        replica(kind, url, float(seconds), float(poll), args.rate, out, int(seed))
        return
    if args.learner:
        url, seconds, out, start_after, poll = args.learner
        learner(url, float(seconds), out, float(start_after), float(poll))
        return

    from routellm_core.checkpoints import _embedded_dir
    from routellm_core.learning.store import TrafficStore
    from routellm_core.routing.follow import checkpoint_sha256

    url, stop = (args.url, lambda: None) if args.url else _start_server()
    tmp = Path(tempfile.mkdtemp(prefix="routellm-replicas-"))
    try:
        store = TrafficStore(url)
        default = _embedded_dir("default")
        store.publish_router(str(default), sha256=checkpoint_sha256(default), by="replicas benchmark",
                             note="the embedded default")
        me = [sys.executable, __file__, "--rate", str(args.rate)]
        procs = [subprocess.Popen([*me, "--replica", kind, url, str(args.seconds), str(args.poll),
                                   str(tmp / f"replica{i}.json"), str(i)]) for i, kind in enumerate(KINDS)]
        procs.append(subprocess.Popen([*me, "--learner", url, str(args.seconds), str(tmp / "learner.json"), "15",
                                       str(args.poll)]))
        for p in procs:
            p.wait()
        failed_processes = [p.args[3] if len(p.args) > 3 else "?" for p in procs if p.returncode]
        reps = [json.loads((tmp / f"replica{i}.json").read_text()) for i in range(len(KINDS))]
        learned = json.loads((tmp / "learner.json").read_text())
        versions = store.router_versions()
        captured = len(store.calls())
    finally:
        stop()

    answered = sum(len(r["records"]) + r["warm_up_calls"] for r in reps)
    failures = [f for r in reps for f in r["failures"]]
    events = sorted([(v.created_at, v.version) for v in versions]  # each time a version became live
                    + ([(max(v.rolled_back_at for v in versions if v.rolled_back_at), learned["rolled_back_to"])]
                       if learned["rolled_back_to"] is not None else []))
    switches: list[dict[str, Any]] = []
    swap_windows: list[list[tuple[float, float]]] = []
    for r in reps:
        windows, last = [], None
        for start, _, version in sorted(r["records"]):
            live_since = [t for t, v in events if v == version and t <= start]
            if last is not None and version != last and live_since:
                switches.append({"replica": r["kind"], "version": version, "live_at": live_since[-1],
                                 "seconds_after_publish": round(start - live_since[-1], 2)})
                windows.append((live_since[-1], start + 1.0))
            last = version
        swap_windows.append(windows)
    during, outside = [], []
    for r, windows in zip(reps, swap_windows):
        for start, latency, _ in r["records"]:
            (during if any(a <= start <= b for a, b in windows) else outside).append(latency)
    by_event: dict[tuple[int, float], float] = {}
    reached: dict[tuple[int, float], int] = {}
    for sw in switches:
        key = (sw["version"], sw["live_at"])
        by_event[key] = max(by_event.get(key, 0.0), sw["seconds_after_publish"])
        reached[key] = reached.get(key, 0) + 1
    payload = {
        "benchmark": "replicas", "command": "python benchmarks/replicas.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "replicas": list(KINDS), "seconds": args.seconds, "poll_interval_s": args.poll,
        "rate_per_replica": args.rate, "calls_served": answered, "calls_failed": len(failures),
        "failures": failures[:10], "captured_rows": captured, "processes_failed": failed_processes,
        "cycles": [{k: c[k] for k in ("status", "labelled", "apgr_before", "apgr_after", "version", "seconds")}
                   for c in learned["cycles"]],
        "versions_published": [v.version for v in versions], "rolled_back_to": learned["rolled_back_to"],
        "switch_seconds": [{"version": k[0], "replicas_switched": reached[k], "last_replica_after_s": s}
                           for k, s in sorted(by_event.items(), key=lambda e: e[0][1])],
        "switch_seconds_max": max(by_event.values()) if by_event else None,
        "replicas_switched": len(switches),
        "latency_during_swap": _percentiles(during), "latency_otherwise": _percentiles(outside),
    }
    Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps({k: v for k, v in payload.items() if k not in ("failures", "cycles")}, indent=1))


if __name__ == "__main__":
    main()
