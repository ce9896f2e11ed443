"""The Python code blocks of the README or a docs page, for tests that run them as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def section_text(heading: str | None = None, doc: str = "README.md") -> str:
    """The text of ``doc`` (a path from the repository root) between ``## heading`` and the next
    ``## `` heading; the whole file when ``heading`` is None."""
    text = (ROOT / doc).read_text()
    if heading is None:
        return text
    marker = f"\n## {heading}\n"
    if marker not in text:
        raise AssertionError(f"{doc} has no section '## {heading}'")
    start = text.index(marker)
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def section_code(heading: str | None = None, doc: str = "README.md") -> list[str]:
    """The ```python blocks of one section of ``doc`` (see :func:`section_text`)."""
    return re.findall(r"```python\n(.*?)```", section_text(heading, doc), flags=re.S)
