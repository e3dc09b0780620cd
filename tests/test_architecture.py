"""Packages talk through public names (STYLE rule 15): no module imports another package's private
function, class or module. ``emofuse._io``, ``emofuse._progress`` and ``emofuse._native`` are the
project's own helpers, shared by every package; dunders (``__version__``) are not private."""

from __future__ import annotations

import ast
from pathlib import Path

import emofuse

ROOT = Path(emofuse.__file__).parent
SHARED = {"emofuse._io", "emofuse._progress", "emofuse._native"}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_package_imports_another_packages_private_names():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("emofuse")):
                continue
            if node.module in SHARED or _package(node.module) == _package(module):
                continue
            if any(_private(part) for part in node.module.split(".")[2:]):
                found.append(f"{module}: from {node.module} import ...")
            found += [f"{module}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
    assert found == []


def _imports() -> dict[str, set[str]]:
    """Module -> the emofuse modules it imports (at the top or lazily, in a function), excluding its
    own package's ``__init__`` (a registry importing its members lazily is not a cycle of layers)."""
    modules = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("emofuse.")):
                continue
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            edges[module] |= {t for t in targets if t in modules and t != module and not module.startswith(t + ".")}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules_or_packages():
    edges = _imports()
    assert _cycles(edges) == []
    packages: dict[str, set[str]] = {}
    for module, targets in edges.items():
        packages.setdefault(_package(module), set()).update(_package(t) for t in targets)
    for package, targets in packages.items():
        targets.discard(package)
    assert _cycles(packages) == []


def test_files_and_functions_stay_small():
    """No source file over 400 lines; no function over 60 in study/, training/, cli/ (docs/architecture.md)."""
    long_files = [f"{p.relative_to(ROOT)}: {n}" for p in sorted(ROOT.rglob("*.py"))
                  if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400]
    long_functions = []
    for package in ("study", "training", "cli"):
        for path in sorted((ROOT / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.end_lineno is None:
                    continue
                if (length := node.end_lineno - node.lineno + 1) > 60:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.name}: {length}")
    assert long_files == [] and long_functions == []
