"""The `routellm` command line, run as a user runs it (a real subprocess, offline)."""

from __future__ import annotations

import io
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


# --------------------------------------------------------------------------- in-process CLI
from routellm_core.cli import main  # noqa: E402


def battles_file(tmp_path, models=("big-model", "small-model")):
    """Toy battles among ``models`` (two or three of big-, small-, mid-model) as a JSONL file."""
    from tests.routing_fixtures import toy_battles

    df = toy_battles()
    df = df[df["model_a"].isin(models) & df["model_b"].isin(models)]
    path = tmp_path / f"battles_{len(models)}.jsonl"
    df.to_json(path, orient="records", lines=True)
    return path


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_comes_from_the_installed_distribution(capsys):
    from importlib.metadata import PackageNotFoundError, version

    try:
        expected = version("routellm-lc")
    except PackageNotFoundError:
        expected = "unknown"
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"routellm {expected}"


def test_train_reads_the_pair_off_two_model_data_and_the_checkpoint_routes(tmp_path, capsys):
    data, ckpt = battles_file(tmp_path), tmp_path / "ckpt"
    code, out, err = run_cli(capsys, "train", "--router", "mf", "--data", f"jsonl:{data}", "--out",
                             str(ckpt), "--no-decontaminate", "--param", "epochs=2", "--quiet", "--no-cache")
    assert code == 0, err
    assert "strong big-model, weak small-model (read off the data: big-model wins" in out
    config = json.loads((ckpt / "config.json").read_text())
    assert json.dumps(config).count("big-model") >= 1
    # the paper's pair is not recorded: routing with the checkpoint's own pair works
    code, out, err = run_cli(capsys, "route", "Prove it.", "--router", str(ckpt), "--threshold", "0.5",
                             "--json", "--no-cache")
    assert code == 0, err
    assert json.loads(out)["model"] in ("big-model", "small-model")


def test_train_with_one_model_named_takes_the_other_as_its_partner(tmp_path, capsys):
    data = battles_file(tmp_path)
    code, out, err = run_cli(capsys, "train", "--router", "random", "--data", f"jsonl:{data}", "--out",
                             str(tmp_path / "r"), "--no-decontaminate", "--weak", "big-model", "--quiet")
    assert code == 0, err
    assert "strong small-model, weak big-model (strong: the other model of the data)" in out


def test_train_refuses_an_open_pair_and_models_absent_from_the_data(tmp_path, capsys):
    three = battles_file(tmp_path, ("big-model", "small-model", "mid-model"))
    common = ["--router", "random", "--data", f"jsonl:{three}", "--out", str(tmp_path / "x"),
              "--no-decontaminate", "--quiet"]
    code, _, err = run_cli(capsys, "train", *common)
    assert code == 2
    assert "the training data has 3 models" in err and "big-model, mid-model, small-model" in err
    code, _, err = run_cli(capsys, "train", *common, "--strong", "big-model")
    assert code == 2 and "name it with --strong and --weak" in err
    code, _, err = run_cli(capsys, "train", *common, "--strong", "gpt-4-1106-preview", "--weak", "small-model")
    assert code == 2
    assert "--strong 'gpt-4-1106-preview' is not a model of the training data" in err
    assert "its models: big-model, mid-model, small-model" in err
    code, _, err = run_cli(capsys, "train", *common, "--strong", "big-model", "--weak", "big-model")
    assert code == 2 and "--strong and --weak name the same model 'big-model'" in err
    assert not (tmp_path / "x").exists()


def test_train_refuses_two_models_that_win_equally_often(tmp_path, capsys):
    rows = [{"query": f"q{i}", "model_a": "x", "model_b": "y", "winner": "a" if i % 2 else "b"}
            for i in range(4)]
    data = tmp_path / "even.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = run_cli(capsys, "train", "--router", "random", "--data", f"jsonl:{data}", "--out",
                           str(tmp_path / "x"), "--no-decontaminate", "--quiet")
    assert code == 2 and "x and y win equally often (2 battles each)" in err and "--strong" in err


@pytest.mark.parametrize(
    "param, message",
    [
        ("epochz=3", "--param epochz: mf routers have no parameter 'epochz'; valid names: batch_size, dim, epochs"),
        ("epochs=abc", "--param epochs=abc: mf routers expect epochs to be int, got str 'abc'"),
        ("lr=true", "mf routers expect lr to be float, got bool True"),
        ("epochs", "--param expects KEY=VALUE, got 'epochs'"),
        ("strong_model=gpt-4", "--param strong_model: set it with --strong instead"),
        ("seed=3", "--param seed: set it with --seed instead"),
    ],
)
def test_train_checks_param_names_and_values_against_the_router(tmp_path, capsys, param, message):
    data = battles_file(tmp_path)
    code, out, err = run_cli(capsys, "train", "--router", "mf", "--data", f"jsonl:{data}", "--out",
                             str(tmp_path / "x"), "--no-decontaminate", "--param", param, "--quiet")
    assert code == 2
    assert message in err and "Traceback" not in err


