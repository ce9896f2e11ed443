"""Promotion never loses data, and a reader never sees a half-swapped router.

``replace_checkpoint`` (``routellm promote --to``) refuses a target that is not a checkpoint, and
never deletes a ``.previous`` / ``.incoming`` it did not make; a failed swap is undone.
``load_router`` reads one directory whole while ``promote`` swaps it, and refuses weights that
hold NaN or an infinity.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import routellm_core.checkpoints as checkpoints
from routellm_core import CheckpointError, load_router, save_router
from routellm_core.checkpoints import PROMOTE_MARKER, pinned, safety
from routellm_core.learning import promote
from routellm_core.learning.promote import replace_checkpoint

EXCHANGE = pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, Path]:
    """Two real checkpoints of the default router that differ in their weights and their card:
    ``A`` as shipped, ``B`` with one more battle counted for its first query."""
    base = tmp_path_factory.mktemp("versions")
    router = load_router("default")
    out = {"A": save_router(router, base / "A", card={**router.card_, "version": "A"})}
    router.counts_ = router.counts_.copy()
    router.counts_[0, 0] += 1
    out["B"] = save_router(router, base / "B", card={**router.card_, "version": "B"})
    return out


def weights_digest(router) -> str:
    h = hashlib.sha256()
    for value in (router.query_embeddings_, router.counts_, router.query_digests_):
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def digests(versions) -> dict[str, str]:
    return {name: weights_digest(load_router(path)) for name, path in versions.items()}


def which(router, digests) -> str:
    """``"A"`` or ``"B"``: the card and the weights must both be that version's."""
    version = router.card_["version"]
    assert weights_digest(router) == digests[version], f"card of {version} with other weights: a mixed router"
    return version


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or ``path`` itself, a file), by relative name."""
    if path.is_symlink() or path.is_file():
        return {"": os.readlink(path).encode() if path.is_symlink() else path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def use_exchange(monkeypatch):
    def choose(exchange: bool) -> None:
        if not exchange:
            monkeypatch.setattr(promote, "exchange_paths", lambda a, b: False)
        elif not sys.platform.startswith("linux"):
            pytest.skip("renameat2 exchange is Linux only")
    return choose


# --------------------------------------------------------------------------- what promote may touch


def test_a_target_that_is_not_a_checkpoint_is_refused_and_left_alone(tmp_path, versions):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    link = tmp_path / "link"
    link.symlink_to(shutil.copytree(versions["A"], tmp_path / "real"))
    before = {p: snapshot(p) for p in (notes, folder, link)}
    for target, why in ((notes, "is not a checkpoint directory: it is a file"),
                        (folder, "is not a checkpoint directory .*config.json is missing"),
                        (link, "is a symlink .*pass the directory, not a link to it")):
        with pytest.raises(ValueError, match=f"target '{target}' {why}"):
            replace_checkpoint(versions["B"], target)
    assert {p: snapshot(p) for p in (notes, folder, link)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "notes.txt", "photos", "real"]


def test_a_candidate_that_is_not_a_checkpoint_is_refused(tmp_path, versions):
    (tmp_path / "empty").mkdir()
    live = shutil.copytree(versions["A"], tmp_path / "live")
    for candidate, why in ((tmp_path / "missing", "is not a checkpoint directory: it does not exist"),
                           (tmp_path / "empty", r"is not a checkpoint directory \(.*config.json is missing\)")):
        with pytest.raises(ValueError, match=f"candidate '{candidate}' {why}"):
            replace_checkpoint(candidate, live)
    corrupt = shutil.copytree(versions["B"], tmp_path / "corrupt")
    with open(corrupt / "model.safetensors", "r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
    with pytest.raises(ValueError, match="candidate '.*corrupt' does not verify, as copied to .*not match the sha256"):
        replace_checkpoint(corrupt, live)
    assert snapshot(live) == snapshot(versions["A"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt", "empty", "live"]


@pytest.mark.parametrize("kind", ["user directory", "file", "symlink"])
@pytest.mark.parametrize("suffix", [".previous", ".incoming"])
def test_a_previous_or_incoming_that_promote_did_not_make_is_never_deleted(tmp_path, versions, kind, suffix):
    live = shutil.copytree(versions["A"], tmp_path / "work")
    theirs = tmp_path / f"work{suffix}"
    if kind == "user directory":
        theirs.mkdir()
        (theirs / "backup.txt").write_text("a backup of mine")
    elif kind == "file":
        theirs.write_text("a file of mine")
    else:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "keep.txt").write_text("kept")
        theirs.symlink_to(tmp_path / "elsewhere")
    before = {p: snapshot(p) for p in (live, theirs)}
    described = {"user directory": "a directory that routellm promote did not create", "file": "a file",
                 "symlink": "a symlink"}[kind]
    with pytest.raises(ValueError, match=f"'{theirs}' is {described}; .*move it away"):
        replace_checkpoint(versions["B"], live)
    assert {p: snapshot(p) for p in (live, theirs)} == before
    assert not os.path.lexists(tmp_path / ("work.incoming" if suffix == ".previous" else "work.previous"))
    if kind == "symlink":
        assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "kept"
    theirs.rename(tmp_path / "moved-away")  # as the error says: then promote goes ahead
    assert replace_checkpoint(versions["B"], live) == live
    assert load_router(live).card_["version"] == "B"


@pytest.mark.parametrize("role", ["target", "staging", "previous"])
def test_a_candidate_that_promote_would_replace_or_delete_is_refused(tmp_path, versions, role):
    live = shutil.copytree(versions["A"], tmp_path / "live3")
    replace_checkpoint(versions["A"], live)  # live3.previous is promote's own now
    candidate = {"target": live, "staging": tmp_path / "live3.incoming",
                 "previous": tmp_path / "live3.previous"}[role]
    if role == "staging":
        shutil.copytree(versions["B"], candidate)  # a user's candidate that happens to have that name
    before = {p: snapshot(p) for p in (live, candidate)}
    with pytest.raises(ValueError, match=f"candidate '{candidate}' is the target.* copy the candidate elsewhere"):
        replace_checkpoint(candidate, live)
    assert {p: snapshot(p) for p in (live, candidate)} == before


@EXCHANGE
def test_promote_replaces_its_own_previous_and_removes_its_own_stale_incoming(tmp_path, versions, digests,
                                                                              exchange, use_exchange):
    use_exchange(exchange)
    live = tmp_path / "live"
    assert replace_checkpoint(versions["A"], live) == live  # a missing target is created
    assert not (tmp_path / "live.previous").exists()
    replace_checkpoint(versions["B"], live)
    shutil.copytree(versions["A"], tmp_path / "live.incoming")  # as a promote killed part way leaves it
    (tmp_path / "live.incoming" / PROMOTE_MARKER).write_text("")
    replace_checkpoint(versions["A"], live)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live", "live.previous"]
    # both load as they are (the marker is not part of the checkpoint): a rollback is a rename
    assert which(load_router(live), digests) == "A"
    assert which(load_router(tmp_path / "live.previous"), digests) == "B"
    assert (tmp_path / "live.previous" / PROMOTE_MARKER).is_file()
    assert not (versions["A"] / PROMOTE_MARKER).exists()  # the candidate is only read


@EXCHANGE
@pytest.mark.parametrize("step", ["keep the previous", "install the copy"])
def test_a_failed_swap_leaves_the_live_directory_as_it_was(tmp_path, versions, monkeypatch, exchange,
                                                           use_exchange, step):
    """Every check runs before the swap; a rename after it that fails undoes it."""
    use_exchange(exchange)
    live = tmp_path / "live"
    replace_checkpoint(versions["B"], live)
    replace_checkpoint(versions["A"], live)  # live: A; live.previous: B
    before = {p: snapshot(p) for p in (live, tmp_path / "live.previous")}
    real_rename = os.rename
    fail_to = live if step == "install the copy" else tmp_path / "live.previous"
    if exchange and step == "install the copy":
        monkeypatch.setattr(promote, "exchange_paths", lambda a, b: (_ for _ in ()).throw(OSError(5, "I/O error")))
    else:
        failed = []

        def rename(src, dst):
            if Path(dst) == fail_to and not failed:  # once: undoing it renames to the same place
                failed.append(dst)
                raise OSError(28, "No space left on device")
            return real_rename(src, dst)

        monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        replace_checkpoint(versions["B"], live)
    monkeypatch.setattr(os, "rename", real_rename)
    assert load_router(live).card_["version"] == "A"
    assert snapshot(live) == before[live]
    assert sorted(p.name for p in tmp_path.iterdir()) in (["live"], ["live", "live.previous"])
    if (tmp_path / "live.previous").exists():  # promote's own: it may already be gone
        assert snapshot(tmp_path / "live.previous") == before[tmp_path / "live.previous"]


# --------------------------------------------------------------------------- readers during a swap


@pytest.mark.parametrize("by_fd", [True, False], ids=["directory-descriptor", "by-path"])
@pytest.mark.parametrize("swaps", [1, 2])
def test_a_swap_between_reading_the_config_and_the_weights_loads_one_version(tmp_path, versions, digests,
                                                                            monkeypatch, by_fd, swaps):
    """The swap lands after config.json was read: the load gives one version whole, never a
    checksum error (two swaps delete the directory being read)."""
    if by_fd and not checkpoints._BY_FD:
        pytest.skip("no directory descriptors on this system")
    monkeypatch.setattr(pinned, "_BY_FD", by_fd)  # where the loader reads it
    live = tmp_path / "live"
    replace_checkpoint(versions["A"], live)
    real = safety._read_config
    pending = [versions["B"], versions["A"]][:swaps]

    def read_then_swap(*args, **kwargs):
        config = real(*args, **kwargs)
        swaps, pending[:] = list(pending), []  # promote verifies what it swaps in: no swap from in there
        for version in swaps:
            replace_checkpoint(version, live)
        return config

    monkeypatch.setattr(safety, "_read_config", read_then_swap)  # what verify_checkpoint calls
    router = load_router(live)
    assert which(router, digests) in ("A", "B")
    assert not pending


SWAPPER = """
import os, sys
from routellm_core.learning.promote import replace_checkpoint
a, b, live, stop = sys.argv[1:5]
print("ready", flush=True)
n = 0
while not os.path.exists(stop):
    replace_checkpoint(b if n % 2 == 0 else a, live)
    n += 1
