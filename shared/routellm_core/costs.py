"""Prices, token counts, and the cost ledger of routed calls.

Prices come from a user table (US dollars per million input / output tokens) first, then from
the ``genai-prices`` snapshot (offline, imported on first use). A model found in neither has an
*unknown* cost: ``None`` and a warning, never a silent 0. Money is :class:`decimal.Decimal`, so
the ledger's totals equal the sum of its records exactly, whatever the order of the calls.

Example:
    >>> from routellm_core.costs import CostLedger, PriceSource, cost_record
    >>> prices = PriceSource({"big": (10.0, 30.0), "small": (0.5, 1.5)})
    >>> prices.cost("big", input_tokens=1000, output_tokens=100)
    Decimal('0.013')
    >>> ledger = CostLedger()
    >>> ledger.add(cost_record(route="weak", model="small", strong_model="big", win_rate=0.2,
    ...                        threshold=0.5, router="sw_ranking", input_tokens=1000,
    ...                        output_tokens=100, prices=prices))
    >>> t = ledger.totals()
    >>> t.total_cost, t.strong_cost, t.savings, t.strong_share
    (Decimal('0.00065'), Decimal('0.013'), Decimal('0.01235'), 0.0)
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

MILLION = Decimal(1_000_000)
DEFAULT_ENCODING = "cl100k_base"


# --------------------------------------------------------------------------- prices
def _dec(x: float | int | str | Decimal) -> Decimal:
    if isinstance(x, bool) or not isinstance(x, (int, float, str, Decimal)):
        raise TypeError(f"a price must be a number, got {x!r}")
    d = x if isinstance(x, Decimal) else Decimal(str(x))
    if not d.is_finite() or d < 0:
        raise ValueError(f"a price must be a finite number >= 0, got {x!r}")
    return d


class UnknownPriceWarning(UserWarning):
    """A model has no price in the user table nor in the price library: its cost is unknown."""


class PriceSource:
    """Dollar cost of a call: a user table first, then ``genai-prices``.

    Args:
        prices: ``{model: (input_per_million, output_per_million)}`` in US dollars; these win
            over the library.
        use_library: look models up in ``genai-prices`` when the table has no entry.
        provider_id: a ``genai-prices`` provider hint (e.g. ``"openai"``) for ambiguous names.
    """

    def __init__(
        self,
        prices: Mapping[str, tuple[float, float]] | None = None,
        *,
        use_library: bool = True,
        provider_id: str | None = None,
    ) -> None:
        for m, p in (prices or {}).items():
            if not isinstance(p, (tuple, list)) or len(p) != 2:
                raise ValueError(f"price of {m!r} must be (input_per_million, output_per_million), got {p!r}")
        self.prices = {
            str(m): (_dec(p[0]), _dec(p[1])) for m, p in (prices or {}).items()
        }
        self.use_library = use_library
        self.provider_id = provider_id
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def cost(self, model: str, *, input_tokens: int, output_tokens: int) -> Decimal | None:
        """Cost in dollars, or ``None`` (with an :class:`UnknownPriceWarning`) when unknown.

        Raises:
            ValueError: a token count that is negative or not finite (it would pay money back).
        """
        for name, n in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if isinstance(n, bool) or not isinstance(n, (int, float, Decimal)) or not math.isfinite(n) or n < 0:
                raise ValueError(f"{name} of model {model!r} must be a finite number >= 0, got {n!r}")
        if model in self.prices:
            pin, pout = self.prices[model]
            return (pin * input_tokens + pout * output_tokens) / MILLION
        if self.use_library:
            try:
                from genai_prices import Usage, calc_price

                calc = calc_price(
                    Usage(input_tokens=int(input_tokens), output_tokens=int(output_tokens)),
                    model,
                    provider_id=self.provider_id,
                )
                return Decimal(calc.total_price)
            except (LookupError, ValueError):
                pass
        self._warn_unknown(model)
        return None

    def _warn_unknown(self, model: str) -> None:
        with self._lock:
            if model in self._warned:
                return
            self._warned.add(model)
        where = "the price table" + (" nor in genai-prices" if self.use_library else "")
        warnings.warn(
            f"no price for model {model!r} in {where}: its cost is recorded as unknown (None). "
            f"Add it with prices={{{model!r}: (input_per_million, output_per_million)}}",
            UnknownPriceWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------- tokens
_encoders: dict[str, Any] = {}
_enc_lock = threading.Lock()


def _point_tiktoken_at_bundled_cache() -> None:
    """Use llama-index-core's bundled BPE files offline, unless the user set a cache dir."""
    if os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR"):
        return
    try:
        import importlib.util

        spec = importlib.util.find_spec("llama_index.core")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    cache = Path(list(spec.submodule_search_locations)[0]) / "_static" / "tiktoken_cache"
    if cache.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


