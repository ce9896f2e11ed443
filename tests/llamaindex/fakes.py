"""Small fake LlamaIndex LLMs for the adapter tests: report usage, stream word by word, call tools.

Only the LLMs behind the router are fakes; the router in every test is the real embedded one.
Each public method is decorated once and calls no other decorated method, so one call is one
LLM event (LlamaIndex's ``CustomLLM.chat`` calls the decorated ``complete`` and would emit two).
"""

from __future__ import annotations

import asyncio
import random
import re
import zlib
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from pydantic import Field

from routellm_core.calls import content_text


def message_text(message: ChatMessage) -> str:
    return content_text(message.blocks)


def words(text: str) -> int:
    return len(text.split())


class FakeLLM(FunctionCallingLLM):
    """Deterministic LLM. Answers ``[<model>] answer to: <first 6 words of the last user turn>``.

    With tools and no tool result yet it calls the first tool with the integers of the last
    user turn as ``a`` and ``b``; after a tool result it answers ``The result is <result>``.
    Usage (words of the prompt / of the answer) is reported in ``raw["usage"]`` unless
    ``report_usage`` is false. The keyword arguments of every call are kept in ``received``.
    """

    model: str = "fake"
    context_window: int = 4096
    num_output: int = 256
    function_calling: bool = True
    chat_model: bool = True
    report_usage: bool = True
    calls: int = 0
    received: list = Field(default_factory=list, description="The keyword arguments of every call, in order.")

    @classmethod
    def class_name(cls) -> str:
        return "FakeLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.num_output,
                           is_chat_model=self.chat_model, model_name=self.model,
                           is_function_calling_model=self.function_calling)

    # ---------------------------------------------------------------- behaviour
    def _answer(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatMessage:
        self.calls += 1
        tools = kwargs.get("tools") or []
        last_user = next((message_text(m) for m in reversed(messages) if m.role == MessageRole.USER), "")
        if tools and messages and messages[-1].role != MessageRole.TOOL:
            ints = [int(x) for x in re.findall(r"-?\d+", last_user)][:2]
            call = {"id": f"call_{self.calls}", "name": tools[0]["name"], "args": {"a": ints[0], "b": ints[1]}}
            return ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": [call]})
        if messages and messages[-1].role == MessageRole.TOOL:
            return ChatMessage(role=MessageRole.ASSISTANT, content=f"The result is {message_text(messages[-1])}")
        head = " ".join(last_user.split()[:6])
        return ChatMessage(role=MessageRole.ASSISTANT, content=f"[{self.model}] answer to: {head}")

    def _usage(self, prompt_texts: Sequence[str], answer: str) -> dict[str, Any]:
        if not self.report_usage:
            return {}
        return {"usage": {"prompt_tokens": sum(words(t) for t in prompt_texts),
                          "completion_tokens": words(answer)}}

    def _chat(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        self.received.append(dict(kwargs))
        msg = self._answer(messages, kwargs)
        return ChatResponse(message=msg, raw=self._usage([message_text(m) for m in messages], msg.content or ""))

    def _chunks(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> list[ChatResponse]:
        self.received.append(dict(kwargs))
        msg = self._answer(messages, kwargs)
        text = msg.content or ""
        pieces = re.findall(r"\S+\s*", text) or [""]
        out, acc = [], ""
        for i, piece in enumerate(pieces):
            acc += piece
            last = i == len(pieces) - 1
            out.append(ChatResponse(
                message=ChatMessage(role=MessageRole.ASSISTANT, content=acc,
                                    additional_kwargs=msg.additional_kwargs if last else {}),
                delta=piece,
                raw=self._usage([message_text(m) for m in messages], text) if last else {}))
        return out

    def _complete(self, prompt: str, kwargs: dict[str, Any]) -> CompletionResponse:
        self.received.append(dict(kwargs))
        msg = self._answer([ChatMessage(role=MessageRole.USER, content=prompt)], {})
        return CompletionResponse(text=msg.content or "", raw=self._usage([prompt], msg.content or ""))

    # ---------------------------------------------------------------- LLM interface
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        chunks = self._chunks(messages, kwargs)
        return (c for c in chunks)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        chunks = self._chunks(messages, kwargs)

        async def gen():
            for c in chunks:
                yield c

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._complete(prompt, kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._complete(prompt, kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        resp = self._complete(prompt, kwargs)
        pieces = re.findall(r"\S+\s*", resp.text)
        acc = ""

        def gen():
            nonlocal acc
            for i, piece in enumerate(pieces):
                acc += piece
                yield CompletionResponse(text=acc, delta=piece,
                                         raw=resp.raw if i == len(pieces) - 1 else {})

        return gen()

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        resp = self._complete(prompt, kwargs)
        pieces = re.findall(r"\S+\s*", resp.text)

        async def gen():
            acc = ""
            for i, piece in enumerate(pieces):
                acc += piece
                yield CompletionResponse(text=acc, delta=piece,
                                         raw=resp.raw if i == len(pieces) - 1 else {})

        return gen()

    # ---------------------------------------------------------------- tools
    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                 chat_history: Any = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict[str, Any]:
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
        elif user_msg is not None:
            messages.append(user_msg)
        specs = [{"name": t.metadata.name, "description": t.metadata.description} for t in tools]
        return {"messages": messages, "tools": specs, **kwargs}

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list[ToolSelection]:
        calls = response.message.additional_kwargs.get("tool_calls") or []
        if not calls and error_on_no_tool_call:
            raise ValueError("expected a tool call")
        return [ToolSelection(tool_id=c["id"], tool_name=c["name"], tool_kwargs=c["args"]) for c in calls]


class FakeModelError(Exception):
    """What a failing fake LLM raises (think: rate limit, server error, timeout)."""


def fails(model: str, text: str, fail_percent: int) -> bool:
    """Whether a flaky LLM fails on ``text``: a fixed function of the model and the text."""
    return zlib.crc32(f"{model}|{text}".encode("utf-8", "surrogatepass")) % 100 < fail_percent


class FlakyLLM(FakeLLM):
    """A :class:`FakeLLM` that answers after a random delay and fails on some queries.

    It raises :class:`FakeModelError` when :func:`fails` says so for the last user text (or
    the prompt), at call time, or, for streams, after ``fail_after_chunks`` chunks when set.
    The async methods wait a random ``0..max_delay`` seconds first.
    """

    fail_percent: int = 0
    fail_after_chunks: int | None = None
    max_delay: float = 0.0
    failures: int = 0

    @classmethod
    def class_name(cls) -> str:
        return "FlakyLLM"

    def _answer(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatMessage:
        last_user = next((message_text(m) for m in reversed(messages) if m.role == MessageRole.USER), "")
        if self.fail_after_chunks is None and fails(self.model, last_user, self.fail_percent):
            self.failures += 1
            raise FakeModelError(f"{self.model} is overloaded (fake 503)")
        return super()._answer(messages, kwargs)

    def _breaking(self, chunks: Any, text: str) -> Any:
        for i, c in enumerate(chunks):
            if i == self.fail_after_chunks and fails(self.model, text, self.fail_percent):
                self.failures += 1
                raise FakeModelError(f"{self.model} dropped the connection mid-stream")
            yield c

    async def _delay(self) -> None:
        if self.max_delay:
            await asyncio.sleep(random.uniform(0.0, self.max_delay))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        last_user = next((message_text(m) for m in reversed(messages) if m.role == MessageRole.USER), "")
        return self._breaking(self._chunks(messages, kwargs), last_user)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        await self._delay()
        return self._chat(messages, kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        await self._delay()
        last_user = next((message_text(m) for m in reversed(messages) if m.role == MessageRole.USER), "")
        chunks = self._breaking(self._chunks(messages, kwargs), last_user)

        async def gen():
            for c in chunks:
                yield c

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        await self._delay()
        return self._complete(prompt, kwargs)
