"""``routellm label | promote | learn | prune``: label your own traffic, swap in a retrained router only
when it is not worse, run whole learning cycles, and keep the traffic store small.

Examples::

    routellm label --prompts prompts.jsonl --store traffic.db \\
        --strong langchain_openai:ChatOpenAI --strong-kwargs '{"model": "gpt-4o"}' \\
        --weak langchain_openai:ChatOpenAI --weak-kwargs '{"model": "gpt-4o-mini"}' \\
        --judge langchain_openai:ChatOpenAI --judge-kwargs '{"model": "gpt-4o"}' \\
        --judge-prompts judge_prompts.jsonl --budget 5
    routellm train --router sw_ranking --data store:traffic.db --init default --holdout 0.2 --out runs/mine
    routellm promote --candidate runs/mine --current runs/live --data store:traffic.db --holdout 0.2
    routellm promote --candidate /shared/routers/r7 --current runs/live --data store:traffic.db \\
        --holdout 0.2 --publish postgresql+psycopg://app@db/routellm
    routellm promote --rollback --store postgresql+psycopg://app@db/routellm
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from routellm_core.cli.common import add_common_options

__all__ = ["add_learning_parsers", "cmd_label", "cmd_learn", "cmd_promote", "cmd_prune", "cmd_rollback", "duration"]


def _json_object(text: str, option: str, what: str) -> dict[str, Any]:
    """``text`` read as a JSON object, else a ``ValueError`` naming ``option`` and ``what`` it holds."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{option} must be a JSON object {what}: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{option} must be a JSON object {what}, got {type(value).__name__}")
    return value


def _kwargs(text: str | None, option: str) -> dict[str, Any]:
    return _json_object(text, option, "of keyword arguments") if text else {}


def _names(text: str | None) -> dict[str, str] | None:
    """``--names``: a JSON object ``{"strong": NAME, "weak": NAME}``, as the adapters' ``names=``
    (its routes and names are checked by the naming rule, :func:`routellm_core.naming.check_names`)."""
    return _json_object(text, "--names", '{"strong": NAME, "weak": NAME}') if text else None


NAMES_HELP = ("JSON {\"strong\": NAME, \"weak\": NAME}: the models' names in battles and costs, as your app's names= "
              "(e.g. '{\"strong\": \"gpt-5@high\", \"weak\": \"gpt-5@minimal\"}'); default their own names")


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
                       judge_retries=args.judge_retries, source=args.source, progress=not args.quiet,
                       names=_names(args.names))
    except UnpricedModelsError as exc:  # the Python API's message names prices=; here it is an option
        example = json.dumps({n: [1.0, 2.0] for n in exc.names})
        raise ValueError(f"no price for {exc.names}, so --budget {args.budget:g} cannot be kept; give "
                         "--prices '{\"NAME\": [in_per_million, out_per_million]}' in dollars (JSON or a "
                         f"JSON file), e.g. --prices '{example}'") from None
    print(report.summary())
    for err in report.errors:
        print(f"  failed: {err}")
    return 0 if report.failed == 0 else 1


def cmd_rollback(args: argparse.Namespace) -> int:
    """``routellm promote --rollback --store STORE``: make the router version before the live one live again."""
    from routellm_core.learning import open_store
    from routellm_core.learning.promote import who_publishes

    given = [f"--{n.replace('_', '-')}" for n in ("candidate", "current", "data", "to", "publish", "location", "json")
             if getattr(args, n)]
    if given:
        raise ValueError(f"--rollback takes --store STORE (and --by), not {', '.join(given)}")
    if not args.store:
        raise ValueError("--rollback needs --store STORE: the traffic store whose live router version to roll back")
    store = open_store(args.store, must_exist=True)
    before = store.live_router()
    now = store.rollback(by=who_publishes(args.by))
    print(f"rolled back router version {before.version if before else '?'}; router version {now.version} is live "
          f"now: {now.location} (published {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(now.created_at))} UTC"
          + (f" by {now.published_by}" if now.published_by else "") + ")")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from routellm_core.checkpoints import load_router
    from routellm_core.learning.promote import (
        compare,
        publish_promoted,
        replace_checkpoint,
        split_holdout,
        strong_shares,
        traffic_benchmark,
    )
    from routellm_core.training import load_training_battles, training_pair

    if args.rollback:
        return cmd_rollback(args)
    missing = [f"--{n}" for n in ("candidate", "current", "data") if not getattr(args, n)]
    if missing:
        raise ValueError(f"promote needs {', '.join(missing)} (or --rollback --store STORE to roll back)")
    if args.store:
        raise ValueError("--store is for --rollback; to publish the promoted router, give --publish STORE")
    if (args.location or args.by or args.note) and not args.publish:
        raise ValueError("--location, --by and --note describe a published version: give --publish STORE too")
    publish_to = None
    if args.publish:
        from routellm_core.learning import open_store

        if not Path(args.candidate).is_dir():
            raise ValueError(f"--publish publishes a checkpoint directory; the candidate {args.candidate!r} is not one")
        publish_to = open_store(args.publish)  # a store that cannot be opened fails before the comparison
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
    if result.promote and publish_to is not None:
        figures = {**result.as_dict(), "strong_share": shares, "candidate": str(args.candidate),
                   "current": str(args.current), "holdout": holdout, "seed": seed}
        version = publish_promoted(publish_to, args.candidate, figures=figures, location=args.location, by=args.by,
                                   note=args.note)
        print(f"published router version {version.version} ({version.location}, sha256 {version.sha256[:12]}...) "
              f"by {version.published_by}; replicas following {publish_to.url} load it at their next poll")
    return 0 if result.promote else 1


