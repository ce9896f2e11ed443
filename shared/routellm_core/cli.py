"""``routellm route | score | train | calibrate | eval | label | promote``: the command line of the scoring core.

Examples::

    routellm route "Prove that there are infinitely many primes."
    routellm score --prompts prompts.parquet --strong-fraction 0.3 --out routed.parquet --engine ray
    routellm train --router mf --out runs/mf \
        --data "gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__train.json"
    routellm calibrate --router runs/mf --prompts prompts.jsonl --strong-fraction 0.3 --write
    routellm eval --router default --benchmark mmlu --data-dir "$ROUTELLM_DATA_DIR/routellm_evals" --cv 5
    routellm nway route "Write a haiku about tea." --lambda cost=0.2     # N-way: see routellm_core.nway.cli
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from routellm_core.cli_common import (
    ENCODER_HELP,
    SuggestingParser,
    add_common_options,
    cache_dir,
    command_line,
    describe_subcommands,
    eval_data_dir,
    load_for_command,
    package_version,
    parse_aliases,
    parse_params,
    query_encoder,
    quiet_libraries,
)
from routellm_core.training.pairs import training_pair  # re-exported: it used to live here

FEW_LABELS = 100  # below this, the learning curves (benchmarks/learning_curve.py) dip under the default

# Router parameters with an option of their own.
RESERVED_PARAMS = {
    "strong_model": "--strong", "weak_model": "--weak", "aliases": "--alias",
    "encoder": "--encoder", "seed": "--seed",
}


def _encoder(args: argparse.Namespace) -> Any:
    return query_encoder(getattr(args, "encoder", None), no_cache=args.no_cache)


def _load(args: argparse.Namespace) -> Any:
    from routellm_core.checkpoints import load_router

    extra = {"seed": args.seed} if args.router == "random" else {}
    return load_for_command(load_router, args.router, args, revision=getattr(args, "revision", None), **extra)


def cmd_route(args: argparse.Namespace) -> int:
    router = _load(args)
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


def cmd_train(args: argparse.Namespace) -> int:
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
        params.update(strong_model=strong, weak_model=weak, encoder=_encoder(args))
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


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the CLI passes to :func:`routellm_core.batch.score_prompts` for the chosen engine."""
    return {
        "engine": args.engine, "num_workers": args.num_workers, "ray_address": args.ray_address,
        "revision": getattr(args, "revision", None), "encoder": getattr(args, "encoder", None),
        "cache_dir": None if args.no_cache else cache_dir(), "batch_size": args.batch_size,
        "show_progress": not args.quiet,
    }


def _score_many(args: argparse.Namespace, prompts: Any, router: Any = None, **kw: Any) -> Any:
    """Win rates of ``prompts``: here with a progress bar (local), or on Ray actors."""
    import pandas as pd

    if args.engine == "local" and router is not None:
        from routellm_core.data.prompts import prompt_texts
        from routellm_core.progress import win_rates_in_chunks

        texts = prompt_texts(prompts)
        rates = win_rates_in_chunks(router, texts, show_progress=not args.quiet, **kw)
        return pd.DataFrame({"prompt": texts, "win_rate": rates})
    from routellm_core.batch import score_prompts

    return score_prompts(prompts, args.router, **_engine_options(args), **kw)


def cmd_score(args: argparse.Namespace) -> int:
    if args.out and Path(args.out).suffix.lower() not in (".parquet", ".jsonl", ".csv"):
        raise ValueError(f"--out must end in .parquet, .jsonl or .csv, got {args.out!r}")
    router = _load(args)
    threshold = None
    if args.threshold is not None or args.strong_fraction is not None:
        threshold = router.resolve_threshold(args.threshold, args.strong_fraction)
    strong, weak = router.resolve_pair(args.strong, args.weak)
    df = _score_many(args, args.prompts, router, strong_model=strong, weak_model=weak)
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    from routellm_core.calibration import CalibrationTable
    from routellm_core.checkpoints import save_router

    router = _load(args)
    rates = _score_many(args, args.prompts, router)["win_rate"].to_numpy()
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


