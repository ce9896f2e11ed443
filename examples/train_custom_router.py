"""Train a router on your own preference labels, save it, load it back, route with it.

    python examples/train_custom_router.py [BATTLES.jsonl] [OUT_DIR]

BATTLES.jsonl: one JSON object a line with query, model_a, model_b, winner (a | b | tie),
source. Without it, a small labelled set stands in for your data: the strong model wins on
maths and code, the two tie on small talk.
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from routellm_core import load_router, save_router  # noqa: E402
from routellm_core.data import load_jsonl_battles, make_battles  # noqa: E402
from routellm_core.routers import SWRankingRouter  # noqa: E402

HARD = ["Prove that there are infinitely many primes.", "Implement quicksort in Rust.",
        "Compute the integral of x^2 * sin(x).", "Find the eigenvalues of [[2, 1], [1, 2]].",
        "Write a SQL query for the second highest salary.", "Show that 2^n > n^2 for n > 4."]
EASY = ["hi!", "Thanks a lot.", "Good morning!", "Say hello to Anna.", "How are you?", "Bye!"]


def example_battles():
    rows = [{"query": q, "model_a": "gpt-4o", "model_b": "gpt-4o-mini", "winner": "a", "source": "example"}
            for q in HARD]
    rows += [{"query": q, "model_a": "gpt-4o", "model_b": "gpt-4o-mini", "winner": "tie", "source": "example"}
             for q in EASY]
    return make_battles(rows)


def main() -> None:
    battles = load_jsonl_battles(sys.argv[1]) if len(sys.argv) > 1 else example_battles()
    out = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="my-router-")
    router = SWRankingRouter(strong_model="gpt-4o", weak_model="gpt-4o-mini", n_tiers=2)
    router.fit(battles)
    router.calibrate(list(battles["query"].unique()), source="training queries")
    card = {"description": "example router", "data": [{"spec": "example", "battles": len(battles)}]}
    save_router(router, out, card=card)

    loaded = load_router(out)
    tests = ["Prove that e is irrational.", "Hello there!"]
    for d, q in zip(loaded.route(tests, strong_fraction=0.5), tests):
        print(f"{d.route:<6} -> {d.model:<12} win rate {d.win_rate:.3f}  {q}")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
