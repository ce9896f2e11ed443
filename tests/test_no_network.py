"""Importing the project, and routing with the embedded default, opens no network connection.

Each check runs in a fresh interpreter whose socket layer refuses and records every attempt to
resolve a name or connect over IP, so a library that tries and silently swallows the failure is
caught too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

GUARD = textwrap.dedent(
    """
    import json, socket
    attempts = []

    def _refuse(what):
        def refuse(*args, **kwargs):
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}"[:200])
            raise OSError(f"network access attempted: {what}")
        return refuse

    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _is_ip(sock):
        return sock.family in (socket.AF_INET, socket.AF_INET6)

    def connect(self, address):
        if _is_ip(self):
            return _refuse("socket.connect")(self, address)
        return _connect(self, address)

    def connect_ex(self, address):
        if _is_ip(self):
            return _refuse("socket.connect_ex")(self, address)
        return _connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.create_connection = _refuse("create_connection")
    socket.getaddrinfo = _refuse("getaddrinfo")
    """
)

PACKAGES = ("routellm_core", "langchain_routellm", "llamaindex_routellm")


def _run(body: str, env: dict[str, str]) -> dict:
    code = (
        GUARD
        + textwrap.dedent(body)
        + "\nprint('RESULT' + json.dumps({'attempts': attempts, **result}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


@pytest.fixture(scope="module")
def online_env() -> dict[str, str]:
    """No offline switches: the code itself must not reach for the network."""
    drop = {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_the_guard_catches_a_connection_attempt(online_env):
    result = _run(
        """
        import urllib.request
        try:
            urllib.request.urlopen("http://example.com", timeout=1)
        except Exception as exc:
            result = {"error": type(exc).__name__}
        """,
        online_env,
    )
    assert result["attempts"] and result["error"] in ("URLError", "OSError")


def test_importing_every_module_of_every_package_opens_no_connection(online_env):
    result = _run(
        f"""
        import importlib, pkgutil
        imported = []
        for name in {PACKAGES!r}:
            package = importlib.import_module(name)
            imported.append(name)
            for info in pkgutil.walk_packages(package.__path__, name + "."):
                importlib.import_module(info.name)
                imported.append(info.name)
        result = {{"imported": imported}}
        """,
        online_env,
    )
    assert result["attempts"] == []
    imported = set(result["imported"])
    assert set(PACKAGES) <= imported
    expected = {
        "routellm_core.checkpoints",
        "routellm_core.encoders",
        "routellm_core.cli",
        "routellm_core.batch",
        "routellm_core.ray_engine",
        "langchain_routellm.chat_models",
        "llamaindex_routellm.llms",
    }
    assert expected <= imported, sorted(expected - imported)


def test_routing_with_the_embedded_default_opens_no_connection(online_env):
    result = _run(
        """
        from routellm_core import load_router
        from langchain_routellm import ChatRouteLLM
        from llamaindex_routellm import RouteLLM
        router = load_router("default")
        rates = router.win_rate(["Prove that there are infinitely many primes.", "hi!"])
        result = {"rates": [float(r) for r in rates]}
        """,
        online_env,
    )
    assert result["attempts"] == []
    assert len(result["rates"]) == 2 and all(0 <= r <= 1 for r in result["rates"])