def cmd_eval(args: argparse.Namespace) -> int:
    from routellm_core.evaluation.benchmarks import load_benchmark
    from routellm_core.evaluation.cross_validation import evaluate_router

    if args.engine == "ray" and args.cv:
        raise ValueError("--engine ray scores out of domain; --cv retrains per fold and runs locally")
    router = _load(args)
    bench = _subsample(load_benchmark(args.benchmark, args.data_dir), args.sample, args.seed)
    train = None
    if args.cv and router.router_type != "random":
        from routellm_core.training import load_training_battles

        specs = args.train or [d["spec"] for d in router.card_.get("data", [])]
        if not specs:
            raise SystemExit("--cv retrains the router: pass --train SPEC (its card records none)")
        train, _ = load_training_battles(specs, aliases=router.aliases)
        from routellm_core.data.decontaminate import decontaminate, load_eval_prompts

        # The held-out questions are this benchmark's: no general training query may repeat one.
        train, report = decontaminate(
            train, load_eval_prompts(args.data_dir, benchmarks=[args.benchmark]), encoder=router.encoder_
        )
        print(report)
    if args.engine == "ray":
        from routellm_core.batch import evaluate_benchmark

        result = evaluate_benchmark(args.router, bench, router_name=router.name, **_engine_options(args))
    else:
        result = evaluate_router(router, bench, cv=args.cv, train_battles=train, seed=args.seed,
                                 show_progress=not args.quiet)
    result["router_spec"] = args.router
    result["sample"] = args.sample
    print(f"{bench.name}: {result['n_queries']} queries; strong {result['strong_score']:.2f}, "
          f"weak {result['weak_score']:.2f}" + (f"; {args.cv}-fold in-domain adaptation" if args.cv else ""))
    print(f"{'router':<14}{'APGR':>8}{'CPT(50%)':>10}{'CPT(80%)':>10}")
    fmt = lambda x: f"{100 * x:.1f}%" if x is not None else "n/a"  # noqa: E731
    print(f"{router.name:<14}{result['apgr']:>8.3f}{fmt(result['cpt50']):>10}{fmt(result['cpt80']):>10}")
    print(f"{'random':<14}{result['random_apgr']:>8.3f}{fmt(result['random_cpt50']):>10}{fmt(result['random_cpt80']):>10}")
    rel = result["reliability"]
    print(f"win rates as probabilities: expected calibration error {rel['ece']:.3f} (10 equal-count bins); "
          f"win rates span {rel['win_rate_p05']:.3f}-{rel['win_rate_p95']:.3f} (5th-95th percentile), "
          f"outcomes average {rel['mean_outcome']:.3f} (1 strong better, 0.5 tie, 0 weak better)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        from routellm_core.evaluation.plots import plot_curves

        plot_curves(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _subsample(bench: Any, n: int | None, seed: int) -> Any:
    """A seeded random subset of ``n`` questions of ``bench`` (all of them when ``n`` is None)."""
    import dataclasses

    import numpy as np

    if n is None or n >= len(bench.prompts):
        return bench
    if n < 1:
        raise ValueError(f"--sample must be a positive number of questions, got {n}")
    idx = np.sort(np.random.default_rng(seed).choice(len(bench.prompts), n, replace=False))
    return dataclasses.replace(
        bench, prompts=[bench.prompts[i] for i in idx], strong_scores=bench.strong_scores[idx],
        weak_scores=bench.weak_scores[idx], question_ids=bench.question_ids[idx],
        categories=None if bench.categories is None else bench.categories[idx],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(prog="routellm", description="Learned LLM routing (RouteLLM).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, router: bool = True) -> None:
        if router:
            p.add_argument("--router", default="default",
                           help="'default', 'default-fast', 'random', a checkpoint directory or a Hub repo id")
            p.add_argument("--revision", help="Hub revision to pin")
        add_common_options(p)

    def engine_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="score in this process (local) or on Ray Data actors (ray)")
        p.add_argument("--num-workers", type=int, default=2, help="Ray actors (default 2)")
        p.add_argument("--ray-address", help="Ray cluster to join (default: a local Ray)")
        p.add_argument("--batch-size", type=int, default=256, help="prompts per Ray batch")

    p = sub.add_parser("route", help="score queries and print the routing decision")
    p.add_argument("text", nargs="+")
    common(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float)
    g.add_argument("--strong-fraction", type=float)
    p.add_argument("--strong", help="strong model name (default: the router's)")
    p.add_argument("--weak", help="weak model name (default: the router's)")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("score", help="score (and route) every prompt of a file, locally or on Ray")
    common(p)
    p.add_argument("--prompts", required=True,
                   help="prompt file: .parquet, .jsonl, .json, .csv or plain text")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, help="add the route and model of each prompt")
    g.add_argument("--strong-fraction", type=float, help="as --threshold, from the calibration table")
    p.add_argument("--strong", help="strong model name (default: the router's)")
    p.add_argument("--weak", help="weak model name (default: the router's)")
    p.add_argument("--out", help="write one row per prompt (.parquet, .jsonl or .csv)")
    engine_options(p)
    p.set_defaults(func=cmd_score)

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
    common(p, router=False)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("calibrate", help="threshold for a target share of strong calls")
    common(p)
    p.add_argument("--prompts", required=True, help="file of unlabelled prompts")
    p.add_argument("--strong-fraction", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 0.8])
    p.add_argument("--write", action="store_true", help="store the table in the checkpoint")
    engine_options(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("eval", help="the paper's metrics on MMLU, GSM8K or MT-Bench")
    common(p)
    p.add_argument("--benchmark", required=True, choices=["mmlu", "gsm8k", "mt-bench"])
    p.add_argument("--data-dir", required=True, help="RouteLLM's eval layout (routellm_evals)")
    p.add_argument("--cv", type=int, help="K-fold in-domain adaptation")
    engine_options(p)
    p.add_argument("--train", action="append", metavar="SPEC",
                   help="general training data for --cv (default: the specs in the router's card)")
    p.add_argument("--sample", type=int, metavar="N",
                   help="score a seeded random subset of N questions (default: all); for slow routers")
    p.add_argument("--json", help="write the results as JSON")
    p.add_argument("--plot", help="write the score-vs-strong-share plot (PNG)")
    p.set_defaults(func=cmd_eval)

    from routellm_core.learning.cli import add_learning_parsers
    from routellm_core.nway.cli import add_nway_parser

    add_learning_parsers(sub)
    add_nway_parser(sub)
    return describe_subcommands(parser)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with quiet_libraries():
            return int(args.func(args) or 0)
    except (ValueError, TypeError, KeyError, OSError, RuntimeError, ImportError) as exc:
        print(f"routellm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
