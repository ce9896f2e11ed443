"""The README's LangChain examples run as written, with fake chat models in place of `...`."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _section_code(heading: str) -> list[str]:
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_lcel_and_agent_examples_run_as_written():
    blocks = _section_code("LangChain")
    assert len(blocks) == 2
    lcel, agent = blocks
    assert "strong = ..." in lcel and "weak = ..." in lcel
    lcel = lcel.replace("strong = ...", 'strong = FakeToolChatModel(model_name="gpt-4o")')
    lcel = lcel.replace("weak = ...", 'weak = FakeToolChatModel(model_name="gpt-4o-mini")')
    namespace: dict = {}
    exec("from tests.langchain.fake_models import FakeToolChatModel", namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(lcel, "README:lcel", "exec"), namespace)
        exec(compile(agent, "README:agent", "exec"), namespace)
    lines = out.getvalue().splitlines()
    totals = lines[0].split()
    assert float(totals[0]) > 0 and float(totals[1]) >= float(totals[0])  # cost <= all-strong cost
    assert len([line for line in lines if line.startswith(("strong ", "weak "))]) == 3
    assert lines[-1].startswith("The result is 7 ") and lines[-1].split()[-1] in ("strong", "weak")
