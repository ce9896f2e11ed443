"""The traffic store: moved to :mod:`routellm_core.store`, below the data loaders that read it.

This module keeps the old import path working; new code imports from :mod:`routellm_core.store`.

Example:
    >>> from routellm_core.learning.store import TrafficStore
    >>> from routellm_core.store import TrafficStore as moved
    >>> TrafficStore is moved
    True
"""

from __future__ import annotations

from routellm_core.store import (
    EXIT_TIMEOUT,
    MAX_COMMENT_CHARS,
    MAX_ID_CHARS,
    MAX_LOCATION_CHARS,
    MIGRATIONS,
    PAGE_KEYS,
    RATINGS,
    SCHEMA_VERSION,
    BackgroundWriter,
    Redact,
    RouterVersion,
    StoreError,
    TrafficStore,
    battle_key,
    open_store,
)
from routellm_core.store.schema import SCHEMA_LOCK as _SCHEMA_LOCK  # noqa: F401  (the old name of the lock)

__all__ = ["EXIT_TIMEOUT", "MAX_COMMENT_CHARS", "MAX_ID_CHARS", "MAX_LOCATION_CHARS", "MIGRATIONS", "PAGE_KEYS",
           "RATINGS", "SCHEMA_VERSION", "BackgroundWriter", "Redact", "RouterVersion", "StoreError", "TrafficStore",
           "battle_key", "open_store"]
