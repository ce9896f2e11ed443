"""What saving and loading ask of a router: the hooks every router, binary or N-way, has.

:class:`~routellm_core.routers.Router` and :class:`~routellm_core.nway.NWayRouter` declare each
of them, so checkpoints call them directly: ``_state`` (learned arrays, saved as safetensors),
``_extra_state`` (learned JSON state) and ``_set_state`` (both back), and ``_save_files`` /
``_load_files`` for files beyond those (a tokenizer, a shipped encoder), which they inherit from
:class:`FileHooks`: by default they write and read none.

Example:
    >>> from routellm_core.routers import RandomRouter
    >>> router: CheckpointHooks = RandomRouter(seed=0)
    >>> router._state(), router._extra_state(), router._save_files(Path("."))
    ({}, {}, [])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from routellm_core.calibration import CalibrationTable
from routellm_core.data.templates import SharedBoilerplate
from routellm_core.encoders import QueryEncoder

__all__ = ["CheckpointHooks", "FileHooks"]


class CheckpointHooks(Protocol):
    """A router as :func:`~routellm_core.checkpoints.save_router` and the loaders see it."""

    router_type: ClassVar[str]
    uses_encoder: ClassVar[bool]
    calibration_: CalibrationTable | None
    card_: dict[str, Any] | None
    query_template_: SharedBoilerplate | None

    @property
    def encoder_(self) -> QueryEncoder: ...

    def get_params(self) -> dict[str, Any]: ...

    def _state(self) -> dict[str, np.ndarray]: ...

    def _extra_state(self) -> dict[str, Any]: ...

    def _set_state(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None: ...

    def _save_files(self, directory: Path) -> list[str]: ...

    def _load_files(self, directory: Path) -> None: ...


class FileHooks:
    """The two hooks for a router's own files, as every router inherits them: no files."""

    def _save_files(self, directory: Path) -> list[str]:
        """Write the files the router needs beyond its arrays and JSON state (a tokenizer, an
        encoder of its own) into ``directory``; return their paths relative to it, which join the
        checkpoint's sha256 manifest. The default writes none."""
        return []

    def _load_files(self, directory: Path) -> None:
        """Read back, by path, what :meth:`_save_files` wrote, once the loader has verified every
        file. The default reads none."""


def _reads_own_files(router: object) -> bool:
    """Whether ``router``'s class overrides :meth:`FileHooks._load_files` (which reads nothing)."""
    return getattr(type(router), "_load_files", None) is not FileHooks._load_files
