"""Checks on GGUF model files from outside: is this file a GGUF file at all?

A local chat model is loaded by llama.cpp from a file the user names; a download that went
wrong (an HTML error page, a truncated file) should fail with a message naming the file, not
deep inside the native loader.

Example:
    >>> import tempfile, pathlib
    >>> from routellm_core.gguf_files import check_gguf
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "model.gguf"
    >>> _ = bad.write_bytes(b"<html>not a model</html>")
    >>> check_gguf(bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    routellm_core.errors.ModelFileError: ... is not a GGUF file (it starts with b'<htm', not b'GGUF')
"""

from __future__ import annotations

import os
from pathlib import Path

from routellm_core.errors import ModelFileError

__all__ = ["GGUF_MAGIC", "ModelFileError", "check_gguf"]

GGUF_MAGIC = b"GGUF"


def check_gguf(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` if it is a readable GGUF file, else raise an error naming the problem.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ModelFileError: it is not a file, or it does not start with the GGUF magic bytes.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"model file {str(p)!r} does not exist")
    if not p.is_file():
        raise ModelFileError(f"model file {str(p)!r} is not a file")
    with p.open("rb") as f:
        head = f.read(4)
    if head != GGUF_MAGIC:
        raise ModelFileError(
            f"model file {str(p)!r} is not a GGUF file (it starts with {head!r}, not {GGUF_MAGIC!r})"
        )
    return p
