"""Where the data sets lie: the directory ``$ROUTELLM_DATA_DIR`` names (``{data}`` in a data spec).

A bottom module (it imports no other part of the core), so calibration tables and data specs
name the same directory. :mod:`routellm_core.data.specs` re-exports both names.

Example:
    >>> from routellm_core.data_dir import DATA_DIR_ENV
    >>> DATA_DIR_ENV
    'ROUTELLM_DATA_DIR'
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "default_data_dir"]

logger = logging.getLogger("routellm_core.data.specs")  # the name it logged under before it moved here

DATA_DIR_ENV = "ROUTELLM_DATA_DIR"


def default_data_dir() -> Path | None:
    """The data directory named by ``$ROUTELLM_DATA_DIR``, or ``None`` when it is not set.

    The library does not guess where data sets sit; ``{data}`` in a spec needs the variable.

    Example:
        >>> from routellm_core.data_dir import default_data_dir
        >>> d = default_data_dir()
        >>> d is None or d.is_dir()
        True
    """
    env = os.environ.get(DATA_DIR_ENV)
    if not env:
        return None
    path = Path(env).expanduser()
    if path.is_dir():
        return path.resolve()
    logger.warning("%s=%s is not a directory; no data directory", DATA_DIR_ENV, env)
    return None
