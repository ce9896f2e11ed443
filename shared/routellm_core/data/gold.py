"""Gold correctness matrices (RouteLLM's D_gold): per-query benchmark scores of many models.

RouterBench CSVs, RouterDC / LLMRouter JSON and generic tables become a
:class:`~routellm_core.data.schema.ScoreMatrix`; ``.to_battles()`` pairs the models up.

Example:
    >>> import json, tempfile, pathlib
    >>> from routellm_core.data.gold import load_gold_matrix
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "gold.json"
    >>> _ = f.write_text(json.dumps([{"question": "2+2?", "scores": {"m1": 1, "m2": 0}}]))
    >>> load_gold_matrix(f).to_battles()["winner"].tolist()
    ['a']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from routellm_core.data.schema import ScoreMatrix, is_missing
from routellm_core.data.tables import (
    PathLike,
    check_file,
    clean_text,
    columns_error,
    matrix_from_rows,
    numeric_block,
    parse_literal,
    read_table,
    select_models,
)

__all__ = ["load_gold_matrix", "read_task_labels"]

_TEXT_COLUMNS = ("query", "prompt", "question", "instruction")
_TAG_COLUMNS = ("tag", "task", "task_name", "category", "eval_name", "cluster_id")
_ID_COLUMNS = frozenset({"id", "idx", "index", "sample_id", "question_id", "instruction_idx", "uid"})


def _last_element(value: object) -> str | None:
    """RouterBench prompts are Python-list literals; the last element is the question."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            parsed = parse_literal(s)
            if isinstance(parsed, list):
                return _strip_few_shot(clean_text(parsed[-1])) if parsed else None
        return _strip_few_shot(clean_text(value))
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


def read_task_labels(path: PathLike, split: str) -> list[str]:
    """Task names of one split of LLMRouter's ``dcrouter_task_labels.csv``, in row order.

    The file has columns ``split``, ``index`` and ``task_name``; the rows of ``split`` must
    number ``0 .. n-1``.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "labels.csv"
        >>> _ = f.write_text("split,index,task_name\\ntest,1,mmlu\\ntest,0,gsm8k\\ntrain,0,x\\n")
        >>> read_task_labels(f, "test")
        ['gsm8k', 'mmlu']
    """
    p = check_file(path)
    labels = read_table(p)
    if not {"split", "index", "task_name"} <= set(labels.columns):
        raise columns_error(p, labels.columns, "not a task label file: expected split, index and task_name")
    splits = sorted(set(labels["split"].astype(str)))
    if split not in splits:
        raise ValueError(f"{p}: no task labels for split {split!r}; the file has {splits}")
    part = labels[labels["split"].astype(str) == split].sort_values("index")
    if part["index"].tolist() != list(range(len(part))):
        raise ValueError(f"{p}: the indices of split {split!r} are not 0..{len(part) - 1}")
    return part["task_name"].astype(str).tolist()


def _split_of(p: Path, split: str | None) -> str:
    if split is not None:
        return split
    found = next((s for s in ("train", "test") if p.stem.endswith(s)), None)
    if found is None:
        raise ValueError(
            f"{p}: task_labels given but the split is not in the file name; pass task_split="
        )
    return found


def load_gold_matrix(
    path: PathLike,
    *,
    aliases: Mapping[str, str] | None = None,
    models: Sequence[str] | None = None,
    task_labels: PathLike | None = None,
    task_split: str | None = None,
) -> ScoreMatrix:
    """Load per-query gold scores of several models.

    Formats (detected from the content):

    - RouterBench CSV: ``prompt`` (a Python-list literal; its last element is the question),
      0/1 model columns, ``<model>|total_cost`` (-> ``costs``), ``eval_name`` (-> ``tags``);
    - RouterDC / LLMRouter JSON: a list of ``{question, scores: {model: float}, [cluster_id]}``;
      tags are ``cluster_id``;
    - generic CSV/JSON/JSONL/Parquet: a ``query`` (or ``prompt``/``question``/``instruction``)
      column plus one numeric column per model; ``models=`` names the model columns
      (default: every numeric column that is not an id or tag column).

    ``task_labels`` names a task label file (LLMRouter's ``dcrouter_task_labels.csv``, see
    :func:`read_task_labels`) whose ``task_split`` rows (default: ``train`` or ``test`` from the
    end of the file name) become the tags, one per row of the file.

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
    p = check_file(path)
    df = read_table(p)
    cols = [str(c) for c in df.columns]
    df.columns = cols
    labels = None
    if task_labels is not None:
        labels = read_task_labels(task_labels, _split_of(p, task_split))
        if len(labels) != len(df):
            raise ValueError(
                f"{task_labels}: {len(labels)} task labels for split {_split_of(p, task_split)!r}, "
                f"but {p} has {len(df)} rows"
            )

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
        texts = [clean_text(q) for q in df["question"]]
        kind = "llmrouter" if labels is not None or "dcrouter" in p.stem else "routerdc"
        tags = labels if labels is not None else (df["cluster_id"].tolist() if "cluster_id" in cols else None)
        return matrix_from_rows(
            p, texts, raw_models, scores, aliases=aliases, models=models,
            source=f"{kind}:{p.stem}", tags=tags,
        )

    cost_models = [c.split("|", 1)[0] for c in cols if c.endswith("|total_cost")]
    response_models = [c.split("|", 1)[0] for c in cols if c.endswith("|model_response")]
    bench_models = [c for c in cols if c in set(cost_models) | set(response_models)]
    if "prompt" in cols and bench_models:
        costs = None
        if all(f"{m}|total_cost" in cols for m in bench_models):
            costs = numeric_block(df, [f"{m}|total_cost" for m in bench_models], p)
        return matrix_from_rows(
            p,
            [_last_element(v) for v in df["prompt"]],
            bench_models,
            numeric_block(df, bench_models, p),
            aliases=aliases,
            models=models,
            source=f"routerbench:{p.stem}",
            tags=labels if labels is not None else (df["eval_name"].tolist() if "eval_name" in cols else None),
            costs=costs,
        )

    text_col = next((c for c in _TEXT_COLUMNS if c in cols), None)
    if text_col is None:
        raise columns_error(
            p, cols,
            "not a gold score file: expected RouterBench columns (prompt, model columns, "
            "'<model>|total_cost'), a JSON list of {question, scores}, or a query/prompt "
            "column with one numeric column per model",
        )
    tag_col = next((c for c in _TAG_COLUMNS if c in cols and c != text_col), None)
    if models is not None:
        model_cols = [cols[i] for i in select_models(cols, aliases, models, p)]
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
        raise columns_error(p, cols, "no numeric model columns found beside the text column")
    costs = None
    if all(f"{m}|total_cost" in cols for m in model_cols):
        costs = numeric_block(df, [f"{m}|total_cost" for m in model_cols], p)
    return matrix_from_rows(
        p,
        [clean_text(v) for v in df[text_col]],
        model_cols,
        numeric_block(df, model_cols, p),
        aliases=aliases,
        models=None,
        source=f"gold:{p.stem}",
        tags=labels if labels is not None else (df[tag_col].tolist() if tag_col else None),
        costs=costs,
    )
