"""Write the docs' results tables and curve images from ``benchmarks/results``.

The tables in ``docs/results.md``, ``docs/speed.md`` and the README sit between markers::

    <!-- results-table: NAME -->
    ...generated markdown...
    <!-- /results-table: NAME -->

and are rewritten from the JSON files in ``benchmarks/results``; the curve images
(``benchmarks/results/*.png``) are copied to ``docs/assets/results``. Nothing else in the pages
is touched.

    python scripts/results_tables.py            # rewrite the tables, copy the images
    python scripts/results_tables.py --check    # exit 1 when the docs disagree with the results

``tests/test_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("benchmarks/results")
ASSETS = Path("docs/assets/results")

# Binary routers: (row label, trained on, bold, the result files of each column). A column holds
# the evaluation on the full benchmark and/or on seeded samples; several are joined by "; ".
def _cells(prefix: str) -> list[list[str]]:
    return [[f"{prefix}_mmlu"], [f"{prefix}_mmlu_cv5"], [f"{prefix}_gsm8k"], [f"{prefix}_gsm8k_cv5"]]


BINARY_ROWS: list[tuple[str, str, bool, list[list[str]]]] = [
    ("**sw_ranking, the embedded default**", "RouterBench + LLMRouter train (gold)", True, _cells("default")),
    ("mf", "the same data", False, _cells("mf")),
    ("bert (MiniLM-L6, 40 steps, batch 16, length 64)", "a seeded 2,000-query subset of the same data", False,
     _cells("bert")),
    (
        "causal_llm (SmolLM2-135M-Instruct, LoRA r=8, 110 steps, batch 8, length 48)",
        "a seeded 1,000-query subset of the same data",
        False,
        [["causal_llm_mmlu", "causal_llm_mmlu_sample2000"], ["causal_llm_mmlu_cv5_sample2000"],
         ["causal_llm_gsm8k"], ["causal_llm_gsm8k_cv5"]],
    ),
    (
        "causal_llm, small (the same, 18 steps on 160 queries)",
        "a seeded 160-query subset of the same data",
        False,
        [["causal_llm_mmlu_sample100"], ["causal_llm_small_mmlu_cv5_sample2000"],
         ["causal_llm_gsm8k_sample500"], ["causal_llm_small_gsm8k_cv5"]],
    ),
]
# (column title, the random baseline's file)
BINARY_COLUMNS = [
    ("MMLU", "default_mmlu"),
    ("MMLU `--cv 5`", "default_mmlu_cv5"),
    ("GSM8K", "default_gsm8k"),
    ("GSM8K `--cv 5`", "default_gsm8k_cv5"),
]
POOLS = {"llmrouter": "LLMRouter", "routerbench": "RouterBench"}
NWAY_DEFAULT = ("llmrouter", "quality")  # the embedded N-way default
IMAGE_CAPTIONS = {
    "default_mmlu": "Embedded default on MMLU, out of domain",
    "default_mmlu_cv5": "Embedded default on MMLU, 5-fold in-domain adaptation",
    "default_gsm8k": "Embedded default on GSM8K, out of domain",
    "default_gsm8k_cv5": "Embedded default on GSM8K, 5-fold in-domain adaptation",
    "learning_curve": "Learning curves: APGR of the default plus k labelled in-domain questions",
    "nway_llmrouter_quality": "N-way: quality router (the embedded default) on LLMRouter's test split",
    "nway_llmrouter_zooter": "N-way: zooter on LLMRouter's test split",
    "nway_routerbench_quality": "N-way: quality router on RouterBench's test splits",
    "nway_routerbench_zooter": "N-way: zooter on RouterBench's test splits",
}


USED: set[str] = set()  # the result files the tables were made from


def load(root: Path, stem: str) -> dict[str, Any]:
    USED.add(stem)
    path = root / RESULTS / f"{stem}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: the docs' results tables are made from it") from None


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def apgr_cell(runs: list[dict[str, Any]], reference_random: float, bold: bool) -> str:
    if not runs:
        return "-"
    parts = []
    for run in runs:
        value = f"{run['apgr']:.3f}"
        if bold and run["sample"] is None:
            value = f"**{value}**"
        notes = []
        if run["sample"] is not None:
            notes.append(f"sample of {run['sample']:,}")
        if run["sample"] is not None or round(run["random_apgr"], 3) != round(reference_random, 3) or len(runs) > 1:
            notes.append(f"random {run['random_apgr']:.3f}")
        parts.append(value + (f" ({'; '.join(notes)})" if notes else ""))
    return "; ".join(parts)


def binary_apgr(root: Path) -> str:
    references = [load(root, stem)["random_apgr"] for _, stem in BINARY_COLUMNS]
    rows = [["random (10 seeds)", "-"] + [f"{r:.3f}" for r in references]]
    for label, data, bold, cells in BINARY_ROWS:
        runs = [[load(root, stem) for stem in cell] for cell in cells]
        rows.append([label, data] + [apgr_cell(r, ref, bold) for r, ref in zip(runs, references)])
    return table(["router", "trained on"] + [c[0] for c in BINARY_COLUMNS], rows)


def binary_cpt(root: Path) -> str:
    """CPT(50%) / CPT(80%) on the full benchmarks: the share of strong calls for 50% / 80% of the gain."""
    rows = []
    for label, _, _, cells in BINARY_ROWS:
        full = [[r for r in (load(root, stem) for stem in cell) if r["sample"] is None] for cell in cells]
        rows.append([label] + [f"{f[0]['cpt50']:.1%} / {f[0]['cpt80']:.1%}" if f else "-" for f in full])
    ref = [load(root, stem) for _, stem in BINARY_COLUMNS]
    rows.append(["random (10 seeds)"] + [f"{r['random_cpt50']:.1%} / {r['random_cpt80']:.1%}" for r in ref])
    return table(["router"] + [c[0] for c in BINARY_COLUMNS], rows)


def binary_data(root: Path) -> str:
    rows = []
    for benchmark in ("mmlu", "gsm8k"):
        run = load(root, f"default_{benchmark}")
        rows.append([
            benchmark.upper() if benchmark == "mmlu" else "GSM8K",
            f"{run['n_queries']:,}",
            f"{run['n_removed_contaminated']}",
            f"{run['strong_model']} {run['strong_score']:.1f}",
            f"{run['weak_model']} {run['weak_score']:.1f}",
        ])
    return table(["benchmark", "questions", "contaminated prompts removed", "strong model, accuracy (%)",
                  "weak model, accuracy (%)"], rows)


def nway(root: Path) -> str:
    rows = []
    for pool, title in POOLS.items():
        for router in ("quality", "zooter"):
            run = load(root, f"nway_{pool}_{router}")
            best = run["best_single_model"]
            default = (pool, router) == NWAY_DEFAULT
            reach = run["cost_at_best_single_quality"]
            if reach is None:
                reached = "not reached"
            else:
                cheaper = 1 - reach / best["cost"]
                reached = f"${reach:.5f} ({cheaper:.1%} cheaper)"
            rows.append([
                f"{title} ({run['n_queries']})",
                f"**{router}** (the embedded default)" if default else router,
                f"**{run['aiq']:.3f}**" if run["aiq"] > run["random_aiq"] else f"{run['aiq']:.3f}",
                f"{run['random_aiq']:.3f}",
                f"{run['oracle_aiq']:.3f}",
                "yes" if run["above_random_everywhere"] else "no",
                f"{run['raw_min_margin_vs_random'] * 100:.1f} points",
                f"{best['name']} ({best['quality']:.3f}, ${best['cost']:.5f})",
                reached,
            ])
    return table(
        ["pool (test split)", "router", "AIQ", "random choice AIQ", "oracle AIQ",
         "frontier above random everywhere", "raw sweep's largest dip below random",
         "best single model (quality, cost per query)", "router reaches that quality at"],
        rows,
    )


def nway_headroom(root: Path) -> str:
    d = load(root, "nway_headroom")
    rows = []
    for pool, run in d["pools"].items():
        for name, r in run["rows"].items():
            mark = " (validation's pick)" if name == run["chosen_on_validation"] else ""
            rows.append([f"{POOLS[pool]} ({run['n_test']})", f"`{name}`{mark}", f"{r['validation_headroom']:.0%}",
                         f"**{r['test_headroom']:.0%}**", f"{r['aiq']:.3f}",
                         "yes" if r["raw_above_random_everywhere"] else
                         f"no ({r['raw_min_margin_vs_random'] * 100:.1f} points)"])
    return table(["pool (test split)", "predicted scores", "validation headroom share (5 folds of train)",
                  "test headroom share", "AIQ", "raw sweep never below random"], rows)


def nway_noise_floor(root: Path) -> str:
    d = load(root, "nway_headroom")
    rows = []
    for pool, run in d["pools"].items():
        for f in run["raw_sweep_noise_floor"]:
            lo, hi = f["raw_min_margin_range"]
            rows.append([f"{POOLS[pool]} ({run['n_test']})", f"{f['noise_sd']}", str(f["seeds"]),
                         f"{f['share_of_seeds_below_random']:.0%}",
                         f"**{f['raw_min_margin_median'] * 100:.1f} points** ({lo * 100:.1f} to {hi * 100:.1f})",
                         f"{run['rows']['quality']['raw_min_margin_vs_random'] * 100:.1f} points"])
    return table(["pool (test split)", "noise sd", "seeds", "seeds whose raw sweep dips below random",
                  "largest dip, median (range)", "`quality` router's largest dip"], rows)


def readme_default(root: Path) -> str:
    """The embedded default's APGR, for the README."""
    rows = []
    for label, suffix in (("out of domain", ""), ("with 5-fold in-domain labels (`--cv 5`)", "_cv5")):
        runs = [load(root, f"default_{b}{suffix}") for b in ("mmlu", "gsm8k")]
        rows.append([label] + [f"{r['apgr']:.3f} (random {r['random_apgr']:.3f})" for r in runs])
    mmlu, gsm8k = (load(root, f"default_{b}") for b in ("mmlu", "gsm8k"))
    return table(["APGR", f"MMLU ({mmlu['n_queries']:,} questions)", f"GSM8K ({gsm8k['n_queries']:,} questions)"],
                 rows)


