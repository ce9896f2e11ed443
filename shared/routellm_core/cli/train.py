"""``routellm train``: train a strong/weak router (or update one with ``--init``) and write a checkpoint."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from routellm_core.cli.common import (
    ENCODER_HELP,
    add_common_options,
    command_encoder,
    command_line,
    eval_data_dir,
    load_for_command,
)
from routellm_core.cli.params import parse_aliases, parse_params
from routellm_core.training.pairs import training_pair

__all__ = ["FEW_LABELS", "RESERVED_PARAMS", "add_train_parser", "cmd_train"]

FEW_LABELS = 100  # below this, the learning curves (benchmarks/learning_curve.py) dip under the default

# Router parameters with an option of their own.
RESERVED_PARAMS = {
    "strong_model": "--strong", "weak_model": "--weak", "aliases": "--alias",
    "encoder": "--encoder", "seed": "--seed",
}


def cmd_train(args: argparse.Namespace) -> int:
    """Train ``--router`` on ``--data``, calibrate it, and write the checkpoint and its card to ``--out``."""
    from routellm_core.checkpoints import save_router
    from routellm_core.routers import get_router_class
    from routellm_core.training import load_training_battles, train_router

    params = parse_params(args.param, get_router_class(args.router), reserved=RESERVED_PARAMS)
    aliases = _canonical_aliases(parse_aliases(args.alias))
    battles, _ = load_training_battles(args.data, aliases=aliases or None)
    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    init = None
    if args.init:
        from routellm_core.checkpoints import load_router

        init = load_for_command(load_router, args.init, args)
        if init.router_type != args.router:
            raise ValueError(f"--init {args.init} is a {init.router_type} router, not {args.router}")
        _check_alias_targets(aliases, sorted(set(models) | set(init.known_models or [])))
        strong, weak, how = args.strong or init.strong_model, args.weak or init.weak_model, f"from {args.init}"
        if len(battles) < FEW_LABELS:
            print(f"warning: {len(battles)} labelled battles weigh as much as the router's own evidence; below "
                  f"about {FEW_LABELS} the update can route worse than {args.init} (see the learning curves in "
                  "docs/learning.md): check it with routellm promote before you use it", file=sys.stderr)
        params.update({k: v for k, v in (("strong_model", args.strong), ("weak_model", args.weak)) if v})
    else:
        _check_alias_targets(aliases, models)
        strong, weak, how = training_pair(battles, args.strong, args.weak, aliases)
        params.update(strong_model=strong, weak_model=weak, encoder=command_encoder(args))
    print(f"strong {strong}, weak {weak} ({how})")
    prompts = None
    if args.calibrate:
        from routellm_core.data.prompts import read_prompts
        from routellm_core.training import expand_spec

        prompts = [p for f in args.calibrate for p in read_prompts(expand_spec(f))]
    decontaminate = not args.no_decontaminate
    if decontaminate and not args.eval_data_dir and all(s.startswith("store:") for s in args.data):
        from routellm_core.data.specs import default_data_dir

        if default_data_dir() is None:  # the user's own traffic, and no benchmark copies to check it against
            decontaminate = False
            print("not decontaminated: the data is your traffic store and no evaluation sets are set "
                  "(--eval-data-dir or ROUTELLM_DATA_DIR); hold queries out for promote with --holdout")
    result = train_router(
        args.router, args.data, params=params, aliases=aliases or None,
        eval_data_dir=eval_data_dir(args.eval_data_dir) if decontaminate else None,
        decontaminate=decontaminate, calibration_prompts=prompts,
        calibration_source=", ".join(args.calibrate or []), seed=args.seed, holdout=args.holdout, init=init,
        show_progress=not args.quiet, command=command_line(),
    )
    card = result.card
    if args.eval_benchmarks:
        card["metrics"] = _card_metrics(result.router, args)
    save_router(result.router, args.out, card=card)
    print(f"wrote {args.router} router to {args.out}: {card['battles']} battles, "
          f"{card['queries']} queries, {len(card['models'])} models")
    if "decontamination" in card:
        print(card["decontamination"])
    cal = card["calibration"]
    line = f"calibrated on {cal['n_prompts']} {cal['prompts']} of {cal['source']}"
    if "strong_share_at_0.5" in cal:
        share = cal["strong_share_at_0.5"]
        line += (f"; strong_fraction 0.5 sends {share['old_table']:.0%} of them strong with the table of "
                 f"{args.init}, {share['new_table']:.0%} with the new one")
    print(line)
    off = {f: got for f, got in cal["strong_share"].items() if abs(got - float(f)) > 0.1}
    if off:
        print(f"warning: on these prompts strong_fraction {', '.join(f'{f} sends {g:.0%}' for f, g in off.items())} "
              "strong: many of them share one win rate, so no threshold splits them; calibrate on more varied "
              "prompts (routellm calibrate) or train on more labels", file=sys.stderr)
    return 0


def _canonical_aliases(aliases: Mapping[str, str]) -> dict[str, str]:
    from routellm_core.data.schema import canonical_model_name

    return {name: canonical_model_name(known) for name, known in aliases.items()}


def _check_alias_targets(aliases: Mapping[str, str], models: list[str]) -> None:
    for name, known in aliases.items():
        if known not in models:
            raise ValueError(
                f"--alias {name}={known}: {known!r} is not a model of the training data; its models: "
                f"{', '.join(models)}"
            )


def _card_metrics(router: Any, args: argparse.Namespace) -> dict[str, Any]:
    from routellm_core.evaluation.benchmarks import load_benchmark
    from routellm_core.evaluation.cross_validation import evaluate_router

    metrics = {}
    for name in args.eval_benchmarks:
        bench = load_benchmark(name, eval_data_dir(args.eval_data_dir))
        res = evaluate_router(router, bench, show_progress=not args.quiet)
        metrics[name] = {k: res[k] for k in ("n_queries", "apgr", "cpt50", "cpt80", "random_apgr")}
        print(f"{name}: APGR {res['apgr']:.3f} (random {res['random_apgr']:.3f})")
    return metrics


def add_train_parser(sub: Any) -> None:
    """Add ``train`` to the ``routellm`` sub-command parser ``sub``."""
    p = sub.add_parser("train", help="train a router and write a checkpoint")
    p.add_argument("--router", required=True,
                   help="router type: random, sw_ranking, mf, bert, causal_llm")
    p.add_argument("--data", action="append", required=True, metavar="SPEC",
                   help="KIND:PATH with KIND in arena, gold, judge, jsonl, or store:PATH_OR_URL (a traffic "
                        "store); {data} = the data dir")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a constructor parameter of the router, e.g. epochs=30 (repeatable)")
    p.add_argument("--strong", help="strong model (default: read off data of exactly two models)")
    p.add_argument("--weak", help="weak model (default: the other model of the data)")
    p.add_argument("--alias", action="append", default=[], metavar="NAME=KNOWN",
                   help="another name of a model of the data, stored in the checkpoint (repeatable)")
    p.add_argument("--encoder", help=ENCODER_HELP)
    p.add_argument("--eval-data-dir", help="evaluation sets to decontaminate against "
                   "(default {data}/routellm_evals)")
    p.add_argument("--no-decontaminate", action="store_true")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="update this router with the data instead of training anew: sw_ranking adds the battles "
                        "(seconds), mf fine-tunes from its weights ('default' is the embedded router)")
    p.add_argument("--holdout", type=float, metavar="FRACTION",
                   help="leave out this fraction of the queries (by a hash with --seed) for routellm promote")
    p.add_argument("--calibrate", action="append", metavar="PROMPTS",
                   help="prompt file(s) for the calibration table")
    p.add_argument("--eval-benchmarks", nargs="*", default=[], help="benchmarks to put in the card")
    add_common_options(p)
    p.set_defaults(func=cmd_train)
