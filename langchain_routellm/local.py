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
from pydantic import ConfigDict, Field, model_validator

from routellm_core.calls import content_text
from routellm_core.local_models import LocalChatModel

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class ChatLocalGGUF(BaseChatModel):
    """A local GGUF chat model (``routellm_core.local_models.LocalChatModel``) as a LangChain
    chat model. Greedy by default; reports token usage in ``usage_metadata``.

    Calls into one :class:`LocalChatModel` are serialised by its lock, so ``batch``, async
    calls and threads never run two generations in one llama.cpp model at once.
    System, human and AI messages with text are supported; tool messages raise a ``ValueError``.
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

    @model_validator(mode="after")
    def _default_name(self) -> ChatLocalGGUF:
        if not self.model_name:
            self.model_name = self.client.name
        return self

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
        turns = []
        for i, m in enumerate(messages):
            if m.type not in _ROLES:
                raise ValueError(
                    f"message {i} is a {m.type!r} message; {self._llm_type} supports "
                    f"{sorted(_ROLES)} messages"
                )
            turns.append((_ROLES[m.type], content_text(m.content)))
        gen = self.client.chat(
            turns,
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            temperature=kwargs.get("temperature", self.temperature),
            stop=stop,
        )
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
