"""RouteLLM's evaluation benchmarks (MMLU, GSM8K, MT-Bench) as plain arrays.

A :class:`Benchmark` holds, per question, the text a router sees and the score each of the two
models earned on it. The loaders read the layout of RouteLLM's ``routellm/evals`` folder and
drop the prompts RouteLLM found in its router-training data, as its ``benchmarks.py`` does.

Example:
    >>> import numpy as np
    >>> from routellm_core.evaluation import Benchmark
    >>> b = Benchmark(name="toy", prompts=["1+1?", "prove P!=NP"],
    ...               strong_scores=np.array([1.0, 1.0]), weak_scores=np.array([1.0, 0.0]),
    ...               question_ids=np.array([0, 1]), strong_model="big", weak_model="small",
    ...               n_removed_contaminated=0, score_scale=100.0)
    >>> b.strong_score, b.weak_score, len(b.subset([1]))
    (100.0, 50.0, 1)

With the data (``../shared/data/routellm_evals`` beside the checkout)::

    mmlu = load_benchmark("mmlu", "/path/to/routellm_evals")   # 14,037 questions
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

STRONG_MODEL = "gpt-4-1106-preview"
WEAK_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
BENCHMARKS: tuple[str, ...] = ("gsm8k", "mmlu", "mt-bench")


@dataclass(frozen=True, eq=False)
class Benchmark:
    """One evaluation set: per question, the routed prompt and both models' scores.

    Attributes:
        name: "mmlu", "gsm8k", "mt-bench" or any label.
        prompts: the text the router scores (MT-Bench: turn 1, as RouteLLM routes).
        strong_scores, weak_scores: per question; 0/1 correctness (MMLU, GSM8K) or the mean
            judge score over the turns (MT-Bench, 1-10).
        question_ids: group ids for cross-validation folds. MT-Bench: its ``question_id``;
            MMLU/GSM8K: the row of the first occurrence of the prompt in the undecontaminated
            data, so rows repeating the same prompt share one id.
        strong_model, weak_model: model names as in the source files.
        n_removed_contaminated: questions dropped because RouteLLM's training data contains them.
        score_scale: factor from a per-question mean to the reported unit (100 for accuracy in
            percent as the paper prints it, 1 for MT-Bench).
        score_unit: axis label for the reported unit.
        categories: optional per-question label (MMLU subject, MT-Bench category).
    """

    name: str
    prompts: list[str]
    strong_scores: np.ndarray
    weak_scores: np.ndarray
    question_ids: np.ndarray
    strong_model: str
    weak_model: str
    n_removed_contaminated: int
    score_scale: float = 1.0
    score_unit: str = "score"
    categories: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.prompts)
        object.__setattr__(self, "prompts", list(self.prompts))
        for field in ("strong_scores", "weak_scores"):
            arr = np.asarray(getattr(self, field), dtype=float)
            if arr.shape != (n,):
                raise ValueError(f"{field} has shape {arr.shape}; expected ({n},), one per prompt")
            if not np.isfinite(arr).all():
                raise ValueError(f"{field} contains NaN or infinite values")
            object.__setattr__(self, field, arr)
        ids = np.asarray(self.question_ids)
        if ids.shape != (n,):
            raise ValueError(f"question_ids has shape {ids.shape}; expected ({n},)")
        object.__setattr__(self, "question_ids", ids)
        if self.categories is not None:
            cats = np.asarray(self.categories, dtype=object)
            if cats.shape != (n,):
                raise ValueError(f"categories has shape {cats.shape}; expected ({n},)")
            object.__setattr__(self, "categories", cats)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def strong_score(self) -> float:
        """The strong model's score on every question (percent accuracy or mean MT-Bench score)."""
        return float(self.score_scale * self.strong_scores.mean())

    @property
    def weak_score(self) -> float:
        """The weak model's score on every question, in the same unit as :attr:`strong_score`."""
        return float(self.score_scale * self.weak_scores.mean())

    def subset(self, indices: Sequence[int] | np.ndarray) -> Benchmark:
        """A benchmark of the questions at ``indices`` (integer positions or a boolean mask)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask has shape {idx.shape}; expected ({len(self)},)")
            idx = np.flatnonzero(idx)
        idx = idx.astype(int, copy=False)
        return replace(
            self,
            prompts=[self.prompts[i] for i in idx],
            strong_scores=self.strong_scores[idx],
            weak_scores=self.weak_scores[idx],
            question_ids=self.question_ids[idx],
            categories=None if self.categories is None else self.categories[idx],
        )


def load_benchmark(
    name: str,
    data_dir: str | Path,
    *,
    strong_model: str = STRONG_MODEL,
    weak_model: str = WEAK_MODEL,
    decontaminate: bool = True,
) -> Benchmark:
    """Load one of RouteLLM's evaluation sets from ``data_dir``.

    ``data_dir`` is RouteLLM's ``routellm/evals`` layout (``mmlu/responses/mmlu_*.csv``,
    ``gsm8k/gsm8k_responses.csv``, ``mt_bench/question.jsonl`` + ``judgements.jsonl``, each with
    ``contaminated_prompts.jsonl``); a folder holding it as ``routellm_evals/`` works too.
    With ``decontaminate`` (the default, as the paper) rows whose prompt equals an
    ``eval_prompt`` of ``contaminated_prompts.jsonl`` are removed (MT-Bench: either turn).

    Example:
        >>> load_benchmark("hellaswag", ".")
        Traceback (most recent call last):
        ...
        ValueError: unknown benchmark 'hellaswag'; expected one of ['gsm8k', 'mmlu', 'mt-bench']

    Raises:
        ValueError: unknown name, a model missing from the data, malformed values.
        FileNotFoundError: a file of the layout is missing (named in the message).
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARKS)}")
    root = _resolve_root(Path(data_dir), key)
    if key == "mt-bench":
        return _load_mt_bench(root / "mt_bench", strong_model, weak_model, decontaminate)
    if key == "mmlu":
        files = sorted((root / "mmlu" / "responses").glob("mmlu_*.csv"))
        if not files:
            raise FileNotFoundError(
                f"no MMLU response files: expected {root / 'mmlu' / 'responses' / 'mmlu_*.csv'}"
            )
        frames = []
        for f in files:
            df = _read_csv(f, strong_model, weak_model)
            df["category"] = f.stem.removeprefix("mmlu_")
            frames.append(df)
        return _correctness_benchmark(
            "mmlu", pd.concat(frames, ignore_index=True), root / "mmlu",
            strong_model, weak_model, decontaminate,
        )
    path = root / "gsm8k" / "gsm8k_responses.csv"
    df = _read_csv(path, strong_model, weak_model)
    df["category"] = "gsm8k"
    return _correctness_benchmark(
        "gsm8k", df, root / "gsm8k", strong_model, weak_model, decontaminate
    )