def images(root: Path) -> str:
    blocks = []
    for png in sorted((root / RESULTS).glob("*.png")):
        caption = IMAGE_CAPTIONS.get(png.stem, png.stem.replace("_", " "))
        blocks.append(f"![{caption}](assets/results/{png.name})\n*{caption}* (`benchmarks/results/{png.name}`)")
    return "\n\n".join(blocks)


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def routing_speed(root: Path) -> str:
    r = load(root, "routing_speed")
    fast = "fast_decision_queries" in r
    on_torch = "torch_decision_queries" in r  # the default with its encoder forced onto torch

    def both(fmt: Callable[[str], str]) -> list[str]:
        return [fmt("")] + ([fmt("torch_")] if on_torch else []) + ([fmt("fast_")] if fast else [])

    def encoder_alone(kind: str) -> Callable[[str], str]:
        return lambda p: (f"{ms(r[f'{p}encoder_{kind}_median_ms'])} (p99 {ms(r[f'{p}encoder_{kind}_p99_ms'])})"
                          if f"{p}encoder_{kind}_median_ms" in r else "")

    def ratio(kind: str) -> Callable[[str], str]:
        return lambda p: (f"{r[f'{p}decision_over_encoder_{kind}']:.2f}x"
                          if f"{p}decision_over_encoder_{kind}" in r else "")

    def decision(kind: str) -> Callable[[str], str]:
        return lambda p: (f"{ms(r[f'{p}decision_{kind}_median_ms'])} (p99 {ms(r[f'{p}decision_{kind}_p99_ms'])})"
                          if f"{p}decision_{kind}_p99_ms" in r else
                          f"{ms(r[f'{p}decision_{kind}_median_ms'])} (p90 {ms(r[f'{p}decision_{kind}_p90_ms'])})")

    rows = [
        ["encoder", *both(lambda p: f"`{r.get(f'{p}encoder', 'sentence-transformers/all-MiniLM-L6-v2')}`")],
        *([["encoder runs on", *both(lambda p: str(r.get(f"{p}encoder_backend", "")))]]
          if "encoder_backend" in r else []),
        *([["the encoder alone, one new short question", *both(encoder_alone("short"))]]
          if "encoder_short_median_ms" in r else []),
        ["one routing decision, short question (about 12 words), encoder included", *both(decision("short"))],
        *([["decision / encoder alone (medians), short question", *both(ratio("short"))]]
          if "decision_over_encoder_short" in r else []),
        *([["the encoder alone, one new Arena-Hard prompt", *both(encoder_alone("arena_hard"))]]
          if "encoder_arena_hard_median_ms" in r else []),
        ["one routing decision, real Arena-Hard prompt", *both(decision("arena_hard"))],
        ["one routing decision, repeated query (encoder cache hit)",
         *both(lambda p: ms(r[f"{p}decision_cached_median_ms"]))],
        [f"batch of {r['batch_size']:,} distinct short prompts, one `win_rate` call",
         *both(lambda p: f"{r[f'{p}batch_short_queries_per_second']:,.0f} prompts/s")],
        [f"batch of {r['batch_size']:,} distinct Arena-Hard prompts",
         *both(lambda p: f"{r[f'{p}batch_arena_hard_queries_per_second']:,.0f} prompts/s")],
    ]
    header = (["what", "`default` (MiniLM)"] + (["`default`, encoder on torch (fallback)"] if on_torch else [])
              + (["`default-fast` (static)"] if fast else []))
    sw = [
        [f"SW ranking, one decision over {r['sw_battles']:,} battles of {r['sw_source']} "
         f"({r['sw_unique_queries']:,} queries, {r['sw_tiers']} tiers), embedding cached",
         f"{r['sw_decision_median_ms']:.2f} ms"],
        ["the same decision by RouteLLM's full per-query scikit-learn refit over the same battles",
         f"{r['sw_full_refit_median_ms']:.0f} ms ({r['sw_speedup']:.0f}x slower)"],
        [f"largest difference between the two methods' win rates ({r['sw_queries_compared']} queries)",
         f"{r['sw_max_abs_win_rate_difference']:.1e}"],
    ]
    return (f"Machine: {r['machine']}; medians of {r['decision_queries']} decisions.\n\n" + table(header, rows)
            + "\n\n" + table(["SW ranking", "figure"], sw))


