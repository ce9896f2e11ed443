"""``NWayRouteLLM``: a LlamaIndex LLM that routes every call among several LLMs (N-way).

The N-way counterpart of :class:`~llamaindex_routellm.RouteLLM`: a mapping ``{name: LLM}``
instead of a strong and a weak LLM, and the weights ``lambdas`` of Tryage's objective instead of
a threshold (per engine with :meth:`NWayRouteLLM.with_routing`, per call with the
``routellm_lambdas`` keyword). The decision logic is the core's
(:class:`routellm_core.nway.policy.NWayPool`); each call dispatches an
:class:`NWayRoutingDecisionEvent` before the chosen LLM runs and a
:class:`~llamaindex_routellm.RoutingCostEvent` when it completes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, model_validator
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms.llm import LLM
from routellm_core.costs import PriceSource, cost_record, token_counts
from routellm_core.nway.base import NWayDecision, NWayRouter
from routellm_core.nway.policy import NWayPool, coerce_lambdas, get_default_nway_router
from routellm_core.queries import check_query_mode, check_query_text, query_from_turns

from llamaindex_routellm.events import RoutingCostEvent
from llamaindex_routellm.llms import _output_text, _usage, message_text

dispatcher = get_dispatcher(__name__)

LAMBDAS_KWARG = "routellm_lambdas"
# (owner id, the question of a predict()/stream() call, its lambdas)
_call_ctx: ContextVar[tuple[int, str | None, dict[str, float] | None] | None] = (
    ContextVar("routellm_llamaindex_nway_call", default=None)
)


class NWayRoutingDecisionEvent(BaseEvent):
    """The N-way router's decision for one call, dispatched before the chosen LLM is called."""

    call: str = Field(description="The routed method: chat, complete, stream_chat, ...")
    model: str = Field(description="Name of the chosen LLM (its key in the mapping).")
    candidates: list[str] = Field(description="The names routed among.")
    scores: dict[str, float] = Field(
        description="The router's predicted quality of every candidate."
    )
    utilities: dict[str, float] = Field(
        description="score - sum_j lambda_j C_j of every candidate."
    )
    lambdas: dict[str, float] = Field(description="The constraint weights used.")
    router: str = Field(description="The router's name, e.g. 'quality'.")
    router_failed: bool = Field(
        default=False, description="The router raised; the failure policy chose."
    )
    error_type: str | None = Field(
        default=None, description="Exception type when the router failed."
    )

    @classmethod
    def class_name(cls) -> str:
        return "NWayRoutingDecisionEvent"

    @classmethod
    def from_decision(cls, d: NWayDecision, call: str) -> NWayRoutingDecisionEvent:
        return cls(
            call=call,
            model=d.model,
            candidates=list(d.candidates),
            scores=d.scores,
            utilities=d.utilities,
            lambdas=d.lambdas,
            router=d.router,
            router_failed=d.router_failed,
            error_type=d.error_type,
        )


