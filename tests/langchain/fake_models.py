"""A small fake chat model for the adapter tests: reports usage, streams word by word, calls tools.

Only the chat models behind the router are fakes; the router in every test is real.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import zlib
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from routellm_core.calls import content_text


class FakeToolChatModel(BaseChatModel):
    """Deterministic chat model.

    Answers ``[<model_name>] <last user text>`` (cut at the first stop word); with tools bound
    and no tool result yet, calls a tool whose integer arguments are the integers of the last
    user message, in order, and string arguments that message; after a tool result, answers ``The result is <result>``.
    """

    model_name: str = "fake-model"
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake-tool-chat"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False,
                               method: str = "function_calling", strict: bool | None = None,
                               **kwargs: Any) -> Any:
        return super().with_structured_output(schema, include_raw=include_raw, **kwargs)

    # -------------------------------------------------------------- behaviour
    def _answer(self, messages: list[BaseMessage], stop: list[str] | None,
                kwargs: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        self.calls += 1
        tools = kwargs.get("tools") or []
        last_user = next((content_text(m.content) for m in reversed(messages) if m.type == "human"), "")
        if tools and messages and not isinstance(messages[-1], ToolMessage) and kwargs.get("tool_choice") != "none":
            return "", [self._tool_call(tools, kwargs.get("tool_choice"), last_user)]
        if messages and isinstance(messages[-1], ToolMessage):
            text = f"The result is {content_text(messages[-1].content) or messages[-1].content}"
        else:
            text = f"[{self.model_name}] {last_user}"
        for s in stop or []:
            if s and s in text:
                text = text[: text.index(s)]
        return text or f"[{self.model_name}]", []

    def _tool_call(self, tools: list[dict[str, Any]], tool_choice: Any, text: str) -> dict[str, Any]:
        fn = tools[0]["function"]
        if isinstance(tool_choice, str) and tool_choice not in ("any", "auto", "required"):
            fn = next((t["function"] for t in tools if t["function"]["name"] == tool_choice), fn)
        elif isinstance(tool_choice, dict):
            name = tool_choice.get("function", {}).get("name", tool_choice.get("name"))
            fn = next((t["function"] for t in tools if t["function"]["name"] == name), fn)
        ints = [int(x) for x in re.findall(r"-?\d+", text)]
        args: dict[str, Any] = {}
        params = fn.get("parameters", {})
        for name in params.get("required", []):
            kind = params.get("properties", {}).get(name, {}).get("type")
            if kind in ("integer", "number"):
                args[name] = ints.pop(0) if ints else 0
            elif kind == "boolean":
                args[name] = True
            elif kind == "array":
                args[name] = []
            else:
                args[name] = text or name
        return {"name": fn["name"], "args": args, "id": f"call_{self.calls}", "type": "tool_call"}

    def _usage(self, messages: list[BaseMessage], text: str) -> dict[str, int]:
        inp = sum(len(content_text(m.content).split()) + 1 for m in messages)
        out = max(1, len(text.split()))
        return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text, tool_calls = self._answer(messages, stop, kwargs)
        msg = AIMessage(content=text, tool_calls=tool_calls, usage_metadata=self._usage(messages, text),
                        response_metadata={"model_name": self.model_name})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any):
        text, tool_calls = self._answer(messages, stop, kwargs)
        usage = self._usage(messages, text)
        pieces: list[AIMessageChunk] = []
        if tool_calls:
            tc = tool_calls[0]
            pieces.append(AIMessageChunk(content="", tool_call_chunks=[
                {"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": 0}]))
        else:
            words = text.split(" ")
            pieces += [AIMessageChunk(content=w if i == 0 else " " + w) for i, w in enumerate(words)]
        # one chunk carries the input tokens, the last one the model name and position
        pieces[0].usage_metadata = {"input_tokens": usage["input_tokens"], "output_tokens": 0,
                                    "total_tokens": usage["input_tokens"]}
        pieces.append(AIMessageChunk(content="", chunk_position="last",
                                     response_metadata={"model_name": self.model_name},
                                     usage_metadata={"input_tokens": 0, "output_tokens": usage["output_tokens"],
                                                     "total_tokens": usage["output_tokens"]}))
        for p in pieces:
            chunk = ChatGenerationChunk(message=p)
            if run_manager:
                run_manager.on_llm_new_token(p.text, chunk=chunk)
            yield chunk


class FakeModelError(Exception):
    """What a failing fake model raises (think: rate limit, server error, timeout)."""


def fails(model_name: str, text: str, fail_percent: int) -> bool:
    """Whether a flaky model fails on ``text``: a fixed function of the model and the text, so
    a test knows in advance which calls fail, whatever order they run in."""
    return zlib.crc32(f"{model_name}|{text}".encode("utf-8", "surrogatepass")) % 100 < fail_percent


class FlakyChatModel(FakeToolChatModel):
    """A :class:`FakeToolChatModel` that answers after a random delay and fails on some queries.

    It raises :class:`FakeModelError` when :func:`fails` says so for the last user text
    (``fail_percent`` of texts; 100 = always), before any output or, for streams, after
    ``fail_after_chunks`` chunks when that is set. ``max_delay`` seconds bound the random delay
    (``asyncio.sleep`` on the async paths, ``time.sleep`` on the sync ones).
    """

    fail_percent: int = 0
    fail_after_chunks: int | None = None
    max_delay: float = 0.0
    failures: int = 0

    def _fail_now(self, messages: list[BaseMessage]) -> bool:
        last_user = next((content_text(m.content) for m in reversed(messages) if m.type == "human"), "")
        return fails(self.model_name, last_user, self.fail_percent)

    def _delay(self, messages: list[BaseMessage]) -> float:
        return random.uniform(0.0, self.max_delay) if self.max_delay else 0.0

    def _check(self, messages: list[BaseMessage]) -> None:
        if self.fail_after_chunks is None and self._fail_now(messages):
            self.failures += 1
            raise FakeModelError(f"{self.model_name} is overloaded (fake 503)")

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        time.sleep(self._delay(messages))
        self._check(messages)
        return super()._generate(messages, stop, run_manager, **kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        await asyncio.sleep(self._delay(messages))
        self._check(messages)
        return super()._generate(messages, stop, None, **kwargs)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any):
        self._check(messages)
        for i, chunk in enumerate(super()._stream(messages, stop, run_manager, **kwargs)):
            if self.fail_after_chunks is not None and i == self.fail_after_chunks and self._fail_now(messages):
                self.failures += 1
                raise FakeModelError(f"{self.model_name} dropped the connection mid-stream")
            yield chunk

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: Any = None, **kwargs: Any):
        await asyncio.sleep(self._delay(messages))
        for chunk in self._stream(messages, stop, None, **kwargs):
            yield chunk
