"""Data specs: ``KIND:PATH[?OPTION=FILE&...][#MODEL,MODEL,...]``, the one way to name training data.

``KIND`` is one of ``arena``, ``gold``, ``judge``, ``jsonl`` (a bare path has its kind detected
from its columns). Options name the companion files a format needs, explicitly:

- ``judge:WIDE.csv?instructions=instructions.csv``: AlpacaEval's wide file holds no query
  texts, they come from its ``instructions.csv``;
- ``gold:FILE?task_labels=labels.csv[&task_split=test]``: per-query task tags (LLMRouter's
  ``dcrouter_task_labels.csv``; the split defaults to ``train`` / ``test`` from the file name).

``#m1,m2`` keeps only those models of a gold or judge file. ``{data}`` in a spec stands for
``$ROUTELLM_DATA_DIR`` (see :func:`routellm_core.training.expand_spec`).

Example:
    >>> import json, tempfile, pathlib
    >>> from routellm_core.data.specs import load_battles, parse_spec
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "g.json"
    >>> _ = f.write_text(json.dumps([{"question": "2+2?", "scores": {"a": 1, "b": 0, "c": 1}}]))
    >>> len(load_battles(f"gold:{f}")), len(load_battles(f"gold:{f}#a,b"))
    (3, 1)
    >>> parse_spec("judge:wide.csv?instructions=ins.csv").options
    {'instructions': 'ins.csv'}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from routellm_core.data.alpaca_eval import load_judge_battles, load_judge_matrix
from routellm_core.data.arena import load_arena_battles
from routellm_core.data.gold import load_gold_matrix
from routellm_core.data.jsonl import load_jsonl_battles
from routellm_core.data.schema import BATTLE_COLUMNS, ScoreMatrix, canonical_model_name
from routellm_core.data.tables import check_file, read_table
from routellm_core.data_dir import DATA_DIR_ENV, default_data_dir

__all__ = [
    "DATA_DIR_ENV",
    "KINDS",
    "DataSpec",
    "default_data_dir",
    "load_battles",
    "load_matrix",
    "parse_spec",
]

KINDS = ("arena", "gold", "judge", "jsonl")
STORE_PREFIX = "store:"  # store:PATH_OR_URL, a traffic store (routellm_core.store)


def shown_spec(spec: str) -> str:
    """``spec`` as a card or a log may show it: a ``store:`` URL's password hidden.

    Example:
        >>> shown_spec("store:postgresql+psycopg://app:s3cret@db/routellm")
        'store:postgresql+psycopg://app:***@db/routellm'
        >>> shown_spec("store:traffic.db"), shown_spec("gold:{data}/mmlu.csv")
        ('store:traffic.db', 'gold:{data}/mmlu.csv')
    """
    if not spec.startswith(STORE_PREFIX) or "://" not in spec:
        return spec
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return STORE_PREFIX + make_url(spec[len(STORE_PREFIX):]).render_as_string(hide_password=True)
    except ArgumentError:
        return spec
# The companion files each kind accepts as ``?option=FILE``.
OPTIONS: dict[str, frozenset[str]] = {
    "arena": frozenset(),
    "gold": frozenset({"task_labels", "task_split"}),
    "judge": frozenset({"instructions"}),
    "jsonl": frozenset(),
}


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: the kind ('' when detected from the file), the file, the options."""

    kind: str
    path: Path
    models: tuple[str, ...] | None = None
    options: dict[str, str] = field(default_factory=dict)


