"""The embedded N-way default on LLMRouter's test split: the README's done-when figures hold."""

from __future__ import annotations

import pytest

from routellm_core.nway import load_nway_router
from routellm_core.nway.training import evaluate_nway_router, load_score_matrix

pytestmark = pytest.mark.data


def test_default_beats_random_choice_and_matches_the_best_model_for_less(data_dir):
    spec = f"gold:{data_dir}/llmrouter_9model_gold/dcrouter_preprocessed__test.json"
    result = evaluate_nway_router(
        load_nway_router("default"), load_score_matrix([spec])[0]
    )
    assert result["n_queries"] == 500
    assert result["above_random_everywhere"]
    assert result["aiq"] > result["random_aiq"]
    assert result["best_single_model"]["name"] == "llama-3.1-nemotron-51b-instruct"
    assert result["reaches_best_single_at_lower_cost"]
    assert result["oracle_aiq"] > result["aiq"]