_SUBDIR = {"mmlu": "mmlu", "gsm8k": "gsm8k", "mt-bench": "mt_bench"}


def _resolve_root(data_dir: Path, key: str) -> Path:
    if not (data_dir / _SUBDIR[key]).is_dir() and (data_dir / "routellm_evals").is_dir():
        return data_dir / "routellm_evals"
    if not data_dir.is_dir():
        raise FileNotFoundError(f"benchmark data folder {data_dir} does not exist")
    return data_dir


def _read_csv(path: Path, strong_model: str, weak_model: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"benchmark file {path} does not exist")
    df = pd.read_csv(path)
    _require_columns(df, ["prompt", strong_model, weak_model], path)
    df = df.loc[:, ["prompt", strong_model, weak_model]]
    for model in (strong_model, weak_model):
        df[model] = _as_correctness(df[model], path)
    return df


def _require_columns(df: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path} has no column(s) {missing}; columns available: {list(df.columns)}"
        )


def _contaminated_prompts(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; it lists the eval prompts to remove "
            "(pass decontaminate=False to score every question)"
        )
    rows = _read_jsonl(path)
    if rows and "eval_prompt" not in rows[0]:
        raise ValueError(f"{path} has no field 'eval_prompt'; fields available: {list(rows[0])}")
    return {r["eval_prompt"] for r in rows}


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _as_correctness(values: pd.Series, path: Path) -> np.ndarray:
    arr = values.to_numpy()
    if values.dtype != bool:
        ok = values.isin([0, 1, True, False]) & values.notna()
        if not ok.all():
            bad = values[~ok].iloc[0]
            raise ValueError(
                f"{path}: column {values.name!r} must hold 0/1 correctness, got {bad!r}"
            )
    return arr.astype(float)


