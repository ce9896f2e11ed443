"""Data loaders: small fixtures built here for every format, then the real shared data sets."""

from __future__ import annotations

import ast
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routellm_core.data import (
    ScoreMatrix,
    default_data_dir,
    load_arena_battles,
    load_battles,
    load_gold_matrix,
    load_jsonl_battles,
    load_judge_battles,
    load_judge_matrix,
    load_matrix,
    parse_spec,
)
from routellm_core.data.schema import BATTLE_COLUMNS
from routellm_core.data.specs import DataSpec

GPT4 = "gpt-4-1106-preview"
MIXTRAL = "mixtral-8x7b-instruct-v0.1"


def _write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- default_data_dir


def test_default_data_dir_prefers_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path.resolve()


def test_default_data_dir_env_pointing_nowhere_gives_none(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ROUTELLM_DATA_DIR", str(tmp_path / "missing"))
    with caplog.at_level(logging.WARNING):
        assert default_data_dir() is None
    assert "not a directory" in caplog.text


def test_default_data_dir_does_not_guess_a_repository_layout(tmp_path, monkeypatch):
    monkeypatch.delenv("ROUTELLM_DATA_DIR", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert default_data_dir() is None


# --------------------------------------------------------------------------- arena


def _arena_55k_rows() -> list[dict]:
    return [
        {"id": 1, "model_a": GPT4, "model_b": "mistralai/Mixtral-8x7B-Instruct-v0.1",
         "prompt": json.dumps(["What is the capital of France?", "And of Spain?"]),
         "response_a": "[]", "response_b": "[]",
         "winner_model_a": 1, "winner_model_b": 0, "winner_tie": 0},
        {"id": 2, "model_a": "claude-2.1", "model_b": GPT4,
         "prompt": json.dumps(["Write a poem about the sea."]),
         "response_a": "[]", "response_b": "[]",
         "winner_model_a": 0, "winner_model_b": 1, "winner_tie": 0},
        {"id": 3, "model_a": "llama-2-70b-chat", "model_b": "claude-2.1",
         "prompt": json.dumps(["Tell me a joke."]),
         "response_a": "[]", "response_b": "[]",
         "winner_model_a": 0, "winner_model_b": 0, "winner_tie": 1},
        {"id": 4, "model_a": "llama-2-70b-chat", "model_b": GPT4, "prompt": "[null]",
         "response_a": "[]", "response_b": "[]",
         "winner_model_a": 1, "winner_model_b": 0, "winner_tie": 0},
        {"id": 5, "model_a": "llama-2-70b-chat", "model_b": GPT4, "prompt": json.dumps(["   "]),
         "response_a": "[]", "response_b": "[]",
         "winner_model_a": 0, "winner_model_b": 1, "winner_tie": 0},
    ]


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl"])
def test_arena_55k_style(tmp_path, suffix, caplog):
    rows = _arena_55k_rows()
    path = tmp_path / f"arena55k{suffix}"
    if suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif suffix == ".json":
        _write_json(path, rows)
    else:
        _write_jsonl(path, rows)
    with caplog.at_level(logging.WARNING):
        df = load_arena_battles(path)
    assert list(df.columns) == list(BATTLE_COLUMNS)
    assert df["query"].tolist() == [
        "What is the capital of France?", "Write a poem about the sea.", "Tell me a joke."
    ]
    assert df["winner"].tolist() == ["a", "b", "tie"]
    assert df["model_b"][0] == MIXTRAL  # canonical name
    assert set(df["source"]) == {"arena:arena55k"}
    assert df.attrs["dropped"] == 2
    assert "dropped 2 row(s)" in caplog.text


def test_arena_conversations_style(tmp_path):
    conv = lambda *turns: [{"role": r, "content": c} for r, c in turns]  # noqa: E731
    rows = [
        {"question_id": "q1", "model_a": "vicuna-13b", "model_b": "koala-13b", "winner": "model_a",
         "conversation_a": conv(("system", "be nice"), ("user", "How do magnets work?"),
                                ("assistant", "..."), ("user", "More detail")),
         "turn": 2, "language": "English"},
        {"question_id": "q2", "model_a": "vicuna-13b", "model_b": "koala-13b", "winner": "model_b",
         "conversation_a": conv(("user", "Summarise Hamlet."), ("assistant", "..."))},
        {"question_id": "q3", "model_a": "vicuna-13b", "model_b": "koala-13b", "winner": "tie",
         "conversation_a": conv(("user", "Hi"), ("assistant", "Hello"))},
        {"question_id": "q4", "model_a": "vicuna-13b", "model_b": "koala-13b",
         "winner": "tie (bothbad)", "conversation_a": conv(("user", "Count to 3."))},
        {"question_id": "q5", "model_a": "vicuna-13b", "model_b": "koala-13b", "winner": "model_a",
         "conversation_a": conv(("assistant", "no user turn here"))},
    ]
    df = load_arena_battles(_write_jsonl(tmp_path / "conv.jsonl", rows), source="my-arena")
    assert df["query"].tolist() == ["How do magnets work?", "Summarise Hamlet.", "Hi", "Count to 3."]
    assert df["winner"].tolist() == ["a", "b", "tie", "tie"]
    assert set(df["source"]) == {"my-arena"}
    assert df.attrs["dropped"] == 1


def test_arena_conversation_as_python_repr_in_csv_and_prompt_column(tmp_path):
    conv = repr([{"role": "user", "content": "Explain recursion."}])
    pd.DataFrame([{"model_a": "a-model", "model_b": "b-model", "winner": "model_b",
                   "conversation_a": conv}]).to_csv(tmp_path / "c.csv", index=False)
    df = load_arena_battles(tmp_path / "c.csv")
    assert df["query"].tolist() == ["Explain recursion."] and df["winner"].tolist() == ["b"]

    pd.DataFrame([{"model_a": "a-model", "model_b": "b-model", "winner": "model_a",
                   "prompt": "Plain prompt text"}]).to_csv(tmp_path / "p.csv", index=False)
    assert load_arena_battles(tmp_path / "p.csv")["query"].tolist() == ["Plain prompt text"]


def test_arena_aliases_override_names(tmp_path):
    path = _write_jsonl(tmp_path / "a.jsonl", _arena_55k_rows()[:2])
    df = load_arena_battles(path, aliases={"GPT-4-1106-Preview": "gpt4"})
    assert df["model_a"].tolist() == ["gpt4", "claude-2.1"]
    assert df["model_b"].tolist() == [MIXTRAL, "gpt4"]


def test_arena_unknown_winner_names_file_row_and_value(tmp_path):
    path = _write_jsonl(tmp_path / "bad.jsonl", [
        {"model_a": "x", "model_b": "y", "winner": "model_a", "prompt": "q1"},
        {"model_a": "x", "model_b": "y", "winner": "model_c", "prompt": "q2"},
    ])
    with pytest.raises(ValueError, match=r"bad\.jsonl: row 1 has unknown winner 'model_c'"):
        load_arena_battles(path)


def test_arena_55k_inconsistent_flags(tmp_path):
    rows = _arena_55k_rows()[:2]
    rows[1]["winner_tie"] = 1
    path = _write_jsonl(tmp_path / "flags.jsonl", rows)
    with pytest.raises(ValueError, match="row 1 has winner flags.*exactly one"):
        load_arena_battles(path)


def test_arena_missing_columns_lists_what_was_found(tmp_path):
    path = _write_jsonl(tmp_path / "x.jsonl", [{"model_a": "x", "model_b": "y", "text": "hi"}])
    found = r"found columns \['model_a', 'model_b', 'text'\]"
    with pytest.raises(ValueError, match=r"x\.jsonl: not a Chatbot-Arena battle file.*" + found):
        load_arena_battles(path)
    path = _write_jsonl(tmp_path / "y.jsonl", [{"prompt": "hi", "winner": "tie"}])
    with pytest.raises(ValueError, match="found columns"):
        load_arena_battles(path)


def test_arena_missing_model_name(tmp_path):
    path = _write_jsonl(tmp_path / "m.jsonl", [{"model_a": None, "model_b": "y", "winner": "tie", "prompt": "q"}])
    with pytest.raises(ValueError, match=r"m\.jsonl: row 0: model name must be a non-empty string"):
        load_arena_battles(path)


def test_missing_file_and_unsupported_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv: no such file"):
        load_arena_battles(tmp_path / "nope.csv")
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'"):
        load_arena_battles(tmp_path / "a.txt")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_gold_matrix(tmp_path / "broken.json")
    (tmp_path / "broken.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match="broken.jsonl: line 2 is not valid JSON"):
        load_jsonl_battles(tmp_path / "broken.jsonl")


def test_arena_parquet(tmp_path):
    df = pd.DataFrame([{"model_a": "x", "model_b": "y", "winner": "model_b", "question": "Why?"}])
    path = tmp_path / "a.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        path.write_bytes(b"PAR1")
        with pytest.raises(ImportError, match="Parquet needs pyarrow"):
            load_arena_battles(path)
    else:
        df.to_parquet(path)
        assert load_arena_battles(path)["winner"].tolist() == ["b"]


# --------------------------------------------------------------------------- gold: ScoreMatrix


def test_score_matrix_to_battles_all_pairs_nan_skipped():
    m = ScoreMatrix(
        queries=["q1", "q2", "q3"],
        models=["m1", "m2", "m3"],
        scores=np.array([[1.0, 0.0, 0.5], [0.2, 0.2, np.nan], [0.0, 1.0, 1.0]]),
        source="toy",
    )
    b = m.to_battles()
    assert len(b) == 3 + 1 + 3  # q2 has one pair without a NaN
    assert b[b["query"] == "q1"][["model_a", "model_b", "winner"]].values.tolist() == [
        ["m1", "m2", "a"], ["m1", "m3", "a"], ["m2", "m3", "b"]
    ]
    assert b[b["query"] == "q2"]["winner"].tolist() == ["tie"]
    assert set(b["source"]) == {"toy"}
    only = m.to_battles(models=["m3", "m1"])
    assert only[["model_a", "model_b"]].drop_duplicates().values.tolist() == [["m3", "m1"]]
    assert only["winner"].tolist() == ["b", "a"]  # q1: 0.5 < 1.0; q3: 1.0 > 0.0
    pairs = m.to_battles(pairs=[("m2", "m1")])
    assert pairs["winner"].tolist() == ["b", "tie", "a"]


def test_score_matrix_subset_and_len():
    m = ScoreMatrix(["a", "b", "c"], ["x", "y"], np.arange(6.0).reshape(3, 2), source="s",
                    tags=["t1", "t2", "t3"], costs=np.ones((3, 2)))
    assert len(m) == 3
    s = m.subset([2, 0])
    assert s.queries == ["c", "a"] and s.tags == ["t3", "t1"] and s.scores[:, 0].tolist() == [4.0, 0.0]
    s2 = m.subset(np.array([False, True, False]))
    assert s2.queries == ["b"] and s2.costs.shape == (1, 2)
    s.scores[0, 0] = -1  # a copy, not a view
    assert m.scores[2, 0] == 4.0
    assert len(m.subset([])) == 0
    with pytest.raises(ValueError, match="mask has shape"):
        m.subset(np.array([True, False]))
    with pytest.raises(IndexError):
        m.subset([3])


def test_score_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        ScoreMatrix(["a"], ["x", "y"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="query 0 is empty"):
        ScoreMatrix([" "], ["x"], np.zeros((1, 1)))
    with pytest.raises(ValueError, match="duplicate model names"):
        ScoreMatrix(["a"], ["x", "x"], np.zeros((1, 2)))
    m = ScoreMatrix(["a"], ["x", "y"], np.zeros((1, 2)))
    with pytest.raises(ValueError, match="unknown model 'z'"):
        m.to_battles(models=["x", "z"])
    with pytest.raises(ValueError, match="against itself"):
        m.to_battles(pairs=[("x", "x")])
    with pytest.raises(ValueError, match="at least two models"):
        m.to_battles(models=["x"])


def _routerbench_frame() -> pd.DataFrame:
    models = ["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat", "meta/llama-2-70b-chat"]
    few_shot = "Q: 1+1?\nA) 2\nB) 3\nAnswer:\nA\n\n"
    rows = []
    for i, (q, s) in enumerate([("What is 2+2?\nA) 4\nB) 5\nAnswer:", (1, 0, 1)),
                                ("Pick the larger: 3 or 7?", (1, 1, 0)),
                                ("Name a prime.", (0, 1, 0))]):
        row = {"Unnamed: 0": i, "sample_id": f"toy.test.{i}", "prompt": str([few_shot, q]),
               "eval_name": "toy-bench"}
        row.update(dict(zip(models, map(float, s))))
        row.update({f"{m}|model_response": "resp" for m in models})
        row.update({f"{m}|total_cost": 0.001 * (j + 1) for j, m in enumerate(models)})
        row["oracle_model_to_route_to"] = models[0]
        rows.append(row)
    return pd.DataFrame(rows)


def test_gold_routerbench_csv(tmp_path):
    _routerbench_frame().to_csv(tmp_path / "toy_train.csv", index=False)
    m = load_gold_matrix(tmp_path / "toy_train.csv")
    assert m.source == "routerbench:toy_train"
    assert m.models == [GPT4, MIXTRAL, "llama-2-70b-chat"]
    assert m.queries[1] == "Pick the larger: 3 or 7?"  # the last list element, not the few-shot
    assert m.scores.tolist() == [[1, 0, 1], [1, 1, 0], [0, 1, 0]]
    assert m.costs is not None and m.costs[0].tolist() == pytest.approx([0.001, 0.002, 0.003])
    assert m.tags == ["toy-bench"] * 3
    b = m.to_battles(models=[GPT4, MIXTRAL])
    assert b["winner"].tolist() == ["a", "tie", "b"]

    # A single-element prompt of solved demonstrations then the question keeps the question.
    demo = "Q: 1+1?\nA) 2\nB) 3\nAnswer:\nA\n\nQ: 2+3?\nA) 5\nB) 6\nAnswer:\nA\n\n"
    frame = _routerbench_frame()
    frame.loc[0, "prompt"] = str([demo + "What is 2+2?\nA) 4\nB) 5\nAnswer:"])
    frame.to_csv(tmp_path / "fewshot.csv", index=False)
    assert load_gold_matrix(tmp_path / "fewshot.csv").queries[0] == "What is 2+2?\nA) 4\nB) 5\nAnswer:"

    sub = load_gold_matrix(tmp_path / "toy_train.csv", models=["mistralai/mixtral-8x7b-chat", GPT4])
    assert sub.models == [MIXTRAL, GPT4] and sub.costs.shape == (3, 2)


def test_gold_routerdc_and_llmrouter_json(tmp_path):
    rows = [
        {"question": "Q one", "scores": {"org/A-7B": 0.5, "B": 0.25}, "cluster_id": 3},
        {"question": "Q two", "scores": {"org/A-7B": 1.0, "B": 1.0, "C": 0.0}, "cluster_id": 1},
        {"question": "", "scores": {"org/A-7B": 1.0, "B": 0.0}, "cluster_id": 1},
    ]
    m = load_gold_matrix(_write_json(tmp_path / "arc_train.json", rows))
    assert m.source == "routerdc:arc_train"
    assert m.models == ["a-7b", "b", "c"]
    assert m.queries == ["Q one", "Q two"] and m.dropped == 1
    assert np.isnan(m.scores[0, 2]) and m.tags == ["3", "1"]
    assert len(m.to_battles()) == 1 + 3

    # LLMRouter: task labels named by the caller replace cluster ids; a file beside is not read.
    test = _write_json(tmp_path / "dcrouter_preprocessed__test.json", rows[:2])
    labels = tmp_path / "dcrouter_task_labels.csv"
    pd.DataFrame({"split": ["train", "test", "test"], "index": [0, 0, 1],
                  "task_name": ["x", "gsm8k", "mmlu"], "in_both_train_and_test": 0}).to_csv(labels, index=False)
    assert load_gold_matrix(test).tags == ["3", "1"]  # cluster ids
    m = load_gold_matrix(test, task_labels=labels)
    assert m.source == "llmrouter:dcrouter_preprocessed__test"
    assert m.tags == ["gsm8k", "mmlu"]
    assert load_battles(f"gold:{test}?task_labels={labels}").shape[0] == 1 + 3
    with pytest.raises(ValueError, match=r"1 task labels for split 'train', but .* has 2 rows"):
        load_gold_matrix(test, task_labels=labels, task_split="train")
    with pytest.raises(ValueError, match=r"no task labels for split 'dev'; the file has \['test', 'train'\]"):
        load_gold_matrix(test, task_labels=labels, task_split="dev")
    with pytest.raises(ValueError, match="the split is not in the file name; pass task_split="):
        load_gold_matrix(_write_json(tmp_path / "other.json", rows[:2]), task_labels=labels)


def test_gold_generic_table(tmp_path):
    df = pd.DataFrame({
        "id": [10, 11, 12],
        "query": ["alpha?", "beta?", "gamma?"],
        "category": ["x", "y", "x"],
        "Model-One": [0.9, 0.1, np.nan],
        "model-two": [0.2, 0.1, 0.5],
        "note": ["n", "n", "n"],
    })
    df.to_csv(tmp_path / "generic.csv", index=False)
    m = load_gold_matrix(tmp_path / "generic.csv")
    assert m.models == ["model-one", "model-two"]  # id and text columns are not models
    assert m.tags == ["x", "y", "x"] and m.source == "gold:generic"
    assert m.to_battles()["winner"].tolist() == ["a", "tie"]
    m2 = load_gold_matrix(tmp_path / "generic.csv", models=["model-two"])
    assert m2.models == ["model-two"]
    _write_jsonl(tmp_path / "generic.jsonl", df.drop(columns="note").to_dict("records"))
    assert load_gold_matrix(tmp_path / "generic.jsonl").models == ["model-one", "model-two"]


def test_gold_bad_input(tmp_path):
    pd.DataFrame({"query": ["a", "b"], "m1": [1, "oops"], "m2": [0, 1]}).to_csv(tmp_path / "nn.csv", index=False)
    with pytest.raises(ValueError, match=r"row 1, column 'm1' is not a number: 'oops'"):
        load_gold_matrix(tmp_path / "nn.csv", models=["m1", "m2"])
    pd.DataFrame({"text": ["a"], "m1": [1]}).to_csv(tmp_path / "nt.csv", index=False)
    with pytest.raises(ValueError, match=r"nt\.csv: not a gold score file.*found columns \['text', 'm1'\]"):
        load_gold_matrix(tmp_path / "nt.csv")
    pd.DataFrame({"query": ["a"], "m1": [1]}).to_csv(tmp_path / "ok.csv", index=False)
    with pytest.raises(ValueError, match=r"unknown model 'zzz'; available"):
        load_gold_matrix(tmp_path / "ok.csv", models=["zzz"])
    _write_json(tmp_path / "s.json", [{"question": "q", "scores": [1, 0]}])
    with pytest.raises(ValueError, match="row 0 has scores .* not a mapping"):
        load_gold_matrix(tmp_path / "s.json")
    _write_json(tmp_path / "v.json", [{"question": "q", "scores": {"a": "high"}}])
    with pytest.raises(ValueError, match="score of 'a' is not a number"):
        load_gold_matrix(tmp_path / "v.json")


# --------------------------------------------------------------------------- judge


def test_judge_raw_annotations(tmp_path, caplog):
    base = {"output_1": "o1", "output_2": "o2", "generator_1": "gpt4_1106_preview",
            "generator_2": "Mixtral-8x7B-Instruct-v0.1", "annotator": "x"}
    prefs = [1.0, 2.0, 1.5, 0.0, None, 1.3, 1.8]
    rows = [dict(base, instruction=f"Instruction {i}", preference=p) for i, p in enumerate(prefs)]
    with caplog.at_level(logging.WARNING):
        b = load_judge_battles(_write_json(tmp_path / "ann.json", rows))
    assert b["winner"].tolist() == ["a", "b", "tie", "a", "b"]
    assert b["query"].tolist() == [f"Instruction {i}" for i in (0, 1, 2, 5, 6)]
    assert set(b["model_a"]) == {GPT4} and set(b["model_b"]) == {MIXTRAL}
    assert b.attrs["dropped"] == 2 and "dropped 2" in caplog.text
    assert set(b["source"]) == {"alpaca_eval:ann"}

    rows.append(dict(base, instruction="bad", preference=3.0))
    with pytest.raises(ValueError, match=r"row 7: preference 3\.0 is outside \[1, 2\]"):
        load_judge_battles(_write_json(tmp_path / "bad.json", rows))


def _write_wide(tmp_path: Path, sub: str = "") -> Path:
    d = tmp_path / sub if sub else tmp_path
    d.mkdir(exist_ok=True)
    pd.DataFrame({"instruction_idx": [0, 1, 2], "dataset": ["oasst", "vicuna", "koala"],
                  "instruction": ["Say hi", "Plan a trip", "Tell a story"]}).to_csv(
        d / "instructions.csv", index=False)
    wide = pd.DataFrame({
        "instruction_idx": [0, 1, 2],
        "Model-X": [1.9, 1.2, 1.5],
        "model-y": [1.0, np.nan, 1.7],
        "gpt4_1106_preview": [1.5, 1.5, 1.5],
        "example": [2.0, 2.0, 2.0],
        "gpt4_gamed": [2.0, 2.0, 2.0],
        "model-y_concise": [1.1, 1.1, 1.1],
        "model-y_verbose": [1.1, 1.1, 1.1],
    })
    path = d / "wide.csv"
    wide.to_csv(path, index=False)
    return path


def test_judge_wide_battles_and_matrix(tmp_path):
    path = _write_wide(tmp_path)
    ins = path.parent / "instructions.csv"
    b = load_judge_battles(path, instructions=ins)
    assert b[["query", "model_a", "model_b", "winner"]].values.tolist() == [
        ["Say hi", "model-x", GPT4, "a"],
        ["Say hi", "model-y", GPT4, "b"],
        ["Plan a trip", "model-x", GPT4, "b"],
        ["Tell a story", "model-x", GPT4, "tie"],
        ["Tell a story", "model-y", GPT4, "a"],
    ]
    assert b.attrs["dropped"] == 1
    m = load_judge_matrix(path, instructions=ins)
    assert m.models == ["model-x", "model-y"]
    assert m.scores[:, 0].tolist() == pytest.approx([0.9, 0.2, 0.5])
    assert m.tags == ["oasst", "vicuna", "koala"]


def test_judge_wide_needs_instructions_named_explicitly(tmp_path):
    path = _write_wide(tmp_path, "a")  # instructions.csv sits beside it, but is not guessed
    with pytest.raises(ValueError, match=r"holds no query texts; pass instructions=.*judge:PATH\?instructions=FILE"):
        load_judge_battles(path)
    with pytest.raises(ValueError, match="holds no query texts"):
        load_battles(f"judge:{path}")
    (tmp_path / "a" / "instructions.csv").rename(tmp_path / "ins.csv")
    assert len(load_judge_battles(path, instructions=tmp_path / "ins.csv")) == 5
    assert len(load_battles(f"judge:{path}?instructions={tmp_path / 'ins.csv'}")) == 5
    with pytest.raises(FileNotFoundError, match="nope.csv: no such file"):
        load_judge_matrix(path, instructions=tmp_path / "nope.csv")


def test_judge_unrecognised_file(tmp_path):
    _write_json(tmp_path / "j.json", [{"instruction": "x", "model": "y"}])
    with pytest.raises(ValueError, match=r"not an AlpacaEval judge file.*found columns \['instruction', 'model'\]"):
        load_judge_battles(tmp_path / "j.json")


# --------------------------------------------------------------------------- jsonl + entry point


def test_jsonl_battles(tmp_path):
    rows = [{"query": "q1", "model_a": "x", "model_b": "y", "winner": "a", "source": "mine"},
            {"query": "q2", "model_a": "x", "model_b": "y", "winner": "tie"}]
    df = load_jsonl_battles(_write_jsonl(tmp_path / "b.jsonl", rows))
    assert df["source"].tolist() == ["mine", "jsonl:b"] and df["winner"].tolist() == ["a", "tie"]

    with pytest.raises(ValueError, match=r"bad1\.jsonl: battles are missing columns \['winner'\]"):
        load_jsonl_battles(_write_jsonl(tmp_path / "bad1.jsonl", [{"query": "q", "model_a": "x", "model_b": "y"}]))
    with pytest.raises(ValueError, match="battle 0 has winner 'draw'"):
        load_jsonl_battles(_write_jsonl(tmp_path / "bad2.jsonl", [dict(rows[0], winner="draw")]))
    with pytest.raises(ValueError, match="battle 0 has an empty or non-text query"):
        load_jsonl_battles(_write_jsonl(tmp_path / "bad3.jsonl", [dict(rows[0], query="  ")]))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no battles in file"):
        load_jsonl_battles(tmp_path / "empty.jsonl")


def test_load_battles_specs_and_detection(tmp_path):
    arena = _write_jsonl(tmp_path / "arena.jsonl", _arena_55k_rows()[:3])
    jsonl = _write_jsonl(tmp_path / "b.jsonl", [{"query": "q", "model_a": "x", "model_b": "y", "winner": "b"}])
    _routerbench_frame().to_csv(tmp_path / "rb.csv", index=False)
    judge = _write_wide(tmp_path, "judge")

    assert load_battles(f"arena:{arena}")["winner"].tolist() == ["a", "b", "tie"]
    assert len(load_battles(str(arena))) == 3  # detected as arena
    assert load_battles(f"jsonl:{jsonl}")["winner"].tolist() == ["b"]
    assert load_battles(str(jsonl))["source"].tolist() == ["jsonl:b"]
    ins = judge.parent / "instructions.csv"
    assert len(load_battles(f"judge:{judge}?instructions={ins}")) == 5
    assert len(load_battles(f"{judge}?instructions={ins}")) == 5  # detected as judge
    assert len(load_battles(f"gold:{tmp_path / 'rb.csv'}")) == 3 * 3
    two = load_battles(f"gold:{tmp_path / 'rb.csv'}#{GPT4},{MIXTRAL}")
    assert two["winner"].tolist() == ["a", "tie", "b"] and set(two["source"]) == {"routerbench:rb"}
    assert len(load_battles(str(tmp_path / "rb.csv"))) == 9  # detected as gold

    with pytest.raises(ValueError, match="at least two model names"):
        load_battles(f"gold:{tmp_path / 'rb.csv'}#{GPT4}")
    with pytest.raises(ValueError, match="only applies to gold data"):
        load_battles(f"arena:{arena}#a,b")
    with pytest.raises(ValueError, match="unknown data kind 'golden'"):
        load_battles(f"golden:{tmp_path / 'rb.csv'}")
    with pytest.raises(FileNotFoundError, match="missing.csv: no such file"):
        load_battles(f"gold:{tmp_path / 'missing.csv'}")
    with pytest.raises(ValueError, match="battle spec"):
        load_battles("")
    with pytest.raises(ValueError, match=r"bad option 'labels=x.csv'; expected OPTION=VALUE with OPTION in"):
        load_battles(f"gold:{tmp_path / 'rb.csv'}?labels=x.csv")
    with pytest.raises(ValueError, match=r"arena data takes no options, got \['instructions'\]"):
        load_battles(f"arena:{arena}?instructions=x.csv")
    with pytest.raises(ValueError, match=r"gold data takes \['task_labels', 'task_split'\], got \['instructions'\]"):
        load_battles(f"{tmp_path / 'rb.csv'}?instructions=x.csv")  # kind detected, then checked


def test_parse_spec_parts(tmp_path):
    spec = parse_spec("gold:/d/train.json?task_labels=/d/labels.csv&task_split=train#a,b")
    assert spec == DataSpec("gold", Path("/d/train.json"), ("a", "b"),
                            {"task_labels": "/d/labels.csv", "task_split": "train"})
    assert parse_spec("x.csv") == DataSpec("", Path("x.csv"))
    with pytest.raises(ValueError, match="unknown data kind 'golden'"):
        parse_spec("golden:x.csv")
    with pytest.raises(ValueError, match="bad option 'task_labels'"):
        parse_spec("gold:x.csv?task_labels")


def test_load_matrix_from_gold_and_judge_specs(tmp_path):
    _routerbench_frame().to_csv(tmp_path / "rb.csv", index=False)
    m = load_matrix(f"gold:{tmp_path / 'rb.csv'}#{MIXTRAL},{GPT4}")
    assert isinstance(m, ScoreMatrix) and m.models == [MIXTRAL, GPT4]
    judge = _write_wide(tmp_path, "judge")
    j = load_matrix(f"judge:{judge}?instructions={judge.parent / 'instructions.csv'}#model-y,Model-X")
    assert j.models == ["model-y", "model-x"] and j.tags == ["oasst", "vicuna", "koala"]
    with pytest.raises(ValueError, match="use 'gold:PATH' or 'judge:PATH'"):
        load_matrix(f"arena:{tmp_path / 'rb.csv'}")


# --------------------------------------------------------------------------- real data


@pytest.mark.data
def test_real_routerbench(data_dir):
    folder = data_dir / "routerdc_7model_and_routerbench_subset" / "routerbench_zs"
    sizes = {"arc_challenge": (1039, 445), "mbpp": (299, 128), "winograde": (887, 380)}
    for name, (n_train, n_test) in sizes.items():
        assert len(load_gold_matrix(folder / f"{name}_train.csv")) == n_train
        assert len(load_gold_matrix(folder / f"{name}_test.csv")) == n_test
    m = load_gold_matrix(folder / "arc_challenge_train.csv")
    assert len(m.models) == 11 and GPT4 in m.models and MIXTRAL in m.models
    raw = pd.read_csv(folder / "arc_challenge_train.csv")
    # The prompt list has one element: 5 solved demonstrations, then the question; the
    # demonstrations are stripped so that the question fits the encoder's window.
    last = ast.literal_eval(raw["prompt"][0])[-1]
    assert m.queries[0] == last.split("\n\n")[-1].strip() and last.endswith(m.queries[0])
    assert all(q.rstrip().endswith("Answer:") and "Answer:\n" not in q for q in m.queries)
    assert m.costs is not None and np.all(m.costs > 0) and set(m.tags) == {"arc-challenge"}
    assert set(np.unique(m.scores[~np.isnan(m.scores)])) == {0.0, 1.0}
    # A few ARC-C cells are empty in the file (8 per model, 12 for gpt-3.5-turbo-1106).
    assert np.isnan(m.scores[:, m.models.index(GPT4)]).sum() == 8
    b = m.to_battles(models=[GPT4, MIXTRAL])
    assert len(b) == 1031
    assert b["winner"].value_counts().to_dict() == {"tie": 899, "a": 119, "b": 13}
    assert len(m.to_battles()) == 56585


@pytest.mark.data
def test_real_llmrouter_and_routerdc(data_dir):
    labels = data_dir / "llmrouter_9model_gold" / "dcrouter_task_labels.csv"
    m = load_gold_matrix(data_dir / "llmrouter_9model_gold" / "dcrouter_preprocessed__train.json", task_labels=labels)
    assert m.scores.shape == (5608, 9) and m.source == "llmrouter:dcrouter_preprocessed__train"
    tags = Counter(m.tags)
    assert len(tags) == 14 and tags["math"] == 504 and tags["gsm8k"] == 500 and tags["human_eval"] == 164
    acc = np.nanmean(m.scores, axis=0)
    assert acc.min() == pytest.approx(0.18, abs=0.01) and acc.max() == pytest.approx(0.62, abs=0.01)
    test = load_gold_matrix(data_dir / "llmrouter_9model_gold" / "dcrouter_preprocessed__test.json", task_labels=labels)
    assert test.scores.shape == (500, 9) and set(Counter(test.tags).values()) == {50}

    rdc_dir = data_dir / "routerdc_7model_and_routerbench_subset" / "split2_model7"
    rdc = load_gold_matrix(rdc_dir / "arc_challenge_train.json")
    assert rdc.scores.shape == (820, 7) and rdc.source == "routerdc:arc_challenge_train"
    assert "mistral-7b-v0.1" in rdc.models and rdc.tags is not None
    assert np.nanmax(rdc.scores) <= 1.0 and np.nanmin(rdc.scores) >= 0.0


@pytest.mark.data
def test_real_alpaca_eval(data_dir):
    folder = data_dir / "alpaca_eval_judge_prefs"
    raw = load_judge_battles(folder / "raw_annotations_Mixtral-8x7B-Instruct-v0.1_vs_gpt4_1106_preview.json")
    assert len(raw) == 805 and raw.attrs["dropped"] == 0
    assert set(raw["model_a"]) == {GPT4} and set(raw["model_b"]) == {MIXTRAL}
    # MANIFEST: Mixtral (generator_2) wins 183, loses 621, ties 1.
    assert raw["winner"].value_counts().to_dict() == {"a": 621, "b": 183, "tie": 1}

    wide = folder / "weighted_gpt4_turbo_vs_gpt4_1106_preview_wide.csv"
    ins = folder / "instructions.csv"
    m = load_judge_matrix(wide, instructions=ins)
    assert m.scores.shape == (805, 48)
    assert not any(x.endswith(("_concise", "_verbose")) or x in ("example", "gpt4_gamed", GPT4) for x in m.models)
    assert np.isnan(m.scores).sum() == 6  # 10 NaN cells in the file, 4 in variant columns
    b = load_judge_battles(wide, instructions=ins)
    assert len(b) == 805 * 48 - 6 and b.attrs["dropped"] == 6 and set(b["model_b"]) == {GPT4}
    assert b["winner"].value_counts().to_dict() == {"b": 34214, "a": 4296, "tie": 124}


@pytest.mark.data
def test_real_load_battles_spec(data_dir):
    path = data_dir / "routerdc_7model_and_routerbench_subset" / "routerbench_zs" / "mbpp_test.csv"
    b = load_battles(f"gold:{path}#{GPT4},{MIXTRAL}")
    assert len(b) == 128 and set(b["source"]) == {"routerbench:mbpp_test"}
    assert load_battles(str(path)).shape[0] == 128 * 55
