"""docs/architecture.md's table of floors is the core's import graph as it is: each module's
floor is one more than the highest floor it imports at module level (0 when it imports none of
the project), by folder, read from the source with tests/test_module_graph.py's reader."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_module_graph import module_files, module_level_imports

PAGE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[0] if parts[0] != "routellm_core" or len(parts) == 1 else parts[1]


def measured_floors() -> dict[str, int]:
    files = module_files()
    known = set(files)
    edges: dict[str, set[str]] = {}
    for module, path in files.items():
        for target in module_level_imports(module, path, known) & known:
            if _group(target) != _group(module):
                edges.setdefault(_group(module), set()).add(_group(target))
    floors: dict[str, int] = {}

    def floor(group: str, seen: tuple[str, ...] = ()) -> int:
        if group not in floors:
            assert group not in seen, f"an import circle through {seen + (group,)}"
            below = [floor(g, seen + (group,)) for g in edges.get(group, ())]
            floors[group] = 1 + max(below) if below else 0
        return floors[group]

    for group in {_group(m) for m in files}:
        floor(group)
    return floors


def documented_floors() -> dict[str, int]:
    block = PAGE.read_text().split("<!-- floors -->")[1].split("<!-- /floors -->")[0]
    out = {}
    for row in block.strip().splitlines()[2:]:
        number, names = row.strip("|").split("|")
        for name in re.findall(r"`([\w.]+)`", names):
            out[name] = int(number)
    return out


def test_the_architecture_page_shows_the_floors_the_code_has():
    assert documented_floors() == measured_floors()
