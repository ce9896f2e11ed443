"""``NWayChatRouteLLM``: a chat model that routes every call among several chat models (N-way).

The N-way counterpart of :class:`~langchain_routellm.ChatRouteLLM`: instead of a strong and a
weak model it takes a mapping ``{name: chat model}``, and instead of a threshold the weights
``lambdas`` of Tryage's objective ``argmax_m score(m) - sum_j lambda_j C_j(m)`` (per chain
through ``config["configurable"]["routellm_lambdas"]``, as ``routellm_threshold`` for the
binary router). The decision logic is the core's (:class:`routellm_core.nway.policy.NWayPool`);
this module only extracts the query, delegates, and tags the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_config_list,
    run_in_executor,
)
from pydantic import ConfigDict, Field, PrivateAttr, model_validator
from routellm_core.nway.base import NWayDecision, NWayRouter
from routellm_core.nway.constraints import Constraint
from routellm_core.nway.policy import NWayPool, coerce_lambdas, get_default_nway_router
from routellm_core.queries import check_query_mode

from langchain_routellm.runnables import (
    query_from_messages,
    routed_config,
    with_decision,
)

LAMBDAS_KEY = "routellm_lambdas"
_TARGETS_KWARG = "routellm_nway_targets"


class NWayChatRouteLLM(BaseChatModel):
    """Several chat models behind a learned N-way router (Tryage objective / ZOOTER).

    For every call it scores the query (by default the last user turn) with the N-way router,
    picks ``argmax_m score(m) - sum_j lambda_j C_j(m)`` among ``models``, and hands the
    *original* call to that model (invoke, batch, stream, their async forms, stop words, tools
    and structured output). The chosen model's run is the one LangChain records; the decision
    travels as the tag ``routellm:<name>``, as ``routellm_*`` metadata (model, scores,
    utilities, lambdas, candidates) on that run, and in the answer's ``response_metadata``.

    Instantiate:
        .. code-block:: python

            from langchain_routellm import NWayChatRouteLLM

            llm = NWayChatRouteLLM(
                models={"llama-3.1-nemotron-51b-instruct": big, "llama-3.1-8b-instruct": mid,
                        "gemma-2-9b-it": small},        # names the router knows (or aliases)
                lambdas={"cost": 0.2})                 # router=None: the embedded N-way default

    Per call:
        .. code-block:: python

            llm.invoke("...", config={"configurable": {"routellm_lambdas": {"cost": 1.0}}})
    """

    models: dict[str, BaseChatModel] = Field(
        description="The chat models to route among, by name."
    )
    router: NWayRouter | None = Field(
        default=None, description="A loaded N-way router; None = the embedded default."
    )
    lambdas: dict[str, float] | None = Field(
        default=None, description="Constraint weights, e.g. {'cost': 0.2}."
    )
    costs: dict[str, float] | None = Field(
        default=None,
        description="Cost per call of each model (shorthand for a 'cost' constraint).",
    )
    constraints: list[Constraint] | None = Field(
        default=None,
        description="Constraints keyed by the model names; default the router's own.",
    )
    query_from: (
        Literal["last_user", "all_user"] | Callable[[list[BaseMessage]], str]
    ) = Field(
        default="last_user",
        description="What to score: the last user turn, all user turns, or a callable.",
    )
    failure_policy: str | None = Field(
        default=None,
        description="When the router fails: a model name, or 'raise'; None = the first model.",
    )
    stop: list[str] | None = Field(
        default=None, description="Default stop words passed to the chosen model."
    )

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _pool: NWayPool = PrivateAttr()

    @model_validator(mode="after")
    def _validate(self) -> NWayChatRouteLLM:
        check_query_mode(self.query_from)
        router = self.router if self.router is not None else get_default_nway_router()
        self._pool = NWayPool(
            router,
            list(self.models),
            constraints=self.constraints,
            costs=self.costs,
            lambdas=self.lambdas,
            failure_policy=self.failure_policy,
        )
        return self

    @property
    def _llm_type(self) -> str:
        return "routellm-nway"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "lambdas": self._pool.lambdas,
            "router": self._pool.router.name,
        }

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "ls_provider": "routellm",
            "ls_model_name": "|".join(self.models),
            "ls_model_type": "chat",
        }
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ------------------------------------------------------------------ routing
    def _lambdas_for(self, config: RunnableConfig) -> dict[str, float] | None:
        return coerce_lambdas((config.get("configurable") or {}).get(LAMBDAS_KEY))

    def _decide(
        self, inputs: Sequence[Any], configs: Sequence[RunnableConfig]
    ) -> list[NWayDecision]:
        texts = [
            query_from_messages(self._convert_input(i).to_messages(), self.query_from)
            for i in inputs
        ]
        return self._pool.decide(texts, lambdas=[self._lambdas_for(c) for c in configs])

    def decide(
        self, input: LanguageModelInput, config: RunnableConfig | None = None
    ) -> NWayDecision:
        """The routing decision for ``input`` under ``config``, without calling a model."""
        return self._decide([input], [ensure_config(config)])[0]

    def _targets(self, kwargs: dict[str, Any]) -> dict[str, Runnable]:
        return kwargs.pop(_TARGETS_KWARG, None) or dict(self.models)

    def _call_kwargs(
        self, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        stop = stop if stop is not None else self.stop
        return {**kwargs, "stop": stop} if stop is not None else kwargs

    # ------------------------------------------------------------------ delegation
    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        targets = self._targets(kwargs)
        d = self.decide(input, config)
        out = targets[d.model].invoke(
            input, routed_config(config, d), **self._call_kwargs(stop, kwargs)
        )  # type: ignore[arg-type]
        return with_decision(out, d)  # type: ignore[arg-type]

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        targets = self._targets(kwargs)
        d = await run_in_executor(config, self.decide, input, config)
        out = await targets[d.model].ainvoke(
            input,
            routed_config(config, d),  # type: ignore[arg-type]
            **self._call_kwargs(stop, kwargs),
        )
        return with_decision(out, d)  # type: ignore[arg-type]

    def _groups(self, decisions: Sequence[NWayDecision]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, d in enumerate(decisions):
            groups.setdefault(d.model, []).append(i)
        return groups

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: Any = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        targets = self._targets(kwargs)
        configs = get_config_list(config, len(inputs))
        decisions = self._decide(inputs, configs)
        outputs: list[Any] = [None] * len(inputs)
        call_kwargs = self._call_kwargs(kwargs.pop("stop", None), kwargs)
        for name, idx in self._groups(decisions).items():
            res = targets[name].batch(
                [inputs[i] for i in idx],
                [routed_config(configs[i], decisions[i]) for i in idx],  # type: ignore[arg-type]
                return_exceptions=return_exceptions,
                **call_kwargs,
            )
            for i, r in zip(idx, res):
                outputs[i] = (
                    r if isinstance(r, Exception) else with_decision(r, decisions[i])
                )  # type: ignore[arg-type]
        return outputs

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: Any = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        import asyncio

        targets = self._targets(kwargs)
        configs = get_config_list(config, len(inputs))
        decisions = await run_in_executor(
            configs[0] if configs else None, self._decide, inputs, configs
        )
        call_kwargs = self._call_kwargs(kwargs.pop("stop", None), kwargs)
        groups = list(self._groups(decisions).items())
        results = await asyncio.gather(
            *(
                targets[name].abatch(
                    [inputs[i] for i in idx],
                    [routed_config(configs[i], decisions[i]) for i in idx],  # type: ignore[arg-type]
                    return_exceptions=return_exceptions,
                    **call_kwargs,
                )
                for name, idx in groups
            )
        )
        outputs: list[Any] = [None] * len(inputs)
        for (_, idx), res in zip(groups, results):
            for i, r in zip(idx, res):
                outputs[i] = (
                    r if isinstance(r, Exception) else with_decision(r, decisions[i])
                )  # type: ignore[arg-type]
        return outputs

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        targets = self._targets(kwargs)
        d = self.decide(input, config)
        first = True
        for chunk in targets[d.model].stream(
            input, routed_config(config, d), **self._call_kwargs(stop, kwargs)
        ):  # type: ignore[arg-type]
            yield with_decision(chunk, d) if first else chunk  # type: ignore[arg-type]
            first = False

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        targets = self._targets(kwargs)
        d = await run_in_executor(config, self.decide, input, config)
        first = True
        async for chunk in targets[d.model].astream(
            input,
            routed_config(config, d),  # type: ignore[arg-type]
            **self._call_kwargs(stop, kwargs),
        ):
            yield with_decision(chunk, d) if first else chunk  # type: ignore[arg-type]
            first = False

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """The ``generate()`` path: this model's own run records the call; per-call lambdas are
        not seen here (use ``invoke``)."""
        targets = self._targets(kwargs)
        d = self.decide(messages)
        target = targets[d.model]
        if not isinstance(target, BaseChatModel):
            raise NotImplementedError(
                "generate() on a model with bound tools or structured output; use invoke()"
            )
        result = target._generate(messages, **self._call_kwargs(stop, kwargs))
        for g in result.generations:
            g.message = with_decision(g.message, d)  # type: ignore[arg-type]
        return result

    # ------------------------------------------------------------------ tools and structure
    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools`` to every model (each in its own format); routing is unchanged."""
        extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
        bound = {
            name: m.bind_tools(tools, **extra, **kwargs)
            for name, m in self.models.items()
        }
        return self.bind(**{_TARGETS_KWARG: bound})

    def with_structured_output(
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output of every model (each its own method); routing is unchanged."""
        bound = {
            name: m.with_structured_output(schema, include_raw=include_raw, **kwargs)
            for name, m in self.models.items()
        }
        return self.bind(**{_TARGETS_KWARG: bound})


__all__ = ["LAMBDAS_KEY", "NWayChatRouteLLM"]
