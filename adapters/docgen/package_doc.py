"""docs/operations.md's table of the artifacts `sam build` makes: what each holds and, for the
functions, its size and module count, read from the import closure deploy/build.py computes for each
template's handlers (what `deploy/build.py closure` lists), so the figures follow the code
(`make docs-check` fails when they drift). The layer's figures are the lock's, measured by a build:
they are not computable without installing it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: deploy/, examples/, the packages
BUILD = ROOT / "deploy" / "build.py"
TEMPLATES = {
    "sendguard": ROOT / "deploy" / "template.yaml",
    "orders": ROOT / "examples" / "orders" / "template.yaml",
}
ROUND_BYTES = 10_000  # the size is shown to the nearest 10 KB: it moves with every edit of the code


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


def render(closures: dict[str, list[Path]] | None = None) -> str:
    """The table; `closures`: each template's closure (by default computed now)."""
    found = closures if closures is not None else {name: closure(path) for name, path in TEMPLATES.items()}
    rows = [
        (
            "Each function (`build-SubmitFunction build-ReconcilerFunction`: one rule)",
            "Its handlers' import closure, which `deploy/build.py` computes from the code (every import "
            "the `Handler` modules can run, lazy ones too): `adapters` (`aws_lambda`, `runtime`), "
            "`statemodel` (not `checker`); not `adapters.testing`, `cli`, `local`, `ops`, `docgen`, tests "
            "or docs",
            figures(found["sendguard"]),
        ),
        (
            "`DependenciesLayer` (`build-DependenciesLayer`)",
            "`python/`: the lock `deploy/layer/requirements.txt` by `pip install --require-hashes "
            "--no-deps --only-binary=:all: --platform manylinux2014_aarch64 --python-version 3.14 "
            "--implementation cp`: Lambda's wheels from any machine, nothing unlisted, the same bytes "
            "every build",
            "34 MB, 2,349",
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
