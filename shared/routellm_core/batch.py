"""Deprecated name of :mod:`routellm_core.offline_scoring` (offline scoring of many prompts or
prompt files), kept so that old imports still work: every name read from here warns with a
``DeprecationWarning`` and is the one in :mod:`routellm_core.offline_scoring`. Not to be confused
with :mod:`routellm_core.routing.batcher`, which micro-batches live async calls.

Example:
    >>> import warnings
    >>> from routellm_core import offline_scoring
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     from routellm_core.batch import score_prompts
    >>> score_prompts is offline_scoring.score_prompts, caught[0].category.__name__
    (True, 'DeprecationWarning')
"""

from __future__ import annotations

from routellm_core import offline_scoring
from routellm_core.deprecation import moved_module

__getattr__, __dir__ = moved_module(__name__, offline_scoring)
