"""The traffic store as the learning loop uses it: one redaction hook per database (in a process
and across processes), nothing queued lost at exit, file names kept literally, stores that must
exist, and ratings that must name a captured call. The stores are real SQLite files, the router
is real (the embedded default); the chat models and the judge are fakes."""

from __future__ import annotations

import gc
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from routellm_core.data.specs import load_battles
from routellm_core.learning import JudgePrompt, ShadowLabeller, StoreError, TrafficCapture, TrafficStore, label
from routellm_core.learning.store import BackgroundWriter, open_store
from routellm_core.routing import Decision, shared_router

MARKER = "alice.secret@example.com"
PRICES = {"fake-strong": (10.0, 30.0), "fake-weak": (0.5, 1.5), "judge": (5.0, 15.0), "strong_fn": (10.0, 30.0),
          "weak_fn": (0.5, 1.5)}
PROMPTS = {"pair-v2": JudgePrompt("pair-v2", "Judge.", "Q: {question}\nA: {answer_a}\nB: {answer_b}"),
           "pair-math-v1": JudgePrompt("pair-math-v1", "Judge.", "Q: {question}\nR: {ref_answer_1}\nA: {answer_a}\n"
                                                                "B: {answer_b}")}
QUERIES = [f"Mail {MARKER} a haiku about green tea.", f"Tell {MARKER} the capital of France."]
CALL_ID = "routellm_call_id"
PAIR = {"strong": "big", "weak": "small"}
ROOT = Path(__file__).resolve().parents[1]


def mask(text: str) -> str:
    return re.sub(r"[\w.]+@[\w.]+", "<email>", text)


def other_mask(text: str) -> str:
    return text.replace("@", " at ")


async def judge(system: str, user: str) -> str:
    """Prefers the strong model's answer, in whichever position it is."""
    a = user.split("\nA: ")[1].split("\nB: ")[0]
    return "[[A]]" if "[fake-strong]" in a else "[[B]]"


async def strong_fn(system: Any, user: str) -> str:
    return f"[fake-strong] {user}"


async def weak_fn(system: Any, user: str) -> str:
    return f"[fake-weak] {user}"


def dump(path: Path) -> str:
    """Every value of every table of a SQLite file, as one text."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [repr(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')]
    return "\n".join(rows)


def decision(win_rate: float = 0.2) -> Decision:
    return Decision.by_threshold(win_rate, 0.5, PAIR, router="r")


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "shared")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def router():
    return shared_router("default")


@pytest.fixture(scope="module")
def mid(router) -> float:
    """A threshold between the two queries' win rates: one goes strong, the other weak."""
    hi, lo = sorted(router.win_rate(QUERIES), reverse=True)
    assert hi > lo
    return float((hi + lo) / 2)


# --------------------------------------------------------------------------- one hook per database
def test_every_store_of_one_database_shares_one_hook(tmp_path):
    db = tmp_path / "traffic.db"
    first = open_store(db)                                  # e.g. a shadow labeller, opened before the capture
    capture = TrafficCapture(db, redact=mask)
    assert capture.store is first and open_store(f"store:{db}") is first and first.redact is mask
    later = TrafficStore(db)                                # another object on the same file: the same hook
    assert later.redact is mask
    later.add_call("c1", query=f"mail {MARKER}", decision=decision())
    first.rate("c1", "down", comment=f"from {MARKER}")
    assert TrafficCapture(str(db), redact=mask).store is first   # the same hook again is fine
    with pytest.raises(StoreError, match=rf"already has another redact hook.*{re.escape(str(db))}|"
                                         rf"{re.escape(str(db))}.*already has another redact hook"):
        TrafficCapture(db, redact=other_mask)
    with pytest.raises(StoreError, match="cannot be removed"):
        later.redact = None
    assert first.redact is mask and MARKER not in dump(db)
    assert "<email>" in dump(db)


