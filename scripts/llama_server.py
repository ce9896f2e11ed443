"""Start and stop llama-cpp-python's OpenAI-compatible HTTP server over local GGUF models.

    python scripts/llama_server.py start [NAME=PATH ...]   # prints shell `export` lines
    python scripts/llama_server.py stop PID [PID ...]      # stops those servers

The tests (``tests/test_http_providers_*.py``) and ``examples/quickstart.py --serve`` use it.
By default it serves the quickstart's two models, ``qwen2.5-coder-1.5b-instruct`` (strong) and
``smollm2-135m-instruct`` (weak), each under its own name, each from its own
``python -m llama_cpp.server --config_file ...`` process on a free 127.0.0.1 port: one endpoint
per model, as vLLM serves them. (One llama-cpp-python server can list several models in its
config file, but it holds one in memory at a time and reloads on every switch: 1 to 8 s per
routed call that changes model on a busy 2-core machine, against 0.2 to 1.3 s for a call.)
Both models are ChatML models and are served with
llama-cpp-python's ``chatml-function-calling`` chat format, which gives them OpenAI tool calls
(``tool_choice`` ``"auto"`` or a named function, constrained by a grammar). Requests are
served one at a time and a new request never interrupts a running one
(``interrupt_requests: false``), so concurrent clients queue.

Needs ``llama-cpp-python[server]`` (the ``test`` extra installs it). :func:`start` raises
:class:`LlamaServerUnavailable` when the server extra is missing, so callers can skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct")
CHAT_FORMAT = "chatml-function-calling"
ENDPOINTS_ENV = "ROUTELLM_TEST_LLAMA_ENDPOINTS"  # {"served name": "http://host:port/v1", ...}, strong first
SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


class LlamaServerUnavailable(RuntimeError):
    """llama-cpp-python's server cannot run here (the package or its ``server`` extra is missing)."""


@dataclass(frozen=True)
class Server:
    endpoints: dict[str, str]   # served name -> http://127.0.0.1:PORT/v1, an OpenAI client's base_url
    pids: tuple[int, ...]
    models: dict[str, str]      # served name -> GGUF path
    log_files: dict[str, str]   # served name -> the server's log


def missing_modules() -> list[str]:
    """The server's modules that are not installed (empty when it can run)."""
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def default_model_paths(names: tuple[str, ...] = DEFAULT_MODELS) -> dict[str, str]:
    """The files of known local models (``examples/local_model_files.py``); missing ones are fetched."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from local_model_files import fetch_model_file, find_model_file
    finally:
        sys.path.remove(str(ROOT / "examples"))
    out = {}
    for name in names:
        path = find_model_file(name) or fetch_model_file(name, log=lambda line: print(line, file=sys.stderr))
        out[name] = str(path)
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:  # noqa: S310 - 127.0.0.1 only
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(
    models: Mapping[str, str] | None = None,
    *,
    n_ctx: int = 1024,
    n_threads: int = 1,
    timeout: float = 180.0,
    chat_format: str | None = CHAT_FORMAT,
) -> Server:
    """Start one server per model of ``models`` (``{served name: gguf path}``, default
    :data:`DEFAULT_MODELS`) and wait until each answers ``GET /v1/models``; :func:`stop` ends them.

    Raises:
        LlamaServerUnavailable: ``llama-cpp-python[server]`` is not installed.
        RuntimeError: a server exited or did not answer within ``timeout`` (its log is in the message).
    """
    missing = missing_modules()
    if missing:
        raise LlamaServerUnavailable(
            f"llama-cpp-python's server needs {', '.join(missing)}: pip install 'llama-cpp-python[server]' "
            "(the test extra installs it)"
        )
    models = dict(models or default_model_paths())
    workdir = tempfile.mkdtemp(prefix="routellm-llama-server-")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    endpoints: dict[str, str] = {}
    logs: dict[str, str] = {}
    try:
        for i, (name, path) in enumerate(models.items()):
            port = _free_port()
            config = {
                "host": "127.0.0.1",
                "port": port,
                "interrupt_requests": False,
                "models": [{
                    "model": path,
                    "model_alias": name,
                    "n_ctx": n_ctx,
                    "n_threads": n_threads,
                    "n_threads_batch": n_threads,
                    "n_batch": 256,
                    "seed": 0,
                    "verbose": False,
                    **({"chat_format": chat_format} if chat_format else {}),
                }],
            }
            config_file = os.path.join(workdir, f"config-{i}.json")
            Path(config_file).write_text(json.dumps(config, indent=2))
            logs[name] = os.path.join(workdir, f"server-{i}.log")
            with open(logs[name], "wb") as log:
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "llama_cpp.server", "--config_file", config_file],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                )
            endpoints[name] = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + timeout
        waiting = set(models)
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                if procs[name].poll() is not None:
                    raise RuntimeError(_failure(name, f"exited with status {procs[name].returncode}", logs[name]))
                if _ready(endpoints[name]):
                    waiting.discard(name)
            if waiting:
                time.sleep(0.2)
        if waiting:
            name = sorted(waiting)[0]
            raise RuntimeError(_failure(name, f"did not answer in {timeout:.0f} s", logs[name]))
    except BaseException:
        stop(*(p.pid for p in procs.values()))
        raise
    return Server(endpoints=endpoints, pids=tuple(p.pid for p in procs.values()), models=models, log_files=logs)


def _failure(name: str, how: str, log_file: str) -> str:
    tail = Path(log_file).read_text(errors="replace")[-3000:]
    return f"llama-cpp-python's server for {name} {how}; its log ends:\n{tail}"


def stop(*pids: int, timeout: float = 15.0) -> None:
    """Stop the server processes ``pids`` (SIGTERM, then SIGKILL); a process already gone is fine."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        if alive:
            time.sleep(0.1)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _alive(pid)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child
        return done == 0
    except ChildProcessError:  # not our child (started by another process): is it still there?
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def main(argv: list[str]) -> int:
    if argv[:1] == ["start"]:
        models = None
        if len(argv) > 1:
            pairs = [a.split("=", 1) for a in argv[1:]]
            if any(len(p) != 2 for p in pairs):
                print("usage: llama_server.py start [NAME=PATH ...]", file=sys.stderr)
                return 2
            models = dict(pairs)
        server = start(models)
        print(f"export {ENDPOINTS_ENV}={shlex.quote(json.dumps(server.endpoints))}")
        print(f"export ROUTELLM_TEST_LLAMA_PIDS={shlex.quote(' '.join(map(str, server.pids)))}")
        return 0
    if argv[:1] == ["stop"] and len(argv) >= 2:
        stop(*(int(pid) for pid in argv[1:]))
        return 0
    print("usage: llama_server.py start [NAME=PATH ...] | stop PID [PID ...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
