"""Template-aware query text: the lines a data set's prompts share are stripped before a router
reads a query, in training, in scoring (live traffic included) and in decontamination.

The real-file checks rebuild RouterBench's ARC-Challenge and Winogrande rows *as they are in the
file*, each question behind the same block of solved demonstrations (the loader's own
RouterBench rule normally cuts it; here only the generic rule may), in a JSON score file under
``tmp_path``: nothing of the shared data is copied into the project.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routellm_core.checkpoints import CheckpointError, load_nway_router, load_router, save_router
from routellm_core.data import load_gold_matrix
from routellm_core.data.decontaminate import decontaminate
from routellm_core.data.schema import ScoreMatrix, make_battles
from routellm_core.data.templates import SharedBoilerplate, normalize_text
from routellm_core.nway import QualityRouter
from routellm_core.nway.training import train_nway_router
from routellm_core.routers import MatrixFactorizationRouter, SWRankingRouter

SHOT = "Solve it. Reply with a number only.\nQ: what is 1 + 1?\nA: 2"
TEXTS = [f"{SHOT}\nQ: what is {i} times {i + 3}?\nA:" for i in range(12)]
NOT_TEMPLATED = ["Write a haiku about autumn leaves.", "Prove that there are infinitely many primes."]


def _templated_battles() -> pd.DataFrame:
    rows = [{"query": q, "model_a": "big", "model_b": "small", "winner": "ab"[i % 2], "source": "math"}
            for i, q in enumerate(TEXTS)]
    rows += [{"query": q, "model_a": "big", "model_b": "small", "winner": "a", "source": "chat"}
             for q in NOT_TEMPLATED]
    return make_battles(rows)


def _raw_routerbench(data_dir: Path, name: str, split: str, rows: int, out: Path) -> Path:
    """RouterBench rows with their prompts as in the CSV (last list element, demonstrations kept)."""
    frame = pd.read_csv(
        data_dir / "routerdc_7model_and_routerbench_subset" / "routerbench_zs" / f"{name}_{split}.csv"
    ).head(rows)
    models = [c for c in frame.columns if c not in ("Unnamed: 0", "sample_id", "prompt", "eval_name",
                                                   "oracle_model_to_route_to") and "|" not in c]
    records = [{"question": ast.literal_eval(p)[-1], "scores": {m: float(r[m]) for m in models}}
               for p, (_, r) in zip(frame["prompt"], frame.iterrows())]
    path = out / f"{name}_{split}.json"
    path.write_text(json.dumps(records))
    return path


# --------------------------------------------------------------------------- the rule itself


def test_template_lines_round_trip_and_bad_saved_templates_are_named():
    found = SharedBoilerplate.find(TEXTS)
    assert "Solve it. Reply with a number only." in found.lines and "A:" in found.lines
    assert SharedBoilerplate.from_lines(found.to_lines()) == found
    assert found.strip_all([TEXTS[3], 7, TEXTS[3]]) == ["Q: what is 3 times 6?", 7, "Q: what is 3 times 6?"]
    for bad, why in [("a line", "must be a list"), ([""], "non-empty strings"), ([3], "non-empty strings"),
                     (["x" * 100_001], "at most 100000 characters")]:
        with pytest.raises(ValueError, match=why):
            SharedBoilerplate.from_lines(bad, where="query_template")


# --------------------------------------------------------------------------- routers


@pytest.mark.parametrize("cls", [SWRankingRouter, MatrixFactorizationRouter])
def test_a_router_learns_its_training_template_and_strips_it_from_live_text(cls, tmp_path):
    params = {"n_tiers": 2} if cls is SWRankingRouter else {"epochs": 3, "dim": 8}
    router = cls(strong_model="big", weak_model="small", **params).fit(_templated_battles())
    assert router.query_template_ is not None
    assert "Q: what is 1 + 1?" in router.query_template_.lines
    # what the router reads: the question, not the demonstration that every prompt repeats
    assert router.query_text([TEXTS[5]]) == ["Q: what is 5 times 8?"]
    live = f"{SHOT}\nQ: what is 40 times 2?\nA:"
    assert np.allclose(router.win_rate([live]), router.win_rate(["Q: what is 40 times 2?"]))
    assert router.query_text(NOT_TEMPLATED) == NOT_TEMPLATED

    save_router(router, tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["format_version"] == 3  # readers that would ignore the template refuse it
    assert config["query_template"] == router.query_template_.to_lines()
    loaded = load_router(tmp_path / "ckpt")
    assert loaded.query_template_ == router.query_template_
    assert np.allclose(loaded.win_rate([live]), router.win_rate([live]))

    off = cls(strong_model="big", weak_model="small", strip_templates=False, **params).fit(_templated_battles())
    assert off.query_template_ is None and off.query_text([live]) == [live]
    save_router(off, tmp_path / "off")
    assert json.loads((tmp_path / "off" / "config.json").read_text())["format_version"] == 2


def test_sw_updates_keep_the_template_and_trained_on_sees_through_it():
    sw = SWRankingRouter(strong_model="big", weak_model="small", n_tiers=2).fit(_templated_battles())
    template = sw.query_template_
    more = make_battles([{"query": f"{SHOT}\nQ: what is 99 times 2?\nA:", "model_a": "big",
                          "model_b": "small", "winner": "a", "source": "new"}])
    sw.partial_fit(more)
    assert sw.query_template_ == template
    assert sw.trained_on([f"{SHOT}\nQ: what is 99 times 2?\nA:", "Q: what is 99 times 2?", "Q: what is 98 times 2?"]
                         ).tolist() == [True, True, False]


def test_given_embeddings_fix_the_text_so_no_template_is_learned():
    battles = _templated_battles()
    queries = sorted(set(battles["query"]))
    emb = np.random.default_rng(0).normal(size=(len(queries), 16)).astype(np.float32)
    sw = SWRankingRouter(strong_model="big", weak_model="small", n_tiers=2).fit(battles, embeddings=emb)
    assert sw.query_template_ is None


@pytest.mark.parametrize("bad, why", [("x", "must be a list"), ([1, 2], "non-empty strings"),
                                      (["ok"] * 100_001, "at most 100000")])
def test_a_corrupted_saved_template_is_a_checkpoint_error(tmp_path, bad, why):
    sw = SWRankingRouter(strong_model="big", weak_model="small", n_tiers=2).fit(_templated_battles())
    save_router(sw, tmp_path / "ckpt")
    path = tmp_path / "ckpt" / "config.json"
    config = json.loads(path.read_text())
    config["query_template"] = bad
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"query_template.*{why}"):
        load_router(tmp_path / "ckpt")


def test_an_nway_router_strips_its_template_and_saves_it(tmp_path):
    scores = np.array([[1.0, 0.0] if i % 2 else [0.0, 1.0] for i in range(len(TEXTS))])
    matrix = ScoreMatrix(TEXTS, ["big", "small"], scores, source="doc")
    router = QualityRouter(epochs=5, hidden=0).fit(matrix)
    assert router.query_text([TEXTS[0]]) == ["Q: what is 0 times 3?"]
    live = f"{SHOT}\nQ: what is 40 times 2?\nA:"
    assert np.allclose(router.predict_quality([live]), router.predict_quality(["Q: what is 40 times 2?"]))
    save_router(router, tmp_path / "nway")
    assert load_nway_router(tmp_path / "nway").query_template_ == router.query_template_


# --------------------------------------------------------------------------- real templated files


@pytest.mark.parametrize("name", ["arc_challenge", "winograde"])
def test_the_generic_rule_finds_routerbench_demonstrations_in_the_real_file(data_dir, tmp_path, name):
    raw = load_gold_matrix(_raw_routerbench(data_dir, name, "train", 400, tmp_path))
    hand = load_gold_matrix(data_dir / "routerdc_7model_and_routerbench_subset" / "routerbench_zs"
                            / f"{name}_train.csv")
    assert len({q[:300] for q in raw.queries}) == 1  # every raw prompt opens with the same block
    stripped = SharedBoilerplate.find(raw.queries).strip_all(raw.queries)
    # the question line the loader's RouterBench rule keeps is the first line the generic rule keeps
    same = [normalize_text(s.splitlines()[0]) == normalize_text(h.splitlines()[0])
            for s, h in zip(stripped, hand.queries[:400])]
    assert np.mean(same) >= 0.99
    assert max(len(s) for s in stripped) < min(len(q) for q in raw.queries)


def test_decontamination_keeps_distinct_templated_questions_and_drops_true_repeats(data_dir, tmp_path):
    """The issue's failure: on a templated file every training query was dropped as a repeat."""
    train = load_gold_matrix(_raw_routerbench(data_dir, "arc_challenge", "train", 300, tmp_path))
    test = load_gold_matrix(_raw_routerbench(data_dir, "arc_challenge", "test", 150, tmp_path))
    repeats = test.subset(np.arange(len(test)) < 20)  # 20 test questions, verbatim, into training
    both = ScoreMatrix(train.queries + repeats.queries, train.models,
                       np.vstack([train.scores, repeats.scores]), source="doc")
    cleaned, report = decontaminate(both, {"test": test.queries}, method="both")
    kept = set(cleaned.queries)
    assert not kept & set(repeats.queries)  # every true repeat dropped
    assert report.n_dropped <= 20 + 3  # distinct questions kept (a few are real repeats in RouterBench)
    assert len(kept & set(train.queries)) >= 297


