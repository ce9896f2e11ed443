"""Issue 26, "every paid call counted": the labeller's and the shadow labeller's ledgers, budgets,
stores and inputs, checked with fake models that report exact token usage (so every dollar is
known) and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

from routellm_core.costs import PriceSource, UnknownPriceWarning, token_counts
from routellm_core.learning import (
    Generation,
    JudgeError,
    JudgePrompt,
    PairwiseJudge,
    ShadowLabeller,
    StoreError,
    TrafficStore,
    alabel,
    label,
    load_judge_prompts,
    read_prompts,
)
from routellm_core.learning.label import with_retries
from routellm_core.routing import Decision

REPO = Path(__file__).resolve().parents[1]
PROMPTS = {"pair-v2": JudgePrompt("pair-v2", "Judge.", "Q: {question}\nA: {answer_a}\nB: {answer_b}"),
           "pair-math-v1": JudgePrompt("pair-math-v1", "Judge.", "Q: {question}\nR: {ref_answer_1}\nA: {answer_a}\n"
                                                                "B: {answer_b}")}
# dollars per million tokens; each fake call reports its usage, so each call's cost is exact
PRICES = {"strong-llm": (1.0, 30.0), "weak-llm": (1.0, 2.0), "judge-llm": (5.0, 15.0)}
STRONG_COST = Decimal("0.001") + Decimal("0.75")         # 1,000 in, 25,000 out
WEAK_COST = Decimal("0.001") + Decimal("0.0002")         # 1,000 in, 100 out
JUDGE_COST = Decimal("0.005") + Decimal("0.00015")       # 1,000 in, 10 out


class Model:
    """A fake chat model reporting exact usage; ``fail`` raises on the given call numbers (1-based)
    or on every call (``fail=True``). Thread-safe call log."""

    def __init__(self, name: str, *, output_tokens: int = 100, text: str | None = None, delay: float = 0.0,
                 fail: object = None, verdicts: list[str] | None = None, input_tokens: int = 1000) -> None:
        self.model_name, self.output_tokens, self.input_tokens = name, output_tokens, input_tokens
        self.text, self.delay, self.fail, self.verdicts = text, delay, fail, verdicts
        self.calls: list[str] = []
        self.returned = 0
        self._lock = threading.Lock()

    async def __call__(self, system: str | None, user: str) -> Generation:
        with self._lock:
            self.calls.append(user)
            n = len(self.calls)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is True or (isinstance(self.fail, dict) and n in self.fail):
            exc = ValueError(f"{self.model_name} refuses") if self.fail is True else self.fail[n]
            raise exc
        text = (self.verdicts[min(n, len(self.verdicts)) - 1] if self.verdicts
                else self.text or f"{self.model_name}: {user}")
        gen = Generation(text, self.model_name, input_tokens=self.input_tokens, output_tokens=self.output_tokens)
        with self._lock:
            self.returned += 1
        return gen


def judge_model(**kw) -> Model:
    return Model("judge-llm", output_tokens=10, text="[[A]]", **kw)


def trio(**strong_kw):
    strong_kw.setdefault("output_tokens", 25_000)
    return Model("strong-llm", **strong_kw), Model("weak-llm"), judge_model()


# --------------------------------------------------------------------------- break 4: the ledger
def test_a_failed_battle_s_answer_is_charged_and_the_budget_stops_the_next_call(tmp_path):
    strong, _, judge = trio(delay=0.01)
    weak = Model("weak-llm", fail=True)                     # raises at once, the strong model answers later
    store = TrafficStore(tmp_path / "t.db")
    report = label([f"q{i}" for i in range(20)], strong=strong, weak=weak, judge=judge, store=store,
                   judge_prompts=PROMPTS, prices=PRICES, budget=0.05, concurrency=1, progress=False)
    assert len(strong.calls) == 1 and len(weak.calls) == 1 and judge.calls == []
    assert report.spent == STRONG_COST and report.calls == 1
    assert (report.labelled, report.failed) == (0, 1) and "budget of $0.0500 is spent" in report.stopped
    assert "1 failed; spent $0.7510; stopped: the budget of $0.0500 is spent" in report.summary()
    assert len(store.battles()) == 0


def test_with_concurrency_only_the_calls_in_flight_overshoot_the_budget(tmp_path):
    strong, _, judge = trio(delay=0.01)
    weak = Model("weak-llm", fail=True)
    report = label([f"q{i}" for i in range(20)], strong=strong, weak=weak, judge=judge, store=tmp_path / "t.db",
                   judge_prompts=PROMPTS, prices=PRICES, budget=0.05, concurrency=4, progress=False)
    assert len(strong.calls) <= 4 and report.spent == STRONG_COST * len(strong.calls)
    assert report.stopped and report.failed == len(strong.calls)


def test_a_transient_judge_error_retries_that_call_only_and_every_judge_call_is_charged(tmp_path):
    strong, weak, _ = trio(output_tokens=100)
    judge = judge_model(fail={2: TimeoutError("judge timed out")})  # the second order's first try
    store = TrafficStore(tmp_path / "t.db")
    report = label(["q"], strong=strong, weak=weak, judge=judge, store=store, judge_prompts=PROMPTS,
                   prices=PRICES, retries=2, backoff=0.0, progress=False)
    assert len(judge.calls) == 3 and judge.returned == 2          # the first order was not asked again
    strong_cost = Decimal("0.001") + Decimal("0.003")
    assert report.labelled == 1 and report.calls == 4
    assert report.spent == strong_cost + WEAK_COST + 2 * JUDGE_COST
    assert Decimal(str(store.battles()["cost_judge"].iloc[0])) == pytest.approx(2 * JUDGE_COST)


def test_unparsable_re_asks_are_charged_and_the_budget_is_checked_before_each_judge_call(tmp_path):
    strong, weak, _ = trio(output_tokens=100)
    judge = judge_model(verdicts=["no verdict", "[[A]]", "[[B]]"])
    report = label(["q"], strong=strong, weak=weak, judge=judge, store=tmp_path / "a.db", judge_prompts=PROMPTS,
                   prices=PRICES, progress=False)
    assert len(judge.calls) == 3 and report.calls == 5 and report.spent == (
        Decimal("0.004") + WEAK_COST + 3 * JUDGE_COST)
    # the answers (both started before either returned) spend the budget: no judge call starts,
    # nothing is stored, the run says why
    strong, weak, judge = trio(delay=0.01)
    store = TrafficStore(tmp_path / "b.db")
    report = label(["q1", "q2"], strong=strong, weak=weak, judge=judge, store=store, judge_prompts=PROMPTS,
                   prices=PRICES, budget=0.5, concurrency=1, progress=False)
    assert judge.calls == [] and len(strong.calls) == 1 and report.spent == STRONG_COST + WEAK_COST
    assert (report.labelled, report.failed) == (0, 0) and "budget of $0.5000 is spent" in report.stopped
    assert len(store.battles()) == 0


# --------------------------------------------------------------------------- break 5: shadow budgets
def decision():
    return Decision.by_threshold(0.2, 0.5, {"strong": "strong-llm", "weak": "weak-llm"}, router="r")


def test_a_shadow_budget_refuses_unpriced_models(tmp_path, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownPriceWarning)
        with pytest.raises(ValueError, match=r"no price for the judge 'judge-llm'.*prices="):
            ShadowLabeller(judge_model(), tmp_path / "t.db", judge_prompts=PROMPTS, budget=0.01,
                           prices={"strong-llm": (1.0, 1.0)}, fraction=1.0)
        shadow = ShadowLabeller(judge_model(), tmp_path / "t.db", judge_prompts=PROMPTS, budget=0.01,
                                prices={"judge-llm": (1.0, 1.0)}, fraction=1.0)
        other = Model("mystery-llm-without-price")
        with caplog.at_level(logging.WARNING, logger="routellm_core.learning"):
            for i in range(3):
                assert shadow.submit(decision(), query=f"q{i}", answer="a", models={"strong": other}) is False
    assert shadow.flush() and other.calls == [] and shadow.skipped_unpriced == 3 and shadow.spent == 0
    assert sum("other model 'strong-llm' (model 'mystery-llm-without-price') has no price" in r.getMessage()
               for r in caplog.records) == 1
    assert len(shadow.store.battles()) == 0


def test_the_shadow_budget_is_checked_before_each_call_of_a_labelling(tmp_path):
    judge = judge_model()
    shadow = ShadowLabeller(judge, tmp_path / "t.db", judge_prompts=PROMPTS, budget=0.01, prices=PRICES,
                            fraction=1.0)
    strong = Model("strong-llm", output_tokens=25_000)               # $0.751: past the budget at once
    assert shadow.submit(decision(), query="q", answer="a", models={"strong": strong})
    assert shadow.flush()
    assert judge.calls == [] and shadow.spent == STRONG_COST and shadow.skipped_budget == 1
    assert shadow.errors == 0 and len(shadow.store.battles()) == 0


def test_the_shadow_call_is_named_and_priced_as_the_routed_call_is(tmp_path):
    """names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"}: both models run gpt-5. The other
    model's shadow call is recorded under its routed name (the name its battle is stored under)
    and priced by that name, else by the model it runs, as the routed calls are."""
    judge = judge_model()
    shadow = ShadowLabeller(judge, tmp_path / "t.db", judge_prompts=PROMPTS, budget=5.0, fraction=1.0,
                            prices={"gpt-5": (1.0, 30.0), "judge-llm": (5.0, 15.0)})
    high = Model("gpt-5", output_tokens=25_000)
    d = Decision.by_threshold(0.2, 0.5, {"strong": "gpt-5@high", "weak": "gpt-5@minimal"}, router="r")
    assert d.route == "weak"
    assert shadow.submit(d, query="q", answer="a", models={"strong": high})
    assert shadow.flush() and shadow.errors == 0 and shadow.skipped_unpriced == 0
    shadow_call = next(r for r in shadow.ledger.records if r.route == "strong")
    assert shadow_call.model == "gpt-5@high" and shadow_call.cost == STRONG_COST
    battle = shadow.store.battles().iloc[0]
    assert (battle.model_a, battle.model_b) == ("gpt-5@high", "gpt-5@minimal")
    # a routed name with a price of its own is priced by it
    shadow2 = ShadowLabeller(judge, tmp_path / "u.db", judge_prompts=PROMPTS, budget=5.0, fraction=1.0,
                             prices={"gpt-5@high": (2.0, 60.0), "gpt-5": (1.0, 30.0), "judge-llm": (5.0, 15.0)})
    assert shadow2.submit(d, query="q", answer="a", models={"strong": high}) and shadow2.flush()
    assert next(r for r in shadow2.ledger.records if r.route == "strong").cost == 2 * STRONG_COST


def test_label_names_and_prices_models_as_the_routed_calls_do(tmp_path):
    """label(names=...) stores battles and charges calls under the names routed calls use; two
    models of one name are "<name>@strong" / "<name>@weak" (with a warning), as when routing."""
    from routellm_core.errors import DuplicateModelNameWarning

    prices = {"gpt-5": (1.0, 30.0), "judge-llm": (5.0, 15.0)}
    high, minimal = Model("gpt-5", output_tokens=25_000), Model("gpt-5")
    store = TrafficStore(tmp_path / "t.db")
    report = label(["q"], strong=high, weak=minimal, judge=judge_model(), store=store, judge_prompts=PROMPTS,
                   prices=prices, budget=5.0, names={"strong": "gpt-5@high", "weak": "gpt-5@minimal"},
                   progress=False)
    battle = store.battles().iloc[0]
    assert report.labelled == 1 and (battle.model_a, battle.model_b) == ("gpt-5@high", "gpt-5@minimal")
    assert report.spent == STRONG_COST + Decimal("0.001") + Decimal("0.003") + JUDGE_COST * 2
    with pytest.warns(DuplicateModelNameWarning, match="'gpt-5@strong', 'gpt-5@weak'"):
        label(["q2"], strong=high, weak=minimal, judge=judge_model(), store=store, judge_prompts=PROMPTS,
              prices=prices, progress=False)
    assert set(store.battles().model_a) == {"gpt-5@high", "gpt-5@strong"}
    with pytest.raises(ValueError, match="one model"):
        label(["q"], strong=high, weak=high, judge=judge_model(), store=store, judge_prompts=PROMPTS, progress=False)


# --------------------------------------------------------------------------- break 6: negative usage
def test_negative_or_non_finite_usage_is_a_model_error():
    with pytest.raises(ValueError, match=r"model 'liar' reported input_tokens=-5000000"):
        Generation("x", "liar", input_tokens=-5_000_000, output_tokens=1)
    for bad in (float("nan"), float("inf"), 2.5, "12"):
        with pytest.raises(ValueError, match="output_tokens"):
            Generation("x", "liar", input_tokens=1, output_tokens=bad)
    assert Generation("x", "m", input_tokens=3.0, output_tokens=0).input_tokens == 3
    with pytest.raises(ValueError, match="input_tokens of model 'm' must be a finite number >= 0"):
        PriceSource({"m": (1.0, 1.0)}).cost("m", input_tokens=-5, output_tokens=1)
    with pytest.raises(ValueError, match="output_tokens"):
        PriceSource({"m": (1.0, 1.0)}).cost("m", input_tokens=5, output_tokens=float("nan"))
    # a live call's nonsensical reported usage is estimated instead, never priced as money back
    inp, out, estimated = token_counts((-5_000_000, 3), prompt_texts=["hello"], output_text="hi")
    assert inp > 0 and out > 0 and estimated


def test_a_model_reporting_negative_usage_fails_its_prompt_and_nothing_negative_is_stored(tmp_path):
    class Liar(Model):
        async def __call__(self, system, user):
            self.calls.append(user)
            return Generation("cheap!", self.model_name, input_tokens=-5_000_000, output_tokens=10)

    strong, _, judge = trio(output_tokens=100)
    weak = Liar("weak-llm")
    store = TrafficStore(tmp_path / "t.db")
    report = label([f"q{i}" for i in range(3)], strong=strong, weak=weak, judge=judge, store=store,
                   judge_prompts=PROMPTS, prices=PRICES, budget=0.01, concurrency=1, progress=False)
    assert report.spent > 0 and report.failed >= 1 and report.labelled == 0
    assert "weak-llm" in report.errors[0] and "-5000000" in report.errors[0]
    assert len(store.battles()) == 0
    # the shadow labeller counts it as a failed labelling
    shadow = ShadowLabeller(judge, tmp_path / "s.db", judge_prompts=PROMPTS, prices=PRICES, fraction=1.0)
    d = Decision.by_threshold(0.9, 0.5, {"strong": "strong-llm", "weak": "weak-llm"}, router="r")
    assert shadow.submit(d, query="q", answer="a", models={"weak": weak}) and shadow.flush()
    assert shadow.errors == 1 and shadow.spent == 0 and len(shadow.store.battles()) == 0


# --------------------------------------------------------------------------- break 7: the store
def _stored(path: Path) -> Path:
    TrafficStore(path).close()
    return path


def test_a_read_only_store_is_refused_before_any_model_is_paid(tmp_path):
    path = _stored(tmp_path / "t.db")
    strong, weak, judge = trio()
    with pytest.raises(StoreError, match="cannot be written"):
        label(["q1", "q2"], strong=strong, weak=weak, judge=judge, store=f"sqlite:///file:{path}?mode=ro&uri=true",
              judge_prompts=PROMPTS, prices=PRICES, progress=False)
    assert strong.calls == weak.calls == judge.calls == []
    if os.geteuid() != 0:                                  # root writes through file modes
        path.chmod(0o444)
        try:
            with pytest.raises(StoreError, match="cannot be written"):
                label(["q1"], strong=strong, weak=weak, judge=judge, store=path, judge_prompts=PROMPTS,
                      progress=False)
        finally:
            path.chmod(0o644)
        assert strong.calls == []


@pytest.mark.parametrize("lock", ["IMMEDIATE", "EXCLUSIVE"])
def test_a_write_locked_store_is_refused_quickly_before_any_model_is_paid(tmp_path, lock):
    path = _stored(tmp_path / "t.db")
    store = TrafficStore(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute(f"BEGIN {lock}")
    strong, weak, judge = trio()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"cannot be written.*locked"):
            label(["q1", "q2"], strong=strong, weak=weak, judge=judge, store=store, judge_prompts=PROMPTS,
                  prices=PRICES, progress=False)
        assert time.monotonic() - started < 4.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert strong.calls == weak.calls == judge.calls == []
    # once the lock is gone the same store labels (the probe left nothing behind)
    report = label(["q1"], strong=strong, weak=weak, judge=judge, store=store, judge_prompts=PROMPTS,
                   prices=PRICES, progress=False)
    assert report.labelled == 1 and len(store.battles()) == 1


def test_claims_are_atomic_expire_and_end_with_the_battle(tmp_path):
    store = TrafficStore(tmp_path / "t.db")
    other = TrafficStore(tmp_path / "t.db")
    assert store.claim("k", "me", 60) and store.claim("k", "me", 60)   # renewed by its owner
    assert not other.claim("k", "you", 60)
    other.release("k", "you")                                            # not yours: left alone
    assert not other.claim("k", "you", 60)
    store.release("k", "me")
    assert other.claim("k", "you", 0.05)
    time.sleep(0.1)
    assert store.claim("k", "me", 60)                                    # an expired claim is taken over
    assert store.add_battle(query="q", model_a="a", model_b="b", winner="a", source="s")
    from routellm_core.learning.store import battle_key

    key = battle_key("q", "a", "b", "", "")
    assert store.has_battle(key) and not other.claim(key, "you", 60)     # stored: nothing left to claim
    with pytest.raises(StoreError, match="ttl"):
        store.claim("k2", "me", 0)


def test_two_labellers_on_one_store_pay_for_each_prompt_once(tmp_path):
    prompts = [f"question {i}" for i in range(20)]
    strong, weak, judge = trio(output_tokens=100, delay=0.005)
    reports: list = []
    errors: list = []

    def run() -> None:
        try:
            reports.append(asyncio.run(alabel(prompts, strong=strong, weak=weak, judge=judge,
                                              store=TrafficStore(tmp_path / "t.db"), judge_prompts=PROMPTS,
                                              prices=PRICES, concurrency=2, progress=False)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    TrafficStore(tmp_path / "t.db").close()   # an existing store (opening a new file twice at once races)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(reports) == 2
    assert sorted(strong.calls) == sorted(weak.calls) == sorted(prompts)  # each prompt answered once
    assert sum(r.labelled for r in reports) == 20 and sum(r.failed for r in reports) == 0
    assert sum(r.skipped + r.claimed for r in reports) == 20
    assert sorted(TrafficStore(tmp_path / "t.db").battles()["query"]) == sorted(prompts)


class SlowAnswerModel:
    """:class:`tests.learning_fakes.AnswerModel` taking 20 ms a call, so that two processes overlap."""

    def __init__(self, model_name: str, careful: bool) -> None:
        from tests.learning_fakes import AnswerModel

        self.model_name, self.inner = model_name, AnswerModel(model_name, careful)

    async def __call__(self, system: str | None, user: str) -> str:
        await asyncio.sleep(0.02)
        return await self.inner(system, user)


def _judge_prompts_file(path: Path) -> Path:
    rows = [{"name": name, "type": "pairwise", "system_prompt": "Judge.",
             "prompt_template": "[Question]\n{question}\n[The Start of Assistant A's Answer]\n{answer_a}\n"
                                "[The End of Assistant A's Answer]\n[The Start of Assistant B's Answer]\n"
                                "{answer_b}\n[The End of Assistant B's Answer]" + ref}
            for name, ref in (("pair-v2", ""), ("pair-math-v1", "\n{ref_answer_1}"))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_two_label_processes_on_one_store_label_each_prompt_once(tmp_path):
    from tests.learning_fakes import prompts

    texts = prompts(2)
    (tmp_path / "p.txt").write_text("\n".join(texts) + "\n")
    args = [sys.executable, "-m", "routellm_core.cli", "label", "--prompts", str(tmp_path / "p.txt"),
            "--store", str(tmp_path / "t.db"), "--judge-prompts", str(_judge_prompts_file(tmp_path / "j.jsonl")),
            "--strong", "tests.test_loop_money:SlowAnswerModel", "--strong-kwargs",
            '{"model_name": "big-llm", "careful": true}', "--weak", "tests.test_loop_money:SlowAnswerModel",
            "--weak-kwargs", '{"model_name": "small-llm", "careful": false}',
            "--judge", "tests.learning_fakes:HardnessJudge", "--concurrency", "1", "--quiet"]
    TrafficStore(tmp_path / "t.db").close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    labelled = [int(out.split("labelled ")[1].split(" ")[0]) for out, _ in outs]
    assert sum(labelled) == len(set(texts)), outs
    assert len(TrafficStore(tmp_path / "t.db").battles()) == len(set(texts))


# --------------------------------------------------------------------------- break 11: input up front
def test_bad_retries_are_refused_before_any_model_is_called(tmp_path, capsys):
    strong, weak, judge = trio()
    for kw, match in (({"retries": -1}, "retries must be"), ({"backoff": -1.0}, "backoff must be"),
                      ({"judge_retries": -1}, "retries must be")):
        with pytest.raises(ValueError, match=match):
            label(["q"], strong=strong, weak=weak, judge=judge, store=tmp_path / "t.db", judge_prompts=PROMPTS,
                  progress=False, **kw)
    assert strong.calls == weak.calls == judge.calls == []
    with pytest.raises(ValueError, match="retries must be"):
        asyncio.run(with_retries(strong.__call__, retries=-1, backoff=0.0))  # type: ignore[arg-type]
    from routellm_core.cli import main

    (tmp_path / "p.txt").write_text("q\n")
    assert main(["label", "--prompts", str(tmp_path / "p.txt"), "--store", str(tmp_path / "t.db"),
                 "--judge-prompts", str(_judge_prompts_file(tmp_path / "j.jsonl")),
                 "--strong", "tests.learning_fakes:AnswerModel", "--strong-kwargs", '{"model_name": "a", "careful": 1}',
                 "--weak", "tests.learning_fakes:AnswerModel", "--weak-kwargs", '{"model_name": "b", "careful": 0}',
                 "--judge", "tests.learning_fakes:HardnessJudge", "--retries", "-1", "--quiet"]) == 2
    assert "retries must be a whole number >= 0, got -1" in capsys.readouterr().err


def test_the_label_command_names_the_models_with_names(tmp_path, capsys):
    from routellm_core.cli import main

    (tmp_path / "p.txt").write_text("q1\nq2\n")
    args = ["label", "--prompts", str(tmp_path / "p.txt"), "--store", str(tmp_path / "t.db"),
            "--judge-prompts", str(_judge_prompts_file(tmp_path / "j.jsonl")),
            "--strong", "tests.learning_fakes:AnswerModel", "--strong-kwargs", '{"model_name": "gpt-5", "careful": 1}',
            "--weak", "tests.learning_fakes:AnswerModel", "--weak-kwargs", '{"model_name": "gpt-5", "careful": 0}',
            "--judge", "tests.learning_fakes:HardnessJudge", "--quiet"]
    assert main([*args, "--names", '{"strong": "gpt-5@high", "weak": "gpt-5@minimal"}']) == 0
    battles = TrafficStore(tmp_path / "t.db").battles()
    assert len(battles) == 2 and set(zip(battles.model_a, battles.model_b)) == {("gpt-5@high", "gpt-5@minimal")}
    capsys.readouterr()
    assert main([*args, "--names", "[1]"]) == 2
    assert "--names must be a JSON object" in capsys.readouterr().err
    assert main([*args, "--names", '{"strong": "x", "middle": "y"}']) == 2
    assert "middle" in capsys.readouterr().err


def test_judge_templates_are_checked_when_the_judge_is_built(tmp_path):
    def with_template(template: str) -> dict:
        return {**PROMPTS, "pair-v2": JudgePrompt("pair-v2", "Judge.", template)}

    with pytest.raises(JudgeError, match=r"'pair-v2' has unknown placeholder\(s\) \{foo\}"):
        PairwiseJudge(judge_model(), with_template("{question} {answer_a} {answer_b} {foo}"))
    with pytest.raises(JudgeError, match=r"'pair-v2' lacks \{answer_a\}, \{answer_b\}"):
        PairwiseJudge(judge_model(), with_template("Judge this: {question}"))
    with pytest.raises(JudgeError, match="'pair-v2' is not a valid template"):
        PairwiseJudge(judge_model(), with_template("{question} {answer_a} {answer_b} }"))
    literal = PairwiseJudge(judge_model(), with_template('{{"q": "{question}"}} {answer_a} {answer_b}'))
    assert literal.prompts["pair-v2"].render("2+2", "4", "5") == '{"q": "2+2"} 4 5'
    strong, weak, judge = trio()
    with pytest.raises(JudgeError, match="foo"):
        label(["q"], strong=strong, weak=weak, judge=judge, store=tmp_path / "t.db", progress=False,
              judge_prompts=with_template("{question} {answer_a} {answer_b} {foo}"))
    assert strong.calls == weak.calls == judge.calls == []
    bad = _judge_prompts_file(tmp_path / "j.jsonl")
    bad.write_text(bad.read_text().replace("{answer_b}", "{answer_c}", 1))
    with pytest.raises(JudgeError, match=r"j.jsonl: judge prompt 'pair-v2' has unknown placeholder\(s\) \{answer_c\}"):
        load_judge_prompts(bad)


def test_prompt_files_with_a_byte_order_mark_read(tmp_path):
    (tmp_path / "p.csv").write_text("prompt,other\nc,1\n", encoding="utf-8-sig")
    (tmp_path / "p.jsonl").write_text(json.dumps({"query": "a"}) + "\n", encoding="utf-8-sig")
    (tmp_path / "p.txt").write_text("e\nf\n", encoding="utf-8-sig")
    assert [p.query for p in read_prompts(tmp_path / "p.csv")] == ["c"]
    assert [p.query for p in read_prompts(tmp_path / "p.jsonl")] == ["a"]
    assert [p.query for p in read_prompts(tmp_path / "p.txt")] == ["e", "f"]


# --------------------------------------------------------------------------- break 9: shadow at exit
SHADOW_SCRIPT = """
import asyncio, sys
from routellm_core.learning import JudgePrompt, ShadowLabeller
from routellm_core.routing import Decision

