"""Improve the router on your own traffic, offline: label prompts with local models and an LLM
judge, update the default router with the labels, and see the routes change.

Runs on the two local GGUF models of the quickstart: Qwen2.5-Coder-1.5B-Instruct answers as the
strong model and judges, SmolLM2-135M-Instruct answers as the weak one (both greedy, llama.cpp
on the CPU). The judge uses MT-Bench's published pairwise prompt (FastChat's
``judge_prompts.jsonl``; give its path with ``--judge-prompts`` or ``$ROUTELLM_JUDGE_PROMPTS``)
and judges both answer orders, as ``routellm label`` does::

    python examples/learn_from_traffic.py --judge-prompts "$ROUTELLM_DATA_DIR/fastchat_mtbench_refs/judge_prompts.jsonl"

The same three steps from the command line: ``routellm label``, ``routellm train --init
default``, ``routellm promote`` (see docs/learning.md). On a 2-core CPU the labelling of 30
prompts takes several minutes: most of it is the judge reading two answers, twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The user's traffic: coding and maths questions where the bigger model should help, and chat
# where the tiny one is enough. Written for this example; none is from an evaluation set.
PROMPTS = [
    "Write a Python function that checks whether a string is a palindrome.",
    "Write a Python function that returns the n-th Fibonacci number iteratively.",
    "Write a SQL query that counts orders per customer in a table orders(customer_id, id).",
    "Write a Python function that merges two sorted lists into one sorted list.",
    "Explain what a Python list comprehension is, with one example.",
    "Write a Python function that counts the vowels in a string.",
    "What is 17 multiplied by 23?",
    "Write a Python function that reverses the words of a sentence.",
    "Write a bash command that counts the lines of every .py file in a folder.",
    "Write a Python function that removes duplicates from a list and keeps the order.",
    "What is the derivative of x squared plus 3x?",
    "Write a JavaScript function that returns the largest number in an array.",
    "Write a Python function that tests whether a number is prime.",
    "Write a Python class for a stack with push and pop.",
    "Convert 100 degrees Fahrenheit to Celsius and show the formula.",
    "Say hello to my friend Anna.",
    "Wish me a good morning.",
    "Thank you for your help today!",
    "Tell me you are happy to see me.",
    "Say goodbye in a friendly way.",
    "Reply with a short greeting.",
    "How are you doing today?",
    "Send my best wishes to the team.",
    "Say something nice about Mondays.",
    "Say hi to my cat Tom.",
    "Wish my sister a happy birthday.",
    "Tell me to have a nice weekend.",
    "Give me a one-line compliment.",
    "Say welcome to a new colleague.",
    "Cheer me up in one sentence.",
]
NEW = ["Write a Python function that sums the digits of an integer.", "Say good night to my brother."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judge-prompts", default=os.environ.get("ROUTELLM_JUDGE_PROMPTS"),
                        help="FastChat's judge_prompts.jsonl (default $ROUTELLM_JUDGE_PROMPTS)")
    parser.add_argument("--store", help="traffic store to write (default: a temporary SQLite file)")
    parser.add_argument("--limit", type=int, default=len(PROMPTS), help="label only the first N prompts")
    parser.add_argument("--max-tokens", type=int, default=96, help="answer length of both models")
    parser.add_argument("--threads", type=int, help="llama.cpp threads")
    parser.add_argument("--json", help="also write the figures printed here to this JSON file")
    args = parser.parse_args(argv)

    from local_model_files import resolve_model_path

    from langchain_routellm.local import ChatLocalGGUF
    from routellm_core.checkpoints import load_router
    from routellm_core.learning import TrafficStore, label
    from routellm_core.local_models import LocalChatModel
    from routellm_core.routers.battles import balanced_weight
    from routellm_core.routing import Pool, shared_router

    strong_file = LocalChatModel(resolve_model_path("qwen2.5-coder-1.5b-instruct"), n_threads=args.threads)
    weak_file = LocalChatModel(resolve_model_path("smollm2-135m-instruct"), n_threads=args.threads)
    strong = ChatLocalGGUF(client=strong_file, max_tokens=args.max_tokens)
    weak = ChatLocalGGUF(client=weak_file, max_tokens=args.max_tokens)
    judge = ChatLocalGGUF(client=strong_file, max_tokens=320, model_name=f"{strong_file.name}-judge")
    store = TrafficStore(args.store or Path(tempfile.mkdtemp()) / "traffic.db")

    prompts = PROMPTS[: args.limit]
    print(f"labelling {len(prompts)} prompts: {strong.model_name} vs {weak.model_name}, judged by "
          f"{judge.model_name} (both answer orders)", flush=True)
    local = {m.model_name: (0.0, 0.0) for m in (strong, weak, judge)}  # local models: no price per token
    report = label(prompts, strong=strong, weak=weak, judge=judge, store=store, judge_prompts=args.judge_prompts,
                   prices=local, concurrency=1, progress=sys.stderr.isatty())
    print(report.summary())
    battles = store.training_battles()
    print("judged:", battles["winner"].value_counts().to_dict())

    # The default router was trained on other models' battles: the user's pair is mapped onto
    # the pair it knows, and the labelled battles are added to it (routellm train --init default).
    aliases = {strong.model_name: "gpt-4-1106-preview", weak.model_name: "mixtral-8x7b-instruct-v0.1"}
    default = shared_router("default")
    updated = load_router("default")  # a copy of its own, to update
    updated.set_params(aliases=aliases)
    weight = balanced_weight(updated.n_battles_, len(battles))  # as `routellm train --init` weighs them
    updated.partial_fit(battles, sample_weight=[weight] * len(battles))

    before = Pool.pair(default, strong=strong.model_name, weak=weak.model_name, strong_fraction=0.5)
    after = Pool.pair(updated, strong=strong.model_name, weak=weak.model_name, aliases=aliases, threshold=0.5)
    rates_before, rates_after = before.win_rates(NEW), after.win_rates(NEW)
    print(f"\n{'query':<62}{'before':>8}{'after':>8}")
    for text, b, a in zip(NEW, rates_before, rates_after):
        print(f"{text[:60]:<62}{b:>8.3f}{a:>8.3f}")
    spread_before = float(rates_before[0] - rates_before[1])
    spread_after = float(rates_after[0] - rates_after[1])
    print(f"\nwin-rate gap between the coding and the chat query: {spread_before:.3f} before, {spread_after:.3f} "
          "after the update")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "labelled": report.labelled, "unparsable": report.unparsable, "failed": report.failed,
            "judged": {str(k): int(v) for k, v in battles["winner"].value_counts().items()},
            "queries": NEW, "win_rates_before": [float(r) for r in rates_before],
            "win_rates_after": [float(r) for r in rates_after]}, indent=1) + "\n")
    sys.stdout.flush()  # llama.cpp's native teardown may end the process before Python flushes a piped stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
