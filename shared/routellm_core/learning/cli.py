"""``routellm label`` and ``routellm promote``: label your own traffic, and swap in a retrained
router only when it is not worse.

Examples::

    routellm label --prompts prompts.jsonl --store traffic.db \\
        --strong langchain_openai:ChatOpenAI --strong-kwargs '{"model": "gpt-4o"}' \\
        --weak langchain_openai:ChatOpenAI --weak-kwargs '{"model": "gpt-4o-mini"}' \\
        --judge langchain_openai:ChatOpenAI --judge-kwargs '{"model": "gpt-4o"}' \\
        --judge-prompts judge_prompts.jsonl --budget 5
    routellm train --router sw_ranking --data store:traffic.db --init default --holdout 0.2 --out runs/mine
    routellm promote --candidate runs/mine --current runs/live --data store:traffic.db --holdout 0.2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from routellm_core.cli_common import add_common_options


def _kwargs(text: str | None, option: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{option} must be a JSON object of keyword arguments: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{option} must be a JSON object of keyword arguments, got {type(value).__name__}")
    return value


def _prices(text: str | None) -> dict[str, tuple[float, float]] | None:
    """``--prices``: a JSON object or a JSON file ``{model: [input_per_million, output_per_million]}``."""
    if not text:
        return None
    raw = Path(text).read_text() if Path(text).is_file() else text
    try:
        table = json.loads(raw)
        return {str(k): (float(v[0]), float(v[1])) for k, v in table.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"--prices must be {{model: [input_per_million, output_per_million]}} in dollars "
                         f"(JSON or a JSON file): {exc}") from None


def cmd_label(args: argparse.Namespace) -> int:
    from routellm_core.learning import label, load_model, open_store, read_prompts
    from routellm_core.learning.label import UnpricedModelsError
    from routellm_core.learning.models import import_object

    models = {role: load_model(getattr(args, role), _kwargs(getattr(args, f"{role}_kwargs"), f"--{role}-kwargs"))
              for role in ("strong", "weak", "judge")}
    redact = import_object(args.redact, "redact hook") if args.redact else None
    store = open_store(args.store, redact=redact)
    prompts = read_prompts(args.prompts)
    try:
        report = label(prompts, **models, store=store, judge_prompts=args.judge_prompts, prices=_prices(args.prices),
                       budget=args.budget, concurrency=args.concurrency, retries=args.retries, backoff=args.backoff,
                       judge_retries=args.judge_retries, source=args.source, progress=not args.quiet)
    except UnpricedModelsError as exc:  # the Python API's message names prices=; here it is an option
        example = json.dumps({n: [1.0, 2.0] for n in exc.names})
        raise ValueError(f"no price for {exc.names}, so --budget {args.budget:g} cannot be kept; give "
                         "--prices '{\"NAME\": [in_per_million, out_per_million]}' in dollars (JSON or a "
                         f"JSON file), e.g. --prices '{example}'") from None
    print(report.summary())
    for err in report.errors:
        print(f"  failed: {err}")
    return 0 if report.failed == 0 else 1


def cmd_promote(args: argparse.Namespace) -> int:
    from routellm_core.checkpoints import load_router
    from routellm_core.learning.promote import (
        compare,
        replace_checkpoint,
        split_holdout,
        strong_shares,
        traffic_benchmark,
    )
    from routellm_core.training import load_training_battles, training_pair

    candidate, current = load_router(args.candidate), load_router(args.current)
    if candidate.calibration_ is None and args.candidate != "random":  # random: the baseline, never installed
        raise ValueError(
            f"the candidate {args.candidate} has no calibration table, so a model set with strong_fraction could "
            "not route with it: calibrate it on prompts of your traffic first, "
            f"routellm calibrate --router {args.candidate} --prompts PROMPTS_FILE --write (routellm train adds one)")
    battles, _ = load_training_battles(args.data)
    recorded = (candidate.card_ or {}).get("holdout", {})
    holdout = args.holdout or recorded.get("fraction")
    seed = args.seed if args.holdout else recorded.get("seed", args.seed)
    if not holdout:
        raise ValueError("promote evaluates on held-out traffic: pass --holdout FRACTION (the one the candidate "
                         "was trained with; its card records none)")
    _, held = split_holdout(battles, holdout, seed=seed)

    strong, weak, _ = training_pair(battles, args.strong, args.weak)
    bench = traffic_benchmark(held, strong, weak)
    if hasattr(candidate, "trained_on"):
        seen = int(candidate.trained_on(bench.prompts).sum())
        if seen:
            raise ValueError(f"the candidate was trained on {seen} of the {len(bench)} held-out queries: train it with "
                             f"--holdout {holdout} --seed {seed}")
    result = compare(candidate, current, bench, bootstrap=args.bootstrap, tolerance=args.tolerance, seed=args.seed)
    print(result.reason)
    shares = {"current": strong_shares(current, bench), "candidate": strong_shares(candidate, bench)}
    print(f"strong share on the {len(bench)} held-out queries at strong_fraction "
          + " / ".join(shares["candidate"]) + ": "
          + ", ".join(f"{who} " + " / ".join("-" if v is None else f"{v:.2f}" for v in s.values())
                      for who, s in shares.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({**result.as_dict(), "strong_share": shares}, indent=1) + "\n")
    if result.promote and args.to:
        replace_checkpoint(args.candidate, args.to)
        print(f"installed {args.candidate} as {args.to}")
    return 0 if result.promote else 1


def add_learning_parsers(sub: Any) -> None:
    """Add ``label`` and ``promote`` to the ``routellm`` sub-command parser ``sub``."""
    p = sub.add_parser("label", help="label prompts with an LLM judge (both answer orders) into a traffic store")
    p.add_argument("--prompts", required=True, help="JSONL / CSV / text file of prompts, or store:PATH_OR_URL")
    p.add_argument("--store", required=True, help="traffic store to write battles to (SQLite path or SQLAlchemy URL)")
    for role in ("strong", "weak", "judge"):
        p.add_argument(f"--{role}", required=True, metavar="MODULE:CLASS",
                       help=f"the {role} model: a LangChain chat model or LlamaIndex LLM class")
        p.add_argument(f"--{role}-kwargs", metavar="JSON", help=f"keyword arguments of the {role} model")
    p.add_argument("--judge-prompts", help="FastChat's judge_prompts.jsonl (default $ROUTELLM_JUDGE_PROMPTS)")
    p.add_argument("--redact", metavar="MODULE:FUNCTION",
                   help="the store's redact hook, a function str -> str (required for a store that holds redacted "
                        "text: the one your app's TrafficCapture uses)")
    p.add_argument("--prices", help="JSON (or a JSON file) {model: [input_per_million, output_per_million]}")
    p.add_argument("--budget", type=float, help="make no model or judge call once this many dollars are spent")
    p.add_argument("--concurrency", type=int, default=4, help="prompts in flight at once (default 4)")
    p.add_argument("--retries", type=int, default=4, help="retries of rate limits and timeouts (default 4)")
    p.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds (default 1)")
    p.add_argument("--judge-retries", type=int, default=2,
                   help="re-asks of the judge when its verdict is unparsable (default 2)")
    p.add_argument("--source", default="label", help="the battles' source column (default 'label')")
    add_common_options(p)
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("promote", help="replace the current router by a candidate when it is not worse "
                                       "on held-out labelled traffic")
    p.add_argument("--candidate", required=True, help="the retrained checkpoint")
    p.add_argument("--current", required=True, help="the router in use ('default', a checkpoint or a Hub id)")
    p.add_argument("--data", action="append", required=True, metavar="SPEC",
                   help="labelled traffic, e.g. store:traffic.db (repeatable)")
    p.add_argument("--holdout", type=float, help="held-out fraction (default: the candidate card's)")
    p.add_argument("--strong", help="strong model of the pair (default: read off data of exactly two models)")
    p.add_argument("--weak", help="weak model of the pair (default: the other model of the data)")
    p.add_argument("--tolerance", type=float, default=0.0, help="APGR the candidate may lose and still be promoted")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples for the interval (default 500)")
    p.add_argument("--to", help="checkpoint directory to replace when promoted (the old one is kept as <dir>.previous)")
    p.add_argument("--json", help="write the comparison as JSON")
    add_common_options(p)
    p.set_defaults(func=cmd_promote)


__all__ = ["add_learning_parsers", "cmd_label", "cmd_promote"]
