"""The one preference-data schema every loader produces and every trainer consumes.

A battle is one comparison of two models' answers to one query (``query``, ``model_a``,
``model_b``, ``winner`` "a" / "b" / "tie", ``source``; see :mod:`routellm_core.battles`).
Battles are held in a :class:`pandas.DataFrame` with exactly these columns (defined, with their
checks, in :mod:`routellm_core.battles` and re-exported here). Per-query scores of many models
(gold correctness, judge rewards) are a :class:`ScoreMatrix`; its ``to_battles()`` pairs the
models up into battles.

Example:
    >>> from routellm_core.data.schema import make_battles
    >>> df = make_battles([{"query": "2+2?", "model_a": "gpt-4", "model_b": "mixtral",
    ...                     "winner": "tie", "source": "doc"}])
    >>> list(df.columns)
    ['query', 'model_a', 'model_b', 'winner', 'source']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from routellm_core.battles import BATTLE_COLUMNS, WINNERS, make_battles, validate_battles

__all__ = [
    "BATTLE_COLUMNS",
    "MODEL_ALIASES",
    "WINNERS",
    "ScoreMatrix",
    "canonical_model_name",
    "is_missing",
    "make_battles",
    "validate_battles",
]

# Names under which the data sets in ../shared/data publish the same two models as RouteLLM.
MODEL_ALIASES: dict[str, str] = {
    "gpt4_1106_preview": "gpt-4-1106-preview",
    "gpt-4-1106-preview": "gpt-4-1106-preview",
    "mixtral-8x7b-instruct-v0.1": "mixtral-8x7b-instruct-v0.1",
    "mixtral-8x7b-chat": "mixtral-8x7b-instruct-v0.1",
}


def canonical_model_name(name: str, aliases: Mapping[str, str] | None = None) -> str:
    """Map a model name onto the project's canonical spelling.

    Applies ``aliases`` (user supplied, matched case-insensitively) first; otherwise lower-cases,
    drops an organisation prefix (``"mistralai/"``) and applies :data:`MODEL_ALIASES`.

    Example:
        >>> canonical_model_name("mistralai/Mixtral-8x7B-Instruct-v0.1")
        'mixtral-8x7b-instruct-v0.1'
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    key = name.strip()
    if aliases:
        lowered = {k.lower(): v for k, v in aliases.items()}
        if key.lower() in lowered:
            return lowered[key.lower()]
    key = key.lower().rsplit("/", 1)[-1]
    return MODEL_ALIASES.get(key, key)


def is_missing(value: object) -> bool:
    """True for ``None``, a float NaN and ``pd.NA``: a cell a data file left empty."""
    if value is None:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value)) or value is pd.NA
    except TypeError:
        return False


