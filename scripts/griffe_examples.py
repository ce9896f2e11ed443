"""A griffe extension for the API reference: ``Example:`` docstring sections are examples.

The code base writes Google-style ``Example:`` (singular) sections holding doctests; griffe
only knows ``Examples:``, and would render the doctest lines as Markdown. mkdocs.yml loads
this file through mkdocstrings' ``extensions`` option.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` to ``Examples:`` in every docstring before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
