"""Generated sections of hand-written pages: docs/fault-injection.md's table of faults is read from
`adapters.testing.Fault`, so a fault added to the injector, or a row edited by hand, makes the docs
check fail (`make docs-check`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.docgen import generate as docgen
from adapters.docgen.faults_doc import render
from adapters.testing import Fault


def test_every_fault_has_its_row_on_the_page() -> None:
    page = (docgen.DOCS / "fault-injection.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `") and "` | " in line]
    named = {row.split("`")[1] for row in rows}
    assert {fault.name for fault in Fault} <= named
    assert render().count("\n") == len(Fault) + 2  # the header, its rule, a row per fault


def test_a_row_edited_by_hand_is_stale(tmp_path: Path) -> None:
    docgen.write(tmp_path)
    assert docgen.stale(tmp_path) == []
    page = tmp_path / "fault-injection.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("| `CRASH_BEFORE_CALL` |", "| `CRASH_BEFORE_A_CALL` |"), encoding="utf-8")
    assert docgen.stale(tmp_path) == ["fault-injection.md"]
    docgen.write(tmp_path)
    assert page.read_text(encoding="utf-8") == text  # the prose kept, the section generated again


def test_a_page_without_its_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="generated: faults"):
        docgen.spliced("no markers here\n", "faults", "| a |\n")
