"""``RouterRunnable``: a learned strong/weak decision in front of any two runnables.

The routing machinery is shared with :class:`~langchain_routellm.ChatRouteLLM`
(:mod:`langchain_routellm._routed`): one :class:`~routellm_core.routing.Pool` decides, per-call
settings come from the call's keywords or ``config["configurable"]``, a batch is scored in one
router call, and delegation is transparent (the chosen runnable's own run is the one LangChain
records, with the decision added as tags and metadata).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from langchain_routellm._loop import SOURCE
from langchain_routellm._routed import PRICES_DESCRIPTION, RoutingMixin
from langchain_routellm._translate import PRICE_AS_KEY as PRICE_AS_KEY  # re-exported: its old home
from langchain_routellm._translate import PRICES_KEY as PRICES_KEY
from langchain_routellm._translate import (
    default_query_text,
    price_table,
    query_from_messages,
    routed_config,
    with_decision,
)
from langchain_routellm.names import runnable_model_name
from routellm_core.adapter import (
    ALIASES_HELP,
    CAPTURE_HELP,
    FAILURE_POLICY_HELP,
    FALLBACK_HELP,
    ROUTER_HELP,
    STRONG_FRACTION_HELP,
    THRESHOLD_HELP,
    PoolHolder,
    check_capture,
)
from routellm_core.calls import check_arguments
from routellm_core.costs import PriceSource
from routellm_core.naming import routed_names
from routellm_core.queries import check_query_text
from routellm_core.routing import FallbackPolicy, make_pool
from routellm_core.routing.pool import check_router_spec


class RouterRunnable(RoutingMixin, RunnableSerializable[Any, Any]):
    """Send each input to ``strong`` or ``weak`` by a learned router's win rate on its query.

    Unlike :class:`langchain_core.runnables.RouterRunnable`, which dispatches on an explicit
    ``{"key": ..., "input": ...}`` chosen by the caller, this one *decides* the branch itself:
    it takes the query text out of the input (``query``), scores it with the router, and calls
    ``strong`` when ``win_rate >= threshold``. The chosen runnable's run is the one LangChain
    records (no wrapper run), with the decision as tags and metadata.

    The branches are named after the first chat model inside each (through bindings,
    sequences, parallel maps and fallbacks), so that cost records and decisions carry real
    model names and prices; ``names={"strong": ..., "weak": ...}`` (or ``strong_name=`` /
    ``weak_name=``) override them (and are needed when a branch holds no chat model, e.g. a
    ``RunnableLambda``: it is then named ``"strong"`` / ``"weak"`` and priced as unknown); two
    branches running one model are ``"<model>@strong"`` / ``"<model>@weak"``, with a warning,
    priced as the model (:mod:`routellm_core.naming`).

    Example:
        .. code-block:: python

            from langchain_routellm import RouterRunnable

            rag = RouterRunnable(strong=prompt | ChatOpenAI(model="gpt-4o"),
                                 weak=prompt | ChatOpenAI(model="gpt-4o-mini"),
                                 strong_fraction=0.3, query=lambda x: x["question"])
            rag.invoke({"question": "..."})                        # branches: "gpt-4o", "gpt-4o-mini"
            rag.invoke({"question": "..."}, routellm_threshold=0.6)  # per call
            rag.invoke({"question": "..."}, config={"configurable": {"routellm_threshold": 0.6}})

    Learning from traffic: ``capture=`` (a ``TrafficCapture``, a ``TrafficStore``, a SQLite
    path or a SQLAlchemy URL) stores every answered call in the background: its query, the
    decision and the cost (failed calls, and streams not read to the end, are not stored).
    The call id is the run id of the chosen branch's run; outputs are left as they are, so
    give ``config={"run_id": uuid4()}`` to know it, then ``rag.rate(run_id, "down")``.
    ``swap_router(router)`` routes with another router from now on. There is no ``shadow=``
    here: the branches are arbitrary runnables, not chat models that can answer the routed
    query alone (use ``ChatRouteLLM`` for shadow labelling).

        .. code-block:: python

            run_id = uuid.uuid4()
            rag.invoke({"question": "..."}, config={"run_id": run_id})
            rag.rate(run_id, "up")
    """

    strong: Runnable = Field(description="Runnable for queries the router sends strong.")
    weak: Runnable = Field(description="Runnable for the other queries.")
    router: Any = Field(default=None, description=ROUTER_HELP)
    threshold: float | None = Field(default=None, description=THRESHOLD_HELP)
    strong_fraction: float | None = Field(default=None, description=STRONG_FRACTION_HELP)
    query: Callable[[Any], str] | None = Field(default=None, description="Takes the query text out of an input.")
    failure_policy: str | None = Field(default=None, description=FAILURE_POLICY_HELP)
    fallback: FallbackPolicy | str | bool | None = Field(default="auto", description=FALLBACK_HELP)
    strong_name: str | None = Field(
        default=None, description="Name of the strong branch in decisions and costs (default: its chat model's).")
    weak_name: str | None = Field(
        default=None, description="Name of the weak branch in decisions and costs (default: its chat model's).")
    names: dict[str, Any] | None = Field(
        default=None, description="{'strong': name, 'weak': name}: as strong_name= / weak_name=, the way "
                                  "ChatRouteLLM and RouteLLM take them.")
    prices: Any = Field(default=None, description=PRICES_DESCRIPTION)
    aliases: dict[str, str] | None = Field(default=None, description=ALIASES_HELP)
    capture: Any = Field(default=None, description=CAPTURE_HELP)

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")
    _routing: PoolHolder = PrivateAttr()
    _prices: dict[str, tuple[float, float]] = PrivateAttr(default_factory=dict)
    _price_source: PriceSource = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _known_arguments(cls, data: Any) -> Any:
        return check_arguments(cls, data, own=tuple(RouterRunnable.model_fields))

    @field_validator("router")
    @classmethod
    def _router_spec(cls, router: Any) -> Any:
        return check_router_spec(router)

    @field_validator("capture")
    @classmethod
    def _capture(cls, capture: Any) -> Any:
        return check_capture(capture, source=SOURCE)

    @model_validator(mode="after")
    def _validate(self) -> RouterRunnable:
        naming = routed_names(strong=self.strong, weak=self.weak, names=self._given_names(),
                              guess=runnable_model_name)  # one rule for both adapters (routellm_core.naming)
        self._prices = price_table(self.prices)
        self._price_source = PriceSource(self._prices).with_price_as(naming.price_as)
        self._routing = PoolHolder(make_pool(
            **naming.pool_args(), router=self.router, threshold=self.threshold,
            strong_fraction=self.strong_fraction, failure_policy=self.failure_policy, fallback=self.fallback,
            aliases=self.aliases))
        self._routing.follow(self.router)
        return self

    def _given_names(self) -> dict[str, Any]:
        """The user's names by route: ``names=``, with ``strong_name=`` / ``weak_name=`` (which must agree)."""
        given = {r: n for r, n in (("strong", self.strong_name), ("weak", self.weak_name)) if n is not None}
        names = dict(self.names or {})
        clash = [r for r in given if r in names and names[r] != given[r]]
        if clash:
            raise ValueError(f"{clash[0]}_name={given[clash[0]]!r} and names[{clash[0]!r}]={names[clash[0]]!r} "
                             "disagree; give one of them")
        return {**given, **names}

    def branch_names(self) -> tuple[str, str]:
        """The (strong, weak) names decisions and cost records use: ``names`` /
        ``strong_name`` / ``weak_name``, else the first chat model's name inside each branch,
        else ``"strong"`` / ``"weak"``; two branches running one model are
        ``"<name>@strong"`` / ``"<name>@weak"`` (see :mod:`routellm_core.naming`)."""
        models = self._pool.models
        return models["strong"], models["weak"]

    def _query_text(self, input: Any) -> str:
        if self.query is None:
            return default_query_text(input)
        return check_query_text(self.query(input), "the text the query function returned")

    def _targets(self) -> dict[str, Runnable]:
        return {"strong": self.strong, "weak": self.weak}

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._invoke_routed(self._targets(), input, config, kwargs, wrap=False)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._ainvoke_routed(self._targets(), input, config, kwargs, wrap=False)

    def batch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
              **kwargs: Any) -> list[Any]:
        return self._batch_routed(self._targets(), inputs, config, return_exceptions, kwargs)

    async def abatch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
                     **kwargs: Any) -> list[Any]:
        return await self._abatch_routed(self._targets(), inputs, config, return_exceptions, kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from self._stream_routed(self._targets(), input, config, kwargs, wrap=False)

    async def astream(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[Any]:
        async for chunk in self._astream_routed(self._targets(), input, config, kwargs, wrap=False):
            yield chunk


__all__ = ["RouterRunnable", "default_query_text", "query_from_messages", "routed_config", "with_decision"]