def _assert_no_marker(db: Path) -> None:
    text = dump(db)
    assert MARKER not in text
    assert MARKER.encode() not in db.read_bytes()           # not in a free page either
    for table in ("calls", "battles", "feedback"):
        assert text.count("<email>"), table
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'redacted'").fetchone()
        for table in ("calls", "battles", "feedback"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0, table


@pytest.mark.parametrize("shadow_first", [True, False])
def test_no_raw_text_anywhere_after_capture_shadow_rate_and_label_langchain(tmp_path, router, mid, shadow_first):
    from langchain_routellm import ChatRouteLLM
    from tests.langchain.fake_models import FakeToolChatModel

    db = tmp_path / "traffic.db"
    if shadow_first:
        shadow = ShadowLabeller(judge, db, judge_prompts=PROMPTS, fraction=1.0, prices=PRICES, seed=0)
        capture = TrafficCapture(db, redact=mask)
    else:
        capture = TrafficCapture(db, redact=mask)
        shadow = ShadowLabeller(judge, str(db), judge_prompts=PROMPTS, fraction=1.0, prices=PRICES, seed=0)
    llm = ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"),
                       weak=FakeToolChatModel(model_name="fake-weak"), router=router, threshold=mid, prices=PRICES,
                       capture=capture, shadow=shadow)
    answers = [llm.invoke(q) for q in QUERIES]
    assert all(MARKER in a.content for a in answers)        # the user sees the raw answer
    llm.rate(answers[0].response_metadata[CALL_ID], "down", comment=f"wrong, write to {MARKER}")
    report = label([f"Label this for {MARKER}"], strong=strong_fn, weak=weak_fn, judge=judge, store=db,
                   judge_prompts=PROMPTS, prices=PRICES, progress=False)
    assert report.labelled == 1
    assert shadow.flush() and capture.flush()
    assert len(TrafficStore(db).battles()) == 3             # two shadow battles and one labelled
    _assert_no_marker(db)


def test_no_raw_text_anywhere_after_capture_shadow_rate_and_label_llamaindex(tmp_path, router, mid):
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llamaindex_routellm import RouteLLM
    from tests.llamaindex.fakes import FakeLLM

    db = tmp_path / "traffic.db"
    shadow = ShadowLabeller(judge, db, judge_prompts=PROMPTS, fraction=1.0, prices=PRICES, seed=0)
    llm = RouteLLM(strong=FakeLLM(model="fake-strong"), weak=FakeLLM(model="fake-weak"), router=router,
                   threshold=mid, prices=PRICES, capture=TrafficCapture(db, redact=mask), shadow=shadow)
    answers = [llm.chat([ChatMessage(role=MessageRole.USER, content=q)]) for q in QUERIES]
    assert all(MARKER in a.message.content for a in answers)
    llm.rate(answers[1].additional_kwargs[CALL_ID], 0.2, comment=f"cc {MARKER}")
    label([f"Label this for {MARKER}"], strong=strong_fn, weak=weak_fn, judge=judge, store=f"store:{db}",
          judge_prompts=PROMPTS, prices=PRICES, progress=False)
    assert shadow.flush() and llm.capture.flush()
    _assert_no_marker(db)


def test_a_redacted_store_refuses_raw_text_from_another_process(tmp_path):
    db = tmp_path / "traffic.db"
    store = TrafficStore(db, redact=mask)
    store.add_call("c1", query=f"mail {MARKER}", decision=decision())
    out = run_python(f"""
        from routellm_core.learning import StoreError, TrafficStore, label
        from routellm_core.routing import Decision
        store = TrafficStore({str(db)!r})                     # no hook: this process does not know it
        assert store.redact is None
        assert store.calls()["query"].tolist() == ["mail <email>"]    # reading is allowed
        store.rate("c1", "up")                                        # a rating without text too
        d = Decision.by_threshold(0.2, 0.5, {{"strong": "big", "weak": "small"}}, router="r")
        attempts = [lambda: store.add_call("c2", query="mail {MARKER}", decision=d),
                    lambda: store.add_battle(query="{MARKER}", model_a="a", model_b="b", winner="a", source="s"),
                    lambda: store.rate("c1", "down", comment="{MARKER}")]
        for attempt in attempts:
            try:
                attempt()
            except StoreError as exc:
                print("refused:", exc)
            else:
                print("WROTE RAW TEXT")
        assert store.redacted
    """)
    assert "WROTE RAW TEXT" not in out.stdout and out.stdout.count("refused:") == 3, out.stdout + out.stderr
    assert out.returncode == 0, out.stderr
    assert "holds redacted text" in out.stdout and "redact=" in out.stdout and str(db) in out.stdout
    assert MARKER not in dump(db)
    assert store.redacted and store.calls()["rating_label"].tolist() == ["up"]


