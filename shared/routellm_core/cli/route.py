"""``routellm route``: score queries and print the routing decision of a strong/weak router."""

from __future__ import annotations

import argparse
import json
from typing import Any

from routellm_core.cli.common import add_router_options, load_command_router

__all__ = ["add_route_parser", "cmd_route"]


def cmd_route(args: argparse.Namespace) -> int:
    """Print the win rate, threshold and decision of each query (one JSON object each with ``--json``)."""
    router = load_command_router(args)
    if args.threshold is None and args.strong_fraction is None:
        args.strong_fraction = 0.5 if router.calibration_ is not None else None
        args.threshold = 0.5 if router.calibration_ is None else None
    decisions = router.route(
        args.text, threshold=args.threshold, strong_fraction=args.strong_fraction,
        strong_model=args.strong, weak_model=args.weak,
    )
    for text, d in zip(args.text, decisions):
        if args.json:
            print(json.dumps({"text": text, **d.__dict__}))
        else:
            how = f"strong_fraction={args.strong_fraction}" if args.strong_fraction is not None else "threshold"
            print(f"router:    {d.router} ({args.router})")
            print(f"query:     {text[:100]}")
            print(f"win rate:  {d.win_rate:.4f}  (P[{router.resolve_model(args.strong or router.strong_model)} beats "
                  f"{router.resolve_model(args.weak or router.weak_model)}])")
            print(f"threshold: {d.threshold:.4f}  ({how})")
            print(f"decision:  {d.route} -> {d.model}")
    return 0


def add_route_parser(sub: Any) -> None:
    """Add ``route`` to the ``routellm`` sub-command parser ``sub``."""
    p = sub.add_parser("route", help="score queries and print the routing decision")
    p.add_argument("text", nargs="+")
    add_router_options(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float)
    g.add_argument("--strong-fraction", type=float)
    p.add_argument("--strong", help="strong model name (default: the router's)")
    p.add_argument("--weak", help="weak model name (default: the router's)")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.set_defaults(func=cmd_route)
