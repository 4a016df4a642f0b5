"""What `sam build` puts in a function and the bytecode it ships (the Makefile's build targets run this).

    python deploy/build.py function --template TEMPLATE ARTIFACTS_DIR
    python deploy/build.py compile DIRECTORY
    python deploy/build.py prune DIRECTORY
    python deploy/build.py closure --template TEMPLATE

`function`: the modules the template's handlers can import, and no other. The roots are the modules
of the template's `Handler:` values; from them every `import` and `from ... import` written anywhere in
a module (at the top or inside a function: a lazy import runs later, on the Lambda) that resolves to
a file under the source directory is followed, with each package's `__init__`. What resolves
elsewhere (the standard library, the layer's boto3, attrs, structlog) is not this package's to carry.
Imports under `if TYPE_CHECKING:` are not followed (they never run), except the one that binds a name
another module imports from there (`from adapters import Outbox`: a package's lazy re-export through
its module `__getattr__`). So the suite (`adapters.testing`), the CLI, the local service, the operator
tools and the doc generators stay out because no handler reaches them, not because a list says so.
An import by a computed name (`importlib.import_module(name)`) is not seen: name the module in an
import statement, or bind the name under TYPE_CHECKING as a lazy re-export (adapters/__init__.py).

`compile`: bytecode for the Lambda's runtime, by that interpreter (`--python`, python3.14 by default),
unchecked-hash (the zip does not keep file times; /var/task and /opt are read-only, so without it each
cold start compiles in memory what it imports), each code object naming its source where Lambda puts it
(/var/task, /opt/python), not the build directory, so two builds give the same bytes. Without that
interpreter the build goes on and says so in one line on stderr: the package is as valid, only its cold
starts pay the compilation.

`prune`: the layer's import path and nothing else. `pip install --target` also writes what a wheel
installs outside the import path (console scripts into bin/, and any headers or data files), listed in
its RECORD as `../../bin/jp.py`; Lambda runs none of them (/opt/python is only on sys.path), and pip
writes the build machine's interpreter into a script's first line, so the layer's bytes, and with them
SAM's upload checksum and the layer version a deploy publishes, would differ with the machine that
built it. They go, with their RECORD lines.

Standard library only: `sam build` runs it with whatever python3 the machine has.
"""

from __future__ import annotations

import argparse
import ast
import csv
import posixpath
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

RUNTIME_PYTHON = "python3.14"
# Where Lambda puts a function's package and a layer's python/ directory (on sys.path in both).
FUNCTION_ROOT = "/var/task"
LAYER_ROOT = "/opt/python"
# A handler in a SAM template: `Handler: package.module.function` (in a resource or in Globals).
HANDLER = re.compile(r"^\s+Handler:\s*[\"']?([A-Za-z_][\w.]*)\.[A-Za-z_]\w*[\"']?\s*(?:#.*)?$", re.MULTILINE)
# Files a package carries besides its modules (PEP 561's marker of a typed package).
PACKAGE_DATA = ("py.typed",)


def handler_modules(template: str) -> list[str]:
    """The modules the template's `Handler:` values name, in order, each once."""
    return list(dict.fromkeys(HANDLER.findall(template)))


def module_file(source: Path, module: str) -> Path | None:
    """The file of `module` under `source` (a package's `__init__.py`), or None if it is not there."""
    base = source.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, list[str], bool]]:
    """Each import of a module: (what it imports from, the names it takes, whether it runs), the
    latter False under `if TYPE_CHECKING:`. `import a.b` gives ("a.b", [], True); a call
    `importlib.import_module("a.b")` with a literal is an import too."""

    def walk(nodes: Iterable[ast.AST], runs: bool) -> Iterator[tuple[str, list[str], bool]]:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.body, False)
                yield from walk(node.orelse, runs)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, [], runs
            elif isinstance(node, ast.ImportFrom):
                yield _absolute(module, is_package, node), [a.name for a in node.names], runs
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, (ast.Attribute, ast.Name))
                and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
                == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and not node.args[0].value.startswith(".")
            ):
                yield node.args[0].value, [], runs
            yield from walk(ast.iter_child_nodes(node), runs)

    yield from walk(tree.body, True)


def closure(roots: Iterable[str], source: Path) -> dict[str, Path]:
    """Every module under `source` that importing `roots` and running them can import: name -> file."""
    found: dict[str, Path] = {}
    parsed: dict[str, list[tuple[str, list[str], bool]]] = {}

    def imports_of(name: str) -> list[tuple[str, list[str], bool]]:
        if name not in parsed:
            path = found[name]
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            parsed[name] = list(_imports(tree, name, path.name == "__init__.py"))
        return parsed[name]

    def add(name: str) -> bool:
        """`name` and its packages, if `name` is here; whether it is."""
        if module_file(source, name) is None:
            return False
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            path = module_file(source, prefix)
            if path is not None and prefix not in found:
                found[prefix] = path
                pending.append(prefix)
        return True

    def bound(name: str, attribute: str, seen: frozenset[str] = frozenset()) -> None:
        """Follow where module `name` gets `attribute` from (its lazy re-exports included)."""
        for origin, names, _ in imports_of(name):
            followed = attribute in names and origin not in seen and add(origin)
            if followed and not add(f"{origin}.{attribute}"):
                bound(origin, attribute, seen | {name})

    pending: list[str] = []
    for root in roots:
        if not add(root):
            raise SystemExit(f"build: handler module {root!r} is not under {source}")
    while pending:
        name = pending.pop()
        for origin, names, runs in imports_of(name):
            if not runs or not add(origin):
                continue
            for attribute in names:
                if not add(f"{origin}.{attribute}") and attribute != "*":
                    bound(origin, attribute)
    return found


