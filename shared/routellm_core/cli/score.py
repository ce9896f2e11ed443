"""``routellm score``: score (and route) every prompt of a file, locally or on Ray."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from routellm_core.cli.common import add_router_options, load_command_router
from routellm_core.cli.engine import add_engine_options, score_many

__all__ = ["add_score_parser", "cmd_score"]


def cmd_score(args: argparse.Namespace) -> int:
    """Score the prompts of ``--prompts``, route them at ``--threshold`` / ``--strong-fraction``, write ``--out``."""
    if args.out and Path(args.out).suffix.lower() not in (".parquet", ".jsonl", ".csv"):
        raise ValueError(f"--out must end in .parquet, .jsonl or .csv, got {args.out!r}")
    router = load_command_router(args)
    threshold = None
    if args.threshold is not None or args.strong_fraction is not None:
        threshold = router.resolve_threshold(args.threshold, args.strong_fraction)
    strong, weak = router.resolve_pair(args.strong, args.weak)
    df = score_many(args, args.prompts, router, strong_model=strong, weak_model=weak)
    summary = f"scored {len(df)} prompts from {args.prompts} ({args.engine}"
    summary += f", {args.num_workers} workers)" if args.engine == "ray" else ")"
    print(summary + f"; win rate mean {df.win_rate.mean():.4f}, min {df.win_rate.min():.4f}, "
          f"max {df.win_rate.max():.4f}")
    if threshold is not None:
        strong_rows = df.win_rate >= threshold
        df["route"] = strong_rows.map({True: "strong", False: "weak"})
        df["model"] = strong_rows.map({True: strong, False: weak})
        print(f"threshold {threshold:.5f}: {int(strong_rows.sum())} strong ({strong}), "
              f"{int((~strong_rows).sum())} weak ({weak}); strong share {strong_rows.mean():.3f}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        suffix = out.suffix.lower()
        if suffix == ".parquet":
            df.to_parquet(out, index=False)
        elif suffix == ".csv":
            df.to_csv(out, index=False)
        else:
            df.to_json(out, orient="records", lines=True, force_ascii=False)
        print(f"wrote {out}")
    return 0


def add_score_parser(sub: Any) -> None:
    """Add ``score`` to the ``routellm`` sub-command parser ``sub``."""
    p = sub.add_parser("score", help="score (and route) every prompt of a file, locally or on Ray")
    add_router_options(p)
    p.add_argument("--prompts", required=True,
                   help="prompt file: .parquet, .jsonl, .json, .csv or plain text")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, help="add the route and model of each prompt")
    g.add_argument("--strong-fraction", type=float, help="as --threshold, from the calibration table")
    p.add_argument("--strong", help="strong model name (default: the router's)")
    p.add_argument("--weak", help="weak model name (default: the router's)")
    p.add_argument("--out", help="write one row per prompt (.parquet, .jsonl or .csv)")
    add_engine_options(p)
    p.set_defaults(func=cmd_score)
