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
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from routellm_core.errors import UnknownPriceWarning

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


class PriceSource:
    """Dollar cost of a call: a user table first, then ``genai-prices``.

    Args:
        prices: ``{model: (input_per_million, output_per_million)}`` in US dollars; these win
            over the library.
        use_library: look models up in ``genai-prices`` when the table has no entry.
        provider_id: a ``genai-prices`` provider hint (e.g. ``"openai"``) for ambiguous names.
        price_as: ``{name: (other names, ...)}``: a call of ``name`` with no price of its own is
            priced as the first of the others that has one (in the table, then in the
            library). Adapters give it for their routed models
            (:meth:`routellm_core.naming.ModelName.price_keys`), so ``"gpt-5@high"`` is priced
            as ``"gpt-5"`` unless the table lists ``"gpt-5@high"`` itself.

    Example:
        >>> p = PriceSource({"gpt-5": (1.25, 10.0)}, price_as={"gpt-5@high": ["gpt-5"]})
        >>> p.cost("gpt-5@high", input_tokens=1000, output_tokens=1000)
        Decimal('0.01125')
    """

    def __init__(
        self,
        prices: Mapping[str, tuple[float, float]] | None = None,
        *,
        use_library: bool = True,
        provider_id: str | None = None,
        price_as: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        for m, p in (prices or {}).items():
            if not isinstance(p, (tuple, list)) or len(p) != 2:
                raise ValueError(f"price of {m!r} must be (input_per_million, output_per_million), got {p!r}")
        self.prices = {
            str(m): (_dec(p[0]), _dec(p[1])) for m, p in (prices or {}).items()
        }
        self.use_library = use_library
        self.provider_id = provider_id
        self.price_as = _check_price_as(price_as)
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def with_price_as(self, price_as: Mapping[str, Sequence[str]] | None) -> PriceSource:
        """This source (same table, library setting and warnings) with ``price_as`` added (its
        entries win over this source's own for the same names).

        Example:
            >>> PriceSource({"gpt-5": (1.0, 1.0)}).with_price_as({"gpt-5@low": ["gpt-5"]}).keys("gpt-5@low")
            ('gpt-5@low', 'gpt-5')
        """
        if not price_as:
            return self
        out = PriceSource.__new__(PriceSource)
        out.prices, out.use_library, out.provider_id = self.prices, self.use_library, self.provider_id
        out.price_as = {**self.price_as, **_check_price_as(price_as)}
        out._warned, out._lock = self._warned, self._lock
        return out

    def keys(self, model: str) -> tuple[str, ...]:
        """The names ``model`` is priced by, in order: itself, then its ``price_as`` names."""
        return (model, *(k for k in self.price_as.get(model, ()) if k != model))

    def table_key(self, model: str) -> str | None:
        """The first of :meth:`keys` that this source's table lists, or ``None``."""
        return next((k for k in self.keys(model) if k in self.prices), None)

    def cost(self, model: str, *, input_tokens: int, output_tokens: int) -> Decimal | None:
        """Cost in dollars, or ``None`` (with an :class:`UnknownPriceWarning`) when unknown.

        Raises:
            ValueError: a token count that is negative or not finite (it would pay money back).
        """
        for name, n in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if isinstance(n, bool) or not isinstance(n, (int, float, Decimal)) or not math.isfinite(n) or n < 0:
                raise ValueError(f"{name} of model {model!r} must be a finite number >= 0, got {n!r}")
        found = self.known_cost(model, input_tokens=input_tokens, output_tokens=output_tokens)
        if found is None:
            self._warn_unknown(model)
        return found

    def known_cost(self, model: str, *, input_tokens: int, output_tokens: int) -> Decimal | None:
        """:meth:`cost` without the warning: ``None`` when the price is unknown."""
        key = self.table_key(model)
        if key is not None:
            pin, pout = self.prices[key]
            return (pin * input_tokens + pout * output_tokens) / MILLION
        if self.use_library:
            for key in self.keys(model):
                try:
                    from genai_prices import Usage, calc_price

                    calc = calc_price(
                        Usage(input_tokens=int(input_tokens), output_tokens=int(output_tokens)),
                        key,
                        provider_id=self.provider_id,
                    )
                    return Decimal(calc.total_price)
                except (LookupError, ValueError):
                    pass
        return None

    def _warn_unknown(self, model: str) -> None:
        with self._lock:
            if model in self._warned:
                return
            self._warned.add(model)
        where = "the price table" + (" nor in genai-prices" if self.use_library else "")
        others = self.keys(model)[1:]
        also = f" (nor for {', '.join(repr(k) for k in others)}, the model it runs)" if others else ""
        warnings.warn(
            f"no price for model {model!r}{also} in {where}: its cost is recorded as unknown (None). "
            f"Add it with prices={{{(others or (model,))[-1]!r}: (input_per_million, output_per_million)}}",
            UnknownPriceWarning,
            stacklevel=3,
        )


def _check_price_as(price_as: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    if price_as is None:
        return {}
    if not isinstance(price_as, Mapping):
        raise TypeError(f"price_as must map names to the names they are priced as, got {type(price_as).__name__}")
    out: dict[str, tuple[str, ...]] = {}
    for name, keys in price_as.items():
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        if not all(isinstance(k, str) and k for k in keys):
            raise TypeError(f"price_as[{name!r}] must be names (strings), got {keys!r}")
        out[str(name)] = keys
    return out


# --------------------------------------------------------------------------- reasoning tokens
def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _whole(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def reasoning_tokens(usage: Any) -> int | None:
    """The reasoning ("thinking") tokens a usage reports, or ``None``: LangChain's
    ``output_token_details["reasoning"]``, OpenAI's ``completion_tokens_details.reasoning_tokens``
    (Chat Completions) or ``output_tokens_details.reasoning_tokens`` (Responses), Gemini's
    ``thoughts_token_count``.

    Example:
        >>> reasoning_tokens({"output_tokens": 90, "output_token_details": {"reasoning": 64}})
        64
    """
    for outer, inner in (("output_token_details", "reasoning"), ("completion_tokens_details", "reasoning_tokens"),
                         ("output_tokens_details", "reasoning_tokens")):
        details = _field(usage, outer)
        if details is not None and _whole(_field(details, inner)):
            return int(_field(details, inner))
    thoughts = _field(usage, "thoughts_token_count")
    return int(thoughts) if _whole(thoughts) else None


def billed_output_tokens(usage: Any, input_tokens: int, output_tokens: int) -> int:
    """Output tokens with the reasoning tokens counted once: they are billed as output.

    What providers report (checked against their API references): OpenAI's ``completion_tokens``
    (and the Responses API's ``output_tokens``) already include ``reasoning_tokens``, and so does
    LangChain's ``usage_metadata["output_tokens"]`` (its ``output_token_details`` is a breakdown
    of it; ``total_tokens = input_tokens + output_tokens``); Anthropic's ``output_tokens`` include
    extended thinking. Gemini's raw ``candidates_token_count`` does *not* include
    ``thoughts_token_count`` (``total_token_count`` adds both). So reasoning tokens are added
    when the usage says they are apart: Gemini's raw counts, or a usage whose total is input +
    output + reasoning; otherwise ``output_tokens`` is taken as it is.

    Example:
        >>> billed_output_tokens({"output_token_details": {"reasoning": 64}, "total_tokens": 110}, 10, 100)
        100
        >>> billed_output_tokens({"output_token_details": {"reasoning": 64}, "total_tokens": 174}, 10, 100)
        164
        >>> billed_output_tokens({"candidates_token_count": 36, "thoughts_token_count": 64}, 10, 36)
        100
    """
    reasoning = reasoning_tokens(usage)
    if not reasoning:
        return output_tokens
    if _whole(_field(usage, "thoughts_token_count")) and _field(usage, "candidates_token_count") is not None:
        return output_tokens + reasoning  # Gemini: thoughts are counted apart from the candidates
    total = next((t for t in (_field(usage, "total_tokens"), _field(usage, "total_token_count")) if _whole(t)), None)
    apart = input_tokens + output_tokens + reasoning
    if total is not None and total != input_tokens + output_tokens and total == apart:
        return output_tokens + reasoning
    return output_tokens


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

    ``failed`` marks an attempt whose model raised (see :func:`failed_attempt_record`, and
    :func:`partial_attempt_record` for a stream that broke after output): it is kept so the
    ledger lists every call made, but it is not an answered call. ``fallback_from``
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
    ledger lists every call that was made. ``error_type`` is the model's exception. A stream
    that broke after output arrived is charged for it instead (:func:`partial_attempt_record`).

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


def partial_attempt_record(
    *,
    route: str,
    model: str,
    strong_model: str,
    win_rate: float | None,
    threshold: float,
    router: str,
    error: BaseException | str,
    input_tokens: int,
    output_tokens: int,
    prices: PriceSource,
    tokens_estimated: bool = True,
    router_failed: bool = False,
    run_id: str | None = None,
    fallback_from: str | None = None,
) -> CostRecord:
    """The record of a streamed call that broke after the provider had sent output: a failed
    attempt (``failed=True``, ``error_type`` the exception's), charged for what it consumed.

    Providers bill the tokens they generated before a stream broke: the prompt and the output
    sent so far. They are priced as an answer's (:func:`cost_record`). ``strong_cost`` is the
    cost itself: the attempt claims no savings, and the all-strong counterfactual of the call is
    carried once, by the record of the answer that follows (a fallback) or by none. Failures
    before any output keep :func:`failed_attempt_record` (charged 0).

    Example:
        >>> r = partial_attempt_record(route="weak", model="small", strong_model="big", win_rate=0.2,
        ...                            threshold=0.5, router="r", error=ConnectionError("reset"),
        ...                            input_tokens=1000, output_tokens=100,
        ...                            prices=PriceSource({"big": (10.0, 30.0), "small": (1.0, 3.0)}))
        >>> r.failed, r.error_type, float(r.cost), float(r.strong_cost)
        (True, 'ConnectionError', 0.0013, 0.0013)
    """
    priced = cost_record(
        route=route, model=model, strong_model=strong_model, win_rate=win_rate, threshold=threshold,
        router=router, input_tokens=input_tokens, output_tokens=output_tokens, prices=prices,
        tokens_estimated=tokens_estimated, router_failed=router_failed, run_id=run_id,
        fallback_from=fallback_from)
    error_type = error if isinstance(error, str) else type(error).__name__
    return replace(priced, failed=True, error_type=error_type, strong_cost=priced.cost)


def repriced(r: CostRecord, source: PriceSource) -> CostRecord:
    """``r`` with its cost, and its all-strong counterfactual, priced from ``source`` wherever
    ``source``'s own table lists the model (a handler's or callback's price table over the
    adapter's). A failed attempt charged nothing stays at 0; a charged broken stream is re-priced
    and still claims no savings (:func:`partial_attempt_record`).

    Example:
        >>> r = cost_record(route="weak", model="small", strong_model="big", win_rate=0.2, threshold=0.5,
        ...                 router="r", input_tokens=1000, output_tokens=100,
        ...                 prices=PriceSource({"big": (1.0, 1.0), "small": (1.0, 1.0)}))
        >>> float(repriced(r, PriceSource({"big": (10.0, 30.0), "small": (1.0, 3.0)})).savings)
        0.0117
    """
    if r.failed and not (r.input_tokens or r.output_tokens):
        return r
    changes: dict[str, Any] = {}
    if source.table_key(r.model) is not None:
        changes["cost"] = source.cost(r.model, input_tokens=r.input_tokens, output_tokens=r.output_tokens)
    if r.failed:
        changes["strong_cost"] = changes.get("cost", r.cost)
    elif source.table_key(r.strong_model) is not None:
        changes["strong_cost"] = source.cost(r.strong_model, input_tokens=r.input_tokens,
                                             output_tokens=r.output_tokens)
    return replace(r, **changes) if changes else r


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
