"""Deprecated name of :mod:`routellm_core.data.alpaca_eval` (AlpacaEval judge preference files,
read as battles or a reward matrix), kept so that old imports still work: every name read from
here warns with a ``DeprecationWarning`` and is the one in :mod:`routellm_core.data.alpaca_eval`.
Not to be confused with :mod:`routellm_core.learning.judge`, the live pairwise LLM judge.

Example:
    >>> import warnings
    >>> from routellm_core.data import alpaca_eval
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     from routellm_core.data.judge import load_judge_battles
    >>> load_judge_battles is alpaca_eval.load_judge_battles, caught[0].category.__name__
    (True, 'DeprecationWarning')
"""

from __future__ import annotations

from routellm_core.data import alpaca_eval
from routellm_core.deprecation import moved_module

__getattr__, __dir__ = moved_module(__name__, alpaca_eval)
