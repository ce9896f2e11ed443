"""examples/learn_from_traffic.py on the real local models: label 16 prompts (Qwen answers and
judges, SmolLM2 answers), update the default router with the battles, and see its win rates move.
Marked ``local_models`` (minutes on a 2-core CPU); skipped with the reason where models are missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_quickstart import local_models_or_skip

ROOT = Path(__file__).resolve().parents[1]
JUDGE_FILE = ROOT.parent / "shared" / "data" / "fastchat_mtbench_refs" / "judge_prompts.jsonl"


@pytest.mark.local_models
@pytest.mark.data
def test_labelling_local_traffic_moves_the_routers_win_rates(tmp_path):
    local_models_or_skip("smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct")
    if not JUDGE_FILE.exists():
        pytest.skip(f"{JUDGE_FILE} not present")
    store, figures = tmp_path / "traffic.db", tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "learn_from_traffic.py"), "--judge-prompts", str(JUDGE_FILE),
         "--store", str(store), "--limit", "16", "--json", str(figures)],
        capture_output=True, text=True, timeout=3600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the figures from the JSON file: a piped stdout can lose its tail when llama.cpp tears down
    assert figures.exists(), f"the example stopped before its end; stdout: {proc.stdout[-2000:]}"
    result = json.loads(figures.read_text())
    assert (result["labelled"], result["failed"]) == (16, 0), result
    assert sum(result["judged"].values()) + result["unparsable"] == 16, result
    assert result["win_rates_before"] != result["win_rates_after"], result   # the labels moved the router
    from routellm_core.learning import TrafficStore

    battles = TrafficStore(store).battles()
    assert len(battles) == 16 and set(battles["source"]) == {"label"}
    assert set(battles["judge_prompt"]) == {"pair-v2"} and battles["answer_a"].str.len().gt(0).all()
