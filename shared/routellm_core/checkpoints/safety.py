"""What a checkpoint may not hold, and :func:`verify_checkpoint`, which checks all of it.

Refused, whatever the manifest says: a pickle (by suffix or by its first bytes; nothing is
ever unpickled), code (``.py``, ``.so``, ...; JSON asking for remote code), anything pointing
outside the directory (an entry with ``..``, a symlink leading out, a path-like parameter),
and weight tensors holding NaN or an infinity.

Example:
    >>> import io
    >>> _refuse_pickle(Path("ckpt"), "weights.bin", io.BytesIO(b""))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    routellm_core.errors.CheckpointError: ckpt: weights.bin is refused: .bin files are pickle-based ...
"""

from __future__ import annotations

import json
import os
import pickletools
import re
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from routellm_core.checkpoints.format import (
    CARD_NAME,
    CONFIG_NAME,
    _check_name,
    _inside,
    _listed_files,
    _read_config,
    _sha256_of,
)
from routellm_core.checkpoints.pinned import _consistently, _Pinned
from routellm_core.errors import CheckpointError
from routellm_core.static_encoder import split_static_prefix

PICKLE_SUFFIXES = frozenset(
    {
        ".bin",
        ".pt",
        ".pth",
        ".pkl",
        ".pickle",
        ".ckpt",
        ".joblib",
        ".dill",
        ".npy",
        ".npz",
        ".h5",
        ".msgpack",
    }
)
# Code that a library would import or run from a checkpoint folder (transformers imports the
# .py files an ``auto_map`` names, after asking on stdin): refused whatever the manifest says.
CODE_SUFFIXES = frozenset(
    {".py", ".pyc", ".pyo", ".pyd", ".pyx", ".so", ".dll", ".dylib", ".sh", ".exe", ".ipynb"}
)
# Keys by which Hugging Face configs ask for code from the checkpoint (or the Hub) to be run.
REMOTE_CODE_KEYS = frozenset({"auto_map", "trust_remote_code", "custom_pipelines"})


