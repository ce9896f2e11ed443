"""Loading routers: the embedded defaults, local checkpoint directories and Hub repos, each
verified (:func:`~routellm_core.checkpoints.verify_checkpoint`) before anything is read from it.

The router class comes from the registry (:mod:`routellm_core.checkpoints.registry`), by the
checkpoint's ``router_type``.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from routellm_core.calibration import CalibrationTable
from routellm_core.checkpoints.embedded import EMBEDDED, NWAY_DEFAULT_DIR, _embedded_dir
from routellm_core.checkpoints.format import CONFIG_NAME
from routellm_core.checkpoints.hooks import _reads_own_files
from routellm_core.checkpoints.hub import HUB_PREFIX, _download, _repo_root
from routellm_core.checkpoints.pinned import _consistently, _Pinned
from routellm_core.checkpoints.registry import BINARY, NWAY, router_class, router_kind
from routellm_core.checkpoints.safety import _refuse_non_finite, verify_checkpoint
from routellm_core.data.templates import SharedBoilerplate
from routellm_core.encoder_probe import check_probe
from routellm_core.encoders import QueryEncoder
from routellm_core.errors import CheckpointError, RouteLLMWarning
from routellm_core.static_encoder import split_static_prefix

__all__ = [
    "as_router",
    "load_as",
    "load_checkpoint_dir",
    "load_nway_router",
    "load_router",
    "with_encoder_cache",
]

_R = TypeVar("_R")


def load_checkpoint_dir(
    path: str | os.PathLike[str],
    *,
    encoder: QueryEncoder | str | None = None,
    trusted_root: str | os.PathLike[str] | None = None,
) -> Any:
    """Load a router (binary or N-way) from a local checkpoint directory after :func:`verify_checkpoint`.

    ``encoder`` replaces the recorded encoder; before the router embeds anything it must
    reproduce the checkpoint's probe vectors (:class:`~routellm_core.encoder_probe.EncoderMismatchError`
    otherwise; checkpoints saved before probes were recorded are not checked).

    The router comes from one directory, whole: every file is read relative to the directory
    that ``path`` names when the load starts (POSIX), so a ``routellm promote`` that swaps
    ``path`` meanwhile cannot mix two checkpoints; a load that the swap disturbed (the old
    directory deleted under it; files that a router reads by path) is done again from the new
    one. A weight tensor holding NaN or an infinity is refused.
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory} is a file; a checkpoint is a directory")
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    return _consistently(directory, lambda pinned: _load_pinned(directory, pinned, encoder, trusted_root))


