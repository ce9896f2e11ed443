"""The README's LangChain examples run as written, with fake chat models in place of `...`."""

from __future__ import annotations

import contextlib
import io

from tests.readme_snippets import section_code



def test_lcel_and_agent_examples_run_as_written():
    blocks = section_code("LangChain")
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
