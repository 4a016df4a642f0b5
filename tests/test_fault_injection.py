"""sendguard's own fault-injection suite: the shipped `FaultInjectionSuite` on sendguard's handlers,
and the example in docs/fault-injection.md, run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from adapters.testing import FaultInjectionSuite, run_suite

DOC = Path(__file__).resolve().parent.parent / "docs" / "fault-injection.md"


class SendguardSuite(FaultInjectionSuite):
    pass


def test_no_fault_sequence_leaves_an_orphan_or_loses_a_message(sendguard_aws: None) -> None:
    run_suite(SendguardSuite)


def test_the_documented_example_runs_as_written(tmp_path: Path) -> None:
    (example,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    (tmp_path / "test_sendguard_faults.py").write_text(example, encoding="utf-8")
    env = {**os.environ, "HYPOTHESIS_PROFILE": "smoke"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
