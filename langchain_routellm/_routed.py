"""What :class:`~langchain_routellm.RouterRunnable` and
:class:`~langchain_routellm.ChatRouteLLM` share: :class:`RoutingMixin`, the routing of every
call form (invoke, batch, stream and their async forms) to the chosen target, with fallbacks,
the call ids and the learning loop.

One :class:`~routellm_core.routing.Pool` decides, per-call settings come from the call's
keywords or ``config["configurable"]``, a batch is scored in one router call, and delegation is
transparent (the chosen runnable's own run is the one LangChain records, with the decision
added as tags and metadata).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, get_config_list

from langchain_routellm._loop import Collected, after_answer, new_call_id
from langchain_routellm._translate import end_cancelled_runs, routed_config, with_decision
from routellm_core.adapter import PRICES_HELP, PoolHolder, rate_call
from routellm_core.calls import SETTING_KEYS, check_setting_keys, first_settings, pop_settings
from routellm_core.costs import PriceSource
from routellm_core.queries import NoQueryText
from routellm_core.routing import (
    Decision,
    FallbackPolicy,
    Pool,
    acall_with_fallback,
    astream_with_fallback,
    call_with_fallback,
    note_fallback_failure,
    stream_with_fallback,
)
from routellm_core.routing.pool import RouterSpec, fresh_router

PRICES_DESCRIPTION = PRICES_HELP + " The routing cost callback prices this model's calls with it first."


class Attempts:
    """The configs of one call's attempts: the first runs with the call id as its run id (the
    caller's ``run_id``, or a new one), each fallback with a new run id."""

    def __init__(self, config: RunnableConfig, prices: Mapping[str, tuple[float, float]] | PriceSource) -> None:
        self.config = config
        self.prices = prices
        self.call_id = new_call_id(config)
        self.started: list[RunnableConfig] = []

    def config_for(self, decision: Decision) -> RunnableConfig:
        cfg = routed_config(self.config, decision, self.prices)
        cfg["run_id"] = uuid.uuid4() if self.started else self.call_id
        self.started.append(cfg)
        return cfg