def function(template: Path, artifacts: Path, source: Path, python: str) -> None:
    """The template's handlers' closure, its packages' data files, and its bytecode, into `artifacts`."""
    roots = handler_modules(template.read_text(encoding="utf-8"))
    if not roots:
        raise SystemExit(f"build: {template} names no Handler")
    modules = closure(roots, source)
    files = {path.relative_to(source) for path in modules.values()}
    for top in {name.split(".")[0] for name in modules}:
        files |= {
            (source / top / data).relative_to(source)
            for data in PACKAGE_DATA
            if (source / top / data).is_file()
        }
    artifacts.mkdir(parents=True, exist_ok=True)
    for relative in sorted(files):
        (artifacts / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, artifacts / relative)
    tops = sorted({artifacts / f.parts[0] for f in files})
    what = f"{artifacts.name} ({', '.join(top.name for top in tops)})"
    compile_bytecode(tops, python, what, artifacts, FUNCTION_ROOT)


def compile_bytecode(directories: list[Path], python: str, what: str, root: Path, runs_at: str) -> None:
    """Bytecode for `directories` (under `root`, which Lambda mounts at `runs_at`) by the runtime's
    interpreter `python`, or one line saying why not. Each code object names its source at `runs_at`,
    not where this build ran, so the bytes do not depend on the build directory."""
    interpreter = shutil.which(python)
    if interpreter is None:
        print(
            f"build: {python} not found, so {what} ships no bytecode: it works as it is, but each cold "
            "start compiles what it imports",
            file=sys.stderr,
        )
        return
    command = [interpreter, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash"]
    command += ["-s", str(root.resolve()), "-p", runs_at]
    subprocess.run([*command, *(str(d.resolve()) for d in directories)], check=True)


# Where `pip install --target` resolves a RECORD's paths: its distributions go into a scheme's
# `lib/python` under a scratch home, whose other directories (bin/, include/, share/...) it then moves,
# like the distributions, into the target.
PIP_TARGET_LIB = "lib/python"


def prune(directory: Path) -> list[str]:
    """Removes from a `pip install --target` DIRECTORY the files its distributions' RECORDs place outside
    the import path, their RECORD lines, and the directories left empty; the files removed."""
    removed: list[str] = []
    for record in sorted(directory.glob("*.dist-info/RECORD")):
        lines = record.read_bytes().splitlines(keepends=True)
        kept = []
        for line in lines:
            entry = next(csv.reader([line.decode("utf-8")]), [""])[0]
            where = posixpath.normpath(posixpath.join(PIP_TARGET_LIB, entry))
            if where == PIP_TARGET_LIB or where.startswith(PIP_TARGET_LIB + "/"):
                kept.append(line)
                continue
            if where == ".." or where.startswith("../") or posixpath.isabs(where):
                raise SystemExit(f"build: {record} lists {entry!r}, outside what pip installed")
            path = directory / where
            if path.is_file():
                path.unlink()
                removed.append(where)
            for parent in path.relative_to(directory).parents:
                folder = directory / parent
                if folder != directory and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        if len(kept) != len(lines):
            record.write_bytes(b"".join(kept))
    return removed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    built = commands.add_parser("function", help="a function's package into ARTIFACTS_DIR")
    built.add_argument("artifacts", type=Path, metavar="ARTIFACTS_DIR")
    compiled = commands.add_parser("compile", help="bytecode for the runtime in DIRECTORY (the layer)")
    compiled.add_argument("directory", type=Path)
    pruned = commands.add_parser("prune", help="what pip --target put outside the import path, out")
    pruned.add_argument("directory", type=Path)
    listed = commands.add_parser("closure", help="the files a function's package holds, one a line")
    for command in (built, listed):
        command.add_argument("--template", type=Path, required=True, help="the SAM template")
        command.add_argument("--source", type=Path, default=Path(), help="where the packages are (.)")
    for command in (built, compiled):
        command.add_argument("--python", default=RUNTIME_PYTHON, help=f"the runtime's ({RUNTIME_PYTHON})")
    args = parser.parse_args(argv)
    if args.command == "function":
        function(args.template, args.artifacts, args.source.resolve(), args.python)
    elif args.command == "compile":
        what = "/".join(args.directory.resolve().parts[-2:])
        compile_bytecode([args.directory], args.python, what, args.directory, LAYER_ROOT)
    elif args.command == "prune":
        for removed in prune(args.directory):
            print(f"build: {removed} removed (pip puts it outside the import path; Lambda does not run it)")
    else:
        roots = handler_modules(args.template.read_text(encoding="utf-8"))
        source = args.source.resolve()
        for path in sorted(closure(roots, source).values()):
            print(path.relative_to(source))


if __name__ == "__main__":
    main()
