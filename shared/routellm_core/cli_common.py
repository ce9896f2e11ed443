"""What ``routellm`` and ``routellm nway`` share: options, ``--param`` / ``--alias`` parsing, quiet libraries.

Example:
    >>> from routellm_core.cli_common import parse_aliases, parse_params
    >>> from routellm_core.routers import MatrixFactorizationRouter
    >>> parse_params(["epochs=3", "ties=half"], MatrixFactorizationRouter)
    {'epochs': 3, 'ties': 'half'}
    >>> parse_params(["epochz=3"], MatrixFactorizationRouter)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --param epochz: mf routers have no parameter 'epochz'; valid names: ...
    >>> parse_aliases(["gpt4=gpt-4-1106-preview"])
    {'gpt4': 'gpt-4-1106-preview'}
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.metadata
import inspect
import json
import logging
import shlex
import sys
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "DISTRIBUTION",
    "SuggestingParser",
    "add_common_options",
    "cache_dir",
    "command_line",
    "constructor_parameters",
    "describe_subcommands",
    "eval_data_dir",
    "package_version",
    "parse_aliases",
    "parse_params",
    "query_encoder",
    "quiet_libraries",
]

DISTRIBUTION = "routellm-lc"
# Libraries whose INFO logs and weight-loading bars are noise on every command.
NOISY_LOGGERS = ("transformers", "sentence_transformers", "huggingface_hub", "torch", "filelock", "urllib3")


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


ENCODER_HELP = (
    "query encoder: a sentence-transformers id or path (default all-MiniLM-L6-v2); "
    "static:ID for static embeddings distilled from that model on first use "
    "(static:sentence-transformers/all-MiniLM-L6-v2, about 0.1 ms a query); model2vec:ID for a "
    "ready model2vec model"
)


def query_encoder(name: str | None, *, no_cache: bool) -> Any:
    """The :class:`~routellm_core.encoders.QueryEncoder` a command asked for (loaded lazily)."""
    from routellm_core.encoders import QueryEncoder

    return QueryEncoder(name, cache_dir=None if no_cache else cache_dir())


def load_for_command(loader: Any, spec: Any, args: Any, **kwargs: Any) -> Any:
    """``loader(spec)`` (``load_router`` / ``load_nway_router``) for a command: with ``--encoder``
    when given, else with the encoder the checkpoint records; either way through the on-disk
    embedding cache unless ``--no-cache``."""
    from routellm_core.checkpoints import with_encoder_cache

    name = getattr(args, "encoder", None)
    router = loader(spec, encoder=query_encoder(name, no_cache=args.no_cache) if name else None, **kwargs)
    return with_encoder_cache(router, cache_dir()) if not name and not args.no_cache else router


def eval_data_dir(given: str | None) -> str:
    """RouteLLM's evaluation sets: ``given``, else ``{data}/routellm_evals``, ``{data}`` expanded."""
    from routellm_core.training import expand_spec

    return expand_spec(given or "{data}/routellm_evals")


def command_line() -> str:
    """The command being run, quoted so that a model card can replay it."""
    return "routellm " + " ".join(shlex.quote(a) for a in sys.argv[1:])


class SuggestingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose unrecognised ``--option`` is reported by the (sub)command that
    got it, with its usage and the close matches among its options (``did you mean
    --threshold?``); exit status 2, as argparse's own errors."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = _chosen_parser(self, ns)
            options = sorted(o for o in parser._option_string_actions if o.startswith("--"))
            hints = []
            for extra in extras:
                name = extra.split("=", 1)[0]
                if name.startswith("-"):
                    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
                    if close:
                        hints.append(f"{name}: did you mean {' or '.join(close)}?")
            message = f"unrecognized arguments: {' '.join(extras)}"
            parser.error(f"{message}; {'; '.join(hints)}" if hints else message)
        return ns


def _chosen_parser(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> argparse.ArgumentParser:
    """The deepest subcommand parser that ``ns`` was parsed with (``parser`` itself without one)."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(ns, sub.dest, None) if sub is not None and sub.dest else None
        if sub is None or chosen not in sub.choices:
            return parser
        parser = sub.choices[chosen]


def describe_subcommands(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every subcommand (at any depth) without a description its one-line help as one, so
    that ``routellm CMD --help`` says what the command does."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    text = str(helps[name])
                    sub.description = text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
                describe_subcommands(sub)
    return parser


def add_common_options(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--no-cache`` and ``--quiet``, the options every command takes."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="do not use the on-disk embedding cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# --------------------------------------------------------------------------- --param


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters ``cls(...)`` accepts, following ``**kwargs`` up the base classes."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        passes_on = False
        for name, param in inspect.signature(init).parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                passes_on = True
            elif name != "self" and param.kind is not inspect.Parameter.VAR_POSITIONAL:
                found.setdefault(name, param)
        if not passes_on:
            break
    return found


def _hints(cls: type) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            hints.update(typing.get_type_hints(init))
        except Exception:  # noqa: BLE001  (an annotation that cannot be resolved is not checked)
            continue
    return hints


def _fits(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` fits the annotation ``hint``; ``None`` when this cannot tell."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_fits(value, a) for a in typing.get_args(hint)]
        return True if True in verdicts else None if None in verdicts else False
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return None


def _describe(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if typing.get_origin(hint) is None else None
    return text or str(hint).replace("typing.", "").replace("NoneType", "None")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(
    pairs: list[str], cls: type, *, reserved: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as constructor parameters of ``cls``, names and simple types checked.

    VALUE is read as JSON (``3``, ``0.5``, ``true``, ``null``, ``[1, 2]``), else taken as text.
    ``reserved`` maps parameters that have their own option to that option's name.

    Raises:
        ValueError: not ``KEY=VALUE``, a name ``cls`` does not take (the message lists the valid
            ones), a reserved name, or a value of the wrong type for its annotation.
    """
    valid = constructor_parameters(cls)
    hints = _hints(cls)
    kind = getattr(cls, "router_type", cls.__name__)
    reserved = dict(reserved or {})
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--param expects KEY=VALUE, got {pair!r}")
        if key in reserved:
            raise ValueError(f"--param {key}: set it with {reserved[key]} instead")
        if key not in valid:
            names = sorted(n for n in valid if n not in reserved)
            raise ValueError(
                f"--param {key}: {kind} routers have no parameter {key!r}; valid names: {', '.join(names)}"
            )
        value = _parse_value(text)
        hint = hints.get(key)
        if hint is not None and _fits(value, hint) is False:
            raise ValueError(
                f"--param {key}={text}: {kind} routers expect {key} to be {_describe(hint)}, "
                f"got {type(value).__name__} {value!r}"
            )
        out[key] = value
    return out


def parse_aliases(pairs: list[str]) -> dict[str, str]:
    """``NAME=KNOWN`` pairs (``--alias``): ``NAME`` is another name of the known model ``KNOWN``."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, known = pair.partition("=")
        name, known = name.strip(), known.strip()
        if not sep or not name or not known:
            raise ValueError(f"--alias expects NAME=KNOWN_MODEL, got {pair!r}")
        if name in out and out[name] != known:
            raise ValueError(f"--alias {name} is given twice: {out[name]!r} and {known!r}")
        out[name] = known
    return out


# --------------------------------------------------------------------------- quiet libraries


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
