"""Shadow labelling: for a fraction of live calls, ask the model that was not chosen as well, in
the background, let the judge compare the two answers, and store the battle.

Both adapters take ``shadow=`` (a :class:`ShadowLabeller`). After a routed call has answered,
the adapter hands the labeller the decision, the query text, the answer and its routed models;
:meth:`ShadowLabeller.submit` decides (``fraction``) and returns at once. The other model is
asked the routed query alone (a single user turn, not the whole conversation), on a background
event loop; the user's response and latency are unaffected. At most ``concurrency`` shadow
labellings run at once: a call that finds them all busy is skipped (counted), never queued
without bound. With a dollar ``budget``, shadowing stops once the shadow and judge calls have
cost that much (a warning says so). Their costs go to ``ledger`` as shadow cost
(:func:`routellm_core.costs.shadow_record`), apart from the calls' own cost.

The model that was not chosen is the other model of a pair; in a pool, the reference model
(the first), or the next best when the reference was chosen. A pair's battle has the strong
model as ``model_a``; a pool's has the chosen model as ``model_a``.

Example:
    >>> import os, tempfile
    >>> from routellm_core.learning import JudgePrompt
    >>> from routellm_core.learning.shadow import ShadowLabeller
    >>> from routellm_core.routing import Decision
    >>> async def strong(system, user): return "Paris, since 508."
    >>> async def judge(system, user): return "[[A]]" if "508" in user.split("Assistant B")[0] else "[[B]]"
    >>> prompts = {"pair-v2": JudgePrompt("pair-v2", "Judge.", "{question} A: {answer_a} Assistant B: {answer_b}")}
    >>> shadow = ShadowLabeller(judge, os.path.join(tempfile.mkdtemp(), "t.db"), judge_prompts=prompts, fraction=1.0)
    >>> d = Decision.by_threshold(0.2, 0.5, {"strong": "big", "weak": "small"}, router="r")
    >>> shadow.submit(d, query="Capital of France?", answer="Paris.", models={"strong": strong, "weak": None})
    True
    >>> shadow.flush()
    True
    >>> shadow.store.training_battles()[["model_a", "model_b", "winner", "source"]].values.tolist()
    [['big', 'small', 'a', 'shadow']]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from routellm_core.costs import CostLedger, PriceSource, count_tokens, estimate_message_tokens, shadow_record
from routellm_core.learning.judge import JudgePrompt, PairwiseJudge, load_judge_prompts
from routellm_core.learning.models import Generation, as_chat_fn
from routellm_core.learning.store import TrafficStore, open_store

logger = logging.getLogger("routellm_core.learning")


def shadow_route(decision: Any) -> str | None:
    """The route of the model that was not chosen (see the module docstring), or ``None``."""
    if decision.rule == "threshold":
        return "weak" if decision.route == "strong" else "strong"
    if decision.route != decision.reference:
        return decision.reference
    rest = [r for r in decision.ranking() if r != decision.route]
    return rest[0] if rest else None


class ShadowLabeller:
    """Labels a sample of live traffic in the background (see the module docstring).

    Args:
        judge: the judge model (a LangChain chat model, a LlamaIndex LLM or an async function).
        store: where battles go (a store, a SQLite path or a SQLAlchemy URL).
        judge_prompts: FastChat's judge prompts (a mapping or the JSONL path; default
            ``$ROUTELLM_JUDGE_PROMPTS``).
        fraction: the share of answered calls to shadow, in [0, 1].
        concurrency: shadow labellings in flight at most.
        budget: dollars of shadow and judge calls after which shadowing stops.
        prices: prices of the other models and the judge (else genai-prices').
        ledger: where shadow cost records go (a new :class:`CostLedger` by default).
        seed: seeds the sampling of calls.
    """

    def __init__(self, judge: Any, store: TrafficStore | str | os.PathLike[str], *,
                 judge_prompts: Mapping[str, JudgePrompt] | str | os.PathLike[str] | None = None,
                 fraction: float = 0.1, concurrency: int = 2, budget: float | None = None,
                 prices: Mapping[str, tuple[float, float]] | PriceSource | None = None,
                 ledger: CostLedger | None = None, seed: int | None = None) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if budget is not None and not budget > 0:
            raise ValueError(f"budget must be a positive number of dollars, got {budget!r}")
        prompts = judge_prompts if isinstance(judge_prompts, Mapping) else load_judge_prompts(judge_prompts)
        self.judge = PairwiseJudge(judge, prompts)
        self.store = open_store(store)
        self.fraction, self.concurrency = fraction, concurrency
        self.budget = None if budget is None else Decimal(str(budget))
        self.prices = prices if isinstance(prices, PriceSource) else PriceSource(prices)
        self.ledger = ledger if ledger is not None else CostLedger()
        self.labelled = self.skipped_busy = self.skipped_budget = self.errors = 0
        self._rng = random.Random(seed)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ the live side
    @property
    def spent(self) -> Decimal:
        """Dollars spent on shadow and judge calls so far (known prices)."""
        return self.ledger.totals().shadow_cost

    def submit(self, decision: Any, *, query: str, answer: str, models: Mapping[str, Any],
               call_id: str | None = None) -> bool:
        """Maybe shadow one answered call (``models``: the adapter's routed models by route);
        returns at once, ``True`` when a shadow labelling started. Never raises."""
        try:
            if decision.router_failed or self._rng.random() >= self.fraction:
                return False
            if self.budget is not None and self.spent >= self.budget:
                self.skipped_budget += 1
                self._warn("budget", f"shadow labelling stopped: its budget of ${float(self.budget):.4f} is spent")
                return False
            other = shadow_route(decision)
            if other is None or not self._slots.acquire(blocking=False):
                self.skipped_busy += other is not None
                return False
            future = asyncio.run_coroutine_threadsafe(
                self._label(decision, other, query, answer, models[other], call_id), self._event_loop())
        except Exception as exc:  # shadowing never fails the user's call
            self._failed(exc)
            return False
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return True

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        self._slots.release()
        with self._lock:
            self._pending.discard(future)
        exc = future.exception()
        if exc is not None:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self._warn(type(exc).__name__, f"a shadow labelling failed ({type(exc).__name__}: {str(exc)[:200]}); "
                                       f"{self.errors} failed so far")

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="routellm-shadow", daemon=True).start()
                self._loop = loop
            return self._loop

    # ------------------------------------------------------------------ the background side
    def _charge(self, gen: Generation, route: str, prompt_texts: list[str]) -> Decimal | None:
        inp = gen.input_tokens if gen.input_tokens is not None else estimate_message_tokens(prompt_texts)
        out = gen.output_tokens if gen.output_tokens is not None else (count_tokens(gen.text) if gen.text else 0)
        record = shadow_record(model=gen.model, route=route, input_tokens=inp, output_tokens=out, prices=self.prices,
                               tokens_estimated=gen.input_tokens is None)
        self.ledger.add(record)
        return record.cost

    async def _label(self, decision: Any, other: str, query: str, answer: str, model: Any,
                     call_id: str | None) -> None:
        other_gen = await as_chat_fn(model)(None, query)
        cost_other = self._charge(other_gen, other, [query])
        if decision.rule == "threshold":  # model_a is the strong model
            chosen_is_a = decision.route == "strong"
        else:  # model_a is the chosen model
            chosen_is_a = True
        a, b = (answer, other_gen.text) if chosen_is_a else (other_gen.text, answer)
        names = (decision.model, decision.models[other]) if chosen_is_a else (decision.models[other], decision.model)
        verdict = await self.judge.compare(query, a, b)
        judged = [self._charge(g, "judge", [query, a, b]) for g in verdict.calls]
        priced = [c for c in judged if c is not None]
        cost_judge = sum(priced, Decimal(0)) if len(priced) == len(judged) else None
        self.store.add_battle(query=query, model_a=names[0], model_b=names[1], winner=verdict.winner, source="shadow",
                              judge=verdict.judge, judge_prompt=verdict.prompt, verdict_first=verdict.first,
                              verdict_second=verdict.second, answer_a=a, answer_b=b,
                              cost_a=None if chosen_is_a else cost_other, cost_b=cost_other if chosen_is_a else None,
                              cost_judge=cost_judge, call_id=call_id)
        self.labelled += 1

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait for the shadow labellings in flight (``False`` on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            concurrent.futures.wait(pending, timeout=left)

    def __repr__(self) -> str:
        return (f"ShadowLabeller(fraction={self.fraction}, labelled={self.labelled}, "
                f"spent=${float(self.spent):.4f}, store={self.store.url!r})")


__all__ = ["ShadowLabeller", "shadow_route"]
