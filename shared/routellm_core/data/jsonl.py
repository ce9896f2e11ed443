"""JSONL files whose rows are already battles (the schema's five columns; ``source`` optional)."""

from __future__ import annotations

import pandas as pd

from routellm_core.data.schema import validate_battles
from routellm_core.data.tables import PathLike, check_file, read_jsonl

__all__ = ["load_jsonl_battles"]


def load_jsonl_battles(path: PathLike) -> pd.DataFrame:
    """Load JSONL rows already in the battle schema (``source`` defaults to the file stem).

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "b.jsonl"
        >>> _ = f.write_text(json.dumps({"query": "Hi", "model_a": "x", "model_b": "y",
        ...                              "winner": "tie"}) + "\\n")
        >>> load_jsonl_battles(f)["source"].tolist()
        ['jsonl:b']
    """
    p = check_file(path)
    rows = read_jsonl(p)
    if not rows:
        raise ValueError(f"{p}: no battles in file")
    if not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{p}: every line must be a JSON object")
    df = pd.DataFrame(rows)
    if "source" not in df.columns:
        df["source"] = f"jsonl:{p.stem}"
    else:
        df["source"] = df["source"].where(df["source"].notna(), f"jsonl:{p.stem}")
    try:
        return validate_battles(df)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from exc