# --------------------------------------------------------------------------- nothing queued is lost
SLOW_CAPTURE = """
    import time
    from routellm_core.learning import TrafficCapture, TrafficStore
    from routellm_core.routing import Decision

    class SlowStore(TrafficStore):
        def add_call(self, *args, **kwargs):
            time.sleep({delay})
            super().add_call(*args, **kwargs)

    capture = TrafficCapture(SlowStore({db!r}){kwargs})
    d = Decision.by_threshold(0.2, 0.5, {{"strong": "big", "weak": "small"}}, router="r")
    for i in range({n}):
        capture.record(f"call-{{i}}", query=f"query {{i}}", decision=d)
    print("recorded", flush=True)
"""


def test_queued_captures_are_written_at_exit(tmp_path):
    db = tmp_path / "traffic.db"
    out = run_python(SLOW_CAPTURE.format(db=str(db), delay=0.002, kwargs="", n=300))  # the default exit_timeout
    assert out.returncode == 0, out.stderr
    assert "recorded" in out.stdout and "lost" not in out.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 300


def test_writes_that_cannot_finish_at_exit_are_counted_on_stderr(tmp_path):
    db = tmp_path / "traffic.db"
    start = time.monotonic()
    out = run_python(SLOW_CAPTURE.format(db=str(db), delay=30, kwargs=", exit_timeout=0.5", n=4))
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - start < 25                    # the exit waited 0.5 s, not for the writes
    assert re.search(r"4 traffic store write\(s\) still queued at exit were not written within 0.5 s", out.stderr)
    assert "flush() or close()" in out.stderr


def test_close_flushes_and_later_records_are_dropped_and_counted(tmp_path):
    capture = TrafficCapture(tmp_path / "t.db")
    for i in range(20):
        capture.record(f"c{i}", query=f"q{i}", decision=decision())
    assert capture.close()
    assert len(capture.store.calls()) == 20 and not capture.writer._thread.is_alive()
    capture.record("late", query="q", decision=decision())
    assert capture.dropped == 1 and len(capture.store.calls()) == 20
    with TrafficCapture(tmp_path / "u.db") as c2:
        c2.record("c", query="q", decision=decision())
    assert c2.store.calls()["call_id"].tolist() == ["c"]
    with pytest.raises(ValueError, match="exit_timeout must be"):
        TrafficCapture(tmp_path / "v.db", exit_timeout=-1)


def test_a_writer_nobody_holds_is_collected_and_its_thread_ends():
    writer = BackgroundWriter()
    done = threading.Event()
    writer.submit(done.set)
    thread, ref = writer._thread, weakref.ref(writer)
    del writer
    gc.collect()
    assert ref() is None and done.wait(5)                   # the exit hook does not keep it alive
    thread.join(5)
    assert not thread.is_alive()


# --------------------------------------------------------------------------- file names and missing stores
@pytest.mark.parametrize("name", ["odd/a?mode=ro.db", "c%20d.db", "e#f g.db"])
def test_a_store_path_is_the_file_name_literally(tmp_path, name):
    (tmp_path / "odd").mkdir()
    store = TrafficStore(tmp_path / name)
    store.add_call("c1", query="q", decision=decision())
    assert (tmp_path / name).is_file()
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert made == [name]
    assert make_url(store.url).database == str(tmp_path / name)           # store.url is a URL of that file
    assert open_store(f"store:{tmp_path / name}") is store and open_store(store.url) is store
    with sqlite3.connect(tmp_path / name) as conn:
        assert conn.execute("SELECT call_id FROM calls").fetchall() == [("c1",)]


def test_reading_a_store_that_does_not_exist_is_an_error_and_creates_nothing(tmp_path):
    missing = tmp_path / "typo.db"
    with pytest.raises(StoreError, match=rf"traffic store .*{re.escape(str(missing))}.* does not exist"):
        load_battles(f"store:{missing}")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(missing, must_exist=True)
    with pytest.raises(StoreError, match="does not exist"):
        TrafficStore(f"sqlite:///{missing}", must_exist=True)
    assert list(tmp_path.iterdir()) == []
    store = TrafficStore(tmp_path / "real.db")
    store.add_battle(query="q", model_a="x", model_b="y", winner="a", source="s")
    assert load_battles(f"store:{tmp_path / 'real.db'}")["winner"].tolist() == ["a"]


