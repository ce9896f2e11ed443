"""``ChatLocalGGUF``: a LangChain chat model over a local GGUF file (llama.cpp), calls serialised.

Example:
    .. code-block:: python

        from routellm_core.local_models import LocalChatModel
        from langchain_routellm.local import ChatLocalGGUF

        llm = ChatLocalGGUF(client=LocalChatModel("SmolLM2-135M-Instruct.Q4_1.gguf"), max_tokens=64)
        llm.invoke("What is the capital of France?").content
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from routellm_core.adapter import LocalModelFields
from routellm_core.calls import content_text

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class ChatLocalGGUF(LocalModelFields, BaseChatModel):
    """A local GGUF chat model (``routellm_core.local_models.LocalChatModel``) as a LangChain
    chat model. Greedy by default; reports token usage in ``usage_metadata``.

    Calls into one :class:`LocalChatModel` are serialised by its lock, so ``batch``, async
    calls and threads never run two generations in one llama.cpp model at once.
    System, human and AI messages with text are supported; tool messages raise a ``ValueError``.
    The fields (``client``, ``model_name``, ``max_tokens``, ``temperature``) are
    :class:`~routellm_core.adapter.LocalModelFields`, as LlamaIndex's.
    """

    @property
    def _llm_type(self) -> str:
        return "local-gguf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        gen = self._local_generate([(m.type, content_text(m.content)) for m in messages], _ROLES, kwargs, stop=stop)
        message = AIMessage(
            content=gen.text,
            usage_metadata={
                "input_tokens": gen.input_tokens,
                "output_tokens": gen.output_tokens,
                "total_tokens": gen.input_tokens + gen.output_tokens,
            },
            response_metadata={
                "model_name": self.model_name,
                "finish_reason": gen.finish_reason,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


__all__ = ["ChatLocalGGUF"]
