"""What every ``routellm`` command shares: the common options, the query encoder, loading the router.

Example:
    >>> import argparse
    >>> from routellm_core.cli.common import add_common_options
    >>> p = argparse.ArgumentParser()
    >>> add_common_options(p)
    >>> p.parse_args(["--seed", "3", "--quiet"])
    Namespace(seed=3, no_cache=False, quiet=True)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "DISTRIBUTION",
    "ENCODER_HELP",
    "add_common_options",
    "add_router_options",
    "cache_dir",
    "command_encoder",
    "command_line",
    "eval_data_dir",
    "load_command_router",
    "load_for_command",
    "package_version",
    "query_encoder",
    "write_json",
]

DISTRIBUTION = "routellm-lc"

ENCODER_HELP = (
    "query encoder: a sentence-transformers id or path (default all-MiniLM-L6-v2); "
    "static:ID for static embeddings distilled from that model on first use "
    "(static:sentence-transformers/all-MiniLM-L6-v2, about 0.1 ms a query); model2vec:ID for a "
    "ready model2vec model"
)


def package_version() -> str:
    """The installed version of ``routellm-lc`` (``"unknown"`` when not installed).

    Example:
        >>> isinstance(package_version(), str)
        True
    """
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cache_dir() -> str:
    """The on-disk cache: ``$ROUTELLM_CACHE_DIR``, else ``~/.cache/routellm``."""
    from routellm_core.static_encoder import cache_root

    return str(cache_root())


def query_encoder(name: str | None, *, no_cache: bool) -> Any:
    """The :class:`~routellm_core.encoders.QueryEncoder` a command asked for (loaded lazily)."""
    from routellm_core.encoders import QueryEncoder

    return QueryEncoder(name, cache_dir=None if no_cache else cache_dir())


def command_encoder(args: argparse.Namespace) -> Any:
    """The query encoder of a command's ``--encoder`` (the default one without it), cached unless ``--no-cache``."""
    return query_encoder(getattr(args, "encoder", None), no_cache=args.no_cache)


def load_for_command(loader: Any, spec: Any, args: Any, **kwargs: Any) -> Any:
    """``loader(spec)`` (``load_router`` / ``load_nway_router``) for a command: with ``--encoder``
    when given, else with the encoder the checkpoint records; either way through the on-disk
    embedding cache unless ``--no-cache``."""
    from routellm_core.checkpoints import with_encoder_cache

    name = getattr(args, "encoder", None)
    router = loader(spec, encoder=query_encoder(name, no_cache=args.no_cache) if name else None, **kwargs)
    return with_encoder_cache(router, cache_dir()) if not name and not args.no_cache else router


def load_command_router(args: argparse.Namespace, *, nway: bool = False) -> Any:
    """The router of a command's ``--router`` (at ``--revision`` where the command has one): a
    strong/weak router, or an N-way one when ``nway``; ``random`` gets the command's ``--seed``."""
    loader: Callable[..., Any]
    if nway:
        from routellm_core.nway import load_nway_router

        loader = load_nway_router
    else:
        from routellm_core.checkpoints import load_router

        loader = load_router
    extra = {"seed": args.seed} if args.router == "random" else {}
    return load_for_command(loader, args.router, args, revision=getattr(args, "revision", None), **extra)


def eval_data_dir(given: str | None) -> str:
    """RouteLLM's evaluation sets: ``given``, else ``{data}/routellm_evals``, ``{data}`` expanded."""
    from routellm_core.training import expand_spec

    return expand_spec(given or "{data}/routellm_evals")


def command_line() -> str:
    """The command being run, quoted so that a model card can replay it."""
    return "routellm " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def write_json(path: str, result: Any) -> None:
    """Write a command's ``result`` as indented JSON to ``path`` (its folder made) and say so."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


def add_common_options(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--no-cache`` and ``--quiet``, the options every command takes."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="do not use the on-disk embedding cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_router_options(p: argparse.ArgumentParser) -> None:
    """``--router`` and ``--revision`` (the strong/weak router to load), then the common options."""
    p.add_argument("--router", default="default",
                   help="'default', 'default-fast', 'random', a checkpoint directory or a Hub repo id")
    p.add_argument("--revision", help="Hub revision to pin")
    add_common_options(p)
