"""Label prompts with an LLM judge: both models answer, the judge compares, the battle is stored.

This is what ``routellm label`` runs. For each prompt, the strong and the weak model answer,
the :class:`~routellm_core.learning.judge.PairwiseJudge` compares the answers in both orders,
and the battle (``model_a`` = strong, ``model_b`` = weak) goes to the traffic store with its
provenance before the next prompt starts, so that a crash or Ctrl-C loses nothing and a rerun
continues where it stopped (battles already stored are skipped).

Calls run ``concurrency`` at a time; a rate limit, timeout or server error is retried with
exponential backoff; a prompt whose model keeps failing is counted as failed and not stored
(a rerun tries it again). With a dollar ``budget``, no new prompt starts once the cost ledger
of the labelling (both answers and the judge's calls, priced like routed calls) reaches it.

Example:
    >>> import asyncio, os, tempfile
    >>> from routellm_core.learning import JudgePrompt, TrafficStore, label
    >>> async def strong(system, user): return "Paris, the capital of France since 508."
    >>> async def weak(system, user): return "Paris."
    >>> async def judge(system, user):
    ...     return "A is more complete. [[A]]" if "508" in user.split("Assistant B")[0] else "[[B]]"
    >>> prompts = {"pair-v2": JudgePrompt("pair-v2", "Judge.", "{question} A: {answer_a} Assistant B: {answer_b}")}
    >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "t.db"))
    >>> report = label(["Capital of France?"], strong=strong, weak=weak, judge=judge, store=store,
    ...                judge_prompts=prompts, progress=False)
    >>> report.labelled, store.training_battles()["winner"].tolist()
    (1, ['a'])
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from routellm_core.costs import PriceSource, count_tokens, estimate_message_tokens
from routellm_core.learning.judge import (
    GENERAL_PROMPT,
    REFERENCE_PROMPT,
    JudgePrompt,
    PairwiseJudge,
    load_judge_prompts,
)
from routellm_core.learning.models import Generation, as_chat_fn, model_name
from routellm_core.learning.store import TrafficStore, battle_key, open_store

T = TypeVar("T")
TRANSIENT_NAMES = (
    "RateLimit", "Timeout", "APIConnection", "ServiceUnavailable", "InternalServer", "Overloaded",
)
TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_PROMPT_FILE = 256 << 20


@dataclass(frozen=True)
class Prompt:
    """A prompt to label: the question and, for reference-guided judging, a reference answer."""

    query: str
    reference: str | None = None


@dataclass
class LabelReport:
    """What a labelling run did: battles ``labelled`` (of which ``unparsable``), prompts
    ``skipped`` (stored before), ``failed`` (a model kept failing; ``errors`` says why), the
    dollars ``spent`` on models with a known price, and ``stopped`` (why it stopped early, or
    ``None``)."""

    labelled: int = 0
    unparsable: int = 0
    skipped: int = 0
    failed: int = 0
    spent: Decimal = Decimal(0)
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"labelled {self.labelled} battle(s) ({self.unparsable} with an unparsable verdict), "
                f"skipped {self.skipped} already stored, {self.failed} failed; spent ${float(self.spent):.4f}")
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: a timeout, a connection error, a rate limit or a
    server error (by type, by a provider's class name, or by an HTTP ``status_code``)."""
    if isinstance(exc, (TimeoutError, ConnectionError, asyncio.TimeoutError)):
        return True
    if getattr(exc, "status_code", None) in TRANSIENT_STATUS:
        return True
    return any(n in type(exc).__name__ for n in TRANSIENT_NAMES)


