"""The `routellm` command line, run as a user runs it (a real subprocess, offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def routellm(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "routellm_core.cli", *args], capture_output=True,
                          text=True, env={**ENV, **kw.pop("env", {})}, timeout=600, **kw)


def test_route_prints_win_rate_threshold_and_decision_of_the_default():
    out = routellm("route", "Prove that there are infinitely many primes.")
    assert out.returncode == 0, out.stderr
    assert "win rate:" in out.stdout and "threshold:" in out.stdout
    assert "decision:  strong" in out.stdout or "decision:  weak" in out.stdout


def test_route_json_threshold_semantics():
    out = routellm("route", "hello", "Prove Fermat's last theorem for n = 4.", "--threshold", "0", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["route"] for r in rows] == ["strong", "strong"]
    assert rows[0]["model"] == "gpt-4-1106-preview" and rows[0]["threshold"] == 0.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["route", "hi", "--threshold", "1.5"], "threshold must be in [0, 1]"),
        (["route", "   "], "text 0 is empty"),
        (["route", "hi", "--strong", "gpt-99"], "model 'gpt-99' is unknown"),
        (["route", "hi", "--router", "/nonexistent/ckpt"], "neither 'default'"),
        (["eval", "--router", "random", "--benchmark", "mmlu", "--data-dir", "/nonexistent"], "/nonexistent"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args, message):
    out = routellm(*args)
    assert out.returncode == 2
    assert message in out.stderr


def test_train_calibrate_and_route_a_jsonl_dataset(tmp_path):
    from tests.routing_fixtures import toy_battles

    data = tmp_path / "battles.jsonl"
    toy_battles().to_json(data, orient="records", lines=True)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(["hello", "Prove that 17 is prime.", "thanks!", "Integrate sin(x)."]))
    ckpt = tmp_path / "ckpt"
    out = routellm("train", "--router", "mf", "--data", f"jsonl:{data}", "--out", str(ckpt),
                   "--no-decontaminate", "--param", "epochs=5", "--strong", "big-model",
                   "--weak", "small-model", "--quiet", "--no-cache")
    assert out.returncode == 0, out.stderr
    assert "60 battles" in out.stdout
    card = json.loads((ckpt / "config.json").read_text())["card"]
    assert card["data"][0]["battles"] == 60 and card["command"].startswith("routellm train")
    out = routellm("calibrate", "--router", str(ckpt), "--prompts", str(prompts),
                   "--strong-fraction", "0.5", "--write", "--no-cache")
    assert out.returncode == 0, out.stderr
    assert "strong_fraction 0.50 -> threshold" in out.stdout
    out = routellm("route", "Prove it.", "--router", str(ckpt), "--strong-fraction", "0.5", "--no-cache")
    assert out.returncode == 0, out.stderr
    assert "strong_fraction=0.5" in out.stdout
