"""Reading one checkpoint directory whole while ``routellm promote`` may swap its path.

``routellm promote --to`` swaps a live checkpoint directory while other processes load it; a
loader that read config.json from one directory and the weights from the other would refuse
the mix (the sha256 differ), or worse, load it. :func:`_consistently` runs a read against one
directory held open (:class:`_Pinned`) and does it again when the path came to name another.

Example:
    >>> from routellm_core.checkpoints import DEFAULT_DIR
    >>> _consistently(DEFAULT_DIR, lambda pinned: "config.json" in pinned.held or not pinned.relative)
    True
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from routellm_core.checkpoints.format import _INERT_FILES, CONFIG_NAME
from routellm_core.errors import CheckpointError

_LOAD_ATTEMPTS = 3
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
# read relative to a directory descriptor where the system can (POSIX), else by path
_BY_FD = bool(_O_DIRECTORY) and os.open in os.supports_dir_fd and os.scandir in os.supports_fd
_MAX_DEPTH = 32
_MAX_HELD = 256  # files held open from the start of a load (a checkpoint has a handful)
_T = TypeVar("_T")


class _Pinned:
    """A checkpoint directory held open for the length of one load.

    Where the system allows (POSIX), the directory is opened once and every file is read
    relative to that descriptor (``relative``), so a rename or exchange of its path during the
    load cannot mix the files of two directories. A directory holding a symlink (a Hub
    snapshot's files link into its ``blobs/``) is read by path, as the symlink rules need; so
    are the files a router's ``_load_files`` hook reads (``by_path`` is set then). Either way
    the directory's identity tells whether its path still names it (:meth:`moved`).

    Its files are opened at once, too, and held: a promote deletes a directory two swaps after
    it left the path, and a slow load of it still reads every file whole.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fd: int | None = None
        self.relative = False
        self.entries: list[str] = []
        self.held: dict[str, int] = {}
        self.by_path = False
        if not _BY_FD:
            st = os.stat(directory)
            self.identity = (st.st_dev, st.st_ino)
            return
        # held open to the end: the directory's inode cannot be reused while it is compared
        self.fd = os.open(directory, _O_FLAGS | _O_DIRECTORY)
        try:
            st = os.fstat(self.fd)
            self.identity = (st.st_dev, st.st_ino)
            entries = _scan_fd(self.fd, directory)
            self.relative = entries is not None
            self.entries = entries or []
            if self.relative and len(self.entries) < _MAX_HELD:
                for name in [CONFIG_NAME, *self.entries]:
                    self._hold(name)
        except BaseException:
            self.close()
            raise

    def _hold(self, name: str) -> None:
        st = self.stat(name)
        if st is None or not stat.S_ISREG(st.st_mode):
            return  # missing or not a file (never opened: a FIFO or a device): the checks say so
        try:
            fd = os.open(name, _O_FLAGS | _O_NOFOLLOW, dir_fd=self.fd)
        except OSError:
            return
        if stat.S_ISREG(os.fstat(fd).st_mode):
            self.held[name] = fd
        else:
            os.close(fd)

    def close(self) -> None:
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> _Pinned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def moved(self) -> bool:
        """Whether the path no longer names the directory that was opened."""
        try:
            st = os.stat(self.directory)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self.identity

    def stat(self, name: str) -> os.stat_result | None:
        """``lstat`` of ``name`` inside the directory (``relative`` only); ``None`` if missing."""
        if name in self.held:
            return os.fstat(self.held[name])
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def open(self, name: str) -> IO[bytes]:
        """``name`` opened for reading, at its start: inside the held directory, or by path."""
        if not self.relative:
            return open(self.directory / name, "rb")
        if name in self.held:
            f = os.fdopen(os.dup(self.held[name]), "rb")
            f.seek(0)
            return f
        return os.fdopen(os.open(name, _O_FLAGS | _O_NOFOLLOW, dir_fd=self.fd), "rb")


def _scan_fd(fd: int, directory: Path, prefix: str = "", depth: int = 0) -> list[str] | None:
    """What :func:`_listed_files` lists, read through the directory descriptor ``fd``;
    ``None`` when the tree holds a symlink (to be checked by path)."""
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"{directory}: folders nest more than {_MAX_DEPTH} deep")
    with os.scandir(fd) as it:
        entries = list(it)
    out: list[str] = []
    for entry in entries:
        rel = prefix + entry.name
        if entry.is_symlink():
            return None
        if entry.is_dir(follow_symlinks=False):
            sub = os.open(entry.name, _O_FLAGS | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=fd)
            try:
                found = _scan_fd(sub, directory, rel + "/", depth + 1)
            finally:
                os.close(sub)
            if found is None:
                return None
            out.extend(found)
        elif rel not in (CONFIG_NAME, *_INERT_FILES):
            out.append(rel)
    return sorted(out)


def _consistently(directory: Path, read: Callable[[_Pinned], _T]) -> _T:
    """``read(pinned)`` of ``directory``, from one consistent directory: when the path came to
    name another directory while a read failed (``routellm promote`` swapped it in), or
    while files were read by path, the read is done again (up to 3 times in all)."""
    for attempt in range(1, _LOAD_ATTEMPTS + 1):
        try:
            pinned = _Pinned(directory)
        except (FileNotFoundError, NotADirectoryError):
            if attempt == _LOAD_ATTEMPTS:
                raise CheckpointError(f"checkpoint directory {directory} does not exist") from None
            time.sleep(0.01 * attempt)  # between the two renames of a swap where renames cannot exchange
            continue
        with pinned:
            try:
                result = read(pinned)
            except (CheckpointError, OSError):
                if attempt == _LOAD_ATTEMPTS or not pinned.moved():
                    raise
                continue
            if not (pinned.by_path and pinned.moved()):
                return result
    raise CheckpointError(
        f"{directory} was replaced by another directory during each of {_LOAD_ATTEMPTS} loads; "
        "load it again once it stops changing"
    )

