"""N-way routing in the core: constraints, Tryage's objective, the quality and ZOOTER routers,
checkpoints, evaluation and the command line. The routers are real (the real encoder embeds
small labelled sets); the figures on the real data sets are in tests/test_nway_data.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from routellm_core import CheckpointError, load_router, save_router
from routellm_core.checkpoints import DEFAULT_DIR
from routellm_core.data.schema import ScoreMatrix
from routellm_core.nway import (
    Constraint,
    NWayRouter,
    QualityRouter,
    ZooterRouter,
    check_lambdas,
    cost_per_call,
    load_nway_router,
    load_price_table,
    mean_cost,
    model_size,
)
from routellm_core.nway.evaluation import aiq, evaluate_nway, upper_hull
from routellm_core.nway.objective import lambda_breakpoints, select
from routellm_core.nway.zooter import kmeans_tags, reward_targets, smooth_by_tag
from routellm_core.routers import NotFittedError, UnknownModelError
from tests.routing_fixtures import EASY, HARD

CODE = [
    "Write a Python function that reverses a linked list.",
    "Implement quicksort in JavaScript.",
    "Fix the bug in this SQL query: SELECT * FORM users;",
    "Write a bash script that counts the lines of every .py file.",
    "Implement a binary search tree insert method in Java.",
    "Write a regular expression that matches email addresses.",
    "Refactor this Python loop into a list comprehension.",
    "Write a C function that computes the length of a string.",
    "Implement an LRU cache in Python.",
    "Write a unit test for a function that adds two numbers.",
]
MODELS = ["big", "coder", "small"]
COST = Constraint("cost", {"big": 1.0, "coder": 0.3, "small": 0.05}, unit="$ per call")
FAST = {"hidden": 32, "lr": 1e-2, "epochs": 150, "val_fraction": 0.0}
NEW = {
    "hard": "Prove that the sum of two even integers is even.",
    "code": "Write a Python function that checks whether a string is a palindrome.",
    "easy": "Hello, nice to meet you!",
}


def pool_matrix() -> ScoreMatrix:
    """Maths: only the big model is right; code: big and coder; small talk: everyone."""
    rows = [[1, 0, 0]] * len(HARD) + [[1, 1, 0]] * len(CODE) + [[1, 1, 1]] * len(EASY)
    tags = ["maths"] * len(HARD) + ["code"] * len(CODE) + ["chat"] * len(EASY)
    return ScoreMatrix(
        HARD + CODE + EASY, MODELS, np.array(rows, dtype=float), source="toy", tags=tags
    )


@pytest.fixture(scope="module")
def routers() -> dict[str, NWayRouter]:
    m = pool_matrix()
    return {
        "quality": QualityRouter(**FAST).fit(m, constraints=[COST]),
        "zooter": ZooterRouter(**FAST).fit(m, constraints=[COST]),
    }


# --------------------------------------------------------------------------- constraints
def test_constraint_normalises_by_the_largest_value_and_names_missing_models():
    assert COST.vector(["small", "big"]).tolist() == [0.05, 1.0]
    assert COST.vector(["small", "coder"]).tolist() == pytest.approx([1 / 6, 1.0])
    assert Constraint("x", {"a": 2.0}, normalize=False).vector(["a"]).tolist() == [2.0]
    with pytest.raises(KeyError, match=r"no value for \['gpt-9'\]"):
        COST.vector(["big", "gpt-9"])


@pytest.mark.parametrize(
    "values, error, match",
    [
        ({}, ValueError, "non-empty"),
        ({"a": "cheap"}, TypeError, "must be a number"),
        ({"a": float("nan")}, ValueError, "not finite"),
        ({"a": True}, TypeError, "must be a number"),
    ],
)
def test_constraint_rejects_bad_values(values, error, match):
    with pytest.raises(error, match=match):
        Constraint("cost", values)


def test_lambdas_are_checked_by_name_and_value():
    assert check_lambdas({"cost": -0.5}, [COST]) == {"cost": -0.5}
    with pytest.raises(ValueError, match="unknown constraint 'latency'"):
        check_lambdas({"latency": 1.0}, [COST])
    with pytest.raises(TypeError, match="must be a number"):
        check_lambdas({"cost": "high"}, [COST])
    with pytest.raises(ValueError, match="finite"):
        check_lambdas({"cost": math.inf}, [COST])
    with pytest.raises(TypeError, match="mapping"):
        check_lambdas([0.1], [COST])  # type: ignore[arg-type]


def test_builtin_constraints():
    c = cost_per_call(
        {"big": (10.0, 30.0), "small": (1.0, 1.0)}, input_tokens=1000, output_tokens=0
    )
    assert c.values == {"big": 0.01, "small": 0.001}
    with pytest.raises(KeyError, match="no price for model 'mid'"):
        cost_per_call({"big": (1.0, 1.0)}, ["big", "mid"])
    assert model_size({"a": "7B", "b": 0.5, "c": "135M"}).values == {
        "a": 7.0,
        "b": 0.5,
        "c": 0.135,
    }
    with pytest.raises(ValueError, match="cannot read a model size"):
        model_size({"a": "large"})
    assert mean_cost(np.array([[1.0, 2.0], [3.0, np.nan]]), ["a", "b"]).values == {
        "a": 2.0,
        "b": 2.0,
    }
    with pytest.raises(ValueError, match=r"no cost recorded for \['b'\]"):
        mean_cost(np.array([[1.0, np.nan]]), ["a", "b"])


def test_price_table_files(tmp_path):
    good = tmp_path / "p.json"
    good.write_text(
        json.dumps(
            {
                "Org/Big": [1, 2],
                "small": {"input_price": 0.1, "output_price": 0.2, "size": "7B"},
            }
        )
    )
    assert load_price_table(good) == {"big": (1.0, 2.0), "small": (0.1, 0.2)}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"big": "expensive"}))
    with pytest.raises(ValueError, match="price of 'big'"):
        load_price_table(bad)
    with pytest.raises(FileNotFoundError):
        load_price_table(tmp_path / "missing.json")


# --------------------------------------------------------------------------- objective
def test_select_weighs_quality_against_cost_and_breaks_ties_to_the_cheaper_model():
    q = np.array([[0.9, 0.85, 0.2], [0.5, 0.5, 0.5]])
    assert select(q, MODELS, [COST], {"cost": 0.0})[0].tolist() == [
        0,
        2,
    ]  # tie -> cheapest
    assert select(q, MODELS, [COST], {"cost": 0.2})[0].tolist() == [1, 2]
    assert select(q, MODELS, [COST], {"cost": 5.0})[0].tolist() == [2, 2]
    assert select(q, MODELS, [COST], {"cost": -5.0})[0].tolist() == [
        0,
        0,
    ]  # rewards cost
    size = Constraint("size", {"big": 70, "coder": 7, "small": 1})
    idx, util = select(q, MODELS, [COST, size], {"cost": 0.0, "size": 1.0})
    assert idx.tolist() == [1, 2] and util.shape == (2, 3)
    with pytest.raises(ValueError, match=r"quality must be \(n_queries, 3\)"):
        select(q[:, :2], MODELS, [COST], {})


def test_breakpoints_cover_both_ends_of_the_sweep():
    q = np.array([[0.9, 0.85, 0.2]])
    lam = lambda_breakpoints(q, COST.vector(MODELS))
    first = select(q, MODELS, [COST], {"cost": float(lam[0])})[0][0]
    last = select(q, MODELS, [COST], {"cost": float(lam[-1])})[0][0]
    assert (first, last) == (0, 2)  # costliest at the low end, cheapest at the high end


# --------------------------------------------------------------------------- zooter parts
def test_tag_smoothing_and_targets():
    r = np.array([[1.0, np.nan], [0.0, 1.0], [0.5, 0.5]])
    s = smooth_by_tag(r, ["a", "a", None], beta=0.3)
    assert s[0, 0] == pytest.approx(0.7 * 1 + 0.3 * 0.5) and np.isnan(s[0, 1])
    assert s[1].tolist() == pytest.approx([0.15, 1.0]) and s[2].tolist() == [0.5, 0.5]
    t = reward_targets(s, temperature=0.1)
    assert t[0].tolist() == [1.0, 0.0] and np.allclose(t.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="beta"):
        smooth_by_tag(r, None, beta=1.5)
    with pytest.raises(ValueError, match="temperature"):
        reward_targets(r, temperature=0.0)
    with pytest.raises(ValueError, match="no reward for any model"):
        reward_targets(np.array([[np.nan, np.nan]]))
    with pytest.raises(ValueError, match="got 1 tags for 3 queries"):
        smooth_by_tag(r, ["a"])


def test_kmeans_tags_group_similar_queries():
    from routellm_core.encoders import get_encoder

    emb = get_encoder().encode([HARD[0], HARD[0], EASY[0], HARD[0], EASY[0]])
    tags = kmeans_tags(emb, 2, seed=0)
    assert tags[0] == tags[1] == tags[3] != tags[2] == tags[4]
    assert tags[0].startswith("cluster-")
    with pytest.raises(ValueError, match="n_clusters must be in"):
        kmeans_tags(emb, 6)


# --------------------------------------------------------------------------- routers
@pytest.mark.parametrize("kind", ["quality", "zooter"])
def test_routers_learn_the_pool_and_trade_quality_for_cost(routers, kind):
    router = routers[kind]
    texts = list(NEW.values())
    q = router.predict_quality(texts)
    assert q.shape == (3, 3) and np.isfinite(q).all()
    at_zero = [d.model for d in router.route(texts, lambdas={"cost": 0.0})]
    assert at_zero[0] == "big"  # maths needs the big model
    cheap = router.route(texts, lambdas={"cost": 0.4})
    assert [d.model for d in cheap] == ["big", "coder", "small"]
    d = cheap[2]
    assert (
        set(d.scores) == set(MODELS) and d.lambdas == {"cost": 0.4} and d.router == kind
    )
    assert d.utilities["small"] == pytest.approx(d.scores["small"] - 0.4 * 0.05)
    assert d.as_metadata()["routellm_model"] == "small" and d.route == "small"
    everything_cheap = router.route(texts, lambdas={"cost": 100.0})
    assert {x.model for x in everything_cheap} == {"small"}


def test_zooter_scores_are_a_distribution(routers):
    assert np.allclose(
        routers["zooter"].predict_quality(["Hi!", "Prove it."]).sum(axis=1), 1.0
    )


def test_select_among_a_subset_and_bad_input(routers):
    router = routers["quality"]
    d = router.route([NEW["hard"]], models=["coder", "small"], lambdas={"cost": 0.0})[
        0
    ]
    assert d.model in ("coder", "small") and set(d.scores) == {"coder", "small"}
    with pytest.raises(UnknownModelError, match="model 'gpt-9' is unknown"):
        router.route(["hi"], models=["big", "gpt-9"])
    with pytest.raises(ValueError, match="empty sequence"):
        router.route([])
    with pytest.raises(TypeError, match="single string"):
        router.predict_quality("hi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="text 1 is empty"):
        router.predict_quality(["hi", "  "])
    with pytest.raises(ValueError, match="unknown constraint 'latency'"):
        router.route(["hi"], lambdas={"latency": 1.0})
    with pytest.raises(ValueError, match="lists a model twice"):
        router.route(["hi"], models=["big", "big"])


def test_unfitted_and_bad_training_data():
    with pytest.raises(NotFittedError, match="not trained"):
        QualityRouter().route(["hi"])
    m = pool_matrix()
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        QualityRouter(**FAST).fit(ScoreMatrix(m.queries, MODELS, m.scores * 5))
    with pytest.raises(TypeError, match="needs a ScoreMatrix"):
        QualityRouter(**FAST).fit(m.scores)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has no task labels"):
        ZooterRouter(**FAST).fit(ScoreMatrix(m.queries, MODELS, m.scores))
    with pytest.raises(ValueError, match="tags must be one of"):
        ZooterRouter(tags="topics", **FAST).fit(m)
    with pytest.raises(KeyError, match="no value for"):
        QualityRouter(**FAST).fit(m, constraints=[Constraint("cost", {"big": 1.0})])


def test_zooter_with_kmeans_tags_and_data_costs():
    m = pool_matrix()
    m = ScoreMatrix(
        m.queries, MODELS, m.scores, costs=np.tile([1.0, 0.3, 0.05], (len(m), 1))
    )
    router = ZooterRouter(tags="kmeans", n_clusters=3, **FAST).fit(m)
    assert sum(router.tag_counts_.values()) == len(m) and len(router.tag_counts_) == 3
    assert router.constraint("cost").values == pytest.approx(
        {"big": 1.0, "coder": 0.3, "small": 0.05}
    )
    with pytest.raises(KeyError, match="no constraint 'size'"):
        router.constraint("size")


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("kind", ["quality", "zooter"])
def test_checkpoint_round_trip(routers, tmp_path, kind):
    router = routers[kind]
    save_router(router, tmp_path / kind, card={"command": "pytest"})
    loaded = load_nway_router(tmp_path / kind)
    assert type(loaded) is type(router) and loaded.known_models == MODELS
    texts = list(NEW.values())
    assert np.array_equal(loaded.predict_quality(texts), router.predict_quality(texts))
    assert (
        loaded.constraints_ == router.constraints_
        and loaded.card_["command"] == "pytest"
    )
    assert "models routed among" in (tmp_path / kind / "README.md").read_text()
    assert type(load_router(tmp_path / kind)) is type(router)


def test_broken_checkpoints_are_refused(routers, tmp_path):
    out = save_router(routers["quality"], tmp_path / "q")
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_nway_router(out)
    with pytest.raises(
        CheckpointError, match="strong/weak router, not an N-way router"
    ):
        load_nway_router(DEFAULT_DIR)
    with pytest.raises(CheckpointError):
        load_nway_router(tmp_path / "missing")


def test_checkpoint_whose_weights_do_not_fit_is_refused(routers, tmp_path):
    out = save_router(routers["quality"], tmp_path / "q")
    config = json.loads((out / "config.json").read_text())
    config["state"]["models"] = ["big", "small"]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="wrong number of outputs"):
        load_nway_router(out)


# --------------------------------------------------------------------------- evaluation
def test_upper_hull_and_aiq():
    assert upper_hull([(0, 0.2), (1, 0.3), (2, 0.9), (3, 0.8)]) == [
        (0.0, 0.2),
        (2.0, 0.9),
    ]
    assert aiq([(0, 0.0), (1, 1.0)], 0, 1) == pytest.approx(0.5)
    assert aiq([(0, 0.0), (1, 1.0)], 0, 2) == pytest.approx(
        0.75
    )  # flat after the last point
    with pytest.raises(ValueError, match="c_max > c_min"):
        aiq([(0, 0.0)], 1, 1)


def test_evaluation_of_a_perfect_and_an_inverted_predictor():
    rng = np.random.default_rng(0)
    scores = (rng.random((300, 3)) < [0.8, 0.6, 0.4]).astype(float)
    costs = np.array([1.0, 0.3, 0.05])
    good = evaluate_nway(scores, MODELS, costs, predicted=scores, cost_vector=costs)
    assert good["above_random_everywhere"] and good["reaches_best_single_at_lower_cost"]
    assert good["aiq"] > good["random_aiq"] and good["aiq"] == pytest.approx(
        good["oracle_aiq"]
    )
    assert good["best_single_model"]["name"] == "big"
    assert good["single_models"]["small"]["cost"] == pytest.approx(0.05)
    bad = evaluate_nway(scores, MODELS, costs, predicted=1 - scores, cost_vector=costs)
    assert not bad["above_random_everywhere"] and bad["aiq"] < good["aiq"]
    assert bad["min_margin_vs_random"] < 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scores": np.full((2, 3), np.nan)}, "NaN"),
        ({"predicted": np.zeros((2, 2))}, "predicted has shape"),
        ({"cost_vector": [1.0]}, "cost_vector must have 3 values"),
        ({"costs": np.array([1.0, np.inf, 0.0])}, "costs contain NaN"),
        ({"models": ["a", "b"]}, r"scores must be \(n_queries, 2\)"),
    ],
)
def test_evaluation_rejects_bad_input(kwargs, match):
    args = {
        "scores": np.ones((2, 3)),
        "models": MODELS,
        "costs": np.ones(3),
        "predicted": np.ones((2, 3)),
        "cost_vector": np.ones(3),
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        evaluate_nway(args.pop("scores"), args.pop("models"), args.pop("costs"), **args)


def test_plot(tmp_path):
    from routellm_core.nway.evaluation import plot_nway

    scores = np.array([[1, 0, 0], [1, 1, 1], [0, 1, 0.0]])
    r = evaluate_nway(
        scores,
        MODELS,
        np.array([1.0, 0.3, 0.05]),
        predicted=scores,
        cost_vector=[1, 0.3, 0.05],
    )
    assert plot_nway(r, tmp_path / "p.png", log_cost=True).stat().st_size > 0
    with pytest.raises(ValueError, match="result lacks"):
        plot_nway({"curve": []}, tmp_path / "x.png")


# --------------------------------------------------------------------------- command line
def test_cli_train_eval_route(tmp_path, capsys, monkeypatch):
    from routellm_core.cli import main
    from routellm_core.data.specs import DATA_DIR_ENV

    m = pool_matrix()
    data = tmp_path / "pool.json"
    data.write_text(
        json.dumps(
            [
                {"question": q, "scores": dict(zip(MODELS, s.tolist()))}
                for q, s in zip(m.queries, m.scores)
            ]
        )
    )
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps({"big": [10, 10], "coder": [3, 3], "small": [0.5, 0.5]})
    )
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    out = tmp_path / "router"
    params = [f"--param={k}={v}" for k, v in FAST.items()]
    assert (
        main(
            [
                "nway",
                "train",
                "--router",
                "quality",
                "--data",
                f"gold:{data}",
                "--out",
                str(out),
                "--prices",
                "{data}/prices.json",  # the card keeps the spec, not this machine's path
                "--no-decontaminate",
                "--no-cache",
                "--quiet",
                *params,
            ]
        )
        == 0
    )
    assert "constraints ['cost']" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["card"]["prices"] == "{data}/prices.json"
    assert (
        main(
            [
                "nway",
                "eval",
                "--router",
                str(out),
                "--data",
                f"gold:{data}",
                "--no-cache",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "AIQ: quality" in printed and "best single model big" in printed
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["n_queries"] == 30 and result["cost_unit"] == "$ per call"
    assert (
        main(
            [
                "nway",
                "route",
                "Hello, how are you?",
                "--router",
                str(out),
                "--lambda",
                "cost=100",
                "--no-cache",
                "--json",
            ]
        )
        == 0
    )
    row = json.loads(capsys.readouterr().out)
    assert row["routellm_model"] == "small" and row["routellm_lambdas"] == {
        "cost": 100.0
    }
    assert (
        main(
            [
                "nway",
                "route",
                "hi",
                "--router",
                str(out),
                "--lambda",
                "cost",
                "--no-cache",
            ]
        )
        == 2
    )
    assert "expects NAME=WEIGHT" in capsys.readouterr().err
    assert (
        main(
            [
                "nway",
                "train",
                "--router",
                "quality",
                "--data",
                f"arena:{data}",
                "--out",
                str(tmp_path / "x"),
                "--no-decontaminate",
                "--no-cache",
            ]
        )
        == 2
    )
    assert "use 'gold:PATH' or 'judge:PATH'" in capsys.readouterr().err


def test_public_surface_is_sorted_and_light():
    import subprocess
    import sys

    from routellm_core import nway

    assert list(nway.__all__) == sorted(nway.__all__)
    assert all(hasattr(nway, name) for name in nway.__all__)
    code = (
        "import sys, routellm_core.nway, routellm_core.nway.evaluation, routellm_core.routing; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'sklearn', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_embedded_default_is_a_real_llmrouter_pool_router():
    router = load_nway_router("default")
    assert router.router_type == "quality" and len(router.known_models) == 9
    assert [c.name for c in router.constraints_] == ["cost", "size"]
    assert (
        router.constraint("cost").values["gemma-2-9b-it"]
        < router.constraint("cost").values["llama3-chatqa-1.5-70b"]
    )
    assert "MIT (LLMRouter)" in json.dumps(router.card_["data"])
    assert (
        "holdout" in router.card_
        and "dcrouter_preprocessed__test.json" in router.card_["holdout"][0]
    )


def test_readme_python_example_runs_as_written():
    from tests.readme_snippets import section_code

    code = section_code("Routers", doc="docs/nway.md")[0]
    namespace: dict = {}
    exec(compile(code, "README N-way example", "exec"), namespace)  # noqa: S102 - the README block
    assert namespace["d"].model in namespace["router"].known_models


def test_hub_ids_fail_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="could not fetch router 'no-such-org/no-such-nway-router'"):
        load_nway_router("hf://no-such-org/no-such-nway-router")
