"""A newcomer's frictions (issue 28): each mistake gets an error that names it and the way out.

Misspelled per-call routing keywords, the one-sided-threshold warning's text, the command line's
option typos, ``.db`` files, ``store:`` prompts, ``--prices`` and descriptions, an N-way
training set that decontamination empties, a ``FunctionAgent`` over a model that cannot call
tools, and a user turn of images only. The router is real everywhere; only chat models are fakes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from langchain_core.messages import HumanMessage
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole

from langchain_routellm import ChatRouteLLM
from llamaindex_routellm import RouteLLM
from routellm_core.cli import build_parser, main
from routellm_core.queries import NoQueryText
from routellm_core.routing import Decision, RoutingSettingWarning, shared_router
from tests.langchain.fake_models import FakeToolChatModel
from tests.llamaindex.fakes import FakeLLM

Q = "Write a haiku about tea."
IMAGE_ONLY_LC = HumanMessage(content=[{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])
IMAGE_ONLY_LI = ChatMessage(role=MessageRole.USER, blocks=[ImageBlock(url="https://example.com/cat.png")])
JUDGE_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fastchat_mtbench_refs" / "judge_prompts.jsonl"


def lc_pair(**kw: Any) -> ChatRouteLLM:
    kw.setdefault("threshold", 0.5)
    return ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"),
                        weak=FakeToolChatModel(model_name="fake-weak"), router=shared_router("default"), **kw)


def li_pair(weak: FakeLLM | None = None, **kw: Any) -> RouteLLM:
    kw.setdefault("threshold", 0.5)
    return RouteLLM(strong=FakeLLM(model="fake-strong"), weak=weak or FakeLLM(model="fake-weak"),
                    router=shared_router("default"), **kw)


# --------------------------------------------------------------------------- 1. per-call keyword typos
def test_a_misspelled_routing_keyword_is_an_error_not_a_provider_argument():
    llm = lc_pair()
    with pytest.raises(TypeError, match=r"unknown routing keyword 'routellm_treshold'; did you mean "
                                        r"'routellm_threshold'\?$"):
        llm.invoke(Q, routellm_treshold=0.5)
    with pytest.raises(TypeError, match=r"config\['configurable'\] got an unknown routing keyword "
                                        r"'routellm_treshold'; did you mean 'routellm_threshold'\?"):
        llm.invoke(Q, config={"configurable": {"routellm_treshold": 0.5}})
    with pytest.raises(TypeError, match="did you mean 'routellm_strong_fraction'"):
        llm.batch([Q, Q], routellm_strong_fracton=0.3)
    with pytest.raises(TypeError, match="did you mean 'routellm_lambdas'"):
        llm.route(Q, routellm_lamdas={"cost": 1.0})
    with pytest.raises(TypeError, match="the routing keywords are routellm_threshold, routellm_strong_fraction"):
        list(llm.stream(Q, routellm_verbose=True))
    assert llm.strong.calls == llm.weak.calls == 0  # type: ignore[union-attr]  # no model was called
    # the right spelling and the model's own keywords still pass
    assert llm.invoke(Q, routellm_threshold=0.0, config={"configurable": {"thread_id": "t"}}
                      ).response_metadata["routellm_route"] == "strong"


def test_a_misspelled_routing_keyword_is_an_error_in_llamaindex_too():
    llm = li_pair()
    with pytest.raises(TypeError, match=r"unknown routing keyword 'routellm_treshold'; did you mean "
                                        r"'routellm_threshold'\?$"):
        llm.complete(Q, routellm_treshold=0.5)
    with pytest.raises(TypeError, match="did you mean 'routellm_threshold'"):
        llm.chat([ChatMessage(role="user", content=Q)], routellm_treshold=0.5)
    with pytest.raises(TypeError, match="did you mean 'routellm_threshold'"):
        asyncio.run(llm.achat([ChatMessage(role="user", content=Q)], routellm_threshhold=0.5))
    assert llm.strong.received == [] and llm.weak.received == []  # type: ignore[attr-defined]
    assert llm.complete(Q, routellm_threshold=1.0).additional_kwargs["routellm_route"] == "weak"


# --------------------------------------------------------------------------- 2. the one-sided warning
def test_the_one_sided_threshold_warning_names_its_prompts_plainly():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        shared_router("default").route([Q], threshold=0.7)
    (message,) = [str(w.message) for w in seen if issubclass(w.category, RoutingSettingWarning)]
    assert "{data}" not in message and "''s" not in message, message
    assert "router sw_ranking's calibration prompts (1250 prompts: arena_hard_prompts/arena-hard-v0.1_question.jsonl" \
           in message
    assert "in $ROUTELLM_DATA_DIR" in message


# --------------------------------------------------------------------------- 3. the command line
def test_a_misspelled_option_gets_the_subcommands_usage_and_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["route", "hi", "--treshold", "0.5"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: routellm route" in err
    assert "routellm route: error: unrecognized arguments: --treshold" in err
    assert "did you mean --threshold?" in err
    with pytest.raises(SystemExit) as exit_:
        main(["nway", "route", "hi", "--lamda", "cost=1"])
    assert exit_.value.code == 2
    assert "routellm nway route: error" in (err := capsys.readouterr().err) and "did you mean --lambda?" in err


def test_every_subcommand_has_a_description():
    def walk(parser: argparse.ArgumentParser, path: list[str]) -> list[tuple[str, str | None]]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append((" ".join([*path, name]), sub.description))
                    found += walk(sub, [*path, name])
        return found

    described = dict(walk(build_parser(), []))
    assert {"route", "score", "train", "calibrate", "eval", "label", "promote", "nway", "nway train",
            "nway eval", "nway route"} <= set(described)
    assert all(described.values()), [k for k, v in described.items() if not v]
    assert described["eval"] == "The paper's metrics on MMLU, GSM8K or MT-Bench."
    assert "The paper's metrics" in build_parser()._subparsers._group_actions[0].choices["eval"].format_help()


def traffic_store(path: Path, queries: list[str]) -> str:
    from routellm_core.learning import TrafficStore

    store = TrafficStore(path)
    pair = {"strong": "big", "weak": "small"}
    for i, q in enumerate(queries):
        store.add_call(f"call-{i}", query=q, decision=Decision.by_threshold(0.5, 0.5, pair, router="r"))
    store.close()
    return f"store:{path}"


def test_a_traffic_store_given_as_a_data_file_is_pointed_at_store(tmp_path, capsys):
    db = tmp_path / "traffic.db"
    traffic_store(db, ["one question"])
    assert main(["train", "--router", "sw_ranking", "--data", str(db), "--out", str(tmp_path / "out"),
                 "--no-decontaminate", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unsupported file type '.db'" in err and f"a traffic store? give it as store:{db}" in err


def test_calibrate_and_score_read_the_queries_of_a_traffic_store(tmp_path, capsys):
    queries = ["Prove that there are infinitely many primes.", "hi", "Prove that there are infinitely many primes.",
               "Write a sorting function in Rust.", "   ", "What is the capital of France?"]
    spec = traffic_store(tmp_path / "traffic.db", queries)
    assert main(["calibrate", "--router", "default", "--prompts", spec, "--strong-fraction", "0.5", "--quiet"]) == 0
    assert "share on these 4 prompts" in capsys.readouterr().out    # the distinct, non-blank queries
    out = tmp_path / "scored.csv"
    assert main(["score", "--router", "default", "--prompts", spec, "--out", str(out), "--quiet"]) == 0
    assert list(pd.read_csv(out)["prompt"]) == [queries[0], "hi", queries[3], queries[5]]
    assert main(["calibrate", "--prompts", f"store:{tmp_path / 'missing.db'}", "--quiet"]) == 2
    assert "missing.db" in capsys.readouterr().err


def test_label_with_a_budget_and_no_prices_names_the_option(tmp_path, capsys):
    (tmp_path / "p.txt").write_text("What is 2 + 2?\n")
    args = ["label", "--prompts", str(tmp_path / "p.txt"), "--store", str(tmp_path / "t.db"),
            "--judge-prompts", str(JUDGE_FILE), "--budget", "5",
            "--strong", "tests.learning_fakes:AnswerModel",
            "--strong-kwargs", '{"model_name": "big-llm", "careful": true}',
            "--weak", "tests.learning_fakes:AnswerModel",
            "--weak-kwargs", '{"model_name": "small-llm", "careful": false}',
            "--judge", "tests.learning_fakes:HardnessJudge", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--budget 5 cannot be kept" in err and """--prices '{"NAME": [in_per_million, out_per_million]}'""" in err
    assert "prices={" not in err
    from routellm_core.learning.label import UnpricedModelsError

    assert "give prices={name: (input_per_million" in str(UnpricedModelsError(["m"]))  # the Python API's words


def test_no_progress_bar_when_stderr_is_not_a_terminal(capsys):
    from routellm_core.progress import progress_wanted
    from routellm_core.routers import MatrixFactorizationRouter
    from tests.routing_fixtures import toy_battles

    assert progress_wanted(True) is False          # pytest's captured stderr is no terminal
    MatrixFactorizationRouter(epochs=2, strong_model="big-model", weak_model="small-model").fit(
        toy_battles(), show_progress=True)
    assert "mf epochs" not in capsys.readouterr().err


# --------------------------------------------------------------------------- 4. N-way decontamination
def test_nway_training_data_that_repeats_the_evaluation_set_says_so(tmp_path, capsys):
    evals = tmp_path / "evals"
    for d in ("mmlu/responses", "gsm8k", "mt_bench"):
        (evals / d).mkdir(parents=True)
    questions = [f"Which statement about topic {i} is true? (A) one (B) two (C) three (D) four" for i in range(6)]
    pd.DataFrame({"prompt": questions}).to_csv(evals / "mmlu/responses/mmlu_x.csv", index=False)
    pd.DataFrame({"prompt": ["What is 2 plus 2?"]}).to_csv(evals / "gsm8k/gsm8k_responses.csv", index=False)
    (evals / "mt_bench/question.jsonl").write_text(json.dumps({"turns": ["Write a poem."]}) + "\n")
    data = tmp_path / "train.json"
    data.write_text(json.dumps([{"question": q, "scores": {"big": 1, "coder": i % 2, "small": 0}}
                                for i, q in enumerate(questions)]))
    args = ["nway", "train", "--router", "quality", "--data", f"gold:{data}", "--out", str(tmp_path / "out"),
            "--eval-data-dir", str(evals), "--no-cache", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "decontamination dropped 6 of the 6 training queries (6 exact repeats" in err
    assert "evaluation prompts: mmlu (6); 0 left" in err and "gsm8k" not in err
    assert repr(questions[0]) in err and "--no-decontaminate" in err
    assert "need at least 2 queries" not in err


# --------------------------------------------------------------------------- 5. agents
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def run_agent(llm: RouteLLM) -> str:
    from llama_index.core.agent.workflow import FunctionAgent

    async def go() -> Any:
        return await FunctionAgent(tools=[add], llm=llm).run("What is 3 plus 4?")

    return str(asyncio.run(go()))


def test_a_function_agent_names_the_model_that_cannot_call_tools():
    assert run_agent(li_pair()) == "The result is 7"                 # both function-calling: it works
    llm = li_pair(weak=FakeLLM(model="fake-weak", function_calling=False))
    assert llm.metadata.is_function_calling_model is False           # honest to everyone else
    with pytest.raises(TypeError, match=r"the weak model 'fake-weak' \(FakeLLM\) does not support tool calling; "
                                        r"a FunctionAgent needs"):
        run_agent(llm)


# --------------------------------------------------------------------------- 6. a turn of images only
@pytest.mark.parametrize("policy", ["strong", "weak"])
def test_an_image_only_turn_follows_the_failure_policy_in_langchain(policy):
    llm = lc_pair(failure_policy=policy)
    for out in (llm.invoke([IMAGE_ONLY_LC]), llm.batch([[IMAGE_ONLY_LC], Q])[0],
                asyncio.run(llm.ainvoke([IMAGE_ONLY_LC]))):
        md = out.response_metadata
        assert md["routellm_route"] == policy and md["routellm_router_failed"] is True
        assert md["routellm_error_type"] == "NoQueryText"
        assert md["routellm_error_message"].startswith("no text to route on")
    assert llm.route([IMAGE_ONLY_LC]).router_failed
    with pytest.raises(ValueError, match="empty text"):              # blank text is still the caller's error
        llm.invoke([HumanMessage(content="  ")])


def test_an_image_only_turn_is_a_clear_error_under_failure_policy_raise():
    with pytest.raises(NoQueryText, match="no text to route on: the last user message has no text content"):
        lc_pair(failure_policy="raise").invoke([IMAGE_ONLY_LC])
    with pytest.raises(NoQueryText, match="no text to route on"):
        li_pair(failure_policy="raise").chat([IMAGE_ONLY_LI])


@pytest.mark.parametrize("policy", ["strong", "weak"])
def test_an_image_only_turn_follows_the_failure_policy_in_llamaindex(policy):
    llm = li_pair(failure_policy=policy)
    for resp in (llm.chat([IMAGE_ONLY_LI]), asyncio.run(llm.achat([IMAGE_ONLY_LI]))):
        kw = resp.additional_kwargs
        assert kw["routellm_route"] == policy and kw["routellm_router_failed"] is True
        assert kw["routellm_error_message"].startswith("no text to route on")
    chunks = list(llm.stream_chat([IMAGE_ONLY_LI]))
    assert chunks[0].additional_kwargs["routellm_route"] == policy
    assert getattr(llm, policy).calls == 3
