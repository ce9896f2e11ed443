"""Score prompts with the embedded default router, then calibrate it on your own traffic.

    python examples/route_and_calibrate.py [PROMPTS_FILE]

PROMPTS_FILE: .jsonl / .json / .csv / .txt of your prompts (see routellm_core.data.read_prompts);
without it, a few built-in prompts stand in for your traffic.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from routellm_core import load_router  # noqa: E402
from routellm_core.data import read_prompts  # noqa: E402

TRAFFIC = [
    "hi!", "Thanks, that helped.", "What is the capital of France?",
    "Write a Python function that merges two sorted lists.",
    "Prove that the square root of 2 is irrational.",
    "Summarise the causes of the French Revolution in three bullet points.",
    "Explain the difference between TCP and UDP.",
    "Solve for x: 3x + 7 = 22.",
]


def main() -> None:
    router = load_router("default")
    prompts = read_prompts(sys.argv[1]) if len(sys.argv) > 1 else TRAFFIC

    print("With the shipped calibration (Arena-Hard prompts), strong_fraction=0.5:")
    for d, p in zip(router.route(prompts, strong_fraction=0.5), prompts):
        print(f"  {d.route:<6} win rate {d.win_rate:.4f}  {p[:60]}")

    table = router.calibrate(prompts, source="my traffic")
    t = table.threshold_for(0.25)
    strong = sum(d.route == "strong" for d in router.route(prompts, threshold=t))
    print(f"\nCalibrated on {len(prompts)} prompts of your own: strong_fraction=0.25 -> "
          f"threshold {t:.4f}; {strong} of {len(prompts)} go strong")


if __name__ == "__main__":
    main()
