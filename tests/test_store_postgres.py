"""The traffic store on a real PostgreSQL server, as several replicas share it: the round trip,
claims across connections, schema creation by several processes at once, two app processes
capturing routed calls at once, migration of an older store in place, and a store newer than
the code. Every test has a fresh database of its own (the ``postgres_url`` fixture of
tests/conftest.py: ``$ROUTELLM_TEST_POSTGRES_URL``, else a throwaway server this session starts;
skipped where neither can be had, a failure under CI). The migration tests also run on SQLite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from routellm_core.learning import StoreError, TrafficStore
from routellm_core.learning.store import SCHEMA_VERSION, battle_key
from routellm_core.routing import Decision

ROOT = Path(__file__).resolve().parents[1]
PAIR = {"strong": "big", "weak": "small"}
MARKER = "alice.secret@example.com"


def mask(text: str) -> str:
    return re.sub(r"[\w.]+@[\w.]+", "<email>", text)


def decision(win_rate: float = 0.2) -> Decision:
    return Decision.by_threshold(win_rate, 0.5, PAIR, router="r")


def scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def indexes(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        found = sa.inspect(engine)
        return {ix["name"] for t in ("calls", "battles", "feedback") for ix in found.get_indexes(t)}
    finally:
        engine.dispose()


def start_together(code: str, n: int, url: str, barrier: Path) -> list[subprocess.Popen[str]]:
    """``n`` Python processes running ``code`` on ``url``; each calls ``wait_for_all()`` (a file
    barrier in ``barrier``) once its imports are done, so that their store calls really start at once."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "shared")])}
    barrier.mkdir()
    program = BARRIER + textwrap.dedent(code)
    return [subprocess.Popen([sys.executable, "-c", program, str(barrier), str(n), str(i), url], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]


BARRIER = """
import os, sys, time
barrier, n, i, url = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def wait_for_all(step="start", limit=240.0):
    open(os.path.join(barrier, f"{step}-{i}"), "w").close()
    deadline = time.monotonic() + limit
    while sum(name.startswith(step + "-") for name in os.listdir(barrier)) < n:
        if time.monotonic() > deadline:
            sys.exit(f"the other processes did not get ready within {limit} s")
        time.sleep(0.002)
"""


def finish(procs: list[subprocess.Popen[str]], timeout: float = 300) -> list[tuple[int, str, str]]:
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, out, err))
    return results


@pytest.fixture(params=["postgresql", "sqlite"])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'traffic.db'}"
    return request.getfixturevalue("postgres_url")


