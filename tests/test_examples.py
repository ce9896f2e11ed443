"""The scripts in examples/ run as a user runs them, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_train_custom_router_learns_the_example_labels():
    out = run("train_custom_router.py")
    lines = out.splitlines()
    assert lines[0].startswith("strong -> gpt-4o ") and "Prove that e is irrational." in lines[0]
    assert lines[1].startswith("weak   -> gpt-4o-mini") and "Hello there!" in lines[1]


def test_route_and_calibrate_on_a_prompt_file(tmp_path):
    prompts = tmp_path / "traffic.txt"
    prompts.write_text("\n".join(f"question number {i} about topic {i % 7}" for i in range(40)))
    out = run("route_and_calibrate.py", str(prompts))
    assert out.count("win rate") == 40
    assert "strong_fraction=0.25 ->" in out
    strong = int(out.split("; ")[-1].split(" of 40")[0])
    assert strong in (10, 11)  # a quarter of 40, give or take the one prompt at the threshold
