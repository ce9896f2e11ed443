"""ruff and mypy pass on the code base, as configured in pyproject.toml."""

from __future__ import annotations

from tests.tooling import ROOT, require, run_tool


def test_ruff_finds_nothing():
    require("ruff", "ruff")
    proc = run_tool("ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, f"ruff check . found problems:\n{proc.stdout}{proc.stderr}"


def test_mypy_finds_nothing():
    require("mypy", "mypy")
    # the packages and settings come from [tool.mypy]; the cache is kept beside pytest's
    proc = run_tool("mypy", "--cache-dir", str(ROOT / ".pytest_cache" / "mypy"))
    assert proc.returncode == 0, f"mypy found problems:\n{proc.stdout}{proc.stderr}"
    assert "Success" in proc.stdout
