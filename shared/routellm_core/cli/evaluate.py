"""``routellm eval``: the paper's metrics (APGR, CPT) of a strong/weak router on MMLU, GSM8K or MT-Bench."""

from __future__ import annotations

import argparse
from typing import Any

from routellm_core.cli.common import add_router_options, load_command_router, write_json
from routellm_core.cli.engine import add_engine_options, engine_options

__all__ = ["add_eval_parser", "cmd_eval", "subsample"]


def cmd_eval(args: argparse.Namespace) -> int:
    """Print the router's APGR and CPT against random routing (``--cv``: after K-fold in-domain adaptation)."""
    from routellm_core.evaluation.benchmarks import load_benchmark
    from routellm_core.evaluation.cross_validation import evaluate_router

    if args.engine == "ray" and args.cv:
        raise ValueError("--engine ray scores out of domain; --cv retrains per fold and runs locally")
    router = load_command_router(args)
    bench = subsample(load_benchmark(args.benchmark, args.data_dir), args.sample, args.seed)
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
        from routellm_core.offline_scoring import evaluate_benchmark

        result = evaluate_benchmark(args.router, bench, router_name=router.name, **engine_options(args))
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
        write_json(args.json, result)
    if args.plot:
        from routellm_core.evaluation.plots import plot_curves

        plot_curves(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


def subsample(bench: Any, n: int | None, seed: int) -> Any:
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


def add_eval_parser(sub: Any) -> None:
    """Add ``eval`` to the ``routellm`` sub-command parser ``sub``."""
    p = sub.add_parser("eval", help="the paper's metrics on MMLU, GSM8K or MT-Bench")
    add_router_options(p)
    p.add_argument("--benchmark", required=True, choices=["mmlu", "gsm8k", "mt-bench"])
    p.add_argument("--data-dir", required=True, help="RouteLLM's eval layout (routellm_evals)")
    p.add_argument("--cv", type=int, help="K-fold in-domain adaptation")
    add_engine_options(p)
    p.add_argument("--train", action="append", metavar="SPEC",
                   help="general training data for --cv (default: the specs in the router's card)")
    p.add_argument("--sample", type=int, metavar="N",
                   help="score a seeded random subset of N questions (default: all); for slow routers")
    p.add_argument("--json", help="write the results as JSON")
    p.add_argument("--plot", help="write the score-vs-strong-share plot (PNG)")
    p.set_defaults(func=cmd_eval)
