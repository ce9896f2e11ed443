"""Router quality under two query encoders: all-MiniLM-L6-v2 vs its static (model2vec) distillation.

Decides whether the fast encoder ``static:sentence-transformers/all-MiniLM-L6-v2`` can become the
default: it may when it is within 0.01 APGR of MiniLM on every binary figure below. Prints a
side-by-side table and writes every figure, command and step time to JSON (default
``benchmarks/results/encoder_quality.json``)::

    ROUTELLM_DATA_DIR=../shared/data python benchmarks/encoder_quality.py \\
        [--encoders minilm static] [--skip-nway] [--json OUT] [--timeout SECONDS]

For each encoder, through the real CLI (``routellm ...`` subprocesses; checkpoints and logs in
``runs/encoder-quality/<encoder>/``):

1. the embedded default's recipe (the "produced by" command of
   ``shared/routellm_core/default_router/README.md``: SW ranking on RouterBench + LLMRouter train,
   gold labels, decontaminated, calibrated on Arena-Hard) with ``--strong gpt-4-1106-preview
   --weak mixtral-8x7b-instruct-v0.1 --encoder E``; its card holds the out-of-domain APGR on
   MMLU and GSM8K (RouteLLM's evaluation sets) and the decontamination line;
2. ``routellm eval`` of that router on MMLU and GSM8K: out of domain (a cross-check of the card)
   and with in-domain adaptation, ``--cv 5`` (each fold retrains, after decontaminating the
   general data against the benchmark with the router's encoder: that line is recorded too).
   ``routellm eval`` loads a checkpoint with the encoder it records; a CLI from before that fix
   loaded every checkpoint with MiniLM, which a static-encoder checkpoint refuses (probe
   mismatch): then the refusal is recorded and the step rerun as the same CLI in-process with its
   encoder set to the checkpoint's (``workaround`` in the JSON);
3. N-way (unless ``--skip-nway``): the ``quality`` router on the LLMRouter pool (9 models, price
   table) and on the RouterBench pool (11 models, recorded cost), trained on the train split and
   scored on the test split as ``benchmarks/nway_routing.sh`` does; AIQ next to random and
   oracle AIQ. ``routellm nway eval`` gets ``--encoder E`` too: its ``--encoder`` defaults to
   MiniLM and replaces the checkpoint's own.

``difference`` is static minus MiniLM; ``within_0.01`` is true when the static encoder is at most
0.01 APGR below MiniLM on all four binary figures (MMLU and GSM8K, out of domain and ``--cv 5``).
MiniLM embeddings come from the on-disk cache (``~/.cache/routellm``) when present; the static
encoder is distilled on first use (seconds) and embeds without a cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENCODERS = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "static": "static:sentence-transformers/all-MiniLM-L6-v2",
}
STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"
BENCHMARKS = ("mmlu", "gsm8k")
THRESHOLD = 0.01
L = "gold:{data}/llmrouter_9model_gold"
R = "gold:{data}/routerdc_7model_and_routerbench_subset/routerbench_zs"
NWAY = {  # as benchmarks/nway_routing.sh, quality router only
    "llmrouter": {
        "train": ["--data", f"{L}/dcrouter_preprocessed__train.json?task_labels={{data}}/llmrouter_9model_gold/"
                  "dcrouter_task_labels.csv", "--holdout", f"{L}/dcrouter_preprocessed__test.json",
                  "--prices", "{data}/llmrouter_9model_gold/example_data__llm_candidates__default_llm.json"],
        "eval": ["--data", f"{L}/dcrouter_preprocessed__test.json"],
        "split": "LLMRouter 9 models, test split (price table cost)",
    },
    "routerbench": {
        "train": [a for s in ("arc_challenge", "mbpp", "winograde") for a in ("--data", f"{R}/{s}_train.csv")]
        + [a for s in ("arc_challenge", "mbpp", "winograde") for a in ("--holdout", f"{R}/{s}_test.csv")],
        "eval": [a for s in ("arc_challenge", "mbpp", "winograde") for a in ("--data", f"{R}/{s}_test.csv")],
        "split": "RouterBench 11 models, arc_challenge+mbpp+winograde test (recorded cost)",
    },
}
PUBLISHED_MINILM = {  # docs/results.md, benchmarks/results/*
    "mmlu": 0.555, "gsm8k": 0.553, "mmlu_cv5": 0.640, "gsm8k_cv5": 0.582,
    "nway_llmrouter_aiq": 0.545, "nway_routerbench_aiq": 0.854,
}


def data_dir() -> Path:
    path = Path(os.environ.get("ROUTELLM_DATA_DIR") or ROOT.parent / "shared" / "data")
    if not path.is_dir():
        raise SystemExit(f"no data directory at {path}: set ROUTELLM_DATA_DIR")
    return path


def default_recipe() -> list[str]:
    """The embedded default's training command (its README's "produced by"), without ``--out``."""
    readme = (ROOT / "shared" / "routellm_core" / "default_router" / "README.md").read_text()
    m = re.search(r"produced by: `(routellm train [^`]+)`", readme)
    if m is None:
        raise SystemExit("no 'produced by' command in shared/routellm_core/default_router/README.md")
    argv = shlex.split(m.group(1))
    if "--out" in argv:
        i = argv.index("--out")
        del argv[i : i + 2]
    return argv


class Runner:
    """Runs CLI steps, logging each to ``logs/<step>.log`` and recording command, time and status."""

    def __init__(self, log_dir: Path, timeout: float) -> None:
        self.log_dir = log_dir
        self.timeout = timeout
        log_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, step: str, argv: list[str], exe: list[str] | None = None) -> dict[str, Any]:
        exe = exe or [shutil.which(argv[0]) or argv[0]]
        log = self.log_dir / f"{step}.log"
        cmd = shlex.join(argv) if len(exe) == 1 else shlex.join([*exe, *argv[1:]])
        print(f"[{time.strftime('%H:%M:%S')}] {step}: {cmd}", flush=True)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([*exe, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=self.timeout)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = None
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = (exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")) + \
                f"\ntimed out after {self.timeout:.0f} s"
        wall = time.perf_counter() - t0
        log.write_text(f"$ {cmd}\n# rc={rc} wall_s={wall:.1f}\n--- stdout\n{out}\n--- stderr\n{err}")
        rec: dict[str, Any] = {"command": cmd, "wall_s": round(wall, 1), "rc": rc, "log": str(log.relative_to(ROOT))}
        if rc != 0:
            tail = (err.strip() or out.strip()).splitlines()[-15:]
            rec["error"] = "\n".join(tail)
            print(f"    FAILED (rc={rc}, {wall:.0f} s):\n      " + "\n      ".join(tail), flush=True)
        else:
            print(f"    done in {wall:.1f} s", flush=True)
        rec["_stdout"] = out
        return rec


def strip(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if not k.startswith("_")}


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


MISMATCH = "embeds its probe texts differently"
# ``routellm eval`` has no --encoder: it always loads the checkpoint with the default MiniLM
# encoder, which a checkpoint trained on another encoder refuses (probe mismatch). Fallback: the
# same CLI in-process with its encoder choice set to the checkpoint's encoder (what an
# ``--encoder E`` option would do, as ``routellm nway eval`` has); recorded as a workaround.
PATCHED_CLI = ("import sys; import routellm_core.cli as c; import routellm_core.cli.train as t; "
               "from routellm_core.cli.common import query_encoder; "
               "E = sys.argv.pop(1); t.command_encoder = lambda a: query_encoder(E, no_cache=a.no_cache); "
               "sys.exit(c.main(sys.argv[1:]))")


def run_eval(run: Runner, step: str, argv: list[str], encoder: str) -> dict[str, Any]:
    """``routellm eval ...``; on the encoder-mismatch refusal, the patched in-process CLI."""
    rec = run(step, argv)
    if rec["rc"] == 0 or MISMATCH not in rec.get("error", ""):
        return rec
    print("    retrying with routellm eval's encoder set to the checkpoint's (workaround)", flush=True)
    again = run(step + "_workaround", ["routellm", encoder, *argv[1:]], exe=[sys.executable, "-c", PATCHED_CLI])
    rec = strip(rec)
    again["workaround"] = ("routellm eval (no --encoder option) refused the checkpoint; rerun as the same CLI "
                           "with cli.train.command_encoder returning the checkpoint's encoder")
    again["plain_cli"] = rec
    return again


def run_encoder(key: str, name: str, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    base = ROOT / "runs" / "encoder-quality" / key
    run = Runner(base / "logs", args.timeout)
    evals = str(data / "routellm_evals")
    res: dict[str, Any] = {"encoder": name, "steps": {}, "figures": {}}
    steps, figs = res["steps"], res["figures"]
    t_start = time.perf_counter()

    # 1. the default's recipe with this encoder; out-of-domain APGR from its card
    ckpt = base / "default"
    if ckpt.exists():
        shutil.rmtree(ckpt)
    train = default_recipe() + ["--strong", STRONG, "--weak", WEAK, "--encoder", name,
                                "--out", str(ckpt.relative_to(ROOT))]
    rec = run("train_default", train)
    lines = [ln for ln in rec.pop("_stdout").splitlines() if ln.startswith("decontamination")]
    steps["train_default"] = rec
    config = read_json(ckpt / "config.json") if rec["rc"] == 0 else None
    if config is not None:
        card = config.get("card") or {}
        res["decontamination"] = card.get("decontamination") or (lines[0] if lines else None)
        res["decontamination_printed"] = lines
        res["battles"] = {"before": card.get("battles_before_decontamination"), "after": card.get("battles"),
                          "queries": card.get("queries")}
        res["encoder_recorded"] = (config.get("params") or {}).get("encoder")
        res["out_of_domain"] = card.get("metrics")
        for b in BENCHMARKS:
            m = (card.get("metrics") or {}).get(b) or {}
            if "apgr" in m:
                figs[b] = m["apgr"]
                figs[f"{b}_random"] = m.get("random_apgr")

    # 2. routellm eval of that router: out of domain (a cross-check of the card) and --cv 5
    res["eval"], res["cv5"] = {}, {}
    for b in BENCHMARKS:
        for cv in (None, 5):
            if config is None:
                break
            tag = f"{b}_cv{cv}" if cv else b
            out = base / f"{tag}.json"
            out.unlink(missing_ok=True)
            argv = ["routellm", "eval", "--router", str(ckpt.relative_to(ROOT)), "--benchmark", b, "--data-dir", evals,
                    *(["--cv", str(cv)] if cv else []), "--quiet", "--json", str(out.relative_to(ROOT))]
            rec = run_eval(run, f"eval_{tag}", argv, name)
            lines = [ln for ln in rec.pop("_stdout").splitlines() if ln.startswith("decontamination")]
            steps[f"eval_{tag}"] = rec
            got = read_json(out) if rec["rc"] == 0 else None
            if got is None:
                continue
            (res["cv5"] if cv else res["eval"])[b] = {
                k: got.get(k) for k in ("n_queries", "apgr", "cpt50", "cpt80", "random_apgr")}
            if cv:
                res["cv5"][b]["decontamination"] = lines[0] if lines else None
            if cv:
                figs[f"{b}_cv5"] = got.get("apgr")
                figs[f"{b}_cv5_random"] = got.get("random_apgr")
            else:
                figs[f"{b}_eval"] = got.get("apgr")  # should equal the card's figs[b]

    # 3. N-way quality router on both pools
    if not args.skip_nway:
        res["nway"] = {}
        for pool, spec in NWAY.items():
            out_dir = base / f"nway-{pool}-quality"
            if out_dir.exists():
                shutil.rmtree(out_dir)
            rel = str(out_dir.relative_to(ROOT))
            rec = run(f"nway_train_{pool}", ["routellm", "nway", "train", "--router", "quality", "--out", rel,
                                             "--quiet", *spec["train"], "--encoder", name])
            lines = [ln for ln in rec.pop("_stdout").splitlines() if ln.startswith("decontamination")]
            steps[f"nway_train_{pool}"] = rec
            if rec["rc"] != 0:
                continue
            card = (read_json(out_dir / "config.json") or {}).get("card") or {}
            entry: dict[str, Any] = {"decontamination": card.get("decontamination") or (lines[0] if lines else None),
                                     "queries": card.get("queries"),
                                     "queries_before_decontamination": card.get("queries_before_decontamination")}
            js = base / f"nway_{pool}_quality.json"
            js.unlink(missing_ok=True)
            eval_argv = ["routellm", "nway", "eval", "--router", rel, *spec["eval"],
                         "--json", str(js.relative_to(ROOT)), "--quiet", "--encoder", name]
            rec = run(f"nway_eval_{pool}", eval_argv)
            steps[f"nway_eval_{pool}"] = strip(rec)
            got = read_json(js) if rec["rc"] == 0 else None
            if got is not None:
                entry.update({k: got.get(k) for k in ("n_queries", "aiq", "random_aiq", "oracle_aiq",
                                                       "above_random_everywhere", "max_quality")})
                figs[f"nway_{pool}_aiq"] = got.get("aiq")
                figs[f"nway_{pool}_random_aiq"] = got.get("random_aiq")
                figs[f"nway_{pool}_oracle_aiq"] = got.get("oracle_aiq")
            res["nway"][pool] = entry
    res["wall_s"] = round(time.perf_counter() - t_start, 1)
    res["failed_steps"] = [s for s, r in steps.items() if r.get("rc") != 0]
    return res


ROWS = [  # (figure key, label, data/split)
    ("mmlu", "MMLU APGR, out of domain", "RouteLLM evals, 14,037 q (card of the training)"),
    ("mmlu_eval", "  the same, routellm eval", "cross-check of the card"),
    ("gsm8k", "GSM8K APGR, out of domain", "RouteLLM evals, 1,307 q (card of the training)"),
    ("gsm8k_eval", "  the same, routellm eval", "cross-check of the card"),
    ("mmlu_cv5", "MMLU APGR, --cv 5", "the same, 5 folds by question"),
    ("gsm8k_cv5", "GSM8K APGR, --cv 5", "the same, 5 folds by question"),
    ("mmlu_random", "  random APGR (MMLU)", ""),
    ("gsm8k_random", "  random APGR (GSM8K)", ""),
    ("nway_llmrouter_aiq", "N-way quality AIQ, LLMRouter", NWAY["llmrouter"]["split"]),
    ("nway_llmrouter_random_aiq", "  random AIQ", ""),
    ("nway_llmrouter_oracle_aiq", "  oracle AIQ", ""),
    ("nway_routerbench_aiq", "N-way quality AIQ, RouterBench", NWAY["routerbench"]["split"]),
    ("nway_routerbench_random_aiq", "  random AIQ", ""),
    ("nway_routerbench_oracle_aiq", "  oracle AIQ", ""),
]
BINARY = ("mmlu", "gsm8k", "mmlu_cv5", "gsm8k_cv5")


def compare(results: dict[str, Any]) -> tuple[dict[str, float], bool | None]:
    a = (results.get("minilm") or {}).get("figures") or {}
    b = (results.get("static") or {}).get("figures") or {}
    diff = {k: b[k] - a[k] for k in a if isinstance(a.get(k), (int, float)) and isinstance(b.get(k), (int, float))}
    if not all(k in diff for k in BINARY):
        return diff, None  # a figure is missing: no verdict
    return diff, all(diff[k] >= -THRESHOLD for k in BINARY)


def table(results: dict[str, Any], diff: dict[str, float]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, (int, float)) else "-"

    encs = list(results)
    head = f"{'figure':32} {'data / split':70} " + " ".join(f"{e:>8}" for e in encs)
    head += f" {'static-minilm':>14} {'published':>10}"
    out = [head, "-" * len(head)]
    for key, label, split in ROWS:
        vals = [results[e]["figures"].get(key) for e in encs]
        if all(v is None for v in vals):
            continue
        d = diff.get(key)
        out.append(f"{label:32} {split[:70]:70} " + " ".join(f"{fmt(v):>8}" for v in vals)
                   + f" {(f'{d:+.3f}' if d is not None else '-'):>14} {fmt(PUBLISHED_MINILM.get(key)):>10}")
    out.append("")
    for e in encs:
        r = results[e]
        out.append(f"{e}: {r.get('decontamination')}")
        for b, entry in (r.get("cv5") or {}).items():
            out.append(f"{e} {b} --cv 5 retraining: {entry.get('decontamination')}")
        for pool, entry in (r.get("nway") or {}).items():
            out.append(f"{e} nway {pool}: {entry.get('decontamination')}")
        out.append(f"{e}: {r['wall_s']:.0f} s; " + ", ".join(f"{s} {v['wall_s']:.0f} s" for s, v in r["steps"].items()))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="benchmarks/results/encoder_quality.json")
    ap.add_argument("--encoders", nargs="+", choices=list(ENCODERS), default=list(ENCODERS))
    ap.add_argument("--skip-nway", action="store_true", help="binary figures only")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds allowed to each CLI step")
    args = ap.parse_args(argv)
    data = data_dir()
    os.environ["ROUTELLM_DATA_DIR"] = str(data)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    t0 = time.perf_counter()
    results = {key: run_encoder(key, ENCODERS[key], args, data) for key in args.encoders}
    diff, verdict = compare(results)
    report = {
        "what": "router quality under the MiniLM encoder and its static (model2vec) distillation; "
                "difference = static - minilm; within_0.01: static at most 0.01 APGR below MiniLM on "
                "MMLU and GSM8K, out of domain and --cv 5",
        "encoders": {k: ENCODERS[k] for k in args.encoders},
        "results": results,
        "difference": diff,
        "within_0.01": verdict,
        "published_minilm": PUBLISHED_MINILM,
        "wall_s": round(time.perf_counter() - t0, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print()
    print(table(results, diff))
    print(f"\nwithin_0.01: {verdict}; total {report['wall_s']:.0f} s")
    out = ROOT / args.json if not Path(args.json).is_absolute() else Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
    sys.exit(0)
