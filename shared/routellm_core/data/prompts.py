"""Read a file of unlabelled prompts (for calibration and batch scoring).

Accepted: ``.jsonl`` / ``.json`` with a ``prompt``, ``query``, ``question``, ``instruction`` or
``turns`` (first turn) field; ``.csv`` / ``.parquet`` with such a column; anything else is read
as plain text, one prompt per line.

Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.txt"
    >>> _ = p.write_text("hello\\n\\nwhat is 2+2?\\n")
    >>> read_prompts(p)
    ['hello', 'what is 2+2?']
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routellm_core.encoders import validate_texts

PROMPT_FIELDS = ("prompt", "query", "question", "instruction", "turns")


def prompt_of_record(record: Any, where: str) -> str:
    """The prompt text of one JSON record (a string, or an object with a prompt field);
    ``where`` names the record in the ``ValueError`` raised when it holds none."""
    if isinstance(record, str):
        return record
    if isinstance(record, dict):
        for field in PROMPT_FIELDS:
            if field in record:
                value = record[field]
                if isinstance(value, list):
                    value = value[0] if value else ""
                if isinstance(value, dict):  # e.g. {"role": ..., "content": ...}
                    value = value.get("content", "")
                if not isinstance(value, str):
                    raise ValueError(f"{where}: field {field!r} is not text: {value!r:.80}")
                return value
        raise ValueError(f"{where}: no prompt field; expected one of {list(PROMPT_FIELDS)}, found {sorted(record)}")
    raise ValueError(f"{where}: expected a JSON object or string, got {type(record).__name__}")


def read_prompts(path: str | os.PathLike[str]) -> list[str]:
    """All non-empty prompts in ``path``, in file order; ``store:PATH_OR_URL``: the queries of
    the calls captured in that traffic store (each once, blank ones left out)."""
    if os.fspath(path).startswith("store:"):
        from routellm_core.store import open_store

        texts = open_store(os.fspath(path), must_exist=True).call_queries()
        if not texts:
            raise ValueError(f"{os.fspath(path)}: the traffic store holds no captured calls with a query")
        return texts
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"prompt file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        records = [json.loads(line) for line in p.read_text().split("\n") if line.strip()]
        texts = [prompt_of_record(r, f"{p}:{i + 1}") for i, r in enumerate(records)]
    elif suffix == ".json":
        data = json.loads(p.read_text())
        if not isinstance(data, list):
            raise ValueError(f"{p}: expected a JSON list of prompts")
        texts = [prompt_of_record(r, f"{p}[{i}]") for i, r in enumerate(data)]
    elif suffix in (".csv", ".parquet"):
        import pandas as pd

        df = pd.read_csv(p) if suffix == ".csv" else pd.read_parquet(p)
        cols = [c for c in PROMPT_FIELDS if c in df.columns]
        if not cols:
            raise ValueError(f"{p}: no prompt column; expected one of {list(PROMPT_FIELDS)}, found {list(df.columns)}")
        texts = [str(t) for t in df[cols[0]].dropna()]
    else:
        texts = p.read_text().splitlines()
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError(f"{p} holds no prompts")
    return texts


def is_prompt_file(prompts: str | os.PathLike[str] | Sequence[str]) -> bool:
    """Whether ``prompts`` names a file (a path) rather than holding the prompts."""
    return isinstance(prompts, (str, os.PathLike))


def prompt_texts(prompts: str | os.PathLike[str] | Sequence[str]) -> list[str]:
    """The prompts of a prompt file (:func:`read_prompts`), or a list of prompts checked."""
    if is_prompt_file(prompts):
        return read_prompts(prompts)  # type: ignore[arg-type]
    return validate_texts(prompts)  # type: ignore[arg-type]
