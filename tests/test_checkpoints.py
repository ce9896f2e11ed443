"""Checkpoints: round trips, the embedded default, Hub loading offline, and broken files."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from routellm_core import CheckpointError, load_router, save_router
from routellm_core.checkpoints import DEFAULT_DIR, FAST_DEFAULT_DIR, NWAY_DEFAULT_DIR, verify_checkpoint
from routellm_core.routers import MatrixFactorizationRouter, RandomRouter, SWRankingRouter
from tests.routing_fixtures import EASY, HARD, toy_battles
from tests.tooling import ROOT

PAIR = {"strong_model": "big-model", "weak_model": "small-model"}
TEXTS = [HARD[1], EASY[2], "What is the boiling point of water at sea level?"]


@pytest.fixture(scope="module")
def trained():
    return trained_pair_routers()


def trained_pair_routers() -> dict:
    """An ``mf`` and an ``sw_ranking`` router fitted on the toy battles (also tests/test_pretrained.py's)."""
    battles = toy_battles()
    return {
        "mf": MatrixFactorizationRouter(epochs=5, **PAIR).fit(battles),
        "sw_ranking": SWRankingRouter(n_tiers=3, **PAIR).fit(battles),
    }


@pytest.mark.parametrize("kind", ["mf", "sw_ranking"])
def test_round_trip_gives_identical_win_rates(trained, tmp_path, kind):
    router = trained[kind]
    router.calibrate(TEXTS + EASY, source="fixture")
    save_router(router, tmp_path / kind, card={"command": "pytest", "data": [{"spec": "toy", "battles": 60}]})
    loaded = load_router(tmp_path / kind)
    assert type(loaded) is type(router)
    assert np.array_equal(loaded.win_rate(TEXTS), router.win_rate(TEXTS))
    assert loaded.calibration_ == router.calibration_
    assert loaded.card_["command"] == "pytest"
    files = sorted(p.name for p in (tmp_path / kind).iterdir())
    assert files == ["README.md", "config.json", "model.safetensors"]
    assert "toy" in (tmp_path / kind / "README.md").read_text()


def test_random_router_round_trip_has_no_weights(tmp_path):
    save_router(RandomRouter(seed=3), tmp_path / "r")
    loaded = load_router(tmp_path / "r")
    assert isinstance(loaded, RandomRouter) and loaded.seed == 3
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_embedded_default_loads_offline_and_is_calibrated():
    router = load_router("default")
    assert router.router_type == "sw_ranking"
    assert router.calibration_ is not None and router.calibration_.n_prompts > 0
    assert {"gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"} <= set(router.known_models)
    assert "routellm train" in router.card_["command"]
    rates = router.win_rate(["Prove that there are infinitely many primes.", "hi"])
    assert rates.shape == (2,) and np.all((rates >= 0) & (rates <= 1))


@pytest.mark.parametrize(
    "directory, figures",
    [(DEFAULT_DIR, "default"), (FAST_DEFAULT_DIR, "default-fast"), (NWAY_DEFAULT_DIR, "nway-default")],
)
def test_embedded_cards_record_their_data_and_validation(directory, figures):
    """Each embedded router's card names its training data with licenses and holds the validation
    figures its benchmark JSON gives today (scripts/record_validation.py writes them)."""
    spec = importlib.util.spec_from_file_location("record_validation", ROOT / "scripts" / "record_validation.py")
    record_validation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record_validation)
    card = verify_checkpoint(directory)["card"]
    assert card["data"] and all(d.get("license") for d in card["data"])
    assert card["validation"] == record_validation.FIGURES[figures]()
    text = (directory / "README.md").read_text()
    assert "## Training data" in text and "## Validation" in text and card["validation"]["what"] in text


@pytest.fixture
def saved(trained, tmp_path):
    return save_router(trained["mf"], tmp_path / "ckpt")


