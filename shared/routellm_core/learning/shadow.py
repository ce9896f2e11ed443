"""Shadow labelling: for a fraction of live calls, ask the model that was not chosen as well, in
the background, let the judge compare the two answers, and store the battle.

Both adapters take ``shadow=`` (a :class:`ShadowLabeller`). After a routed call has answered,
the adapter hands the labeller the decision, the query text, the answer and its routed models;
:meth:`ShadowLabeller.submit` decides (``fraction``, ``select``) and returns at once. The other model is
asked the routed query alone (a single user turn, not the whole conversation), on a background
event loop; the user's response and latency are unaffected. At most ``concurrency`` shadow
labellings run at once: a call that finds them all busy is skipped (counted), never queued
without bound. With a dollar ``budget``, shadowing stops once the shadow and judge calls have
cost that much (a warning says so): the budget is checked before each of those calls, each is
charged as it returns, and every model must have a price (an unpriced judge is refused when
the labeller is built; a call whose other model is unpriced is skipped and counted). Their
costs go to ``ledger`` as shadow cost (:func:`routellm_core.costs.shadow_record`), apart from
the calls' own cost. At interpreter exit the labellings in flight are given ``flush_at_exit``
seconds to finish and be stored; what does not finish is counted and warned about.

Which calls are shadowed (``select``): ``"random"`` shadows each call with probability
``fraction``. ``"uncertain"`` shadows a call with a probability that falls with its decision's
distance from the threshold, ``|win_rate - threshold|`` (for a pool: the utility gap between
the chosen model and the next best), and keeps the expected shadowed share at ``fraction``.
The rule: ``r`` is the call's rank among the last ``window`` calls' distances (0 nearest the
threshold, 1 farthest; ties count half), and the call is shadowed with probability
``p(r) = fraction + 2 * min(fraction, 1 - fraction) * (0.5 - r)``: ``2 * fraction`` for the
nearest call and 0 for the farthest when ``fraction <= 0.5``, 1 and ``2 * fraction - 1`` when it
is more. Since the ranks of a steady stream are uniform, ``p`` averages ``fraction``; the first
call, with no history, and a call without a distance are shadowed with probability ``fraction``.

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
import atexit
import concurrent.futures
import difflib
import logging
import os
import random
import threading
import time
import weakref
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from routellm_core.costs import CostLedger, PriceSource, count_tokens, estimate_message_tokens, shadow_record
from routellm_core.errors import RouteLLMError
from routellm_core.learning.judge import JudgePrompt, PairwiseJudge, load_judge_prompts
from routellm_core.learning.models import Generation, as_chat_fn, model_name
from routellm_core.naming import price_keys_of
from routellm_core.store import TrafficStore, open_store

logger = logging.getLogger("routellm_core.learning")
FLUSH_AT_EXIT = 20.0  # seconds the interpreter's exit waits for the shadow labellings in flight
SELECTIONS = ("random", "uncertain")  # ShadowLabeller(select=...)
SELECT_WINDOW = 1000  # recent calls whose distances from the threshold rank a new one (select="uncertain")
_LABELLERS: weakref.WeakSet[ShadowLabeller] = weakref.WeakSet()


class _BudgetSpent(RouteLLMError):
    """A shadow call was not made: the shadow budget is spent."""


def _flush_at_exit() -> None:
    """At interpreter exit, let each labeller finish what is in flight (its ``flush_at_exit``
    seconds at most) and say what it could not finish."""
    for labeller in list(_LABELLERS):
        labeller._finish_at_exit()


def _register_exit_flush() -> None:
    # run before the thread pools shut down at exit (an asyncio HTTP client resolves names in
    # the loop's pool), which plain atexit handlers run after; atexit where that hook is missing
    import concurrent.futures.thread  # noqa: F401  (registers its own exit hook first, so ours runs before it)

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(_flush_at_exit)
            return
        except RuntimeError:  # the interpreter is exiting already
            pass
    atexit.register(_flush_at_exit)


_register_exit_flush()


def decision_margin(decision: Any) -> float | None:
    """How far a decision was from going the other way: ``|win_rate - threshold|`` for a pair, the
    utility (else score) gap between the chosen model and the next best for a pool; ``None``
    when the decision does not say."""
    try:
        if decision.rule == "threshold":
            if decision.win_rate is None or decision.threshold is None:
                return None
            margin = abs(float(decision.win_rate) - float(decision.threshold))
        else:
            values = dict(decision.utilities or decision.scores or {})
            if decision.route not in values or len(values) < 2:
                return None
            chosen = float(values.pop(decision.route))
            margin = abs(chosen - max(float(v) for v in values.values()))
    except (AttributeError, TypeError, ValueError):
        return None
    return margin if margin == margin and margin != float("inf") else None


def uncertain_probability(fraction: float, rank: float) -> float:
    """The chance that ``select="uncertain"`` shadows a call whose distance from the threshold has
    rank ``rank`` in [0, 1] (0: nearest); over uniform ranks it averages ``fraction``.

    Example:
        >>> [round(uncertain_probability(0.1, r), 3) for r in (0.0, 0.5, 1.0)]
        [0.2, 0.1, 0.0]
        >>> [round(uncertain_probability(0.8, r), 3) for r in (0.0, 0.5, 1.0)]
        [1.0, 0.8, 0.6]
    """
    return min(1.0, max(0.0, fraction + 2.0 * min(fraction, 1.0 - fraction) * (0.5 - rank)))


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
        select: which calls: ``"random"`` (each with probability ``fraction``) or
            ``"uncertain"`` (more often the nearer the decision was to the threshold, the same
            share on average; the rule is in the module docstring).
        window: the recent calls a call's distance from the threshold is ranked among
            (``select="uncertain"``).
        concurrency: shadow labellings in flight at most.
        budget: dollars of shadow and judge calls after which shadowing stops.
        prices: prices of the other models and the judge (else genai-prices').
        ledger: where shadow cost records go (a new :class:`CostLedger` by default).
        seed: seeds the sampling of calls.
        flush_at_exit: seconds the interpreter's exit waits for the labellings in flight
            (those it could not finish are counted in ``unfinished`` and warned about).

    With a ``budget`` every model must have a price: the judge is checked here (a
    ``ValueError``), the other model of each call when it is submitted (an unpriced one is
    skipped, counted in ``skipped_unpriced``, warned about once). The budget is checked before
    each shadow and judge call, and each call is charged as it returns.
    """

    def __init__(self, judge: Any, store: TrafficStore | str | os.PathLike[str], *,
                 judge_prompts: Mapping[str, JudgePrompt] | str | os.PathLike[str] | None = None,
                 fraction: float = 0.1, select: str = "random", window: int = SELECT_WINDOW,
                 concurrency: int = 2, budget: float | None = None,
                 prices: Mapping[str, tuple[float, float]] | PriceSource | None = None,
                 ledger: CostLedger | None = None, seed: int | None = None,
                 flush_at_exit: float = FLUSH_AT_EXIT) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
        if select not in SELECTIONS:
            close = difflib.get_close_matches(select, SELECTIONS, n=1) if isinstance(select, str) else []
            raise ValueError(f"unknown select {select!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                             + f" (choose from {', '.join(repr(v) for v in SELECTIONS)})")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if budget is not None and not budget > 0:
            raise ValueError(f"budget must be a positive number of dollars, got {budget!r}")
        if not 0 <= flush_at_exit < float("inf"):
            raise ValueError(f"flush_at_exit must be a finite number of seconds >= 0, got {flush_at_exit!r}")
        prompts = judge_prompts if isinstance(judge_prompts, Mapping) else load_judge_prompts(judge_prompts)
        self.judge = PairwiseJudge(judge, prompts)
        self.prices = prices if isinstance(prices, PriceSource) else PriceSource(prices)
        self.budget = None if budget is None else Decimal(str(budget))
        self._priced: dict[str, bool] = {}
        if self.budget is not None and not self._has_price(self.judge.name):
            raise ValueError(f"no price for the judge {self.judge.name!r}, so the shadow budget cannot be kept; give "
                             "prices={name: (input_per_million, output_per_million)}")
        self.store = open_store(store)
        self.fraction, self.concurrency, self.flush_at_exit = fraction, concurrency, float(flush_at_exit)
        self.select, self.window = select, window
        self._recent: deque[float] = deque()  # the last `window` margins, in arrival order
        self._recent_sorted: list[float] = []  # the same, sorted (ranks by bisection)
        self.ledger = ledger if ledger is not None else CostLedger()
        self.labelled = self.skipped_busy = self.skipped_budget = self.skipped_unpriced = self.errors = 0
        self.unfinished = 0
        self._rng = random.Random(seed)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned: set[str] = set()
        _LABELLERS.add(self)

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
            if decision.router_failed or self._rng.random() >= self.probability(decision):
                return False
            if self.budget is not None and self.spent >= self.budget:
                self.skipped_budget += 1
                self._warn("budget", f"shadow labelling stopped: its budget of ${float(self.budget):.4f} is spent")
                return False
            other = shadow_route(decision)
            if other is not None and self.budget is not None and not any(
                    self._has_price(k) for k in self._price_keys(decision, other, models[other])):
                self.skipped_unpriced += 1
                keys = self._price_keys(decision, other, models[other])
                shown = repr(keys[0]) + "".join(f" (model {k!r})" for k in keys[1:2])
                self._warn(f"unpriced:{keys[0]}", f"shadow labelling skips calls whose other model {shown} has no "
                                                  "price: the shadow budget could not be kept; give prices="
                                                  "{name: (input_per_million, output_per_million)}")
                return False
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

    def probability(self, decision: Any) -> float:
        """The chance that :meth:`submit` shadows this call (``select="uncertain"`` also records
        its distance from the threshold among the recent ones)."""
        if self.select == "random":
            return self.fraction
        margin = decision_margin(decision)
        if margin is None:
            return self.fraction
        with self._lock:
            seen = len(self._recent_sorted)
            if seen:
                below = bisect_left(self._recent_sorted, margin)
                ties = bisect_right(self._recent_sorted, margin) - below
                rank = (below + 0.5 * ties) / seen
            else:
                rank = 0.5
            self._recent.append(margin)
            insort(self._recent_sorted, margin)
            if len(self._recent) > self.window:
                old = self._recent.popleft()
                del self._recent_sorted[bisect_left(self._recent_sorted, old)]
        return uncertain_probability(self.fraction, rank)

    @staticmethod
    def _price_keys(decision: Any, other: str, model: Any) -> tuple[str, ...]:
        """The names the other model's call is priced by: its name in the routed call (the one
        its battle is stored under), then the model it runs (the rule of routed calls)."""
        return price_keys_of(decision.models[other], model_name(model))

    def _has_price(self, name: str) -> bool:
        if name not in self._priced:
            self._priced[name] = self.prices.cost(name, input_tokens=1, output_tokens=1) is not None
        return self._priced[name]

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        self._slots.release()
        with self._lock:
            self._pending.discard(future)
        exc = None if future.cancelled() else future.exception()
        if isinstance(exc, _BudgetSpent):
            self.skipped_budget += 1
            self._warn("budget", f"shadow labelling stopped: {exc}")
        elif exc is not None:
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
    def _charge(self, gen: Generation, route: str, prompt_texts: list[str],
                price_keys: tuple[str, ...] | None = None) -> Decimal | None:
        """Record one paid call in the ledger, under ``price_keys[0]`` priced by the first of
        ``price_keys`` with a price (default: the model's own name)."""
        inp = gen.input_tokens if gen.input_tokens is not None else estimate_message_tokens(prompt_texts)
        out = gen.output_tokens if gen.output_tokens is not None else (count_tokens(gen.text) if gen.text else 0)
        name, prices = gen.model, self.prices
        if price_keys:
            name = price_keys[0]
            prices = prices.with_price_as({name: price_keys[1:]}) if len(price_keys) > 1 else prices
        record = shadow_record(model=name, route=route, input_tokens=inp, output_tokens=out, prices=prices,
                               tokens_estimated=gen.input_tokens is None)
        self.ledger.add(record)
        return record.cost

    def _check_budget(self) -> None:
        if self.budget is not None and self.spent >= self.budget:
            raise _BudgetSpent(f"its budget of ${float(self.budget):.4f} is spent")

    async def _label(self, decision: Any, other: str, query: str, answer: str, model: Any,
                     call_id: str | None) -> None:
        self._check_budget()  # before each paid call, not only at submit
        other_gen = await as_chat_fn(model)(None, query)
        cost_other = self._charge(other_gen, other, [query], self._price_keys(decision, other, model))
        if decision.rule == "threshold":  # model_a is the strong model
            chosen_is_a = decision.route == "strong"
        else:  # model_a is the chosen model
            chosen_is_a = True
        a, b = (answer, other_gen.text) if chosen_is_a else (other_gen.text, answer)
        names = (decision.model, decision.models[other]) if chosen_is_a else (decision.models[other], decision.model)
        judged: list[Decimal | None] = []

        async def ask(system: str | None, user: str) -> Generation:  # each judge call: checked, then charged
            self._check_budget()
            gen = await self.judge.fn(system, user)
            judged.append(self._charge(gen, "judge", [t for t in (system, user) if t]))
            return gen

        verdict = await self.judge.compare(query, a, b, ask=ask)
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

    def _finish_at_exit(self) -> None:
        """What the interpreter's exit runs (see :data:`FLUSH_AT_EXIT`)."""
        with self._lock:
            pending = len(self._pending)
        if not pending:
            return
        if not self.flush(self.flush_at_exit):
            with self._lock:
                left = list(self._pending)
            for future in left:
                future.cancel()
            self.unfinished += len(left)
            logger.warning("%d of %d shadow labelling(s) in flight did not finish within %.1f s of the "
                           "interpreter's exit and were dropped (ShadowLabeller(flush_at_exit=...) waits longer)",
                           len(left), pending,
                           self.flush_at_exit)

    def __repr__(self) -> str:
        return (f"ShadowLabeller(fraction={self.fraction}, select={self.select!r}, labelled={self.labelled}, "
                f"spent=${float(self.spent):.4f}, store={self.store.url!r})")


__all__ = ["SELECTIONS", "ShadowLabeller", "decision_margin", "shadow_route", "uncertain_probability"]
