"""docs/operations.md's table of the artifacts `sam build` makes: what each holds and, for the
functions, its size and module count, read from the import closure deploy/build.py computes for each
template's handlers (what `deploy/build.py closure` lists), so the figures follow the code
(`make docs-check` fails when they drift). The layer's figures are the lock's, measured by a build:
they are not computable without installing it, so `make sam-build` (tests/test_sam_build.py) checks
them against what `sam build` makes. The functions' rule is the Makefile's."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: deploy/, examples/, the packages
BUILD = ROOT / "deploy" / "build.py"
TEMPLATES = {
    "sendguard": ROOT / "deploy" / "template.yaml",
    "orders": ROOT / "examples" / "orders" / "template.yaml",
}
ROUND_BYTES = 10_000  # the size is shown to the nearest 10 KB: it moves with every edit of the code
MAKEFILE = ROOT / "Makefile"
# The layer as `sam build` makes it without python3.14 (bytecode adds a .pyc per module): its files'
# bytes (what counts toward Lambda's 250 MB unzipped, not the disk blocks `du` shows) to the nearest
# MB, and its files. Measured by tests/test_sam_build.py, which fails when the lock moves them.
LAYER_MB = 25
LAYER_FILES = 2_348


def function_rule(makefile: str) -> str:
    """The targets of the Makefile rule that builds a function (`deploy/build.py function`)."""
    for found in re.finditer(r"^(build-\w+(?: build-\w+)*):\n\t([^\n]*)", makefile, re.MULTILINE):
        if "deploy/build.py function" in found[2]:
            return found[1]
    raise ValueError("no rule runs deploy/build.py function")


def closure(template: Path, source: Path = ROOT) -> list[Path]:
    """The files a function of `template` holds: deploy/build.py's closure of its handlers."""
    spec = importlib.util.spec_from_file_location("sendguard_build", BUILD)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {BUILD}")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    roots = build.handler_modules(template.read_text(encoding="utf-8"))
    return sorted(Path(path) for path in build.closure(roots, source).values())


def figures(files: list[Path]) -> str:
    """A package's size and module count as the table shows them: '~490 KB of source, 56 modules'."""
    size = sum(path.stat().st_size for path in files)
    shown = max(1, round(size / ROUND_BYTES)) * ROUND_BYTES // 1000
    return f"~{shown:,} KB of source, {len(files)} module{'' if len(files) == 1 else 's'}"


def render(closures: dict[str, list[Path]] | None = None, makefile: str | None = None) -> str:
    """The table; `closures`: each template's closure, `makefile`: the Makefile's text (by default
    computed and read now)."""
    found = closures if closures is not None else {name: closure(path) for name, path in TEMPLATES.items()}
    rule = function_rule(makefile if makefile is not None else MAKEFILE.read_text(encoding="utf-8"))
    rows = [
        (
            f"Each function (`{rule}`: one rule)",
            "The import closure of the template's handlers, one package for all its functions, which "
            "`deploy/build.py` computes from the code (every import the `Handler` modules can run, lazy "
            "ones too): `adapters` (`aws_lambda`, `aws_lambda_consumer`, `runtime`), "
            "`statemodel` (not `checker`); not `adapters.testing`, `cli`, `local`, `ops`, `docgen`, tests "
            "or docs",
            figures(found["sendguard"]),
        ),
        (
            "`DependenciesLayer` (`build-DependenciesLayer`)",
            "`python/`: the lock `deploy/layer/requirements.txt` by `pip install --require-hashes "
            "--no-deps --only-binary=:all: --platform manylinux2014_aarch64 --python-version 3.14 "
            "--implementation cp`: Lambda's wheels from any machine, nothing unlisted; only the import "
            "path (`deploy/build.py prune` drops pip's `bin/jp.py`): the same bytes every build",
            f"{LAYER_MB} MB, {LAYER_FILES:,} files (before bytecode)",
        ),
        (
            "Each function of examples/orders (examples/orders/Makefile)",
            "The same closure, of `examples.orders.handler` and `.consumer`",
            figures(found["orders"]),
        ),
    ]
    lines = ["| Artifact (rule) | Holds | Size, files |", "|---|---|---|"]
    lines += [f"| {artifact} | {holds} | {size} |" for artifact, holds, size in rows]
    return "\n".join(lines) + "\n"
