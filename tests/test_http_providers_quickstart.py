"""The main command over HTTP: ``examples/quickstart.py --serve`` starts llama-cpp-python's
OpenAI-compatible server for each local model, routes the chain and the query engine through
``ChatOpenAI`` / ``OpenAILike``, prints every call and the totals, and stops the servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "quickstart.py"
CALL_LINE = re.compile(r"^  (strong|weak)\s+(\d\.\d{4})\s+(\d+)\+(\d+)\s+tok\s+\$(\d+\.\d{6})\s+(.+)$")


@pytest.mark.local_models
def test_quickstart_serve_routes_over_http_and_stops_its_servers(llama_server):
    # llama_server: the same skip / CI-failure rules (server extra, clients, models on disk)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--serve", "--max-tokens", "6", "--threads", "1",
         "--question", "What is the capital of France?", "--question", "Write a Python class for a stack."],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("models:  strong qwen2.5-coder-1.5b-instruct, weak smollm2-135m-instruct; "
                          "llama-cpp-python server over HTTP (http://127.0.0.1:")
    calls = [m for m in map(CALL_LINE.match, out.splitlines()) if m]
    assert [c[6] for c in calls][:2] == ["What is the capital of France?", "Write a Python class for a stack."]
    assert len(calls) == 4  # two chain questions, two query-engine questions
    threshold = float(re.search(r"threshold (\d\.\d{4})", out)[1])
    for c in calls:
        assert c[1] == ("strong" if float(c[2]) >= threshold else "weak"), c[0]
        assert int(c[3]) > 0 and 0 < int(c[4]) <= 6  # the server's usage; max tokens honoured
    n_strong = sum(c[1] == "strong" for c in calls)
    assert f"totals: 4 calls, {n_strong} strong" in out
    ports = re.findall(r"http://127\.0\.0\.1:(\d+)/v1", out.splitlines()[0])
    assert len(ports) == 2
    import socket

    for port in ports:  # the servers are gone
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", int(port))) != 0
