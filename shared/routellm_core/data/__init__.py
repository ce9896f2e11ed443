"""Preference data: the schema, loaders for real data sets, Elo tiers, decontamination."""

from routellm_core.data.decontaminate import DecontaminationReport, decontaminate, load_eval_prompts
from routellm_core.data.elo import compute_elo, group_tiers
from routellm_core.data.loaders import (
    ScoreMatrix,
    default_data_dir,
    load_arena_battles,
    load_battles,
    load_gold_matrix,
    load_jsonl_battles,
    load_judge_battles,
    load_judge_matrix,
)
from routellm_core.data.prompts import read_prompts
from routellm_core.data.schema import (
    BATTLE_COLUMNS,
    MODEL_ALIASES,
    canonical_model_name,
    make_battles,
    validate_battles,
)

__all__ = [
    "BATTLE_COLUMNS",
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
    "make_battles",
    "read_prompts",
    "validate_battles",
]