def encoder_quality(root: Path) -> str:
    d = load(root, "encoder_quality")
    m, f = d["results"]["minilm"]["figures"], d["results"]["static"]["figures"]
    rows_spec = [
        ("MMLU APGR, out of domain", "RouteLLM's MMLU, 14,037 questions", "mmlu", "mmlu_random"),
        ("GSM8K APGR, out of domain", "RouteLLM's GSM8K, 1,307 questions", "gsm8k", "gsm8k_random"),
        ("MMLU APGR, `--cv 5`", "the same, 5 folds by question", "mmlu_cv5", "mmlu_cv5_random"),
        ("GSM8K APGR, `--cv 5`", "the same, 5 folds by question", "gsm8k_cv5", "gsm8k_cv5_random"),
        ("N-way `quality` AIQ, LLMRouter", "9 models, test split", "nway_llmrouter_aiq", "nway_llmrouter_random_aiq"),
        ("N-way `quality` AIQ, RouterBench", "11 models, three test splits", "nway_routerbench_aiq",
         "nway_routerbench_random_aiq"),
    ]
    rows = [[label, data, f"{m[k]:.3f}", f"{f[k]:.3f}", f"{f[k] - m[k]:+.3f}", f"{m[rnd]:.3f}"]
            for label, data, k, rnd in rows_spec if k in m and k in f]
    verdict = "within" if d["within_0.01"] else "not within"
    return (table(["figure", "data / split", "MiniLM", "static", "static - MiniLM", "random"], rows)
            + f"\n\nThe static encoder is {verdict} 0.01 APGR of MiniLM on every binary figure "
            f"(`within_0.01: {str(d['within_0.01']).lower()}`).")


