"""`sendguard explore --inbox MODE`: the exhaustive search of the inbox's model at a small bound, and
its mutants. The full bound (K=3, M=3, F=3, each max_receives, both modes) is `make check-model`;
here K=2, M=2, F=2 must come out complete, clean (safety and liveness) and covered in both modes,
and every inbox mutant must be caught by the check it names, with a short counterexample."""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import pytest

from adapters.cli import explore
from statemodel.checker.inbox_mutants import INBOX_MUTANTS, caught_as_named
from statemodel.checker.inbox_space import explore_inbox, required_coverage
from statemodel.checker.search import Bounds, Kind
from statemodel.inbox.table import Mode, rows_of

SMALL = ["-K", "2", "-M", "2", "-F", "2"]
STEP = re.compile(r"^ {0,2}(\d+)\. ")
MODES = [mode.value for mode in Mode]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = explore.main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("receives", ["1", "2", "3"])
def test_the_small_bound_is_explored_to_closure_clean_and_covered(
    capsys: pytest.CaptureFixture[str], mode: str, receives: str
) -> None:
    code, report = run_json(capsys, "--inbox", mode, *SMALL, "-A", receives)
    assert code == 0, report
    assert report["inbox"] == mode and report["complete"] is True and report["violations"] == []
    assert report["coverage"]["missing"] == []
    assert report["coverage"]["required"] == len(required_coverage(Mode(mode), int(receives)))
    assert report["liveness"]["checked"] is True and report["liveness"]["ok"] is True
    assert report["states"] > 500 and report["transitions"] > report["states"]


def test_every_row_of_each_mode_is_required_at_some_bound() -> None:
    for mode in Mode:
        labels = {
            label for a in (1, 2, 3) for label in required_coverage(mode, a) if label.startswith("row ")
        }
        rows = {f"row {row.label}" for row in rows_of(mode)}
        unreachable = {"row WAITING Claim -> FAILED"} if mode is Mode.GUARDED else set()
        assert rows - labels == unreachable


def test_missing_coverage_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, "--inbox", "guarded", "-K", "1", "-M", "1", "-F", "0")
    assert code == 1 and report["complete"] is True and report["violations"] == []
    assert "WRITE_REJECTED" in report["coverage"]["missing"]


def test_the_text_report_names_messages_and_receives(capsys: pytest.CaptureFixture[str]) -> None:
    assert explore.main(["--inbox", "transactional", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "K=2 workers, M=2 messages, F=2 faults, A=2 receives" in out
    assert re.search(r"explored to closure: [\d,]+ states", out) and "safety: no violations" in out
    assert "liveness: every fair continuation settles" in out


def test_each_mode_lists_its_own_mutants(capsys: pytest.CaptureFixture[str]) -> None:
    for mode in Mode:
        assert explore.main(["--inbox", mode.value, "--list-mutants"]) == 0
        names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
        assert names == [name for name, m in INBOX_MUTANTS.items() if m.mode is mode]


def test_an_inbox_mutant_needs_its_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        explore.main(["--mutant", "short-claim-lease"])
    with pytest.raises(SystemExit):
        explore.main(["--inbox", "transactional", "--mutant", "short-claim-lease"])
    with pytest.raises(SystemExit):
        explore.main(["--inbox", "guarded", "--mutant", "short-lease"])
    capsys.readouterr()


def test_every_property_has_a_mutant_of_its_own() -> None:
    """Transactional exactly-once; guarded: one holder, no completion by a lost claim, no rerun of a
    done message; a deleted message is done; liveness in each mode."""
    wanted = {
        (Mode.TRANSACTIONAL, r"effect applied 2 times"),
        (Mode.GUARDED, r"held by 2 invocations at once"),
        (Mode.GUARDED, r"Completed by '\w+', whose claim on \w+ was lost"),
        (Mode.GUARDED, r"runs its handler again after it was done"),
        (Mode.TRANSACTIONAL, r"deleted from the queue but never done"),
        (Mode.GUARDED, r"deleted from the queue but never done"),
    }
    assert wanted <= {(m.mode, m.caught_with) for m in INBOX_MUTANTS.values()}
    assert {m.mode for m in INBOX_MUTANTS.values() if m.caught_by == "liveness"} == set(Mode)


SAFETY = [name for name, m in INBOX_MUTANTS.items() if m.caught_by == "safety"]
LIVENESS = [name for name, m in INBOX_MUTANTS.items() if m.caught_by == "liveness"]


@pytest.mark.parametrize("name", SAFETY)
def test_each_safety_mutant_is_caught_by_its_own_check(capsys: pytest.CaptureFixture[str], name: str) -> None:
    mutant = INBOX_MUTANTS[name]
    code, report = run_json(capsys, "--inbox", mutant.mode.value, *SMALL, "--mutant", name)
    assert code == 1
    assert report["mutant"] == {"caught_with": mutant.caught_with, "as_named": True}
    assert report["complete"] is False and report["liveness"]["checked"] is False
    steps = report["counterexample"]
    assert 1 <= len(steps) <= 10 and [STEP.match(s).group(1) for s in steps] == [  # type: ignore[union-attr]
        str(n) for n in range(1, len(steps) + 1)
    ]


@pytest.mark.parametrize("name", LIVENESS)
def test_each_liveness_mutant_passes_safety_and_fails_liveness(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    mutant = INBOX_MUTANTS[name]
    code, report = run_json(capsys, "--inbox", mutant.mode.value, *SMALL, "--mutant", name)
    assert code == 1
    assert report["mutant"] == {"caught_with": mutant.caught_with, "as_named": True}
    assert report["complete"] is True and report["violations"] == []
    live = report["liveness"]
    assert live["ok"] is False and live["kind"] == Kind.CYCLE.value and live["loop"] and live["path"]


def test_a_mutant_caught_only_by_another_check_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """A mutant must be caught by the violation its bug makes: one that names another is not caught."""
    mutant = INBOX_MUTANTS["unfenced-completion"]
    outcome = explore_inbox(mutant, Bounds(2, 2, 2))
    assert caught_as_named(mutant, outcome.violations)
    mislabelled = attrs.evolve(mutant, caught_with=INBOX_MUTANTS["short-claim-lease"].caught_with)
    assert not caught_as_named(mislabelled, outcome.violations)
    assert not caught_as_named(attrs.evolve(mutant, caught_with=""), outcome.violations)


def test_a_counterexample_reads_as_a_story(capsys: pytest.CaptureFixture[str]) -> None:
    assert explore.main(["--inbox", "guarded", *SMALL, "--mutant", "unfenced-completion"]) == 1
    out = capsys.readouterr().out
    assert "SQS delivers it (guarded delivery a1): write Received+ClaimTaken -> written" in out
    assert "overruns its deadline: m1's guarded delivery a1 [fault: stall x1]" in out
    assert "guarded delivery a2: write ClaimExpired+ClaimTaken -> written" in out
    assert "- m1: illegal history: Completed by 'a1', whose claim on m1 was lost to 'a2' (fencing)" in out
    assert "history: Received, ClaimTaken(a1), ClaimExpired(a1), ClaimTaken(a2), Completed(a1)" in out
