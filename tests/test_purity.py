"""statemodel is pure, its checkers included: it imports nothing beyond the standard library and attrs,
and reads no clock, randomness, environment, file or console."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

STATEMODEL = Path(__file__).resolve().parent.parent / "statemodel"
IMPURE_MODULES = {
    "time", "datetime", "random", "secrets", "os", "sys", "logging", "io", "socket", "subprocess",
    "pathlib", "threading", "asyncio", "shutil", "tempfile", "urllib", "http",
}  # fmt: skip
IMPURE_CALLS = {"print", "open", "input", "getenv"}  # as bare names
IMPURE_ATTRIBUTES = {"uuid1", "uuid4", "getenv", "environ", "now", "today", "time_ns", "urandom"}


def impurities(source: str, filename: str) -> list[str]:
    allowed_third_party = {"attrs", "statemodel"}
    problems = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        for module in modules:
            top = module.split(".")[0]
            if top in IMPURE_MODULES:
                problems.append(f"{filename}: imports {module}")
            elif (
                top not in sys.stdlib_module_names and top not in allowed_third_party and top != "__future__"
            ):
                problems.append(f"{filename}: imports {module}, which is not the standard library or attrs")
        if isinstance(node, ast.Attribute) and node.attr in IMPURE_ATTRIBUTES:
            problems.append(f"{filename}:{node.lineno}: uses .{node.attr}")
        if isinstance(node, ast.Name) and node.id in IMPURE_CALLS:
            problems.append(f"{filename}:{node.lineno}: uses {node.id}")
    return problems


@pytest.mark.parametrize(
    "path", sorted(STATEMODEL.rglob("*.py")), ids=lambda p: str(p.relative_to(STATEMODEL))
)
def test_statemodel_module_is_pure(path: Path) -> None:
    assert impurities(path.read_text(), path.name) == []


def test_the_purity_check_reads_the_checkers_too() -> None:
    assert {"world.py", "space.py", "search.py", "mutants.py"} <= {p.name for p in STATEMODEL.rglob("*.py")}


@pytest.mark.parametrize(
    "mutant",
    [
        "import time\nnow = time.time()",
        "import boto3",
        "import structlog",
        "from adapters import aws_lambda",
        "import uuid\nx = uuid.uuid4()",
        "print('hello')",
        "import transitions",
        "import logging",
        "from datetime import datetime\nx = datetime.now()",
        "value = os.environ['X']",
    ],
)
def test_the_purity_check_catches_an_impure_line(mutant: str) -> None:
    assert impurities(mutant, "flows.py")


def test_the_runtime_model_does_not_load_transitions() -> None:
    code = (
        "import sys, statemodel, statemodel.flows, statemodel.validation, statemodel.attention, "
        "statemodel.invariants, statemodel.checker.world; "
        "sys.exit(bool({'transitions', 'boto3', 'botocore', 'structlog'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