def test_nway_training_on_a_templated_file_reads_the_questions(data_dir, tmp_path):
    train = _raw_routerbench(data_dir, "arc_challenge", "train", 300, tmp_path)
    test = _raw_routerbench(data_dir, "arc_challenge", "test", 60, tmp_path)
    params = {"epochs": 30, "hidden": 0}
    result = train_nway_router("quality", [f"gold:{train}"], params=params, holdout_specs=[f"gold:{test}"])
    assert result.card["queries"] >= 295, result.card["decontamination"]
    queries = load_gold_matrix(test).queries
    scores = result.router.predict_quality(queries)
    assert np.ptp(scores, axis=0).max() > 1e-3  # queries are told apart
    # without the rule the encoder's window holds only the demonstrations: one score for all
    blind = train_nway_router("quality", [f"gold:{train}"], params={**params, "strip_templates": False},
                              holdout_specs=[f"gold:{test}"], decontaminate=False).router
    assert np.ptp(blind.predict_quality(queries), axis=0).max() < 1e-4


# --------------------------------------------------------------------------- live traffic, both adapters


def test_both_adapters_route_templated_traffic_on_the_question(tmp_path):
    from langchain_core.messages import HumanMessage, SystemMessage

    from langchain_routellm import ChatRouteLLM
    from llamaindex_routellm import RouteLLM
    from tests.langchain.fake_models import FakeToolChatModel
    from tests.llamaindex.fakes import FakeLLM

    battles = _templated_battles()
    big, small = battles["model_a"].iloc[0], battles["model_b"].iloc[0]
    router = SWRankingRouter(strong_model=big, weak_model=small, n_tiers=2).fit(battles)
    save_router(router, tmp_path / "ckpt")  # adapters load it from disk, template and all
    live = f"{SHOT}\nQ: what is 40 times 2?\nA:"
    expected = float(router.win_rate(["Q: what is 40 times 2?"])[0])
    names = {"fake-strong": big, "fake-weak": small}
    lc = ChatRouteLLM(strong=FakeToolChatModel(model_name="fake-strong"),
                      weak=FakeToolChatModel(model_name="fake-weak"),
                      router=str(tmp_path / "ckpt"), threshold=0.5, aliases=names)
    li = RouteLLM(strong=FakeLLM(model="fake-strong"), weak=FakeLLM(model="fake-weak"), router=str(tmp_path / "ckpt"),
                  threshold=0.5, aliases=names)
    assert lc.route([SystemMessage("Be brief."), HumanMessage(live)]).win_rate == pytest.approx(expected)
    assert li.route(live).win_rate == pytest.approx(expected)
    assert lc.route(live).win_rate != pytest.approx(float(SWRankingRouter(
        strong_model=big, weak_model=small, n_tiers=2, strip_templates=False).fit(battles).win_rate([live])[0]))
