"""The two fine-tuned classifier routers: BERT (real all-MiniLM-L6-v2) and causal LLM (a tiny Llama
built here from a config, with the MiniLM tokenizer; nothing is downloaded)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routellm_core.checkpoints import CheckpointError, load_router, save_router
from routellm_core.data.schema import make_battles
from routellm_core.routers import ROUTERS, NonFiniteScoreError, NotFittedError, UnknownModelError
from routellm_core.routers._torch_loop import classifier_examples
from routellm_core.routers.bert import BertClassifierRouter, default_bert_path
from routellm_core.routers.causal_llm import LABEL_TOKENS, CausalLLMRouter
from routellm_core.routing import Pool, RouterFailure
from tests.routing_fixtures import EASY, HARD, toy_battles

PAIR = {"strong_model": "big-model", "weak_model": "small-model"}
FAST = {"val_fraction": 0.0, "eval_every": 4, "patience": 100, "max_length": 24}
PROBES = ["Prove that 7 is prime.", "Hello, how are you?", "Integrate x^2 from 0 to 3."]


def _loss_fell(router) -> bool:
    losses = [h["train_loss"] for h in router.history_]
    return np.mean(losses[-2:]) < losses[0]


# ------------------------------------------------------------------------ labels
def test_battles_become_soft_labels_relative_to_the_higher_rated_model():
    ex = classifier_examples(toy_battles())
    # mid-model beats big-model on small talk, so over all battles it is rated highest
    assert ex.ratings["mid-model"] > ex.ratings["big-model"] > ex.ratings["small-model"]
    hard = ex.queries.index(
        HARD[0]
    )  # big>small, mid>small: higher-rated wins; big>mid: lower
    np.testing.assert_allclose(ex.targets[hard], [2 / 3, 0.0, 1 / 3])
    easy = ex.queries.index(
        EASY[0]
    )  # small>big: lower wins; mid=small: tie; mid>big: higher
    np.testing.assert_allclose(ex.targets[easy], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(ex.targets.sum(axis=1), 1.0)
    assert ex.n_battles == 60 and np.isclose(ex.weights.mean(), 1.0)


def test_router_pairs_keep_only_the_routers_pair_and_weights_count():
    battles = toy_battles()
    ex = classifier_examples(battles, pairs="router", **PAIR)
    assert ex.n_battles == 20
    w = np.ones(len(battles))
    w[0] = 0.0  # the first battle (HARD[0], strong vs weak) no longer counts
    ex = classifier_examples(battles, sample_weight=w, pairs="router", **PAIR)
    assert HARD[0] not in ex.queries
    with pytest.raises(ValueError, match="holds none"):
        classifier_examples(
            battles, pairs="router", strong_model="gpt-4", weak_model="small-model"
        )
    with pytest.raises(ValueError, match="pairs must be one of"):
        classifier_examples(battles, pairs="some")
    with pytest.raises(ValueError, match="zero battles"):
        classifier_examples(make_battles([]))


def test_both_routers_are_registered():
    assert (
        ROUTERS["bert"] is BertClassifierRouter
        and ROUTERS["causal_llm"] is CausalLLMRouter
    )


# ------------------------------------------------------------------------ BERT
@pytest.fixture(scope="module")
def bert() -> BertClassifierRouter:
    router = BertClassifierRouter(**PAIR, **FAST, epochs=4, batch_size=8, lr=1e-4)
    return router.fit(toy_battles())


def test_bert_loss_falls_and_it_learns_which_queries_need_the_strong_model(bert):
    assert _loss_fell(bert), bert.history_
    rates = bert.win_rate(HARD + EASY)
    assert rates[: len(HARD)].mean() > rates[len(HARD) :].mean() + 0.1
    assert rates.dtype == np.float64 and ((rates >= 0) & (rates <= 1)).all()


@pytest.mark.parametrize(
    "key, value, why",
    [
        ("vocab_size", 15_000_000, "larger than anything the weights hold"),
        ("vocab_size", 2_000_000_000, "larger than anything the weights hold"),
        ("num_hidden_layers", 100_000, "larger than anything the weights hold"),
        ("intermediate_size", 1000, r"has shape \(1536, 384\) in the weights but \(1000, 384\)"),
        ("hidden_size", "384", "must be a non-negative integer"),
    ],
)
def test_a_config_that_does_not_fit_the_weights_is_refused_before_building(bert, tmp_path, key, value, why):
    """A 2 KB config must not make the loader allocate gigabytes: the sizes are checked
    against the weights (and shapes on the meta device) before any model is built."""
    import time
    import tracemalloc

    path = save_router(bert, tmp_path / "bert")
    config = json.loads((path / "config.json").read_text())
    config["state"]["hf_config"][key] = value
    (path / "config.json").write_text(json.dumps(config))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(CheckpointError, match=why):
            load_router(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 30 and peak < 500 * 2**20


def test_bert_checkpoint_round_trip_gives_identical_win_rates(bert, tmp_path):
    save_router(bert, tmp_path / "bert")
    config = json.loads((tmp_path / "bert" / "config.json").read_text())
    assert "model.safetensors" in config["files"]
    assert any(name.startswith("tokenizer/") for name in config["files"])
    loaded = load_router(tmp_path / "bert")
    assert isinstance(loaded, BertClassifierRouter)
    np.testing.assert_array_equal(loaded.win_rate(PROBES), bert.win_rate(PROBES))
    assert loaded.known_models == bert.known_models and loaded.history_ == bert.history_


def test_bert_rejects_bad_input(bert):
    with pytest.raises(ValueError, match="empty"):
        bert.win_rate([])
    with pytest.raises(ValueError, match="empty or whitespace"):
        bert.win_rate(["ok", "  "])
    with pytest.raises(TypeError, match="single string"):
        bert.win_rate("Prove it.")
    with pytest.raises(UnknownModelError, match="gpt-5"):
        bert.win_rate(["hi"], strong_model="gpt-5")
    with pytest.raises(NotFittedError, match="not trained"):
        BertClassifierRouter().win_rate(["hi"])


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("epochs", 0, "epochs must be a positive integer"),
        ("lr", -1.0, "lr must be a positive number"),
        ("max_length", 0, "max_length must be a positive integer"),
        ("val_fraction", 1.0, r"val_fraction must be in \[0, 1\)"),
        ("pairs", "any", "pairs must be one of"),
        ("max_train_examples", 1, "max_train_examples must be"),
    ],
)
def test_invalid_training_parameters_are_named(param, value, message):
    with pytest.raises(ValueError, match=message):
        BertClassifierRouter(**PAIR, **{param: value}).fit(toy_battles())


def test_unknown_base_model_offline_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match="could not load the BERT base model 'nobody/no-such-model'.*HF_HUB_OFFLINE",
    ):
        BertClassifierRouter(**PAIR, base_model="nobody/no-such-model").fit(
            toy_battles()
        )
    with pytest.raises(ValueError, match="GGUF file"):
        CausalLLMRouter(**PAIR, base_model="missing.gguf").fit(toy_battles())


def test_corrupted_or_incomplete_checkpoints_are_refused(bert, tmp_path):
    path = save_router(bert, tmp_path / "bert")
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_router(path)
    path = save_router(bert, tmp_path / "bert2")
    next((path / "tokenizer").iterdir()).unlink()
    with pytest.raises(CheckpointError, match="tokenizer/"):
        load_router(path)


# ------------------------------------------------------------------------ causal LLM
def _tiny_causal_lm(path, chat_template: bool) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(default_bert_path())
    if chat_template:
        tok.chat_template = (
            "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<assistant> {% endif %}"
        )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    _tiny_causal_lm(root / "tiny-llama", chat_template=False)
    _tiny_causal_lm(root / "tiny-chat", chat_template=True)
    return root


@pytest.fixture(scope="module")
def causal(tiny_lm_dir):
    # a checkpoint may not name paths outside itself, so the base is given relative to the cwd
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tiny_lm_dir)
        router = CausalLLMRouter(
            **PAIR,
            **FAST,
            base_model="tiny-llama",
            lora_r=0,
            epochs=5,
            batch_size=4,
            lr=3e-3,
        )
        yield router.fit(toy_battles())


def _check_round_trip(router, tmp_path) -> None:
    rates = router.win_rate(PROBES)
    save_router(router, tmp_path / "ckpt")
    loaded = load_router(tmp_path / "ckpt")
    assert (
        isinstance(loaded, CausalLLMRouter)
        and loaded.label_token_ids_ == router.label_token_ids_
    )
    np.testing.assert_array_equal(loaded.win_rate(PROBES), rates)
    # batching (left padding, positions from the mask) does not change a query's score
    np.testing.assert_allclose(loaded.win_rate(PROBES[:1]), rates[:1], atol=1e-5)


def test_causal_llm_full_fine_tune_trains_saves_and_reloads_identically(
    causal, tmp_path
):
    assert _loss_fell(causal), causal.history_
    assert (
        causal.tokenizer_.convert_tokens_to_ids(list(LABEL_TOKENS))
        == causal.label_token_ids_
    )
    prompt = causal.prompts(["What is 2+2?"])[0]
    assert prompt.endswith("Query: What is 2+2?\nAnswer: ") and prompt.startswith(
        causal.instruction
    )
    assert (
        len(causal.prompts(["word " * 500])[0]) < len(causal.instruction) + 200
    )  # truncated
    _check_round_trip(causal, tmp_path)


def test_causal_llm_lora_with_a_chat_template(tiny_lm_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_lm_dir)
    router = CausalLLMRouter(
        **PAIR,
        **FAST,
        base_model="tiny-chat",
        lora_r=4,
        epochs=5,
        batch_size=4,
        lr=3e-3,
    ).fit(toy_battles())
    assert _loss_fell(router), router.history_
    prompt = router.prompts(["What is 2+2?"])[0]
    assert prompt == f"<system> {router.instruction}\n<user> What is 2+2?\n<assistant> "
    assert not any(
        "lora" in k for k in router._state()
    )  # adapters merged into plain weights
    _check_round_trip(router, tmp_path)
    _hostile_template_is_never_run(router, tmp_path / "hostile")


HOSTILE_TEMPLATE = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"


def _hostile_template_is_never_run(router, path):
    """A checkpoint whose chat template loops 10^10 times: loading it and scoring with it take
    as long as ever, because a loaded checkpoint never executes its template."""
    import hashlib
    import time

    save_router(router, path)
    planted = 0
    for file in sorted((path / "tokenizer").iterdir()):
        if file.name == "chat_template.jinja":
            file.write_text(HOSTILE_TEMPLATE)
            planted += 1
        elif file.name == "tokenizer_config.json":
            data = json.loads(file.read_text())
            if "chat_template" in data:
                data["chat_template"] = HOSTILE_TEMPLATE
                file.write_text(json.dumps(data))
                planted += 1
    assert planted, "the saved tokenizer holds no chat template to replace"
    config = json.loads((path / "config.json").read_text())
    for name in config["files"]:
        config["files"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / "config.json").write_text(json.dumps(config))
    start = time.perf_counter()
    loaded = load_router(path)
    np.testing.assert_allclose(loaded.win_rate(PROBES), router.win_rate(PROBES), atol=1e-6)
    assert time.perf_counter() - start < 60


def test_unusable_output_is_a_router_failure_for_the_callers_policy(causal, monkeypatch):
    """NaN logits or a model that raises: the router raises, touches none of its attributes,
    and the caller's failure policy routes and records ``router_failed``."""
    import torch

    before = {k: id(v) for k, v in vars(causal).items()}

    def nan_for_primes(self, texts):
        out = torch.zeros((len(texts), 3))
        out[[i for i, t in enumerate(texts) if "prime" in t]] = float("nan")
        return out

    # patched on the class: the router's own attributes stay as they are
    monkeypatch.setattr(CausalLLMRouter, "_label_logits", nan_for_primes)
    with pytest.raises(NonFiniteScoreError, match=r"router 'causal_llm' gave non-finite label "
                       r"logits for 1 of 3 queries: #0 'Prove that 7 is prime.'"):
        causal.win_rate(PROBES)
    assert {k: id(v) for k, v in vars(causal).items()} == before
    assert "failure_policy" not in causal.get_params() and not hasattr(causal, "failures_")

    pool = Pool.pair(causal, strong="s", weak="w", threshold=0.0)
    failed, fine = pool.route([PROBES[0], PROBES[1]])
    assert (failed.route, failed.router_failed, failed.error_type) == ("strong", True, "NonFiniteScoreError")
    assert (fine.router_failed, fine.route) == (False, "strong")  # one bad text fails alone
    weak = Pool.pair(causal, strong="s", weak="w", threshold=0.0, failure_policy="weak")
    assert weak.route([PROBES[0]])[0].route == "weak"

    def broken(self, texts):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(CausalLLMRouter, "_label_logits", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        causal.win_rate(PROBES[:1])
    d = pool.route(["Prove it."])[0]
    assert (d.route, d.router_failed, d.error_type) == ("strong", True, "RuntimeError")
    raising = Pool.pair(causal, strong="s", weak="w", threshold=0.5, failure_policy="raise")
    with pytest.raises(RouterFailure, match="failed while scoring 1 query: RuntimeError: out of memory"):
        raising.route(["Prove it."])
    assert {k: id(v) for k, v in vars(causal).items()} == before


def test_causal_llm_rejects_bad_parameters_and_input(causal, tiny_lm_dir, monkeypatch):
    monkeypatch.chdir(tiny_lm_dir)
    with pytest.raises(ValueError, match="lora_r must be a non-negative integer"):
        CausalLLMRouter(**PAIR, base_model="tiny-llama", lora_r=-1).fit(toy_battles())
    with pytest.raises(ValueError, match="instruction must be a non-empty string"):
        CausalLLMRouter(**PAIR, base_model="tiny-llama", instruction=" ").fit(
            toy_battles()
        )
    with pytest.raises(UnknownModelError, match="nobody"):
        causal.win_rate(["hi"], weak_model="nobody")
    with pytest.raises(TypeError, match="not str"):
        causal.win_rate([3])


def test_cli_trains_a_bert_router(tmp_path):
    from tests.test_cli import routellm

    data = tmp_path / "battles.jsonl"
    toy_battles().to_json(data, orient="records", lines=True)
    out = routellm(
        "train",
        "--router",
        "bert",
        "--data",
        f"jsonl:{data}",
        "--out",
        str(tmp_path / "ck"),
        "--no-decontaminate",
        "--param",
        "max_steps=2",
        "--param",
        "max_length=16",
        "--strong",
        "big-model",
        "--weak",
        "small-model",
        "--quiet",
        "--no-cache",
    )
    assert out.returncode == 0, out.stderr
    assert "wrote bert router" in out.stdout
    out = routellm(
        "route",
        "Prove it.",
        "--router",
        str(tmp_path / "ck"),
        "--threshold",
        "0.5",
        "--no-cache",
    )
    assert out.returncode == 0, out.stderr
    assert "win rate:" in out.stdout
    out = routellm(
        "train",
        "--router",
        "bert",
        "--data",
        f"jsonl:{data}",
        "--out",
        str(tmp_path / "x"),
        "--no-decontaminate",
        "--param",
        "epochs=0",
        "--strong",
        "big-model",
        "--weak",
        "small-model",
        "--quiet",
        "--no-cache",
    )
    assert out.returncode != 0 and "epochs must be a positive integer" in out.stderr