class RoutingMixin:
    """What :class:`RouterRunnable` and ``ChatRouteLLM`` share: the pool, the per-call
    settings, one router call per batch, the delegation of every call form to the chosen
    target (``self._targets``: ``{route: runnable}``), and the learning loop (call ids,
    ``capture``, ``rate``, ``swap_router``)."""

    _routing: PoolHolder
    _prices: dict[str, tuple[float, float]]
    _price_source: PriceSource
    if TYPE_CHECKING:  # a field of each routed class (an annotation here would add a field to the model)
        capture: Any

    @property
    def _pool(self) -> Pool:
        return self._routing.pool

    def _query_text(self, input: Any) -> str:
        raise NotImplementedError

    def _prompt_texts(self, input: Any, query: str) -> list[str]:
        """The prompt's texts, to estimate its tokens when the answer reports no usage."""
        return [query]

    def _shadow_models(self, targets: Mapping[str, Runnable]) -> dict[str, Any] | None:
        """The routed models the shadow labeller may call, or ``None``: no shadowing."""
        return None

    def _learns(self) -> bool:
        return self.capture is not None or getattr(self, "shadow", None) is not None

    def _learn(self, targets: Mapping[str, Runnable], input: Any, query: str | None, decision: Decision,
               call_id: Any, output: Any, *, shadowed: bool = True) -> None:
        """Hand an answered call to ``capture`` / ``shadow`` (off the call path; never raises);
        a stream the caller stopped early is captured but not shadowed."""
        shadow = getattr(self, "shadow", None) if shadowed else None
        if (self.capture is None and shadow is None) or query is None:
            return
        after_answer(capture=self.capture, shadow=shadow, call_id=call_id, query=query, decision=decision,
                     output=output, prompt_texts=lambda: self._prompt_texts(input, query),
                     prices=self._price_source,
                     shadow_models=self._shadow_models(targets) if shadow is not None else None)

    def _setting_for(self, pool: Pool, config: RunnableConfig, call: Mapping[str, Any] | None = None) -> Any:
        """The call's setting, checked by the pool: the call's keywords, else the config's
        ``configurable`` keys of this model's rule (those of the other rule are for other
        routed models of a chain), else the model's own."""
        conf = config.get("configurable") or {}
        check_setting_keys(conf, "config['configurable']")
        ambient = pool.own_settings(conf)
        return pool.setting(**first_settings(call, ambient))

    def _prepare_inputs(self, pool: Pool, inputs: Sequence[Any], configs: Sequence[RunnableConfig],
                        call: Mapping[str, Any] | None, return_exceptions: bool
                        ) -> tuple[list[tuple[Any, str | None]], list[int], list[str], list[Any]]:
        """The cheap part of routing, before the router: each input's setting and query text.
        Returns ``(out, idx, texts, settings)``: ``out`` holds ``(exception, None)`` for each
        bad input (with ``return_exceptions``; without, the first one raises) and ``(the failure
        policy's decision, None)`` for one with no text to route on (images only), ``idx`` the
        positions of the valid inputs whose ``texts`` / ``settings`` the router is to score."""
        out: list[tuple[Any, str | None]] = [(None, None)] * len(inputs)
        texts: list[str] = []
        settings: list[Any] = []
        idx: list[int] = []
        for i, (inp, cfg) in enumerate(zip(inputs, configs)):
            try:
                setting = self._setting_for(pool, cfg, call)
                try:
                    text = self._query_text(inp)
                except NoQueryText as exc:  # images only: the failure policy decides (or raises)
                    out[i] = (pool.unroutable(exc, setting), None)
                    continue
            except Exception as exc:
                if not return_exceptions:
                    raise
                out[i] = (exc, None)
                continue
            texts.append(text)
            settings.append(setting)
            idx.append(i)
        return out, idx, texts, settings

    def _route_inputs(self, inputs: Sequence[Any], configs: Sequence[RunnableConfig],
                      call: Mapping[str, Any] | None = None, return_exceptions: bool = False,
                      pool: Pool | None = None) -> list[tuple[Any, str | None]]:
        """``(decision, query text)`` per input, scoring all the valid ones in a single router
        call; with ``return_exceptions`` an input's bad query or setting is its exception.
        ``pool``: the one the call captured (default: this model's now)."""
        pool = pool if pool is not None else self._pool  # one pool for the whole call, even across a swap
        out, idx, texts, settings = self._prepare_inputs(pool, inputs, configs, call, return_exceptions)
        if texts:
            for i, text, d in zip(idx, texts, pool.route(texts, settings)):
                out[i] = (d, text)
        return out

    async def _aroute_inputs(self, pool: Pool, inputs: Sequence[Any], configs: Sequence[RunnableConfig],
                             call: Mapping[str, Any] | None = None,
                             return_exceptions: bool = False) -> list[tuple[Any, str | None]]:
        """:meth:`_route_inputs` for async calls: the settings and query texts on the event
        loop, then :meth:`Pool.aroute`, which scores the concurrent calls of the loop together
        in the pool's one routing thread."""
        out, idx, texts, settings = self._prepare_inputs(pool, inputs, configs, call, return_exceptions)
        if texts:
            for i, text, d in zip(idx, texts, await pool.aroute(texts, settings)):
                out[i] = (d, text)
        return out

    def _decide(self, inputs: Sequence[Any], configs: Sequence[RunnableConfig],
                call: Mapping[str, Any] | None = None, return_exceptions: bool = False) -> list[Any]:
        """One decision per input (see :meth:`_route_inputs`)."""
        return [d for d, _ in self._route_inputs(inputs, configs, call, return_exceptions)]

    async def _adecide(self, inputs: Sequence[Any], configs: Sequence[RunnableConfig],
                       call: Mapping[str, Any] | None = None, return_exceptions: bool = False) -> list[Any]:
        """One decision per input, routed by :meth:`_aroute_inputs`."""
        return [d for d, _ in await self._aroute_inputs(self._pool, inputs, configs, call, return_exceptions)]

    def route(self, input: Any, config: RunnableConfig | None = None, **settings: Any) -> Decision:
        """The routing decision for ``input`` under ``config`` and the routing keywords
        (``routellm_threshold=`` ...), without calling a model."""
        call = pop_settings(settings)
        if settings:
            raise TypeError(f"route() takes only routing keywords {list(SETTING_KEYS)}, got {sorted(settings)}")
        return self._decide([input], [ensure_config(config)], call)[0]

    # ------------------------------------------------------------------ learning
    def rate(self, call_id: str | uuid.UUID, rating: str | float, comment: str | None = None) -> None:
        """Store a rating of a captured call in the ``capture=`` traffic store.

        Args:
            call_id: the call's id: ``response_metadata["routellm_call_id"]`` of the answer (the
                run id of the chosen model's run; your ``config["run_id"]`` when you gave one).
            rating: ``"up"``, ``"down"`` or a score in [0, 1]. Ratings of weak calls become
                training battles (``TrafficStore.training_battles``): "down" the strong model wins,
                "up" a tie.
            comment: free text, stored (redacted) with the rating.

        Raises:
            ValueError: the model has no ``capture=``.
            TypeError: a call id, rating or comment of the wrong type.
            routellm_core.learning.StoreError: an unknown rating label or a score out of [0, 1];
                a call id over 64 characters or of no captured call; a comment over 10,000
                characters. The calls captured before are written first.
        """
        rate_call(self.capture, call_id, rating, comment, owner=type(self).__name__)

    def swap_router(self, router: RouterSpec) -> None:
        """Route with another router from now on, without a restart: a loaded router,
        ``"default"``, or a checkpoint path / Hub id (read afresh from disk, e.g. after
        ``routellm promote`` replaced it). The models and settings stay; calls in flight finish
        on the old router. Copies of this model (``bind``, ``with_config``, ``model_copy``)
        share its router and route with the new one too; ``configurable_fields`` /
        ``configurable_alternatives`` build a new model from the fields of the model they wrap
        at each call, so they see a swap made on that model.

        Raises:
            TypeError / ValueError: a router that does not fit (a binary router for several
                models, names it does not know, no calibration table for a ``strong_fraction``)
                or cannot score (an ``EncoderMismatchError`` for a checkpoint whose encoder
                probe was edited): :meth:`~routellm_core.routing.Pool.with_router` checks it
                first, and the old router then stays.
        """
        loaded = fresh_router(router)
        self._routing.swap(loaded)
        self.__dict__["router"] = loaded  # for copies rebuilt from the fields (configurable_fields)

    # ------------------------------------------------------------------ the call forms
    def _invoke_routed(self, targets: dict[str, Runnable], input: Any, config: Any, kwargs: dict[str, Any],
                       wrap: bool) -> Any:
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        call = pop_settings(kwargs)
        config = ensure_config(config)
        d, query = self._route_inputs([input], [config], call, pool=pool)[0]
        attempts = Attempts(config, self._price_source)
        out, d = call_with_fallback(
            d, lambda dd: targets[dd.route].invoke(input, attempts.config_for(dd), **kwargs), pool.fallback)
        self._learn(targets, input, query, d, attempts.call_id, out)
        return with_decision(out, d, attempts.call_id) if wrap else out

    async def _ainvoke_routed(self, targets: dict[str, Runnable], input: Any, config: Any, kwargs: dict[str, Any],
                              wrap: bool) -> Any:
        """Each attempt runs with a run id known here, so that a cancelled call ends its model
        run (:func:`end_cancelled_runs`)."""
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        call = pop_settings(kwargs)
        config = ensure_config(config)
        d, query = (await self._aroute_inputs(pool, [input], [config], call))[0]
        attempts = Attempts(config, self._price_source)
        try:
            out, d = await acall_with_fallback(
                d, lambda dd: targets[dd.route].ainvoke(input, attempts.config_for(dd), **kwargs),
                pool.fallback)
        except asyncio.CancelledError:
            await end_cancelled_runs(attempts.started[-1:])
            raise
        self._learn(targets, input, query, d, attempts.call_id, out)
        return with_decision(out, d, attempts.call_id) if wrap else out

    def _stream_routed(self, targets: dict[str, Runnable], input: Any, config: Any, kwargs: dict[str, Any],
                       wrap: bool) -> Iterator[Any]:
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        call = pop_settings(kwargs)
        config = ensure_config(config)
        d, query = self._route_inputs([input], [config], call, pool=pool)[0]
        attempts = Attempts(config, self._price_source)
        collected = Collected() if self._learns() else None
        first = True
        used = d
        try:
            for used, chunk in stream_with_fallback(
                    d, lambda dd: targets[dd.route].stream(input, attempts.config_for(dd), **kwargs),
                    pool.fallback):
                if collected is not None:
                    collected.add(chunk)
                out = with_decision(chunk, used, attempts.call_id) if first and wrap else chunk
                first = False
                yield out
        except GeneratorExit:  # the caller stopped reading: an answered call, as the cost callback counts it
            if collected is not None and not first:
                self._learn(targets, input, query, used, attempts.call_id, collected.value, shadowed=False)
            raise
        if collected is not None:
            self._learn(targets, input, query, used, attempts.call_id, collected.value)

    async def _astream_routed(self, targets: dict[str, Runnable], input: Any, config: Any, kwargs: dict[str, Any],
                              wrap: bool) -> AsyncIterator[Any]:
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        call = pop_settings(kwargs)
        config = ensure_config(config)
        d, query = (await self._aroute_inputs(pool, [input], [config], call))[0]
        attempts = Attempts(config, self._price_source)
        collected = Collected() if self._learns() else None
        first = True
        used = d
        try:
            async for used, chunk in astream_with_fallback(
                    d, lambda dd: targets[dd.route].astream(input, attempts.config_for(dd), **kwargs),
                    pool.fallback):
                if collected is not None:
                    collected.add(chunk)
                out = with_decision(chunk, used, attempts.call_id) if first and wrap else chunk
                first = False
                yield out
        except (GeneratorExit, asyncio.CancelledError):  # stopped or cancelled after chunks: answered
            if collected is not None and not first:
                self._learn(targets, input, query, used, attempts.call_id, collected.value, shadowed=False)
            raise
        if collected is not None:
            self._learn(targets, input, query, used, attempts.call_id, collected.value)

    def _batch_routed(self, targets: dict[str, Runnable], inputs: list[Any], config: Any, return_exceptions: bool,
                      kwargs: dict[str, Any]) -> list[Any]:
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        call = pop_settings(kwargs)
        configs = get_config_list(config, len(inputs))
        batch = BatchRound(self._route_inputs(inputs, configs, call, return_exceptions, pool=pool), configs,
                            pool.fallback)
        for n, groups in enumerate(batch.rounds()):
            for route, idx in groups:
                res = targets[route].batch([inputs[i] for i in idx], batch.configs_for(idx, n, self._price_source),
                                           return_exceptions=True, **kwargs)
                batch.take(idx, res)
        self._learn_batch(targets, inputs, batch)
        return batch.result(return_exceptions)

    async def _abatch_routed(self, targets: dict[str, Runnable], inputs: list[Any], config: Any,
                             return_exceptions: bool, kwargs: dict[str, Any]) -> list[Any]:
        pool = self._pool  # one pool for the whole call, even when the router is swapped meanwhile
        call = pop_settings(kwargs)
        configs = get_config_list(config, len(inputs))
        routed = await self._aroute_inputs(pool, inputs, configs, call, return_exceptions)
        batch = BatchRound(routed, configs, pool.fallback)
        for n, groups in enumerate(batch.rounds()):
            # run ids known here, to end the runs of a cancelled round
            round_configs = {route: batch.configs_for(idx, n, self._price_source) for route, idx in groups}
            try:
                results = await asyncio.gather(*(
                    targets[route].abatch([inputs[i] for i in idx], round_configs[route],
                                          return_exceptions=True, **kwargs)
                    for route, idx in groups
                ))
            except asyncio.CancelledError:
                await end_cancelled_runs([c for cfgs in round_configs.values() for c in cfgs])
                raise
            for (_, idx), res in zip(groups, results):
                batch.take(idx, res)
        self._learn_batch(targets, inputs, batch)
        return batch.result(return_exceptions)

    def _learn_batch(self, targets: dict[str, Runnable], inputs: list[Any], batch: BatchRound) -> None:
        for i, d in batch.answered.items():
            self._learn(targets, inputs[i], batch.queries[i], d, batch.call_ids[i], batch.outputs[i])


