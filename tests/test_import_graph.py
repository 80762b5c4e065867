"""The package's import graph has no circles (issue 27), except the allow-listed ones below.

A small AST walk: every ``import``/``from ... import`` in every module of ``tttd`` (absolute and
relative, at module level or inside functions) is an edge to the ``tttd`` module it names; imports
under ``if TYPE_CHECKING:`` are not (they never run). A circle is a strongly connected component of
more than one module. Dynamic imports by name (``importlib.import_module("tttd.tasks.erdos")``,
the registry's table of built-in tasks and the backends' "module:Class" targets) are not edges:
they are plugin look-ups that run on demand.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Known circles, each with the reason it is still here. Remove an entry when its circle goes (the
#: test fails on an entry that no longer is a circle, so the list cannot go stale).
ALLOWED: set[frozenset[str]] = set()  # none left


def modules(package: Path) -> dict[str, Path]:
    found = {}
    for f in sorted(package.rglob("*.py")):
        parts = list(f.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = f
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def import_edges(package: Path) -> dict[str, dict[str, int]]:
    """module -> {imported module of the package: first line}."""
    mods = modules(package)
    name = package.name

    def owner(target: str) -> str | None:  # the longest module prefix of a dotted name
        while target:
            if target in mods:
                return target
            target = target.rpartition(".")[0]
        return None

    edges: dict[str, dict[str, int]] = {m: {} for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_nodes(tree)
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                # `from pkg import sub` imports the submodule when there is one
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src for a in node.names]
            for t in targets:
                if t.split(".")[0] != name:
                    continue
                dst = owner(t)
                if dst and dst != mod:
                    edges[mod].setdefault(dst, node.lineno)
    return edges


def circles(edges: dict[str, dict[str, int]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def describe(circle: frozenset[str], edges: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{a} (line {line}) imports {b}" for a in sorted(circle)
                     for b, line in sorted(edges[a].items()) if b in circle)


def test_no_import_circles_in_the_package():
    edges = import_edges(ROOT / "tttd")
    found = circles(edges)
    unexpected = [describe(c, edges) for c in found if c not in ALLOWED]
    assert not unexpected, "import circles:\n" + "\n".join(unexpected)
    stale = [sorted(c) for c in ALLOWED if c not in found]
    assert not stale, f"allow-listed circles that are gone (remove them from ALLOWED): {stale}"


def test_the_walk_sees_relative_lazy_and_submodule_imports_and_skips_type_checking(tmp_path):
    pkg = tmp_path / "tttd"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from tttd.sub import b\n")  # lazy, submodule
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from . import c\n")  # relative
    (pkg / "sub" / "c.py").write_text("from ..a import f\n")  # relative, two levels
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tttd.a\n")
    edges = import_edges(pkg)
    assert edges["tttd.a"] == {"tttd.sub.b": 2} and edges["tttd.sub.b"] == {"tttd.sub.c": 1}
    assert edges["tttd.sub.c"] == {"tttd.a": 1} and edges["tttd.d"] == {}
    assert circles(edges) == [frozenset({"tttd.a", "tttd.sub.b", "tttd.sub.c"})]


@pytest.mark.parametrize("module, absent", [
    ("tttd.task", ("tttd.registry", "tttd.tasks", "tttd.evolve", "tttd.sandbox")),
    ("tttd.registry", ("tttd.tasks.erdos", "tttd.tasks.ahc", "tttd.evolve", "tttd.sandbox")),
    ("tttd", ("tttd.task", "tttd.registry", "tttd.types")),
])
def test_importing_a_module_does_not_load_the_domains(module, absent):
    import subprocess

    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in sys.modules if m.startswith('tttd')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    loaded = eval(out)  # a list literal printed by the child
    assert not [m for m in loaded if m.startswith(absent)], loaded