VARIANT_NOTES = {
    "sw": "the embedded default's recipe",
    "sw+templates": "the same, template lines stripped",
    "sw-fast": "the same recipe on the static encoder (`default-fast`)",
    "joint": "one MLP of all 20 models' correctness, read as a pair",
    "irt": "item response theory over all 20 models, linear difficulty",
    "irt-mlp": "the same, MLP difficulty",
    "sw+joint": "mean of sw and joint (standardised logits)",
    "sw+irt": "mean of sw and irt (standardised logits)",
}


def default_variants(root: Path) -> str:
    d = load(root, "default_variants")
    rows = []
    for name, r in d["results"].items():
        mark = " (validation's pick)" if name == d["chosen_on_validation"] else ""
        lo, hi = r["mmlu"]["win_rate_p5_p95"] if "mmlu" in r else (float("nan"), float("nan"))
        rows.append([f"`{name}`{mark}", VARIANT_NOTES.get(name, ""), f"**{r['validation_apgr']:.3f}**",
                     f"{r['routerbench-test']['apgr']:.3f}",
                     f"{r['mmlu']['apgr']:.3f}" if "mmlu" in r else "-",
                     f"{r['gsm8k']['apgr']:.3f}" if "gsm8k" in r else "-", f"{lo:.3f}-{hi:.3f}"])
    return table(["variant", "what", "validation (unseen task, mean of 3)", "RouterBench test (seen tasks)",
                  "MMLU, out of domain", "GSM8K, out of domain", "MMLU win rates, p5-p95"], rows)


