"""LangChain adapter: a routed chat model, a routed runnable, and a routing-cost callback.

Example:
    .. code-block:: python

        from langchain_routellm import ChatRouteLLM, get_routing_cost_callback

        llm = ChatRouteLLM(strong=my_big_model, weak=my_small_model, strong_fraction=0.3)
        # or N-way: ChatRouteLLM(models={"gpt-4-1106-preview": big, ...}, lambdas={"cost": 0.2})
        with get_routing_cost_callback() as cb:
            llm.invoke("Prove that there are infinitely many primes.")
        print(cb.totals.total_cost, cb.totals.savings)
"""

from langchain_routellm.callbacks import (
    RoutingCostCallbackHandler,
    get_routing_cost_callback,
)
from langchain_routellm.chat_models import ChatRouteLLM
from langchain_routellm.runnables import RouterRunnable

__all__ = [
    "ChatRouteLLM",
    "RouterRunnable",
    "RoutingCostCallbackHandler",
    "get_routing_cost_callback",
]
