"""The fast path: the static (model2vec) encoder, encoder probes in checkpoints, the batched
Bradley-Terry solve, the embedding cache off the decision path, and the async route batcher.

The static encoder is distilled from the packaged MiniLM on first use (about 20 s, once per cache
folder); every router here is real."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest

from routellm_core import load_router, save_router
from routellm_core.bradley_terry import fit_bradley_terry, fit_bradley_terry_batch
from routellm_core.checkpoints import CheckpointError
from routellm_core.encoder_probe import EncoderMismatchError
from routellm_core.encoders import DEFAULT_ENCODER, FAST_ENCODER, QueryEncoder
from routellm_core.routers import SWRankingRouter
from routellm_core.routing import Pool, RouteBatcher
from tests.routing_fixtures import toy_battles

PAIR = {"strong_model": "big-model", "weak_model": "small-model"}


@pytest.fixture(scope="module")
def fast():
    return QueryEncoder(FAST_ENCODER)


@pytest.fixture(scope="module")
def fast_router(fast):
    return SWRankingRouter(n_tiers=3, encoder=FAST_ENCODER, **PAIR).fit(toy_battles())


# --------------------------------------------------------------------------- the static encoder
def test_static_encoder_gives_unit_vectors_fast(fast):
    texts = ["What is 2 + 2?", "hi!", "Prove that there are infinitely many primes."]
    vecs = fast.encode(texts)
    assert vecs.shape == (3, 256) and vecs.dtype == np.float32  # model2vec's PCA to 256 dimensions
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(fast.encode(texts[::-1]), vecs[::-1], atol=1e-6)  # order-free, stable
    one = QueryEncoder(FAST_ENCODER, cache_size=0)
    one.encode(["warm-up"])
    t = time.perf_counter()
    for i in range(200):
        one.encode([f"new question {i}: how do tides work?"])
    # generous bound for a loaded CI machine; the benchmark measures about 0.1 ms
    assert (time.perf_counter() - t) / 200 < 0.02


def test_component_signs_are_fixed_whatever_signs_pca_returned():
    from routellm_core.static_encoder import fix_signs

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(500, 16)).astype(np.float32)
    flipped = emb * rng.choice([-1.0, 1.0], size=16).astype(np.float32)  # another machine's eigh
    np.testing.assert_array_equal(fix_signs(flipped), fix_signs(emb))
    assert np.all(fix_signs(emb)[np.abs(emb).argmax(axis=0), np.arange(16)] > 0)


def test_static_encoder_separates_topics_like_its_teacher(fast):
    texts = ["How do I sort a list in Python?", "Sort a Python list in descending order.",
             "What is the capital of Peru?", "Name the capital city of Peru."]
    sims = fast.encode(texts) @ fast.encode(texts).T
    assert sims[0, 1] > sims[0, 2] and sims[2, 3] > sims[1, 3]


def test_static_encoder_skips_the_sqlite_cache(tmp_path):
    enc = QueryEncoder(FAST_ENCODER, cache_dir=tmp_path)
    enc.encode(["a question for the cache?"])
    enc.flush_cache()
    assert not list(tmp_path.glob("embeddings-*.sqlite"))


@pytest.mark.parametrize("name, error", [("static:", ValueError), ("model2vec:", ValueError),
                                         ("model2vec:/no/such/model", RuntimeError)])
def test_bad_static_encoder_names_are_clear_errors(name, error):
    with pytest.raises(error, match="model|static|name"):
        QueryEncoder(name).encode(["hi"])


# --------------------------------------------------------------------------- probes in checkpoints
def test_a_checkpoint_refuses_an_encoder_other_than_its_own(tmp_path, fast_router):
    save_router(fast_router, tmp_path / "fast")
    config = json.loads((tmp_path / "fast" / "config.json").read_text())
    assert config["params"]["encoder"] == FAST_ENCODER
    assert config["encoder_probe"]["encoder"] == FAST_ENCODER
    assert len(config["encoder_probe"]["embeddings"][0]) == 256

    same = load_router(tmp_path / "fast")  # the recorded encoder: scores as trained
    texts = ["Compute the determinant of [[1, 2], [3, 4]].", "Hello, how are you?"]
    np.testing.assert_allclose(same.win_rate(texts), fast_router.win_rate(texts), atol=1e-6)

    other = load_router(tmp_path / "fast", encoder=QueryEncoder(DEFAULT_ENCODER))
    with pytest.raises(EncoderMismatchError, match="static:sentence-transformers/all-MiniLM-L6-v2.*384-dim"):
        other.win_rate(texts)


def test_an_encoder_of_the_same_size_but_other_vectors_is_refused(tmp_path, fast_router):
    path = save_router(fast_router, tmp_path / "fast")
    config = json.loads((path / "config.json").read_text())
    config["encoder_probe"]["embeddings"] = [row[::-1] for row in config["encoder_probe"]["embeddings"]]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(EncoderMismatchError, match="embeds its probe texts differently .cosine"):
        load_router(path).win_rate(["Hello there"])


def test_a_copy_of_the_same_encoder_under_another_name_passes(tmp_path):
    from routellm_core.encoders import _default_model_path

    router = SWRankingRouter(n_tiers=3, **PAIR).fit(toy_battles())
    save_router(router, tmp_path / "minilm")
    by_path = load_router(tmp_path / "minilm", encoder=QueryEncoder(_default_model_path()))
    assert by_path.win_rate(["Hello there"]).shape == (1,)
    with pytest.raises(EncoderMismatchError, match="all-MiniLM-L6-v2"):
        load_router(tmp_path / "minilm", encoder=FAST_ENCODER).win_rate(["Hello there"])


@pytest.mark.parametrize("probe", ["not a probe", {"texts": [], "embeddings": []},
                                   {"texts": ["a"], "embeddings": [[1.0, "x"]]},
                                   {"texts": ["a", "b"], "embeddings": [[1.0, 0.0]]}])
def test_a_malformed_probe_is_a_checkpoint_error(tmp_path, fast_router, probe):
    from routellm_core.checkpoints import CONFIG_NAME

    path = save_router(fast_router, tmp_path / "bad")
    config = json.loads((path / CONFIG_NAME).read_text())
    config["encoder_probe"] = probe
    (path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="encoder_probe"):
        load_router(path)


def test_the_embedded_defaults_record_their_encoder():
    from routellm_core.checkpoints import load_nway_router

    for router in (load_router("default"), load_nway_router("default")):
        assert router.encoder_probe_["encoder"] == router.get_params()["encoder"]
        router.encoder_  # noqa: B018 - checks the probe against the encoder it loads


# --------------------------------------------------------------------------- batched Bradley-Terry
def test_the_batched_bradley_terry_solve_matches_one_at_a_time():
    rng = np.random.default_rng(0)
    wins = rng.gamma(0.5, 3.0, size=(64, 6, 6)) * (rng.random((64, 6, 6)) < 0.6)
    for w in wins:
        np.fill_diagonal(w, 0.0)
    wins[3] = 0.0  # a query with no evidence at all: all ratings 0
    batch = fit_bradley_terry_batch(wins)
    one = np.stack([fit_bradley_terry(w) for w in wins])
    np.testing.assert_allclose(batch, one, atol=1e-8)
    np.testing.assert_allclose(batch[3], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="stack of square"):
        fit_bradley_terry_batch(wins[0])
    with pytest.raises(ValueError, match="non-negative"):
        fit_bradley_terry_batch(-wins)


def test_sw_ranking_scores_a_batch_as_it_scores_each_query(fast_router):
    texts = [f"Question {i}: what is {i} squared plus {i}?" for i in range(30)] + ["Hello, how are you?"]
    batch = fast_router.win_rate(texts)
    alone = np.array([fast_router.win_rate([t])[0] for t in texts])
    np.testing.assert_allclose(batch, alone, atol=1e-6)  # float32 products: batch and row round apart


# --------------------------------------------------------------------------- the cache off the path
def test_a_slow_disk_write_does_not_hold_up_the_decision(tmp_path, monkeypatch):
    from routellm_core import encoders

    enc = QueryEncoder(cache_dir=tmp_path)
    enc.encode(["load the model first"])
    slow_write = encoders._DiskCache._write

    def slow(self, items):
        time.sleep(3.0)
        slow_write(self, items)

    monkeypatch.setattr(encoders._DiskCache, "_write", slow)
    t = time.perf_counter()
    vec = enc.encode(["a new question while the disk is slow?"])
    assert time.perf_counter() - t < 2.0  # the 3 s write is not waited for
    enc.flush_cache()
    fresh = QueryEncoder(cache_dir=tmp_path)  # another process would read it from the file
    got = fresh._disk_cache().get_many([encoders._key("a new question while the disk is slow?")], 384)
    np.testing.assert_allclose(next(iter(got.values())), vec[0], atol=1e-6)


def test_queued_cache_rows_are_written_when_the_process_exits(tmp_path):
    import sqlite3
    import subprocess
    import sys

    code = ("from routellm_core.encoders import QueryEncoder; "
            f"QueryEncoder(cache_dir={str(tmp_path)!r}).encode([f'exit test {{i}}' for i in range(300)])")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    (path,) = tmp_path.glob("embeddings-*.sqlite")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0] == 300


def test_a_memory_cache_hit_does_not_touch_sqlite(tmp_path, monkeypatch):
    from routellm_core import encoders

    enc = QueryEncoder(cache_dir=tmp_path)
    first = enc.encode(["seen before?"])

    def no_disk(*args, **kwargs):
        raise AssertionError("the disk cache was read for a text in memory")

    monkeypatch.setattr(encoders._DiskCache, "get_many", no_disk)
    np.testing.assert_array_equal(enc.encode(["seen before?"]), first)


# --------------------------------------------------------------------------- the async batcher
@pytest.fixture(scope="module")
def pool(fast_router):
    return Pool.pair(fast_router, strong="big-model", weak="small-model", threshold=0.5)


def test_concurrent_async_calls_share_few_router_calls_in_one_thread(pool):
    texts = [f"async question {i}: what is the {i}th prime?" for i in range(300)]
    expected = [d.route for d in pool.route(texts)]
    threads_before = threading.active_count()

    async def main():
        return await asyncio.gather(*(pool.aroute([t]) for t in texts))

    got = asyncio.run(main())
    assert [d[0].route for d in got] == expected
    batcher = pool._batcher
    assert batcher.requests >= 300 and batcher.batches <= 10
    assert threading.active_count() <= threads_before + 1  # the batcher's one worker


def test_one_bad_request_fails_alone(pool):
    texts = [f"fine question {i}?" for i in range(20)]

    async def main():
        bad = pool.aroute(["a fine text"], [object()])  # not a setting of this pool
        empty = pool.aroute([" "])
        return await asyncio.gather(bad, empty, *(pool.aroute([t]) for t in texts), return_exceptions=True)

    got = asyncio.run(main())
    assert isinstance(got[0], Exception)
    assert isinstance(got[1], ValueError) and "empty" in str(got[1])
    assert all(isinstance(d, list) and d[0].route in ("strong", "weak") for d in got[2:])


def test_a_cancelled_caller_does_not_break_the_others(pool):
    async def main():
        tasks = [asyncio.create_task(pool.aroute([f"cancel test {i}?"])) for i in range(40)]
        await asyncio.sleep(0)
        tasks[7].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    got = asyncio.run(main())
    assert isinstance(got[7], asyncio.CancelledError)
    assert all(d[0].route in ("strong", "weak") for i, d in enumerate(got) if i != 7)


def test_the_batcher_splits_a_large_backlog_and_checks_its_arguments():
    calls: list[int] = []

    def route(texts, settings):
        calls.append(len(texts))
        return [t.upper() for t in texts]

    batcher = RouteBatcher(route, max_batch=8)

    async def main():
        return await asyncio.gather(*(batcher.route([f"q{i}", f"r{i}"], [None, None]) for i in range(20)))

    got = asyncio.run(main())
    assert got[3] == ["Q3", "R3"] and sum(calls) == 40 and max(calls) <= 8
    with pytest.raises(ValueError, match="max_batch"):
        RouteBatcher(route, max_batch=0)
    with pytest.raises(ValueError, match="2 texts"):
        asyncio.run(batcher.route(["a", "b"], [None]))


def test_a_dropped_pool_lets_its_routing_thread_go(fast_router):
    import gc

    pool = Pool.pair(fast_router, strong="big-model", weak="small-model", threshold=0.5)
    asyncio.run(pool.aroute(["a question for a pool about to be dropped?"]))
    (thread,) = pool._batcher._executor._threads  # the pool's one routing thread
    assert thread.is_alive() and thread.name.startswith("routellm-route")
    del pool
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        gc.collect()  # the thread may still hold its last batch's work item for a moment
        thread.join(timeout=0.1)
    assert not thread.is_alive()
