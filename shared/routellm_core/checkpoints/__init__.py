"""Save and load routers: safetensors weights + JSON config + a model card. Never pickle.

A checkpoint is a directory::

    config.json        router type, constructor parameters, learned JSON state, calibration
                       table, model card data, and the sha256 of every other file (``files``)
    model.safetensors  learned arrays (absent for routers with none, e.g. random)
    README.md          the model card, for people, opening with the YAML front matter the
                       Hugging Face Hub reads (library, license, tags, datasets, base model)
    ...                any further files a router writes (tokenizer files, more safetensors,
                       sub-folders), each listed with its sha256 in ``files``

Loading is strict, so a checkpoint from an untrusted place can be loaded safely:

- every file in the directory except ``config.json`` is listed in ``files`` and matches its
  sha256; an unlisted, missing or modified file is refused;
- a pickle is refused: weight files of pickle-based formats (``.bin``, ``.pt``, ``.pkl``, ...)
  and files whose first bytes are a pickle or a ``torch.save`` zip, whatever their name;
  nothing in a checkpoint is ever unpickled;
- nothing may point outside the directory: a ``files`` entry that is absolute or holds
  ``..``, a symlink whose target lies outside, or a path-like parameter (``/...``, ``~``,
  ``..``, ``C:\\``) is refused;
- a weight tensor holding NaN or an infinity is refused, naming it.

A load reads one directory whole: on POSIX every file is read through one open descriptor
of the directory, so a ``routellm promote`` that swaps the path meanwhile gives the old
router or the new one, never a mix and never a checksum error (a load the swap disturbed is
done again, up to 3 times).

Example:
    >>> from routellm_core.checkpoints import load_router
    >>> router = load_router("default")            # embedded in the package, offline
    >>> router.router_type
    'sw_ranking'

``load_router`` also takes a local directory or a Hugging Face Hub repo id
(``load_router("org/name", revision="v1")`` or ``load_router("hf://org/name")``), fetched with
``huggingface_hub``. Every router also has ``save_pretrained(directory)`` and
``SomeRouter.from_pretrained(name_or_path)``, thin over :func:`save_router` and :func:`load_router`.

Routers that carry more than arrays and JSON state (say, a tokenizer) override two hooks that
the base classes declare (:class:`~routellm_core.checkpoints.hooks.CheckpointHooks`):
``router._save_files(directory) -> list[str]`` writes the extra files and returns their paths
relative to ``directory`` (they join the manifest), and ``router._load_files(directory)`` reads
them back after every file has been verified.

The modules: :mod:`~routellm_core.checkpoints.format` (file names, the manifest, the config),
:mod:`~routellm_core.checkpoints.pinned` (one directory read whole),
:mod:`~routellm_core.checkpoints.safety` (the refusals, :func:`verify_checkpoint`),
:mod:`~routellm_core.checkpoints.card` (the model card), :mod:`~routellm_core.checkpoints.hub`
(Hub downloads), :mod:`~routellm_core.checkpoints.embedded` (the shipped checkpoints),
:mod:`~routellm_core.checkpoints.save`, :mod:`~routellm_core.checkpoints.load`,
:mod:`~routellm_core.checkpoints.hooks` and :mod:`~routellm_core.checkpoints.pretrained` (what
routers implement and inherit), and
:mod:`~routellm_core.checkpoints.registry` (router classes by ``router_type``, which the router
packages fill: checkpoints import no router).
"""

from __future__ import annotations

from routellm_core.checkpoints.card import (
    CARD_TAGS,
    HUB_LICENSES,
    LIBRARY_NAME,
    MIXED_LICENSE_NAME,
    card_metadata,
    hub_license,
    render_card,
)
from routellm_core.checkpoints.embedded import (
    DEFAULT_DIR,
    EMBEDDED,
    FAST_DEFAULT_DIR,
    NWAY_DEFAULT_DIR,
)
from routellm_core.checkpoints.format import (
    CARD_NAME,
    CONFIG_NAME,
    FORMAT,
    FORMAT_VERSION,
    MAX_CONFIG_BYTES,
    PROMOTE_MARKER,
    READABLE_VERSIONS,
    TEMPLATE_FORMAT_VERSION,
    WEIGHTS_NAME,
)
from routellm_core.checkpoints.format import _listed_files as _listed_files
from routellm_core.checkpoints.format import _read_config as _read_config
from routellm_core.checkpoints.hooks import CheckpointHooks, FileHooks
from routellm_core.checkpoints.hub import HUB_PREFIX
from routellm_core.checkpoints.hub import _download as _download
from routellm_core.checkpoints.hub import _repo_root as _repo_root
from routellm_core.checkpoints.load import (
    as_router,
    load_as,
    load_checkpoint_dir,
    load_nway_router,
    load_router,
    with_encoder_cache,
)
from routellm_core.checkpoints.pinned import _BY_FD as _BY_FD  # read at import: patch checkpoints.pinned._BY_FD
from routellm_core.checkpoints.pretrained import PretrainedMixin
from routellm_core.checkpoints.registry import (
    BINARY,
    NWAY,
    register_router_base,
    register_router_type,
    router_base,
    router_class,
    router_kind,
    router_types,
)
from routellm_core.checkpoints.safety import (
    CODE_SUFFIXES,
    PICKLE_SUFFIXES,
    REMOTE_CODE_KEYS,
    verify_checkpoint,
)
from routellm_core.checkpoints.save import save_router
from routellm_core.errors import CheckpointError

__all__ = [
    "BINARY",
    "CARD_NAME",
    "CARD_TAGS",
    "CODE_SUFFIXES",
    "CONFIG_NAME",
    "CheckpointError",
    "CheckpointHooks",
    "DEFAULT_DIR",
    "EMBEDDED",
    "FAST_DEFAULT_DIR",
    "FORMAT",
    "FORMAT_VERSION",
    "FileHooks",
    "HUB_LICENSES",
    "HUB_PREFIX",
    "LIBRARY_NAME",
    "MAX_CONFIG_BYTES",
    "MIXED_LICENSE_NAME",
    "NWAY",
    "NWAY_DEFAULT_DIR",
    "PICKLE_SUFFIXES",
    "PROMOTE_MARKER",
    "PretrainedMixin",
    "READABLE_VERSIONS",
    "REMOTE_CODE_KEYS",
    "TEMPLATE_FORMAT_VERSION",
    "WEIGHTS_NAME",
    "as_router",
    "card_metadata",
    "hub_license",
    "load_as",
    "load_checkpoint_dir",
    "load_nway_router",
    "load_router",
    "register_router_base",
    "register_router_type",
    "render_card",
    "router_base",
    "router_class",
    "router_kind",
    "router_types",
    "save_router",
    "verify_checkpoint",
    "with_encoder_cache",
]
