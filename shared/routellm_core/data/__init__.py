"""Preference data: the schema, loaders for real data sets, Elo tiers, decontamination."""

from routellm_core.data.schema import (
    BATTLE_COLUMNS,
    MODEL_ALIASES,
    canonical_model_name,
    make_battles,
    validate_battles,
)

__all__ = [
    "BATTLE_COLUMNS",
    "MODEL_ALIASES",
    "canonical_model_name",
    "make_battles",
    "validate_battles",
]