def classifier_speed(root: Path) -> str:
    r = load(root, "bert_causal_llm_speed")
    rows = []
    labels = {"bert": "bert (MiniLM-L6, length {n})", "causal_llm": "causal_llm (SmolLM2-135M, length {n})"}
    for key, label in labels.items():
        rows.append([
            label.format(n=r[f"{key}_max_length"]),
            f"{r[f'{key}_decision_short_median_ms']:.1f} ms / {r[f'{key}_decision_arena_hard_median_ms']:.1f} ms",
            f"{r[f'{key}_batch_short_queries_per_second']:.1f} / "
            f"{r[f'{key}_batch_arena_hard_queries_per_second']:.1f} prompts/s",
        ])
    batch = f"batch of {r['bert_batch_queries']}, short / Arena-Hard"
    header = ["router", "one decision, short / Arena-Hard prompt", batch]
    machine = f"Machine: {r['machine']}, device {r['bert_device']}; medians of {r['bert_decision_queries']} decisions."
    return machine + "\n\n" + table(header, rows)


def langchain_overhead(root: Path) -> str:
    d = load(root, "langchain_overhead")
    r = d["results"]
    rows = [
        ["constructing a configured `ChatRouteLLM`", f"{r['construct_us']:.1f} µs"],
        ["the routing decision alone, new query", f"{r['decision_new_query_us'] / 1000:.1f} ms"],
        ["the routing decision alone, repeated query", f"{r['decision_cached_query_us'] / 1000:.1f} ms"],
        ["calling the fake chat model directly", f"{r['direct_invoke_us'] / 1000:.2f} ms"],
        ["what a routed `invoke` adds, new query", f"{r['overhead_new_query_us'] / 1000:.1f} ms"],
        ["what a routed `invoke` adds, repeated query", f"{r['overhead_cached_query_us'] / 1000:.1f} ms"],
    ]
    m = d["machine"]
    return f"Machine: {m['cpus']} CPUs, Python {m['python']}; medians of {d['n']} calls.\n\n" + table(
        ["what", "figure"], rows
    )


def load_table(root: Path) -> str:
    d = load(root, "load")
    names = {"langchain": "`ChatRouteLLM.ainvoke`", "llamaindex": "`RouteLLM.achat`"}
    kinds = {"cold": "new (each one encoded)", "warm": "repeated (embedding cached)",
             "warm+capture": "repeated, `capture=` a SQLite store",
             "warm+capture+shadow": "repeated, capture and `shadow=` 10% of calls",
             "direct": "no router (the fake model alone)"}
    routers = [("results", "`default`"), ("results_fast", "`default-fast`")]
    rows = []
    for adapter, label in names.items():
        for key, router in routers:
            for kind, text in kinds.items():
                r = d.get(key, {}).get(adapter, {}).get(kind)
                if r is None or (kind == "direct" and key != "results"):
                    continue
                rows.append([label, "-" if kind == "direct" else router, text, f"{r['calls_per_s']:.1f}",
                             fmt_ms(r["overhead_p50_ms"]), fmt_ms(r["overhead_p99_ms"])])
    m = d["machine"]
    return (
        f"Machine: {m['cpus']} CPUs, Python {m['python']}; {d['n_concurrent']:,} calls started at once, "
        f"the fake models take {d['model_delay_s'] * 1000:.0f} ms.\n\n"
        + table(["adapter", "router", "queries", "calls/s", "router overhead per call, p50", "p99"], rows)
    )


