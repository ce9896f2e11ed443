"""The battles frame: the columns every loader produces and every trainer consumes, and its checks.

A battle is one comparison of two models' answers to one query::

    query        the user prompt (str, non-empty)
    model_a      name of the first model (str)
    model_b      name of the second model (str)
    winner       "a", "b" or "tie"
    source       where the row came from, e.g. "routerbench:arc_challenge_train" (str)

This module sits at the bottom of the core (it imports no other part of it), so the traffic
store and the data loaders build the same frame. :mod:`routellm_core.data.schema` re-exports
these names beside the rest of the data schema.

Example:
    >>> from routellm_core.battles import make_battles
    >>> df = make_battles([{"query": "2+2?", "model_a": "gpt-4", "model_b": "mixtral",
    ...                     "winner": "tie", "source": "doc"}])
    >>> list(df.columns)
    ['query', 'model_a', 'model_b', 'winner', 'source']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

__all__ = ["BATTLE_COLUMNS", "WINNERS", "make_battles", "validate_battles"]

BATTLE_COLUMNS: tuple[str, ...] = ("query", "model_a", "model_b", "winner", "source")
WINNERS: frozenset[str] = frozenset({"a", "b", "tie"})


def make_battles(rows: Iterable[Mapping[str, object]] | pd.DataFrame) -> pd.DataFrame:
    """Build a validated battles frame from rows (mappings) or an existing frame."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in BATTLE_COLUMNS})
    return validate_battles(df)


def validate_battles(df: pd.DataFrame) -> pd.DataFrame:
    """Check that ``df`` follows the schema; return it with exactly the schema's columns.

    Raises:
        ValueError: a column is missing, a query is empty or not text, a winner is not
            one of "a", "b", "tie", or a battle pits a model against itself.
    """
    missing = [c for c in BATTLE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"battles are missing columns {missing}; expected {list(BATTLE_COLUMNS)}")
    df = df.loc[:, list(BATTLE_COLUMNS)].reset_index(drop=True)
    bad_query = ~df["query"].map(lambda q: isinstance(q, str) and bool(q.strip()))
    if bad_query.any():
        i = int(bad_query.idxmax())
        raise ValueError(f"battle {i} has an empty or non-text query: {df['query'][i]!r}")
    bad_winner = ~df["winner"].isin(WINNERS)
    if bad_winner.any():
        i = int(bad_winner.idxmax())
        raise ValueError(
            f"battle {i} has winner {df['winner'][i]!r}; expected one of {sorted(WINNERS)}"
        )
    for col in ("model_a", "model_b"):
        bad = ~df[col].map(lambda m: isinstance(m, str) and bool(m.strip()))
        if bad.any():
            i = int(bad.idxmax())
            raise ValueError(f"battle {i} has an empty or non-text {col}: {df[col][i]!r}")
    same = df["model_a"] == df["model_b"]
    if same.any():
        i = int(same.idxmax())
        raise ValueError(f"battle {i} pits {df['model_a'][i]!r} against itself")
    return df
