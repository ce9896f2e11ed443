"""Drop training queries that repeat, or nearly repeat, a prompt of the evaluation sets.

Both sides are compared on their *distinguishing content*: the lines that a data set repeats
across many of its prompts (instruction templates such as LLMRouter's "After careful thought,
put you final answer in \\boxed{...}." or MMLU's ``Answer:``) are found from the data, per
training source and per benchmark (:class:`~routellm_core.data.templates.SharedBoilerplate`),
and the union of them is stripped from every text before comparing. Then two tests, as RouteLLM
and the ``_overlap`` manifest of the shared data:

- *exact*: equal after normalisation (lower-case, runs of non-alphanumerics collapsed to one
  space), or equal *overlap keys*: the text before the first ``"\\nA."`` / ``"\\nA)"`` option
  line, normalised, first 150 characters; keys shorter than 31 characters are ignored. The
  stripped texts are compared, so this catches verbatim, format-only and template-only repeats
  (an MMLU question with or without its options, a GSM8K question with an instruction line
  added) and keeps distinct questions behind one shared template or few-shot block (whose raw
  texts would all share their first 150 characters).
- *near*: embedding cosine similarity >= ``threshold`` (0.95 by default) of the stripped texts
  with the :class:`~routellm_core.encoders.QueryEncoder`, computed in chunks over unique texts.

The near test embeds every unique evaluation prompt and training query: the 15.5k prompts of
MMLU + GSM8K + MT-Bench took close to 20 minutes on a 2-core CPU (MMLU prompts fill the
encoder's 256-token window), LLMRouter's 5.6k training questions 5 more. Pass
``QueryEncoder(cache_dir=...)`` to keep the vectors between runs, or ``method="exact"`` for a
check that takes seconds.

Example:
    >>> import pandas as pd
    >>> from routellm_core.data.decontaminate import decontaminate
    >>> battles = pd.DataFrame({"query": ["What is 2 + 2?", "Write a haiku."],
    ...     "model_a": ["x", "x"], "model_b": ["y", "y"], "winner": ["a", "b"], "source": "doc"})
    >>> cleaned, report = decontaminate(battles, {"toy": ["what is 2+2 ?"]}, method="exact")
    >>> cleaned["query"].tolist(), report.n_dropped_exact
    (['Write a haiku.'], 1)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from routellm_core.data.schema import ScoreMatrix
from routellm_core.data.templates import SharedBoilerplate, normalize_text, queries_by_source

__all__ = [
    "DecontaminationReport",
    "decontaminate",
    "load_eval_prompts",
    "normalize_text",
    "overlap_key",
]

_BENCHMARK_NAMES = {
    "mmlu": "mmlu",
    "gsm8k": "gsm8k",
    "mt-bench": "mt-bench",
    "mt_bench": "mt-bench",
    "mtbench": "mt-bench",
}
_METHODS = ("exact", "near", "both")
_MIN_KEY_LEN = 31
_KEY_LEN = 150
_OPTION_LINE = re.compile(r"\nA[.)]")
_ASCII_NON_ALNUM = re.compile(r"[^a-z0-9]+")


class _Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


Data = TypeVar("Data", pd.DataFrame, ScoreMatrix)


def overlap_key(text: str) -> str | None:
    """The ``_overlap`` manifest's key of ``text``, or ``None`` when it is too short to trust.

    Example:
        >>> overlap_key("Which gas do plants absorb from the air?\\nA. CO2\\nB. O2\\nAnswer:")
        'which gas do plants absorb from the air'
    """
    key = _ASCII_NON_ALNUM.sub(" ", _OPTION_LINE.split(text, maxsplit=1)[0].lower()).strip()
    key = key[:_KEY_LEN]
    return key if len(key) >= _MIN_KEY_LEN else None


# --------------------------------------------------------------------------- eval prompts


def load_eval_prompts(
    data_dir: str | os.PathLike[str],
    benchmarks: Sequence[str] = ("mmlu", "gsm8k", "mt-bench"),
) -> dict[str, list[str]]:
    """The prompts of RouteLLM's evaluation sets, by benchmark.

    ``data_dir`` is RouteLLM's ``evals`` layout (``mmlu/responses/mmlu_*.csv``,
    ``gsm8k/gsm8k_responses.csv``, ``mt_bench/question.jsonl``) or a folder holding it as
    ``routellm_evals/``. MT-Bench contributes both turns of each question.

    Example:
        >>> from routellm_core.data.specs import default_data_dir
        >>> p = load_eval_prompts(default_data_dir() / "routellm_evals")  # doctest: +SKIP
        >>> {k: len(v) for k, v in p.items()}  # doctest: +SKIP
        {'mmlu': 14042, 'gsm8k': 1319, 'mt-bench': 160}
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: evaluation data directory not found")
    if not any((root / d).is_dir() for d in ("mmlu", "gsm8k", "mt_bench")) and (
        root / "routellm_evals"
    ).is_dir():
        root = root / "routellm_evals"
    if isinstance(benchmarks, str):
        benchmarks = [benchmarks]
    out: dict[str, list[str]] = {}
    for name in benchmarks:
        bench = _BENCHMARK_NAMES.get(str(name).lower())
        if bench is None:
            raise ValueError(f"unknown benchmark {name!r}; expected one of mmlu, gsm8k, mt-bench")
        if bench == "mmlu":
            files = sorted((root / "mmlu" / "responses").glob("mmlu_*.csv"))
            if not files:
                raise FileNotFoundError(f"{root / 'mmlu' / 'responses'}: no mmlu_*.csv files")
            out[bench] = [t for f in files for t in _prompt_column(f)]
        elif bench == "gsm8k":
            out[bench] = _prompt_column(root / "gsm8k" / "gsm8k_responses.csv")
        else:
            out[bench] = _mt_bench_turns(root / "mt_bench" / "question.jsonl")
    return out


