"""The import graph of the three packages: no circles, floors that only go down, and every
module imports first.

The static checks read every module with ``ast``. Among module-level imports there must be no
cycle. Counting the imports inside functions too (late imports of heavy or optional parts),
no two modules may import each other, and the core's modules and folders (a folder counts as
one) must stand on floors: every import runs down to a lower floor, but for at most three
documented ones (``DOCUMENTED_UPWARD``, also named in docs/architecture.md). The dynamic check
imports each module first in a fresh interpreter, so a cycle that only works because some
``__init__`` happens to import things in a lucky order is caught too.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

PACKAGES = ("routellm_core", "langchain_routellm", "llamaindex_routellm")


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the three packages."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        root = package_dir(pkg)
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = [pkg, *rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def module_level_imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that importing ``module`` runs through its module-level imports.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else
    ``pkg``; imports inside functions and under ``if TYPE_CHECKING:`` are left out.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.add(alias.name)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, path.name == "__init__.py", node)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in known else target)
            elif isinstance(node, ast.If):
                test = node.test
                name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
                if name != "TYPE_CHECKING":
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(tree.body)
    return _edges(module, found, known)


def _edges(module: str, found: set[str], known: set[str]) -> set[str]:
    # Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first. The importer's own
    # ancestors are already initialised by then (a package runs before its children), so
    # only the other packages on the way are edges: they are how a cycle through a package
    # ``__init__`` shows.
    own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    edges: set[str] = set()
    for target in found:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in known and name not in own and name != module:
                edges.add(name)
    return edges


def all_imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Like :func:`module_level_imports`, with the imports inside functions (and classes,
    loops, ...) counted too; only those under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                typing_only |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return _edges(module, found, known)


def import_graph(late: bool = False) -> dict[str, set[str]]:
    """``{module: modules it imports}``; with ``late``, imports inside functions count too."""
    files = module_files()
    known = set(files)
    read = all_imports if late else module_level_imports
    return {m: read(m, p, known) for m, p in files.items()}


def two_way_pairs(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The pairs of modules that import each other, each pair sorted."""
    return sorted({(a, b) if a < b else (b, a) for a in graph for b in graph[a] if a in graph.get(b, ())})


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path ``a -> b -> ... -> a``) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_cycle_path(graph, comp) for comp in components]


def _cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {component}")  # pragma: no cover


def test_the_cycle_finder_reports_the_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_static_reader_skips_function_level_and_type_checking_imports(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import routellm_core.routers\n"
        "from routellm_core import checkpoints\n"
        "if TYPE_CHECKING:\n    import routellm_core.batch\n"
        "def f():\n    import routellm_core.cli\n"
    )
    known = {"routellm_core.routers", "routellm_core.checkpoints", "routellm_core.batch",
             "routellm_core.cli", "routellm_core"}
    assert module_level_imports("pkg.mod", src, known) == {
        "routellm_core", "routellm_core.routers", "routellm_core.checkpoints"}


def test_importing_a_submodule_depends_on_the_packages_on_its_way(tmp_path):
    src = tmp_path / "policy.py"
    src.write_text("from routellm_core.routers.base import Router\n")
    known = {"routellm_core", "routellm_core.routers", "routellm_core.routers.base",
             "routellm_core.policy"}
    # routers/__init__ runs before routers.base: a cycle through it is a real one
    assert module_level_imports("routellm_core.policy", src, known) == {
        "routellm_core.routers", "routellm_core.routers.base"}


def test_the_full_reader_counts_function_level_imports_but_not_type_checking_ones(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import routellm_core.routers\n"
        "if TYPE_CHECKING:\n    import routellm_core.batch\n"
        "def f():\n    import routellm_core.cli\n"
        "class C:\n    def g(self):\n        from routellm_core import checkpoints\n"
    )
    known = {"routellm_core.routers", "routellm_core.checkpoints", "routellm_core.batch",
             "routellm_core.cli", "routellm_core"}
    assert all_imports("pkg.mod", src, known) == {
        "routellm_core", "routellm_core.routers", "routellm_core.cli", "routellm_core.checkpoints"}
    assert two_way_pairs({"a": {"b", "c"}, "b": {"a"}, "c": set()}) == [("a", "b")]