def cmd_learn(args: argparse.Namespace) -> int:
    from routellm_core.learning import load_model, open_store
    from routellm_core.learning.cycle import learn_cycle
    from routellm_core.learning.models import import_object

    models = {role: load_model(getattr(args, role), _kwargs(getattr(args, f"{role}_kwargs"), f"--{role}-kwargs"))
              for role in ("strong", "weak", "judge")}
    redact = import_object(args.redact, "redact hook") if args.redact else None
    report = learn_cycle(
        open_store(args.store, redact=redact), **models, to=args.to, init=args.init, labels=args.labels,
        select=args.select, budget=args.budget, prices=_prices(args.prices), judge_prompts=args.judge_prompts,
        holdout=args.holdout, tolerance=args.tolerance, strong_fraction=args.strong_fraction, seed=args.seed,
        eval_data_dir=args.eval_data_dir, lock_ttl=args.lock_ttl, concurrency=args.concurrency, by=args.by,
        progress=not args.quiet, names=_names(args.names))
    print(report.summary())
    for err in report.errors:
        print(f"  failed: {err}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=1, default=float) + "\n")
    return 1 if report.status == "labelling failed" else 0


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"12h"``, ``"30d"`` or ``"2w"``.

    Example:
        >>> duration("30d"), duration("12h"), duration("90")
        (2592000.0, 43200.0, 90.0)
    """
    raw = text.strip().lower()
    unit = _UNITS.get(raw[-1:], None)
    number = raw[:-1] if unit else raw
    try:
        value = float(number) * (unit or 1.0)
    except ValueError:
        raise ValueError(f"a duration is a number of seconds or a number with s, m, h, d or w (e.g. 30d), "
                         f"got {text!r}") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"a duration must be positive, got {text!r}")
    return value


def cmd_prune(args: argparse.Namespace) -> int:
    from routellm_core.learning import open_store

    done = open_store(args.store, must_exist=True).prune(duration(args.older_than))
    print(f"deleted {done['calls']} captured call(s) older than {args.older_than} that no rating or battle "
          f"uses, and the stored answers of {done['answers']} older battle(s) (their verdicts stay)")
    return 0


def add_learning_parsers(sub: Any) -> None:
    """Add ``label``, ``promote``, ``learn`` and ``prune`` to the ``routellm`` sub-command parser ``sub``."""
    p = sub.add_parser("label", help="label prompts with an LLM judge (both answer orders) into a traffic store")
    p.add_argument("--prompts", required=True, help="JSONL / CSV / text file of prompts, or store:PATH_OR_URL")
    p.add_argument("--store", required=True, help="traffic store to write battles to (SQLite path or SQLAlchemy URL)")
    for role in ("strong", "weak", "judge"):
        p.add_argument(f"--{role}", required=True, metavar="MODULE:CLASS",
                       help=f"the {role} model: a LangChain chat model or LlamaIndex LLM class")
        p.add_argument(f"--{role}-kwargs", metavar="JSON", help=f"keyword arguments of the {role} model")
    p.add_argument("--judge-prompts", help="FastChat's judge_prompts.jsonl (default $ROUTELLM_JUDGE_PROMPTS)")
    p.add_argument("--names", metavar="JSON", help=NAMES_HELP)
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
    p.add_argument("--candidate", help="the retrained checkpoint (required unless --rollback)")
    p.add_argument("--current", help="the router in use ('default', a checkpoint or a Hub id; required unless "
                                     "--rollback)")
    p.add_argument("--data", action="append", metavar="SPEC",
                   help="labelled traffic, e.g. store:traffic.db (repeatable; required unless --rollback)")
    p.add_argument("--holdout", type=float, help="held-out fraction (default: the candidate card's)")
    p.add_argument("--strong", help="strong model of the pair (default: read off data of exactly two models)")
    p.add_argument("--weak", help="weak model of the pair (default: the other model of the data)")
    p.add_argument("--tolerance", type=float, default=0.0, help="APGR the candidate may lose and still be promoted")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples for the interval (default 500)")
    p.add_argument("--to", help="checkpoint directory to replace when promoted (the old one is kept as <dir>.previous)")
    p.add_argument("--json", help="write the comparison as JSON")
    p.add_argument("--publish", metavar="STORE",
                   help="when promoted, publish the candidate as the next router version of this traffic store "
                        "(SQLite path or SQLAlchemy URL), which replicas following it (RouterFromStore) load")
    p.add_argument("--location", help="with --publish: where replicas find the checkpoint, when not at the "
                                      "candidate's path (a copy on shared storage, or hf://org/name[@revision])")
    p.add_argument("--by", help="who publishes or rolls back (default: the OS user)")
    p.add_argument("--note", help="with --publish: a note recorded with the version")
    p.add_argument("--rollback", action="store_true",
                   help="roll back the live router version of --store STORE (the one before it is live again)")
    p.add_argument("--store", help="with --rollback: the traffic store (SQLite path or SQLAlchemy URL)")
    add_common_options(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("learn", help="one learning cycle: label unlabelled captured calls, retrain, and publish "
                                     "the result when it is not worse (for a scheduler)")
    p.add_argument("--store", required=True, help="the traffic store the replicas capture into (SQLite path or "
                                                  "SQLAlchemy URL)")
    p.add_argument("--to", required=True, help="directory under which each published checkpoint gets a new folder "
                                               "(on storage every replica reads)")
    for role in ("strong", "weak", "judge"):
        p.add_argument(f"--{role}", required=True, metavar="MODULE:CLASS",
                       help=f"the {role} model: a LangChain chat model or LlamaIndex LLM class")
        p.add_argument(f"--{role}-kwargs", metavar="JSON", help=f"keyword arguments of the {role} model")
    p.add_argument("--judge-prompts", help="FastChat's judge_prompts.jsonl (default $ROUTELLM_JUDGE_PROMPTS)")
    p.add_argument("--names", metavar="JSON", help=NAMES_HELP)
    p.add_argument("--init", default="default", help="the base router each cycle retrains from, and the one to "
                                                    "beat while none is published (default: the embedded default)")
    p.add_argument("--labels", type=int, default=200, help="labels to buy this cycle (default 200)")
    p.add_argument("--select", default="random", help="which calls to label: random (default: no other strategy "
                                                     "beat it reliably, see docs/learning.md), uncertain (nearest "
                                                     "their threshold), uncertain-diverse or diverse")
    p.add_argument("--prices", help="JSON (or a JSON file) {model: [input_per_million, output_per_million]}")
    p.add_argument("--budget", type=float, help="make no model or judge call once this many dollars are spent")
    p.add_argument("--holdout", type=float, default=0.2, help="held-out fraction of labelled queries (default 0.2)")
    p.add_argument("--tolerance", type=float, default=0.0, help="APGR the candidate may lose and still be published")
    p.add_argument("--strong-fraction", type=float, default=0.5,
                   help="the setting the report's strong shares are given at (default 0.5)")
    p.add_argument("--eval-data-dir", help="RouteLLM's evaluation sets to decontaminate the training data against")
    p.add_argument("--redact", metavar="MODULE:FUNCTION", help="the store's redact hook (required for a store "
                                                              "that holds redacted text)")
    p.add_argument("--lock-ttl", type=float, default=6 * 3600.0,
                   help="seconds after which the lock of a cycle that died expires (default 21600)")
    p.add_argument("--concurrency", type=int, default=4, help="prompts labelled at once (default 4)")
    p.add_argument("--by", help="who publishes (default: the OS user)")
    p.add_argument("--json", help="also write the report as JSON to this file")
    add_common_options(p)
    p.set_defaults(func=cmd_learn)

    p = sub.add_parser("prune", help="retention: delete old captured calls nothing learns from, and old "
                                     "battles' stored answers")
    p.add_argument("--store", required=True, help="the traffic store (SQLite path or SQLAlchemy URL)")
    p.add_argument("--older-than", required=True, metavar="AGE",
                   help="what to prune: older than this (seconds, or e.g. 30d, 12h, 2w)")
    p.set_defaults(func=cmd_prune)