def _load_pinned(directory: Path, pinned: _Pinned, encoder: QueryEncoder | str | None,
                 trusted_root: str | os.PathLike[str] | None) -> Any:
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load as load_safetensors

    overridden = ("encoder",) if encoder is not None else ()
    config = verify_checkpoint(
        directory, trusted_root=trusted_root, overridden=overridden, _pinned=pinned
    )
    try:
        cls = router_class(config["router_type"])
    except ValueError as exc:
        raise CheckpointError(f"{directory}: {exc}") from exc
    arrays: dict[str, np.ndarray] = {}
    for name in config["files"]:
        if not name.endswith(".safetensors"):
            continue
        try:
            if (
                "/" in name
            ):  # weights in a sub-folder are the router's own (``_load_files``)
                pinned.by_path = True
                with safe_open(str(directory / name), framework="numpy"):
                    pass
            else:  # hash the very bytes that are parsed: a file swapped after the check is refused
                with pinned.open(name) as f:
                    data = f.read()
                if hashlib.sha256(data).hexdigest() != config["files"][name]:
                    raise CheckpointError(
                        f"{directory}: {name} changed while it was loaded; it does not match the "
                        f"sha256 in {CONFIG_NAME}"
                    )
                loaded = load_safetensors(data)
                _refuse_non_finite(directory, name, loaded)
                arrays.update(loaded)
        except CheckpointError:
            raise
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{directory}: {name} is not a readable safetensors file: {exc}"
            ) from exc
    params = dict(config["params"])
    # saved before routers stripped query templates: it, and a clone refitted from it, read text whole
    params.setdefault("strip_templates", False)
    if encoder is None and not isinstance(params.get("encoder"), (str, type(None))):
        raise CheckpointError(
            f"{directory}: params.encoder must be an encoder name or null, got {params['encoder']!r:.80}"
        )
    prefix, target = split_static_prefix(params["encoder"]) if isinstance(params.get("encoder"), str) else ("", "")
    if encoder is not None:
        params["encoder"] = encoder
    elif target and (directory / target).is_dir():
        pinned.by_path = True  # the encoder loads from this path (on first use)
        params["encoder"] = prefix + str(directory.resolve() / target)  # an encoder shipped inside
    elif target and Path(target).exists():
        raise CheckpointError(
            f"{directory}: params.encoder = {params['encoder']!r} is not inside the checkpoint "
            f"but names {Path(target).resolve()} from the working directory; a "
            "checkpoint may name Hub ids or files inside itself only (to use a local encoder "
            "you trust, pass encoder=... to load_router)"
        )
    try:
        router = cls(**params)
        router._set_state(arrays, config["state"])
        _check_loaded(router)
    except CheckpointError:
        raise
    except Exception as exc:  # a malformed config may fail anywhere in the router: name it
        raise CheckpointError(
            f"{directory}: the checkpoint does not fit a {cls.router_type} router: {exc!r:.500}"
        ) from exc
    if config.get("calibration"):
        try:
            router.calibration_ = CalibrationTable.from_dict(config["calibration"])
        except ValueError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
    if config.get("encoder_probe") is not None:
        try:
            router.encoder_probe_ = check_probe(config["encoder_probe"])
        except ValueError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
    if config.get("query_template") is not None:
        try:
            router.query_template_ = SharedBoilerplate.from_lines(
                config["query_template"], where="query_template"
            )
        except ValueError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
    card = config.get("card") or {}
    if not isinstance(card, dict):
        raise CheckpointError(f"{directory}: 'card' must be a JSON object, got {type(card).__name__}")
    router.card_ = dict(card)
    if _reads_own_files(router):
        pinned.by_path = True
        try:
            router._load_files(directory)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(
                f"{directory}: the {cls.router_type} router's files do not load: {exc!r:.500}"
            ) from exc
    return router


def _check_loaded(router: Any) -> None:
    """What scoring will ask of a loaded router, asked at load: its model names and, for a
    binary router, the pair it routes between (so a bad name fails here, not on a call)."""
    models = router.known_models
    if models is not None and not all(isinstance(m, str) and m for m in models):
        raise ValueError(f"model names must be non-empty strings, got {models!r:.200}")
    if router_kind(router) == BINARY:
        router.resolve_pair()


def load_router(
    name_or_path: str | os.PathLike[str] = "default",
    *,
    revision: str | None = None,
    encoder: QueryEncoder | str | None = None,
    **router_params: Any,
) -> Any:
    """Load a router: ``"default"`` or ``"default-fast"`` (embedded), ``"random"``, a local
    directory, or a Hub repo id (a strong/weak router, or an N-way one where the checkpoint holds one).

    Every checkpoint is verified first (see :mod:`routellm_core.checkpoints`): a pickle, an unlisted or
    modified file, or anything pointing outside the checkpoint raises :class:`CheckpointError`.

    Args:
        name_or_path: ``"default"`` (all-MiniLM-L6-v2 encoder); ``"default-fast"`` (the same
            recipe on the static encoder distilled from it: about 0.1 ms a query to encode, see
            :mod:`routellm_core.static_encoder`); ``"random"`` (the untrained baseline); a checkpoint
            directory; or a Hugging Face Hub repo: ``"hf://org/name"``, or ``"org/name"`` with
            a ``revision`` (a bare ``"org/name"`` that is not a local directory is an error
            that says so, never a silent fetch).
        revision: Hub branch, tag or commit to pin (a commit hash pins the exact files).
        encoder: override the query encoder (an instance shares its cache across routers).
        router_params: for ``"random"`` only, e.g. ``seed=0``.

    Example:
        >>> load_router("random", seed=0).router_type
        'random'
    """
    target = str(name_or_path)
    if target == "random":
        return router_class("random")(**router_params)
    if router_params:
        raise TypeError(
            f"unexpected parameters for a checkpoint: {sorted(router_params)}"
        )
    if target in EMBEDDED:
        return load_checkpoint_dir(_embedded_dir(target), encoder=encoder)
    explicit = target.startswith(HUB_PREFIX)
    if explicit:
        target = target[len(HUB_PREFIX):]
    else:
        local = Path(target).expanduser()
        if local.exists():
            return load_checkpoint_dir(local, encoder=encoder)
    if target.count("/") != 1 or target.startswith((".", "/")) or target.endswith("/"):
        raise CheckpointError(
            f"{name_or_path!r} is neither 'default', 'default-fast', 'random', an existing checkpoint directory, "
            f"nor a Hugging Face Hub repo id ('{HUB_PREFIX}org/name', or 'org/name' with revision=)"
        )
    if not explicit and revision is None:
        raise CheckpointError(
            f"no checkpoint directory {target!r} (looked in {Path.cwd()}); to fetch it from the "
            f"Hugging Face Hub instead, write '{HUB_PREFIX}{target}' or pass revision="
        )
    if revision is None or not re.fullmatch(r"[0-9a-f]{40}", revision):
        warnings.warn(
            f"loading router {target!r} from the Hugging Face Hub at the unpinned revision "
            f"{revision or 'main'!r}: what it holds can change; pin a commit with "
            "load_router(..., revision='<40-hex sha>')",
            RouteLLMWarning,
            stacklevel=2,
        )
    snapshot = _download(target, revision)
    return load_checkpoint_dir(
        snapshot, encoder=encoder, trusted_root=_repo_root(snapshot)
    )


