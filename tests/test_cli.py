"""The command line as operators meet it: `--version`, an unknown command named with the list of
commands, and progress that shows on a terminal and, elsewhere (CI logs), as periodic plain lines."""

from __future__ import annotations

import io
import subprocess
import sys
from importlib.metadata import version

import pytest

from adapters.cli import main as cli
from adapters.ops.progress import Progress


def test_version_is_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sendguard {version('sendguard')}"


def test_an_unknown_command_is_named_and_the_commands_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bogus"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("sendguard: unknown command 'bogus'")
    assert all(f"  {name} " in captured.err for name in cli.COMMANDS)


def test_help_lists_every_command_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in cli.COMMANDS)


def test_the_module_runs_as_the_command_without_the_script_on_path() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("sendguard ")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_off_a_terminal_is_a_plain_line_every_few_seconds() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("redrive", 100, stream, interactive=False, every_s=10, clock=clock)
    for done in range(1, 101):
        clock.now = done * 0.5  # 50 s in all
        progress.update(done, "0 skipped")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6  # at 10, 20, 30, 40, 50 s, and the last
    assert lines[0] == "redrive: 20/100  0 skipped  10 s"
    assert lines[-1].endswith("done") and "\r" not in stream.getvalue()


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("reconcile", None, stream, interactive=True, clock=clock)
    for done in range(1, 6):
        clock.now = done * 1.0
        progress.update(done)
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 6 and text.endswith("done\n") and text.count("\n") == 1


def test_a_short_run_off_a_terminal_prints_nothing() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("redrive", 3, stream, interactive=False, clock=clock)
    progress.update(3)
    progress.close()
    assert stream.getvalue() == ""
