"""Chatbot-Arena human battles (RouteLLM's D_arena) in the battle schema.

Example:
    >>> import json, tempfile, pathlib
    >>> from routellm_core.data.arena import load_arena_battles
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "arena.jsonl"
    >>> _ = f.write_text(json.dumps({"model_a": "gpt-4", "model_b": "mixtral", "winner": "tie",
    ...                              "question": "Hi"}) + "\\n")
    >>> load_arena_battles(f)["winner"].tolist()
    ['tie']
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from routellm_core.data.schema import is_missing, make_battles
from routellm_core.data.tables import (
    PathLike,
    canonical_names,
    check_file,
    clean_text,
    columns_error,
    parse_literal,
    read_table,
    report_dropped,
)

__all__ = ["load_arena_battles"]

_ARENA_55K_FLAGS = ("winner_model_a", "winner_model_b", "winner_tie")
_ARENA_WINNERS = {
    "model_a": "a",
    "model_b": "b",
    "tie": "tie",
    "tie (bothbad)": "tie",
    "a": "a",
    "b": "b",
}


def _first_turn(value: object) -> str | None:
    """The first user turn of a prompt list, a conversation, or a plain string."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("[") and s.endswith("]"):
            parsed = parse_literal(s)
            if isinstance(parsed, list):
                return _first_turn(parsed)
        return clean_text(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        if all(isinstance(t, dict) for t in value):
            for turn in value:
                if str(turn.get("role", "")).lower() in ("user", "human"):
                    return clean_text(turn.get("content"))
            return None
        return clean_text(value[0])
    return None


def load_arena_battles(
    path: PathLike,
    *,
    aliases: Mapping[str, str] | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Load Chatbot-Arena human battles into the battle schema.

    Two layouts are recognised (CSV, JSON, JSONL or Parquet):

    - *lmsys-arena-human-preference-55k*: ``model_a``, ``model_b``, ``prompt`` (a JSON list of
      user turns) and 0/1 flags ``winner_model_a`` / ``winner_model_b`` / ``winner_tie``;
    - *chatbot_arena_conversations*: ``winner`` in {model_a, model_b, tie, tie (bothbad)} with
      ``conversation_a`` (list of ``{role, content}``) or a ``prompt`` / ``question`` column.

    The query is the first user turn, since RouteLLM routes on a single prompt. Rows with no
    usable text are dropped; their number is logged and kept in ``df.attrs["dropped"]``.

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "arena.json"
        >>> _ = f.write_text(json.dumps([{"model_a": "gpt-4-1106-preview",
        ...     "model_b": "mistralai/Mixtral-8x7B-Instruct-v0.1", "winner": "model_b",
        ...     "conversation_a": [{"role": "user", "content": "Hi!"}]}]))
        >>> load_arena_battles(f)[["model_b", "winner"]].values.tolist()
        [['mixtral-8x7b-instruct-v0.1', 'b']]

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the columns match neither layout, or a winner value is unknown.
    """
    p = check_file(path)
    df = read_table(p)
    cols = set(df.columns)
    source = source or f"arena:{p.stem}"
    expected = (
        "not a Chatbot-Arena battle file: expected model_a, model_b and either "
        "winner_model_a/winner_model_b/winner_tie with prompt, or winner with "
        "conversation_a/prompt/question"
    )
    if not {"model_a", "model_b"} <= cols:
        raise columns_error(p, df.columns, expected)

    if set(_ARENA_55K_FLAGS) <= cols and "prompt" in cols:
        flags = df.loc[:, list(_ARENA_55K_FLAGS)].apply(pd.to_numeric, errors="coerce")
        bad = ~flags.isin([0, 1]).all(axis=1) | (flags.sum(axis=1) != 1)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{p}: row {i} has winner flags {flags.iloc[i].to_dict()}; exactly one of "
                f"{list(_ARENA_55K_FLAGS)} must be 1"
            )
        winners = np.select(
            [flags["winner_model_a"].to_numpy() == 1, flags["winner_model_b"].to_numpy() == 1],
            ["a", "b"],
            "tie",
        )
        texts = [_first_turn(v) for v in df["prompt"]]
    elif "winner" in cols:
        text_col = next(
            (c for c in ("conversation_a", "prompt", "question", "query") if c in cols), None
        )
        if text_col is None:
            raise columns_error(p, df.columns, expected)
        raw = df["winner"].map(lambda w: w.strip().lower() if isinstance(w, str) else w)
        unknown = ~raw.isin(list(_ARENA_WINNERS))
        if unknown.any():
            i = int(np.flatnonzero(unknown.to_numpy())[0])
            raise ValueError(
                f"{p}: row {i} has unknown winner {df['winner'].iloc[i]!r}; expected one of "
                "['model_a', 'model_b', 'tie', 'tie (bothbad)']"
            )
        winners = raw.map(_ARENA_WINNERS).to_numpy()
        texts = [_first_turn(v) for v in df[text_col]]
    else:
        raise columns_error(p, df.columns, expected)

    out = pd.DataFrame(
        {
            "query": texts,
            "model_a": canonical_names(df["model_a"].tolist(), aliases, str(p)),
            "model_b": canonical_names(df["model_b"].tolist(), aliases, str(p)),
            "winner": winners,
            "source": source,
        }
    )
    keep = out["query"].notna().to_numpy()
    out = make_battles(out.loc[keep])
    return report_dropped(out, int((~keep).sum()), p, "no usable query text")
