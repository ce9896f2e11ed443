"""The decision type and the per-call settings, re-exported from :mod:`routellm_core.decision`
(where they live, below the routers, which build decisions too).

Example:
    >>> from routellm_core.routing.decision import Decision
    >>> Decision.by_threshold(0.3, 0.5, {"strong": "big", "weak": "small"}, router="r").route
    'weak'
"""

from routellm_core.decision import PAIR_ROUTES, Decision, NWaySetting, PairSetting, Rule, Setting

__all__ = ["PAIR_ROUTES", "Decision", "NWaySetting", "PairSetting", "Rule", "Setting"]
