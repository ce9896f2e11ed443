"""Loaders that turn real routing data sets into battles or per-query score matrices.

Three kinds of preference data (the RouteLLM paper's D_arena, D_gold, D_judge) and one
plain format:

- :func:`load_arena_battles`: Chatbot-Arena human battles (55k-preference or conversations style).
- :func:`load_gold_matrix`: per-query benchmark scores of many models (RouterBench, RouterDC,
  LLMRouter, or a generic table) as a :class:`ScoreMatrix`; ``.to_battles()`` pairs them up.
- :func:`load_judge_battles` / :func:`load_judge_matrix`: AlpacaEval LLM-judge preferences.
- :func:`load_jsonl_battles`: JSONL rows already in the battle schema.

:func:`load_battles` is the single entry point the training CLI uses (``KIND:PATH``).

Example:
    >>> from routellm_core.data.loaders import default_data_dir, load_battles
    >>> rb = default_data_dir() / "routerdc_7model_and_routerbench_subset/routerbench_zs"  # doctest: +SKIP
    >>> len(load_battles(f"gold:{rb}/mbpp_test.csv#gpt-4-1106-preview,mixtral-8x7b-instruct-v0.1"))  # doctest: +SKIP
    128
"""

from __future__ import annotations

import ast
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.data.schema import (
    BATTLE_COLUMNS,
    canonical_model_name,
    make_battles,
    validate_battles,
)

__all__ = [
    "ScoreMatrix",
    "default_data_dir",
    "load_arena_battles",
    "load_battles",
    "load_gold_matrix",
    "load_jsonl_battles",
    "load_judge_battles",
    "load_judge_matrix",
]

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "ROUTELLM_DATA_DIR"
PathLike = str | os.PathLike[str]

# AlpacaEval's reference model in the weighted GPT-4-Turbo leaderboard.
ALPACA_REFERENCE = "gpt4_1106_preview"
# Columns of the AlpacaEval wide file that are test/variant entries, not real models.
_ALPACA_NON_MODELS = frozenset({"example", "gpt4_gamed"})
_ALPACA_NON_MODEL_SUFFIXES = ("_concise", "_verbose")

_ARENA_55K_FLAGS = ("winner_model_a", "winner_model_b", "winner_tie")
_ARENA_WINNERS = {
    "model_a": "a",
    "model_b": "b",
    "tie": "tie",
    "tie (bothbad)": "tie",
    "a": "a",
    "b": "b",
}
_TEXT_COLUMNS = ("query", "prompt", "question", "instruction")
_TAG_COLUMNS = ("tag", "task", "task_name", "category", "eval_name", "cluster_id")
_ID_COLUMNS = frozenset({"id", "idx", "index", "sample_id", "question_id", "instruction_idx", "uid"})


# --------------------------------------------------------------------------- data dir


def _repo_root() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return None