def store_scale(root: Path) -> str:
    d = load(root, "store_scale")
    rows = [[f"{r['calls']:,}", r["database"], "-" if r["store_mb"] is None else f"{r['store_mb']:,} MB",
             f"{r['cycle_seconds']:.0f} s", f"{r['cycle_mb']:,} MB", f"{r['baseline_mb']:,} MB",
             f"{r['status']}, {r['labelled']} labels"] for r in d["results"]]
    return (f"Machine: {d['machine']}; `{d['command']}`.\n\n"
            + table(["captured calls", "database", "store size", "one cycle", "memory of the cycle",
                     "memory of the loaded router", "outcome"], rows))


def replicas(root: Path) -> str:
    d = load(root, "replicas")
    during, other = d["latency_during_swap"], d["latency_otherwise"]
    switches = "; ".join(f"version {s['version']}: {s['replicas_switched']} replicas, the last after "
                         f"{s['last_replica_after_s']:.1f} s" for s in d["switch_seconds"]) or "none"
    cycles = ", ".join(c["status"] for c in d["cycles"]) or "none"
    rows = [
        ["calls served (4 replicas)", f"{d['calls_served']:,}"],
        ["calls failed", f"{d['calls_failed']}"],
        ["rows captured after every replica flushed", f"{d['captured_rows']:,}"],
        ["learning cycles", cycles],
        ["versions live in turn (publishes, then a rollback)",
         ", ".join(str(v) for v in d["versions_published"])
         + (f", back to {d['rolled_back_to']}" if d["rolled_back_to"] is not None else "")],
        [f"publish to every replica routing with it (poll every {d['poll_interval_s']:g} s)", switches],
        ["latency of a routed call while a replica swaps, p50 / p99",
         f"{during['p50_ms']} / {during['p99_ms']} ms ({during['n']:,} calls)" if during["n"] else "-"],
        ["latency of a routed call otherwise, p50 / p99",
         f"{other['p50_ms']} / {other['p99_ms']} ms ({other['n']:,} calls)"],
    ]
    return (f"Machine: {d['machine']}; {d['seconds']:.0f} s of serving at about {d['rate_per_replica']:g} calls/s per "
            f"replica; `{d['command']}`.\n\n" + table(["what", "figure"], rows))


def fmt_ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.1f} ms"


def ray_table(root: Path) -> str:
    d = load(root, "ray_throughput")
    rows = []
    for run in d["runs"]:
        workers = f"{run['workers']} worker" + ("s" if run["workers"] > 1 else "")
        engine = "one process" if run["engine"] == "local" else f"Ray, {workers}"
        diff = f"{run['max_abs_diff_to_local']:.1e}" if "max_abs_diff_to_local" in run else "-"
        rows.append([engine, str(run["torch_threads"]), f"{run['prompts_per_s']:.1f}", diff])
    return (
        f"Machine: {d['machine']}; {d['prompts']['n']:,} prompts, median {d['prompts']['median_chars']} "
        f"characters; `ray.init` {d['ray_init_s']:.1f} s, not counted.\n\n"
        + table(["engine", "torch threads per process", "prompts/s", "largest win-rate difference to one process"],
                rows)
    )


def learning_curve(root: Path) -> str:
    d = load(root, "learning_curve")
    names = {"mmlu": "MMLU (gold)", "gsm8k": "GSM8K (gold)", "alpacaeval": "AlpacaEval (GPT-4 judge)"}
    ks = sorted({p["k"] for r in d["results"] for p in r["points"]})
    rows = []
    for r in d["results"]:
        by_k = {p["k"]: p for p in r["points"]}
        cells = []
        for k in ks:
            p = by_k.get(k)
            if p is None:
                cells.append("-")
                continue
            base = p["baseline_apgr_mean"]
            cells.append(f"{p['router_apgr_mean']:.3f} ± {p['router_apgr_std']:.3f}"
                         + (f" ({base:.3f})" if base is not None else ""))
        rows.append([names.get(r["dataset"], r["dataset"]), *cells])
    return (
        f"APGR on held-out questions (mean ± std over {d['seeds']} seeds; at most {d['eval_size']:,} held-out "
        f"questions per run); in brackets, logistic regression on the k labels alone. Machine: {d['machine']}; "
        f"`{d['command']}`, {d['seconds'] / 60:.0f} minutes.\n\n"
        + table(["data", *[f"k = {k}" for k in ks]], rows)
    )


