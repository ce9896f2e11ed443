"""The package as a user installs it: an sdist and a wheel built with ``python -m build``, the
wheel installed into a new virtual environment, and the main command and the CLI run from it,
outside the checkout (so nothing is imported from the source tree by accident)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """A venv with the built wheel installed (``--no-deps``: the dependencies come from this
    environment's site-packages, so no network and no llama.cpp rebuild are needed)."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    # built from a copy: tests running beside this one write bytecode into the checkout, and a
    # file that vanishes while the sdist lists the tree fails the build
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.pyc", "*.egg-info", ".*_cache", ".hypothesis", "build", "dist", "site", "runs",
        ".venv", "*.whl"))
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)],
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheels[0])],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return wheels[0], venv, tmp


def _run(venv: Path, args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def test_the_wheel_holds_the_packages_and_the_embedded_routers(wheel_env):
    wheel, _, _ = wheel_env
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("routellm_core", "langchain_routellm", "llamaindex_routellm"):
        assert f"{package}/__init__.py" in names
    for data in ("routellm_core/default_router/", "routellm_core/default_router_fast/", "routellm_core/nway/default/"):
        assert any(n.startswith(data) and n.endswith("config.json") for n in names), data
    assert not any(n.startswith(("tests/", "shared/", "benchmarks/")) for n in names)


@pytest.mark.local_models
def test_the_installed_wheel_runs_the_cli_and_the_main_command_outside_the_checkout(wheel_env):
    from tests.test_quickstart import local_models_or_skip

    local_models_or_skip("smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct")
    _, venv, tmp = wheel_env
    where = _run(venv, [str(venv / "bin" / "python"), "-c", "import routellm_core, langchain_routellm, "
                        "llamaindex_routellm; print(routellm_core.__file__, langchain_routellm.__file__)"], tmp)
    assert where.returncode == 0, where.stderr
    assert all(str(venv) in p for p in where.stdout.split()), where.stdout  # not the checkout's copy
    routed = _run(venv, [str(venv / "bin" / "routellm"), "route", "Prove that there are infinitely many primes.",
                         "--strong-fraction", "0.5"], tmp)
    assert routed.returncode == 0, routed.stderr
    assert "win rate" in routed.stdout.lower()
    main = _run(venv, [str(venv / "bin" / "python"), str(ROOT / "examples" / "quickstart.py")], tmp)
    assert main.returncode == 0, main.stderr[-3000:]
    assert "saved" in main.stdout.lower(), main.stdout[-2000:]