def default_data_dir() -> Path | None:
    """Where the shared routing data sets live, or ``None`` when they are absent.

    ``$ROUTELLM_DATA_DIR`` when set; else ``../shared/data`` next to the project root (the
    directory holding ``pyproject.toml``) or next to the working directory, if it exists.

    Example:
        >>> from routellm_core.data.loaders import default_data_dir
        >>> d = default_data_dir()
        >>> d is None or d.is_dir()
        True
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        path = Path(env).expanduser()
        if path.is_dir():
            return path.resolve()
        logger.warning("%s=%s is not a directory; no data directory", DATA_DIR_ENV, env)
        return None
    roots = [r for r in (_repo_root(), Path.cwd()) if r is not None]
    for root in roots:
        candidate = root.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate.resolve()
    return None


# --------------------------------------------------------------------------- file reading


def _check_file(path: PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    if not p.is_file():
        raise ValueError(f"{p}: not a file")
    return p


def _read_jsonl(path: Path) -> list[Any]:
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


def _read_table(path: PathLike) -> pd.DataFrame:
    """Read CSV/TSV, JSON (records or columns), JSONL or Parquet, chosen by suffix."""
    p = _check_file(path)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        try:
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{p}: empty file") from exc
    if suffix in (".jsonl", ".ndjson"):
        rows = _read_jsonl(p)
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
        raise ValueError(f"{p}: unsupported file type {suffix!r}; use .csv, .json, .jsonl or .parquet")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{p}: expected a list of JSON objects (one per row)")
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- helpers


def _canonical(name: object, aliases: Mapping[str, str] | None) -> str:
    if not isinstance(name, str):
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    return canonical_model_name(name, aliases)


def _canonical_map(names: Sequence[object], aliases: Mapping[str, str] | None, where: str) -> list[str]:
    cache: dict[object, str] = {}
    out = []
    for i, n in enumerate(names):
        if n not in cache:
            try:
                cache[n] = _canonical(n, aliases)
            except ValueError as exc:
                raise ValueError(f"{where}: row {i}: {exc}") from exc
        out.append(cache[n])
    return out


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value)) or value is pd.NA
    except TypeError:
        return False


def _clean_text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None


def _parse_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _first_turn(value: object) -> str | None:
    """The first user turn of a prompt list, a conversation, or a plain string."""
    if _is_missing(value):
        return None
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("[") and s.endswith("]"):
            parsed = _parse_literal(s)
            if isinstance(parsed, list):
                return _first_turn(parsed)
        return _clean_text(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        if all(isinstance(t, dict) for t in value):
            for turn in value:
                if str(turn.get("role", "")).lower() in ("user", "human"):
                    return _clean_text(turn.get("content"))
            return None
        return _clean_text(value[0])
    return None


def _last_element(value: object) -> str | None:
    """RouterBench prompts are Python-list literals; the last element is the question."""
    if _is_missing(value):
        return None
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            parsed = _parse_literal(s)
            if isinstance(parsed, list):
                return _strip_few_shot(_clean_text(parsed[-1])) if parsed else None
        return _strip_few_shot(_clean_text(value))
    return None


def _strip_few_shot(text: str | None) -> str | None:
    """Keep the last block of a few-shot prompt (RouterBench's ARC and Winogrande rows).

    Their prompts repeat the same solved demonstrations before the question, blocks separated by
    a blank line; the demonstrations are identical across rows and would fill the encoder's
    window, so the routed text is the final block, the question itself.
    """
    if text is None or "\n\n" not in text:
        return text
    blocks = [b for b in text.split("\n\n") if b.strip()]
    solved = [b for b in blocks[:-1] if "Answer:" in b and not b.rstrip().endswith("Answer:")]
    if len(solved) >= 2 and blocks[-1].rstrip().endswith("Answer:"):
        return blocks[-1].strip()
    return text


def _report_dropped(df: pd.DataFrame, n: int, path: Path, why: str) -> pd.DataFrame:
    df.attrs["dropped"] = int(n)
    if n:
        logger.warning("%s: dropped %d row(s) with %s", path, n, why)
    return df


def _columns_error(path: Path, columns: Sequence[object], expected: str) -> ValueError:
    return ValueError(f"{path}: {expected}; found columns {[str(c) for c in columns]}")


# --------------------------------------------------------------------------- arena


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
    p = _check_file(path)
    df = _read_table(p)
    cols = set(df.columns)
    source = source or f"arena:{p.stem}"
    expected = (
        "not a Chatbot-Arena battle file: expected model_a, model_b and either "
        "winner_model_a/winner_model_b/winner_tie with prompt, or winner with "
        "conversation_a/prompt/question"
    )
    if not {"model_a", "model_b"} <= cols:
        raise _columns_error(p, df.columns, expected)

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
            raise _columns_error(p, df.columns, expected)
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
        raise _columns_error(p, df.columns, expected)

    out = pd.DataFrame(
        {
            "query": texts,
            "model_a": _canonical_map(df["model_a"].tolist(), aliases, str(p)),
            "model_b": _canonical_map(df["model_b"].tolist(), aliases, str(p)),
            "winner": winners,
            "source": source,
        }
    )
    keep = out["query"].notna().to_numpy()
    out = make_battles(out.loc[keep])
    return _report_dropped(out, int((~keep).sum()), p, "no usable query text")


# --------------------------------------------------------------------------- score matrix


@dataclass(eq=False)
class ScoreMatrix:
    """Per-query scores of several models: ``scores[i, j]`` is model ``j`` on query ``i``.

    Attributes:
        queries: the query texts (non-empty strings).
        models: canonical model names, one per column.
        scores: ``(n_queries, n_models)`` float array; NaN marks a missing score.
        source: where the data came from, e.g. ``"routerbench:arc_challenge_train"``.
        tags: optional per-query task or cluster label.
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
    tags: list[str] | None = None
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
            self.tags = [None if _is_missing(t) else str(t) for t in self.tags]
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
        canon = _canonical(name, None)
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
        names = np.asarray(self.models, dtype=object)
        queries = np.asarray(self.queries, dtype=object)
        out = pd.DataFrame(
            {
                "query": queries[q[order]],
                "model_a": names[np.concatenate(a_idx)[order]],
                "model_b": names[np.concatenate(b_idx)[order]],
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


def _select_models(
    raw: list[str], aliases: Mapping[str, str] | None, wanted: Sequence[str] | None, where: Path
) -> list[int]:
    """Positions in ``raw`` of the ``wanted`` models (raw or canonical names); all if None."""
    if wanted is None:
        return list(range(len(raw)))
    canon = [_canonical(r, aliases) for r in raw]
    out = []
    for w in wanted:
        if w in raw:
            out.append(raw.index(w))
        elif _canonical(w, aliases) in canon:
            out.append(canon.index(_canonical(w, aliases)))
        else:
            raise ValueError(f"{where}: unknown model {w!r}; available: {raw}")
    return out


def _matrix_from_rows(
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
    cols = _select_models(raw_models, aliases, models, p)
    keep = np.array([t is not None for t in texts], dtype=bool)
    n_dropped = int((~keep).sum())
    if n_dropped:
        logger.warning("%s: dropped %d row(s) with no usable query text", p, n_dropped)
    rows = np.flatnonzero(keep)
    canon = [_canonical(raw_models[c], aliases) for c in cols]
    if len(set(canon)) != len(canon):
        raise ValueError(f"{p}: model columns {[raw_models[c] for c in cols]} collide as {canon}")
    return ScoreMatrix(
        queries=[texts[i] for i in rows],  # type: ignore[misc]
        models=canon,
        scores=scores[np.ix_(rows, cols)],
        source=source,
        tags=None if tags is None else [tags[i] for i in rows],
        costs=None if costs is None else costs[np.ix_(rows, cols)],
        dropped=n_dropped,
    )


def _numeric(df: pd.DataFrame, cols: Sequence[str], p: Path) -> np.ndarray:
    block = df.loc[:, list(cols)]
    values = block.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & block.notna()
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise ValueError(
            f"{p}: row {r}, column {cols[c]!r} is not a number: {block.iat[r, c]!r}"
        )
    return values.to_numpy(dtype=float)


def _llmrouter_task_tags(p: Path, n: int) -> list[str] | None:
    """Task names from ``dcrouter_task_labels.csv`` beside an LLMRouter file, if it fits."""
    labels_path = p.parent / "dcrouter_task_labels.csv"
    split = next((s for s in ("train", "test") if p.stem.endswith(s)), None)
    if split is None or not labels_path.is_file():
        return None
    labels = pd.read_csv(labels_path)
    if not {"split", "index", "task_name"} <= set(labels.columns):
        return None
    part = labels[labels["split"] == split].sort_values("index")
    if part["index"].tolist() != list(range(n)):
        logger.debug("%s does not line up with %s; no task tags", labels_path, p)
        return None
    return part["task_name"].astype(str).tolist()


def load_gold_matrix(
    path: PathLike,
    *,
    aliases: Mapping[str, str] | None = None,
    models: Sequence[str] | None = None,
) -> ScoreMatrix:
    """Load per-query gold scores of several models.

    Formats (detected from the content):

    - RouterBench CSV: ``prompt`` (a Python-list literal; its last element is the question),
      0/1 model columns, ``<model>|total_cost`` (-> ``costs``), ``eval_name`` (-> ``tags``);
    - RouterDC / LLMRouter JSON: a list of ``{question, scores: {model: float}, [cluster_id]}``;
      tags are ``cluster_id``, or LLMRouter's task names when ``dcrouter_task_labels.csv``
      sits beside the file;
    - generic CSV/JSON/JSONL/Parquet: a ``query`` (or ``prompt``/``question``/``instruction``)
      column plus one numeric column per model; ``models=`` names the model columns
      (default: every numeric column that is not an id or tag column).

    ``models`` selects models by raw or canonical name. Names are canonicalised, so
    RouterBench's ``mistralai/mixtral-8x7b-chat`` becomes ``mixtral-8x7b-instruct-v0.1``.

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "gold.json"
        >>> _ = f.write_text(json.dumps([{"question": "2+2?", "scores": {"m1": 1, "m2": 0}}]))
        >>> m = load_gold_matrix(f)
        >>> m.models, m.scores.tolist()
        (['m1', 'm2'], [[1.0, 0.0]])
    """
    p = _check_file(path)
    df = _read_table(p)
    cols = [str(c) for c in df.columns]
    df.columns = cols

    if {"question", "scores"} <= set(cols):
        bad = [i for i, s in enumerate(df["scores"]) if not isinstance(s, dict)]
        if bad:
            raise ValueError(f"{p}: row {bad[0]} has scores {df['scores'].iloc[bad[0]]!r}, not a mapping")
        raw_models: list[str] = []
        for s in df["scores"]:
            raw_models.extend(m for m in s if m not in raw_models)
        scores = np.full((len(df), len(raw_models)), np.nan)
        pos = {m: j for j, m in enumerate(raw_models)}
        for i, s in enumerate(df["scores"]):
            for m, v in s.items():
                if v is not None:
                    try:
                        scores[i, pos[m]] = float(v)
                    except (TypeError, ValueError) as exc:
                        raise ValueError(f"{p}: row {i}: score of {m!r} is not a number: {v!r}") from exc
        texts = [_clean_text(q) for q in df["question"]]
        tags = _llmrouter_task_tags(p, len(df))
        if tags is not None:
            kind = "llmrouter"
        else:
            kind = "llmrouter" if "dcrouter" in p.stem else "routerdc"
            tags = df["cluster_id"].tolist() if "cluster_id" in cols else None
        return _matrix_from_rows(
            p, texts, raw_models, scores, aliases=aliases, models=models,
            source=f"{kind}:{p.stem}", tags=tags,
        )

    cost_models = [c.split("|", 1)[0] for c in cols if c.endswith("|total_cost")]
    response_models = [c.split("|", 1)[0] for c in cols if c.endswith("|model_response")]
    bench_models = [c for c in cols if c in set(cost_models) | set(response_models)]
    if "prompt" in cols and bench_models:
        costs = None
        if all(f"{m}|total_cost" in cols for m in bench_models):
            costs = _numeric(df, [f"{m}|total_cost" for m in bench_models], p)
        return _matrix_from_rows(
            p,
            [_last_element(v) for v in df["prompt"]],
            bench_models,
            _numeric(df, bench_models, p),
            aliases=aliases,
            models=models,
            source=f"routerbench:{p.stem}",
            tags=df["eval_name"].tolist() if "eval_name" in cols else None,
            costs=costs,
        )

    text_col = next((c for c in _TEXT_COLUMNS if c in cols), None)
    if text_col is None:
        raise _columns_error(
            p, cols,
            "not a gold score file: expected RouterBench columns (prompt, model columns, "
            "'<model>|total_cost'), a JSON list of {question, scores}, or a query/prompt "
            "column with one numeric column per model",
        )
    tag_col = next((c for c in _TAG_COLUMNS if c in cols and c != text_col), None)
    if models is not None:
        model_cols = [cols[i] for i in _select_models(cols, aliases, models, p)]
    else:
        skip = {text_col, tag_col} | _ID_COLUMNS
        model_cols = [
            c
            for c in cols
            if c not in skip
            and not c.startswith("Unnamed")
            and "|" not in c
            and pd.api.types.is_numeric_dtype(df[c])
        ]
    if len(model_cols) < 1:
        raise _columns_error(p, cols, "no numeric model columns found beside the text column")
    costs = None
    if all(f"{m}|total_cost" in cols for m in model_cols):
        costs = _numeric(df, [f"{m}|total_cost" for m in model_cols], p)
    return _matrix_from_rows(
        p,
        [_clean_text(v) for v in df[text_col]],
        model_cols,
        _numeric(df, model_cols, p),
        aliases=aliases,
        models=None,
        source=f"gold:{p.stem}",
        tags=df[tag_col].tolist() if tag_col else None,
        costs=costs,
    )


# --------------------------------------------------------------------------- judge


def _is_alpaca_model(column: str, reference: str) -> bool:
    return (
        column != reference
        and column not in _ALPACA_NON_MODELS
        and not column.endswith(_ALPACA_NON_MODEL_SUFFIXES)
    )


def _read_wide_judge(
    p: Path, df: pd.DataFrame, instructions: PathLike | None, reference: str
) -> tuple[pd.DataFrame, list[str | None], list[str], list[Any] | None]:
    df.columns = [str(c) for c in df.columns]
    ins_path = _check_file(instructions) if instructions is not None else p.parent / "instructions.csv"
    if not ins_path.is_file():
        raise FileNotFoundError(
            f"{p}: the wide judge file needs instructions.csv beside it, or pass instructions="
        )
    ins = _read_table(ins_path)
    if not {"instruction_idx", "instruction"} <= set(ins.columns):
        raise _columns_error(ins_path, ins.columns, "expected instruction_idx and instruction")
    by_idx = ins.set_index("instruction_idx")
    missing = sorted(set(df["instruction_idx"]) - set(by_idx.index))
    if missing:
        raise ValueError(f"{p}: instruction_idx {missing[:5]} not found in {ins_path}")
    texts = [_clean_text(by_idx.at[i, "instruction"]) for i in df["instruction_idx"]]
    tags = [by_idx.at[i, "dataset"] for i in df["instruction_idx"]] if "dataset" in by_idx else None
    model_cols = [c for c in df.columns if c != "instruction_idx" and _is_alpaca_model(c, reference)]
    return df, texts, model_cols, tags


def load_judge_matrix(
    path: PathLike,
    *,
    aliases: Mapping[str, str] | None = None,
    instructions: PathLike | None = None,
    reference: str = ALPACA_REFERENCE,
) -> ScoreMatrix:
    """AlpacaEval's wide judge file as a matrix of P(model beats ``reference``).

    The file has one row per ``instruction_idx`` and one column per model holding
    ``1 + P(model's answer beats the reference's)``; texts come from ``instructions.csv``
    (default: the file beside it). Variant columns (``example``, ``gpt4_gamed``,
    ``*_concise``, ``*_verbose``) and the reference itself are left out; tags are the
    AlpacaEval sub-dataset (selfinstruct, oasst, ...).

    Example:
        >>> from routellm_core.data.loaders import default_data_dir
        >>> wide = "alpaca_eval_judge_prefs/weighted_gpt4_turbo_vs_gpt4_1106_preview_wide.csv"
        >>> load_judge_matrix(default_data_dir() / wide).scores.shape  # doctest: +SKIP
        (805, 48)
    """
    p = _check_file(path)
    df = _read_table(p)
    if "instruction_idx" not in df.columns:
        raise _columns_error(p, df.columns, "not an AlpacaEval wide judge file (no instruction_idx)")
    df, texts, model_cols, tags = _read_wide_judge(p, df, instructions, reference)
    values = _numeric(df, model_cols, p) - 1.0
    if np.nanmin(values, initial=0.0) < 0 or np.nanmax(values, initial=0.0) > 1:
        raise ValueError(f"{p}: values must lie in [1, 2] (1 + P(model beats {reference}))")
    return _matrix_from_rows(
        p, texts, model_cols, values, aliases=aliases, models=None,
        source=f"alpaca_eval:{p.stem}", tags=tags,
    )


def _preference_winner(pref: object) -> str | None:
    """AlpacaEval preference -> winner: 1 -> a, 2 -> b, 1.5 -> tie; 0 or NaN -> None."""
    if _is_missing(pref):
        return None
    v = float(pref)  # type: ignore[arg-type]
    if v == 0 or math.isnan(v):
        return None
    if not 1.0 <= v <= 2.0:
        raise ValueError(f"preference {pref!r} is outside [1, 2]")
    return "a" if v < 1.5 else "b" if v > 1.5 else "tie"


def load_judge_battles(
    path: PathLike,
    *,
    aliases: Mapping[str, str] | None = None,
    instructions: PathLike | None = None,
    reference: str = ALPACA_REFERENCE,
) -> pd.DataFrame:
    """Load AlpacaEval LLM-judge preferences as battles.

    - Raw annotations (JSON/JSONL list of ``instruction``, ``generator_1``, ``generator_2``,
      ``preference``): ``model_a`` = generator_1; preference 1 -> "a", 2 -> "b", 1.5 -> "tie"
      (continuous weighted preferences: below 1.5 -> "a", above -> "b"); 0 or NaN
      (unparsable judge output) is dropped and counted in ``df.attrs["dropped"]``.
    - The wide CSV (see :func:`load_judge_matrix`): ``model_a`` = the model,
      ``model_b`` = ``reference``; P > 0.5 -> "a", < 0.5 -> "b", = 0.5 -> "tie"; NaN cells
      are dropped and counted.

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "ann.json"
        >>> _ = f.write_text(json.dumps([{"instruction": "Hi", "generator_1": "gpt4_1106_preview",
        ...     "generator_2": "Mixtral-8x7B-Instruct-v0.1", "preference": 2.0}]))
        >>> load_judge_battles(f)[["model_a", "winner"]].values.tolist()
        [['gpt-4-1106-preview', 'b']]
    """
    p = _check_file(path)
    df = _read_table(p)
    cols = set(df.columns)
    if {"instruction", "generator_1", "generator_2", "preference"} <= cols:
        winners: list[str | None] = []
        for i, pref in enumerate(df["preference"]):
            try:
                winners.append(_preference_winner(pref))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{p}: row {i}: {exc}") from exc
        texts = [_clean_text(t) for t in df["instruction"]]
        out = pd.DataFrame(
            {
                "query": texts,
                "model_a": _canonical_map(df["generator_1"].tolist(), aliases, str(p)),
                "model_b": _canonical_map(df["generator_2"].tolist(), aliases, str(p)),
                "winner": winners,
                "source": f"alpaca_eval:{p.stem}",
            }
        )
        keep = (out["query"].notna() & out["winner"].notna()).to_numpy()
        return _report_dropped(
            make_battles(out.loc[keep]), int((~keep).sum()), p,
            "no instruction text or an unparsable (0/NaN) preference",
        )
    if "instruction_idx" in cols:
        m = load_judge_matrix(p, aliases=aliases, instructions=instructions, reference=reference)
        ref = _canonical(reference, aliases)
        battles = _vs_reference(m, ref)
        n_nan = int(np.isnan(m.scores).sum())
        return _report_dropped(battles, n_nan + m.dropped * len(m.models), p, "a NaN judge value")
    raise _columns_error(
        p, df.columns,
        "not an AlpacaEval judge file: expected instruction, generator_1, generator_2, "
        "preference (raw annotations) or instruction_idx plus model columns (wide)",
    )


def _vs_reference(m: ScoreMatrix, reference: str) -> pd.DataFrame:
    """Battles of every model in ``m`` against ``reference``, from P(model beats reference)."""
    if reference in m.models:
        raise ValueError(f"reference {reference!r} is also a model column")
    n, k = m.scores.shape
    ok = ~np.isnan(m.scores)
    rows, cols = np.nonzero(ok)
    p = m.scores[rows, cols]
    return validate_battles(
        pd.DataFrame(
            {
                "query": np.asarray(m.queries, dtype=object)[rows],
                "model_a": np.asarray(m.models, dtype=object)[cols],
                "model_b": reference,
                "winner": np.where(p > 0.5, "a", np.where(p < 0.5, "b", "tie")),
                "source": m.source,
            }
        )
    )


# --------------------------------------------------------------------------- jsonl / entry point


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
    p = _check_file(path)
    rows = _read_jsonl(p)
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


_KINDS = ("arena", "gold", "judge", "jsonl")


def _detect_kind(p: Path) -> str:
    df = _read_table(p)
    cols = set(map(str, df.columns))
    if set(BATTLE_COLUMNS[:4]) <= cols and p.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    if {"model_a", "model_b"} <= cols:
        return "arena"
    if {"generator_1", "generator_2", "preference"} <= cols or "instruction_idx" in cols:
        return "judge"
    return "gold"


def load_battles(spec: str, *, aliases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Load battles from ``KIND:PATH``, KIND one of ``arena``, ``gold``, ``judge``, ``jsonl``.

    A bare path has its kind detected from its columns. ``gold:PATH#m1,m2`` keeps only the
    battles among the listed models (all pairs of all models otherwise).

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "g.json"
        >>> _ = f.write_text(json.dumps([{"question": "2+2?", "scores": {"a": 1, "b": 0, "c": 1}}]))
        >>> len(load_battles(f"gold:{f}")), len(load_battles(f"gold:{f}#a,b"))
        (3, 1)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"battle spec must be 'KIND:PATH' or a path, got {spec!r}")
    kind, sep, rest = spec.partition(":")
    if sep and kind.lower() in _KINDS:
        kind, target = kind.lower(), rest
    elif sep and len(kind) > 1 and kind.isidentifier() and not Path(spec).exists():
        raise ValueError(
            f"{spec!r}: unknown data kind {kind!r}; expected one of {list(_KINDS)} or a bare path"
        )
    else:
        kind, target = "", spec
    models: list[str] | None = None
    if "#" in target and not Path(target).exists():
        target, _, model_list = target.rpartition("#")
        models = [m.strip() for m in model_list.split(",") if m.strip()]
        if len(models) < 2:
            raise ValueError(f"{spec!r}: '#' must be followed by at least two model names")
    p = _check_file(target)
    kind = kind or _detect_kind(p)
    if models is not None and kind != "gold":
        raise ValueError(f"{spec!r}: a '#model,...' list only applies to gold data")
    if kind == "arena":
        return load_arena_battles(p, aliases=aliases)
    if kind == "judge":
        return load_judge_battles(p, aliases=aliases)
    if kind == "jsonl":
        return load_jsonl_battles(p)
    matrix = load_gold_matrix(p, aliases=aliases, models=models)
    battles = matrix.to_battles()
    battles.attrs["dropped"] = matrix.dropped
    return battles
