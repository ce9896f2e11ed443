"""The checkpoint format on disk: file names, the sha256 manifest, and reading ``config.json``.

Example:
    >>> from routellm_core.checkpoints import DEFAULT_DIR
    >>> config = _read_config(DEFAULT_DIR)
    >>> config["format"], config["router_type"], sorted(config["files"]) == _listed_files(DEFAULT_DIR)
    ('routellm-checkpoint', 'sw_ranking', True)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import IO, Any, Protocol

from routellm_core.errors import CheckpointError

FORMAT = "routellm-checkpoint"
FORMAT_VERSION = 2
# A router that strips a query template is saved as version 3: a reader of 1-2 would ignore the
# template and score other text than the router was trained on, so it must refuse the file.
TEMPLATE_FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
CONFIG_NAME = "config.json"
MAX_CONFIG_BYTES = 16 << 20  # the embedded defaults' configs are about 25 KB
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
#: The marker file ``routellm promote`` (:func:`~routellm_core.learning.promote.replace_checkpoint`)
#: writes in the directories it makes, so that it deletes only those; never read here.
PROMOTE_MARKER = ".routellm-promote"
# Files a checkpoint directory may hold besides the checkpoint, never read here: a Hub
# snapshot's git metadata, the marker of a directory that promote made.
_INERT_FILES = (".gitattributes", PROMOTE_MARKER)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+\-]+(/[A-Za-z0-9_.+\-]+)*$")


class _HeldDirectory(Protocol):
    """A directory held open, its files read relative to it where ``relative`` (see
    :class:`~routellm_core.checkpoints.pinned._Pinned`)."""

    relative: bool

    def stat(self, name: str) -> os.stat_result | None: ...

    def open(self, name: str) -> IO[bytes]: ...


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return _sha256_of(f)


def _sha256_of(f: IO[bytes]) -> str:
    f.seek(0)
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def _listed_files(directory: Path) -> list[str]:
    """Every file and symlink under ``directory`` except the config, as POSIX relative paths."""
    out = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        base = Path(root)
        # a symlinked folder is not descended into: report it as an entry so it is checked
        entries = files + [d for d in dirs if (base / d).is_symlink()]
        for name in entries:
            rel = (base / name).relative_to(directory).as_posix()
            if rel not in (CONFIG_NAME, *_INERT_FILES):
                out.append(rel)
    return sorted(out)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _check_name(directory: Path, name: Any) -> str:
    """``name`` if it is a plain relative path inside ``directory``, else CheckpointError."""
    if (
        not isinstance(name, str)
        or not _SAFE_NAME.match(name)
        or any(p in (".", "..") for p in name.split("/"))
    ):
        raise CheckpointError(
            f"{directory}: file entry {name!r} points outside the checkpoint or is not a plain relative "
            "path (letters, digits, '_.+-', '/' between parts; no '..', no absolute paths)"
        )
    return name


def _read_config(directory: Path, root: Path | None = None, *, pinned: _HeldDirectory | None = None) -> dict[str, Any]:
    """``config.json`` of ``directory``, checked for the keys and types every reader relies on
    (read through ``pinned`` when it holds the directory open)."""
    path = directory / CONFIG_NAME
    if pinned is not None and pinned.relative:
        st = pinned.stat(CONFIG_NAME)
        size = st.st_size if st is not None and stat.S_ISREG(st.st_mode) else None
    else:
        if path.is_symlink() and not _inside(path.resolve(), root or directory.resolve()):
            raise CheckpointError(
                f"{path} is a symlink to {path.resolve()}, outside the checkpoint directory"
            )
        size = path.stat().st_size if path.is_file() else None
    if size is None:
        raise CheckpointError(
            f"{directory} is not a router checkpoint: {CONFIG_NAME} is missing"
        )
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(
            f"{path} is {size:,} bytes; a checkpoint config may hold at most {MAX_CONFIG_BYTES:,}"
        )
    if pinned is not None and pinned.relative:
        with pinned.open(CONFIG_NAME) as f:
            raw: str | bytes = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:  # it grew since the size was read
            raise CheckpointError(f"{path} is over {MAX_CONFIG_BYTES:,} bytes, the most a checkpoint config may hold")
    else:
        raw = path.read_text()
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path} is not valid JSON (or nests too deeply): {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a {FORMAT} config (format={config.get('format') if isinstance(config, dict) else None!r})"
        )
    if config.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has format_version {config.get('format_version')!r}; this library reads {list(READABLE_VERSIONS)}"
        )
    for key in ("router_type", "params", "state", "files"):
        if key not in config:
            raise CheckpointError(f"{path} lacks the key {key!r}")
    if not isinstance(config["files"], dict) or not isinstance(config["params"], dict):
        raise CheckpointError(f"{path}: 'files' and 'params' must be JSON objects")
    if not isinstance(config["state"], dict):
        raise CheckpointError(f"{path}: 'state' must be a JSON object")
    if not isinstance(config["router_type"], str):
        raise CheckpointError(f"{path}: 'router_type' must be a string, got {config['router_type']!r:.80}")
    if not all(isinstance(v, str) for v in config["files"].values()):
        raise CheckpointError(f"{path}: every 'files' entry must be a sha256 hex string")
    return config


def _write_config(directory: Path, config: dict[str, Any]) -> None:
    """Write ``config`` as ``config.json`` of ``directory`` (sorted keys, one space indents)."""
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