print(n, flush=True)
"""


def test_readers_never_see_a_half_swapped_router(tmp_path, versions, digests):
    """Another process promotes B and A in turn, as fast as it can; this one loads the live
    directory meanwhile (150 loads or 5 s): every load succeeds and is A or B whole."""
    if not checkpoints._BY_FD or not sys.platform.startswith("linux"):
        pytest.skip("needs directory descriptors and the Linux exchange (the path present throughout)")
    live, stop = tmp_path / "live", tmp_path / "stop"
    replace_checkpoint(versions["A"], live)
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(versions["A"]), str(versions["B"]), str(live),
                                str(stop)], stdout=subprocess.PIPE, text=True)
    seen = {"A": 0, "B": 0}
    failures: list[str] = []
    try:
        assert swapper.stdout.readline().strip() == "ready"
        end = time.monotonic() + 5.0
        while sum(seen.values()) + len(failures) < 150 and time.monotonic() < end:
            try:
                seen[which(load_router(live), digests)] += 1
            except CheckpointError as exc:
                failures.append(str(exc))
        stop.touch()
        swaps = int(swapper.communicate(timeout=60)[0].split()[-1])
    finally:
        swapper.kill()
        swapper.wait()
    loads = sum(seen.values()) + len(failures)
    print(f"reader during swaps: {loads} loads, {len(failures)} failures, "
          f"{swaps} swaps, {seen}")
    assert failures == [], f"{len(failures)} of {loads} loads failed during {swaps} swaps: {failures[:3]}"
    assert swaps >= 50 and loads >= 20 and min(seen.values()) > 0, (swaps, seen)


# --------------------------------------------------------------------------- weights that are not numbers


def poison(ckpt: Path, tensor: str, value: float) -> Path:
    """Set one weight tensor of a checkpoint to ``value`` and rewrite the manifest to match, as
    a forger (or a diverged training run) would."""
    weights = ckpt / "model.safetensors"
    arrays = load_file(str(weights))
    arrays[tensor] = np.full_like(arrays[tensor], value)
    save_file(arrays, str(weights))
    config = json.loads((ckpt / "config.json").read_text())
    config["files"]["model.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (ckpt / "config.json").write_text(json.dumps(config))
    return ckpt


@pytest.fixture(scope="module")
def mf_checkpoint(tmp_path_factory) -> Path:
    from routellm_core.routers import MatrixFactorizationRouter
    from tests.routing_fixtures import toy_battles

    router = MatrixFactorizationRouter(epochs=3, strong_model="big-model", weak_model="small-model")
    return save_router(router.fit(toy_battles()), tmp_path_factory.mktemp("mf") / "ckpt")


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan], ids=["+inf", "-inf", "nan"])
@pytest.mark.parametrize("tensor", ["classifier", "projection", "model_vectors"])
def test_mf_weights_that_are_not_finite_are_refused_at_load(tmp_path, mf_checkpoint, tensor, value):
    ckpt = poison(shutil.copytree(mf_checkpoint, tmp_path / "ckpt"), tensor, value)
    with pytest.raises(CheckpointError, match=rf"model.safetensors tensor '{tensor}' holds [\d,]+ non-finite values"):
        load_router(ckpt)


@pytest.mark.parametrize("value", [np.inf, np.nan], ids=["inf", "nan"])
@pytest.mark.parametrize("tensor", ["query_embeddings", "counts"])
def test_sw_ranking_weights_that_are_not_finite_are_refused_at_load(tmp_path, versions, tensor, value):
    ckpt = poison(shutil.copytree(versions["A"], tmp_path / "ckpt"), tensor, value)
    with pytest.raises(CheckpointError, match=rf"tensor '{tensor}' holds [\d,]+ non-finite values \(NaN or \+/-inf\)"):
        load_router(ckpt)
