"""The LangChain examples of the README and of docs/langchain.md run as written, with fake chat
models in place of real ones."""

from __future__ import annotations

import contextlib
import io

from tests.readme_snippets import section_code

FAKE = "from tests.langchain.fake_models import FakeToolChatModel"


def run(code: str, name: str, namespace: dict) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), namespace)  # noqa: S102 - the documented example, as written
    return out.getvalue().splitlines()


def test_readme_lcel_example_runs_as_written():
    (block,) = section_code("Use it with LangChain")
    real = "from langchain_openai import ChatOpenAI"
    assert real in block and 'ChatOpenAI(model="gpt-4o")' in block
    code = block.replace(real, FAKE).replace("ChatOpenAI(model=", "FakeToolChatModel(model_name=")
    lines = run(code, "README:lcel", {})
    assert lines[0] in ("[gpt-4o] What is the capital of France?", "[gpt-4o-mini] What is the capital of France?")
    assert lines[1].startswith("[gpt-4o") and lines[1].endswith("] Prove that there are infinitely many primes.")
    share, total, savings = (float(x) for x in lines[2].split())
    assert 0 <= share <= 1 and total > 0 and savings >= 0


def test_docs_chain_and_agent_examples_run_as_written():
    (lcel,) = section_code("Chains", doc="docs/langchain.md")
    (agent,) = section_code("Agents", doc="docs/langchain.md")
    assert "strong = ..." in lcel and "weak = ..." in lcel
    lcel = lcel.replace("strong = ...", 'strong = FakeToolChatModel(model_name="gpt-4o")')
    lcel = lcel.replace("weak = ...", 'weak = FakeToolChatModel(model_name="gpt-4o-mini")')
    namespace: dict = {}
    exec(FAKE, namespace)
    lines = run(lcel, "docs:lcel", namespace) + run(agent, "docs:agent", namespace)
    totals = lines[0].split()
    assert float(totals[0]) > 0 and float(totals[1]) >= float(totals[0])  # cost <= all-strong cost
    assert len([line for line in lines if line.startswith(("strong ", "weak "))]) == 3
    assert lines[-1].startswith("The result is 7 ") and lines[-1].split()[-1] in ("strong", "weak")


def test_docs_what_the_router_reads_runs_as_written():
    (block,) = section_code("What the router reads", doc="docs/langchain.md")
    code = block.replace("strong = ...", 'strong = FakeToolChatModel(model_name="gpt-4o")')
    code = code.replace("weak = ...", 'weak = FakeToolChatModel(model_name="gpt-4o-mini")')
    namespace: dict = {}
    exec(FAKE, namespace)
    lines = run(code, "docs:query_from", namespace)
    assert [line.split(":")[0] for line in lines] == ["last user turn", "all user turns", "system + users"]
    rates = [float(line.split("win rate ")[1].split()[0]) for line in lines]
    assert all(0 <= r <= 1 for r in rates) and len(set(rates)) == 3  # each reader scores another text