# Imports that run from a lower floor up to a higher one, each with why (issue 30 allows
# at most three, documented in docs/architecture.md): none today.
DOCUMENTED_UPWARD: dict[tuple[str, str], str] = {}


def group(module: str) -> str:
    """The unit of the floors: a core module, or a core folder (``routers``, ``learning``, ...)
    as one; an adapter package as one; ``routellm_core`` for the core package's ``__init__``."""
    parts = module.split(".")
    return parts[0] if parts[0] != "routellm_core" or len(parts) == 1 else parts[1]


def group_graph(late: bool = True) -> dict[str, set[str]]:
    """``{group: groups it imports}`` (``late``: imports inside functions count too)."""
    edges: dict[str, set[str]] = {group(m): set() for m in module_files()}
    for module, targets in import_graph(late=late).items():
        for target in targets:
            if group(target) != group(module):
                edges[group(module)].add(group(target))
    return edges


def floors(edges: dict[str, set[str]] | None = None) -> dict[str, int]:
    """Each group's floor: 0 when it imports no other group of the project, else one more than
    the highest floor it imports; ``edges`` default the core's (late imports counted, the
    documented upward imports left out)."""
    if edges is None:
        edges = group_graph(late=True)
        for (a, b) in DOCUMENTED_UPWARD:
            edges[a].discard(b)
    out: dict[str, int] = {}

    def floor(g: str, seen: tuple[str, ...] = ()) -> int:
        if g not in out:
            assert g not in seen, f"an import circle through {' -> '.join(seen + (g,))}"
            below = [floor(t, seen + (g,)) for t in edges.get(g, ())]
            out[g] = 1 + max(below) if below else 0
        return out[g]

    for g in sorted(edges):
        floor(g)
    return out


def test_no_two_modules_import_each_other_even_inside_functions():
    pairs = two_way_pairs(import_graph(late=True))
    assert not pairs, "modules that import each other (late imports counted):\n" + "\n".join(
        f"{a} <-> {b}" for a, b in pairs)


def test_no_import_runs_up_a_floor_even_inside_functions():
    edges = group_graph(late=True)
    assert len(DOCUMENTED_UPWARD) <= 3
    for (a, b), why in DOCUMENTED_UPWARD.items():
        assert b in edges[a], f"{a} -> {b} is documented as an upward import but is gone: take it off the list"
        assert why
        edges[a].discard(b)
    cycles = find_cycles(edges)
    assert not cycles, "import circles among the core's modules and folders (late imports counted):\n" + "\n".join(
        " -> ".join(c) for c in cycles)


def test_the_floor_finder_counts_up_from_the_bottom_and_names_a_circle():
    import pytest

    assert floors({"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": set()}) == {"a": 2, "b": 1, "c": 0, "d": 0}
    with pytest.raises(AssertionError, match="a -> b -> a"):
        floors({"a": {"b"}, "b": {"a"}})
    assert group("routellm_core.routers.base") == "routers"
    assert group("routellm_core") == "routellm_core"
    assert group("langchain_routellm.chat_models") == "langchain_routellm"


def test_the_moved_helpers_stay_importable_where_they_were():
    from routellm_core.cli import training_pair as from_cli
    from routellm_core.encoder_paths import _default_model_path
    from routellm_core.encoders import _default_model_path as from_encoders
    from routellm_core.training import training_pair
    from routellm_core.training.pairs import training_pair as from_pairs

    assert from_cli is training_pair is from_pairs
    assert from_encoders is _default_model_path


def test_no_import_cycles_among_module_level_imports():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (module-level imports):\n" + "\n".join(
        " -> ".join(c) for c in cycles
    )


_FRESH_IMPORTS = """
import importlib, json, sys, traceback
packages = {packages!r}
failures = {{}}
for name in {modules!r}:
    for loaded in [m for m in sys.modules if m.split(".")[0] in packages]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failures[name] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps(failures))
"""


def test_every_module_imports_first_in_a_fresh_interpreter():
    modules = sorted(module_files())
    code = _FRESH_IMPORTS.format(packages=PACKAGES, modules=modules)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    failures = json.loads(out.stdout.strip().splitlines()[-1])
    assert not failures, "modules that fail to import first:\n" + "\n".join(
        f"{m}: {e}" for m, e in failures.items()
    )
