"""Trainers behind ``routellm train``: data specs in, a checkpoint with a model card out."""

from routellm_core.training.pairs import training_pair
from routellm_core.training.pipeline import (
    DEFAULT_TRAINING_SPECS,
    TrainingResult,
    expand_spec,
    license_of,
    load_training_battles,
    train_router,
)

__all__ = [
    "DEFAULT_TRAINING_SPECS",
    "TrainingResult",
    "expand_spec",
    "license_of",
    "load_training_battles",
    "train_router",
    "training_pair",
]
