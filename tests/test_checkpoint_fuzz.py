"""Fuzzing real checkpoints: every corrupted load either gives the same win rates or raises
:class:`CheckpointError`, within a time and memory bound.

One exception, stated: ``config.json`` has no hash of its own (the manifest lives in it), so a
value of its ``params`` / ``state`` / ``calibration`` replaced by another value that the router
accepts (a ``layer_norm_eps`` of 0, say) loads and may change the scores, as a forged config
can; for those the test asks only that the load is clean and the scores finite.

For each router type, seeded random corruptions of every file: bytes flipped, truncated,
garbage appended, JSON values replaced by values of other types or removed, extra files
(listed in the manifest with their true sha256, as a forger would, or not). ``config.json``
carries no hash of its own, so its corruptions reach the loader's deeper checks.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routellm_core import CheckpointError, load_router, save_router
from routellm_core.encoder_probe import EncoderMismatchError
from routellm_core.routers import MatrixFactorizationRouter, SWRankingRouter
from tests.routing_fixtures import EASY, HARD, toy_battles

PAIR = {"strong_model": "big-model", "weak_model": "small-model"}
TEXTS = [HARD[0], EASY[0], "Write a haiku about the sea."]
CASES = 200
CLASSIFIER_CASES = 40
SECONDS_PER_LOAD = 20.0
# config.json sections whose values configure the router (no hash covers config.json itself)
SEMANTIC = ("params", "state", "calibration")
OTHER_VALUES: list[Any] = [None, True, 0, -1, 1e308, "x", "../../etc/passwd", [], {}, [[[[1]]]], {"a": {"b": None}}]


def _scores(router: Any) -> np.ndarray:
    if hasattr(router, "predict_quality"):
        return router.predict_quality(TEXTS)
    return router.win_rate(TEXTS)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    from routellm_core.nway import QualityRouter, ZooterRouter
    from tests.test_nway import COST, FAST, pool_matrix

    battles = toy_battles()
    routers = {
        "sw_ranking": SWRankingRouter(n_tiers=3, **PAIR).fit(battles),
        "mf": MatrixFactorizationRouter(epochs=3, **PAIR).fit(battles),
        "quality": QualityRouter(**FAST).fit(pool_matrix(), constraints=[COST]),
        "zooter": ZooterRouter(**FAST).fit(pool_matrix(), constraints=[COST]),
    }
    out = {}
    for kind, router in routers.items():
        if hasattr(router, "calibrate") and not hasattr(router, "predict_quality"):
            router.calibrate(TEXTS + HARD + EASY, source="fuzz")
        path = save_router(router, tmp_path_factory.mktemp(kind) / "ckpt")
        out[kind] = (path, _scores(load_router(path)))
    return out


def _json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            paths += _json_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:5]):
            paths += _json_paths(v, (*prefix, i))
    return paths


def _corrupt(ckpt: Path, rng: random.Random) -> str:
    """Apply one random corruption to ``ckpt``; return what was done."""
    config_path = ckpt / "config.json"
    files = sorted(p for p in ckpt.rglob("*") if p.is_file())
    target = rng.choice(files)
    kind = rng.choice(["flip", "truncate", "append", "json", "json", "drop", "extra"])
    name = target.relative_to(ckpt).as_posix()
    if kind == "extra":
        extra = ckpt / rng.choice(["notes.txt", "sub/more.json", "model.pt", "x.py", "w.safetensors"])
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_bytes(rng.randbytes(rng.randint(0, 256)))
        if rng.random() < 0.5:  # a forger lists it with its true hash
            config = json.loads(config_path.read_text())
            config["files"][extra.relative_to(ckpt).as_posix()] = hashlib.sha256(extra.read_bytes()).hexdigest()
            config_path.write_text(json.dumps(config))
        return f"extra file {extra.name}"
    if kind in ("json", "drop"):
        target, name = config_path, "config.json"
        config = json.loads(config_path.read_text())
        paths = _json_paths(config)
        path = rng.choice(paths)
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        if kind == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(OTHER_VALUES)
        config_path.write_text(json.dumps(config))
        return f"{kind} {'/'.join(map(str, path))}"
    data = bytearray(target.read_bytes())
    if kind == "flip" and data:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        data = data[: rng.randrange(len(data) + 1)]
    else:
        data += rng.randbytes(rng.randint(1, 64))
    target.write_bytes(bytes(data))
    return f"{kind} {name}"


@pytest.fixture(scope="module")
def classifier_checkpoints(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """A BERT router and a causal-LLM router (a tiny Llama with a chat template), briefly trained."""
    from routellm_core.routers.bert import BertClassifierRouter
    from routellm_core.routers.causal_llm import CausalLLMRouter
    from tests.test_classifier_routers import FAST, _tiny_causal_lm

    root = tmp_path_factory.mktemp("classifiers")
    _tiny_causal_lm(root / "tiny-chat", chat_template=True)
    battles = toy_battles()
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the base model is named relative to the working directory
        routers = {
            "bert": BertClassifierRouter(**PAIR, **FAST, epochs=1, batch_size=16),
            "causal_llm": CausalLLMRouter(**PAIR, **FAST, base_model="tiny-chat", lora_r=0, epochs=1,
                                          batch_size=8),
        }
        for kind, router in routers.items():
            path = save_router(router.fit(battles), root / kind)
            out[kind] = (path, _scores(load_router(path)))
    return out


@pytest.mark.parametrize("kind", ["sw_ranking", "mf", "quality", "zooter", "bert", "causal_llm"])
def test_every_corrupted_load_is_identical_or_a_checkpoint_error(request, tmp_path, kind):
    classifier = kind in ("bert", "causal_llm")
    found = request.getfixturevalue("classifier_checkpoints" if classifier else "checkpoints")
    source, expected = found[kind]
    rng = random.Random(f"fuzz-{kind}")
    outcomes = {"identical": 0, "refused": 0, "changed": 0}
    cases = CLASSIFIER_CASES if classifier else CASES
    for case in range(cases):
        ckpt = tmp_path / f"case{case}"
        shutil.copytree(source, ckpt)
        what = _corrupt(ckpt, rng)
        start = time.perf_counter()
        try:
            router = load_router(ckpt)
        except CheckpointError:
            outcomes["refused"] += 1
        except Exception as exc:  # anything else is a finding
            pytest.fail(f"{kind} case {case} ({what}): {type(exc).__name__}: {exc}")
        else:
            try:
                got = _scores(router)
            except EncoderMismatchError as exc:
                # Encoders load on first use, by design, and are checked against the recorded
                # probe vectors then: a probe changed in place refuses the encoder at first use,
                # whether a field was rewritten or a flipped bit turned one digit into another.
                probe = [json.loads((d / "config.json").read_text()).get("encoder_probe") for d in (ckpt, source)]
                assert what.startswith(("json encoder_probe", "drop encoder_probe")) or (
                    what == "flip config.json" and probe[0] != probe[1]), (what, exc)
                outcomes["refused"] += 1
                continue
            except RuntimeError as exc:
                # Encoders load on first use, by design: a checkpoint that names another
                # encoder (a string: a Hub id or a name) loads, and its first call says which
                # encoder could not be loaded (a router failure under the failure policy).
                assert what == "json params/encoder" and "could not load query encoder" in str(exc), exc
                outcomes["refused"] += 1
                continue
            except Exception as exc:  # loaded, then broke: the load should have refused it
                pytest.fail(f"{kind} case {case} ({what}) loaded, then scoring raised "
                            f"{type(exc).__name__}: {exc}")
            if what.startswith("json ") and what.split()[1].split("/")[0] in SEMANTIC:
                # a value of config.json that no hash covers: it may change what the router
                # does (a forged config can; see the README), so it must only load cleanly
                assert got.shape == expected.shape and np.all(np.isfinite(got)), (kind, case, what)
                outcomes["identical" if np.allclose(got, expected, atol=1e-6) else "changed"] += 1
                continue
            assert np.allclose(got, expected, atol=1e-6), f"{kind} case {case} ({what}) loaded but scores differ"
            outcomes["identical"] += 1
        assert time.perf_counter() - start < SECONDS_PER_LOAD, f"{kind} case {case} ({what}) was slow"
        shutil.rmtree(ckpt)
    assert outcomes["refused"] > cases // 3 and sum(outcomes.values()) == cases
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak_rss < 6 * 2**30
