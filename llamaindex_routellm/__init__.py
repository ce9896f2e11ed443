"""LlamaIndex adapter: a routed LLM, routing and cost instrumentation events, a cost handler.

Example:
    .. code-block:: python

        from llama_index.core.instrumentation import get_dispatcher
        from llamaindex_routellm import RouteLLM, RoutingCostEventHandler

        llm = RouteLLM(strong=my_big_llm, weak=my_small_llm, strong_fraction=0.3)
        # or N-way: RouteLLM(models={"gpt-4-1106-preview": big, ...}, lambdas={"cost": 0.2})
        costs = RoutingCostEventHandler()
        get_dispatcher().add_event_handler(costs)
        index.as_query_engine(llm=llm).query("Prove that there are infinitely many primes.")
        print(costs)            # calls, strong share, tokens, cost, all-strong cost, savings
"""

from llamaindex_routellm.events import RoutingCostEvent, RoutingDecisionEvent, RoutingFallbackEvent
from llamaindex_routellm.handlers import RoutingCostEventHandler
from llamaindex_routellm.llms import RouteLLM, routing_overrides

__all__ = [
    "RouteLLM",
    "RoutingCostEvent",
    "RoutingCostEventHandler",
    "RoutingDecisionEvent",
    "RoutingFallbackEvent",
    "routing_overrides",
]
