"""all-MiniLM-L6-v2 on ONNX Runtime: the same vectors as sentence-transformers, about 3x faster on CPU.

The packaged MiniLM weights are exported once, on first use, offline, with ``torch.onnx.export``
(the TorchScript exporter, ``dynamo=False``, opset 17; a small wrapper returns BERT's
``last_hidden_state``), then run on ONNX Runtime's CPU provider with sentence-transformers'
recipe around it: the model's own ``tokenizer.json`` (truncation at the model's 256-token
window, padding to the longest text of a batch only), mean pooling over the attention mask, L2
normalisation. The export lives in the library's cache folder, beside the static encoders
(``$ROUTELLM_CACHE_DIR/encoders/onnx-...``, default ``~/.cache/routellm``); its key covers the
weights' files (path, size, modification time) and the export settings, so new weights export anew.

Nothing is used unchecked. An export is verified before it is kept: the vectors it gives for the
checkpoint probe texts (:data:`routellm_core.encoder_probe.PROBE_TEXTS`) and a long text, in one
padded batch and one by one, must match the torch model's (cosine >= :data:`MIN_COSINE`), and the
torch vectors are recorded beside it (``manifest.json``). Each later load repeats the check
against that record; a cache folder whose file is truncated, corrupt or from other weights is
exported again (the files are written to temporary names and renamed into place, so a reader
never sees half a file, and only the library's own two files are ever replaced).

:class:`~routellm_core.encoders.QueryEncoder` uses this path for the default encoder whenever
``onnxruntime`` is installed, and falls back to torch (with one warning) when it is not, or when
the export fails. ``ROUTELLM_ENCODER_BACKEND=torch`` (or ``QueryEncoder(backend="torch")``)
forces the torch path; ``onnx`` makes a failure an error instead of a fallback. Training code
that needs gradients (the BERT router) loads the weights with transformers, not through here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.encoders.paths import encoder_cache_dir
from routellm_core.errors import OnnxEncoderError

__all__ = [
    "BACKENDS", "BACKEND_ENV", "MIN_COSINE", "ONNX_OPSET", "OnnxEncoderError", "OnnxSentenceEncoder",
    "export_onnx", "load_onnx_encoder", "onnx_dir", "onnxruntime_available", "resolve_backend",
]

#: Environment variable choosing the encoder backend: ``auto`` (default), ``onnx`` or ``torch``.
BACKEND_ENV = "ROUTELLM_ENCODER_BACKEND"
BACKENDS = ("auto", "onnx", "torch")
#: Environment variable: ONNX Runtime's intra-op threads (default: every CPU on a machine of up to
#: 4, else ONNX Runtime's own choice, one per physical core).
THREADS_ENV = "ROUTELLM_ENCODER_THREADS"
#: Environment variable: ``1`` lets ONNX Runtime's idle worker threads spin (default: they sleep).
SPIN_ENV = "ROUTELLM_ENCODER_SPIN"
ONNX_OPSET = 17
#: Bumped when the export (wrapper, inputs, settings) changes: a new cache folder.
EXPORT_VERSION = 1
#: Least cosine between the ONNX and the torch vector of each check text.
MIN_COSINE = 0.9999
_LONG_CHECK = " ".join(["Explain step by step how a compiler turns source code into machine code."] * 40)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_LOCK = threading.Lock()
_log = logging.getLogger(__name__)


def resolve_backend(backend: str | None) -> str:
    """``backend``, else ``$ROUTELLM_ENCODER_BACKEND``, else ``"auto"``; ``ValueError`` for another name.

    Example:
        >>> resolve_backend("torch")
        'torch'
    """
    value = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if value not in BACKENDS:
        source = "backend" if backend else BACKEND_ENV
        raise ValueError(f"{source} must be one of {', '.join(BACKENDS)}, got {value!r}")
    return value


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` is installed (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _default_threads() -> int:
    """Every CPU this process may use on a machine of up to 4 (ONNX Runtime's own default counts
    physical cores only: one thread where two vCPUs are one core's hyperthreads; on two cores, two
    threads ran one query in 2.97 ms against 4.80 ms on one); ``0`` (its default) on a larger one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return cpus if cpus <= 4 else 0


def _max_seq_length(model_dir: Path) -> int:
    try:
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        return int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 256


def _check_layout(model_dir: Path) -> None:
    """``OnnxEncoderError`` unless ``model_dir`` is a BERT with mean pooling and normalisation."""
    try:
        modules = [m.get("type", "") for m in json.loads((model_dir / "modules.json").read_text())]
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, AttributeError) as exc:
        raise OnnxEncoderError(f"{model_dir} is not a sentence-transformers model folder: {exc}") from exc
    wanted = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
              "sentence_transformers.models.Normalize"]
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    if modules != wanted or not mean_only or not (model_dir / "tokenizer.json").is_file():
        raise OnnxEncoderError(f"{model_dir} is not a transformer with mean pooling and normalisation")


