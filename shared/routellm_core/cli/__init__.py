"""``routellm route | score | train | calibrate | eval | label | promote | learn | prune | nway``: the command line
of the scoring core.

Examples::

    routellm route "Prove that there are infinitely many primes."
    routellm score --prompts prompts.parquet --strong-fraction 0.3 --out routed.parquet --engine ray
    routellm train --router mf --out runs/mf \\
        --data "gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__train.json"
    routellm calibrate --router runs/mf --prompts prompts.jsonl --strong-fraction 0.3 --write
    routellm eval --router default --benchmark mmlu --data-dir "$ROUTELLM_DATA_DIR/routellm_evals" --cv 5
    routellm nway route "Write a haiku about tea." --lambda cost=0.2     # N-way: see routellm_core.cli.nway
"""
from __future__ import annotations

import argparse
import sys

from routellm_core.cli.calibrate import add_calibrate_parser, cmd_calibrate
from routellm_core.cli.common import (
    ENCODER_HELP,
    add_common_options,
    cache_dir,
    command_line,
    eval_data_dir,
    load_for_command,
    package_version,
    query_encoder,
)
from routellm_core.cli.evaluate import add_eval_parser, cmd_eval
from routellm_core.cli.learning import add_learning_parsers
from routellm_core.cli.nway import add_nway_parser
from routellm_core.cli.params import parse_aliases, parse_params
from routellm_core.cli.parser import SuggestingParser, describe_subcommands
from routellm_core.cli.quiet import quiet_libraries
from routellm_core.cli.route import add_route_parser, cmd_route
from routellm_core.cli.score import add_score_parser, cmd_score
from routellm_core.cli.train import FEW_LABELS, RESERVED_PARAMS, add_train_parser, cmd_train
from routellm_core.training.pairs import training_pair  # re-exported: it used to live here

__all__ = [
    "ENCODER_HELP",
    "FEW_LABELS",
    "RESERVED_PARAMS",
    "SuggestingParser",
    "add_common_options",
    "build_parser",
    "cache_dir",
    "cmd_calibrate",
    "cmd_eval",
    "cmd_route",
    "cmd_score",
    "cmd_train",
    "command_line",
    "describe_subcommands",
    "eval_data_dir",
    "load_for_command",
    "main",
    "package_version",
    "parse_aliases",
    "parse_params",
    "query_encoder",
    "quiet_libraries",
    "training_pair",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``routellm`` parser: every command, with its options and help.

    Example:
        >>> build_parser().parse_args(["route", "hello", "--threshold", "0.5"]).router
        'default'
    """
    parser = SuggestingParser(prog="routellm", description="Learned LLM routing (RouteLLM).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_route_parser(sub)
    add_score_parser(sub)
    add_train_parser(sub)
    add_calibrate_parser(sub)
    add_eval_parser(sub)
    add_learning_parsers(sub)
    add_nway_parser(sub)
    return describe_subcommands(parser)


def main(argv: list[str] | None = None) -> int:
    """Run ``routellm`` with ``argv`` (default ``sys.argv[1:]``) and return its exit status: 0 on
    success, 1 when a command reports a failure (labels that failed, a candidate not promoted), 2 on
    bad input."""
    args = build_parser().parse_args(argv)
    try:
        with quiet_libraries():
            return int(args.func(args) or 0)
    except (ValueError, TypeError, KeyError, OSError, RuntimeError, ImportError) as exc:
        print(f"routellm {args.command}: error: {exc}", file=sys.stderr)
        return 2
