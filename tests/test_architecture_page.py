"""docs/architecture.md's table of floors is the core's import graph as it is: each module's
floor (a folder counts as one) is one more than the highest floor it imports, imports inside
functions included (0 when it imports none of the project), read from the source with
tests/test_module_graph.py's reader; the page lists the documented upward imports too."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_module_graph import DOCUMENTED_UPWARD, floors

PAGE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def documented_floors() -> dict[str, int]:
    block = PAGE.read_text().split("<!-- floors -->")[1].split("<!-- /floors -->")[0]
    out = {}
    for row in block.strip().splitlines()[2:]:
        number, names = row.strip("|").split("|")
        for name in re.findall(r"`([\w.]+)`", names):
            out[name] = int(number)
    return out


def test_the_architecture_page_shows_the_floors_the_code_has():
    assert documented_floors() == floors()


def test_the_architecture_page_names_every_documented_upward_import():
    text = PAGE.read_text()
    for a, b in DOCUMENTED_UPWARD:
        assert f"`{a}` -> `{b}`" in text, f"docs/architecture.md does not name the upward import {a} -> {b}"
