"""Record a validation figure in an embedded router's model card, leaving its weights untouched.

The card (``README.md``) is re-rendered from ``config.json`` and the file hashes are refreshed,
so the checkpoint still loads::

    python scripts/record_validation.py shared/routellm_core/default_router default
    python scripts/record_validation.py shared/routellm_core/default_router_fast default-fast
    python scripts/record_validation.py shared/routellm_core/nway/default nway-default

The figures come from the benchmarks' JSON (``benchmarks/results/default_variants.json``,
``benchmarks/results/nway_headroom.json`` and ``nway_llmrouter_quality.json``); run those first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"


def _json(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())


def pair_default(variant: str) -> dict[str, Any]:
    """The pair defaults' validation protocol, for one variant of ``default_variants.py``."""
    run = _json("default_variants")
    row = run["results"][variant]
    tasks = [k.split(":", 1)[1] for k in row if k.startswith("unseen:")]
    return {
        "what": "APGR, gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1, on the test splits of "
                "RouterBench's ARC-Challenge, MBPP and Winogrande, each scored by this recipe trained "
                "without that task (leave one task out): the figure candidates for the default are chosen on",
        "leave_one_task_out_apgr": round(row["validation_apgr"], 4),
        "per_task_apgr": {t: round(row[f"unseen:{t}"]["apgr"], 4) for t in tasks},
        "routerbench_test_apgr_all_tasks_trained": round(row["routerbench-test"]["apgr"], 4),
        "command": f"{run['command']} (variant {variant})",
    }


def nway_default() -> dict[str, Any]:
    """The N-way default's recipe on 5 folds of its training split, and its test figures."""
    pool = _json("nway_headroom")["pools"]["llmrouter"]
    row = pool["rows"]["quality"]
    test = _json("nway_llmrouter_quality")
    share = (test["aiq"] - test["random_aiq"]) / (test["oracle_aiq"] - test["random_aiq"])
    return {
        "what": "headroom share, (AIQ - random choice AIQ) / (oracle AIQ - random choice AIQ), of the "
                "quality recipe on 5 folds of LLMRouter's train split (decontaminated against the test "
                "split only), and of this checkpoint on the test split",
        "validation_headroom_share_5_folds": round(row["validation_headroom"], 4),
        "validation_command": "python benchmarks/nway_headroom.py",
        "test_aiq": round(test["aiq"], 4),
        "test_random_choice_aiq": round(test["random_aiq"], 4),
        "test_oracle_aiq": round(test["oracle_aiq"], 4),
        "test_headroom_share": round(share, 4),
        "test_raw_sweep_never_below_random": test["raw_above_random_everywhere"],
        "test_command": "bash benchmarks/nway_routing.sh",
    }


FIGURES = {
    "default": lambda: pair_default("sw"),
    "default-fast": lambda: pair_default("sw-fast"),
    "nway-default": nway_default,
}


def update_card(checkpoint: Path, changes: dict[str, Any]) -> None:
    """Set ``changes`` in the card of ``checkpoint``; weights and other files stay as they are."""
    from routellm_core.checkpoints import CARD_NAME, CONFIG_NAME, render_card

    config = json.loads((checkpoint / CONFIG_NAME).read_text())
    config["card"].update(changes)
    (checkpoint / CARD_NAME).write_text(render_card(config["router_type"], config["card"], config))
    config["files"] = {
        name: hashlib.sha256((checkpoint / name).read_bytes()).hexdigest() for name in config["files"]
    }
    (checkpoint / CONFIG_NAME).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("figures", choices=sorted(FIGURES))
    args = ap.parse_args()
    update_card(args.checkpoint, {"validation": FIGURES[args.figures]()})
    print(f"recorded {args.figures} validation in {args.checkpoint}")


if __name__ == "__main__":
    main()