def onnx_dir(model_dir: str | os.PathLike[str]) -> Path:
    """The cache folder of the ONNX export of the encoder in ``model_dir``."""
    src = Path(model_dir).resolve()
    parts = [f"v{EXPORT_VERSION}", f"opset{ONNX_OPSET}", str(src)]
    for name in ("model.safetensors", "config.json", "tokenizer.json", "sentence_bert_config.json"):
        try:
            st = (src / name).stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{name}:-")
    key = hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() else "-" for c in f"{src.parent.name}-{src.name}")[-40:]
    return encoder_cache_dir() / f"onnx-{safe}-{key}"


def _check_texts() -> list[str]:
    from routellm_core.encoder_probe import PROBE_TEXTS

    return [*PROBE_TEXTS, _LONG_CHECK]


class OnnxSentenceEncoder:
    """A mean-pooled, normalised sentence encoder on an ONNX Runtime session, with the part of
    ``SentenceTransformer``'s interface the query encoder uses (``encode``, the dimension,
    ``max_seq_length``).

    Texts are sorted by length and run in batches of ``batch_size``, each padded to its longest
    text only; one text is never padded at all.
    """

    def __init__(self, model_file: str | os.PathLike[str], model_dir: str | os.PathLike[str], *,
                 threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_file = Path(model_file)
        self.model_dir = Path(model_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads is None:
            env = os.environ.get(THREADS_ENV, "").strip()
            threads = int(env) if env.isdigit() else _default_threads()
        options.intra_op_num_threads = max(0, threads)
        # idle worker threads sleep instead of spinning (ROUTELLM_ENCODER_SPIN=1 lets them spin,
        # ONNX Runtime's own default): the router's numpy work right after the encoder, the event
        # loop and the other requests' threads get the cores back at once
        spin = os.environ.get(SPIN_ENV, "").strip() == "1"
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise OnnxEncoderError(f"ONNX Runtime cannot load {self.model_file}: {exc}") from exc
        names = {i.name for i in self.session.get_inputs()}
        if not set(_INPUTS) >= names or "input_ids" not in names:
            raise OnnxEncoderError(f"{self.model_file} takes inputs {sorted(names)}, not a BERT's {list(_INPUTS)}")
        self._input_names = [n for n in _INPUTS if n in names]
        self._dim = int(self.session.get_outputs()[0].shape[-1])
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        self._max_seq_length = 0
        self.max_seq_length = _max_seq_length(self.model_dir)

    @property
    def max_seq_length(self) -> int:
        """Tokens read per text (the rest is truncated, as sentence-transformers does)."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self._max_seq_length = int(value)
        self.tokenizer.enable_truncation(max_length=self._max_seq_length)

    def get_sentence_embedding_dimension(self) -> int:
        return self._dim

    get_embedding_dimension = get_sentence_embedding_dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, normalize_embeddings: bool = True,
               show_progress_bar: bool = False, **_: Any) -> np.ndarray:
        """``(len(texts), dim)`` float32 rows, L2-normalised unless ``normalize_embeddings=False``."""
        texts = list(texts)
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        if len(texts) == 1:
            out[:] = self._run(texts)
        else:
            order = np.argsort([-len(t) for t in texts], kind="stable")
            starts = range(0, len(texts), max(1, batch_size))
            if show_progress_bar:
                from tqdm.auto import tqdm

                starts = tqdm(starts, desc="Batches")
            for start in starts:
                idx = order[start : start + batch_size]
                out[idx] = self._run([texts[i] for i in idx])
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled (not yet normalised) vectors of one batch."""
        if len(texts) == 1:
            enc = [self.tokenizer.encode(texts[0])]
        else:
            enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {n: feeds[n] for n in self._input_names})[0]
        if len(texts) == 1:  # no padding: every token counts
            return hidden.mean(axis=1)
        weights = mask.astype(np.float32)
        summed = np.einsum("bsd,bs->bd", hidden, weights)
        return summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)

    def __repr__(self) -> str:
        return f"OnnxSentenceEncoder({str(self.model_file)!r})"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _verify(encoder: OnnxSentenceEncoder, texts: list[str], reference: np.ndarray) -> float:
    """The least cosine between ``encoder``'s vectors and ``reference``, in one padded batch and
    one text at a time; ``OnnxEncoderError`` when it is under :data:`MIN_COSINE` or not finite."""
    batched = encoder.encode(texts, batch_size=len(texts))
    single = np.concatenate([encoder.encode([t]) for t in texts])
    if reference.shape != batched.shape:
        raise OnnxEncoderError(f"{encoder.model_file} gives {batched.shape[1]}-dim vectors, "
                               f"the torch model {reference.shape[1]}")
    worst = float(min(_cosines(batched, reference).min(), _cosines(single, reference).min()))
    if not np.isfinite(worst) or worst < MIN_COSINE:
        raise OnnxEncoderError(f"{encoder.model_file} does not reproduce the torch model's vectors "
                               f"(least cosine {worst:.6f} < {MIN_COSINE})")
    return worst


