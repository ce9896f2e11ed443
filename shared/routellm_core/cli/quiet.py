"""Quiet ML libraries while a ``routellm`` command runs: no weight-loading bars, no INFO logs.

Example:
    >>> import logging
    >>> from routellm_core.cli.quiet import quiet_libraries
    >>> with quiet_libraries():
    ...     logging.getLogger("transformers").level == logging.WARNING
    True
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

__all__ = ["NOISY_LOGGERS", "quiet_libraries"]

# Libraries whose INFO logs and weight-loading bars are noise on every command.
NOISY_LOGGERS = ("transformers", "sentence_transformers", "huggingface_hub", "torch", "filelock", "urllib3")


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """While a command runs: no weight-loading bars and no INFO logs from the ML libraries.

    Scoped: logger levels and the Hugging Face progress-bar switches are put back afterwards,
    so importing ``routellm_core`` changes nothing, and our own progress bars are unaffected.
    """
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    hub_was_disabled: bool | None = None
    tf_log = sys.modules.get("transformers.utils.logging")
    tf_was_active = None if tf_log is None else tf_log.is_progress_bar_enabled()
    try:
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

        hub_was_disabled = are_progress_bars_disabled()
        disable_progress_bars()
    except ImportError:  # pragma: no cover  (huggingface_hub comes with sentence-transformers)
        pass
    if tf_log is not None:
        setattr(tf_log, "_tqdm_active", False)  # noqa: B010  (disable_progress_bar() also flips the hub's)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if hub_was_disabled is False:
            from huggingface_hub.utils import enable_progress_bars

            enable_progress_bars()
        tf_log = sys.modules.get("transformers.utils.logging")
        if tf_log is not None:  # imported before or during the command
            setattr(tf_log, "_tqdm_active", tf_was_active if tf_was_active is not None else not hub_was_disabled)  # noqa: B010
