"""``routellm learn``: one learning cycle on a real store with the real default router; the
strong, weak and judge models are async functions (the judge rewards the strong model on the
hard queries only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from routellm_core.learning import TrafficStore
from routellm_core.learning.cycle import LOCK_KEY, learn_cycle, unlabelled_pool
from routellm_core.routing import Pool
from tests.learning_fakes import AnswerModel, HardnessJudge, prompts
from tests.routing_fixtures import EASY, HARD

JUDGE_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fastchat_mtbench_refs" / "judge_prompts.jsonl"
pytestmark = pytest.mark.skipif(not JUDGE_FILE.is_file(), reason=f"FastChat's judge prompts are not at {JUDGE_FILE}")

STRONG, WEAK = "big-model", "small-model"
PRICES = {STRONG: (10.0, 30.0), WEAK: (0.1, 0.3), "hardness-judge": (1.0, 1.0)}
QUERIES = prompts(5)  # 100 distinct: 50 hard, 50 easy
strong, weak, judge = AnswerModel(STRONG, careful=True), AnswerModel(WEAK, careful=False), HardnessJudge()


def _capture(store: TrafficStore, queries: list[str]) -> None:
    from routellm_core.checkpoints import load_router

    pool = Pool.pair(load_router("default"), strong=STRONG, weak=WEAK, strong_fraction=0.5)
    for q, decision in zip(queries, pool.route(queries)):
        store.add_call(uuid.uuid4().hex, query=q, decision=decision, source="test")


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """A store with 100 captured calls (50 hard, 50 easy queries) routed by the default."""
    path = tmp_path_factory.mktemp("learn") / "traffic.db"
    _capture(TrafficStore(path), QUERIES)
    return path


def _copy(src: Path, tmp_path: Path) -> TrafficStore:
    dst = tmp_path / "traffic.db"
    dst.write_bytes(src.read_bytes())
    return TrafficStore(dst)


def _cycle(store, tmp_path, **kw):
    kw = {"labels": 100, "judge_prompts": JUDGE_FILE, "prices": PRICES, "select": "random", **kw}
    return learn_cycle(store, strong=strong, weak=weak, judge=judge, to=tmp_path / "routers", **kw)


def test_a_cycle_labels_trains_evaluates_and_publishes_then_the_next_has_nothing_to_do(captured, tmp_path):
    store = _copy(captured, tmp_path)
    report = _cycle(store, tmp_path)
    assert report.status == "published", report.summary()
    assert report.labelled == report.selected == 100 and report.failed == 0
    assert report.spent > 0 and report.held_out >= 10
    assert report.apgr_after >= report.apgr_before  # not worse: the rule it was published by
    live = store.live_router()
    assert live is not None and live.version == report.version == 1
    assert Path(live.location).is_dir() and Path(live.location).parent == tmp_path / "routers"
    assert live.figures["apgr_after"] == pytest.approx(report.apgr_after)
    # the published checkpoint loads, with a calibration table, and routes the hard queries strong
    from routellm_core.checkpoints import load_router

    router = load_router(live.location)
    assert router.calibration_ is not None
    rates = Pool.pair(router, strong=STRONG, weak=WEAK).win_rates(HARD[:5] + EASY[:5])
    assert min(rates[:5]) > max(rates[5:])
    stored = store.cycle_reports()
    assert stored[0]["status"] == "published" and stored[0]["version"] == 1

    again = _cycle(store, tmp_path)  # every captured query is labelled: nothing bought, nothing published
    assert again.status == "nothing to label" and again.labelled == 0 and again.spent == 0
    assert again.live_version == 1 and store.live_router().version == 1
    assert [r["status"] for r in store.cycle_reports()] == ["nothing to label", "published"]


def test_a_cycle_refuses_when_another_holds_the_lock(captured, tmp_path):
    store = _copy(captured, tmp_path)
    assert store.claim(LOCK_KEY, "someone-else", 60.0)
    report = _cycle(store, tmp_path)
    assert report.status == "locked" and "another learning cycle" in report.reason
    assert report.labelled == 0 and store.training_battles().empty and store.live_router() is None
    store.release(LOCK_KEY, "someone-else")


def test_two_cycles_at_once_publish_at_most_one_version(captured, tmp_path):
    store = _copy(captured, tmp_path)
    reports = []

    def run():
        reports.append(_cycle(TrafficStore(store.url), tmp_path, labels=60))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in reports)
    assert "locked" in statuses, statuses
    assert len(store.router_versions()) <= 1
    assert len(store.training_battles()) == sum(r.labelled for r in reports)


def test_too_few_held_out_labels_keep_the_live_router_and_the_labels(captured, tmp_path):
    store = _copy(captured, tmp_path)
    report = _cycle(store, tmp_path, labels=8)
    assert report.status == "too few held-out queries" and report.labelled == 8
    assert store.live_router() is None and len(store.training_battles()) == 8


def test_the_uncertain_pool_is_the_calls_nearest_their_threshold_and_skips_labelled_ones(captured, tmp_path):
    store = _copy(captured, tmp_path)
    calls = store.calls()
    distance = (calls["win_rate"] - calls["threshold"]).abs()
    nearest = calls.loc[distance.sort_values(kind="stable").index[:10], "query"].tolist()
    queries, rates = unlabelled_pool(store, 10, select="uncertain", page=7)
    assert sorted(queries) == sorted(nearest)
    assert rates is not None and len(rates) == 10
    store.add_battle(query=queries[0], model_a=STRONG, model_b=WEAK, winner="a", source="test")
    again, _ = unlabelled_pool(store, 10, select="uncertain", page=7)
    assert queries[0] not in again and len(again) == 10
    sample, none = unlabelled_pool(store, 1000, select="random")
    assert none is None and len(sample) == len(set(calls["query"])) - 1


@pytest.mark.parametrize("kw, message", [
    ({"labels": 0}, "labels must be"), ({"holdout": 1.5}, "holdout must be"),
    ({"select": "uncertian"}, "did you mean 'uncertain'"), ({"lock_ttl": 0}, "lock_ttl must be"),
    ({"strong_fraction": 2}, "strong_fraction must be"), ({"tolerance": -0.1}, "tolerance must be"),
    ({"tolerance": float("nan")}, "tolerance must be"),
])
def test_bad_arguments_are_refused_before_anything_is_read(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        _cycle(tmp_path / "absent.db", tmp_path, **kw)
    assert not (tmp_path / "absent.db").exists()


def _learn_command(store: str, tmp_path: Path, name: str = "report") -> list[str]:
    return [sys.executable, "-m", "routellm_core.cli", "learn", "--store", store, "--to", str(tmp_path / "routers"),
            "--strong", "tests.learning_fakes:AnswerModel", "--strong-kwargs",
            json.dumps({"model_name": STRONG, "careful": True}), "--weak", "tests.learning_fakes:AnswerModel",
            "--weak-kwargs", json.dumps({"model_name": WEAK, "careful": False}),
            "--judge", "tests.learning_fakes:HardnessJudge", "--judge-prompts", str(JUDGE_FILE), "--labels", "100",
            "--select", "random", "--prices", json.dumps({k: list(v) for k, v in PRICES.items()}), "--json",
            str(tmp_path / f"{name}.json"), "--quiet"]


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])}


def test_routellm_learn_runs_a_cycle_and_prints_its_report(captured, tmp_path):
    _copy(captured, tmp_path)
    out = subprocess.run(_learn_command(str(tmp_path / "traffic.db"), tmp_path), capture_output=True, text=True,
                         env=ENV, timeout=900)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("published:"), out.stdout
    assert "APGR on" in out.stdout and "published version 1" in out.stdout
    assert json.loads((tmp_path / "report.json").read_text())["version"] == 1


def test_two_scheduled_cycles_on_one_postgresql_store_label_and_publish_once(postgres_url, tmp_path):
    """Two ``routellm learn`` processes started at once on a PostgreSQL store the app captured
    into: one runs the cycle, the other finds the lock and leaves; one version is published."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(postgres_url)
    role = f"learner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'sekret-pw'")
        conn.execute(f'ALTER DATABASE "{admin.database}" OWNER TO {role}')
    url = admin.set(username=role, password="sekret-pw").render_as_string(hide_password=False)
    store = TrafficStore(url)
    _capture(store, QUERIES)
    procs = [subprocess.Popen(_learn_command(url, tmp_path, f"r{i}"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for i in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    statuses = sorted(json.loads((tmp_path / f"r{i}.json").read_text())["status"] for i in range(2))
    assert statuses in (["locked", "published"], ["nothing to label", "published"]), statuses
    assert [v.version for v in store.router_versions()] == [1]
    assert len(store.training_battles()) == len(QUERIES)  # each query labelled once
    assert sorted(r["status"] for r in store.cycle_reports()) == statuses
    published = [p for p in (tmp_path / "routers").rglob("*") if p.is_file()]
    assert published and not [p for p in published if b"sekret-pw" in p.read_bytes()]  # no password in a card


class _Down:
    """A weak model whose provider is down: every call fails at once."""

    model_name = WEAK

    async def __call__(self, system, user):
        raise PermissionError("401: invalid API key")


def test_a_cycle_whose_labels_all_fail_says_so_and_stores_it(captured, tmp_path):
    store = _copy(captured, tmp_path)
    report = learn_cycle(store, strong=strong, weak=_Down(), judge=judge, to=tmp_path / "routers", labels=5,
                         judge_prompts=JUDGE_FILE, prices=PRICES)
    assert report.status == "labelling failed" and report.selected == 5 and report.failed == 5
    assert "PermissionError" in report.errors[0] and store.live_router() is None
    assert store.cycle_reports()[0]["status"] == "labelling failed"


def test_a_cycle_that_raises_is_stored_as_failed_and_releases_the_lock(captured, tmp_path):
    store = _copy(captured, tmp_path)
    with pytest.raises(Exception, match="nope"):
        _cycle(store, tmp_path, init=str(tmp_path / "nope"))
    stored = store.cycle_reports()[0]
    assert stored["status"] == "failed" and "nope" in stored["reason"]
    assert store.claim(LOCK_KEY, "next-cycle", 60.0)  # the lock was released
