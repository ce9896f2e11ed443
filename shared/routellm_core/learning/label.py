"""Label prompts with an LLM judge: both models answer, the judge compares, the battle is stored.

This is what ``routellm label`` runs. For each prompt, the strong and the weak model answer,
the :class:`~routellm_core.learning.judge.PairwiseJudge` compares the answers in both orders,
and the battle (``model_a`` = strong, ``model_b`` = weak) goes to the traffic store with its
provenance before the next prompt starts, so that a crash or Ctrl-C loses nothing and a rerun
continues where it stopped (battles already stored are skipped).

Prompts run ``concurrency`` at a time; a rate limit, timeout or server error of a model or
judge call is retried (that call alone) with exponential backoff; a prompt whose model keeps
failing is counted as failed and not stored (a rerun tries it again).

Every call that returns enters the cost ledger at once, priced like routed calls: both answers,
each judge order and each re-ask, retries, and the calls of a battle that then fails. With a
dollar ``budget``, the ledger is checked before every call: none starts once the budget is
spent (calls already in flight finish and are counted, so the overshoot is at most what the
calls in flight cost). Before any model is called the arguments, the judge prompts and the
prices are checked and the store is written to once (a read-only or locked store is an
error then, not after paying); each prompt is claimed in the store right before its first
call, so two labellers on one store never pay for the same prompt.

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
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from routellm_core.costs import PriceSource, count_tokens, estimate_message_tokens
from routellm_core.errors import BudgetSpent, UnpricedModelsError
from routellm_core.learning.judge import (
    GENERAL_PROMPT,
    REFERENCE_PROMPT,
    JudgePrompt,
    PairwiseJudge,
    load_judge_prompts,
)
from routellm_core.learning.models import Generation, as_chat_fn, model_name
from routellm_core.naming import routed_names
from routellm_core.store import TrafficStore, battle_key, open_store

T = TypeVar("T")
TRANSIENT_NAMES = (
    "RateLimit", "Timeout", "APIConnection", "ServiceUnavailable", "InternalServer", "Overloaded",
)
TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_PROMPT_FILE = 256 << 20
CLAIM_TTL = 1800.0  # seconds a claim on a prompt lasts if its labeller dies (released as soon as the prompt is done)


@dataclass(frozen=True)
class Prompt:
    """A prompt to label: the question and, for reference-guided judging, a reference answer."""

    query: str
    reference: str | None = None


@dataclass
class LabelReport:
    """What a labelling run did: battles ``labelled`` (of which ``unparsable``), prompts
    ``skipped`` (stored before), ``claimed`` (skipped: another labeller on the same store was
    labelling them), ``failed`` (a model kept failing; ``errors`` says why), the dollars
    ``spent`` on every model and judge call that returned, with a known price (calls of failed
    and unfinished battles included), ``calls`` (those calls), and ``stopped`` (why it stopped
    early, or ``None``)."""

    labelled: int = 0
    unparsable: int = 0
    skipped: int = 0
    failed: int = 0
    spent: Decimal = Decimal(0)
    claimed: int = 0
    calls: int = 0
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"labelled {self.labelled} battle(s) ({self.unparsable} with an unparsable verdict), "
                f"skipped {self.skipped} already stored, "
                + (f"{self.claimed} claimed by another labeller, " if self.claimed else "")
                + f"{self.failed} failed; spent ${float(self.spent):.4f}")
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
    times with exponential backoff and jitter; other errors raise at once.

    Raises:
        ValueError: ``retries < 0`` or ``backoff < 0``, before ``call`` is made.
    """
    _check_retries(retries, backoff)
    for attempt in range(retries + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == retries or not is_transient(exc):
                raise
            await asyncio.sleep(backoff * (2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _check_retries(retries: Any, backoff: Any, judge_retries: Any = 0) -> None:
    for name, value in (("retries", retries), ("judge_retries", judge_retries)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not 0 <= backoff < float("inf"):
        raise ValueError(f"backoff must be a finite number of seconds >= 0, got {backoff!r}")


def read_prompts(source: str | os.PathLike[str]) -> list[Prompt]:
    """Prompts from a JSONL file (``query`` / ``prompt`` / ``question`` / ``instruction`` or the
    first of ``turns``, and an optional ``reference``), a CSV file (the same column names), a
    text file (one prompt per line), or ``store:PATH_OR_URL`` (the captured calls' queries).

    Raises:
        ValueError: a missing or oversized file, a row without a prompt, or no prompts at all.
    """
    text = os.fspath(source)
    if text.startswith("store:"):
        prompts = [Prompt(q) for q in open_store(text, must_exist=True).call_queries()]
    else:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"prompt file {text!r} does not exist")
        if path.stat().st_size > MAX_PROMPT_FILE:
            raise ValueError(f"prompt file {text!r} is larger than {MAX_PROMPT_FILE >> 20} MiB")
        if path.suffix == ".jsonl":
            rows = []
            for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise ValueError(f"{text}: line {i} is not JSON ({exc})") from None
            prompts = [_prompt_from_row(r, f"{text}: line {i}") for i, r in enumerate(rows, 1)]
        elif path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark
                prompts = [_prompt_from_row(r, f"{text}: row {i}") for i, r in enumerate(csv.DictReader(f), 1)]
        else:
            prompts = [Prompt(line) for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
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
    """The labelling run's spending, priced like routed calls. Each model and judge call is
    charged as it returns (whether its battle is then stored or not), and the budget is checked
    before each call starts (:meth:`check`)."""

    def __init__(self, prices: PriceSource, budget: float | None) -> None:
        self.prices, self.spent, self.calls = prices, Decimal(0), 0
        self.budget = None if budget is None else Decimal(str(budget))

    def charge(self, gen: Generation, prompt_texts: Sequence[str], name: str | None = None) -> Decimal | None:
        """Enter one returned call, priced by ``name`` (default: the model's own name); its cost
        (``None`` when it has no price)."""
        inp = gen.input_tokens if gen.input_tokens is not None else estimate_message_tokens(prompt_texts)
        out = gen.output_tokens if gen.output_tokens is not None else count_tokens(gen.text) if gen.text else 0
        cost = self.prices.cost(name or gen.model, input_tokens=inp, output_tokens=out)
        self.calls += 1
        if cost is not None:
            self.spent += cost
        return cost

    def exhausted(self) -> bool:
        return self.budget is not None and self.spent >= self.budget

    def check(self) -> None:
        """Raise :class:`BudgetSpent` when no further call may start."""
        if self.exhausted():
            raise BudgetSpent(self.stop_reason())

    def stop_reason(self) -> str:
        return f"the budget of ${float(self.budget):.4f} is spent"  # type: ignore[arg-type]


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
    claim_ttl: float = CLAIM_TTL,
    names: Mapping[str, str] | None = None,
) -> LabelReport:
    """Label ``prompts`` (see the module docstring); the async form of :func:`label`.

    Args:
        strong / weak / judge: LangChain chat models, LlamaIndex LLMs or async functions
            ``(system, user) -> str``.
        names: the names of the strong and weak models in the battles and the ledger, as the
            adapters' ``names=`` (e.g. ``{"strong": "gpt-5@high", "weak": "gpt-5@minimal"}``):
            one naming rule (:mod:`routellm_core.naming`) at label time and at route time, so
            labels and routed calls name a model alike; a name is priced by itself, else by
            the model it runs. Default: the models' own names (two models of one name become
            ``"<name>@strong"`` / ``"<name>@weak"``, with a warning, as when routing).
        store: where battles go (a :class:`TrafficStore`, a path or a URL); it must be
            writable (checked before any model is called).
        judge_prompts: FastChat's judge prompts (a mapping, or the JSONL path; default
            ``$ROUTELLM_JUDGE_PROMPTS``).
        prices: ``{model: (input_per_million, output_per_million)}`` in dollars or a
            :class:`PriceSource` (else genai-prices' table).
        budget: no model or judge call starts once this many dollars are spent.
        concurrency: prompts in flight at once.
        retries / backoff: retries of transient errors of each model and judge call, and the
            first backoff in seconds.
        judge_retries: re-asks of an unparsable verdict.
        source: the battles' ``source`` column.
        claim_ttl: seconds a prompt stays claimed by this run (another labeller on the same
            store skips it meanwhile); the claim of a run that died expires after this.

    Raises:
        ValueError: bad arguments or unpriced models with a budget; JudgeError: unusable judge
            prompts; StoreError: a store that cannot be written. All before any model is called.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if budget is not None and not budget > 0:
        raise ValueError(f"budget must be a positive number of dollars, got {budget!r}")
    _check_retries(retries, backoff, judge_retries)
    if not claim_ttl > 0:
        raise ValueError(f"claim_ttl must be a positive number of seconds, got {claim_ttl!r}")
    items = [p if isinstance(p, Prompt) else Prompt(p) for p in prompts]
    if not all(isinstance(p.query, str) and p.query.strip() for p in items):
        raise ValueError("every prompt needs non-empty text")
    if not isinstance(judge_prompts, Mapping):
        judge_prompts = load_judge_prompts(judge_prompts)
    referee = PairwiseJudge(judge, judge_prompts, retries=judge_retries)
    strong_fn, weak_fn = as_chat_fn(strong), as_chat_fn(weak)
    if strong is weak:
        raise ValueError(f"the strong and weak models are one model (the same name {model_name(strong)!r}): label "
                         "two different models")
    naming = routed_names(strong=strong, weak=weak, names=names)
    names_by_route = naming.pool_args()
    pair = names_by_route["strong"], names_by_route["weak"]
    source_prices = prices if isinstance(prices, PriceSource) else PriceSource(prices)
    ledger = _Ledger(source_prices.with_price_as(naming.price_as), budget)
    if budget is not None:
        unpriced = [n for n in (*pair, referee.name)
                    if ledger.prices.known_cost(n, input_tokens=1, output_tokens=1) is None]
        if unpriced:
            raise UnpricedModelsError(unpriced)
    store = open_store(store)
    store.check_writable()  # a read-only or locked store fails here, not after the models were paid
    owner = uuid.uuid4().hex
    report = LabelReport()
    keyed = [(p, battle_key(store._text(p.query) or "", pair[0], pair[1], referee.name,
                            REFERENCE_PROMPT if p.reference else GENERAL_PROMPT)) for p in items]
    done = store.existing_keys(key for _, key in keyed)  # looked up by index: never the whole store
    todo: list[tuple[Prompt, str]] = []
    for p, key in keyed:
        if key in done:
            report.skipped += 1
        else:
            done.add(key)
            todo.append((p, key))
    bar = _progress(len(todo), progress)
    call_names = {strong_fn: pair[0], weak_fn: pair[1]}  # the judge's calls go by its own name

    async def paid(fn: Callable[[str | None, str], Awaitable[Generation]], system: str | None, user: str,
                   costs: list[Decimal | None]) -> Generation:
        """One model or judge call: the budget is checked before each attempt, a transient
        error is retried, and an attempt that returns is charged at once."""
        async def attempt() -> Generation:
            ledger.check()
            gen = await fn(system, user)
            costs.append(ledger.charge(gen, [t for t in (system, user) if t], name=call_names.get(fn)))
            return gen

        return await with_retries(attempt, retries=retries, backoff=backoff)

    async def one(p: Prompt) -> None:
        cost_a: list[Decimal | None] = []
        cost_b: list[Decimal | None] = []
        cost_judge: list[Decimal | None] = []
        # both answers are awaited (and charged) even when one raises
        answered = await asyncio.gather(paid(strong_fn, None, p.query, cost_a), paid(weak_fn, None, p.query, cost_b),
                                        return_exceptions=True)
        errors = [r for r in answered if isinstance(r, BaseException)]
        if errors:
            raise next((e for e in errors if not isinstance(e, BudgetSpent)), errors[0])
        a, b = (r for r in answered if isinstance(r, Generation))
        verdict = await referee.compare(p.query, a.text, b.text, p.reference,
                                        ask=lambda system, user: paid(referee.fn, system, user, cost_judge))
        known = [c for c in cost_judge if c is not None]
        judge_cost = sum(known, Decimal(0)) if len(known) == len(cost_judge) else None
        store.add_battle(query=p.query, model_a=pair[0], model_b=pair[1], winner=verdict.winner, source=source,
                         judge=verdict.judge, judge_prompt=verdict.prompt, verdict_first=verdict.first,
                         verdict_second=verdict.second, answer_a=a.text, answer_b=b.text, cost_a=cost_a[-1],
                         cost_b=cost_b[-1], cost_judge=judge_cost)
        report.labelled += 1
        report.unparsable += verdict.winner is None

    def failed(p: Prompt, exc: BaseException) -> None:
        report.failed += 1
        if len(report.errors) < 20:
            report.errors.append(f"{p.query[:60]!r}: {type(exc).__name__}: {str(exc)[:200]}")

    queue = list(reversed(todo))

    async def worker() -> None:
        while queue and report.stopped is None:
            if ledger.exhausted():
                report.stopped = ledger.stop_reason()
                return
            p, key = queue.pop()
            try:  # claimed right before paying: a labeller beside this one on the store skips it
                claimed = store.claim(key, owner, claim_ttl)
                if not claimed and store.has_battle(key):
                    report.skipped += 1
                elif not claimed:
                    report.claimed += 1
            except Exception as exc:  # the store failed: nothing was paid for this prompt
                failed(p, exc)
                claimed = False
            if claimed:
                try:
                    await one(p)
                except BudgetSpent as exc:  # not failed: a rerun with more budget labels it
                    report.stopped = str(exc)
                except Exception as exc:  # this prompt fails; the run goes on and a rerun retries it
                    failed(p, exc)
                finally:
                    try:
                        store.release(key, owner)
                    except Exception as exc:  # the claim expires after claim_ttl
                        if len(report.errors) < 20:
                            report.errors.append(f"{p.query[:60]!r}: its claim was not released "
                                                 f"({type(exc).__name__}: {str(exc)[:200]})")
            bar.update(1)
            bar.set_postfix_str(f"${float(ledger.spent):.4f}")

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, max(len(todo), 1)))))
    finally:
        bar.close()
        report.spent, report.calls = ledger.spent, ledger.calls
    return report


def label(prompts: Iterable[str | Prompt], **kwargs: Any) -> LabelReport:
    """Label ``prompts`` and store the battles; see :func:`alabel` for the arguments."""
    return asyncio.run(alabel(prompts, **kwargs))


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    from routellm_core.progress import progress_wanted

    return tqdm(total=total, desc="labelling", unit="prompt", file=sys.stderr,
                disable=not progress_wanted(enabled))


__all__ = ["BudgetSpent", "LabelReport", "Prompt", "alabel", "is_transient", "label", "read_prompts", "with_retries"]
