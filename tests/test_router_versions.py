"""Versioned routers that every replica picks up (issue 27, item 2).

The store records published router versions (``router_versions``, schema version 3) and rolls
them back; ``routellm promote --publish`` / ``--rollback`` write them; a ``RouterFromStore``
given as ``router=`` to ``ChatRouteLLM`` / ``RouterRunnable`` (LangChain) and ``RouteLLM``
(LlamaIndex) loads the live version, and swaps each new one in after checking its digest and
calibration, keeping the old router (with a warning, once per version) on any failure.

The routers are real checkpoints (the embedded ``default-fast`` saved twice with different
weights); only the chat models are fakes. Every store test runs on SQLite and on a real
PostgreSQL server (the ``postgres_url`` fixture of tests/conftest.py, skipped outside CI where no
server can be started).
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import weakref
from pathlib import Path

import pytest
import sqlalchemy as sa
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import RunnableLambda

from langchain_routellm import ChatRouteLLM, RouterRunnable
from llamaindex_routellm import RouteLLM
from routellm_core.checkpoints import CheckpointError, load_router, save_router
from routellm_core.learning import RouterVersion, StoreError, TrafficStore
from routellm_core.learning.store import SCHEMA_VERSION
from routellm_core.routing import RouterFromStore, RouterVersionWarning, checkpoint_sha256
from tests.llamaindex.fakes import FakeLLM

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """Real checkpoints: ``A`` (default-fast as shipped), ``B`` (one more battle counted),
    ``nocal`` (B without its calibration table)."""
    base = tmp_path_factory.mktemp("router-versions")
    router = load_router("default-fast")
    out = {"A": save_router(router, base / "A", card={**router.card_, "version": "A"})}
    router.counts_ = router.counts_.copy()
    router.counts_[0, 0] += 1
    out["B"] = save_router(router, base / "B", card={**router.card_, "version": "B"})
    router.calibration_ = None
    out["nocal"] = save_router(router, base / "nocal", card={**router.card_, "version": "nocal"})
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'traffic.db'}"
    return request.getfixturevalue("postgres_url")


def publish(store: TrafficStore, path: Path, **kw) -> RouterVersion:
    return store.publish_router(str(path), sha256=checkpoint_sha256(path), **kw)


def version_of(router) -> str:
    return router.card_["version"]


def lc_model(follower, **kw) -> ChatRouteLLM:
    return ChatRouteLLM(strong=FakeListChatModel(responses=["strong answer"] * 1000),
                        weak=FakeListChatModel(responses=["weak answer"] * 1000),
                        names={"strong": "big", "weak": "small"}, router=follower, strong_fraction=0.5, **kw)


def lc_routed(holder_owner) -> str:
    return version_of(holder_owner._routing.pool._load())


def li_routed(llm: RouteLLM) -> str:
    return version_of(llm.pool._load())


# --------------------------------------------------------------------------- the store
def test_publish_live_versions_and_rollback(url, ckpts):
    store = TrafficStore(url)
    assert store.live_router() is None and store.router_versions() == []
    with pytest.raises(StoreError, match="no live router version to roll back: publish one first"):
        store.rollback()
    v1 = publish(store, ckpts["A"], figures={"candidate_apgr": 0.61, "interval": [-0.01, 0.05]}, by="alice",
                 note="first")
    assert (v1.version, v1.published_by, v1.note, v1.rolled_back) == (1, "alice", "first", False)
    assert v1.figures == {"candidate_apgr": 0.61, "interval": [-0.01, 0.05]}
    with pytest.raises(StoreError, match="router version 1 is the only live one .* no earlier version"):
        store.rollback()
    v2 = publish(store, ckpts["B"], by="bob")
    assert v2.version == 2 and store.live_router() == v2
    v3 = publish(store, ckpts["A"])
    assert [v.version for v in store.router_versions()] == [1, 2, 3]

    now = store.rollback(by="carol")
    assert now == v2 and store.live_router() == v2
    rolled = store.router_versions()[-1]
    assert rolled.version == 3 and rolled.rolled_back and rolled.rolled_back_by == "carol"
    assert v3.rolled_back_at is None  # a RouterVersion is a snapshot (frozen)
    # another process sees the same (a store opened on its own engine)
    other = TrafficStore(url)
    assert other.live_router() == v2
    assert publish(other, ckpts["B"]).version == 4  # numbers are never reused
    assert store.rollback().version == 2 and store.rollback().version == 1
    with pytest.raises(StoreError, match="router version 1 is the only live one"):
        store.rollback()
    assert [v.rolled_back for v in store.router_versions()] == [False, True, True, True]


def test_publishing_refuses_bad_input_naming_the_problem(tmp_path, ckpts):
    store = TrafficStore(tmp_path / "t.db")
    digest = checkpoint_sha256(ckpts["A"])
    for location, why in (("runs/live", "relative path 'runs/live'"), ("", "is a checkpoint directory or"),
                          (" /srv/r", "without surrounding blanks"), ("hf://just-a-name", "'hf://org/name'"),
                          (42, "got 42")):
        with pytest.raises(StoreError, match=why):
            store.publish_router(location, sha256=digest)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="sha256 must be the checkpoint's digest, 64 hex characters, got 'abc'"):
        store.publish_router(str(ckpts["A"]), sha256="abc")
    with pytest.raises(StoreError, match="figures must be a mapping"):
        store.publish_router(str(ckpts["A"]), sha256=digest, figures=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="figures must be JSON-serialisable"):
        store.publish_router(str(ckpts["A"]), sha256=digest, figures={"when": object()})
    with pytest.raises(StoreError, match="by has at most 200 characters"):
        store.publish_router(str(ckpts["A"]), sha256=digest, by="x" * 201)
    assert store.router_versions() == []  # nothing half-published
    assert store.publish_router("hf://org/router@v2", sha256=digest.upper()).sha256 == digest
    # a store that cannot be written: a StoreError naming it, not a driver error
    read_only = TrafficStore(f"sqlite:///file:{tmp_path / 't.db'}?mode=ro&uri=true")
    with pytest.raises(StoreError, match="cannot record router versions now .*readonly"):
        read_only.publish_router(str(ckpts["A"]), sha256=digest)
    publish(store, ckpts["B"])
    with pytest.raises(StoreError, match="cannot record router versions now"):
        read_only.rollback()
    assert read_only.live_router() == store.live_router() == store.router_versions()[1]  # unchanged


def test_a_schema_2_store_is_upgraded_with_the_versions_table(url, ckpts):
    TrafficStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # back to what schema version 2 wrote
        conn.execute(sa.text("DROP TABLE router_versions"))
        conn.execute(sa.text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
        conn.execute(sa.text("INSERT INTO battles (key, created_at, query, model_a, model_b, winner, source) "
                             "VALUES ('k', 1.0, 'an old battle', 'big', 'small', 'a', 'judge')"))
    engine.dispose()
    assert SCHEMA_VERSION == 3
    store = TrafficStore(url)
    engine = sa.create_engine(url)
    try:
        assert sa.inspect(engine).has_table("router_versions")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() == "3"
    finally:
        engine.dispose()
    assert store.battles()["key"].tolist() == ["k"]
    assert publish(store, ckpts["A"]).version == 1


PUBLISHER = """
import sys, time
from routellm_core.learning import TrafficStore
store = TrafficStore(url)
wait_for_all()
got = [store.publish_router(f"/srv/routers/p{i}-{k}", sha256=format(k, "064x"), by=f"p{i}").version for k in range(8)]
print(" ".join(map(str, got)))
"""

BARRIER = """
import os, sys, time
barrier, n, i, url = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def wait_for_all(limit=240.0):
    open(os.path.join(barrier, f"ready-{i}"), "w").close()
    deadline = time.monotonic() + limit
    while len(os.listdir(barrier)) < n:
        if time.monotonic() > deadline:
            sys.exit("the other process did not get ready")
        time.sleep(0.002)
