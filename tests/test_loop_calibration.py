"""Calibration follows the router (issue 26): every router ``routellm train`` writes carries a
calibration table fitted to the traffic it will serve, ``--init`` refits it, ``routellm promote``
refuses a candidate without one, and ``swap_router`` refuses a router that the model's own
settings could not route with, keeping the old router.

The router is real in every test (the embedded default, or checkpoints trained here from it);
only the chat models behind it are fakes.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routellm_core.checkpoints import load_router, save_router
from routellm_core.cli import main
from routellm_core.encoder_probe import EncoderMismatchError
from routellm_core.learning import TrafficStore
from routellm_core.routing import Decision, shared_router

STRONG, WEAK = "gpt-4o", "gpt-4o-mini"
ALIASES = ["--alias", f"{STRONG}=gpt-4-1106-preview", "--alias", f"{WEAK}=mixtral-8x7b-instruct-v0.1"]
SHARE_TOLERANCE = 0.05
PROBE_REFUSAL = r"cannot route: scoring the probe text .* embeds its probe texts .* edited or are corrupt"


# --------------------------------------------------------------------------- traffic
def traffic_prompts() -> tuple[list[str], list[str]]:
    """200 distinct, varied prompts of an app's traffic: 100 hard (proofs, code, equations) and
    100 easy (greetings, notes, pets)."""
    proofs = ["the square root of 3 is irrational", "there are infinitely many primes of the form 4k+3",
              "every finite group of prime order is cyclic", "the harmonic series diverges",
              "a continuous function on [0,1] attains its maximum", "the sum of the first n odd numbers is n^2",
              "e is irrational", "the determinant of a product is the product of the determinants",
              "the Cauchy-Schwarz inequality holds in R^n", "the eigenvalues of a symmetric matrix are real"]
    code = ["merges k sorted linked lists", "finds the longest palindromic substring",
            "computes shortest paths in a weighted graph", "parses arithmetic expressions with precedence",
            "detects a cycle in a directed graph", "serializes a binary tree to a string", "implements an LRU cache",
            "solves the N-queens problem", "computes the edit distance of two strings",
            "rebalances an AVL tree after an insertion"]
    equations = ["3x + 7 = 22", "x^2 - 5x + 6 = 0", "2^x = 64", "log(x) + log(x - 3) = 1", "sin(x) = 1/2 on [0, 2pi]",
                 "x^3 = 27", "|x - 4| = 9", "e^(2x) = 5", "x/3 + x/4 = 14", "sqrt(x + 5) = x - 1"]
    people = ["Anna", "my neighbour Tom", "the team", "grandma", "my friend Li", "our new colleague", "Sam",
              "the kids", "my sister", "Mr. Patel"]
    pets = ["cat", "goldfish", "puppy", "parrot", "hamster", "turtle", "rabbit", "pony", "hedgehog", "bunny"]
    hard_templates = [
        ("Prove that {}.", proofs), ("Derive step by step why {}.", proofs),
        ("Give a rigorous proof that {}.", proofs), ("Is it true that {}? Justify your answer.", proofs),
        ("Write a Python function that {}.", code), ("Write C++ code that {}.", code),
        ("Write a Rust function that {}.", code), ("Explain the time complexity of an algorithm that {}.", code),
        ("Solve for x: {}.", equations), ("Explain how to solve {} and check the answer.", equations)]
    easy_templates = [
        ("Say hi to {}.", people), ("Write a short thank-you note to {}.", people),
        ("Wish {} a happy birthday.", people), ("Say goodbye to {}.", people),
        ("Write a friendly greeting for {}.", people), ("Tell {} good morning.", people),
        ("What is a nice name for a {}?", pets), ("Tell me a fun fact about a {}.", pets),
        ("Is a {} a good pet for a child?", pets), ("What does a {} eat?", pets)]
    hard = [t.format(v) for t, values in hard_templates for v in values]
    easy = [t.format(v) for t, values in easy_templates for v in values]
    assert len(set(hard + easy)) == 200
    return hard, easy


def build_store(db: Path, *, calls: int = 200, labels: int = 71) -> list[str]:
    """A traffic store with ``calls`` captured calls (plus a repeated and a blank query, which
    calibration leaves out) and ``labels`` labelled battles of the strong (model_a) and the
    weak model: the strong one wins the hard prompts, the easy ones are ties. Returns the
    distinct captured queries."""
    hard, easy = traffic_prompts()
    every = [q for pair in zip(hard, easy) for q in pair]  # interleaved: any prefix mixes both
    queries = every[:calls]
    store = TrafficStore(db)
    decision = Decision(route="weak", model=WEAK, router="default", rule="threshold",
                        models={"strong": STRONG, "weak": WEAK}, reference="strong", win_rate=0.4, threshold=0.5)
    for q in [*queries, *queries[:1], "   "]:
        store.add_call(str(uuid.uuid4()), query=q, decision=decision, source="langchain")
    labelled = every[:: max(1, len(every) // labels)][:labels]
    for q in labelled:
        store.add_battle(query=q, model_a=STRONG, model_b=WEAK, winner="a" if q in hard else "tie", source="label")
    store.close()
    return queries


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def strong_share(decisions: list[Any]) -> float:
    return float(np.mean([d == "strong" for d in decisions]))


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> dict[str, Any]:
    """The README's loop: captured traffic and 71 labels in a store, ``train --init default
    --holdout 0.2``, ``promote --to LIVE``."""
    root = tmp_path_factory.mktemp("loop")
    db = root / "traffic.db"
    queries = build_store(db)
    candidate, live = root / "A", root / "live"
    train = run_cli(["train", "--router", "sw_ranking", "--data", f"store:{db}", "--init", "default", *ALIASES,
                     "--holdout", "0.2", "--no-decontaminate", "--out", str(candidate), "--quiet"])
    assert train[0] == 0, train
    promote = run_cli(["promote", "--candidate", str(candidate), "--current", "default", "--data", f"store:{db}",
                       "--to", str(live), "--tolerance", "1", "--bootstrap", "50", "--quiet"])
    assert promote[0] == 0 and (live / "config.json").exists(), promote
    return {"db": db, "queries": queries, "candidate": candidate, "live": live, "train_out": train[1],
            "promote_out": promote[1]}


@pytest.fixture(scope="module")
def uncalibrated(tmp_path_factory) -> Path:
    """A trained sw_ranking checkpoint without a calibration table (as train wrote them before)."""
    from routellm_core.routers import SWRankingRouter
    from tests.routing_fixtures import toy_battles

    router = SWRankingRouter(strong_model="big-model", weak_model="small-model", n_tiers=2).fit(toy_battles())
    assert router.calibration_ is None
    return save_router(router, tmp_path_factory.mktemp("nocal") / "ckpt")


@pytest.fixture(scope="module")
def edited_probe(tmp_path_factory) -> Path:
    """A calibrated checkpoint whose config.json encoder probe vectors were edited (config.json
    has no hash of its own: it loads, and the probe is checked when the encoder is first used)."""
    from routellm_core.routers import SWRankingRouter
    from tests.routing_fixtures import EASY, HARD, toy_battles

    router = SWRankingRouter(strong_model="big-model", weak_model="small-model", n_tiers=2).fit(toy_battles())
    router.calibrate([*HARD, *EASY], source="fixtures")
    path = save_router(router, tmp_path_factory.mktemp("probe") / "ckpt")
    config = json.loads((path / "config.json").read_text())
    config["encoder_probe"]["embeddings"] = [[-x for x in row] for row in config["encoder_probe"]["embeddings"]]
    (path / "config.json").write_text(json.dumps(config))
    load_router(path)  # it loads: the edit shows at the first use of the encoder
    return path


# --------------------------------------------------------------------------- train
def test_train_from_a_store_calibrates_on_its_captured_queries(tmp_path):
    db = tmp_path / "traffic.db"
    queries = build_store(db, calls=180)
    code, out, err = run_cli(["train", "--router", "sw_ranking", "--data", f"store:{db}", "--holdout", "0.2",
                              "--no-decontaminate", "--param", "n_tiers=2", "--out", str(tmp_path / "mine"), "--quiet"])
    assert code == 0, err
    assert f"calibrated on 180 captured queries of store:{db}" in out
    router = load_router(tmp_path / "mine")
    table = router.calibration_
    assert table is not None and table.source == f"store:{db}" and table.n_prompts == 180
    assert router.card_["calibration"]["source"] == f"store:{db}" and router.card_["calibration"]["n_prompts"] == 180
    rates = router.win_rate(queries)  # the shares the table gives on its prompts are on the card
    for f, share in router.card_["calibration"]["strong_share"].items():  # (win rates near 1 tie here)
        assert share == pytest.approx(float(np.mean(rates >= table.threshold_for(float(f)))), abs=0.02)


def test_train_with_few_captured_queries_calibrates_on_the_training_queries_not_the_held_out(tmp_path):
    from routellm_core.learning.promote import holdout_mask

    db = tmp_path / "traffic.db"
    build_store(db, calls=10, labels=200)
    code, out, err = run_cli(["train", "--router", "sw_ranking", "--data", f"store:{db}", "--holdout", "0.2",
                              "--no-decontaminate", "--param", "n_tiers=2", "--out", str(tmp_path / "mine"), "--quiet"])
    assert code == 0, err
    router = load_router(tmp_path / "mine")
    card = router.card_
    labelled = sorted(set(TrafficStore(db).battles()["query"]))
    kept = [q for q, held in zip(labelled, holdout_mask(labelled, 0.2, seed=0)) if not held]
    assert card["calibration"]["prompts"] == "training queries"
    assert card["calibration"]["n_prompts"] == router.calibration_.n_prompts == len(kept) == card["queries"] < 200
    assert f"calibrated on {len(kept)} training queries of store:{db}" in out


def test_train_init_recalibrates_the_updated_router(loop):
    router = load_router(loop["candidate"])
    default = shared_router("default")
    table = router.calibration_
    assert table is not None and table.thresholds != default.calibration_.thresholds
    assert table.source == f"store:{loop['db']}" and table.n_prompts == 200
    rates = router.win_rate(loop["queries"])
    for f in (0.1, 0.3, 0.5):
        assert abs(float(np.mean(rates >= table.threshold_for(f))) - f) <= SHARE_TOLERANCE, f
    share = router.card_["calibration"]["strong_share_at_0.5"]
    assert abs(share["new_table"] - 0.5) <= SHARE_TOLERANCE
    # the default's table, kept, sent most of this traffic strong after the update
    assert share["old_table"] > 0.5 + 4 * SHARE_TOLERANCE
    assert float(np.mean(rates >= default.calibration_.threshold_for(0.5))) == pytest.approx(share["old_table"])
    assert (f"calibrated on 200 captured queries of store:{loop['db']}; strong_fraction 0.5 sends "
            f"{share['old_table']:.0%} of them strong with the table of default, "
            f"{share['new_table']:.0%} with the new one") in loop["train_out"]


# --------------------------------------------------------------------------- promote
def test_promote_refuses_a_candidate_without_a_calibration_table(loop, tmp_path):
    router = load_router(loop["candidate"])
    router.calibration_ = None
    bare = save_router(router, tmp_path / "bare", card=router.card_)
    code, out, err = run_cli(["promote", "--candidate", str(bare), "--current", "default", "--data",
                              f"store:{loop['db']}", "--to", str(tmp_path / "live"), "--tolerance", "1",
                              "--bootstrap", "20", "--quiet"])
    assert code == 2 and not (tmp_path / "live").exists()
    assert f"the candidate {bare} has no calibration table" in err
    assert f"routellm calibrate --router {bare} --prompts" in err and "--write" in err


# --------------------------------------------------------------------------- construction and swap_router
def test_a_strong_fraction_model_refuses_an_uncalibrated_router_at_construction(uncalibrated):
    from langchain_routellm import ChatRouteLLM
    from llamaindex_routellm import RouteLLM
    from tests.langchain.fake_models import FakeToolChatModel
    from tests.llamaindex.fakes import FakeLLM

    lc = {"strong": FakeToolChatModel(model_name="fake-strong"), "weak": FakeToolChatModel(model_name="fake-weak")}
    li = {"strong": FakeLLM(model="fake-strong"), "weak": FakeLLM(model="fake-weak")}
    for make, models in ((ChatRouteLLM, lc), (RouteLLM, li)):
        with pytest.raises(ValueError, match=r"has no calibration table, so strong_fraction=0.5 cannot"):
            make(**models, router=str(uncalibrated), strong_fraction=0.5)
        with pytest.raises(ValueError, match="has no calibration table"):
            make(**models, router=load_router(uncalibrated), strong_fraction=0.5)
        assert make(**models, router=str(uncalibrated), threshold=0.5).route("Hi there!").route in ("strong", "weak")


def _langchain(router: Any = None, **setting: float) -> Any:
    from langchain_routellm import ChatRouteLLM
    from tests.langchain.fake_models import FakeToolChatModel

    return ChatRouteLLM(strong=FakeToolChatModel(model_name=STRONG), weak=FakeToolChatModel(model_name=WEAK),
                        router=router, **setting)


def _llamaindex(router: Any = None, **setting: float) -> Any:
    from llamaindex_routellm import RouteLLM
    from tests.llamaindex.fakes import FakeLLM

    return RouteLLM(strong=FakeLLM(model=STRONG), weak=FakeLLM(model=WEAK), router=router, **setting)


def test_langchain_swap_router_refuses_what_its_calls_would_fail_on(uncalibrated, edited_probe):
    llm = _langchain(strong_fraction=0.3)
    q = "Prove that the harmonic series diverges."
    expected = float(shared_router("default").win_rate([q])[0])
    with pytest.raises(ValueError, match=r"has no calibration table, so strong_fraction=0.3 cannot"):
        llm.swap_router(str(uncalibrated))
    with pytest.raises(EncoderMismatchError, match=PROBE_REFUSAL):
        llm.swap_router(str(edited_probe))
    for _ in range(3):                                                 # the old router keeps routing
        assert llm.route(q).win_rate == pytest.approx(expected) and not llm.route(q).router_failed
        assert llm.invoke(q).response_metadata["routellm_router_failed"] is False
    by_threshold = _langchain(threshold=0.5)
    by_threshold.swap_router(str(uncalibrated))                        # a threshold needs no table
    assert not by_threshold.route("Hi there!").router_failed


def test_llamaindex_swap_router_refuses_what_its_calls_would_fail_on(uncalibrated, edited_probe):
    llm = _llamaindex(strong_fraction=0.3)
    q = "Prove that the harmonic series diverges."
    expected = float(shared_router("default").win_rate([q])[0])
    with pytest.raises(ValueError, match=r"has no calibration table, so strong_fraction=0.3 cannot"):
        llm.swap_router(str(uncalibrated))
    with pytest.raises(EncoderMismatchError, match=PROBE_REFUSAL):
        llm.swap_router(str(edited_probe))
    for _ in range(3):
        d = llm.route(prompt=q)
        assert d.win_rate == pytest.approx(expected) and not d.router_failed
        assert llm.complete(q).text
    by_threshold = _llamaindex(threshold=0.5)
    by_threshold.swap_router(str(uncalibrated))
    assert not by_threshold.route(prompt="Hi there!").router_failed


# --------------------------------------------------------------------------- the loop, end to end
def test_the_readme_loop_routes_the_asked_share_strong_after_promote_and_swap(loop):
    queries, live = loop["queries"], str(loop["live"])

    def routes(llm: Any) -> list[str]:
        return [m.response_metadata["routellm_route"] for m in llm.batch(queries)]

    fresh = _langchain(live, strong_fraction=0.3)
    assert abs(strong_share(routes(fresh)) - 0.3) <= SHARE_TOLERANCE
    swapped = _langchain(strong_fraction=0.3)
    before = routes(swapped)
    swapped.swap_router(live)
    after = routes(swapped)
    assert abs(strong_share(after) - 0.3) <= SHARE_TOLERANCE and not fresh.route(queries[0]).router_failed
    assert after != before

    # promote said what each router's strong_fraction settings do on the held-out traffic
    line = next(x for x in loop["promote_out"].splitlines() if x.startswith("strong share on the"))
    shares = [float(v) for v in line.split("candidate ")[1].split(" / ")]
    assert len(shares) == 3 and shares == sorted(shares) and "current " in line

    li = _llamaindex(strong_fraction=0.5)
    li.swap_router(live)
    decisions = [li.route(prompt=q) for q in queries]
    assert not any(d.router_failed for d in decisions)
    assert abs(strong_share([d.route for d in decisions]) - 0.5) <= SHARE_TOLERANCE
