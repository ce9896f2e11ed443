"""Routing: one interface for a strong/weak pair and a pool of N models.

- :class:`Pool` (``Pool.pair(...)``, ``Pool.of(...)``, :func:`make_pool`): a router, the
  user's named models and the rule that picks one; ``pool.route(texts, settings)`` is the one
  verb for choosing.
- :class:`Decision`: what was chosen, for both rules; adapters, fallbacks, cost records and
  traces read it. :class:`PairSetting` / :class:`NWaySetting` (:data:`Setting`): a call's
  setting, as ``pool.setting(...)`` checks it. All three live in :mod:`routellm_core.decision`.
- The router-failure policy (:mod:`~routellm_core.routing.failure`) and the model fallback
  (:mod:`~routellm_core.routing.fallback`).

Example:
    >>> from routellm_core.routing import Pool
    >>> pool = Pool.pair(strong="gpt-4o", weak="gpt-4o-mini", strong_fraction=0.5)
    >>> [d.route for d in pool.route(["hi!", "Prove that there are infinitely many primes."])] != []
    True
"""

from routellm_core.routing.batcher import RouteBatcher
from routellm_core.routing.decision import Decision, NWaySetting, PairSetting
from routellm_core.routing.failure import RouterFailure, report_router_failure
from routellm_core.routing.fallback import (
    FALLBACK_MODES,
    FallbackPolicy,
    OnError,
    acall_with_fallback,
    add_note,
    astream_with_fallback,
    call_with_fallback,
    note_fallback_failure,
    stream_with_fallback,
)
from routellm_core.routing.follow import RouterFromStore, RouterVersionWarning, checkpoint_sha256
from routellm_core.routing.pool import (
    NWayPool,
    PairPool,
    Pool,
    RoutingSettingWarning,
    Setting,
    make_pool,
    shared_router,
)

__all__ = [
    "RouteBatcher",
    "FALLBACK_MODES",
    "Decision",
    "FallbackPolicy",
    "NWayPool",
    "NWaySetting",
    "OnError",
    "PairPool",
    "PairSetting",
    "Pool",
    "RouterFailure",
    "RouterFromStore",
    "RouterVersionWarning",
    "RoutingSettingWarning",
    "Setting",
    "acall_with_fallback",
    "add_note",
    "astream_with_fallback",
    "call_with_fallback",
    "checkpoint_sha256",
    "make_pool",
    "note_fallback_failure",
    "report_router_failure",
    "shared_router",
    "stream_with_fallback",
]