def test_tampered_weights_are_refused(saved):
    data = bytearray((saved / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (saved / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_router(saved)


def test_corrupt_safetensors_with_a_matching_hash_is_refused(saved):
    (saved / "model.safetensors").write_bytes(b"not a safetensors file")
    config = json.loads((saved / "config.json").read_text())
    import hashlib

    config["files"]["model.safetensors"] = hashlib.sha256(b"not a safetensors file").hexdigest()
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_router(saved)


def test_missing_weights_are_refused(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_router(saved)


def test_missing_or_broken_config_is_refused(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_router(saved)
    (saved / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_router(saved)


def test_config_pointing_outside_the_directory_is_refused(saved):
    config = json.loads((saved / "config.json").read_text())
    config["files"] = {"../model.safetensors": "0" * 64}
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="points outside"):
        load_router(saved)


def test_unknown_router_type_in_config_is_refused(saved):
    config = json.loads((saved / "config.json").read_text())
    config["router_type"] = "oracle"
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unknown router 'oracle'"):
        load_router(saved)


def test_weights_of_the_wrong_shape_are_refused(saved, trained, tmp_path):
    config = json.loads((saved / "config.json").read_text())
    config["state"]["models"] = ["only-one"]
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit together"):
        load_router(saved)


def test_nonexistent_path_and_bad_names_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="neither 'default'"):
        load_router(str(tmp_path / "nope" / "deeper"))
    with pytest.raises(CheckpointError, match="is not a router checkpoint"):
        load_router(tmp_path)


def test_hub_id_offline_without_cache_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(CheckpointError, match="could not fetch router 'someone/router'.*HF_HUB_OFFLINE"):
        load_router("hf://someone/router")


def test_a_missing_local_path_shaped_like_a_hub_id_is_not_fetched(monkeypatch, tmp_path):
    """``runs/mf`` from the wrong directory says the directory is missing; only ``hf://`` (or a
    revision) reaches the Hub."""
    import huggingface_hub

    def no_fetch(*a, **kw):
        raise AssertionError("the Hub was asked for a local path")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_fetch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"no checkpoint directory 'runs/mf' \(looked in .*write 'hf://runs/mf'"):
        load_router("runs/mf")
    with pytest.raises(CheckpointError, match="neither 'default'"):
        load_router("hf://not-a-repo-id")


def test_hub_id_loads_from_the_local_hub_cache_offline(saved, monkeypatch, tmp_path, trained):
    """The real huggingface_hub code path, served from a cache laid out as the Hub writes it."""
    import importlib

    cache = tmp_path / "hub"
    commit = "a" * 40
    repo = cache / "models--someone--router"
    snap = repo / "snapshots" / commit
    shutil.copytree(saved, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)
    try:
        import huggingface_hub._snapshot_download as snapshot_module

        importlib.reload(snapshot_module)
        importlib.reload(importlib.import_module("huggingface_hub"))
        router = load_router("hf://someone/router")
        pinned = load_router("someone/router", revision=commit)
    finally:
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)
        importlib.reload(snapshot_module)
        importlib.reload(importlib.import_module("huggingface_hub"))
    assert np.array_equal(router.win_rate(TEXTS), trained["mf"].win_rate(TEXTS))
    assert np.array_equal(pinned.win_rate(TEXTS), trained["mf"].win_rate(TEXTS))


# ------------------------------------------------------------------ model card front matter
def _front_matter(text):
    """The YAML front matter of a model card, parsed, and the Markdown after it."""
    import yaml

    assert text.startswith("---\n"), text[:80]
    front, body = text[len("---\n"):].split("\n---\n", 1)
    return yaml.safe_load(front), body


def test_a_saved_card_opens_with_front_matter_the_hub_reads(trained, tmp_path):
    data = [{"spec": "gold:a.csv", "battles": 10, "license": "MIT (RouterBench)"},
            {"spec": "gold:b.json", "battles": 20, "license": "MIT (LLMRouter)"}]
    out = save_router(trained["sw_ranking"], tmp_path / "sw", card={"command": "pytest", "data": data})
    meta, body = _front_matter((out / "README.md").read_text())
    assert meta == {
        "library_name": "routellm-lc",
        "license": "mit",
        "tags": ["routellm", "llm-routing", "sw_ranking"],
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
    }
    assert body.lstrip().startswith("# RouteLLM router: `sw_ranking`") and "## Training data" in body
    from huggingface_hub import ModelCard

    assert ModelCard((out / "README.md").read_text()).data.to_dict() == meta  # as the Hub's own client reads it
    assert load_router(out).card_["command"] == "pytest"  # the card is listed and hashed, and loads


def test_card_license_datasets_and_tags_follow_the_card_data(trained, tmp_path):
    data = [{"spec": "gold:a.csv", "license": "MIT (RouterBench)", "dataset": "org/bench"},
            {"spec": "judge:b.csv", "license": "CC BY-NC 4.0 (AlpacaEval data)"}]
    out = save_router(trained["mf"], tmp_path / "mixed",
                      card={"data": data, "datasets": ["org/arena"], "tags": ["demo", "routellm"]})
    meta, _ = _front_matter((out / "README.md").read_text())
    # several licenses: "other", named, and linked to the card whose table lists each source's license
    assert (meta["license"], meta["license_name"], meta["license_link"]) == ("other", "training-data-licenses",
                                                                          "README.md")
    assert meta["datasets"] == ["org/arena", "org/bench"]
    assert meta["tags"] == ["routellm", "llm-routing", "mf", "demo"]
    assert "pipeline_tag" not in meta

    own = save_router(trained["mf"], tmp_path / "own", card={"license": "Apache-2.0", "data": data})
    assert _front_matter((own / "README.md").read_text())[0]["license"] == "apache-2.0"
    unknown = save_router(trained["mf"], tmp_path / "unknown",
                          card={"data": [{"spec": "mine.jsonl", "license": "user data (license not recorded)"}]})
    assert "license" not in _front_matter((unknown / "README.md").read_text())[0]


def test_a_router_without_an_encoder_has_no_base_model_and_odd_strings_stay_yaml(tmp_path):
    odd = 'a: b\n---\n"quoted" # not a comment'
    out = save_router(RandomRouter(seed=1), tmp_path / "r", card={"tags": [odd], "datasets": odd})
    meta, body = _front_matter((out / "README.md").read_text())
    assert "base_model" not in meta and "license" not in meta and "datasets" in meta
    assert meta["tags"][-1] == odd and meta["datasets"] == [odd]  # quoted, not read as YAML or a new section
    assert body.lstrip().startswith("# RouteLLM router: `random`")


def test_checkpoints_whose_card_has_no_front_matter_still_load(trained, tmp_path):
    # the embedded defaults were saved before front matter (their README is hashed: left as it is)
    for directory in (DEFAULT_DIR, FAST_DEFAULT_DIR, NWAY_DEFAULT_DIR):
        assert not (directory / "README.md").read_text().startswith("---")
        verify_checkpoint(directory)
    assert load_router("default").router_type == "sw_ranking"
    # an older save: its card is bare Markdown, listed with its own sha256
    import hashlib

    out = save_router(trained["mf"], tmp_path / "old")
    _, body = _front_matter((out / "README.md").read_text())
    (out / "README.md").write_text(body.lstrip())
    config = json.loads((out / "config.json").read_text())
    config["files"]["README.md"] = hashlib.sha256((out / "README.md").read_bytes()).hexdigest()
    (out / "config.json").write_text(json.dumps(config))
    assert np.array_equal(load_router(out).win_rate(TEXTS), trained["mf"].win_rate(TEXTS))