def test_train_on_a_store_that_does_not_exist_fails_clearly(tmp_path, capsys):
    from routellm_core.cli import main

    code = main(["train", "--router", "sw_ranking", "--data", f"store:{tmp_path / 'typo.db'}",
                 "--out", str(tmp_path / "ckpt")])
    assert code != 0 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()


# --------------------------------------------------------------------------- ratings
def test_a_rating_must_name_a_captured_call_within_bounds(tmp_path):
    store = TrafficStore(tmp_path / "t.db")
    store.add_call("c1", query="q", decision=decision())
    with pytest.raises(StoreError, match="no captured call with id 'nope'"):
        store.rate("nope", "up")
    with pytest.raises(StoreError, match="at most 64 characters, got 10,000"):
        store.rate("x" * 10_000, "up")
    with pytest.raises(StoreError, match="at most 64 characters"):
        store.add_call("y" * 65, query="q", decision=decision())
    with pytest.raises(StoreError, match="at most 10,000 characters, got 50,000,000"):
        store.rate("c1", "down", comment="z" * 50_000_000)
    store.rate("c1", "down", comment="z" * 10_000)
    assert store.calls()["rating_label"].tolist() == ["down"] and len(store._frame("feedback")) == 1


def test_adapters_rate_a_call_just_answered_and_refuse_unknown_ids(tmp_path, router, mid):
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from langchain_routellm import ChatRouteLLM
    from llamaindex_routellm import RouteLLM
    from tests.langchain.fake_models import FakeToolChatModel
    from tests.llamaindex.fakes import FakeLLM

    class SlowStore(TrafficStore):
        def add_call(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.3)
            super().add_call(*args, **kwargs)

    lc = ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"),
                      weak=FakeToolChatModel(model_name="fake-weak"), router=router, threshold=mid, prices=PRICES,
                      capture=TrafficCapture(SlowStore(tmp_path / "a.db")))
    li = RouteLLM(strong=FakeLLM(model="fake-strong"), weak=FakeLLM(model="fake-weak"), router=router, threshold=mid,
                  prices=PRICES, capture=TrafficCapture(SlowStore(tmp_path / "b.db")))
    lc.rate(lc.invoke("hello").response_metadata[CALL_ID], "up")          # written before it is rated
    li.rate(li.chat([ChatMessage(role=MessageRole.USER, content="hello")]).additional_kwargs[CALL_ID], "up")
    for model in (lc, li):
        assert model.capture.store.calls()["rating_label"].tolist() == ["up"]
        with pytest.raises(StoreError, match="no captured call with id"):
            model.rate("00000000-0000-0000-0000-000000000000", "down")
        with pytest.raises(StoreError, match="at most 10,000 characters"):
            model.rate(model.capture.store.calls()["call_id"][0], "down", comment="c" * 10_001)


def test_label_from_the_command_line_takes_the_stores_redact_hook(tmp_path):
    """`routellm label` in another process: refused on a redacted store without `--redact`
    (before any model is called), and stores only redacted text with it."""
    from tests.test_loop_money import _judge_prompts_file

    db = tmp_path / "traffic.db"
    TrafficStore(db, redact=mask).add_call("c1", query=f"Prove that {MARKER} has infinitely many primes.",
                                           decision=decision())
    judge_file = _judge_prompts_file(tmp_path / "judge.jsonl")
    args = [sys.executable, "-m", "routellm_core.cli", "label", "--prompts", f"store:{db}", "--store", str(db),
            "--judge-prompts", str(judge_file), "--strong", "tests.learning_fakes:AnswerModel", "--strong-kwargs",
            '{"model_name": "big-llm", "careful": true}', "--weak", "tests.learning_fakes:AnswerModel",
            "--weak-kwargs", '{"model_name": "small-llm", "careful": false}',
            "--judge", "tests.learning_fakes:HardnessJudge", "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "shared")])}
    refused = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert refused.returncode == 2 and "holds redacted text" in refused.stderr, refused.stdout + refused.stderr
    assert TrafficStore(db).battles().empty
    done = subprocess.run([*args, "--redact", "tests.test_loop_store:mask"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0 and "labelled 1 battle" in done.stdout, done.stdout + done.stderr
    battles = TrafficStore(db).battles()
    assert len(battles) == 1 and "<email>" in battles["query"][0]
    assert MARKER not in dump(db)