def parse_spec(spec: str) -> DataSpec:
    """Split ``KIND:PATH[?OPTION=FILE&...][#MODEL,...]`` into its parts (the files are not read).

    Raises:
        ValueError: an unknown kind or option, an option the kind does not take, or fewer
            than two models after ``#``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a data spec must be 'KIND:PATH' or a path, got {spec!r}")
    kind, sep, rest = spec.partition(":")
    if sep and kind.lower() in KINDS:
        kind, target = kind.lower(), rest
    elif sep and len(kind) > 1 and kind.isidentifier() and not Path(spec).exists():
        raise ValueError(f"{spec!r}: unknown data kind {kind!r}; expected one of {list(KINDS)} or a bare path")
    else:
        kind, target = "", spec
    models: tuple[str, ...] | None = None
    if "#" in target and not Path(target).exists():
        target, _, model_list = target.rpartition("#")
        models = tuple(m.strip() for m in model_list.split(",") if m.strip())
        if len(models) < 2:
            raise ValueError(f"{spec!r}: '#' must be followed by at least two model names")
    options: dict[str, str] = {}
    if "?" in target and not Path(target).exists():
        target, _, query = target.partition("?")
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            known = sorted(set().union(*OPTIONS.values()))
            if not eq or not value.strip() or key.strip() not in known:
                raise ValueError(f"{spec!r}: bad option {item!r}; expected OPTION=VALUE with OPTION in {known}")
            options[key.strip()] = value.strip()
        if kind and not set(options) <= OPTIONS[kind]:
            raise ValueError(
                f"{spec!r}: {kind} data takes {sorted(OPTIONS[kind]) or 'no options'}, got {sorted(options)}"
            )
    return DataSpec(kind=kind, path=Path(target).expanduser(), models=models, options=options)


def _detect_kind(p: Path) -> str:
    cols = set(map(str, read_table(p).columns))
    if set(BATTLE_COLUMNS[:4]) <= cols and p.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    if {"model_a", "model_b"} <= cols:
        return "arena"
    if {"generator_1", "generator_2", "preference"} <= cols or "instruction_idx" in cols:
        return "judge"
    return "gold"


def _resolved(spec: str) -> tuple[DataSpec, str]:
    parsed = parse_spec(spec)
    check_file(parsed.path)
    kind = parsed.kind or _detect_kind(parsed.path)
    if not set(parsed.options) <= OPTIONS[kind]:
        raise ValueError(
            f"{spec!r}: {kind} data takes {sorted(OPTIONS[kind]) or 'no options'}, got {sorted(parsed.options)}"
        )
    return parsed, kind


def _gold(parsed: DataSpec, aliases: Mapping[str, str] | None) -> ScoreMatrix:
    return load_gold_matrix(
        parsed.path, aliases=aliases, models=parsed.models,
        task_labels=parsed.options.get("task_labels"), task_split=parsed.options.get("task_split"),
    )


def load_battles(spec: str, *, aliases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Load battles from a data spec (see the module docstring).

    Gold data gives every pair of its models on every query (of the ``#`` models only, when
    listed). ``df.attrs["dropped"]`` counts the rows left out for lack of text.

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "b.jsonl"
        >>> _ = f.write_text(json.dumps({"query": "Hi", "model_a": "x", "model_b": "y",
        ...                              "winner": "a"}) + "\\n")
        >>> load_battles(str(f))["winner"].tolist()
        ['a']
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"battle spec must be 'KIND:PATH' or a path, got {spec!r}")
    if spec.startswith(STORE_PREFIX):  # a traffic store: its judged battles and rated calls
        from routellm_core.store import open_store

        battles = open_store(spec, must_exist=True).training_battles()  # a typo is an error, not an empty store
        for side in ("model_a", "model_b"):
            battles[side] = [canonical_model_name(m, aliases) for m in battles[side]]
        return battles
    parsed, kind = _resolved(spec)
    if parsed.models is not None and kind != "gold":
        raise ValueError(f"{spec!r}: a '#model,...' list only applies to gold data")
    if kind == "arena":
        return load_arena_battles(parsed.path, aliases=aliases)
    if kind == "judge":
        return load_judge_battles(parsed.path, aliases=aliases, instructions=parsed.options.get("instructions"))
    if kind == "jsonl":
        return load_jsonl_battles(parsed.path)
    matrix = _gold(parsed, aliases)
    battles = matrix.to_battles()
    battles.attrs["dropped"] = matrix.dropped
    return battles


def load_matrix(spec: str, *, aliases: Mapping[str, str] | None = None) -> ScoreMatrix:
    """Load a :class:`~routellm_core.data.schema.ScoreMatrix` from a ``gold:`` or ``judge:`` spec.

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "g.json"
        >>> _ = f.write_text(json.dumps([{"question": "2+2?", "scores": {"a": 1, "b": 0, "c": 1}}]))
        >>> load_matrix(f"gold:{f}#c,a").models
        ['c', 'a']
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a data spec must be 'gold:PATH' or 'judge:PATH', got {spec!r}")
    parsed = parse_spec(spec)
    if parsed.kind not in ("gold", "judge"):
        raise ValueError(f"{spec!r}: a score matrix comes from a gold or judge file: use 'gold:PATH' or 'judge:PATH'")
    parsed, kind = _resolved(spec)
    if kind == "gold":
        return _gold(parsed, aliases)
    matrix = load_judge_matrix(parsed.path, aliases=aliases, instructions=parsed.options.get("instructions"))
    if parsed.models is None:
        return matrix
    cols = [matrix.model_index(m) for m in parsed.models]
    return ScoreMatrix(
        matrix.queries, [matrix.models[c] for c in cols], matrix.scores[:, cols],
        source=matrix.source, tags=matrix.tags, dropped=matrix.dropped,
    )