def _refuse_code(directory: Path, name: str, file: IO[bytes]) -> None:
    """Refuse files that hold code, and JSON files that ask for code to be run."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in CODE_SUFFIXES:
        raise CheckpointError(
            f"{directory}: {name} is refused: a checkpoint is data, and {suffix} files are code "
            "that a loader could import or run"
        )
    if suffix != ".json" or name == CONFIG_NAME:
        return
    file.seek(0)
    try:
        data = json.loads(file.read())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{directory}: {name} is not valid JSON: {exc}") from exc
    key = _remote_code_key(data)
    if key is not None:
        raise CheckpointError(
            f"{directory}: {name} is refused: its {key!r} asks for code to be loaded with the "
            "model (remote code); a checkpoint is data and is never loaded with code"
        )


def _remote_code_key(data: Any, depth: int = 0) -> str | None:
    if depth > 64:
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            if key in REMOTE_CODE_KEYS:
                return str(key)
            found = _remote_code_key(value, depth + 1)
            if found is not None:
                return found
    elif isinstance(data, list):
        for value in data:
            found = _remote_code_key(value, depth + 1)
            if found is not None:
                return found
    return None


def _is_text_pickle(file: IO[bytes]) -> bool:
    """Whether ``file`` parses as a whole as a protocol 0 or 1 pickle (opcodes up to a final
    STOP), which has no header to tell it by. Nothing is unpickled: the opcodes are only read."""
    file.seek(0)
    data = file.read()
    if not data.rstrip(b"\r\n").endswith(b"."):
        return False
    try:
        last = None
        for op, _arg, _pos in pickletools.genops(data):
            last = op
    except Exception:  # not a pickle: any other format fails on its first bytes
        return False
    return last is not None and last.name == "STOP"


def _refuse_pickle(directory: Path, name: str, file: IO[bytes]) -> None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{directory}: {name} is refused: {suffix} files are pickle-based (or not safetensors) "
            "and can run code when loaded; checkpoints hold weights only as .safetensors"
        )
    if suffix == ".safetensors":
        return  # its 8-byte header length can look like anything; it is parsed instead
    file.seek(0)
    head = file.read(4)
    if (
        len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    ) or head == b"PK\x03\x04" or _is_text_pickle(file):
        raise CheckpointError(
            f"{directory}: {name} is refused: its content is a pickle (or a torch.save zip archive), "
            "which can run code when loaded; checkpoints hold weights only as .safetensors"
        )


def verify_checkpoint(
    path: str | os.PathLike[str],
    *,
    trusted_root: str | os.PathLike[str] | None = None,
    overridden: Iterable[str] = (),
    _pinned: _Pinned | None = None,
) -> dict[str, Any]:
    """Check a checkpoint directory without loading anything from it; returns its config.

    Raises :class:`CheckpointError` unless every rule of :mod:`routellm_core.checkpoints` holds.
    ``trusted_root`` widens where symlinks may point (a Hub cache's ``models--org--name``
    folder, whose snapshot files link into its ``blobs/``); ``overridden`` names parameters
    the caller replaces, which are then not checked. Every file is read from the one
    directory that ``path`` names when the check starts (see :func:`load_checkpoint_dir`).

    Example:
        >>> from routellm_core.checkpoints import DEFAULT_DIR
        >>> verify_checkpoint(DEFAULT_DIR)["router_type"]
        'sw_ranking'
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory} is a file; a checkpoint is a directory")
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    if _pinned is None:
        return _consistently(directory, lambda pinned: verify_checkpoint(
            directory, trusted_root=trusted_root, overridden=overridden, _pinned=pinned))
    pinned = _pinned
    root = (
        Path(trusted_root).resolve()
        if trusted_root is not None
        else directory.resolve()
    )
    config = _read_config(directory, root, pinned=pinned)
    key = _remote_code_key(config)
    if key is not None:
        raise CheckpointError(
            f"{directory}: {CONFIG_NAME} is refused: its {key!r} asks for code to be loaded with "
            "the model (remote code); a checkpoint is data and is never loaded with code"
        )
    files: dict[str, Any] = config["files"]
    for name in files:
        _check_name(directory, name)
    present = pinned.entries if pinned.relative else _listed_files(directory)
    unlisted = [n for n in present if n not in files]
    # a v1 checkpoint did not list its model card, which is only ever read by people
    if config["format_version"] == 1:
        unlisted = [n for n in unlisted if n != CARD_NAME]
    for name in unlisted:
        st = pinned.stat(name) if pinned.relative else None
        if (st is not None and stat.S_ISREG(st.st_mode)) if pinned.relative else (directory / name).is_file():
            with pinned.open(name) as f:  # a pickle or code gets the more telling error
                _refuse_pickle(directory, name, f)
                _refuse_code(directory, name, f)
        raise CheckpointError(
            f"{directory}: {name} is not in the sha256 manifest ('files' in {CONFIG_NAME}); "
            "a checkpoint may hold only the files its config lists"
        )
    for name, digest in files.items():
        if pinned.relative:  # no symlink inside (else it is read by path): nothing to resolve
            st = pinned.stat(name)
            if st is None:
                raise CheckpointError(f"{directory}: {name} is missing (the config lists it)")
            if not stat.S_ISREG(st.st_mode):
                raise CheckpointError(f"{directory}: {name} is not a regular file")
            f = pinned.open(name)
        else:
            file = directory / name
            if not file.exists() and not file.is_symlink():
                raise CheckpointError(
                    f"{directory}: {name} is missing (the config lists it)"
                )
            target = file.resolve()
            if not _inside(target, root):
                raise CheckpointError(
                    f"{directory}: {name} resolves to {target}, outside the checkpoint directory"
                )
            if not target.is_file():
                raise CheckpointError(f"{directory}: {name} is not a regular file")
            f = open(target, "rb")
        with f:
            _refuse_pickle(directory, name, f)
            _refuse_code(directory, name, f)
            matches = _sha256_of(f) == digest
        if not matches:
            raise CheckpointError(
                f"{directory}: {name} does not match the sha256 in {CONFIG_NAME}; it is corrupt or was modified"
            )
    skip = set(overridden)
    _check_params(
        directory, {k: v for k, v in config["params"].items() if k not in skip}
    )
    return config


def _check_params(directory: Path, params: Any, where: str = "params") -> None:
    """Refuse parameters that name a path outside the checkpoint (an encoder in /tmp, ``..``)."""
    if isinstance(params, dict):
        for key, value in params.items():
            _check_params(directory, value, f"{where}.{key}")
    elif isinstance(params, list):
        for i, value in enumerate(params):
            _check_params(directory, value, f"{where}[{i}]")
    elif isinstance(params, str):
        target = split_static_prefix(params)[1]
        parts = re.split(r"[\\/]", target)
        if (
            target.startswith(("/", "\\", "~"))
            or re.match(r"^[A-Za-z]:[\\/]", target)
            or ".." in parts
        ):
            raise CheckpointError(
                f"{directory}: {where} = {params!r} points outside the checkpoint directory; "
                "a checkpoint may name Hub ids or files inside itself only (to use a local "
                "encoder you trust, pass encoder=... to load_router)"
            )



def _refuse_non_finite(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> None:
    """A float tensor with NaN or an infinity is corrupt weights (a diverged training run, a
    forged file): refused, naming it. An infinity can route every query one way with no
    error (a sigmoid of +inf is 1)."""
    for key, array in arrays.items():
        if array.dtype == np.float16:  # the exponent bits, all set: 3x faster than isfinite here
            exponent = np.uint16(0x7C00)
            bad = int(np.count_nonzero((array.view(np.uint16) & exponent) == exponent))
        elif array.dtype.kind in "fc":
            bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        else:
            continue
        if bad:
            raise CheckpointError(
                f"{directory}: {name} tensor {key!r} holds {bad:,} non-finite values (NaN or "
                f"+/-inf) of {array.size:,}; the weights are corrupt (a diverged training run or a "
                "modified file)"
            )

