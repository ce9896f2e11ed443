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
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from routellm_core.adapter import LocalModelFields
from routellm_core.local_models import LocalGeneration

_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}


def _raw(gen: LocalGeneration) -> dict[str, Any]:
    return {
        "usage": {
            "prompt_tokens": gen.input_tokens,
            "completion_tokens": gen.output_tokens,
        },
        "finish_reason": gen.finish_reason,
    }


class LocalGGUFLLM(LocalModelFields, CustomLLM):
    """A local GGUF chat model (``routellm_core.local_models.LocalChatModel``) as a LlamaIndex
    chat LLM. Greedy by default; the usage is in ``raw["usage"]`` (OpenAI key names).

    Calls into one :class:`LocalChatModel` are serialised by its lock. Streaming yields the
    whole answer as one chunk. System, user and assistant messages are supported; other roles
    raise a ``ValueError``. The fields (``client``, ``model_name``, ``max_tokens``,
    ``temperature``) are :class:`~routellm_core.adapter.LocalModelFields`, as LangChain's.
    """

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

    def _generate(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> LocalGeneration:
        return self._local_generate([(m.role.value, m.content or "") for m in messages], _ROLES, kwargs,
                                    stop=kwargs.get("stop"))

    def _generate_prompt(self, prompt: str, kwargs: dict[str, Any]) -> LocalGeneration:
        return self._local_generate([("user", prompt)], _ROLES, kwargs, stop=kwargs.get("stop"))

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        gen = self._generate(messages, kwargs)
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=gen.text),
            raw=_raw(gen),
        )

    @llm_chat_callback()
    def stream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseGen:
        gen = self._generate(messages, kwargs)

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
        gen = self._generate_prompt(prompt, kwargs)
        return CompletionResponse(text=gen.text, raw=_raw(gen))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        gen = self._generate_prompt(prompt, kwargs)

        def one() -> CompletionResponseGen:
            yield CompletionResponse(text=gen.text, delta=gen.text, raw=_raw(gen))

        return one()


__all__ = ["LocalGGUFLLM"]