async def with_retries(call: Callable[[], Awaitable[T]], *, retries: int, backoff: float) -> T:
    """``await call()``, retrying transient errors (:func:`is_transient`) up to ``retries``
    times with exponential backoff and jitter; other errors raise at once."""
    for attempt in range(retries + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == retries or not is_transient(exc):
                raise
            await asyncio.sleep(backoff * (2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def read_prompts(source: str | os.PathLike[str]) -> list[Prompt]:
    """Prompts from a JSONL file (``query`` / ``prompt`` / ``question`` / ``instruction`` or the
    first of ``turns``, and an optional ``reference``), a CSV file (the same column names), a
    text file (one prompt per line), or ``store:PATH_OR_URL`` (the captured calls' queries).

    Raises:
        ValueError: a missing or oversized file, a row without a prompt, or no prompts at all.
    """
    text = os.fspath(source)
    if text.startswith("store:"):
        store = open_store(text)
        queries = store.calls()["query"].dropna().drop_duplicates().tolist()
        prompts = [Prompt(q) for q in queries if str(q).strip()]
    else:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"prompt file {text!r} does not exist")
        if path.stat().st_size > MAX_PROMPT_FILE:
            raise ValueError(f"prompt file {text!r} is larger than {MAX_PROMPT_FILE >> 20} MiB")
        if path.suffix == ".jsonl":
            rows = []
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise ValueError(f"{text}: line {i} is not JSON ({exc})") from None
            prompts = [_prompt_from_row(r, f"{text}: line {i}") for i, r in enumerate(rows, 1)]
        elif path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                prompts = [_prompt_from_row(r, f"{text}: row {i}") for i, r in enumerate(csv.DictReader(f), 1)]
        else:
            prompts = [Prompt(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"no prompts in {text!r}")
    return prompts


def _prompt_from_row(row: Any, where: str) -> Prompt:
    if not isinstance(row, Mapping):
        raise ValueError(f"{where} is a {type(row).__name__}, not an object with a prompt")
    query = next((row[k] for k in ("query", "prompt", "question", "instruction") if isinstance(row.get(k), str)), None)
    if query is None and isinstance(row.get("turns"), list) and row["turns"] and isinstance(row["turns"][0], str):
        query = row["turns"][0]
    if not query or not query.strip():
        raise ValueError(f"{where} has no prompt text (query / prompt / question / instruction / turns)")
    reference = row.get("reference")
    return Prompt(query, reference if isinstance(reference, str) and reference.strip() else None)


class _Ledger:
    """The labelling run's spending, priced like routed calls."""

    def __init__(self, prices: PriceSource, budget: float | None) -> None:
        self.prices, self.spent = prices, Decimal(0)
        self.budget = None if budget is None else Decimal(str(budget))

    def price(self, gen: Generation, prompt_texts: Sequence[str]) -> Decimal | None:
        inp = gen.input_tokens if gen.input_tokens is not None else estimate_message_tokens(prompt_texts)
        out = gen.output_tokens if gen.output_tokens is not None else count_tokens(gen.text) if gen.text else 0
        cost = self.prices.cost(gen.model, input_tokens=inp, output_tokens=out)
        if cost is not None:
            self.spent += cost
        return cost

    def exhausted(self) -> bool:
        return self.budget is not None and self.spent >= self.budget


async def alabel(
    prompts: Iterable[str | Prompt],
    *,
    strong: Any,
    weak: Any,
    judge: Any,
    store: TrafficStore | str | os.PathLike[str],
    judge_prompts: Mapping[str, JudgePrompt] | str | os.PathLike[str] | None = None,
    prices: Mapping[str, tuple[float, float]] | PriceSource | None = None,
    budget: float | None = None,
    concurrency: int = 4,
    retries: int = 4,
    backoff: float = 1.0,
    judge_retries: int = 2,
    source: str = "label",
    progress: bool = True,
) -> LabelReport:
    """Label ``prompts`` (see the module docstring); the async form of :func:`label`.

    Args:
        strong / weak / judge: LangChain chat models, LlamaIndex LLMs or async functions
            ``(system, user) -> str``.
        store: where battles go (a :class:`TrafficStore`, a path or a URL).
        judge_prompts: FastChat's judge prompts (a mapping, or the JSONL path; default
            ``$ROUTELLM_JUDGE_PROMPTS``).
        prices: ``{model: (input_per_million, output_per_million)}`` in dollars or a
            :class:`PriceSource` (else genai-prices' table).
        budget: stop starting new prompts once this many dollars are spent.
        concurrency: prompts in flight at once.
        retries / backoff: retries of transient model errors, and the first backoff in seconds.
        judge_retries: re-asks of an unparsable verdict.
        source: the battles' ``source`` column.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if budget is not None and not budget > 0:
        raise ValueError(f"budget must be a positive number of dollars, got {budget!r}")
    items = [p if isinstance(p, Prompt) else Prompt(p) for p in prompts]
    if not all(isinstance(p.query, str) and p.query.strip() for p in items):
        raise ValueError("every prompt needs non-empty text")
    store = open_store(store)
    if not isinstance(judge_prompts, Mapping):
        judge_prompts = load_judge_prompts(judge_prompts)
    referee = PairwiseJudge(judge, judge_prompts, retries=judge_retries)
    strong_fn, weak_fn = as_chat_fn(strong), as_chat_fn(weak)
    names = model_name(strong), model_name(weak)
    if names[0] == names[1]:
        raise ValueError(f"the strong and weak models have the same name {names[0]!r}")
    ledger = _Ledger(prices if isinstance(prices, PriceSource) else PriceSource(prices), budget)
    if budget is not None:
        unpriced = [n for n in (*names, referee.name)
                    if ledger.prices.cost(n, input_tokens=1, output_tokens=1) is None]
        if unpriced:
            raise ValueError(f"no price for {unpriced}, so a budget cannot be kept; give prices="
                             "{name: (input_per_million, output_per_million)}")
    report, done = LabelReport(), store.done_keys()
    todo: list[tuple[Prompt, str]] = []
    for p in items:
        prompt_name = REFERENCE_PROMPT if p.reference else GENERAL_PROMPT
        key = battle_key(store._text(p.query) or "", names[0], names[1], referee.name, prompt_name)
        if key in done:
            report.skipped += 1
        else:
            done.add(key)
            todo.append((p, key))
    bar = _progress(len(todo), progress)

    async def one(p: Prompt) -> None:
        a, b = await asyncio.gather(
            with_retries(lambda: strong_fn(None, p.query), retries=retries, backoff=backoff),
            with_retries(lambda: weak_fn(None, p.query), retries=retries, backoff=backoff))
        verdict = await with_retries(lambda: referee.compare(p.query, a.text, b.text, p.reference),
                                     retries=retries, backoff=backoff)
        cost_a, cost_b = ledger.price(a, [p.query]), ledger.price(b, [p.query])
        judged = [ledger.price(g, [p.query, a.text, b.text]) for g in verdict.calls]
        priced = [c for c in judged if c is not None]
        cost_judge = sum(priced, Decimal(0)) if len(priced) == len(judged) else None
        store.add_battle(query=p.query, model_a=names[0], model_b=names[1], winner=verdict.winner, source=source,
                         judge=verdict.judge, judge_prompt=verdict.prompt, verdict_first=verdict.first,
                         verdict_second=verdict.second, answer_a=a.text, answer_b=b.text, cost_a=cost_a,
                         cost_b=cost_b, cost_judge=cost_judge)
        report.labelled += 1
        report.unparsable += verdict.winner is None

    queue = list(reversed(todo))

    async def worker() -> None:
        while queue and report.stopped is None:
            if ledger.exhausted():
                report.stopped = f"the budget of ${float(ledger.budget):.4f} is spent"  # type: ignore[arg-type]
                return
            p, _ = queue.pop()
            try:
                await one(p)
            except Exception as exc:  # this prompt fails; the run goes on and a rerun retries it
                report.failed += 1
                if len(report.errors) < 20:
                    report.errors.append(f"{p.query[:60]!r}: {type(exc).__name__}: {str(exc)[:200]}")
            bar.update(1)
            bar.set_postfix_str(f"${float(ledger.spent):.4f}")

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, max(len(todo), 1)))))
    finally:
        bar.close()
        report.spent = ledger.spent
    return report


def label(prompts: Iterable[str | Prompt], **kwargs: Any) -> LabelReport:
    """Label ``prompts`` and store the battles; see :func:`alabel` for the arguments."""
    return asyncio.run(alabel(prompts, **kwargs))


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="labelling", unit="prompt", file=sys.stderr,
                disable=not enabled or not sys.stderr.isatty())


__all__ = ["LabelReport", "Prompt", "alabel", "is_transient", "label", "read_prompts", "with_retries"]