def _correctness_benchmark(
    name: str,
    df: pd.DataFrame,
    folder: Path,
    strong_model: str,
    weak_model: str,
    decontaminate: bool,
) -> Benchmark:
    df = df.reset_index(drop=True)
    # Ids are assigned before decontamination so they do not shift with the contaminated list.
    first_row = df.groupby("prompt", sort=False).ngroup()
    first_index = pd.Series(df.index).groupby(first_row).transform("min")
    df["question_id"] = first_index.to_numpy()
    n_total = len(df)
    if decontaminate:
        df = df[~df["prompt"].isin(_contaminated_prompts(folder))]
    return Benchmark(
        name=name,
        prompts=df["prompt"].astype(str).tolist(),
        strong_scores=df[strong_model].to_numpy(dtype=float),
        weak_scores=df[weak_model].to_numpy(dtype=float),
        question_ids=df["question_id"].to_numpy(),
        strong_model=strong_model,
        weak_model=weak_model,
        n_removed_contaminated=n_total - len(df),
        score_scale=100.0,
        score_unit="accuracy (%)",
        categories=df["category"].to_numpy(dtype=object),
    )


def _load_mt_bench(
    folder: Path, strong_model: str, weak_model: str, decontaminate: bool
) -> Benchmark:
    q_path, j_path = folder / "question.jsonl", folder / "judgements.jsonl"
    if not q_path.is_file():
        raise FileNotFoundError(f"MT-Bench questions file {q_path} does not exist")
    if not j_path.is_file():
        raise FileNotFoundError(
            f"MT-Bench judgements file {j_path} does not exist (RouteLLM's per-answer GPT-4 "
            "grades; they are held out of the shared data)"
        )
    questions = pd.DataFrame(_read_jsonl(q_path))
    _require_columns(questions, ["question_id", "turns"], q_path)
    judgements = pd.DataFrame(_read_jsonl(j_path))
    _require_columns(judgements, ["question_id", "model", "score", "turn"], j_path)

    n_total = len(questions)
    if decontaminate:
        bad = _contaminated_prompts(folder)
        contaminated = questions["turns"].map(lambda t: any(turn in bad for turn in t[:2]))
        questions = questions[~contaminated]

    models = sorted(judgements["model"].astype(str).unique())
    for model in (strong_model, weak_model):
        if model not in models:
            raise ValueError(
                f"{j_path} has no judgements of model {model!r}; models available: {models}"
            )
    scores = pd.to_numeric(judgements["score"], errors="coerce")
    if scores.isna().any():
        bad_score = judgements["score"][scores.isna()].iloc[0]
        raise ValueError(f"{j_path}: non-numeric score {bad_score!r}")
    # score -1 marks a judgement that failed to parse (FastChat's convention): not a grade.
    valid = judgements[(scores != -1).to_numpy()].assign(score=scores[scores != -1])
    per_question = valid.groupby(["question_id", "model"])["score"].mean().unstack("model")
    per_question = per_question.reindex(columns=[strong_model, weak_model])

    ids = questions["question_id"].to_numpy()
    strong, weak = (per_question[m].reindex(ids) for m in (strong_model, weak_model))
    lacking = sorted(int(i) for i in ids[(strong.isna() | weak.isna()).to_numpy()])
    if lacking:
        raise ValueError(
            f"{j_path} has no valid judgement of {strong_model!r} or {weak_model!r} "
            f"for question_id(s) {lacking}"
        )
    return Benchmark(
        name="mt-bench",
        prompts=questions["turns"].map(lambda t: t[0]).tolist(),
        strong_scores=strong.to_numpy(),
        weak_scores=weak.to_numpy(),
        question_ids=ids,
        strong_model=strong_model,
        weak_model=weak_model,
        n_removed_contaminated=n_total - len(questions),
        score_scale=1.0,
        score_unit="MT-Bench score (1-10)",
        categories=(
            questions["category"].to_numpy(dtype=object) if "category" in questions else None
        ),
    )
