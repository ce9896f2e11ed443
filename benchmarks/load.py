"""Throughput and per-call router overhead under load: N concurrent async calls per adapter.

Prints the figures and writes them to JSON (default ``benchmarks/results/load.json``)::

    python benchmarks/load.py [--n 1000] [--delay 0.05] [--repeat 3] [--routers minilm fast] [--json OUT]

For each embedded router side by side (``default``, MiniLM on ONNX Runtime; ``default-fast``, the
static encoder; with ``--routers ... torch`` also ``default`` with its encoder on torch, the
fallback) and each adapter (``ChatRouteLLM.ainvoke`` and ``RouteLLM.achat``) ``n`` calls are
started at once with ``asyncio.gather``; each measurement runs ``repeat`` times on new queries
and the run with the median calls/s is kept (every run's figure is in the JSON). Behind it are fake models that answer
after exactly ``delay`` seconds (``asyncio.sleep``) and record how long each call spent inside
them, so for each call ``overhead = latency - time in the model``: the routing layer's cost
under that concurrency, waiting for the encoder included. Two cache states:

- ``cold``: every query is new, so every call is encoded (one text per call);
- ``warm``: the same queries again, their embeddings in the encoder's cache (a service that
  has seen them, or a repeated prompt); the router's head still scores every call.

``direct`` is the same ``n`` calls straight to the fake model, no router: the ceiling.

Then, warm, with the learning loop switched on (issue 17): ``+capture`` writes every call to a
SQLite traffic store (``capture=``, off the call path), ``+shadow`` also shadow-labels 10% of
the calls (``shadow=``: the other fake model and a fake judge, in the background).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole  # noqa: E402
from llama_index.core.llms.callbacks import llm_chat_callback  # noqa: E402

from langchain_routellm import ChatRouteLLM  # noqa: E402
from llamaindex_routellm import RouteLLM  # noqa: E402
from routellm_core.learning import JudgePrompt, ShadowLabeller, TrafficCapture  # noqa: E402
from routellm_core.routing import shared_router  # noqa: E402
from tests.langchain.fake_models import FakeToolChatModel  # noqa: E402
from tests.llamaindex.fakes import FakeLLM  # noqa: E402

TOPICS = ["prime numbers", "tea", "a haiku", "Rust lifetimes", "the French revolution",
          "sorting algorithms", "a birthday card", "tax law", "black holes", "sourdough bread"]
# side by side: the accurate default (MiniLM on ONNX Runtime) and the fast one; ``torch`` (not run
# unless asked for) is the default with its encoder forced onto torch, the fallback
ROUTERS = {"minilm": "default", "fast": "default-fast", "torch": "default"}
DEFAULT_ROUTERS = ["minilm", "fast"]
MODEL_TIME: dict[str, float] = {}    # query -> seconds the call spent inside the fake model


class TimedChatModel(FakeToolChatModel):
    """A LangChain fake that answers after ``delay`` seconds and records its own time."""

    delay: float = 0.05

    async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        t = time.perf_counter()
        await asyncio.sleep(self.delay)
        out = self._generate(messages, stop, None, **kwargs)
        MODEL_TIME.setdefault(messages[-1].content, time.perf_counter() - t)  # shadow calls come later
        return out


class TimedLLM(FakeLLM):
    """A LlamaIndex fake that answers after ``delay`` seconds and records its own time."""

    delay: float = 0.05

    @llm_chat_callback()
    async def achat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        t = time.perf_counter()
        await asyncio.sleep(self.delay)
        out = self._chat(messages, kwargs)
        MODEL_TIME.setdefault(messages[-1].content, time.perf_counter() - t)  # shadow calls come later
        return out


def queries(tag: str, n: int) -> list[str]:
    return [f"{tag} {i}: tell me about {TOPICS[i % len(TOPICS)]} ({i * 7919 % 1009})" for i in range(n)]


def run(call: Callable[[str], Awaitable[Any]], texts: list[str]) -> dict[str, float]:
    """Start every call at once; calls/s and the overhead percentiles in milliseconds."""
    MODEL_TIME.clear()
    latency: dict[str, float] = {}

    async def one(text: str) -> None:
        t = time.perf_counter()
        await call(text)
        latency[text] = time.perf_counter() - t

    async def all_calls() -> float:
        t = time.perf_counter()
        await asyncio.gather(*(one(x) for x in texts))
        return time.perf_counter() - t

    wall = asyncio.run(all_calls())
    overhead = np.array([latency[x] - MODEL_TIME[x] for x in texts]) * 1e3
    return {
        "calls": len(texts), "wall_s": round(wall, 3), "calls_per_s": round(len(texts) / wall, 1),
        "overhead_p50_ms": round(float(np.percentile(overhead, 50)), 2),
        "overhead_p99_ms": round(float(np.percentile(overhead, 99)), 2),
        "overhead_mean_ms": round(float(overhead.mean()), 2),
    }


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput, with every run's calls/s beside it."""
    ordered = sorted(runs, key=lambda r: r["calls_per_s"])
    return {**ordered[len(ordered) // 2], "calls_per_s_all_runs": [r["calls_per_s"] for r in runs]}


def measure(router: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Every row of the benchmark for one router: both adapters, cold, warm, capture, shadow."""
    router.route(["warm up the encoder"], threshold=0.5)
    lc_strong, lc_weak = (TimedChatModel(model_name=m, delay=args.delay) for m in ("fake-strong", "fake-weak"))
    li_strong, li_weak = (TimedLLM(model=m, delay=args.delay) for m in ("fake-strong", "fake-weak"))
    lc = ChatRouteLLM(strong=lc_strong, weak=lc_weak, router=router, strong_fraction=0.5)
    li = RouteLLM(strong=li_strong, weak=li_weak, router=router, strong_fraction=0.5,
                  prices={"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5)})

    def msgs(text: str) -> list[ChatMessage]:
        return [ChatMessage(role=MessageRole.USER, content=text)]

    store = Path(tempfile.mkdtemp()) / "load-traffic.db"
    capture = TrafficCapture(store)

    async def judge(system: Any, user: str) -> str:
        return "[[A]]"

    shadow = ShadowLabeller(judge, store, judge_prompts={"pair-v2": JudgePrompt("pair-v2", "Judge.", "{question}|"
                                                                                "{answer_a}|{answer_b}")},
                            fraction=0.1, concurrency=4, seed=0)
    lc_cap = ChatRouteLLM(strong=lc_strong, weak=lc_weak, router=router, strong_fraction=0.5, capture=capture)
    lc_sh = ChatRouteLLM(strong=lc_strong, weak=lc_weak, router=router, strong_fraction=0.5, capture=capture,
                         shadow=shadow)
    li_cap = RouteLLM(strong=li_strong, weak=li_weak, router=router, strong_fraction=0.5, capture=capture)
    li_sh = RouteLLM(strong=li_strong, weak=li_weak, router=router, strong_fraction=0.5, capture=capture,
                     shadow=shadow)

    results: dict[str, Any] = {}
    for name, routed, direct, with_capture, with_shadow in [
        ("langchain", lambda t: lc.ainvoke(t), lambda t: lc_weak.ainvoke(t), lambda t: lc_cap.ainvoke(t),
         lambda t: lc_sh.ainvoke(t)),
        ("llamaindex", lambda t: li.achat(msgs(t)), lambda t: li_weak.achat(msgs(t)),
         lambda t: li_cap.achat(msgs(t)), lambda t: li_sh.achat(msgs(t))),
    ]:
        runs: dict[str, list[dict[str, float]]] = {}
        for rep in range(args.repeat):  # new queries each time; the run with the median calls/s is kept
            texts = queries(f"load benchmark {name} {rep}", args.n)
            for state, call in (("direct", direct),
                                ("cold", routed),   # first sight: every query encoded
                                ("warm", routed),   # the same queries: embeddings cached
                                ("warm+capture", with_capture), ("warm+capture+shadow", with_shadow)):
                runs.setdefault(state, []).append(run(call, texts))
        results[name] = {state: median_run(rs) for state, rs in runs.items()}
        capture.flush(120)
        shadow.flush(120)
        results[name]["learning"] = {"captured_calls": int(len(capture.store.calls())),
                                     "shadow_battles": shadow.labelled, "shadow_skipped_busy": shadow.skipped_busy,
                                     "capture_dropped": capture.dropped, "capture_errors": capture.errors}
        for state, r in results[name].items():
            if state == "learning":
                print(f"{name:10s} learning: {r}")
                continue
            print(f"{name:10s} {state:20s} {r['calls']} calls in {r['wall_s']:7.2f} s = {r['calls_per_s']:8.1f} "
                  f"calls/s; router overhead per call p50 {r['overhead_p50_ms']:8.1f} ms, "
                  f"p99 {r['overhead_p99_ms']:8.1f} ms")

    return results


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="benchmarks/results/load.json")
    ap.add_argument("--n", type=int, default=1000, help="concurrent calls per measurement")
    ap.add_argument("--delay", type=float, default=0.05, help="seconds each fake model call takes")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (the median is kept)")
    ap.add_argument("--routers", nargs="+", choices=list(ROUTERS), default=DEFAULT_ROUTERS,
                    help="minilm: the embedded default (ONNX Runtime); fast: default-fast (static encoder); "
                    "torch: the default with its encoder on torch (the fallback)")
    args = ap.parse_args(argv)

    results: dict[str, Any] = {}
    backends: dict[str, str] = {}
    for label, spec in ROUTERS.items():
        if label in args.routers:
            if label == "torch":
                from routellm_core import load_router
                from routellm_core.encoders import QueryEncoder

                router = load_router(spec, encoder=QueryEncoder(backend="torch"))
            else:
                router = shared_router(spec)
            backends[label] = router.encoder_.backend_
            print(f"router {spec!r}, encoder on {backends[label]}")
            results[label] = measure(router, args)

    out = {
        "benchmark": "load",
        "command": "python benchmarks/load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "n_concurrent": args.n, "model_delay_s": args.delay, "repeat": args.repeat,
        "routers": {k: ROUTERS[k] for k in results},
        "encoder_backends": backends,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_end": list(os.getloadavg())},
        # the accurate default under "results" (the key earlier runs used), default-fast beside it
        "results": results.get("minilm", {}),
        "results_fast": results.get("fast", {}),
        **({"results_torch": results["torch"]} if "torch" in results else {}),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")
    return out


if __name__ == "__main__":
    main()
