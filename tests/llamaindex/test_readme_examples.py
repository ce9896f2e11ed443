"""The LlamaIndex examples of the README and of docs/llamaindex.md run as written, with fake
LLMs in place of real ones."""

from __future__ import annotations

import ast
import contextlib
import io

import pytest

from tests.readme_snippets import section_code


def test_readme_query_engine_example_runs_as_written():
    (block,) = section_code("Use it with LlamaIndex")
    real = "from llama_index.llms.openai import OpenAI"
    assert real in block and 'OpenAI(model="gpt-4o")' in block
    code = block.replace(real, "from tests.llamaindex.fakes import FakeLLM as OpenAI")
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(code, "README:query_engine", "exec"), namespace)  # noqa: S102 - the README, as written
        finally:
            if "costs" in namespace:
                namespace["costs"].detach()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(("[gpt-4o] answer to: ", "[gpt-4o-mini] answer to: "))  # the fake's answer
    share, total, savings = (float(x) for x in lines[-1].split())
    assert share in (0.0, 1.0) and total > 0 and savings >= 0
    assert namespace["costs"].totals.calls == 1


@pytest.mark.asyncio
async def test_docs_query_engine_and_agent_examples_run_as_written(tmp_path, monkeypatch):
    from llama_index.core import MockEmbedding, Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "primes.txt").write_text("Euclid proved that there are infinitely many primes.")
    (docs / "tea.txt").write_text("Green tea is brewed at about 80 degrees Celsius.")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "_embed_model", MockEmbedding(embed_dim=8))

    (query_engine,) = section_code("Query engines", doc="docs/llamaindex.md")
    (agent,) = section_code("Agents", doc="docs/llamaindex.md")
    assert "strong = ..." in query_engine and "weak = ..." in query_engine
    query_engine = query_engine.replace("strong = ...", 'strong = FakeLLM(model="gpt-4o")')
    query_engine = query_engine.replace("weak = ...", 'weak = FakeLLM(model="gpt-4o-mini")')
    namespace: dict = {}
    exec("from tests.llamaindex.fakes import FakeLLM", namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(query_engine, "docs:query_engine", "exec"), namespace)
            code = compile(agent, "docs:agent", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            await eval(code, namespace)
        finally:
            namespace["costs"].detach()
    lines = out.getvalue().splitlines()
    total, strong_cost = (float(x) for x in lines[0].split()[:2])
    assert 0 < total <= strong_cost
    assert namespace["costs"].totals.calls >= 3
    assert lines[-1] == "The result is 7"


def test_docs_what_the_router_reads_runs_as_written():
    (block,) = section_code("What the router reads", doc="docs/llamaindex.md")
    code = block.replace("strong = ...", 'strong = FakeLLM(model="gpt-4o")')
    code = code.replace("weak = ...", 'weak = FakeLLM(model="gpt-4o-mini")')
    out = io.StringIO()
    namespace: dict = {}
    exec("from tests.llamaindex.fakes import FakeLLM", namespace)
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs:query_from", "exec"), namespace)  # noqa: S102 - the documented example
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["last user turn", "all user turns", "system + users"]
    rates = [float(line.split("win rate ")[1].split()[0]) for line in lines]
    assert all(0 <= r <= 1 for r in rates) and len(set(rates)) == 3
