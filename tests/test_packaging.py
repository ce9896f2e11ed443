"""Packaging: the core imports neither framework, each adapter only its own, and the extras say so."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Imports every module of the given packages with some top-level packages made unimportable
# (a meta-path finder that raises ImportError for them), as on a machine where they are not
# installed. Prints one line per module that failed.
IMPORT_ALL = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))
    PACKAGES = sys.argv[2].split(",")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: not installed")
            return None

    sys.meta_path.insert(0, Blocker())
    failed = []
    names = []
    for package in PACKAGES:
        try:
            root = importlib.import_module(package)
        except Exception as exc:
            failed.append(f"{package}: {type(exc).__name__}: {exc}")
            continue
        names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("\\n".join(failed))
    print("LEAKED " + ",".join(leaked) if leaked else "")
    print(f"IMPORTED {len(names)}")
    """
)


def import_all(packages: list[str], blocked: list[str]) -> tuple[list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, ",".join(blocked), ",".join(packages)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return [line for line in lines if not line.startswith(("LEAKED", "IMPORTED"))], proc.stdout


def test_every_core_module_imports_without_langchain_or_llamaindex():
    failed, out = import_all(["routellm_core"], ["langchain_core", "langchain", "llama_index"])
    assert failed == [], "modules of routellm_core that need a framework:\n" + "\n".join(failed)
    assert "LEAKED" not in out and "IMPORTED" in out


def test_langchain_adapter_imports_without_llamaindex():
    failed, out = import_all(["langchain_routellm"], ["llama_index"])
    assert failed == [], "\n".join(failed)


def test_llamaindex_adapter_imports_without_langchain():
    failed, out = import_all(["llamaindex_routellm"], ["langchain_core", "langchain"])
    assert failed == [], "\n".join(failed)


def test_the_blocker_does_block():
    """The check above would pass vacuously if the blocker let imports through."""
    failed, _ = import_all(["langchain_routellm"], ["langchain_core"])
    assert failed and all("blocked" in line for line in failed)


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_frameworks_are_extras_not_base_dependencies():
    project = _pyproject()["project"]
    base = _names(project["dependencies"])
    assert not base & {"langchain-core", "langchain", "llama-index-core", "llama-index"}, base
    extras = project["optional-dependencies"]
    assert _names(extras["langchain"]) == {"langchain-core"}
    assert _names(extras["llamaindex"]) == {"llama-index-core"}
    assert "routellm-lc[" in extras["all"][0] and {"langchain", "llamaindex"} <= set(
        extras["all"][0].split("[", 1)[1].rstrip("]").split(",")
    )


def test_the_test_extra_installs_everything_the_tests_and_checks_need():
    extras = _pyproject()["project"]["optional-dependencies"]
    test = " ".join(extras["test"])
    for extra in ("all", "local", "docs", "lint"):
        assert extra in test.split("routellm-lc[", 1)[1].split("]", 1)[0].split(","), extra
    assert {"ruff", "mypy"} <= _names(extras["lint"])
    assert {"mkdocs", "mkdocs-material", "mkdocstrings"} <= _names(extras["docs"])


def test_readme_install_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    developer = 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir "torch==2.13.0" -e ".[test]"'
    assert developer in readme and developer in ci
    assert 'pip install "routellm-lc[langchain]"' in readme
    assert 'pip install "routellm-lc[llamaindex]"' in readme
    # the first install block is the one that works today, from a checkout; the package is not on PyPI yet
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert developer in first_block and "routellm-lc[" not in first_block
