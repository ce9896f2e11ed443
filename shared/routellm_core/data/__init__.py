"""Preference data: the schema, one reader per data format, data specs, Elo tiers, decontamination.

- :mod:`~routellm_core.data.schema`: the battle schema and :class:`ScoreMatrix`;
- :mod:`~routellm_core.data.arena`, :mod:`~routellm_core.data.gold`,
  :mod:`~routellm_core.data.alpaca_eval`, :mod:`~routellm_core.data.jsonl`: one module per format;
- :mod:`~routellm_core.data.specs`: ``KIND:PATH`` data specs, the entry point of ``routellm train``.
"""

from routellm_core.data.alpaca_eval import load_judge_battles, load_judge_matrix
from routellm_core.data.arena import load_arena_battles
from routellm_core.data.decontaminate import DecontaminationReport, decontaminate, load_eval_prompts
from routellm_core.data.elo import compute_elo, group_tiers
from routellm_core.data.gold import load_gold_matrix, read_task_labels
from routellm_core.data.jsonl import load_jsonl_battles
from routellm_core.data.prompts import read_prompts
from routellm_core.data.schema import (
    BATTLE_COLUMNS,
    MODEL_ALIASES,
    ScoreMatrix,
    canonical_model_name,
    make_battles,
    validate_battles,
)
from routellm_core.data.specs import DataSpec, default_data_dir, load_battles, load_matrix, parse_spec

__all__ = [
    "BATTLE_COLUMNS",
    "DataSpec",
    "DecontaminationReport",
    "MODEL_ALIASES",
    "ScoreMatrix",
    "canonical_model_name",
    "compute_elo",
    "decontaminate",
    "default_data_dir",
    "group_tiers",
    "load_arena_battles",
    "load_battles",
    "load_eval_prompts",
    "load_gold_matrix",
    "load_jsonl_battles",
    "load_judge_battles",
    "load_judge_matrix",
    "load_matrix",
    "make_battles",
    "parse_spec",
    "read_prompts",
    "read_task_labels",
    "validate_battles",
]