def learning_selection(root: Path, stem: str = "learning_selection") -> str:
    """Selection strategies (``learning_curve.py --strategies``): one row per data set and strategy;
    in each column the best strategy in bold, and after each figure its difference to random."""
    d = load(root, stem)
    names = {"mmlu": "MMLU (gold)", "gsm8k": "GSM8K (gold)", "alpacaeval": "AlpacaEval (GPT-4 judge)"}
    order = {n: i for i, n in enumerate(names)}
    results = sorted((r for r in d["results"] if r.get("strategies")), key=lambda r: order.get(r["dataset"], 99))
    ks = sorted({p["k"] for r in results for pts in r["strategies"].values() for p in pts})
    rows = []
    for r in results:
        by = {s: {p["k"]: p for p in pts} for s, pts in r["strategies"].items()}
        random = by.get("random", {})
        for strategy, points in by.items():
            cells = []
            for k in ks:
                p = points.get(k)
                if p is None:
                    cells.append("-")
                    continue
                cell = f"{p['router_apgr_mean']:.3f} ± {p['router_apgr_std']:.3f}"
                if k and strategy != "random" and k in random:
                    cell += f" ({p['router_apgr_mean'] - random[k]['router_apgr_mean']:+.3f})"
                top = max(by[s][k]["router_apgr_mean"] for s in by if k in by[s])
                if k and round(p["router_apgr_mean"], 3) == round(top, 3):
                    cell = f"**{cell}**"
                cells.append(cell)
            rows.append([names.get(r["dataset"], r["dataset"]), f"`{strategy}`", *cells])
    def size(r: dict[str, Any]) -> str:
        full = r.get("n_questions_in_dataset", r["n_questions"])
        cut = f" of {full:,} (a seeded sample of {d['max_questions']:,} questions)" if full != r["n_questions"] else ""
        return f"{names.get(r['dataset'], r['dataset']).split(' (')[0]} {r['n_questions']:,}{cut}"

    return (
        f"APGR on held-out questions (mean ± std over {d['seeds']} seeds; at most {d['eval_size']:,} held out per "
        f"run and a pool of at least 2k to select from, the same split for every strategy); in brackets, the "
        f"difference to `random` at the same k; the best of each column in bold. Prompts: "
        f"{'; '.join(size(r) for r in results)}. Machine: {d['machine']}; `{d['command']}`, "
        f"{d['seconds'] / 60:.0f} minutes.\n\n"
        + table(["data", "strategy", *[f"k = {k}" for k in ks]], rows)
    )


def label_learners(root: Path) -> str:
    d = load(root, "label_learners")
    names = list(d["results"][0]["apgr_mean"])
    title = {"gsm8k": "GSM8K", "mmlu": "MMLU", "alpacaeval": "AlpacaEval"}
    rows = []
    for r in d["results"]:
        means = r["apgr_mean"]
        top = max(means.values())
        rows.append([f"{title.get(r['dataset'], r['dataset'])}, k = {r['k']}"]
                    + [f"**{means[n]:.3f}**" if means[n] == top else f"{means[n]:.3f}" if n in means else "-"
                       for n in names])
    return (f"APGR on held-out questions, mean of {d['seeds']} seeds, at most {d['eval_size']:,} held-out "
            f"questions per run; the best of each row in bold; `{d['command']}`.\n\n"
            + table(["data, labels"] + [f"`{n}`" for n in names], rows))


def readme_learning(root: Path) -> str:
    d = load(root, "learning_curve")
    names = {"mmlu": "MMLU", "gsm8k": "GSM8K", "alpacaeval": "AlpacaEval (chat, judge labels)"}
    rows = []
    for r in d["results"]:
        by_k = {p["k"]: p for p in r["points"]}
        if 0 in by_k and 500 in by_k:
            rows.append([names.get(r["dataset"], r["dataset"]), f"{by_k[0]['router_apgr_mean']:.3f}",
                         f"{by_k[500]['router_apgr_mean']:.3f}", f"{by_k[500]['baseline_apgr_mean']:.3f}"])
    return table(["APGR on held-out questions", "default", "default + 500 labels",
                  "logistic regression on the 500 labels"], rows)


