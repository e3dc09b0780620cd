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
