"""Labelling the user's own prompts with an LLM judge, and the traffic store behind it.

The models behind the labeller are fakes (async functions and the frameworks' fake chat
models); the judge prompts are FastChat's real file, the store a real SQLite database."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from routellm_core.learning import (
    JudgeError,
    JudgePrompt,
    PairwiseJudge,
    StoreError,
    TrafficStore,
    as_chat_fn,
    label,
    load_judge_prompts,
    load_model,
    read_prompts,
)
from routellm_core.learning.label import Prompt, is_transient
from routellm_core.learning.store import BackgroundWriter

JUDGE_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fastchat_mtbench_refs" / "judge_prompts.jsonl"
PROMPTS = {"pair-v2": JudgePrompt("pair-v2", "Judge.", "Q: {question}\nA: {answer_a}\nB: {answer_b}"),
           "pair-math-v1": JudgePrompt("pair-math-v1", "Judge.", "Q: {question}\nR: {ref_answer_1}\nA: {answer_a}\n"
                                                                "B: {answer_b}")}
PRICES = {"strong": (10.0, 30.0), "weak": (1.0, 2.0), "judge": (5.0, 15.0)}


def named(name: str, fn):
    fn.__name__ = name
    return fn


def answers(name: str, text: str = "{q} answered by {name}", fail: dict | None = None):
    """An async model answering every prompt; ``fail`` maps a prompt to the exception to raise."""
    calls: list[str] = []

    async def model(system, user):
        calls.append(user)
        if fail and user in fail:
            exc = fail[user]
            raise exc() if isinstance(exc, type) else exc
        return text.format(q=user, name=name)

    return named(name, model), calls


def judge_preferring(marker: str | None, *, unparsable: int = 0):
    """A judge that picks the answer holding ``marker`` (``None``: always picks position A, i.e. a
    fully position-biased judge); its first ``unparsable`` replies hold no verdict."""
    state = {"calls": 0}

    async def judge(system, user):
        state["calls"] += 1
        if state["calls"] <= unparsable:
            return "I cannot decide."
        if marker is None:
            return "[[A]]"
        a = user.split("\nA: ")[1].split("\nB: ")[0]
        return "[[A]]" if marker in a else "[[B]]"

    return named("judge", judge), state


def run(coro):
    return asyncio.run(coro)


# --------------------------------------------------------------------------- the judge
@pytest.mark.data
def test_the_published_mt_bench_prompts_load_and_render():
    if not JUDGE_FILE.exists():
        pytest.skip(f"{JUDGE_FILE} not present")
    prompts = load_judge_prompts(JUDGE_FILE)
    assert {"pair-v2", "pair-math-v1"} <= set(prompts) and not any("multi-turn" in n for n in prompts)
    text = prompts["pair-math-v1"].render("2+2?", "4", "5", reference="4")
    assert "[The Start of Reference Answer]\n4\n" in text and "[The Start of Assistant B's Answer]\n5" in text
    assert '"[[A]]" if assistant A is better' in prompts["pair-v2"].system


def test_bad_judge_prompt_files_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("ROUTELLM_JUDGE_PROMPTS", raising=False)
    with pytest.raises(JudgeError, match="give the judge prompts file"):
        load_judge_prompts()
    with pytest.raises(JudgeError, match="does not exist"):
        load_judge_prompts(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(JudgeError, match="line 1 is not a judge prompt"):
        load_judge_prompts(bad)
    single = tmp_path / "single.jsonl"
    single.write_text(json.dumps({"name": "single-v1", "type": "single", "system_prompt": "s",
                                  "prompt_template": "t"}) + "\n")
    with pytest.raises(JudgeError, match="no pairwise prompt"):
        load_judge_prompts(single)


def test_both_orders_cancel_position_bias_and_unparsable_verdicts_are_never_guessed():
    fair, _ = judge_preferring("by strong")
    v = run(PairwiseJudge(fair, PROMPTS).compare("q", "q by strong", "q by weak"))
    assert (v.winner, v.first, v.second, v.prompt) == ("a", "a", "a", "pair-v2")
    biased, _ = judge_preferring(None)             # always "[[A]]": the two orders disagree
    v = run(PairwiseJudge(biased, PROMPTS).compare("q", "x", "y"))
    assert (v.winner, v.first, v.second) == ("tie", "a", "b")
    flaky, state = judge_preferring("by strong", unparsable=2)
    v = run(PairwiseJudge(flaky, PROMPTS, retries=2).compare("q", "q by strong", "q by weak"))
    assert v.winner == "a" and state["calls"] == 4          # asked again twice, then both orders
    mute, state = judge_preferring("by strong", unparsable=100)
    v = run(PairwiseJudge(mute, PROMPTS, retries=1).compare("q", "a", "b"))
    assert (v.winner, v.first, v.second) == (None, None, None) and state["calls"] == 4
    ref = run(PairwiseJudge(fair, PROMPTS).compare("2+2?", "by strong: 4", "5", reference="4"))
    assert ref.prompt == "pair-math-v1"


# --------------------------------------------------------------------------- labelling
def test_label_stores_battles_with_provenance_and_costs(tmp_path):
    strong, _ = answers("strong")
    weak, _ = answers("weak")
    judge, _ = judge_preferring("by strong")
    store = TrafficStore(tmp_path / "t.db")
    report = label(["What is 2+2?", "Name a prime."], strong=strong, weak=weak, judge=judge, store=store,
                   judge_prompts=PROMPTS, prices=PRICES, progress=False)
    assert (report.labelled, report.failed, report.skipped, report.stopped) == (2, 0, 0, None)
    b = store.battles()
    assert set(b["winner"]) == {"a"} and set(b["model_a"]) == {"strong"} and set(b["model_b"]) == {"weak"}
    assert set(b["judge"]) == {"judge"} and set(b["judge_prompt"]) == {"pair-v2"} and set(b["source"]) == {"label"}
    assert (b["cost_a"] > b["cost_b"]).all() and (b["cost_judge"] > 0).all()
    assert report.spent == pytest.approx(Decimal(str(b[["cost_a", "cost_b", "cost_judge"]].to_numpy().sum())))
    assert list(store.training_battles().columns) == ["query", "model_a", "model_b", "winner", "source"]


def test_a_crash_mid_run_loses_nothing_and_a_rerun_continues(tmp_path):
    prompts = [f"question {i}" for i in range(6)]
    strong, _ = answers("strong", fail={"question 3": KeyboardInterrupt})
    weak, _ = answers("weak")
    judge, _ = judge_preferring("by strong")
    store = TrafficStore(tmp_path / "t.db")
    with pytest.raises(KeyboardInterrupt):
        label(prompts, strong=strong, weak=weak, judge=judge, store=store, judge_prompts=PROMPTS,
              concurrency=1, progress=False)
    assert sorted(store.battles()["query"]) == prompts[:3]      # every finished battle was written
    strong, calls = answers("strong")
    report = label(prompts, strong=strong, weak=weak, judge=judge, store=store, judge_prompts=PROMPTS,
                   concurrency=2, progress=False)
    assert (report.skipped, report.labelled) == (3, 3) and sorted(calls) == prompts[3:]
    assert sorted(store.battles()["query"]) == prompts


def test_transient_model_errors_are_retried_and_lasting_ones_fail_the_prompt_only(tmp_path):
    class RateLimitError(Exception):
        pass

    attempts = {"n": 0}

    async def flaky(system, user):
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise RateLimitError("429 slow down")
        return "fine"

    weak, _ = answers("weak", fail={"broken": ValueError("bad request: content filter")})
    judge, _ = judge_preferring("fine")
    store = TrafficStore(tmp_path / "t.db")
    report = label(["ok", "broken"], strong=named("strong", flaky), weak=weak, judge=judge, store=store,
                   judge_prompts=PROMPTS, retries=3, backoff=0.0, concurrency=1, progress=False)
    assert (report.labelled, report.failed) == (1, 1) and "content filter" in report.errors[0]
    assert store.battles()["query"].tolist() == ["ok"]          # the failed prompt is not stored
    assert is_transient(RateLimitError()) and is_transient(TimeoutError()) and not is_transient(ValueError())


def test_the_budget_stops_the_run_cleanly_and_says_so(tmp_path):
    strong, _ = answers("strong", text="x " * 200)
    weak, _ = answers("weak")
    judge, _ = judge_preferring(None)
    store = TrafficStore(tmp_path / "t.db")
    report = label([f"q{i}" for i in range(10)], strong=strong, weak=weak, judge=judge, store=store,
                   judge_prompts=PROMPTS, prices=PRICES, budget=0.01, concurrency=1, progress=False)
    assert 0 < report.labelled < 10 and "budget of $0.0100 is spent" in report.stopped
    assert report.spent >= Decimal("0.01") and len(store.battles()) == report.labelled
    with pytest.raises(ValueError, match="no price for"):
        label(["q"], strong=strong, weak=weak, judge=judge, store=store, judge_prompts=PROMPTS,
              prices={"strong": (1.0, 1.0)}, budget=1.0, progress=False)


def test_bad_labelling_input_is_refused_up_front(tmp_path):
    strong, _ = answers("strong")
    judge, _ = judge_preferring(None)
    store = TrafficStore(tmp_path / "t.db")
    with pytest.raises(ValueError, match="one model"):
        label(["q"], strong=strong, weak=strong, judge=judge, store=store, judge_prompts=PROMPTS, progress=False)
    with pytest.raises(ValueError, match="concurrency"):
        label(["q"], strong=strong, weak=judge, judge=judge, store=store, judge_prompts=PROMPTS, concurrency=0)
    with pytest.raises(ValueError, match="non-empty text"):
        label([" "], strong=strong, weak=judge, judge=judge, store=store, judge_prompts=PROMPTS)
    with pytest.raises(TypeError, match="cannot call int"):
        as_chat_fn(42)


def test_framework_models_and_import_paths_are_labelling_models(tmp_path):
    from tests.langchain.fake_models import FakeToolChatModel
    from tests.llamaindex.fakes import FakeLLM

    strong = load_model("tests.langchain.fake_models:FakeToolChatModel", {"model_name": "lc-strong"})
    gen = run(as_chat_fn(strong)("Be brief.", "hello there"))
    assert gen.model == "lc-strong" and "hello there" in gen.text and gen.input_tokens is not None
    weak = FakeLLM(model="li-weak")
    gen = run(as_chat_fn(weak)("Be brief.", "hello there"))
    assert gen.model == "li-weak" and gen.text.startswith("[li-weak]") and gen.output_tokens is not None
    judge, _ = judge_preferring("lc-strong")
    store = TrafficStore(tmp_path / "t.db")
    report = label(["hello there"], strong=strong, weak=weak, judge=judge, store=store, judge_prompts=PROMPTS,
                   progress=False)
    assert report.labelled == 1 and store.battles()["winner"].tolist() == ["a"]
    with pytest.raises(ValueError, match="package.module:ClassName"):
        load_model("nocolon")
    with pytest.raises(ImportError, match="cannot import 'no_such_pkg'"):
        load_model("no_such_pkg:Model")
    with pytest.raises(AttributeError, match="has no 'Nope'"):
        load_model("tests.langchain.fake_models:Nope")
    assert isinstance(FakeToolChatModel(), FakeToolChatModel)


def test_prompt_files_in_three_formats_and_from_the_store(tmp_path):
    (tmp_path / "p.jsonl").write_text(json.dumps({"query": "a"}) + "\n" + json.dumps(
        {"turns": ["b", "b2"], "reference": "r"}) + "\n")
    (tmp_path / "p.csv").write_text("prompt,other\nc,1\nd,2\n")
    (tmp_path / "p.txt").write_text("e\n\nf\n")
    assert read_prompts(tmp_path / "p.jsonl") == [Prompt("a"), Prompt("b", "r")]
    assert [p.query for p in read_prompts(tmp_path / "p.csv")] == ["c", "d"]
    assert [p.query for p in read_prompts(tmp_path / "p.txt")] == ["e", "f"]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    with pytest.raises(ValueError, match="line 1 has no prompt text"):
        read_prompts(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match="does not exist"):
        read_prompts(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="no prompts"):
        read_prompts(tmp_path / "empty.txt")


# --------------------------------------------------------------------------- the store
def test_feedback_becomes_training_labels_and_redaction_runs_first(tmp_path):
    from routellm_core.routing import Decision

    store = TrafficStore(tmp_path / "t.db", redact=lambda t: t.replace("alice@example.com", "<email>"))
    pair = {"strong": "big", "weak": "small"}
    store.add_call("run-1", query="mail alice@example.com the report",
                   decision=Decision.by_threshold(0.2, 0.5, pair, router="r"), source="langchain")
    store.add_call("run-2", query="prove it", decision=Decision.by_threshold(0.3, 0.5, pair, router="r"))
    store.add_call("run-3", query="hard one", decision=Decision.by_threshold(0.9, 0.5, pair, router="r"))
    store.rate("run-1", "down")
    store.rate("run-2", "up")
    store.rate("run-3", "down")                      # a strong call's rating says nothing of the weak model
    calls = store.calls().set_index("call_id")
    assert calls.loc["run-1", "query"] == "mail <email> the report" and calls.loc["run-1", "rating_label"] == "down"
    t = store.training_battles().sort_values("query")
    assert t[["query", "model_a", "model_b", "winner", "source"]].values.tolist() == [
        ["mail <email> the report", "big", "small", "a", "feedback"],
        ["prove it", "big", "small", "tie", "feedback"]]
    with pytest.raises(StoreError, match="rating must be one of"):
        store.rate("run-1", "meh")
    with pytest.raises(StoreError, match=r"in \[0, 1\]"):
        store.rate("run-1", 3)
    with pytest.raises(StoreError, match="winner must be"):
        store.add_battle(query="q", model_a="a", model_b="b", winner="strong", source="s")
    assert store.add_battle(query="q", model_a="a", model_b="b", winner="a", source="s")
    assert not store.add_battle(query="q", model_a="a", model_b="b", winner="a", source="s")  # stored once


def test_an_unavailable_store_is_a_clear_error_and_never_fails_a_live_write(tmp_path, caplog):
    with pytest.raises(StoreError, match="cannot open the traffic store"):
        TrafficStore("nosuchdialect://x")
    with pytest.raises(StoreError, match="cannot open the traffic store"):
        TrafficStore(tmp_path / "missing-dir" / "deeper" / "t.db")
    writer = BackgroundWriter(maxsize=2)

    def broken():
        raise StoreError("disk full")

    with caplog.at_level(logging.WARNING, logger="routellm_core.learning"):
        for _ in range(3):
            writer.submit(broken)
        assert writer.flush(5.0)
    assert writer.errors + writer.dropped == 3 and writer.errors >= 1
    assert sum("disk full" in r.getMessage() for r in caplog.records) == 1   # warned once per cause


# --------------------------------------------------------------------------- the three commands
@pytest.mark.data
def test_label_train_and_promote_from_the_command_line(tmp_path, capsys):
    if not JUDGE_FILE.exists():
        pytest.skip(f"{JUDGE_FILE} not present")
    from routellm_core.checkpoints import load_router
    from routellm_core.cli import main
    from tests.learning_fakes import prompts

    (tmp_path / "p.txt").write_text("\n".join(prompts(5)) + "\n")
    db = str(tmp_path / "traffic.db")
    label_args = ["label", "--prompts", str(tmp_path / "p.txt"), "--store", db, "--judge-prompts", str(JUDGE_FILE),
                  "--strong", "tests.learning_fakes:AnswerModel", "--strong-kwargs",
                  '{"model_name": "big-llm", "careful": true}',
                  "--weak", "tests.learning_fakes:AnswerModel", "--weak-kwargs",
                  '{"model_name": "small-llm", "careful": false}',
                  "--judge", "tests.learning_fakes:HardnessJudge", "--quiet"]
    assert main(label_args) == 0
    assert "labelled 100 battle(s)" in capsys.readouterr().out
    assert main(label_args) == 0                                      # a rerun labels nothing twice
    assert "labelled 0 battle(s) (0 with an unparsable verdict), skipped 100" in capsys.readouterr().out

    ckpt, live = tmp_path / "mine", tmp_path / "live"
    assert main(["train", "--router", "sw_ranking", "--data", f"store:{db}", "--out", str(ckpt),
                 "--no-decontaminate", "--holdout", "0.3", "--param", "n_tiers=2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "strong big-llm, weak small-llm" in out
    card = load_router(str(ckpt)).card_
    assert card["holdout"]["fraction"] == 0.3 and card["holdout"]["held_out_battles"] > 0

    assert main(["promote", "--candidate", str(ckpt), "--current", "default", "--data", f"store:{db}",
                 "--to", str(live), "--bootstrap", "50", "--json", str(tmp_path / "cmp.json")]) == 0
    out = capsys.readouterr().out
    assert "not worse, promoted" in out and (live / "config.json").exists()
    assert "strong share on the" in out
    result = json.loads((tmp_path / "cmp.json").read_text())
    assert set(result["strong_share"]) == {"current", "candidate"}
    assert result["candidate_apgr"] > result["current_apgr"] and result["n_queries"] >= 10

    # a router that learned nothing of this traffic is kept out
    assert main(["promote", "--candidate", "random", "--current", str(live), "--data", f"store:{db}",
                 "--holdout", "0.3", "--bootstrap", "20"]) == 1
    assert "worse, kept the current router" in capsys.readouterr().out


# --------------------------------------------------------------------------- retraining
def test_sw_partial_fit_adds_battles_as_a_refit_would():
    import numpy as np
    import pandas as pd

    from routellm_core.routers import SWRankingRouter
    from tests.routing_fixtures import EASY, HARD, toy_battles

    pair = {"strong_model": "big-model", "weak_model": "small-model", "n_tiers": 2}
    two = toy_battles().query("model_a != 'mid-model' and model_b != 'mid-model'").reset_index(drop=True)
    first, more = two.iloc[: len(two) // 2], two.iloc[len(two) // 2:]
    whole = SWRankingRouter(**pair).fit(two)
    grown = SWRankingRouter(**pair).fit(first).partial_fit(more)
    texts = [HARD[0], EASY[0], "Write a sonnet about the sea."]
    assert np.allclose(grown.win_rate(texts), whole.win_rate(texts), atol=2e-3)
    assert grown.n_battles_ == whole.n_battles_ and grown.trained_on(list(more["query"])).all()
    mine = pd.DataFrame([{"query": "q", "model_a": "gpt-4o", "model_b": "small-model", "winner": "a", "source": "s"}])
    with pytest.raises(ValueError, match=r"models \['gpt-4o'\] have no Elo tier"):
        grown.partial_fit(mine)
    grown.set_params(aliases={"gpt-4o": "big-model"})
    assert grown.partial_fit(mine).n_battles_ == whole.n_battles_ + 1


def test_mf_warm_start_fine_tunes_from_the_fitted_weights():
    import numpy as np

    from routellm_core.routers import MatrixFactorizationRouter
    from tests.routing_fixtures import toy_battles

    base = MatrixFactorizationRouter(epochs=3, dim=8, strong_model="big-model", weak_model="small-model").fit(
        toy_battles())
    before = base.projection_.copy()
    base.set_params(warm_start=True, epochs=1, lr=1e-9, patience=1)
    base.fit(toy_battles())
    assert np.allclose(base.projection_, before, atol=1e-4)          # started from the learned weights
    cold = MatrixFactorizationRouter(epochs=1, dim=8, lr=1e-9, strong_model="big-model", weak_model="small-model")
    assert not np.allclose(cold.fit(toy_battles()).projection_, before, atol=1e-4)


@pytest.mark.data
def test_train_init_updates_the_default_router_with_labelled_traffic(tmp_path, capsys):
    from routellm_core.checkpoints import load_router
    from routellm_core.cli import main
    from routellm_core.routing import shared_router

    store = TrafficStore(tmp_path / "t.db")
    for i in range(20):
        store.add_battle(query=f"Prove lemma {i} about prime gaps.", model_a="gpt-4o", model_b="gpt-4o-mini",
                         winner="a", source="label")
    out = tmp_path / "updated"
    assert main(["train", "--router", "sw_ranking", "--init", "default", "--data", f"store:{tmp_path / 't.db'}",
                 "--alias", "gpt-4o=gpt-4-1106-preview", "--alias", "gpt-4o-mini=mixtral-8x7b-instruct-v0.1",
                 "--no-decontaminate", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "(from default)" in printed.out
    assert "warning: 20 labelled battles weigh as much as the router's own evidence" in printed.err
    updated, default = load_router(str(out)), shared_router("default")
    assert updated.n_battles_ == default.n_battles_ + 20 and updated.card_["init"]["battles"]
    q = ["Prove a lemma about prime gaps."]
    assert float(updated.win_rate(q)[0]) > float(default.win_rate(q)[0])
    assert main(["train", "--router", "mf", "--init", "default", "--data", f"store:{tmp_path / 't.db'}",
                 "--no-decontaminate", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "is a sw_ranking router, not mf" in capsys.readouterr().err


# --------------------------------------------------------------------------- replacing the live checkpoint


def _ckpt_dir(path, text):
    """A real (random-router) checkpoint whose card says ``text``."""
    from routellm_core import load_router, save_router

    return save_router(load_router("random", seed=0), path, card={"description": text})


def _tag(path):
    return json.loads((path / "config.json").read_text())["card"]["description"]


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_replace_checkpoint_swaps_in_the_candidate_and_keeps_the_previous(tmp_path, monkeypatch, exchange):
    from routellm_core.learning import promote

    used = []
    real = promote.exchange_paths
    monkeypatch.setattr(promote, "exchange_paths",
                        lambda a, b: used.append((a, b)) or (real(a, b) if exchange else False))
    live = _ckpt_dir(tmp_path / "live", "old")
    new = _ckpt_dir(tmp_path / "new", "new")
    assert promote.replace_checkpoint(new, live) == live
    assert _tag(live) == "new"
    assert _tag(tmp_path / "live.previous") == "old"
    assert not (tmp_path / "live.incoming").exists() and _tag(new) == "new"
    assert len(used) == 1


def test_replace_checkpoint_creates_a_missing_target_and_refuses_a_non_directory(tmp_path):
    from routellm_core.learning.promote import exchange_paths, replace_checkpoint

    new = _ckpt_dir(tmp_path / "new", "new")
    assert _tag(replace_checkpoint(new, tmp_path / "live")) == "new"
    assert not (tmp_path / "live.previous").exists()
    with pytest.raises(ValueError, match="is not a checkpoint directory"):
        replace_checkpoint(tmp_path / "missing", tmp_path / "live")
    if sys.platform.startswith("linux"):
        with pytest.raises(FileNotFoundError):
            exchange_paths(tmp_path / "missing", tmp_path / "live")
