"""What the embedded routers do with non-English queries: win rates and strong shares by script.

Both shipped routers read text through all-MiniLM-L6-v2 (``default``) or a static model
distilled from it (``default-fast``), encoders trained on English. This benchmark scores the
1,250 real Arena-Hard prompts (v0.1 + v2.0, from ``$ROUTELLM_DATA_DIR/arena_hard_prompts``, else
``../shared/data`` beside the checkout), groups them by the script most of their letters are
written in (Latin; CJK, kana and Hangul; Cyrillic; the rest), and reports per group and router:
the mean win rate, its 5th-95th percentile spread, and the share sent strong at
``strong_fraction`` 0.1 / 0.3 / 0.5 through the router's own calibration table (fitted on
these same 1,250 prompts, so the shares over all of them are the asked ones). Prints the table
and writes JSON (default ``benchmarks/results/language.json``)::

    python benchmarks/language.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from routellm_core import load_router  # noqa: E402

SHARES = (0.1, 0.3, 0.5)
GROUPS = {"LATIN": "Latin script", "CJK": "Chinese, Japanese, Korean", "HIRAGANA": "Chinese, Japanese, Korean",
          "KATAKANA": "Chinese, Japanese, Korean", "HANGUL": "Chinese, Japanese, Korean", "CYRILLIC": "Cyrillic"}
OTHER = "other scripts"


def data_dir() -> Path:
    path = Path(os.environ.get("ROUTELLM_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not (path / "arena_hard_prompts").is_dir():
        sys.exit(f"needs the Arena-Hard prompts in {path}/arena_hard_prompts (set ROUTELLM_DATA_DIR)")
    return path


def script_group(text: str) -> str:
    """The group of the script most of ``text``'s letters are written in."""
    scripts = Counter(unicodedata.name(ch, "?").split()[0] for ch in text if ch.isalpha())
    if not scripts:
        return OTHER
    return GROUPS.get(scripts.most_common(1)[0][0], OTHER)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/language.json")
    args = parser.parse_args(argv)
    from routellm_core.data.prompts import read_prompts

    folder = data_dir() / "arena_hard_prompts"
    prompts = [p for name in ("arena-hard-v0.1_question.jsonl", "arena-hard-v2.0_question.jsonl")
               for p in read_prompts(folder / name)]
    groups = np.array([script_group(p) for p in prompts])
    start = time.perf_counter()
    results = []
    for name in ("default", "default-fast"):
        router = load_router(name)
        rates = router.win_rate(prompts)
        thresholds = {f: router.calibration_.threshold_for(f) for f in SHARES}
        for group in ["all", *sorted(set(groups), key=lambda g: -int((groups == g).sum()))]:
            mask = np.ones(len(prompts), bool) if group == "all" else groups == group
            r = rates[mask]
            results.append({
                "router": name, "group": group, "prompts": int(mask.sum()),
                "win_rate_mean": float(r.mean()), "win_rate_p5": float(np.percentile(r, 5)),
                "win_rate_p95": float(np.percentile(r, 95)),
                "strong_share": {str(f): float((r >= t).mean()) for f, t in thresholds.items()},
            })
    out = {"command": "python benchmarks/language.py", "data": "Arena-Hard v0.1 + v2.0 prompts (1,250)",
           "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
           "seconds": round(time.perf_counter() - start, 1), "results": results}
    for row in results:
        shares = " / ".join(f"{v:.2f}" for v in row["strong_share"].values())
        print(f"{row['router']:13} {row['group']:26} {row['prompts']:5}  win rate {row['win_rate_mean']:.3f} "
              f"[{row['win_rate_p5']:.3f}, {row['win_rate_p95']:.3f}]  strong at 0.1/0.3/0.5: {shares}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