def language(root: Path) -> str:
    d = load(root, "language")
    rows = [[f"`{r['router']}`", r["group"], f"{r['prompts']:,}", f"{r['win_rate_mean']:.3f}",
             f"{r['win_rate_p5']:.3f}-{r['win_rate_p95']:.3f}",
             " / ".join(f"{v:.2f}" for v in r["strong_share"].values())] for r in d["results"]]
    return (f"{d['data']}, grouped by the script most of each prompt's letters are written in; `{d['command']}`.\n\n"
            + table(["router", "prompts", "n", "mean win rate", "p5-p95", "strong share at strong_fraction "
                     "0.1 / 0.3 / 0.5"], rows))


PAGES: dict[str, dict[str, Callable[[Path], str]]] = {
    "README.md": {"readme-default": readme_default, "readme-learning": readme_learning,
                  "default-variants": default_variants},
    "docs/results.md": {
        "binary-data": binary_data,
        "binary-apgr": binary_apgr,
        "binary-cpt": binary_cpt,
        "nway": nway,
        "nway-headroom": nway_headroom,
        "nway-noise-floor": nway_noise_floor,
        "language": language,
        "images": images,
    },
    "docs/learning.md": {"learning-curve": learning_curve, "learning-selection": learning_selection,
                         "label-learners": label_learners},
    "docs/speed.md": {
        "routing-speed": routing_speed,
        "classifier-speed": classifier_speed,
        "langchain-overhead": langchain_overhead,
        "load": load_table,
        "encoder-quality": encoder_quality,
        "ray": ray_table,
    },
    "docs/production.md": {"store-scale": store_scale, "replicas": replicas},
}
BLOCK = re.compile(
    r"(<!-- results-table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results-table: (?P=name) -->)", re.S
)


def render_page(root: Path, page: str) -> str:
    """The page with every generated block rewritten; a block that the page lacks is an error."""
    text = (root / page).read_text()
    makers = PAGES[page]
    found = {m["name"] for m in BLOCK.finditer(text)}
    if found != set(makers):
        raise ValueError(
            f"{page}: generated blocks {sorted(found)} do not match the script's {sorted(makers)}; "
            "add or remove the <!-- results-table: NAME --> markers"
        )
    return BLOCK.sub(lambda m: m[1] + makers[m["name"]](root) + "\n" + m[4], text)


def expected_assets(root: Path) -> dict[Path, Path]:
    """docs asset -> the benchmark image it copies."""
    return {root / ASSETS / p.name: p for p in sorted((root / RESULTS).glob("*.png"))}


def differences(root: Path = ROOT) -> list[str]:
    """What in docs/ disagrees with benchmarks/results; empty when all agree."""
    USED.clear()
    problems = []
    for page in PAGES:
        if render_page(root, page) != (root / page).read_text():
            problems.append(f"{page}: its tables differ from benchmarks/results/*.json")
    unused = sorted({p.stem for p in (root / RESULTS).glob("*.json")} - USED)
    problems += [f"{RESULTS}/{stem}.json is in no table of the docs (add it to scripts/results_tables.py)"
                 for stem in unused]
    wanted = expected_assets(root)
    for dst, src in wanted.items():
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            problems.append(f"{dst.relative_to(root)} differs from {src.relative_to(root)}")
    assets = root / ASSETS
    extra = sorted(set(assets.glob("*.png")) - set(wanted)) if assets.exists() else []
    problems += [f"{p.relative_to(root)} has no image in {RESULTS}" for p in extra]
    return problems


def write(root: Path = ROOT) -> None:
    for page in PAGES:
        (root / page).write_text(render_page(root, page))
    (root / ASSETS).mkdir(parents=True, exist_ok=True)
    wanted = expected_assets(root)
    for dst, src in wanted.items():
        dst.write_bytes(src.read_bytes())
    for stale in set((root / ASSETS).glob("*.png")) - set(wanted):
        stale.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report differences, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run: python scripts/results_tables.py", file=sys.stderr)
        return 1 if problems else 0
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