# --------------------------------------------------------------------------- the round trip
def test_the_store_round_trip_on_postgres(postgres_url):
    """Writing, reading, ratings, training battles, the schema version and indexes; then claims
    across connections (one winner per prompt among racing labellers) and the redaction marker
    seen by another process."""
    store = TrafficStore(postgres_url)
    assert store.engine.dialect.name == "postgresql"
    store.add_call("c1", query="what is 2 + 2?", decision=decision(0.2))
    store.add_call("c2", query="prove the theorem", decision=decision(0.9))
    store.add_call("c1", query="what is 2 + 2?", decision=decision(0.2))           # the same call again: replaced
    assert store.add_battle(query="q", model_a="big", model_b="small", winner="a", source="judge", judge="j",
                            answer_a="A", answer_b="B", cost_a=0.1, call_id="c2")
    assert not store.add_battle(query="q", model_a="big", model_b="small", winner="a", source="judge", judge="j")
    assert store.add_battle(query="bad", model_a="big", model_b="small", winner=None, source="judge")  # unparsable
    store.rate("c1", "down", comment="needed the big one")
    store.rate("c2", 0.75)
    with pytest.raises(StoreError, match="no captured call"):
        store.rate("nope", "up")
    # the failed statements above left nothing half-done: the same store keeps working
    calls = store.calls().set_index("call_id")
    assert sorted(calls.index) == ["c1", "c2"]
    assert calls.loc["c1", "route"] == "weak" and calls.loc["c1", "rating_label"] == "down"
    assert calls.loc["c2", "route"] == "strong" and calls.loc["c2", "rating"] == pytest.approx(0.75)
    training = store.training_battles()
    assert sorted(map(tuple, training[["query", "winner", "source"]].values.tolist())) == [
        ("q", "a", "judge"), ("what is 2 + 2?", "a", "feedback")]
    assert store.has_battle(battle_key("q", "big", "small", "j", "")) and len(store.battles()) == 2
    store.check_writable()
    assert scalar(postgres_url, "SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)
    assert {"ix_calls_created_at", "ix_battles_call_id", "ix_feedback_call_id"} <= indexes(postgres_url)
    store.close()
    check_claims_across_connections(postgres_url)
    check_the_redaction_marker_across_processes(postgres_url)


def check_the_redaction_marker_across_processes(postgres_url: str) -> None:
    store = TrafficStore(postgres_url, redact=mask)
    store.add_call("c3", query=f"mail {MARKER}", decision=decision())
    assert scalar(postgres_url, "SELECT COUNT(*) FROM meta WHERE key = 'redacted'") == 1
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from routellm_core.learning import StoreError, TrafficStore
        from routellm_core.routing import Decision
        store = TrafficStore({postgres_url!r})
        calls = store.calls().set_index("call_id")
        assert store.redacted and calls.loc["c3", "query"] == "mail <email>"
        d = Decision.by_threshold(0.2, 0.5, {{"strong": "big", "weak": "small"}}, router="r")
        try:
            store.add_call("c4", query="mail {MARKER}", decision=d)
        except StoreError as exc:
            print("refused:", exc)
        store.rate("c3", "up")                      # no text: allowed, on the same connection pool
        print(store.calls().set_index("call_id").loc[["c3"], "rating_label"].tolist())
    """)], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "shared")])})
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "holds redacted text" in out.stdout and "['up']" in out.stdout
    assert scalar(postgres_url, f"SELECT COUNT(*) FROM calls WHERE query LIKE '%{MARKER}%'") == 0


def check_claims_across_connections(postgres_url: str) -> None:
    store, other = TrafficStore(postgres_url), TrafficStore(postgres_url)   # two engines: two connections
    assert store.engine is not other.engine
    assert store.claim("k", "me", 60) and store.claim("k", "me", 60)          # renewed by its owner
    assert not other.claim("k", "you", 60)                                    # a unique violation: False
    other.release("k", "you")                                                 # not yours: left alone
    assert not other.claim("k", "you", 60)                                    # the failed insert left no trace
    store.release("k", "me")
    assert other.claim("k", "you", 0.05)
    time.sleep(0.1)
    assert store.claim("k", "me", 60)                                          # an expired claim is taken over
    assert store.add_battle(query="q2", model_a="a", model_b="b", winner="a", source="s")
    key = battle_key("q2", "a", "b", "", "")
    assert not other.claim(key, "you", 60)                                     # stored: nothing left to claim
    other.check_writable()

    # many labellers at once, each on its own connection: exactly one gets each prompt
    stores = [TrafficStore(postgres_url) for _ in range(6)]
    barrier, won = threading.Barrier(len(stores)), []

    def race(i: int, s: TrafficStore) -> None:
        barrier.wait()
        for n in range(20):
            if s.claim(f"prompt-{n}", f"owner-{i}", 60):
                won.append(n)

    threads = [threading.Thread(target=race, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(won) == list(range(20))
    assert scalar(postgres_url, "SELECT COUNT(*) FROM claims WHERE key LIKE 'prompt-%'") == 20
    for s in (store, other, *stores):
        s.close()


# --------------------------------------------------------------------------- several replicas at once
OPEN_AT_ONCE = """
    from routellm_core.learning import TrafficStore
    from routellm_core.routing import Decision
    wait_for_all("open")
    store = TrafficStore(url)            # every process creates the schema at once
    wait_for_all("write")
    store.check_writable()               # and probes it at once, as labellers starting together do
    d = Decision.by_threshold(0.2, 0.5, {"strong": "big", "weak": "small"}, router="r")
    store.add_call(f"call-{i}", query=f"query {i}", decision=d)
    print("opened", i, flush=True)
"""


@pytest.mark.parametrize("run", range(3))
def test_four_processes_create_the_schema_at_once(any_url, run, tmp_path):
    results = finish(start_together(OPEN_AT_ONCE, 4, any_url, tmp_path / "barrier"))
    for rc, out, err in results:
        assert rc == 0 and "opened" in out, err[-3000:]
    assert scalar(any_url, "SELECT COUNT(*) FROM calls") == 4
    assert scalar(any_url, "SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)


REPLICA = """
    from langchain_routellm import ChatRouteLLM
    from routellm_core.routing import shared_router
    from tests.langchain.fake_models import FakeToolChatModel
    shared_router("default").win_rate(["warm up the encoder"])   # loaded before the barrier, shared by the adapter
    wait_for_all()                                               # then both open the fresh store at once
    llm = ChatRouteLLM(strong=FakeToolChatModel(model_name="big"), weak=FakeToolChatModel(model_name="small"),
                       threshold=0.5, capture=url)
    for k in range(100):
        llm.invoke(f"replica {i} question {k}: what is {k} + {i}?")
    print("answered", i, flush=True)
"""


@pytest.mark.parametrize("run", range(3))
def test_two_replicas_capturing_at_once_store_every_call(postgres_url, run, tmp_path):
    """The issue's reproduction: two app processes, 100 routed calls each, one fresh database."""
    results = finish(start_together(REPLICA, 2, postgres_url, tmp_path / "barrier"))
    for rc, out, err in results:
        assert rc == 0 and "answered" in out, err[-3000:]
        assert "lost" not in err and "failed" not in err, err[-3000:]
    stored = scalar(postgres_url, "SELECT COUNT(*) FROM calls")
    print(f"run {run}: {stored} of 200 calls stored")
    assert stored == 200


# --------------------------------------------------------------------------- migrations (PostgreSQL and SQLite)
OLD_SCHEMA = """
CREATE TABLE calls (call_id VARCHAR(64) PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL, source VARCHAR(32),
    query TEXT NOT NULL, route VARCHAR(200), model VARCHAR(200), strong_model VARCHAR(200), weak_model VARCHAR(200),
    router VARCHAR(200), rule VARCHAR(16), win_rate DOUBLE PRECISION, threshold DOUBLE PRECISION,
    router_failed BOOLEAN, decision TEXT, input_tokens INTEGER, output_tokens INTEGER, tokens_estimated BOOLEAN,
    cost DOUBLE PRECISION, failed BOOLEAN);
CREATE TABLE battles (id {serial} PRIMARY KEY, key VARCHAR(64) NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL, query TEXT NOT NULL, model_a VARCHAR(200) NOT NULL,
    model_b VARCHAR(200) NOT NULL, winner VARCHAR(8), source VARCHAR(200) NOT NULL, judge VARCHAR(200),
    judge_prompt VARCHAR(64), verdict_first VARCHAR(8), verdict_second VARCHAR(8), answer_a TEXT, answer_b TEXT,
    cost_a DOUBLE PRECISION, cost_b DOUBLE PRECISION, cost_judge DOUBLE PRECISION, call_id VARCHAR(64));
CREATE TABLE feedback (id {serial} PRIMARY KEY, call_id VARCHAR(64) NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    rating DOUBLE PRECISION NOT NULL, label VARCHAR(16), comment TEXT);
INSERT INTO calls (call_id, created_at, source, query, route, model, strong_model, weak_model, router, rule,
    win_rate, threshold, router_failed, decision)
    VALUES ('old-1', 1.0, 'app', 'an old question', 'weak', 'small', 'big', 'small', 'r', 'threshold', 0.2, 0.5,
    FALSE, '{{}}');
INSERT INTO battles (key, created_at, query, model_a, model_b, winner, source)
    VALUES ('k-old', 1.0, 'an old battle', 'big', 'small', 'b', 'judge');
INSERT INTO feedback (call_id, created_at, rating, label) VALUES ('old-1', 2.0, 0.0, 'down');
"""


def run_sql(url: str, script: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_an_older_store_is_upgraded_in_place_and_keeps_its_rows(any_url):
    serial = "SERIAL" if any_url.startswith("postgresql") else "INTEGER"
    run_sql(any_url, OLD_SCHEMA.format(serial=serial))
    assert not {"ix_calls_created_at", "ix_battles_call_id"} & indexes(any_url)
    store = TrafficStore(any_url)
    assert scalar(any_url, "SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)
    assert {"ix_calls_created_at", "ix_battles_call_id", "ix_feedback_call_id"} <= indexes(any_url)
    calls = store.calls()
    assert calls["call_id"].tolist() == ["old-1"] and calls["rating_label"].tolist() == ["down"]
    assert store.battles()["key"].tolist() == ["k-old"]
    assert sorted(store.training_battles()["query"]) == ["an old battle", "an old question"]
    store.add_call("new-1", query="a new question", decision=decision())      # the upgraded store is written to
    assert store.claim("p", "me", 60) and not TrafficStore(any_url).claim("p", "you", 60)
    store.check_writable()
    TrafficStore(any_url, redact=mask)                                          # the meta table takes the marker
    assert scalar(any_url, "SELECT COUNT(*) FROM meta WHERE key = 'redacted'") == 1
    assert scalar(any_url, "SELECT COUNT(*) FROM calls") == 2
    store.close()
    # opened again: nothing to do
    assert len(TrafficStore(any_url).calls()) == 2


def test_a_store_newer_than_the_code_is_refused(any_url):
    TrafficStore(any_url).close()
    run_sql(any_url, f"UPDATE meta SET value = '{SCHEMA_VERSION + 7}' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 7}.*newer.*{SCHEMA_VERSION}"):
        TrafficStore(any_url)


def test_opening_waits_for_another_replica_migrating_the_store(postgres_url):
    """A replica that finds another one migrating (it holds the schema lock) waits for it, then
    sees its tables: it neither races it nor fails."""
    import psycopg

    from routellm_core.learning.store import _SCHEMA_LOCK

    holder = psycopg.connect(sa.engine.make_url(postgres_url).set(drivername="postgresql")
                             .render_as_string(hide_password=False))
    try:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))   # the other replica's transaction
        opened: dict[str, object] = {}
        thread = threading.Thread(target=lambda: opened.update(store=TrafficStore(postgres_url)), daemon=True)
        thread.start()
        thread.join(1.5)
        assert thread.is_alive(), "the store was opened without waiting for the schema lock"
        for statement in filter(str.strip, OLD_SCHEMA.format(serial="SERIAL").split(";")):
            holder.execute(statement)                                         # it creates the tables meanwhile
        holder.commit()                                                       # and releases the lock
        thread.join(60)
        assert not thread.is_alive() and isinstance(opened.get("store"), TrafficStore)
    finally:
        holder.close()
    store = opened["store"]
    assert store.calls()["call_id"].tolist() == ["old-1"]                     # found its tables and rows
    assert scalar(postgres_url, "SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)