delay, db = float(sys.argv[1]), sys.argv[2]
kw = {{"flush_at_exit": float(sys.argv[3])}} if len(sys.argv) > 3 else {{}}

async def strong(system, user):
    await asyncio.sleep(delay)
    return "Paris, since 508."

async def judge(system, user):
    return "[[A]]"

prompts = {{"pair-v2": JudgePrompt("pair-v2", "Judge.", "{{question}} A: {{answer_a}} B: {{answer_b}}")}}
shadow = ShadowLabeller(judge, db, judge_prompts=prompts, fraction=1.0, concurrency=4, **kw)
d = Decision.by_threshold(0.2, 0.5, {{"strong": "big", "weak": "small"}}, router="r")
for i in range(4):
    assert shadow.submit(d, query=f"q{{i}}", answer="Paris.", models={{"strong": strong, "weak": None}})
print("submitted", flush=True)
"""


def _run_shadow_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "shadow_exit.py"
    script.write_text(textwrap.dedent(SHADOW_SCRIPT.format()))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def test_shadow_labellings_in_flight_finish_at_interpreter_exit(tmp_path):
    db = tmp_path / "t.db"
    done = _run_shadow_script(tmp_path, "0.3", str(db))
    assert done.returncode == 0 and "submitted" in done.stdout, done.stderr
    assert sorted(TrafficStore(db).battles()["query"]) == ["q0", "q1", "q2", "q3"]


def test_shadow_labellings_that_cannot_finish_at_exit_are_bounded_and_warned_about(tmp_path):
    started = time.monotonic()
    done = _run_shadow_script(tmp_path, "600", str(tmp_path / "t.db"), "0.5")
    assert time.monotonic() - started < 60 and done.returncode == 0, done.stderr
    assert "4 of 4 shadow labelling(s) in flight did not finish within 0.5 s" in done.stderr
    assert len(TrafficStore(tmp_path / "t.db").battles()) == 0