def load_nway_router(
    name_or_path: str | os.PathLike[str] = "default", **kwargs: Any
) -> Any:
    """Load an N-way router: ``"default"`` (embedded), a checkpoint directory, or a Hub repo id.

    Takes what :func:`load_router` takes; raises :class:`CheckpointError` when the checkpoint
    holds a binary (strong/weak) router instead.

    Example:
        >>> load_nway_router("default").router_type
        'quality'
    """
    target = NWAY_DEFAULT_DIR if str(name_or_path) == "default" else name_or_path
    router = load_router(target, **kwargs)
    if router_kind(router) != NWAY:
        raise CheckpointError(
            f"{name_or_path!s} holds a {router.router_type!r} strong/weak router, not an N-way router; "
            "load it with load_router()"
        )
    return router


def as_router(
    router: Any,
    *,
    revision: str | None = None,
    encoder: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """``router`` itself when it is a strong/weak router, else :func:`load_router` of it, with the encoder
    ``encoder`` (a sentence-transformers id or path) and/or the embedding cache ``cache_dir``.

    Example:
        >>> as_router("random", encoder=None).router_type
        'random'
    """
    if router_kind(router) == BINARY:
        return router
    loaded = load_router(router, revision=revision,
                         encoder=QueryEncoder(encoder, cache_dir=cache_dir) if encoder else None)
    return with_encoder_cache(loaded, cache_dir) if cache_dir and not encoder else loaded


def with_encoder_cache(router: Any, cache_dir: str | os.PathLike[str]) -> Any:
    """``router`` (binary or N-way) embedding with the encoder its checkpoint records, through
    the on-disk embedding cache in ``cache_dir``; a router given an encoder object keeps it."""
    if router.uses_encoder and not isinstance(router.encoder, QueryEncoder):
        router.encoder = QueryEncoder(router.encoder, cache_dir=cache_dir)
    return router



def load_as(cls: type[_R], name_or_path: str | os.PathLike[str] = "default", **kwargs: Any) -> _R:
    """:func:`load_router` of ``name_or_path`` (``kwargs`` as it takes; ``"default"`` is the embedded
    N-way router when ``cls`` is an N-way router class), refused with :class:`CheckpointError`
    unless the router loaded is a ``cls`` (or of a subclass of it): what ``from_pretrained`` does.

    Example:
        >>> from routellm_core.routers import RandomRouter, SWRankingRouter
        >>> load_as(SWRankingRouter, "default").router_type
        'sw_ranking'
        >>> load_as(RandomRouter, "default")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        routellm_core.errors.CheckpointError: default holds a 'sw_ranking' router (SWRankingRouter), not a Random...
    """
    nway_default = router_kind(cls) == NWAY and str(name_or_path) == "default"
    router = load_router(NWAY_DEFAULT_DIR if nway_default else name_or_path, **kwargs)
    if not isinstance(router, cls):
        wanted = getattr(cls, "router_type", "")
        raise CheckpointError(
            f"{name_or_path!s} holds a {router.router_type!r} router ({type(router).__name__}), not a "
            f"{cls.__name__}{f' ({wanted!r})' if wanted else ''} or a subclass of it"
        )
    return router
