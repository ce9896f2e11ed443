"""Modules named for what they hold, and the old names that still work with a DeprecationWarning.

- ``routellm_core.batch`` is now :mod:`routellm_core.offline_scoring` (not the micro-batcher of
  live calls, :mod:`routellm_core.routing.batcher`);
- ``routellm_core.data.judge`` is now :mod:`routellm_core.data.alpaca_eval` (not the live LLM
  judge, :mod:`routellm_core.learning.judge`);
- :mod:`routellm_core.estimator` keeps the estimator conventions only: the encoder-probe check is
  in :mod:`routellm_core.encoder_probe`, the query-template stripping in
  :mod:`routellm_core.data.templates`.
"""

from __future__ import annotations

import importlib
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from routellm_core import offline_scoring
from routellm_core.data import alpaca_eval
from routellm_core.data.templates import QueryTemplateStripping, SharedBoilerplate
from routellm_core.encoder_probe import check_router_encoder, encoder_probe
from routellm_core.errors import EncoderMismatchError
from routellm_core.estimator import EstimatorParams

MOVED = {
    "routellm_core.batch": (offline_scoring, ["calibrate_prompts", "check_engine", "evaluate_benchmark",
                                              "score_prompts", "ENGINES"]),
    "routellm_core.data.judge": (alpaca_eval, ["ALPACA_REFERENCE", "load_judge_battles", "load_judge_matrix"]),
}


def test_new_modules_hold_the_moved_names():
    assert callable(offline_scoring.score_prompts) and offline_scoring.ENGINES == ("local", "ray")
    assert alpaca_eval.__all__ == ["ALPACA_REFERENCE", "load_judge_battles", "load_judge_matrix"]
    from routellm_core.data import load_judge_battles, load_judge_matrix

    assert load_judge_battles is alpaca_eval.load_judge_battles
    assert load_judge_matrix is alpaca_eval.load_judge_matrix


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_names_give_the_same_objects_with_a_deprecation_warning(old):
    new, names = MOVED[old]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = importlib.import_module(old)  # importing the old module alone does not warn
    for name in names:
        with pytest.warns(DeprecationWarning, match=f"import {name} from {new.__name__}"):
            value = getattr(module, name)
        assert value is getattr(new, name)
    with pytest.warns(DeprecationWarning):
        exec(f"from {old} import {names[0]}", {})  # the old import statement itself


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_names_refuse_unknown_names_without_warning(old):
    module = importlib.import_module(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no_such_name"):
            module.no_such_name  # noqa: B018
        with pytest.raises(AttributeError):
            module.__wrapped__  # noqa: B018
    assert "score_prompts" in dir(importlib.import_module("routellm_core.batch"))


def test_estimator_takes_template_stripping_from_data_templates():
    assert issubclass(EstimatorParams, QueryTemplateStripping)
    assert "query_text" not in vars(EstimatorParams)
    assert EstimatorParams.query_text is QueryTemplateStripping.query_text

    class Reader(QueryTemplateStripping):
        strip_templates = True

    reader = Reader()
    assert reader.query_template_ is None and reader.query_text(["a\nb"]) == ["a\nb"]
    reader._learn_query_template([[f"Q{i}\nAnswer briefly." for i in range(5)]])
    assert reader.query_template_ == SharedBoilerplate(frozenset({"Answer briefly."}))
    assert reader.query_text(["Q9\nAnswer briefly.", "Answer briefly."]) == ["Q9", "Answer briefly."]
    reader.strip_templates = False
    reader._learn_query_template([[f"Q{i}\nAnswer briefly." for i in range(5)]])
    assert reader.query_template_ is None


class _CountingEncoder:
    """Three fixed 4-dim vectors (``flip`` reverses them), counting its ``encode`` calls."""

    name = "counting"

    def __init__(self, flip: bool = False) -> None:
        self.flip, self.calls = flip, 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        vecs = np.eye(4, dtype=np.float32)[: len(texts)] + 0.1
        return vecs[:, ::-1] if self.flip else vecs


def test_router_encoder_is_checked_against_its_probe_once_per_encoder():
    router = SimpleNamespace(name="mf", encoder_probe_=encoder_probe(_CountingEncoder()))
    enc = _CountingEncoder()
    check_router_encoder(router, enc)
    check_router_encoder(router, enc)
    assert enc.calls == 1  # the same instance is checked once
    other = _CountingEncoder()
    check_router_encoder(router, other)
    assert other.calls == 1
    with pytest.raises(EncoderMismatchError, match="mf router was trained with 'counting'"):
        check_router_encoder(router, _CountingEncoder(flip=True))
    unprobed = _CountingEncoder()
    check_router_encoder(SimpleNamespace(name="mf"), unprobed)  # no record: nothing to check
    assert unprobed.calls == 0
