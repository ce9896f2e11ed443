"""A griffe extension for the API reference: docstrings written for Sphinx habits render as Markdown.

The code base writes Google-style docstrings, with three habits griffe's Markdown would show
literally; each is rewritten before the docstring is parsed (the source is untouched):

- ``Example:`` (singular) sections holding doctests: griffe only knows ``Examples:``;
- ``.. code-block:: LANG`` and a paragraph ending in ``::`` followed by an indented block (the
  style of langchain-openai's docstrings): a fenced code block;
- Sphinx roles (``:func:`~a.b.c```, ``:class:``, ``:meth:``, ``:data:``, ``:mod:``,
  ``:attr:``, ``:exc:``, ``:obj:``): inline code, ``~`` keeping the last name only.

mkdocs.yml loads this file through mkdocstrings' ``extensions`` option.

Example:
    >>> print(markdown_docstring("Calls :func:`~routellm_core.calls.pop_settings` first."))
    Calls `pop_settings` first.
    >>> print(markdown_docstring(".. code-block:: python\\n\\n    x = 1\\n\\nAfter."))
    ```python
    x = 1
    ```
    <BLANKLINE>
    After.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)
_ROLE = re.compile(r":(?:func|class|meth|data|mod|attr|exc|obj|const):`(~?)([^`]+)`")
_CODE_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*(?P<lang>\w*)[ \t]*$")
_LITERAL = re.compile(r"^(?P<indent>[ \t]*)(?P<text>\S.*?)::[ \t]*$")


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _fence(lines: list[str], start: int, indent: str, lang: str) -> tuple[list[str], int]:
    """The indented block after line ``start`` (blank lines first) as a fenced block at ``indent``,
    and the index of the first line after it."""
    i = start + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    body_start = i
    while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
        i += 1
    while i > body_start and not lines[i - 1].strip():
        i -= 1
    body = textwrap.dedent("\n".join(lines[body_start:i])).splitlines()
    return [f"{indent}```{lang}", *(f"{indent}{b}" if b else "" for b in body), f"{indent}```"], i


def markdown_docstring(text: str) -> str:
    """``text`` with the Sphinx habits of the module docstring rewritten as Markdown."""
    text = _ROLE.sub(_role, _EXAMPLE.sub(r"\1Examples:", text))
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        block = _CODE_BLOCK.match(line)
        literal = None if block else _LITERAL.match(line)
        following = next((x for x in lines[i + 1:] if x.strip()), "")
        indented = len(following) - len(following.lstrip()) > len(line) - len(line.lstrip())
        if block and indented:
            fenced, i = _fence(lines, i, block["indent"], block["lang"])
            out += fenced
        elif literal and indented and not literal["text"].rstrip().endswith(":"):
            out += [f"{literal['indent']}{literal['text']}:", ""]
            fenced, i = _fence(lines, i, literal["indent"], "")
            out += fenced
        else:
            out.append(line)
            i += 1
    return "\n".join(out)


class ExampleSections(griffe.Extension):
    """Rewrite every docstring with :func:`markdown_docstring` before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