"""


def test_two_processes_publishing_at_once_get_distinct_increasing_versions(url, tmp_path):
    TrafficStore(url).close()  # created first: the race is between publishes, not migrations
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "shared")])}
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    program = BARRIER + textwrap.dedent(PUBLISHER)
    procs = [subprocess.Popen([sys.executable, "-c", program, str(barrier), "2", str(i), url], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    got = [[int(v) for v in out.split()] for out, _ in results]
    assert all(g == sorted(g) for g in got)          # each process's versions increase
    assert sorted(got[0] + got[1]) == list(range(1, 17))
    versions = TrafficStore(url).router_versions()
    assert [v.version for v in versions] == list(range(1, 17))
    assert sorted(v.published_by for v in versions) == ["p0"] * 8 + ["p1"] * 8


# --------------------------------------------------------------------------- following in the adapters
def test_both_adapters_take_a_newly_published_version_and_a_rollback(url, ckpts):
    store = TrafficStore(url)
    publish(store, ckpts["A"])
    follower = RouterFromStore(url, poll_interval=30, start=False)
    assert follower.version.version == 1 and version_of(follower.router) == "A"
    chat = lc_model(follower)
    bound = chat.bind(stop=["\n"])                                   # a copy: shares the router
    rag = RouterRunnable(strong=RunnableLambda(lambda x: "strong"), weak=RunnableLambda(lambda x: "weak"),
                         router=follower, threshold=0.5)
    li = RouteLLM(strong=FakeLLM(model="fake-strong"), weak=FakeLLM(model="fake-weak"), router=follower,
                  strong_fraction=0.5)
    li_copy = li.with_routing(strong_fraction=0.2)
    assert {lc_routed(chat), lc_routed(rag), li_routed(li), li_routed(li_copy)} == {"A"}
    assert follower.followers() == 4
    assert follower.poll_now() is False                               # nothing new

    publish(store, ckpts["B"], by="ops")
    assert follower.poll_now() is True
    assert follower.version.version == 2
    assert {lc_routed(chat), lc_routed(rag), li_routed(li), li_routed(li_copy)} == {"B"}
    assert lc_routed(bound.bound) == "B"
    assert chat.invoke("Prove that there are infinitely many primes.").content in ("strong answer", "weak answer")
    assert rag.invoke("hi") in ("strong", "weak")
    assert li.complete("Prove that e is irrational.").text
    assert chat.router is follower and li.router is follower       # still following

    store.rollback(by="ops")
    assert follower.poll_now() is True and follower.version.version == 1
    assert {lc_routed(chat), lc_routed(rag), li_routed(li), li_routed(li_copy)} == {"A"}
    # a model made after a version was loaded starts on it
    publish(store, ckpts["B"])
    follower.poll_now()
    assert lc_routed(lc_model(follower)) == "B"
    follower.close()


def test_the_polling_thread_picks_up_a_version_within_the_interval_and_stops_on_close(tmp_path, ckpts):
    store = TrafficStore(tmp_path / "t.db")
    publish(store, ckpts["A"])
    follower = RouterFromStore(store, poll_interval=0.2)
    chat = lc_model(follower)
    publish(store, ckpts["B"])
    deadline = time.monotonic() + 20
    while lc_routed(chat) != "B" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lc_routed(chat) == "B"
    thread = follower._thread
    assert thread is not None and thread.is_alive() and thread.daemon
    follower.close()
    assert not thread.is_alive() and follower.closed
    follower.close()                                                  # twice is fine


def test_no_call_fails_or_waits_while_versions_are_swapped(tmp_path, ckpts):
    store = TrafficStore(tmp_path / "t.db")
    publish(store, ckpts["A"])
    follower = RouterFromStore(store, poll_interval=30, start=False)
    chat = lc_model(follower)
    li = RouteLLM(strong=FakeLLM(model="fake-strong"), weak=FakeLLM(model="fake-weak"), router=follower,
                  threshold=0.5)
    errors: list[BaseException] = []
    slowest = [0.0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                chat.invoke("Write a Python function that merges k sorted lists.")
                li.complete("Say hi to Anna.")
            except BaseException as exc:  # noqa: BLE001 - any failure fails the test
                errors.append(exc)
            slowest[0] = max(slowest[0], time.perf_counter() - start)

    threads = [threading.Thread(target=serve) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(4):
            if i % 2 == 0:
                publish(store, ckpts["B"])
            else:
                store.rollback()
            assert follower.poll_now()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert slowest[0] < 30.0  # generous on a loaded machine: no call waited on the loads and swaps


def test_followers_do_not_keep_models_alive(tmp_path, ckpts):
    store = TrafficStore(tmp_path / "t.db")
    publish(store, ckpts["A"])
    follower = RouterFromStore(store, start=False)
    chat, li = lc_model(follower), RouteLLM(strong=FakeLLM(model="s"), weak=FakeLLM(model="w"), router=follower)
    refs = [weakref.ref(chat), weakref.ref(li)]
    assert follower.followers() == 2
    del chat, li
    gc.collect()
    assert [r() for r in refs] == [None, None] and follower.followers() == 0
    publish(store, ckpts["B"])
    assert follower.poll_now()                                       # nothing to swap into: still fine
    # a follower nobody holds ends its thread
    started = RouterFromStore(store, poll_interval=0.1)
    thread = started._thread
    del started
    gc.collect()
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()


# --------------------------------------------------------------------------- failures keep the old router
def test_a_corrupted_or_changed_checkpoint_keeps_the_old_router_with_one_warning(tmp_path, ckpts):
    store = TrafficStore(tmp_path / "t.db")
    publish(store, ckpts["A"])
    follower = RouterFromStore(store, start=False)
    chat = lc_model(follower)
    li = RouteLLM(strong=FakeLLM(model="s"), weak=FakeLLM(model="w"), router=follower, strong_fraction=0.5)

    corrupt = shutil.copytree(ckpts["B"], tmp_path / "corrupt")
    publish(store, corrupt)
    with open(corrupt / "model.safetensors", "r+b") as f:  # damaged after it was published
        f.seek(-1, os.SEEK_END)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
    with pytest.warns(RouterVersionWarning, match=r"router version 2 .*corrupt.* was not loaded: CheckpointError: "
                                                  r".*does not match the sha256.*still routing with version 1"):
        assert follower.poll_now() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert follower.poll_now() is False                          # warned once per version
    assert follower.version.version == 1 and lc_routed(chat) == "A" and li_routed(li) == "A"
    assert chat.invoke("hi").content

    # another checkpoint than the one published (its files are valid, its digest is not the published one)
    store.publish_router(str(ckpts["B"]), sha256=checkpoint_sha256(ckpts["A"]))
    with pytest.warns(RouterVersionWarning, match=r"router version 3 .*sha256 is [0-9a-f]{64}, not the published"):
        assert follower.poll_now() is False
    # no calibration table
    publish(store, ckpts["nocal"])
    with pytest.warns(RouterVersionWarning, match="router version 4 .*no calibration table"):
        assert follower.poll_now() is False
    # gone
    gone = shutil.copytree(ckpts["B"], tmp_path / "gone")
    publish(store, gone)
    shutil.rmtree(gone)
    with pytest.warns(RouterVersionWarning, match="router version 5 .*does not exist"):
        assert follower.poll_now() is False
    assert lc_routed(chat) == "A" and li_routed(li) == "A"
    # a good version after the bad ones is taken
    publish(store, ckpts["B"])
    assert follower.poll_now() and lc_routed(chat) == "B" and li_routed(li) == "B"


def test_an_unreachable_store_keeps_the_router_and_warns_once(tmp_path, ckpts):
    path = tmp_path / "t.db"
    store = TrafficStore(path)
    publish(store, ckpts["A"])
    follower = RouterFromStore(store, start=False)
    chat = lc_model(follower)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE router_versions RENAME TO elsewhere"))
        conn.execute(sa.text("CREATE TABLE router_versions (version INTEGER)"))  # unreadable rows
    engine.dispose()
    with pytest.warns(RouterVersionWarning, match="cannot read the live router version .*still routing with version 1"):
        assert follower.poll_now() is False
    assert lc_routed(chat) == "A"


def test_following_refuses_what_it_cannot_follow(tmp_path, ckpts):
    empty = TrafficStore(tmp_path / "empty.db")
    with pytest.raises(StoreError, match="has no published router version to follow: publish one first"):
        RouterFromStore(empty)
    with pytest.raises(StoreError, match="does not exist"):
        RouterFromStore(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()                   # and no store was created
    publish(empty, ckpts["A"])
    for bad in (0, 0.01, 7200, "30", True):
        with pytest.raises(ValueError, match="poll_interval must be a number of seconds in"):
            RouterFromStore(empty, poll_interval=bad)  # type: ignore[arg-type]
    broken = shutil.copytree(ckpts["B"], tmp_path / "broken")
    publish(empty, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(CheckpointError, match="router version 2 .*sha256"):
        RouterFromStore(empty)
    with pytest.raises(TypeError, match="or a RouterFromStore"):
        lc_model(42)


# --------------------------------------------------------------------------- routellm promote
def run_cli(args: list[str]) -> tuple[int, str, str]:
    from tests.test_loop_calibration import run_cli as run

    return run(args)


def test_promote_publishes_and_rolls_back_from_the_command_line(tmp_path, ckpts):
    from tests.test_loop_calibration import build_store

    db = tmp_path / "traffic.db"
    build_store(db)
    versions = tmp_path / "versions.db"
    base = ["--current", "default-fast", "--data", f"store:{db}", "--holdout", "0.2", "--bootstrap", "20", "--quiet"]
    code, out, err = run_cli(["promote", "--candidate", str(ckpts["A"]), *base, "--tolerance", "1",
                              "--publish", str(versions), "--by", "alice", "--note", "first"])
    assert code == 0, (out, err)
    assert "published router version 1" in out and "by alice" in out
    live = TrafficStore(versions).live_router()
    assert live is not None and live.location == str(ckpts["A"].resolve()) and live.published_by == "alice"
    assert live.sha256 == checkpoint_sha256(ckpts["A"]) and live.note == "first"
    assert set(live.figures) >= {"candidate_apgr", "current_apgr", "difference", "interval", "n_queries",
                                 "strong_share", "holdout"}
    assert live.figures["promote"] is True

    # the OS user when no --by; a copy elsewhere (--location) must hold the same checkpoint
    copy = shutil.copytree(ckpts["B"], tmp_path / "shared" / "B")
    code, out, err = run_cli(["promote", "--candidate", str(ckpts["B"]), *base, "--tolerance", "1",
                              "--publish", str(versions), "--location", str(copy)])
    assert code == 0, (out, err)
    second = TrafficStore(versions).live_router()
    assert second is not None and second.version == 2 and second.location == str(copy)
    assert second.published_by not in (None, "", "alice")
    code, out, err = run_cli(["promote", "--candidate", str(ckpts["B"]), *base, "--tolerance", "1",
                              "--publish", str(versions), "--location", str(ckpts["A"])])
    assert code == 2 and "holds another checkpoint than the candidate" in err
    # not promoted: nothing published
    code, out, err = run_cli(["promote", "--candidate", str(ckpts["B"]), *base, "--tolerance", "-1",
                              "--publish", str(versions)])
    assert code == 1 and "kept the current router" in out and "published" not in out
    assert len(TrafficStore(versions).router_versions()) == 2

    code, out, err = run_cli(["promote", "--rollback", "--store", str(versions), "--by", "bob"])
    assert code == 0, err
    assert f"rolled back router version 2; router version 1 is live now: {ckpts['A'].resolve()}" in out
    assert "by alice" in out
    rolled = TrafficStore(versions).router_versions()[-1]
    assert rolled.rolled_back and rolled.rolled_back_by == "bob"
    code, out, err = run_cli(["promote", "--rollback", "--store", str(versions)])
    assert code == 2 and "router version 1 is the only live one" in err

    # what the options are for
    for args, why in ((["promote", "--rollback"], "--rollback needs --store STORE"),
                      (["promote", "--rollback", "--store", str(versions), "--candidate", "x"],
                       "--rollback takes --store STORE .*not --candidate"),
                      (["promote", "--candidate", str(ckpts["A"])], "promote needs --current, --data"),
                      (["promote", "--candidate", str(ckpts["A"]), *base, "--by", "x"],
                       "--location, --by and --note describe a published version: give --publish STORE"),
                      (["promote", "--candidate", "random", *base, "--publish", str(versions)],
                       "--publish publishes a checkpoint directory"),
                      (["promote", "--rollback", "--store", str(tmp_path / "none.db")], "does not exist")):
        code, out, err = run_cli(args)
        assert code == 2, (args, out, err)
        assert __import__("re").search(why, err), (why, err)
