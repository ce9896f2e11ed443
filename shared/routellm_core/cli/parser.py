"""The ``routellm`` argument parser's behaviour: close matches for a mistyped option, a description
for every subcommand.

Example:
    >>> from routellm_core.cli.parser import SuggestingParser
    >>> p = SuggestingParser(prog="demo")
    >>> _ = p.add_argument("--threshold", type=float)
    >>> p.parse_args(["--threshold", "0.5"])
    Namespace(threshold=0.5)
"""

from __future__ import annotations

import argparse
import difflib
from typing import Any

__all__ = ["SuggestingParser", "describe_subcommands"]


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
