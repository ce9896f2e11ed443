"""Run a developer tool (ruff, mypy, mkdocs) from the test suite: skipped with the reason where it
is not installed, a failure under CI (``CI`` set), where the ``test`` extra must have installed it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(module: str, package: str) -> None:
    """Skip (fail under CI) when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        message = f"{package} is not installed (pip install -e '.[test]' installs it)"
        if in_ci():
            pytest.fail(message + "; CI must run every check")
        pytest.skip(message)


def run_tool(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` in the repository root; the output is in the result."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"},
    )
