"""What ChatRouteLLM adds to one LangChain call, and what it costs to build one.

Prints the figures and writes them to JSON (default ``benchmarks/results/langchain_overhead.json``)::

    python benchmarks/langchain_overhead.py [--json OUT] [--n 200]

Behind the router are two instant fake chat models (tests/langchain/fake_models.py), so the
figures are the routing layer's own cost, not a provider's latency:

1. ``decision_*``: one ``router.route([query])`` with the embedded default, for a query new to
   the encoder's cache and for a repeated one (cache hit).
2. ``direct_invoke``: ``fake.invoke(query)`` on the chosen model alone.
3. ``routed_invoke_*``: ``ChatRouteLLM.invoke(query)``; ``overhead_*`` = routed - direct, the
   wrapper plus the decision.
4. ``construct``: building a configured ``ChatRouteLLM`` (router held by reference).
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_routellm import ChatRouteLLM  # noqa: E402
from routellm_core.routing import shared_router  # noqa: E402
from tests.langchain.fake_models import FakeToolChatModel  # noqa: E402


def median_us(fn, n: int) -> float:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="benchmarks/results/langchain_overhead.json")
    ap.add_argument("--n", type=int, default=200, help="calls per measurement")
    args = ap.parse_args(argv)
    n = args.n

    router = shared_router("default")
    strong, weak = FakeToolChatModel(model_name="fake-strong"), FakeToolChatModel(model_name="fake-weak")
    llm = ChatRouteLLM(strong=strong, weak=weak, router=router, threshold=0.0)  # always strong
    warm = "How do I reverse a list in Python?"
    router.route([warm], threshold=0.5)          # load the encoder, cache the warm query
    llm.invoke(warm)
    strong.invoke(warm)

    new = lambda tag: [f"Question {tag}-{i}: how does topic {i * 7919 % 1000} work?" for i in range(n)]  # noqa: E731
    q_dec, q_inv = new("d"), new("i")
    res = {
        "decision_new_query_us": median_us(lambda i: router.route([q_dec[i]], threshold=0.5), n),
        "decision_cached_query_us": median_us(lambda i: router.route([warm], threshold=0.5), n),
        "direct_invoke_us": median_us(lambda i: strong.invoke(warm), n),
        "routed_invoke_cached_query_us": median_us(lambda i: llm.invoke(warm), n),
        "routed_invoke_new_query_us": median_us(lambda i: llm.invoke(q_inv[i]), n),
        "construct_us": median_us(
            lambda i: ChatRouteLLM(strong=strong, weak=weak, router=router, strong_fraction=0.3), n),
    }
    res["overhead_cached_query_us"] = res["routed_invoke_cached_query_us"] - res["direct_invoke_us"]
    res["overhead_new_query_us"] = res["routed_invoke_new_query_us"] - res["direct_invoke_us"]
    res["wrapper_only_us"] = res["overhead_cached_query_us"] - res["decision_cached_query_us"]
    out = {"results": {k: round(v, 1) for k, v in res.items()}, "n": n,
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "platform": platform.platform()},
           "command": "python benchmarks/langchain_overhead.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()}
    for k, v in out["results"].items():
        print(f"{k:32s} {v:12.1f}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
