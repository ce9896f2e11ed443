"""AlpacaEval LLM-judge preferences (RouteLLM's D_judge), as battles or as a reward matrix.

Example:
    >>> import json, tempfile, pathlib
    >>> from routellm_core.data.alpaca_eval import load_judge_battles
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "ann.json"
    >>> _ = f.write_text(json.dumps([{"instruction": "Hi", "generator_1": "a",
    ...     "generator_2": "b", "preference": 1.0}]))
    >>> load_judge_battles(f)["winner"].tolist()
    ['a']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routellm_core.data.schema import ScoreMatrix, is_missing, make_battles, validate_battles
from routellm_core.data.tables import (
    PathLike,
    canonical_name,
    canonical_names,
    check_file,
    clean_text,
    columns_error,
    matrix_from_rows,
    numeric_block,
    read_table,
    report_dropped,
)

__all__ = ["ALPACA_REFERENCE", "load_judge_battles", "load_judge_matrix"]

# AlpacaEval's reference model in the weighted GPT-4-Turbo leaderboard.
ALPACA_REFERENCE = "gpt4_1106_preview"
# Columns of the AlpacaEval wide file that are test/variant entries, not real models.
_ALPACA_NON_MODELS = frozenset({"example", "gpt4_gamed"})
_ALPACA_NON_MODEL_SUFFIXES = ("_concise", "_verbose")


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
    if instructions is None:
        raise ValueError(
            f"{p}: a wide judge file holds no query texts; pass instructions= (AlpacaEval's "
            "instructions.csv), or in a data spec 'judge:PATH?instructions=FILE'"
        )
    ins_path = check_file(instructions)
    ins = read_table(ins_path)
    if not {"instruction_idx", "instruction"} <= set(ins.columns):
        raise columns_error(ins_path, ins.columns, "expected instruction_idx and instruction")
    by_idx = ins.set_index("instruction_idx")
    missing = sorted(set(df["instruction_idx"]) - set(by_idx.index))
    if missing:
        raise ValueError(f"{p}: instruction_idx {missing[:5]} not found in {ins_path}")
    texts = [clean_text(by_idx.at[i, "instruction"]) for i in df["instruction_idx"]]
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
    ``1 + P(model's answer beats the reference's)``; texts come from ``instructions``
    (AlpacaEval's ``instructions.csv``: ``instruction_idx``, ``instruction``, ``dataset``).
    Variant columns (``example``, ``gpt4_gamed``,
    ``*_concise``, ``*_verbose``) and the reference itself are left out; tags are the
    AlpacaEval sub-dataset (selfinstruct, oasst, ...).

    Example:
        >>> from routellm_core.data.specs import default_data_dir
        >>> d = default_data_dir() / "alpaca_eval_judge_prefs"  # doctest: +SKIP
        >>> wide = d / "weighted_gpt4_turbo_vs_gpt4_1106_preview_wide.csv"  # doctest: +SKIP
        >>> load_judge_matrix(wide, instructions=d / "instructions.csv").scores.shape  # doctest: +SKIP
        (805, 48)
    """
    p = check_file(path)
    df = read_table(p)
    if "instruction_idx" not in df.columns:
        raise columns_error(p, df.columns, "not an AlpacaEval wide judge file (no instruction_idx)")
    df, texts, model_cols, tags = _read_wide_judge(p, df, instructions, reference)
    values = numeric_block(df, model_cols, p) - 1.0
    if np.nanmin(values, initial=0.0) < 0 or np.nanmax(values, initial=0.0) > 1:
        raise ValueError(f"{p}: values must lie in [1, 2] (1 + P(model beats {reference}))")
    return matrix_from_rows(
        p, texts, model_cols, values, aliases=aliases, models=None,
        source=f"alpaca_eval:{p.stem}", tags=tags,
    )


def _preference_winner(pref: object) -> str | None:
    """AlpacaEval preference -> winner: 1 -> a, 2 -> b, 1.5 -> tie; 0 or NaN -> None."""
    if is_missing(pref):
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
    p = check_file(path)
    df = read_table(p)
    cols = set(df.columns)
    if {"instruction", "generator_1", "generator_2", "preference"} <= cols:
        winners: list[str | None] = []
        for i, pref in enumerate(df["preference"]):
            try:
                winners.append(_preference_winner(pref))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{p}: row {i}: {exc}") from exc
        texts = [clean_text(t) for t in df["instruction"]]
        out = pd.DataFrame(
            {
                "query": texts,
                "model_a": canonical_names(df["generator_1"].tolist(), aliases, str(p)),
                "model_b": canonical_names(df["generator_2"].tolist(), aliases, str(p)),
                "winner": winners,
                "source": f"alpaca_eval:{p.stem}",
            }
        )
        keep = (out["query"].notna() & out["winner"].notna()).to_numpy()
        return report_dropped(
            make_battles(out.loc[keep]), int((~keep).sum()), p,
            "no instruction text or an unparsable (0/NaN) preference",
        )
    if "instruction_idx" in cols:
        m = load_judge_matrix(p, aliases=aliases, instructions=instructions, reference=reference)
        ref = canonical_name(reference, aliases)
        battles = _vs_reference(m, ref)
        n_nan = int(np.isnan(m.scores).sum())
        return report_dropped(battles, n_nan + m.dropped * len(m.models), p, "a NaN judge value")
    raise columns_error(
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