def _open_verified(folder: Path, model_dir: Path) -> OnnxSentenceEncoder:
    """The cached export in ``folder``, verified against its manifest's torch vectors."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        texts = manifest["texts"]
        reference = np.asarray(manifest["embeddings"], dtype=np.float32)
        size = int(manifest["onnx_bytes"])
        if not isinstance(texts, list) or reference.ndim != 2 or reference.shape[0] != len(texts):
            raise ValueError("texts and embeddings do not match")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OnnxEncoderError(f"unreadable ONNX export manifest in {folder}: {exc}") from exc
    model_file = folder / "model.onnx"
    try:
        actual = model_file.stat().st_size
    except OSError as exc:
        raise OnnxEncoderError(f"{model_file} is missing: {exc}") from exc
    if actual != size:
        raise OnnxEncoderError(f"{model_file} has {actual} bytes, the export wrote {size}")
    encoder = OnnxSentenceEncoder(model_file, model_dir)
    _verify(encoder, [str(t) for t in texts], reference)
    return encoder


def export_onnx(model_dir: str | os.PathLike[str], folder: Path) -> None:
    """Export the sentence-transformers model in ``model_dir`` to ``folder/model.onnx`` and record
    the torch vectors of the check texts in ``folder/manifest.json``.

    Each file is written under a temporary name in ``folder`` and renamed into place only after
    the export reproduced the torch vectors, so the folder never holds a half-written file.
    """
    try:
        import onnx  # noqa: F401  (torch's exporter needs it; fail with a clear message first)
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import AutoModel
    except ImportError as exc:
        raise OnnxEncoderError(f"exporting the encoder to ONNX needs torch, transformers, sentence-transformers "
                               f"and onnx ({exc}); pip install onnx, or set {BACKEND_ENV}=torch") from exc
    src = Path(model_dir)
    _check_layout(src)
    texts = _check_texts()
    reference = SentenceTransformer(str(src), device="cpu").encode(
        texts, convert_to_numpy=True, normalize_embeddings=True, batch_size=len(texts), show_progress_bar=False)
    reference = np.asarray(reference, dtype=np.float32)

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    model = AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()
    # a padded batch of two, so that nothing about the mask or the length is traced as a constant
    ids = torch.tensor([[101, 7592, 2088, 102, 0, 0], [101, 2054, 2003, 1996, 3007, 102]], dtype=torch.long)
    example = (ids, (ids != 0).long(), torch.zeros_like(ids))
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".model.onnx.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp_manifest: Path | None = None
    try:
        axes = {0: "batch", 1: "sequence"}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on constant shapes: verified below
            torch.onnx.export(
                LastHiddenState(model), example, str(tmp), input_names=list(_INPUTS),
                output_names=["last_hidden_state"], opset_version=ONNX_OPSET, dynamo=False,
                do_constant_folding=True, dynamic_axes={**{n: axes for n in _INPUTS}, "last_hidden_state": axes},
            )
        worst = _verify(OnnxSentenceEncoder(tmp, src), texts, reference)
        manifest = {
            "format": "routellm-onnx-encoder", "export_version": EXPORT_VERSION, "opset": ONNX_OPSET,
            "source": str(src.resolve()), "onnx_bytes": tmp.stat().st_size, "torch": str(torch.__version__),
            "least_cosine": worst, "texts": texts,
            "embeddings": [[float(x) for x in row] for row in reference],
        }
        fd, tmp_manifest_name = tempfile.mkstemp(prefix=".manifest.json.", suffix=".tmp", dir=folder)
        tmp_manifest = Path(tmp_manifest_name)
        with os.fdopen(fd, "w") as fh:
            json.dump(manifest, fh)
        os.replace(tmp, folder / "model.onnx")
        os.replace(tmp_manifest, folder / "manifest.json")
    finally:
        for leftover in (tmp, tmp_manifest):
            if leftover is not None and leftover.exists():
                leftover.unlink()


def load_onnx_encoder(model_dir: str | os.PathLike[str]) -> OnnxSentenceEncoder:
    """The ONNX encoder of the sentence-transformers model in ``model_dir``: the cached export
    when it verifies, else a new export (once per process at a time). ``OnnxEncoderError`` when
    ONNX Runtime is missing or the export cannot be made or verified."""
    if not onnxruntime_available():
        raise OnnxEncoderError(f"onnxruntime is not installed (pip install onnxruntime), or set {BACKEND_ENV}=torch")
    src = Path(model_dir)
    folder = onnx_dir(src)
    with _LOCK:
        if (folder / "manifest.json").exists() or (folder / "model.onnx").exists():
            try:
                return _open_verified(folder, src)
            except OnnxEncoderError as exc:
                warnings.warn(f"the cached ONNX encoder is unusable ({exc}); exporting it again",
                              RuntimeWarning, stacklevel=3)
        _log.info("exporting %s to ONNX once (a few seconds); it is kept in %s", src, folder)
        try:
            export_onnx(src, folder)
        except OnnxEncoderError:
            raise
        except Exception as exc:
            raise OnnxEncoderError(f"exporting {src} to ONNX failed: {type(exc).__name__}: {exc}") from exc
        return _open_verified(folder, src)
