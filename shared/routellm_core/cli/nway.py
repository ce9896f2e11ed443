"""``routellm nway train | eval | route``: N-way routing from the command line.

Examples::

    routellm nway train --router quality --out runs/nway-llmrouter \\
        --data "gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__train.json" \\
        --holdout "gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__test.json" \\
        --prices "{data}/llmrouter_9model_gold/example_data__llm_candidates__default_llm.json"
    routellm nway eval --router runs/nway-llmrouter \\
        --data "gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__test.json" --json out.json --plot out.png
    routellm nway route "Write a haiku about tea." --router default --lambda cost=0.2
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from routellm_core.cli.common import (
    ENCODER_HELP,
    add_common_options,
    command_encoder,
    command_line,
    eval_data_dir,
    load_command_router,
    write_json,
)
from routellm_core.cli.params import parse_params

__all__ = ["add_nway_parser", "cmd_nway_eval", "cmd_nway_route", "cmd_nway_train"]


def _lambdas(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--lambda expects NAME=WEIGHT, got {pair!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(
                f"--lambda {pair!r}: the weight must be a number"
            ) from None
    return out


def cmd_nway_train(args: argparse.Namespace) -> int:
    """Train an N-way router on score matrices and write the checkpoint and its card to ``--out``."""
    from routellm_core.checkpoints import save_router
    from routellm_core.nway import get_nway_router_class
    from routellm_core.nway.training import train_nway_router

    reserved = {"encoder": "--encoder", "seed": "--seed"}
    params = parse_params(args.param, get_nway_router_class(args.router), reserved=reserved)
    params.update(seed=args.seed, encoder=command_encoder(args))
    result = train_nway_router(
        args.router,
        args.data,
        params=params,
        holdout_specs=args.holdout or [],
        eval_data_dir=None if args.no_decontaminate else eval_data_dir(args.eval_data_dir),
        decontaminate=not args.no_decontaminate,
        prices=args.prices or None,
        show_progress=not args.quiet,
        command=command_line(),
    )
    save_router(result.router, args.out, card=result.card)
    card = result.card
    print(
        f"wrote {args.router} N-way router to {args.out}: {card['queries']} queries, "
        f"{len(card['models'])} models, constraints {[c['name'] for c in card['constraints']]}"
    )
    if "decontamination" in card:
        print(card["decontamination"])
    return 0


def cmd_nway_eval(args: argparse.Namespace) -> int:
    """Print the quality-cost curve's AIQ against random choice, the oracle and the single models."""
    from routellm_core.nway.training import evaluate_nway_router, load_score_matrix

    router = load_command_router(args, nway=True)
    matrix, _ = load_score_matrix(args.data)
    result = evaluate_nway_router(router, matrix, cost=args.cost)
    result["router_spec"] = args.router
    result["data_specs"] = list(args.data)
    best = result["best_single_model"]
    print(
        f"{result['data']}: {result['n_queries']} queries, {len(result['models'])} models; "
        f"cost in {result['cost_unit']}"
    )
    print(f"{'':<30}{'avg cost':>12}{'quality':>10}")
    for name, p in sorted(
        result["single_models"].items(), key=lambda kv: kv[1]["cost"]
    ):
        print(f"{name:<30}{p['cost']:>12.6g}{p['quality']:>10.4f}")
    print(
        f"{'oracle':<30}{result['oracle']['cost']:>12.6g}{result['oracle']['quality']:>10.4f}"
    )
    print(
        f"AIQ: {router.name} {result['aiq']:.4f}, random choice {result['random_aiq']:.4f}, "
        f"oracle {result['oracle_aiq']:.4f}"
    )
    print(
        f"frontier above random everywhere: {result['above_random_everywhere']} "
        f"(smallest gap {result['min_margin_vs_random']:+.4f} at cost {result['min_margin_cost']:.6g}); "
        f"every raw point: {result['raw_above_random_everywhere']} "
        f"(smallest gap {result['raw_min_margin_vs_random']:+.4f})"
    )
    at = result["cost_at_best_single_quality"]
    print(
        f"best single model {best['name']} ({best['quality']:.4f} at {best['cost']:.6g}); the router "
        + (
            f"reaches it at {at:.6g} ({100 * (1 - at / best['cost']):.1f}% cheaper)"
            if at is not None
            else "never reaches it"
        )
    )
    if args.json:
        write_json(args.json, result)
    if args.plot:
        from routellm_core.nway.evaluation import plot_nway

        plot_nway(result, args.plot, log_cost=args.log_cost)
        print(f"wrote {args.plot}")
    return 0


