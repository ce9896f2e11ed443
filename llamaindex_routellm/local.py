"""``LocalGGUFLLM``: a LlamaIndex LLM over a local GGUF file (llama.cpp), calls serialised.

Example:
    .. code-block:: python

        from routellm_core.local_models import LocalChatModel
        from llamaindex_routellm.local import LocalGGUFLLM

        llm = LocalGGUFLLM(client=LocalChatModel("SmolLM2-135M-Instruct.Q4_1.gguf"), max_tokens=64)
        llm.complete("What is the capital of France?").text
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import ConfigDict, Field
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from routellm_core.local_models import LocalChatModel, LocalGeneration

_ROLES = {
    MessageRole.SYSTEM: "system",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
}


def _raw(gen: LocalGeneration) -> dict[str, Any]:
    return {
        "usage": {
            "prompt_tokens": gen.input_tokens,
            "completion_tokens": gen.output_tokens,
        },
        "finish_reason": gen.finish_reason,
    }


class LocalGGUFLLM(CustomLLM):
    """A local GGUF chat model (``routellm_core.local_models.LocalChatModel``) as a LlamaIndex
    chat LLM. Greedy by default; the usage is in ``raw["usage"]`` (OpenAI key names).

    Calls into one :class:`LocalChatModel` are serialised by its lock. Streaming yields the
    whole answer as one chunk. System, user and assistant messages are supported; other roles
    raise a ``ValueError``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: LocalChatModel = Field(description="The loaded-on-first-use local model.")
    model_name: str = Field(
        default="",
        description="Name in routing and cost records (default: the client's).",
    )
    max_tokens: int = Field(default=256, ge=1, description="Most tokens to generate.")
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="0 for greedy decoding."
    )

    def model_post_init(self, context: Any, /) -> None:
        if not self.model_name:
            self.model_name = self.client.name

    @classmethod
    def class_name(cls) -> str:
        return "LocalGGUFLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.client.n_ctx,
            num_output=self.max_tokens,
            is_chat_model=True,
            model_name=self.model_name,
        )

    def _generate(
        self, turns: list[tuple[str, str]], kwargs: dict[str, Any]
    ) -> LocalGeneration:
        return self.client.chat(
            turns,
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            temperature=kwargs.get("temperature", self.temperature),
            stop=kwargs.get("stop"),
        )

    @staticmethod
    def _turns(messages: Sequence[ChatMessage]) -> list[tuple[str, str]]:
        turns = []
        for i, m in enumerate(messages):
            if m.role not in _ROLES:
                raise ValueError(
                    f"message {i} has role {m.role.value!r}; LocalGGUFLLM supports "
                    f"{sorted(r.value for r in _ROLES)}"
                )
            turns.append((_ROLES[m.role], m.content or ""))
        return turns

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        gen = self._generate(self._turns(messages), kwargs)
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=gen.text),
            raw=_raw(gen),
        )

    @llm_chat_callback()
    def stream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseGen:
        gen = self._generate(self._turns(messages), kwargs)

        def one() -> ChatResponseGen:
            yield ChatResponse(
                message=ChatMessage(role=MessageRole.ASSISTANT, content=gen.text),
                delta=gen.text,
                raw=_raw(gen),
            )

        return one()

    @llm_completion_callback()
    def complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        gen = self._generate([("user", prompt)], kwargs)
        return CompletionResponse(text=gen.text, raw=_raw(gen))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        gen = self._generate([("user", prompt)], kwargs)

        def one() -> CompletionResponseGen:
            yield CompletionResponse(text=gen.text, delta=gen.text, raw=_raw(gen))

        return one()


__all__ = ["LocalGGUFLLM"]
