"""Both templates built by the real AWS SAM CLI, as an operator builds them, and each artifact's contents:
the functions hold their handlers and sendguard's runtime and model, not the suite, CLI, local service,
tools, tests or docs; the layer holds the lock's distributions. Marked `sam` (about a minute, most of it
SAM starting and pip fetching the layer): `make sam-build` runs it, `make test` does not (its fast
counterpart is tests/test_package_contents.py, the same build rules without SAM). The SAM CLI is not in
the dev extra: it pins click==8.1.8 and boto3 to one release, where mutmut needs click>=8.4.2; `make
sam-cli` installs it into .venv/sam-cli, and a `sam` on PATH does as well."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.docgen import package_doc
from tests.test_package_contents import NEVER as PACKAGE_NEVER
from tests.test_package_contents import handlers

ROOT = Path(__file__).resolve().parent.parent
PINNED_SAM = ROOT / ".venv" / "sam-cli" / "bin" / "sam"  # `make sam-cli`
SAM = str(PINNED_SAM) if PINNED_SAM.is_file() else shutil.which("sam")
RUNTIME_PYTHON = shutil.which("python3.14")

pytestmark = pytest.mark.sam
needs_sam = pytest.mark.skipif(
    SAM is None, reason="no AWS SAM CLI: `make sam-cli` installs it (not in the dev extra)"
)

TEMPLATES = {
    "deploy": ROOT / "deploy" / "template.yaml",
    "orders": ROOT / "examples" / "orders" / "template.yaml",
}
RUNS = [
    "adapters/__init__.py",
    "adapters/runtime/outbox.py",
    "adapters/runtime/runner.py",
    "statemodel/decider.py",
]
NEVER = [*PACKAGE_NEVER, ".venv"]  # the package test's list, and a virtualenv SAM might copy
LAYER = [
    "python/boto3/__init__.py",
    "python/botocore/__init__.py",
    "python/attrs/__init__.py",
    "python/structlog",
]


def files(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


@needs_sam
@pytest.mark.parametrize("which", sorted(TEMPLATES))
def test_sam_build_ships_what_runs_and_nothing_else(which: str, tmp_path: Path) -> None:
    template = TEMPLATES[which]
    functions = handlers(template)
    built = tmp_path / "build"
    command = [
        str(SAM),
        "build",
        "--build-in-source",
        "--build-dir",
        str(built),
        "--template-file",
        str(template),
    ]
    done = subprocess.run(command, cwd=template.parent, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Build Succeeded" in output, output[-3000:]

    for function, handler in functions.items():
        held = files(built / function)
        wanted = {handler.rpartition(".")[0].replace(".", "/") + ".py", *RUNS}
        assert wanted <= held, (function, wanted - held)
        assert not [f for f in held if any(f == n or f.startswith(n + "/") for n in NEVER)], function
        pyc = [f for f in held if f.endswith(".pyc")]
        assert bool(pyc) is (RUNTIME_PYTHON is not None), (function, len(pyc))
    layer = files(built / "DependenciesLayer")
    for wanted in LAYER:
        assert any(f == wanted or f.startswith(wanted + "/") for f in layer), wanted
    assert not [f for f in layer if f.startswith(("python/adapters", "python/statemodel", "python/tests"))]
    # only the import path: not pip's copy of jmespath's script (bin/jp.py) nor its RECORD line
    assert not [f for f in layer if not f.startswith("python/") or f.startswith("python/bin/")]
    records = [(built / "DependenciesLayer" / f).read_text() for f in layer if f.endswith("/RECORD")]
    assert records and not [r for r in records if "../" in r]
    # docs/operations.md's figures for it (adapters/docgen/package_doc.py): its files' bytes and count
    before_bytecode = [built / "DependenciesLayer" / f for f in layer if "__pycache__/" not in f]
    size = sum(path.stat().st_size for path in before_bytecode)
    figures = (round(size / 1_000_000), len(before_bytecode))
    assert figures == (package_doc.LAYER_MB, package_doc.LAYER_FILES), (size, len(before_bytecode))
    if RUNTIME_PYTHON is None:
        # each build (the functions' and the layer's) says, in SAM's output, that it ships no bytecode
        assert output.count("python3.14 not found") == len(functions) + 1, output[-3000:]
        assert not [f for f in layer if f.endswith(".pyc")]


def test_the_layer_is_the_same_bytes_whatever_interpreter_and_directory_build_it(tmp_path: Path) -> None:
    """SAM keys what it uploads by a checksum of the files' names and bytes, so a layer built on another
    machine (another interpreter's path, another checkout) must be the same bytes, or each deploy from
    it publishes a new layer version. Built twice by the Makefile's rule, by this interpreter and by a
    fresh virtualenv's, into two directories, with bytecode (this interpreter standing in for
    python3.14): the same files, byte for byte. Needs the package index, not SAM."""
    other = tmp_path / "elsewhere" / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(other)], check=True)
    builds = []
    for python, into in (
        (sys.executable, tmp_path / "a"),
        (str(other / "bin" / "python"), tmp_path / "b" / "c"),
    ):
        command = ["make", "-s", "build-DependenciesLayer", f"ARTIFACTS_DIR={into}"]
        command += [f"PYTHON={python}", f"LAMBDA_PYTHON={sys.executable}"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        builds.append({f: (into / f).read_bytes() for f in files(into)})
    assert [f for f in builds[0] if f.endswith(".pyc")] and "python/boto3/__init__.py" in builds[0]
    assert sorted(builds[0]) == sorted(builds[1])
    assert [f for f in builds[0] if builds[0][f] != builds[1][f]] == []