def _encoding(name: str) -> Any:
    with _enc_lock:
        if name not in _encoders:
            _point_tiktoken_at_bundled_cache()
            import tiktoken

            _encoders[name] = tiktoken.get_encoding(name)
        return _encoders[name]


EXACT_TOKEN_CHARS = 100_000


def count_tokens(text: str, *, encoding: str = DEFAULT_ENCODING) -> int:
    """Tokens in ``text`` by tiktoken (``cl100k_base`` by default), offline.

    The time is bounded: a text longer than :data:`EXACT_TOKEN_CHARS` characters is counted on
    evenly spaced slices that add up to that many characters and scaled to its length (a 5 MB
    prompt costs about as much as a 100 kB one, so an async caller's event loop is not held
    for seconds). If the encoding cannot be loaded (no network and no cached file), falls back
    to ``ceil(len(text) / 4)`` with a warning. Callers mark all such counts as estimates.
    """
    try:
        enc = _encoding(encoding)
    except Exception as exc:  # tiktoken could not fetch its BPE file
        warnings.warn(f"tiktoken encoding {encoding!r} unavailable ({exc}); estimating tokens "
                      "as characters / 4", RuntimeWarning, stacklevel=2)
        return math.ceil(len(text) / 4)
    if len(text) <= EXACT_TOKEN_CHARS:
        return len(enc.encode(text, disallowed_special=()))
    slices, width = 10, EXACT_TOKEN_CHARS // 10
    step = (len(text) - width) // (slices - 1)
    sample = sum(
        len(enc.encode(text[i * step : i * step + width], disallowed_special=()))
        for i in range(slices)
    )
    return math.ceil(sample * len(text) / (slices * width))


def estimate_message_tokens(texts: Sequence[str], *, encoding: str = DEFAULT_ENCODING) -> int:
    """Estimated prompt tokens of a conversation: tokens of each message + 3 per message + 3.

    The per-message overhead follows OpenAI's chat format; other providers differ a little.
    """
    if not texts:
        return 0
    return sum(count_tokens(t, encoding=encoding) + 3 for t in texts) + 3


def token_counts(
    usage: tuple[int, int] | None,
    *,
    prompt_texts: Sequence[str],
    output_text: str | None,
    chat: bool = True,
) -> tuple[int, int, bool]:
    """``(input_tokens, output_tokens, estimated)`` of one call.

    The model's reported usage where it has one; otherwise a tiktoken estimate of the prompt
    (chat messages, or a plain completion prompt when ``chat`` is false) and of the output,
    flagged as estimated.

    Example:
        >>> token_counts((12, 3), prompt_texts=["hi"], output_text="hello")
        (12, 3, False)
        >>> token_counts(None, prompt_texts=["hello world"], output_text="hi")
        (8, 1, True)
    """
    if usage is not None and all(isinstance(n, (int, float)) and math.isfinite(n) and n >= 0 for n in usage):
        return int(usage[0]), int(usage[1]), False
    # no usage, or a nonsensical one (negative counts): estimated, never priced as money paid back
    prompt = estimate_message_tokens(prompt_texts) if chat else count_tokens("".join(prompt_texts))
    return prompt, (count_tokens(output_text) if output_text else 0), True


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class CostRecord:
    """One routed call: the decision, the tokens, what it cost and what strong would have cost.

    ``strong_cost`` is the counterfactual: the same input and output token counts priced at the
    strong model (the strong model's answer would have had its own length; this is the usual
    approximation). A cost is ``None`` when the model has no known price.

    ``failed`` marks an attempt whose model raised (see :func:`failed_attempt_record`): it is
    kept so the ledger lists every call made, but it is not an answered call. ``fallback_from``
    is set on the answer of a fallback: the route whose model raised first. ``shadow`` marks a
    call that shadow labelling made in the background (the model that was not chosen, or the
    judge; see :func:`shadow_record`): counted as shadow cost, apart from the calls' own cost.
    """

    route: str
    model: str
    win_rate: float | None
    threshold: float
    router: str
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: Decimal | None
    strong_model: str
    strong_cost: Decimal | None
    router_failed: bool = False
    error_type: str | None = None
    run_id: str | None = None
    failed: bool = False
    fallback_from: str | None = None
    shadow: bool = False

    @property
    def savings(self) -> Decimal | None:
        """``strong_cost - cost``, or ``None`` when either is unknown."""
        if self.cost is None or self.strong_cost is None:
            return None
        return self.strong_cost - self.cost

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("cost", "strong_cost"):
            d[k] = None if d[k] is None else float(d[k])
        return d