@dataclass(eq=False)
class ScoreMatrix:
    """Per-query scores of several models: ``scores[i, j]`` is model ``j`` on query ``i``.

    Attributes:
        queries: the query texts (non-empty strings).
        models: canonical model names, one per column.
        scores: ``(n_queries, n_models)`` float array; NaN marks a missing score.
        source: where the data came from, e.g. ``"routerbench:arc_challenge_train"``.
        tags: optional per-query task or cluster label (``None`` where a row has none).
        costs: optional ``(n_queries, n_models)`` dollars per query where the data has them.
        dropped: rows of the source file skipped for lack of text.

    Example:
        >>> import numpy as np
        >>> m = ScoreMatrix(["2+2?", "Capital of France?"], ["gpt-4", "mixtral"],
        ...                 np.array([[1.0, 0.0], [1.0, 1.0]]), source="doc")
        >>> m.to_battles()["winner"].tolist()
        ['a', 'tie']
    """

    queries: list[str]
    models: list[str]
    scores: np.ndarray
    source: str = ""
    tags: list[str | None] | None = None
    costs: np.ndarray | None = None
    dropped: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        self.queries = list(self.queries)
        self.models = list(self.models)
        self.scores = np.asarray(self.scores, dtype=float)
        n, k = len(self.queries), len(self.models)
        if self.scores.shape != (n, k):
            raise ValueError(
                f"scores has shape {self.scores.shape}; expected ({n} queries, {k} models)"
            )
        if len(set(self.models)) != k:
            dupes = sorted({m for m in self.models if self.models.count(m) > 1})
            raise ValueError(f"duplicate model names {dupes}")
        for i, q in enumerate(self.queries):
            if not (isinstance(q, str) and q.strip()):
                raise ValueError(f"query {i} is empty or not text: {q!r}")
        if self.tags is not None:
            self.tags = [None if is_missing(t) else str(t) for t in self.tags]
            if len(self.tags) != n:
                raise ValueError(f"tags has {len(self.tags)} entries; expected {n}")
        if self.costs is not None:
            self.costs = np.asarray(self.costs, dtype=float)
            if self.costs.shape != (n, k):
                raise ValueError(f"costs has shape {self.costs.shape}; expected ({n}, {k})")

    def __len__(self) -> int:
        return len(self.queries)

    def __repr__(self) -> str:
        return (
            f"ScoreMatrix(source={self.source!r}, n_queries={len(self)}, models={self.models}, "
            f"tags={'yes' if self.tags is not None else 'no'}, "
            f"costs={'yes' if self.costs is not None else 'no'})"
        )

    def model_index(self, name: str) -> int:
        """Column of ``name`` (raw or canonical spelling); ``ValueError`` if absent."""
        if name in self.models:
            return self.models.index(name)
        canon = canonical_model_name(name)
        if canon in self.models:
            return self.models.index(canon)
        raise ValueError(f"unknown model {name!r}; this matrix has {self.models}")

    def to_battles(
        self,
        models: Sequence[str] | None = None,
        pairs: Sequence[tuple[str, str]] | None = None,
    ) -> pd.DataFrame:
        """Turn every pair of models on every query into a battle.

        The higher score wins, equal scores tie, and pairs with a NaN score are skipped.
        ``models`` restricts the pairs to those models (all by default); ``pairs`` lists
        explicit ``(model_a, model_b)`` pairs instead.
        """
        if models is not None and pairs is not None:
            raise ValueError("give either models or pairs, not both")
        if pairs is None:
            names = self.models if models is None else list(models)
            idx = [self.model_index(m) for m in names]
            if len(set(idx)) != len(idx):
                raise ValueError(f"models lists a model twice: {names}")
            if len(idx) < 2:
                raise ValueError(f"need at least two models to make battles, got {names}")
            index_pairs = list(combinations(idx, 2))
        else:
            index_pairs = []
            for pair in pairs:
                if len(pair) != 2:
                    raise ValueError(f"a pair must be (model_a, model_b), got {pair!r}")
                ia, ib = self.model_index(pair[0]), self.model_index(pair[1])
                if ia == ib:
                    raise ValueError(f"pair {pair!r} pits a model against itself")
                index_pairs.append((ia, ib))
        q_idx, a_idx, b_idx, winners = [], [], [], []
        for ia, ib in index_pairs:
            sa, sb = self.scores[:, ia], self.scores[:, ib]
            ok = ~(np.isnan(sa) | np.isnan(sb))
            rows = np.flatnonzero(ok)
            q_idx.append(rows)
            a_idx.append(np.full(len(rows), ia))
            b_idx.append(np.full(len(rows), ib))
            winners.append(np.where(sa[ok] > sb[ok], "a", np.where(sa[ok] < sb[ok], "b", "tie")))
        if not q_idx or sum(len(r) for r in q_idx) == 0:
            return make_battles([])
        q = np.concatenate(q_idx)
        order = np.argsort(q, kind="stable")
        model_names = np.asarray(self.models, dtype=object)
        queries = np.asarray(self.queries, dtype=object)
        out = pd.DataFrame(
            {
                "query": queries[q[order]],
                "model_a": model_names[np.concatenate(a_idx)[order]],
                "model_b": model_names[np.concatenate(b_idx)[order]],
                "winner": np.concatenate(winners)[order],
                "source": self.source,
            }
        )
        return validate_battles(out)

    def subset(self, mask_or_indices: Sequence[int] | Sequence[bool] | np.ndarray) -> ScoreMatrix:
        """A new matrix with the rows picked by a boolean mask or by integer positions."""
        sel = np.asarray(mask_or_indices)
        if sel.dtype == bool:
            if sel.shape != (len(self),):
                raise ValueError(f"mask has shape {sel.shape}; expected ({len(self)},)")
            rows = np.flatnonzero(sel)
        elif sel.size == 0:
            rows = np.zeros(0, dtype=int)
        elif np.issubdtype(sel.dtype, np.integer):
            rows = sel.ravel()
            if rows.min() < -len(self) or rows.max() >= len(self):
                raise IndexError(f"row index out of range for {len(self)} queries")
        else:
            raise TypeError(f"select rows with a boolean mask or integer indices, got {sel.dtype}")
        return ScoreMatrix(
            queries=[self.queries[i] for i in rows],
            models=list(self.models),
            scores=self.scores[rows].copy(),
            source=self.source,
            tags=None if self.tags is None else [self.tags[i] for i in rows],
            costs=None if self.costs is None else self.costs[rows].copy(),
        )