class BatchRound:
    """The state of a routed batch across its rounds: the chosen models, then fallbacks.

    The models are always called with ``return_exceptions=True`` so that one failure neither
    hides the other answers nor stops their fallbacks (as ``RunnableWithFallbacks.batch``).
    Each input's first attempt runs with its call id as run id, its fallbacks with new ones.
    """

    def __init__(self, routed: Sequence[tuple[Any, str | None]], configs: Sequence[RunnableConfig],
                 policy: FallbackPolicy) -> None:
        decisions = [d for d, _ in routed]
        self.queries = [q for _, q in routed]
        self.configs = configs
        self.call_ids = [new_call_id(c) for c in configs]
        self.outputs: list[Any] = list(decisions)
        self.pending = {i: d for i, d in enumerate(decisions) if not isinstance(d, BaseException)}
        self.next_pending: dict[int, Decision] = {}
        self.first_errors: dict[int, BaseException] = {}
        self.answered: dict[int, Decision] = {}
        self.policy = policy

    def configs_for(self, idx: list[int], round_no: int,
                    prices: Mapping[str, tuple[float, float]] | PriceSource) -> list[RunnableConfig]:
        return [{**routed_config(self.configs[i], self.pending[i], prices),
                 "run_id": self.call_ids[i] if round_no == 0 else uuid.uuid4()} for i in idx]

    def groups(self) -> list[tuple[str, list[int]]]:
        groups: dict[str, list[int]] = {}
        for i, d in self.pending.items():
            groups.setdefault(d.route, []).append(i)
        return list(groups.items())

    def take(self, idx: list[int], results: Sequence[Any]) -> None:
        retry: dict[int, Any] = {}
        for i, r in zip(idx, results):
            d = self.pending[i]
            if not isinstance(r, Exception):
                self.outputs[i] = with_decision(r, d, self.call_ids[i])
                self.answered[i] = d
                continue
            fallback = self.policy.target(d, r)
            first = self.first_errors.get(i)
            if first is not None and self.policy.handles(r):  # a fallback failed too
                r = note_fallback_failure(first, d, r)
            if fallback is not None:
                self.first_errors.setdefault(i, r)
                retry[i] = fallback
            self.outputs[i] = r
        self.next_pending.update(retry)

    def rounds(self) -> Iterator[list[tuple[str, list[int]]]]:
        while self.pending:
            yield self.groups()
            self.pending, self.next_pending = self.next_pending, {}

    def result(self, return_exceptions: bool) -> list[Any]:
        if not return_exceptions:
            for out in self.outputs:
                if isinstance(out, Exception):
                    raise out
        return self.outputs


__all__ = ["PRICES_DESCRIPTION", "Attempts", "BatchRound", "RoutingMixin"]
