"""``save_pretrained`` / ``from_pretrained`` and the file hooks, on every router through its base class.

:class:`PretrainedMixin` is what huggingface_hub's ``ModelHubMixin`` is to a model: a base of
:class:`~routellm_core.routers.Router` and :class:`~routellm_core.nway.NWayRouter`, thin over
:func:`~routellm_core.checkpoints.save_router` and :func:`~routellm_core.checkpoints.load_router`,
declaring the two hooks a router with files of its own overrides (they write and read none).

Example:
    >>> import tempfile
    >>> from routellm_core.routers import RandomRouter
    >>> path = RandomRouter(seed=7).save_pretrained(tempfile.mkdtemp())
    >>> RandomRouter.from_pretrained(path).seed
    7
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from routellm_core.checkpoints.hooks import FileHooks
from routellm_core.checkpoints.load import load_as
from routellm_core.checkpoints.save import save_router
from routellm_core.encoders import QueryEncoder

__all__ = ["PretrainedMixin"]

_P = TypeVar("_P", bound="PretrainedMixin")


class PretrainedMixin(FileHooks):
    """Saving to and loading from checkpoints, as methods of the router classes (with the file
    hooks of :class:`~routellm_core.checkpoints.hooks.FileHooks`)."""

    def save_pretrained(self, directory: str | os.PathLike[str], *, card: dict[str, Any] | None = None) -> Path:
        """Save the router as a checkpoint in ``directory`` (created if needed); returns its path.

        The same as :func:`~routellm_core.checkpoints.save_router`, ``card`` included.
        """
        return save_router(self, directory, card=card)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(
        cls: type[_P],
        name_or_path: str | os.PathLike[str],
        *,
        revision: str | None = None,
        encoder: QueryEncoder | str | None = None,
        **router_params: Any,
    ) -> _P:
        """Load a router of this class, or of a subclass, from what
        :func:`~routellm_core.checkpoints.load_router` takes: ``"default"`` (an N-way class loads
        the embedded N-way default), ``"default-fast"``, ``"random"``, a checkpoint directory, or
        a Hub repo id (``revision`` pins it). A checkpoint of another router type is refused with
        :class:`~routellm_core.errors.CheckpointError`, naming both.

        Example:
            >>> from routellm_core.nway import NWayRouter
            >>> from routellm_core.routers import RandomRouter, Router, SWRankingRouter
            >>> SWRankingRouter.from_pretrained("default").router_type
            'sw_ranking'
            >>> Router.from_pretrained("random", seed=0).router_type
            'random'
            >>> NWayRouter.from_pretrained("default").router_type
            'quality'
            >>> RandomRouter.from_pretrained("default-fast")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            routellm_core.errors.CheckpointError: default-fast holds a 'sw_ranking' router ...
        """
        return load_as(cls, name_or_path, revision=revision, encoder=encoder, **router_params)
