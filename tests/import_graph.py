"""The project's import graph, read from the source (not from `sys.modules`), for the layout tests.

Every `import` and `from ... import` counts, at module level or inside a function, under
`TYPE_CHECKING` or not: a lazy import still ties two modules together, and a cycle hidden behind
`TYPE_CHECKING` is still a cycle in the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

from statemodel.checker.liveness import components

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("statemodel", "adapters", "bench")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _executed_at_import(tree: ast.Module) -> list[ast.AST]:
    """The nodes that run when the module is imported: not function bodies, not `if TYPE_CHECKING:`."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def imports_of(
    source: str, name: str, is_package: bool, known: Iterable[str], *, at_import_only: bool = False
) -> set[str]:
    """The project modules that `source` (module `name`) imports; with `at_import_only`, only those
    that importing it runs (what a package's `__init__` costs a module below it)."""
    known = set(known)
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(source)
    for node in _executed_at_import(tree) if at_import_only else ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports pkg.mod when that is a module, else pkg itself
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        for target in targets:
            # `import a.b.c` depends on a.b.c (the longest known prefix)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(
    root: Path = ROOT, packages: Iterable[str] = PACKAGES, *, at_import_only: bool = False
) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    return {
        name: imports_of(
            path.read_text(encoding="utf-8"),
            name,
            path.name == "__init__.py",
            modules,
            at_import_only=at_import_only,
        )
        for name, path in modules.items()
    }


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module, each sorted (the explorer's own
    Tarjan, `statemodel.checker.liveness.components`, on the modules numbered)."""
    names = sorted(set(graph).union(*graph.values()))
    number = {name: i for i, name in enumerate(names)}
    found = components(range(len(names)), lambda i: (number[m] for m in graph.get(names[i], ())))
    return sorted(sorted(names[i] for i in component) for component in found if len(component) > 1)


def reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
