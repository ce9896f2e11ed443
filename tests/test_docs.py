"""The docs: the generated results tables and images agree with benchmarks/results, the site
builds with ``mkdocs build --strict``, and the README is a front page that links into it."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.tooling import ROOT, require, run_tool


def results_tables():
    spec = importlib.util.spec_from_file_location("results_tables", ROOT / "scripts" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_tables_and_images_match_the_benchmark_results():
    problems = results_tables().differences(ROOT)
    assert problems == [], "\n".join(problems) + "\nrun: python scripts/results_tables.py"


@pytest.fixture
def copy_of_the_docs(tmp_path: Path) -> Path:
    for folder in ("docs", "benchmarks/results"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def test_a_changed_result_is_reported(copy_of_the_docs: Path):
    tables = results_tables()
    assert tables.differences(copy_of_the_docs) == []
    path = copy_of_the_docs / "benchmarks/results/default_mmlu.json"
    run = json.loads(path.read_text())
    run["apgr"] += 0.01
    path.write_text(json.dumps(run))
    problems = tables.differences(copy_of_the_docs)
    assert "docs/results.md: its tables differ from benchmarks/results/*.json" in problems
    assert "README.md: its tables differ from benchmarks/results/*.json" in problems
    tables.write(copy_of_the_docs)
    assert tables.differences(copy_of_the_docs) == []
    assert f"{run['apgr']:.3f}" in (copy_of_the_docs / "docs/results.md").read_text()


def test_a_changed_or_missing_curve_is_reported(copy_of_the_docs: Path):
    tables = results_tables()
    png = copy_of_the_docs / "benchmarks/results/default_mmlu.png"
    png.write_bytes(png.read_bytes() + b"\0")
    (copy_of_the_docs / "docs/assets/results/nway_llmrouter_zooter.png").unlink()
    problems = tables.differences(copy_of_the_docs)
    assert "docs/assets/results/default_mmlu.png differs from benchmarks/results/default_mmlu.png" in problems
    assert any(p.startswith("docs/assets/results/nway_llmrouter_zooter.png differs") for p in problems)


def test_a_result_file_in_no_table_and_a_lost_marker_are_reported(copy_of_the_docs: Path):
    tables = results_tables()
    shutil.copy(copy_of_the_docs / "benchmarks/results/mf_mmlu.json",
                copy_of_the_docs / "benchmarks/results/new_router_mmlu.json")
    assert any("new_router_mmlu.json is in no table" in p for p in tables.differences(copy_of_the_docs))
    page = copy_of_the_docs / "docs/results.md"
    page.write_text(page.read_text().replace("<!-- results-table: nway -->\n", ""))
    with pytest.raises(ValueError, match=r"docs/results.md: generated blocks .* do not match"):
        tables.differences(copy_of_the_docs)


def test_every_curve_is_on_the_results_page():
    page = (ROOT / "docs/results.md").read_text()
    for png in (ROOT / "benchmarks/results").glob("*.png"):
        assert f"](assets/results/{png.name})" in page, png.name


def test_mkdocs_builds_strict(tmp_path: Path):
    require("mkdocs", "mkdocs")
    require("material", "mkdocs-material")
    require("mkdocstrings_handlers.python", "mkdocstrings[python]")
    proc = run_tool("mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"), timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}{proc.stderr}"
    for page in ("index.html", "results/index.html", "reference/langchain/index.html"):
        assert (tmp_path / "site" / page).exists(), page
    api = (tmp_path / "site/reference/langchain/index.html").read_text()
    assert 'id="langchain_routellm.ChatRouteLLM"' in api  # the reference comes from the docstrings


README = (ROOT / "README.md").read_text()


def test_readme_is_a_front_page():
    lines = README.splitlines()
    assert len(lines) <= 250, f"the README has {len(lines)} lines; the manual belongs in docs/"
    first_screen = "\n".join(lines[:80])
    for what in ('pip install "routellm-lc[langchain]"', "HF_HUB_OFFLINE=1 python examples/quickstart.py",
                 "HF_HUB_OFFLINE=1 python -m pytest -q", "ChatRouteLLM(", ".as_query_engine(llm=llm)"):
        assert what in first_screen, what


def test_readme_links_resolve():
    links = re.findall(r"\]\(((?:docs/)[^)#]+)(?:#[^)]*)?\)", README)
    assert links
    for link in links:
        assert (ROOT / link).exists(), link
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        assert str(page.relative_to(ROOT / "docs")) in nav, f"{page} is not in mkdocs.yml's nav"
