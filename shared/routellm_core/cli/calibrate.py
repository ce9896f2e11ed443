"""``routellm calibrate``: the threshold for a target share of strong calls, on your prompts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from routellm_core.cli.common import add_router_options, load_command_router
from routellm_core.cli.engine import add_engine_options, score_many

__all__ = ["add_calibrate_parser", "cmd_calibrate"]


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Print the threshold of each ``--strong-fraction`` on ``--prompts``; store the table with ``--write``."""
    from routellm_core.calibration import CalibrationTable
    from routellm_core.checkpoints import save_router

    router = load_command_router(args)
    rates = score_many(args, args.prompts, router)["win_rate"].to_numpy()
    table = router.calibration_ = CalibrationTable.from_win_rates(rates, source=str(args.prompts))
    for f in args.strong_fraction:
        t = table.threshold_for(f)
        share = float((rates >= t).mean())
        print(f"strong_fraction {f:.2f} -> threshold {t:.5f} (share on these {len(rates)} prompts: {share:.3f})")
    if args.write:
        if not Path(args.router).is_dir():
            raise SystemExit(f"--write needs a local checkpoint directory, got {args.router!r}")
        save_router(router, args.router)
        print(f"wrote the calibration table into {args.router}")
    return 0


def add_calibrate_parser(sub: Any) -> None:
    """Add ``calibrate`` to the ``routellm`` sub-command parser ``sub``."""
    p = sub.add_parser("calibrate", help="threshold for a target share of strong calls")
    add_router_options(p)
    p.add_argument("--prompts", required=True, help="file of unlabelled prompts")
    p.add_argument("--strong-fraction", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 0.8])
    p.add_argument("--write", action="store_true", help="store the table in the checkpoint")
    add_engine_options(p)
    p.set_defaults(func=cmd_calibrate)