def cmd_nway_route(args: argparse.Namespace) -> int:
    """Print each model's score and utility and the chosen model of each query."""
    router = load_command_router(args, nway=True)
    models = (
        [m.strip() for m in args.models.split(",") if m.strip()]
        if args.models
        else None
    )
    decisions = router.route(args.text, lambdas=_lambdas(args.lambdas), models=models)
    for text, d in zip(args.text, decisions):
        if args.json:
            print(json.dumps({"text": text, **d.as_metadata()}))
            continue
        print(f"router:   {d.router} ({args.router})")
        print(f"query:    {text[:100]}")
        print(f"lambdas:  {d.lambdas or 'none (best predicted quality)'}")
        for m in sorted(d.scores, key=lambda k: -d.utilities[k]):
            mark = "->" if m == d.model else "  "
            print(
                f"  {mark} {m:<34} score {d.scores[m]:.4f}  utility {d.utilities[m]:+.4f}"
            )
        print(f"decision: {d.model}")
    return 0


def add_nway_parser(sub: Any) -> None:
    """Add ``nway train | eval | route`` to the ``routellm`` sub-command parser ``sub``."""
    nway = sub.add_parser(
        "nway", help="N-way routing among several models (Tryage, ZOOTER)"
    )
    nsub = nway.add_subparsers(dest="nway_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--encoder", help=ENCODER_HELP)
        add_common_options(p)

    p = nsub.add_parser(
        "train", help="train an N-way router on score matrices and write a checkpoint"
    )
    p.add_argument("--router", required=True, choices=["quality", "zooter"])
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="SPEC",
        help="gold:PATH or judge:PATH?instructions=FILE (one model pool); {data} = $ROUTELLM_DATA_DIR",
    )
    p.add_argument(
        "--holdout",
        action="append",
        metavar="SPEC",
        help="test split(s) whose queries (and near repeats) are dropped from training",
    )
    p.add_argument(
        "--prices",
        help="price file: {model: [in, out]} or LLMRouter's candidates JSON "
        "(default: the data's mean per-query cost, if recorded)",
    )
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a constructor parameter of the router, e.g. epochs=50 (repeatable)",
    )
    p.add_argument(
        "--eval-data-dir",
        help="RouteLLM's evaluation sets, also held out (default {data}/routellm_evals)",
    )
    p.add_argument("--no-decontaminate", action="store_true")
    common(p)
    p.set_defaults(func=cmd_nway_train)

    p = nsub.add_parser(
        "eval", help="quality-cost curve, AIQ and baselines on a test score matrix"
    )
    p.add_argument(
        "--router", default="default", help="'default' or an N-way checkpoint directory"
    )
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="SPEC",
        help="test split(s), gold:PATH",
    )
    p.add_argument(
        "--cost",
        default="cost",
        help="the router's constraint to sweep (default 'cost')",
    )
    p.add_argument("--json", help="write the results as JSON")
    p.add_argument("--plot", help="write the quality-cost plot (PNG)")
    p.add_argument(
        "--log-cost",
        action="store_true",
        help="log scale for the cost axis of the plot",
    )
    common(p)
    p.set_defaults(func=cmd_nway_eval)

    p = nsub.add_parser("route", help="score queries and print the N-way decision")
    p.add_argument("text", nargs="+")
    p.add_argument(
        "--router", default="default", help="'default' or an N-way checkpoint directory"
    )
    p.add_argument(
        "--lambda",
        dest="lambdas",
        action="append",
        default=[],
        metavar="NAME=WEIGHT",
        help="weight of a constraint, e.g. cost=0.2 (repeatable)",
    )
    p.add_argument(
        "--models", help="comma-separated subset of the router's models to route among"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    common(p)
    p.set_defaults(func=cmd_nway_route)
