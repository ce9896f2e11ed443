"""The import graph of the three packages: no cycles, and every module imports first.

Three checks. The static one reads every module with ``ast`` and follows its module-level
imports (imports inside functions are deliberate late imports of heavy or optional parts and
are left out); the graph among ``routellm_core``, ``langchain_routellm`` and
``llamaindex_routellm`` must have no cycle. The dynamic one imports each module first in a
fresh interpreter, so a cycle that only works because some ``__init__`` happens to import
things in a lucky order is caught too. The third counts late imports as well and lists the
pairs of modules that import each other: of the three such circles there were
(``cli <-> learning/cli``, ``encoders <-> static_encoder``, ``checkpoints <-> nway``) only
the last is left, and no new one may come.
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


# The one import circle left, counting late imports (issue 30): nway/__init__ imports
# checkpoints at module level, and checkpoints imports nway inside functions.
KNOWN_CIRCLES = [("routellm_core.checkpoints", "routellm_core.nway")]


def test_modules_that_import_each_other_even_inside_functions_are_only_the_known_one():
    pairs = two_way_pairs(import_graph(late=True))
    # gone: cli <-> learning.cli (training_pair lives in training.pairs) and
    # encoders <-> static_encoder (the default model's path lives in encoder_paths)
    for gone in [("routellm_core.cli", "routellm_core.learning.cli"),
                 ("routellm_core.encoders", "routellm_core.static_encoder")]:
        assert gone not in pairs, f"{gone[0]} and {gone[1]} import each other again"
    assert len(pairs) == len(KNOWN_CIRCLES) == 1
    assert pairs == KNOWN_CIRCLES, "modules that import each other (late imports counted):\n" + "\n".join(
        f"{a} <-> {b}" for a, b in pairs
    )


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