def test_nway_train_checks_param_names(tmp_path, capsys):
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps([{"question": "2+2?", "scores": {"a": 1, "b": 0, "c": 1}}]))
    code, _, err = run_cli(capsys, "nway", "train", "--router", "zooter", "--data", f"gold:{gold}",
                           "--out", str(tmp_path / "n"), "--no-decontaminate", "--param", "temprature=1")
    assert code == 2
    assert "--param temprature: zooter routers have no parameter 'temprature'" in err and "temperature" in err


def test_train_stores_aliases_that_route_under_the_new_name(tmp_path, capsys):
    data, ckpt = battles_file(tmp_path), tmp_path / "ckpt"
    code, _, err = run_cli(capsys, "train", "--router", "mf", "--data", f"jsonl:{data}", "--out", str(ckpt),
                           "--no-decontaminate", "--param", "epochs=2", "--alias", "gpt-big=big-model",
                           "--alias", "tiny=small-model", "--quiet", "--no-cache")
    assert code == 0, err
    from routellm_core.checkpoints import load_router

    assert load_router(str(ckpt)).aliases == {"gpt-big": "big-model", "tiny": "small-model"}
    code, out, err = run_cli(capsys, "route", "Prove it.", "--router", str(ckpt), "--strong", "gpt-big",
                             "--weak", "tiny", "--threshold", "0", "--json", "--no-cache")
    assert code == 0, err
    assert json.loads(out)["model"] == "big-model"

    code, _, err = run_cli(capsys, "train", "--router", "random", "--data", f"jsonl:{data}", "--out",
                           str(tmp_path / "y"), "--no-decontaminate", "--alias", "gpt-5=gpt-4", "--quiet")
    assert code == 2 and "--alias gpt-5=gpt-4: 'gpt-4' is not a model of the training data" in err
    code, _, err = run_cli(capsys, "train", "--router", "random", "--data", f"jsonl:{data}", "--out",
                           str(tmp_path / "y"), "--no-decontaminate", "--alias", "gpt-5", "--quiet")
    assert code == 2 and "--alias expects NAME=KNOWN_MODEL, got 'gpt-5'" in err


# --------------------------------------------------------------------------- progress and noise
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_show_on_a_terminal_only_and_do_not_change_the_scores(monkeypatch):
    from routellm_core.progress import progress_wanted, win_rates_in_chunks
    from routellm_core.routers import RandomRouter

    texts = [f"question {i}" for i in range(10)]
    whole = RandomRouter(seed=3).fit(None).win_rate(texts)
    assert not progress_wanted(True)  # pytest captures stderr: not a terminal
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert progress_wanted(True) and not progress_wanted(False)
    chunked = win_rates_in_chunks(RandomRouter(seed=3).fit(None), texts, show_progress=True,
                                  desc="scoring", chunk_size=3)
    assert chunked.tolist() == whole.tolist()
    assert "scoring" in term.getvalue() and "10/10" in term.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    win_rates_in_chunks(RandomRouter(seed=3).fit(None), texts, show_progress=False, chunk_size=3)
    assert quiet.getvalue() == ""
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        win_rates_in_chunks(RandomRouter(seed=3).fit(None), texts, chunk_size=0)


def test_score_shows_a_progress_bar_on_a_terminal_unless_quiet(tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(f"question {i}" for i in range(300)))
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["score", "--router", "random", "--prompts", str(prompts)]) == 0
    assert "300/300" in term.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["score", "--router", "random", "--prompts", str(prompts), "--quiet"]) == 0
    assert "300/300" not in quiet.getvalue()
    assert "scored 300 prompts" in capsys.readouterr().out


def test_library_noise_is_silenced_while_a_command_runs_and_restored_after():
    import logging

    from huggingface_hub.utils import are_progress_bars_disabled

    from routellm_core.cli.quiet import quiet_libraries

    st = logging.getLogger("sentence_transformers")
    st.setLevel(logging.INFO)
    hub_before = are_progress_bars_disabled()
    with quiet_libraries():
        assert st.level == logging.WARNING and are_progress_bars_disabled()
        import transformers.utils.logging as tf_log

        assert not tf_log.is_progress_bar_enabled()  # no "Loading weights" bar
    assert st.level == logging.INFO and are_progress_bars_disabled() == hub_before
    assert tf_log.is_progress_bar_enabled() == (not hub_before)
    st.setLevel(logging.NOTSET)


def test_cli_modules_share_helpers_without_a_cycle():
    import ast
    from pathlib import Path

    import routellm_core.cli

    root = Path(routellm_core.cli.__file__).parent
    for path in sorted(root.glob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
                assert "routellm_core.cli" not in names, f"cli/{path.name} imports routellm_core.cli"
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("routellm_core"):
                assert node.module != "routellm_core.cli", f"cli/{path.name} imports routellm_core.cli"
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"cli/{path.name} borrows private {private} from {node.module}"


def test_the_command_line_is_one_package_and_python_m_runs_it():
    import importlib.util

    for gone in ("routellm_core.cli_common", "routellm_core.learning.cli", "routellm_core.nway.cli"):
        assert importlib.util.find_spec(gone) is None, f"{gone} is back: the command line lives in routellm_core.cli"
    out = routellm("--help")
    assert out.returncode == 0, out.stderr
    assert "{route,score,train,calibrate,eval,label,promote,learn,prune,nway}" in out.stdout
