"""The default MiniLM on ONNX Runtime: the same vectors and the same routes as on torch, a cache
that is checked before use and rebuilt when broken, and torch as the fallback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from routellm_core import load_router
from routellm_core.encoders import QueryEncoder, onnx_backend
from routellm_core.encoders.onnx_backend import BACKEND_ENV, OnnxEncoderError, onnx_dir
from routellm_core.encoders.paths import default_model_path

pytest.importorskip("onnxruntime")

#: Real-world prompts of every length, so the test runs without the shared data sets too.
PROMPTS = [
    "What is the capital of Australia?",
    "hi",
    "Write a Python function that returns the n-th Fibonacci number using memoization.",
    "Explain the difference between TCP and UDP to a network engineering student, with examples.",
    "Summarise the causes of the First World War in three bullet points.",
    "Solve for x: 3x + 7 = 22. Show every step.",
    "Translate 'Where is the train station?' into French, German and Japanese.",
    "I have a pandas DataFrame with columns date, store and sales. How do I compute a 7-day rolling "
    "mean of sales per store, keeping the original row order? Please include code and explain the "
    "pitfalls with missing dates.",
    "Write a haiku about autumn rain in Kyoto.",
    "Prove that the square root of 2 is irrational.",
    "What's a good name for a golden retriever puppy?",
    "Given an unsorted array of integers, find the length of the longest consecutive elements "
    "sequence in O(n) time. Explain the algorithm, then give an implementation in C++ and in Rust, "
    "and analyse both for time and memory. " * 6,
    "Comment dit-on 'thank you very much' en italien ?",
    "用中文解释一下什么是机器学习。",
    "Draft a polite email to my landlord asking to fix the heating, which has been broken for a week.",
    "SELECT name FROM users WHERE id IN (SELECT user_id FROM orders GROUP BY user_id HAVING COUNT(*) > 5); "
    "-- why is this slow on Postgres and how would you rewrite it?",
    "Tell me a joke about statisticians.",
    "List the planets of the solar system ordered by mass, with one fact about each.",
    "What are the tax implications of exercising incentive stock options early in the US?",
    "word " * 600,
]


def arena_hard_prompts(data_dir, n: int) -> list[str]:
    from routellm_core.data.prompts import read_prompts

    return read_prompts(data_dir / "arena_hard_prompts" / "arena-hard-v0.1_question.jsonl")[:n]


@pytest.fixture(scope="module")
def onnx_encoder() -> QueryEncoder:
    enc = QueryEncoder(backend="onnx", cache_size=0)
    assert enc.backend_ == "onnx"
    return enc


@pytest.fixture(scope="module")
def torch_encoder() -> QueryEncoder:
    enc = QueryEncoder(backend="torch", cache_size=0)
    assert enc.backend_ == "torch"
    return enc


def least_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float((np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


def test_onnx_and_torch_vectors_agree_on_real_prompts(onnx_encoder, torch_encoder):
    batched = onnx_encoder.encode(PROMPTS)
    one_by_one = np.concatenate([onnx_encoder.encode([p]) for p in PROMPTS])
    reference = torch_encoder.encode(PROMPTS)
    assert batched.dtype == np.float32 and batched.shape == reference.shape == (len(PROMPTS), 384)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert least_cosine(batched, reference) >= 0.9999
    assert least_cosine(one_by_one, reference) >= 0.9999


@pytest.mark.data
def test_onnx_and_torch_vectors_agree_on_arena_hard(onnx_encoder, torch_encoder, data_dir):
    prompts = arena_hard_prompts(data_dir, 100)
    assert least_cosine(onnx_encoder.encode(prompts), torch_encoder.encode(prompts)) >= 0.9999


def _win_rates_both_ways(prompts: list[str], torch_encoder: QueryEncoder) -> tuple[np.ndarray, np.ndarray]:
    on_onnx = load_router("default", encoder=QueryEncoder(backend="onnx", cache_size=0))
    on_torch = load_router("default", encoder=torch_encoder)
    return on_onnx.win_rate(prompts), on_torch.win_rate(prompts)


def test_the_default_router_routes_alike_on_both_backends(torch_encoder):
    onnx_rates, torch_rates = _win_rates_both_ways(PROMPTS, torch_encoder)
    assert np.array_equal(np.round(onnx_rates, 3), np.round(torch_rates, 3)) or np.max(
        np.abs(onnx_rates - torch_rates)) < 5e-5  # equal to three decimals (a rounding edge aside)
    router = load_router("default")
    threshold = router.resolve_threshold(strong_fraction=0.5)
    assert np.array_equal(onnx_rates >= threshold, torch_rates >= threshold)


@pytest.mark.data
def test_the_default_router_routes_alike_on_both_backends_on_arena_hard(torch_encoder, data_dir):
    onnx_rates, torch_rates = _win_rates_both_ways(arena_hard_prompts(data_dir, 100), torch_encoder)
    assert np.max(np.abs(onnx_rates - torch_rates)) < 5e-4
    threshold = load_router("default").resolve_threshold(strong_fraction=0.5)
    assert np.array_equal(onnx_rates >= threshold, torch_rates >= threshold)


def test_the_environment_variable_forces_torch(monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert QueryEncoder().backend_ == "torch"
    monkeypatch.setenv(BACKEND_ENV, "tensorflow")
    with pytest.raises(ValueError, match=BACKEND_ENV):
        QueryEncoder()
    with pytest.raises(ValueError, match="backend must be one of"):
        QueryEncoder(backend="gpu")


def test_other_models_and_static_encoders_keep_their_own_backend():
    from routellm_core.encoders import FAST_ENCODER

    assert QueryEncoder(FAST_ENCODER).backend_ == "static"
    # the packaged folder given by path is the default model: ONNX as well
    assert QueryEncoder(default_model_path(), backend="auto").backend_ == "onnx"


def test_a_failed_export_falls_back_to_torch_with_one_warning(monkeypatch):
    from routellm_core.encoders import query

    def broken(_: str) -> None:
        raise OnnxEncoderError("no exporter here")

    monkeypatch.setattr(query, "load_onnx_encoder", broken)
    with pytest.warns(RuntimeWarning, match="runs on torch: no exporter here"):
        enc = QueryEncoder(backend="auto")
        assert enc.backend_ == "torch"
    assert enc.encode(["still works"]).shape == (1, 384)
    with pytest.raises(RuntimeError, match="on ONNX Runtime: no exporter here"):
        QueryEncoder(backend="onnx").encode(["hi"])


def test_a_corrupt_cached_export_is_exported_again_and_nothing_else_is_touched(tmp_path, monkeypatch, onnx_encoder):
    source = onnx_dir(default_model_path())  # the export the module fixture made or found
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path))
    folder = onnx_dir(default_model_path())
    assert folder != source and folder.is_relative_to(tmp_path)
    folder.mkdir(parents=True)
    shutil.copy(source / "manifest.json", folder / "manifest.json")
    (folder / "model.onnx").write_bytes(b"\x08\x07not an onnx model" * 1000)  # corrupt
    (folder / "notes.txt").write_text("a user's file")
    with pytest.warns(RuntimeWarning, match="cached ONNX encoder is unusable"):
        enc = onnx_backend.load_onnx_encoder(default_model_path())
    expected = onnx_encoder.encode(PROMPTS[:3])
    assert least_cosine(enc.encode(PROMPTS[:3]), expected) >= 0.9999
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["onnx_bytes"] == (folder / "model.onnx").stat().st_size
    assert (folder / "notes.txt").read_text() == "a user's file"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.onnx", "notes.txt"]  # no temp files
    # a manifest whose recorded vectors do not match is not trusted either
    manifest["embeddings"] = [row[::-1] for row in manifest["embeddings"]]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OnnxEncoderError, match="does not reproduce"):
        onnx_backend._open_verified(folder, onnx_backend.Path(default_model_path()))


def test_the_onnx_path_loads_neither_torch_nor_sentence_transformers(onnx_encoder):
    code = ("import sys, warnings; warnings.simplefilter('error', RuntimeWarning)\n"
            "from routellm_core.encoders import QueryEncoder\n"
            "e = QueryEncoder(backend='onnx'); e.encode(['hello']); assert e.backend_ == 'onnx'\n"
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_no_warning_when_the_cached_export_is_sound(onnx_encoder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = QueryEncoder(backend="auto", cache_size=0)
        assert enc.backend_ == "onnx"


def test_without_onnxruntime_the_default_runs_on_torch(monkeypatch):
    monkeypatch.setattr(onnx_backend, "onnxruntime_available", lambda: False)
    with pytest.raises(OnnxEncoderError, match="onnxruntime is not installed"):
        onnx_backend.load_onnx_encoder(default_model_path())
    with pytest.warns(RuntimeWarning, match="onnxruntime is not installed"):
        assert QueryEncoder(backend="auto").backend_ == "torch"
