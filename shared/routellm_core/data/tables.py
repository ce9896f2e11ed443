"""Reading the tabular files every format reader starts from, and the checks they share.

CSV/TSV, JSON (records or columns), JSONL and Parquet are read into a :class:`pandas.DataFrame`
by suffix; every error names the file (and the row or column) that is wrong.

Example:
    >>> import json, tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
    >>> _ = f.write_text(json.dumps({"query": "Hi", "m1": 1}) + "\\n")
    >>> read_table(f).to_dict("records")
    [{'query': 'Hi', 'm1': 1}]
"""

from __future__ import annotations

import ast
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.data.schema import ScoreMatrix, canonical_model_name

__all__ = [
    "PathLike",
    "canonical_name",
    "canonical_names",
    "check_file",
    "clean_text",
    "columns_error",
    "matrix_from_rows",
    "numeric_block",
    "parse_literal",
    "read_jsonl",
    "read_table",
    "report_dropped",
    "select_models",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def check_file(path: PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is an existing file, else a clear error."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    if not p.is_file():
        raise ValueError(f"{p}: not a file")
    return p


def read_jsonl(path: Path) -> list[Any]:
    """The JSON value of every non-blank line of ``path``."""
    rows: list[Any] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from exc
    return rows


def read_table(path: PathLike) -> pd.DataFrame:
    """Read CSV/TSV, JSON (records or columns), JSONL or Parquet, chosen by suffix."""
    p = check_file(path)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        try:
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{p}: empty file") from exc
    if suffix in (".jsonl", ".ndjson"):
        rows = read_jsonl(p)
    elif suffix == ".json":
        try:
            rows = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: not valid JSON ({exc.msg})") from exc
        if isinstance(rows, dict):
            return pd.DataFrame(rows)
    elif suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(p)
        except ImportError as exc:
            raise ImportError(f"{p}: reading Parquet needs pyarrow (pip install pyarrow)") from exc
    else:
        store = (f" (a traffic store? give it as store:{path})"
                 if suffix in (".db", ".sqlite", ".sqlite3") else "")
        raise ValueError(f"{p}: unsupported file type {suffix!r}{store}; use .csv, .json, .jsonl or .parquet")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{p}: expected a list of JSON objects (one per row)")
    return pd.DataFrame(rows)


def canonical_name(name: object, aliases: Mapping[str, str] | None) -> str:
    """:func:`~routellm_core.data.schema.canonical_model_name` of a cell that must be a string."""
    if not isinstance(name, str):
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    return canonical_model_name(name, aliases)


def canonical_names(names: Sequence[object], aliases: Mapping[str, str] | None, where: str) -> list[str]:
    """Canonical spelling of every name of a column; an error names the row of a bad one."""
    cache: dict[object, str] = {}
    out = []
    for i, n in enumerate(names):
        if n not in cache:
            try:
                cache[n] = canonical_name(n, aliases)
            except ValueError as exc:
                raise ValueError(f"{where}: row {i}: {exc}") from exc
        out.append(cache[n])
    return out


def clean_text(value: object) -> str | None:
    """``value`` if it is a string with some non-space text, else ``None``."""
    if isinstance(value, str) and value.strip():
        return value
    return None


def parse_literal(text: str) -> Any:
    """A JSON or Python literal (lists of turns are stored both ways), or ``None``."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def report_dropped(df: pd.DataFrame, n: int, path: Path, why: str) -> pd.DataFrame:
    """Record ``n`` dropped rows in ``df.attrs["dropped"]`` and log them."""
    df.attrs["dropped"] = int(n)
    if n:
        logger.warning("%s: dropped %d row(s) with %s", path, n, why)
    return df


def columns_error(path: Path, columns: Sequence[object], expected: str) -> ValueError:
    """A ``ValueError`` saying what ``path`` should hold and which columns it has."""
    return ValueError(f"{path}: {expected}; found columns {[str(c) for c in columns]}")


def numeric_block(df: pd.DataFrame, cols: Sequence[str], p: Path) -> np.ndarray:
    """The float values of ``cols``; empty cells become NaN, text is an error naming the cell."""
    block = df.loc[:, list(cols)]
    values = block.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & block.notna()
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise ValueError(
            f"{p}: row {r}, column {cols[c]!r} is not a number: {block.iat[r, c]!r}"
        )
    return values.to_numpy(dtype=float)


def select_models(
    raw: list[str], aliases: Mapping[str, str] | None, wanted: Sequence[str] | None, where: Path
) -> list[int]:
    """Positions in ``raw`` of the ``wanted`` models (raw or canonical names); all if None."""
    if wanted is None:
        return list(range(len(raw)))
    canon = [canonical_name(r, aliases) for r in raw]
    out = []
    for w in wanted:
        if w in raw:
            out.append(raw.index(w))
        elif canonical_name(w, aliases) in canon:
            out.append(canon.index(canonical_name(w, aliases)))
        else:
            raise ValueError(f"{where}: unknown model {w!r}; available: {raw}")
    return out


def matrix_from_rows(
    p: Path,
    texts: list[str | None],
    raw_models: list[str],
    scores: np.ndarray,
    *,
    aliases: Mapping[str, str] | None,
    models: Sequence[str] | None,
    source: str,
    tags: list[Any] | None = None,
    costs: np.ndarray | None = None,
) -> ScoreMatrix:
    """A :class:`ScoreMatrix` of the rows with text, the ``models`` columns, canonical names."""
    cols = select_models(raw_models, aliases, models, p)
    keep = np.array([t is not None for t in texts], dtype=bool)
    n_dropped = int((~keep).sum())
    if n_dropped:
        logger.warning("%s: dropped %d row(s) with no usable query text", p, n_dropped)
    rows = np.flatnonzero(keep)
    canon = [canonical_name(raw_models[c], aliases) for c in cols]
    if len(set(canon)) != len(canon):
        raise ValueError(f"{p}: model columns {[raw_models[c] for c in cols]} collide as {canon}")
    col_idx = np.asarray(cols, dtype=np.intp)
    return ScoreMatrix(
        queries=[t for t in texts if t is not None],
        models=canon,
        scores=scores[np.ix_(rows, col_idx)],
        source=source,
        tags=None if tags is None else [tags[i] for i in rows],
        costs=None if costs is None else costs[np.ix_(rows, col_idx)],
        dropped=n_dropped,
    )