class NWayRouteLLM(LLM):
    """Several LlamaIndex LLMs behind a learned N-way router (Tryage objective / ZOOTER).

    Each call is scored on its query (the last user turn; inside a query engine, the prompt's
    ``query_str``) and handed, unchanged, to the LLM that maximises
    ``score(m) - sum_j lambda_j C_j(m)``: chat, complete, their streaming and async forms.
    The chosen LLM's own call is the one callbacks and LLM events see; this class dispatches an
    :class:`NWayRoutingDecisionEvent` and a ``RoutingCostEvent`` (``route`` = the chosen name).

    Instantiate:
        .. code-block:: python

            from llamaindex_routellm import NWayRouteLLM

            llm = NWayRouteLLM(models={"llama-3.1-nemotron-51b-instruct": big,
                                       "llama-3.1-8b-instruct": mid, "gemma-2-9b-it": small},
                               lambdas={"cost": 0.2})
            index.as_query_engine(llm=llm).query("...")
            thrifty = llm.with_routing(lambdas={"cost": 1.0})      # another engine, same router
            llm.complete("...", routellm_lambdas={"cost": 0.0})   # per call
    """

    models: dict[str, LLM] = Field(description="The LLMs to route among, by name.")
    router: Any | None = Field(
        default=None,
        exclude=True,
        description="A loaded N-way router; None = the embedded default.",
    )
    lambdas: dict[str, float] | None = Field(
        default=None, description="Constraint weights, e.g. {'cost': 0.2}."
    )
    costs: dict[str, float] | None = Field(
        default=None,
        description="Cost per call of each model (shorthand for a 'cost' constraint).",
    )
    constraints: list[Any] | None = Field(
        default=None,
        exclude=True,
        description="Constraints keyed by the model names; default the router's own.",
    )
    failure_policy: str | None = Field(
        default=None,
        description="When the router fails: a model name, or 'raise'; None = the first model.",
    )
    query_from: str | Callable[[list[ChatMessage]], str] = Field(
        default="last_user",
        exclude=True,
        description="'last_user', 'all_user', or a callable over the messages.",
    )
    prompt_query_keys: tuple[str, ...] = Field(
        default=("query_str", "question"),
        description="Prompt variables of predict()/stream() holding the question.",
    )
    prices: Any | None = Field(
        default=None,
        exclude=True,
        description="{model: (input_per_million, output_per_million)} or a PriceSource.",
    )

    _pool: NWayPool = PrivateAttr()
    _prices: PriceSource = PrivateAttr()

    @model_validator(mode="after")
    def _validate_routing(self) -> NWayRouteLLM:
        check_query_mode(self.query_from)
        router = self.router if self.router is not None else get_default_nway_router()
        if not isinstance(router, NWayRouter):
            raise TypeError(
                f"router must be a loaded N-way router or None, got {type(router).__name__}"
            )
        self._pool = NWayPool(
            router,
            list(self.models),
            constraints=self.constraints,
            costs=self.costs,
            lambdas=self.lambdas,
            failure_policy=self.failure_policy,
        )
        self._prices = (
            self.prices
            if isinstance(self.prices, PriceSource)
            else PriceSource(self.prices)
        )
        return self

    @classmethod
    def class_name(cls) -> str:
        return "NWayRouteLLM"

    @property
    def metadata(self) -> LLMMetadata:
        """What every model can serve: the smallest context window and output size."""
        metas = [m.metadata for m in self.models.values()]
        return LLMMetadata(
            context_window=min(m.context_window for m in metas),
            num_output=min(m.num_output for m in metas),
            is_chat_model=all(m.is_chat_model for m in metas),
            is_function_calling_model=False,
            model_name=f"routellm-nway({'|'.join(self.models)})",
        )

    def with_routing(self, *, lambdas: dict[str, float]) -> NWayRouteLLM:
        """A copy routed with other lambdas, sharing the models and the router."""
        return NWayRouteLLM(
            models=self.models,
            router=self._pool.router,
            lambdas=lambdas,
            costs=self.costs,
            constraints=self.constraints,
            failure_policy=self.failure_policy,
            query_from=self.query_from,
            prompt_query_keys=self.prompt_query_keys,
            prices=self._prices,
            callback_manager=self.callback_manager,
        )

    # ------------------------------------------------------------------ routing
    def _route(
        self,
        call: str,
        messages: Sequence[ChatMessage] | None,
        prompt: str | None,
        kwargs: dict[str, Any],
    ) -> tuple[NWayDecision, str, dict[str, Any]]:
        kwargs = dict(kwargs)
        lambdas = coerce_lambdas(kwargs.pop(LAMBDAS_KWARG, None))
        ctx = _call_ctx.get()
        query = None
        if ctx is not None and ctx[0] == id(self):
            query = ctx[1]
            lambdas = lambdas if lambdas is not None else ctx[2]
        text = self._query_text(messages, prompt, query)
        d = self._pool.decide([text], lambdas=[lambdas])[0]
        event = NWayRoutingDecisionEvent.from_decision(d, call)
        dispatcher.event(event)
        return d, event.id_, kwargs

    def _query_text(
        self,
        messages: Sequence[ChatMessage] | None,
        prompt: str | None,
        question: str | None = None,
    ) -> str:
        if question is not None:
            return check_query_text(question, "the prompt's question")
        if messages is None:
            return check_query_text(prompt, "the prompt")
        if callable(self.query_from):
            return check_query_text(
                self.query_from(list(messages)), "the text query_from returned"
            )
        return query_from_turns(
            [(m.role.value, message_text(m)) for m in messages], self.query_from
        )

    def decide(
        self,
        messages: Sequence[ChatMessage] | None = None,
        prompt: str | None = None,
        **kwargs: Any,
    ) -> NWayDecision:
        """The decision for ``messages`` (or a completion ``prompt``) without calling a model."""
        lambdas = coerce_lambdas(kwargs.get(LAMBDAS_KWARG))
        return self._pool.decide(
            [self._query_text(messages, prompt)], lambdas=[lambdas]
        )[0]

    def _tag(self, resp: Any, d: NWayDecision) -> Any:
        resp.additional_kwargs = {**(resp.additional_kwargs or {}), **d.as_metadata()}
        return resp

    def _record(
        self,
        call: str,
        d: NWayDecision,
        decision_id: str,
        resp: Any,
        messages: Sequence[ChatMessage] | None,
        prompt: str | None,
        usage: tuple[int, int] | None = None,
        text: str | None = None,
    ) -> None:
        usage = usage if usage is not None else _usage(resp)
        inp, out, estimated = token_counts(
            usage,
            prompt_texts=[message_text(m) for m in messages]
            if messages is not None
            else [prompt or ""],
            output_text=(text if text is not None else _output_text(resp))
            if usage is None
            else None,
            chat=messages is not None,
        )
        record = cost_record(
            route=d.model,
            model=d.model,
            strong_model=d.model,
            win_rate=None,
            threshold=float("nan"),
            router=d.router,
            input_tokens=inp,
            output_tokens=out,
            prices=self._prices,
            tokens_estimated=estimated,
            router_failed=d.router_failed,
            error_type=d.error_type,
            run_id=decision_id,
        )
        dispatcher.event(
            RoutingCostEvent.from_record(record, call=call, decision_id=decision_id)
        )

    def _wrap(
        self, call: str, d: NWayDecision, did: str, gen: Any, messages: Any, prompt: Any
    ) -> Generator[Any, None, None]:
        last = None
        for r in gen:
            last = self._tag(r, d)
            yield last
        if last is not None:
            self._record(
                call, d, did, last, messages, prompt, text=getattr(last, "text", None)
            )

    async def _awrap(
        self, call: str, d: NWayDecision, did: str, gen: Any, messages: Any, prompt: Any
    ) -> AsyncGenerator[Any, None]:
        last = None
        async for r in gen:
            last = self._tag(r, d)
            yield last
        if last is not None:
            self._record(
                call, d, did, last, messages, prompt, text=getattr(last, "text", None)
            )

    # ------------------------------------------------------------------ delegation
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        d, did, kwargs = self._route("chat", messages, None, kwargs)
        resp = self.models[d.model].chat(messages, **kwargs)
        self._record("chat", d, did, resp, messages, None)
        return self._tag(resp, d)

    def complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        d, did, kwargs = self._route("complete", None, prompt, kwargs)
        resp = self.models[d.model].complete(prompt, formatted=formatted, **kwargs)
        self._record("complete", d, did, resp, None, prompt)
        return self._tag(resp, d)

    def stream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseGen:
        d, did, kwargs = self._route("stream_chat", messages, None, kwargs)
        return self._wrap(
            "stream_chat",
            d,
            did,
            self.models[d.model].stream_chat(messages, **kwargs),
            messages,
            None,
        )

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        d, did, kwargs = self._route("stream_complete", None, prompt, kwargs)
        gen = self.models[d.model].stream_complete(
            prompt, formatted=formatted, **kwargs
        )
        return self._wrap("stream_complete", d, did, gen, None, prompt)

    async def achat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponse:
        d, did, kwargs = await asyncio.to_thread(
            self._route, "achat", messages, None, kwargs
        )
        resp = await self.models[d.model].achat(messages, **kwargs)
        self._record("achat", d, did, resp, messages, None)
        return self._tag(resp, d)

    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        d, did, kwargs = await asyncio.to_thread(
            self._route, "acomplete", None, prompt, kwargs
        )
        resp = await self.models[d.model].acomplete(
            prompt, formatted=formatted, **kwargs
        )
        self._record("acomplete", d, did, resp, None, prompt)
        return self._tag(resp, d)

    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        d, did, kwargs = await asyncio.to_thread(
            self._route, "astream_chat", messages, None, kwargs
        )
        gen = await self.models[d.model].astream_chat(messages, **kwargs)
        return self._awrap("astream_chat", d, did, gen, messages, None)

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        d, did, kwargs = await asyncio.to_thread(
            self._route, "astream_complete", None, prompt, kwargs
        )
        gen = await self.models[d.model].astream_complete(
            prompt, formatted=formatted, **kwargs
        )
        return self._awrap("astream_complete", d, did, gen, None, prompt)

    # ------------------------------------------------------------------ predict: route on the question
    @contextlib.contextmanager
    def _prompt_ctx(self, prompt: Any, prompt_args: dict[str, Any]) -> Iterator[None]:
        lambdas = coerce_lambdas(prompt_args.pop(LAMBDAS_KWARG, None))
        variables = {**(getattr(prompt, "kwargs", None) or {}), **prompt_args}
        query = next(
            (
                variables[k]
                for k in self.prompt_query_keys
                if isinstance(variables.get(k), str) and variables[k].strip()
            ),
            None,
        )
        token = _call_ctx.set((id(self), query, lambdas))
        try:
            yield
        finally:
            _call_ctx.reset(token)

    def predict(self, prompt: Any, output_cls: Any = None, **prompt_args: Any) -> str:
        with self._prompt_ctx(prompt, prompt_args):
            return super().predict(prompt, output_cls=output_cls, **prompt_args)

    def stream(self, prompt: Any, output_cls: Any = None, **prompt_args: Any) -> Any:
        with self._prompt_ctx(prompt, prompt_args):
            return super().stream(prompt, output_cls=output_cls, **prompt_args)

    async def apredict(
        self, prompt: Any, output_cls: Any = None, **prompt_args: Any
    ) -> str:
        with self._prompt_ctx(prompt, prompt_args):
            return await super().apredict(prompt, output_cls=output_cls, **prompt_args)

    async def astream(
        self, prompt: Any, output_cls: Any = None, **prompt_args: Any
    ) -> Any:
        with self._prompt_ctx(prompt, prompt_args):
            return await super().astream(prompt, output_cls=output_cls, **prompt_args)


__all__ = ["LAMBDAS_KWARG", "NWayRouteLLM", "NWayRoutingDecisionEvent"]