def _prompt_column(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    df = pd.read_csv(path)
    if "prompt" not in df.columns:
        raise ValueError(f"{path}: no 'prompt' column; found {list(df.columns)}")
    return [t for t in df["prompt"].tolist() if isinstance(t, str) and t.strip()]


def _mt_bench_turns(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    turns: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: line {lineno} is not valid JSON") from exc
                turns.extend(t for t in row.get("turns", []) if isinstance(t, str) and t.strip())
    return turns


# --------------------------------------------------------------------------- report


@dataclass
class DecontaminationReport:
    """What :func:`decontaminate` dropped.

    Row counts are battles for a battles frame and queries for a :class:`ScoreMatrix`.
    ``n_dropped_near`` counts rows caught only by the embedding test. ``per_benchmark``
    counts dropped rows that match each benchmark (a row can match several).
    ``template_lines`` are the shared lines stripped from both sides before comparing.
    """

    n_before: int
    n_after: int
    n_dropped_exact: int
    n_dropped_near: int
    per_benchmark: dict[str, int]
    method: str
    threshold: float | None
    unit: str = "rows"
    n_queries_dropped: int = 0
    dropped_indices: list[int] = field(default_factory=list, repr=False)
    near_examples: list[tuple[str, str, float]] = field(default_factory=list, repr=False)
    template_lines: list[str] = field(default_factory=list, repr=False)

    @property
    def n_dropped(self) -> int:
        """All dropped rows."""
        return self.n_before - self.n_after

    def __str__(self) -> str:
        how = "exact" if self.method == "exact" else f"{self.method}, cosine >= {self.threshold}"
        per = ", ".join(f"{k} {v}" for k, v in self.per_benchmark.items())
        return (
            f"decontamination ({how}): dropped {self.n_dropped} of {self.n_before} {self.unit} "
            f"({self.n_queries_dropped} distinct queries; exact {self.n_dropped_exact}, "
            f"near {self.n_dropped_near}); by benchmark: {per or 'none'}; compared without "
            f"{len(self.template_lines)} template lines shared across the training sources and "
            "benchmarks"
        )


# --------------------------------------------------------------------------- decontaminate


@lru_cache(maxsize=8)
def _eval_index(prompts: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """Normalised texts and overlap keys of one benchmark (cached: evals are reused)."""
    norms = frozenset(n for n in map(normalize_text, prompts) if n)
    keys = frozenset(k for k in map(overlap_key, prompts) if k)
    return norms, keys


def _exact_hits(
    texts: list[str], evals: Mapping[str, list[str]], boiler: SharedBoilerplate
) -> dict[str, np.ndarray]:
    stripped_texts = boiler.strip_all(texts)
    text_norms = [normalize_text(t) for t in stripped_texts]
    text_keys = [overlap_key(t) for t in stripped_texts]
    hits = {}
    for bench, prompts in evals.items():
        norms, keys = _eval_index(tuple(sorted(set(boiler.strip_all(prompts)))))
        hits[bench] = np.array(
            [(n != "" and n in norms) or (k is not None and k in keys) for n, k in zip(text_norms, text_keys)],
            dtype=bool,
        )
    return hits


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _near_hits(
    texts: list[str],
    evals: Mapping[str, list[str]],
    encoder: _Encoder,
    threshold: float,
    chunk_size: int,
    boiler: SharedBoilerplate,
) -> tuple[dict[str, np.ndarray], list[tuple[str, str, float]]]:
    eval_texts = sorted({t for prompts in evals.values() for t in prompts})
    position = {t: i for i, t in enumerate(eval_texts)}
    columns = {b: np.array(sorted({position[t] for t in p}), dtype=int) for b, p in evals.items()}
    hits = {b: np.zeros(len(texts), dtype=bool) for b in evals}
    examples: list[tuple[str, str, float]] = []
    if not texts or not eval_texts:
        return hits, examples
    e = _unit_rows(encoder.encode([boiler.strip(t) for t in eval_texts]))
    q = _unit_rows(encoder.encode([boiler.strip(t) for t in texts]))
    for start in range(0, len(texts), chunk_size):
        sims = q[start : start + chunk_size] @ e.T
        for bench, cols in columns.items():
            if cols.size:
                hits[bench][start : start + chunk_size] |= sims[:, cols].max(axis=1) >= threshold
        best = sims.argmax(axis=1)
        for r in np.flatnonzero(sims[np.arange(len(best)), best] >= threshold):
            if len(examples) < 10:
                examples.append(
                    (texts[start + r], eval_texts[best[r]], float(sims[r, best[r]]))
                )
    return hits, examples


def decontaminate(
    data: Data,
    eval_prompts: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    encoder: _Encoder | None = None,
    threshold: float = 0.95,
    method: str = "both",
    chunk_size: int = 1024,
) -> tuple[Data, DecontaminationReport]:
    """Drop rows of ``data`` whose query repeats or nearly repeats an evaluation prompt.

    Args:
        data: a battles frame (``query`` column) or a :class:`ScoreMatrix`.
        eval_prompts: prompts to hold out, a list or ``{benchmark: prompts}`` (see
            :func:`load_eval_prompts`).
        encoder: anything with ``encode(texts) -> array``; the shared default encoder
            (:func:`routellm_core.encoders.get_encoder`) when the near test needs one and none
            is given. A :class:`QueryEncoder` with a ``cache_dir`` reuses embeddings across runs.
        threshold: cosine similarity at or above which a query counts as a near repeat.
        method: ``"exact"``, ``"near"`` or ``"both"``.
        chunk_size: training queries per similarity block (memory: chunk x eval prompts).

    Returns:
        ``(cleaned, report)``: the same type as ``data`` without the dropped rows, and a
        :class:`DecontaminationReport`.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}, got {method!r}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if isinstance(eval_prompts, str):
        raise TypeError("eval_prompts must be a list of prompts or a {benchmark: prompts} mapping")
    evals: dict[str, list[str]] = (
        {str(k): list(v) for k, v in eval_prompts.items()}
        if isinstance(eval_prompts, Mapping)
        else {"eval": list(eval_prompts)}
    )
    evals = {b: [t for t in p if isinstance(t, str) and t.strip()] for b, p in evals.items()}
    if not any(evals.values()):
        raise ValueError("no evaluation prompts given: nothing to decontaminate against")

    groups: list[list[str]]
    if isinstance(data, ScoreMatrix):
        queries, unit = list(data.queries), "queries"
        groups = [queries]
    elif isinstance(data, pd.DataFrame):
        if "query" not in data.columns:
            raise ValueError(f"battles have no 'query' column; found {list(data.columns)}")
        queries, unit = data["query"].tolist(), "battles"
        groups = queries_by_source(data)
    else:
        raise TypeError(f"expected a battles DataFrame or a ScoreMatrix, got {type(data).__name__}")

    bad = [i for i, q in enumerate(queries) if not (isinstance(q, str) and q.strip())]
    if bad:
        raise ValueError(f"row {bad[0]} has an empty or non-text query: {queries[bad[0]]!r}")
    unique, inverse = np.unique(np.asarray(queries, dtype=object), return_inverse=True)
    unique_texts: list[str] = unique.tolist()
    boiler = SharedBoilerplate.find_in_groups([*groups, *evals.values()])

    exact = {b: np.zeros(len(unique_texts), dtype=bool) for b in evals}
    if method in ("exact", "both"):
        exact = _exact_hits(unique_texts, evals, boiler)
    exact_any = np.logical_or.reduce(list(exact.values()))

    near = {b: np.zeros(len(unique_texts), dtype=bool) for b in evals}
    examples: list[tuple[str, str, float]] = []
    if method in ("near", "both"):
        todo = np.flatnonzero(~exact_any)
        if encoder is None:
            from routellm_core.encoders import get_encoder

            encoder = get_encoder()
        found, examples = _near_hits(
            [unique_texts[i] for i in todo], evals, encoder, threshold, chunk_size, boiler
        )
        for b in evals:
            near[b][todo] = found[b]
    near_any = np.logical_or.reduce(list(near.values())) & ~exact_any

    drop_unique = exact_any | near_any
    drop_rows = drop_unique[inverse]
    dropped_idx = np.flatnonzero(drop_rows)
    report = DecontaminationReport(
        n_before=len(queries),
        n_after=int(len(queries) - drop_rows.sum()),
        n_dropped_exact=int(exact_any[inverse].sum()),
        n_dropped_near=int(near_any[inverse].sum()),
        per_benchmark={b: int((exact[b] | near[b])[inverse].sum()) for b in evals},
        method=method,
        threshold=None if method == "exact" else threshold,
        unit=unit,
        n_queries_dropped=int(drop_unique.sum()),
        dropped_indices=dropped_idx.tolist(),
        near_examples=examples,
        template_lines=sorted(boiler.lines),
    )
    keep = ~drop_rows
    if isinstance(data, ScoreMatrix):
        cleaned: Any = data.subset(keep)
    else:
        cleaned = data.loc[keep].reset_index(drop=True)
        cleaned.attrs = dict(data.attrs)
    return cleaned, report
