"""Reading the traffic store in bounded pieces, and retention (``prune``), on SQLite and on a
real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from routellm_core.cli.learning import duration
from routellm_core.learning import TrafficStore
from routellm_core.routing import Decision


def _decision(rate: float) -> Decision:
    return Decision(route="strong" if rate >= 0.5 else "weak", model="big" if rate >= 0.5 else "small",
                    router="test", rule="threshold", models={"strong": "big", "weak": "small"}, reference="strong",
                    win_rate=rate, threshold=0.5)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return TrafficStore(tmp_path / "t.db")
    return TrafficStore(request.getfixturevalue("postgres_url"))


def _fill(store: TrafficStore, n: int, *, start: float = 1_000.0) -> list[str]:
    ids = []
    calls = store.tables["calls"]
    with store.engine.begin() as conn:
        for i in range(n):
            ids.append(f"c{i:05d}")
            conn.execute(calls.insert().values(call_id=ids[-1], created_at=start + i // 3, query=f"query {i % 40}",
                                               route="weak", strong_model="big", weak_model="small",
                                               win_rate=(i % 10) / 10, threshold=0.5))
    return ids


def test_iter_calls_reads_every_call_once_in_pages_of_the_asked_size(store):
    ids = _fill(store, 103)  # three calls share each created_at: the keyset must break ties by call id
    pages = list(store.iter_calls(("call_id", "win_rate"), page=10))
    assert [len(p) for p in pages] == [10] * 10 + [3]
    assert [c for p in pages for c in p["call_id"]] == ids
    assert list(pages[0].columns) == ["call_id", "win_rate"]
    assert [len(p) for p in store.iter_calls(page=103)] == [103]
    assert sum(len(p) for p in store.iter_calls(since=1_000.0 + 30)) == 103 - 90


@pytest.mark.parametrize("kw, message", [({"columns": ("nope",)}, "unknown calls column"),
                                         ({"page": 0}, "page must be")])
def test_iter_calls_refuses_bad_arguments(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        next(TrafficStore(tmp_path / "t.db").iter_calls(**kw))


def test_sample_queries_is_a_seeded_uniform_sample_of_the_distinct_queries(store):
    _fill(store, 120)  # 40 distinct queries, each asked 3 times
    sample = store.sample_queries(10, seed=1)
    assert len(sample) == len(set(sample)) == 10 and set(sample) <= {f"query {i}" for i in range(40)}
    assert store.sample_queries(10, seed=1) == sample and store.sample_queries(10, seed=2) != sample
    assert sorted(store.sample_queries(1000)) == sorted(f"query {i}" for i in range(40))
    assert set(store.sample_queries(1000, exclude={"query 0", "query 1"})) == {f"query {i}" for i in range(2, 40)}
    assert store.sample_queries(10, seed=1, page=7) == sample  # the page size changes nothing
    with pytest.raises(ValueError, match="n must be"):
        store.sample_queries(0)


def test_existing_keys_looks_up_only_the_keys_asked(store):
    from routellm_core.learning.store import PAGE_KEYS, battle_key

    for i in range(5):
        store.add_battle(query=f"q{i}", model_a="big", model_b="small", winner="a", source="t")
    keys = [battle_key(f"q{i}", "big", "small", "", "") for i in range(5)]
    asked = keys[:3] + [uuid.uuid4().hex for _ in range(PAGE_KEYS + 5)]  # more than one chunk
    assert store.existing_keys(asked) == set(keys[:3])
    assert store.existing_keys([]) == set() and store.done_keys() == set(keys)


def test_training_battles_reads_judged_battles_and_the_latest_rating_of_weak_calls(store):
    store.add_battle(query="judged", model_a="big", model_b="small", winner="b", source="label",
                     answer_a="x" * 1000, answer_b="y")
    store.add_battle(query="unparsable", model_a="big", model_b="small", winner=None, source="label")
    for cid, rate, ratings in (("w1", 0.2, ["up", "down"]), ("w2", 0.3, ["up"]), ("s1", 0.9, ["down"]),
                               ("w3", 0.1, [])):
        store.add_call(cid, query=f"call {cid}", decision=_decision(rate))
        for r in ratings:
            store.rate(cid, r)
    got = store.training_battles()
    assert got[["query", "winner", "source"]].values.tolist() == [
        ["judged", "b", "label"], ["call w1", "a", "feedback"], ["call w2", "tie", "feedback"]]


def test_prune_deletes_old_calls_nothing_learns_from_and_old_answers_only(store):
    old, now = time.time() - 40 * 86400, time.time()
    for cid, rated in (("old-plain", False), ("old-rated", True), ("new-plain", False)):
        store.add_call(cid, query=cid, decision=_decision(0.2))
        if rated:
            store.rate(cid, "down")
    store.add_battle(query="old-battle", model_a="big", model_b="small", winner="a", source="t", answer_a="A",
                     answer_b="B")
    store.add_call("old-labelled", query="old-labelled", decision=_decision(0.7))
    store.add_battle(query="old-labelled", model_a="big", model_b="small", winner="a", source="shadow",
                     call_id="old-labelled", answer_a="A2", answer_b="B2")
    calls, battles = store.tables["calls"], store.tables["battles"]
    with store.engine.begin() as conn:
        conn.execute(calls.update().where(calls.c.call_id.like("old-%")).values(created_at=old))
        conn.execute(battles.update().values(created_at=old))
    store.add_battle(query="new-battle", model_a="big", model_b="small", winner="b", source="t", answer_a="A3",
                     answer_b="B3")
    before = store.training_battles()
    assert store.prune(30 * 86400, now=now) == {"calls": 1, "answers": 2}
    assert sorted(store.calls()["call_id"]) == ["new-plain", "old-labelled", "old-rated"]
    answers = store.battles().set_index("query")[["answer_a", "answer_b"]]
    assert answers.loc["new-battle"].tolist() == ["A3", "B3"] and answers.loc["old-battle"].isna().all()
    assert store.training_battles().equals(before)  # what routers learn from is kept
    assert store.prune(30 * 86400, now=now) == {"calls": 0, "answers": 0}
    for bad in (0, -1, float("nan"), "30d", True):
        with pytest.raises(ValueError, match="older_than"):
            store.prune(bad)


def test_routellm_prune_command(tmp_path):
    path = tmp_path / "t.db"
    store = TrafficStore(path)
    store.add_call("a", query="q", decision=_decision(0.2))
    with store.engine.begin() as conn:
        conn.execute(store.tables["calls"].update().values(created_at=time.time() - 3 * 86400))
    out = subprocess.run([sys.executable, "-m", "routellm_core.cli", "prune", "--store", str(path), "--older-than",
                          "2d"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("deleted 1 captured call(s) older than 2d")
    bad = subprocess.run([sys.executable, "-m", "routellm_core.cli", "prune", "--store", str(path), "--older-than",
                          "soon"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "a duration is a number" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "routellm_core.cli", "prune", "--store",
                              str(tmp_path / "typo.db"), "--older-than", "2d"], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode != 0 and not (tmp_path / "typo.db").exists()


def test_duration():
    assert duration("2w") == 14 * 86400 and duration(" 1.5h ") == 5400 and duration("45s") == 45
    for bad in ("", "d", "-3d", "3y", "inf"):
        with pytest.raises(ValueError, match="duration"):
            duration(bad)
