"""The project installs as its extras say, each in a fresh virtualenv (from the package registry, as a
team would): without extras it brings boto3, attrs and structlog and runs the Lambda handler, and its
pytest plugin stays out of a team's way; `testing` brings what the shipped suite needs; `local` what
`sendguard demo` and `serve` need; `dev` is both and the project's tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEAM_TEST = "def test_the_team_s_own_test():\n    assert 1 + 1 == 2\n"
NEEDS_THE_SUITE = "def test_uses_the_fixture(sendguard_aws):\n    pass\n"


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a copy of the tracked files: a build in the checkout would leave build/ behind, and a stale
    # build/lib could put modules that no longer exist into the wheel
    source = tmp_path_factory.mktemp("source")
    for name in run("git", "ls-files", cwd=ROOT).stdout.splitlines():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    built = run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, source)
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("sendguard-*.whl")
    return path


def fresh(tmp: Path, requirement: str) -> Path:
    """A new virtualenv with `requirement` installed; its bin directory."""
    venv.create(tmp / "venv", with_pip=True)
    bin_ = tmp / "venv" / "bin"
    installed = run(bin_ / "python", "-m", "pip", "install", "--quiet", requirement)
    assert installed.returncode == 0, installed.stderr
    return bin_


def distributions(bin_: Path) -> set[str]:
    listed = run(bin_ / "python", "-m", "pip", "list", "--format=freeze")
    return {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.splitlines()}


def pip_install(bin_: Path, requirement: str) -> None:
    installed = run(bin_ / "python", "-m", "pip", "install", "--quiet", requirement)
    assert installed.returncode == 0, installed.stderr


def test_the_extras_install_as_described(wheel: Path, tmp_path: Path) -> None:
    """One fresh virtualenv, grown one step at a time, so each step shows what it alone brings."""
    bin_ = fresh(tmp_path, str(wheel))
    # no extras: the runtime, and the Lambda handler runs
    have = distributions(bin_)
    assert {"boto3", "attrs", "structlog"} <= have
    assert not have & {"hypothesis", "moto", "time-machine", "pytest", "transitions"}
    handler = (
        "import adapters.aws_lambda as h\nr = h.submit({'httpMethod': 'GET', 'path': '/x', 'headers': {}})\n"
    )
    result = run(bin_ / "python", "-c", handler + "\nassert r['statusCode'] == 404, r")
    assert result.returncode == 0, result.stderr

    # a team's project with pytest but not the `testing` extra: the plugin loads and is harmless
    pip_install(bin_, "pytest")
    team = tmp_path / "team"
    team.mkdir()
    (team / "test_team.py").write_text(TEAM_TEST)
    pytest_ = (bin_ / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    result = run(*pytest_, cwd=team)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr
    assert "adapters.testing.plugin" in run(*pytest_, "--trace-config", "--co", cwd=team).stdout
    # and a test that asks for the suite's fixture is told what to install
    (team / "test_suite.py").write_text(NEEDS_THE_SUITE)
    result = run(*pytest_, "test_suite.py", cwd=team)
    assert result.returncode == 1 and "sendguard[testing]" in result.stdout, result.stdout

    # `testing`: the suite imports
    pip_install(bin_, f"sendguard[testing] @ {wheel.as_uri()}")
    suite = "from adapters.testing import FaultInjectionSuite, FaultInjector, run_suite; print('ok')"
    result = run(bin_ / "python", "-c", suite)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr

    # `local`: the embedded AWS of `sendguard demo` and `serve` starts
    pip_install(bin_, f"sendguard[local] @ {wheel.as_uri()}")
    moto = "from adapters.local.moto_server import EmbeddedMoto\nwith EmbeddedMoto() as m: print(m.endpoint)"
    result = run(bin_ / "python", "-c", moto)
    assert result.returncode == 0 and result.stdout.startswith("http://127.0.0.1:"), result.stderr
    assert run(bin_ / "sendguard", "demo", "--help").returncode == 0


def test_dev_is_both_extras_and_the_tools() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "sendguard[testing,local]" in extras["dev"]
    assert {"pytest", "hypothesis", "time-machine"} <= {
        r.split(">")[0].split("[")[0] for r in extras["testing"]
    }