def cost_record(
    *,
    route: str,
    model: str,
    strong_model: str,
    win_rate: float | None,
    threshold: float,
    router: str,
    input_tokens: int,
    output_tokens: int,
    prices: PriceSource,
    tokens_estimated: bool = False,
    router_failed: bool = False,
    error_type: str | None = None,
    run_id: str | None = None,
    fallback_from: str | None = None,
) -> CostRecord:
    """Price one answered call (and its strong-model counterfactual) into a :class:`CostRecord`."""
    cost = prices.cost(model, input_tokens=input_tokens, output_tokens=output_tokens)
    strong_cost = (
        cost if model == strong_model
        else prices.cost(strong_model, input_tokens=input_tokens, output_tokens=output_tokens)
    )
    return CostRecord(
        route=route, model=model, win_rate=win_rate, threshold=threshold, router=router,
        input_tokens=int(input_tokens), output_tokens=int(output_tokens),
        tokens_estimated=tokens_estimated, cost=cost, strong_model=strong_model,
        strong_cost=strong_cost, router_failed=router_failed, error_type=error_type,
        run_id=run_id, fallback_from=fallback_from,
    )


def record_fields_from_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The decision fields of a :class:`CostRecord` from a routed run's ``routellm_*`` metadata
    (binary or N-way: an N-way run's counterfactual is its ``routellm_reference_model``).

    Example:
        >>> record_fields_from_metadata({"routellm_route": "small", "routellm_model": "small",
        ...                              "routellm_reference_model": "big"})["strong_model"]
        'big'
    """
    model = meta.get("routellm_model", "")
    return {
        "route": meta["routellm_route"], "model": model,
        "strong_model": meta.get("routellm_strong_model") or meta.get("routellm_reference_model") or model,
        "win_rate": meta.get("routellm_win_rate"), "threshold": meta.get("routellm_threshold", float("nan")),
        "router": meta.get("routellm_router", ""),
        "router_failed": bool(meta.get("routellm_router_failed", False)),
        "fallback_from": meta.get("routellm_fallback_from"),
    }


def failed_attempt_record(
    *,
    route: str,
    model: str,
    strong_model: str,
    win_rate: float | None,
    threshold: float,
    router: str,
    error: BaseException | str,
    router_failed: bool = False,
    run_id: str | None = None,
    fallback_from: str | None = None,
) -> CostRecord:
    """The record of a call whose model raised: zero tokens and a cost of exactly 0.

    Providers do not bill requests that end in an error response (rate limit, server error,
    bad request), and what a timed-out request consumed is not reported to the client, so a
    failed attempt is charged nothing; it is recorded, with the exception's type, so the
    ledger lists every call that was made. ``error_type`` is the model's exception.

    Example:
        >>> r = failed_attempt_record(route="weak", model="small", strong_model="big",
        ...                           win_rate=0.2, threshold=0.5, router="sw_ranking",
        ...                           error=TimeoutError("read timed out"))
        >>> r.failed, r.cost, r.error_type
        (True, Decimal('0'), 'TimeoutError')
    """
    error_type = error if isinstance(error, str) else type(error).__name__
    return CostRecord(
        route=route, model=model, win_rate=win_rate, threshold=threshold, router=router,
        input_tokens=0, output_tokens=0, tokens_estimated=False, cost=Decimal(0),
        strong_model=strong_model, strong_cost=Decimal(0), router_failed=router_failed,
        error_type=error_type, run_id=run_id, failed=True, fallback_from=fallback_from,
    )


def shadow_record(*, model: str, route: str, input_tokens: int, output_tokens: int, prices: PriceSource,
                  tokens_estimated: bool = False, run_id: str | None = None) -> CostRecord:
    """The record of a background call made for shadow labelling (``route`` is the route of
    the model that was not chosen, or ``"judge"``); it has no all-strong counterfactual.

    Example:
        >>> r = shadow_record(model="big", route="judge", input_tokens=1000, output_tokens=10,
        ...                   prices=PriceSource({"big": (10.0, 30.0)}))
        >>> r.shadow, float(r.cost)
        (True, 0.0103)
    """
    cost = prices.cost(model, input_tokens=input_tokens, output_tokens=output_tokens)
    return CostRecord(route=route, model=model, win_rate=None, threshold=float("nan"), router="",
                      input_tokens=int(input_tokens), output_tokens=int(output_tokens),
                      tokens_estimated=tokens_estimated, cost=cost, strong_model=model, strong_cost=None,
                      run_id=run_id, shadow=True)


@dataclass
class ModelTotals:
    """Calls, tokens and known cost of one model."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    unknown_cost_calls: int = 0
    failed_calls: int = 0


@dataclass
class CostTotals:
    """Sums over a ledger. Costs sum the known values; ``unknown_cost_calls`` counts the rest.

    ``savings`` sums ``strong_cost - cost`` over the calls where both are known. ``calls``
    counts answered calls (``strong_share`` is over them); ``failed_calls`` counts attempts
    whose model raised, and ``fallbacks`` the answers that came from the fallback model.
    """

    calls: int = 0
    strong_calls: int = 0
    router_failures: int = 0
    failed_calls: int = 0
    fallbacks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_cost: Decimal = Decimal(0)
    strong_cost: Decimal = Decimal(0)
    savings: Decimal = Decimal(0)
    unknown_cost_calls: int = 0
    shadow_calls: int = 0
    shadow_cost: Decimal = Decimal(0)
    by_model: dict[str, ModelTotals] = field(default_factory=dict)

    @property
    def strong_share(self) -> float:
        """Share of calls routed to the strong model (0.0 for an empty ledger)."""
        return self.strong_calls / self.calls if self.calls else 0.0

    def _add(self, r: CostRecord) -> None:
        if r.shadow:  # background labelling: its own cost, apart from the calls'
            self.shadow_calls += 1
            self.shadow_cost += r.cost if r.cost is not None else Decimal(0)
            return
        m = self.by_model.setdefault(r.model, ModelTotals())
        if r.failed:
            self.failed_calls += 1
            m.failed_calls += 1
        else:
            self.calls += 1
            self.strong_calls += r.route == "strong"
            self.router_failures += r.router_failed
            self.fallbacks += r.fallback_from is not None
            m.calls += 1
        self.input_tokens += r.input_tokens
        self.output_tokens += r.output_tokens
        m.input_tokens += r.input_tokens
        m.output_tokens += r.output_tokens
        if r.cost is None:
            self.unknown_cost_calls += 1
            m.unknown_cost_calls += 1
        else:
            self.total_cost += r.cost
            m.cost += r.cost
        if r.strong_cost is not None:
            self.strong_cost += r.strong_cost
        if r.savings is not None:
            self.savings += r.savings

    def copy(self) -> CostTotals:
        return CostTotals(
            **{k: v for k, v in self.__dict__.items() if k != "by_model"},
            by_model={k: ModelTotals(**v.__dict__) for k, v in self.by_model.items()},
        )

    def brief(self) -> str:
        """The totals on one line (what the adapters' cost handlers show as their ``repr``).

        Example:
            >>> CostTotals().brief()
            'calls=0, strong_share=0.000, tokens=0, total_cost=0.000000, strong_cost=0.000000, savings=0.000000'
        """
        return (f"calls={self.calls}, strong_share={self.strong_share:.3f}, "
                f"tokens={self.input_tokens + self.output_tokens}, total_cost={float(self.total_cost):.6f}, "
                f"strong_cost={float(self.strong_cost):.6f}, savings={float(self.savings):.6f}")

    def summary(self) -> str:
        """What the routed calls cost, in a few lines (as LangChain's OpenAI callback prints):
        calls and strong share, calls per model, fallbacks and failures, tokens, the total cost,
        what sending every call to the strong (reference) model would have cost, and the savings.

        Example:
            >>> print(CostTotals().summary())
            Routed calls: 0 (strong: 0, 0.0%)
            Tokens Used: 0
              Prompt Tokens: 0
              Completion Tokens: 0
            Total Cost (USD): $0.000000
            All-strong Cost (USD): $0.000000
            Savings (USD): $0.000000
        """
        def money(x: Decimal) -> str:
            return f"${x:,.6f}" if abs(x) < 1 else f"${x:,.2f}"

        lines = [f"Routed calls: {self.calls} (strong: {self.strong_calls}, {self.strong_share:.1%})"]
        if len(self.by_model) > 1 or self.failed_calls:
            lines.append("  By model: " + ", ".join(f"{m} {mt.calls}" for m, mt in self.by_model.items()))
        extra = [f"{n} {what}" for n, what in ((self.fallbacks, "fallbacks"), (self.failed_calls, "failed attempts"),
                                               (self.router_failures, "router failures")) if n]
        if extra:
            lines.append("  " + ", ".join(extra))
        lines += [f"Tokens Used: {self.input_tokens + self.output_tokens}",
                  f"  Prompt Tokens: {self.input_tokens}",
                  f"  Completion Tokens: {self.output_tokens}",
                  f"Total Cost (USD): {money(self.total_cost)}",
                  f"All-strong Cost (USD): {money(self.strong_cost)}",
                  f"Savings (USD): {money(self.savings)}"
                  + (f" ({self.savings / self.strong_cost:.1%})" if self.strong_cost else "")]
        if self.unknown_cost_calls:
            lines.append(f"  {self.unknown_cost_calls} calls have no known price and are not in the costs")
        if self.shadow_calls:
            lines.append(f"Shadow labelling (USD): {money(self.shadow_cost)} over {self.shadow_calls} background calls")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "strong_calls": self.strong_calls,
            "strong_share": self.strong_share, "router_failures": self.router_failures,
            "failed_calls": self.failed_calls, "fallbacks": self.fallbacks,
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "total_cost": float(self.total_cost), "strong_cost": float(self.strong_cost),
            "savings": float(self.savings), "unknown_cost_calls": self.unknown_cost_calls,
            "shadow_calls": self.shadow_calls, "shadow_cost": float(self.shadow_cost),
            "by_model": {k: {**v.__dict__, "cost": float(v.cost)} for k, v in self.by_model.items()},
        }


class CostLedger:
    """A thread-safe list of :class:`CostRecord` with running totals.

    Totals are kept as records arrive (Decimal arithmetic, so they equal the sum of the records
    exactly); :meth:`totals` returns a snapshot.
    """

    def __init__(self, records: Iterable[CostRecord] = ()) -> None:
        self._lock = threading.Lock()
        self._records: list[CostRecord] = []
        self._totals = CostTotals()
        for r in records:
            self.add(r)

    def add(self, record: CostRecord) -> None:
        if not isinstance(record, CostRecord):
            raise TypeError(f"expected a CostRecord, got {type(record).__name__}")
        with self._lock:
            self._records.append(record)
            self._totals._add(record)

    @property
    def records(self) -> list[CostRecord]:
        """A copy of the records, in the order they were added."""
        with self._lock:
            return list(self._records)

    def totals(self) -> CostTotals:
        with self._lock:
            return self._totals.copy()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __repr__(self) -> str:
        t = self.totals()
        return (f"CostLedger(calls={t.calls}, strong_share={t.strong_share:.3f}, "
                f"total_cost={t.total_cost}, strong_cost={t.strong_cost}, savings={t.savings})")
