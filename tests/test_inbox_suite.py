"""The consumer suite can fail: its coverage phase passes the reference consumers (transactional,
guarded, FIFO) and catches each team-wiring mutant by the check its mistake fails (`make mutants`
runs the whole suite, Hypothesis' sequences too)."""

from __future__ import annotations

import pytest

from adapters.testing.inbox_mutants import CORRECT, MUTANTS
from adapters.testing.inbox_suite import (
    COVERAGE_SCENARIO,
    INBOX_COVERAGE,
    Consumer,
    InboxSuite,
    coverage_scenario,
    expected_coverage,
    run_inbox_suite,
)
from adapters.testing.report import SCENARIO_VARIABLE


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_the_coverage_phase_passes_the_reference_consumers(sendguard_aws: None, name: str) -> None:
    INBOX_COVERAGE.clear()
    suite = CORRECT[name]
    coverage_scenario(suite())
    assert expected_coverage(suite.fifo) <= set(INBOX_COVERAGE)


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_each_wiring_mutant_is_caught_by_its_own_check(sendguard_aws: None, name: str) -> None:
    mutant = MUTANTS[name]
    with pytest.raises(AssertionError) as caught:
        coverage_scenario(mutant.suite())
    assert mutant.caught_with in str(caught.value)


def test_a_failure_tells_the_steps(sendguard_aws: None) -> None:
    from adapters.testing.report import StepLog

    with pytest.raises(AssertionError, match="deleted from the queue but never done"):
        coverage_scenario(MUTANTS["swallowed-failure"].suite())
    assert StepLog.last is not None
    story = StepLog.last.render()
    assert "  1. deliver " in story and "answered: " in story and "table: " in story


def test_the_printed_scenario_command_runs_the_coverage_phase_alone(
    sendguard_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coverage-phase failure prints `SENDGUARD_SCENARIO=inbox python -m pytest …`: that runs the
    coverage phase (one example) and no Hypothesis sequence; the failing mutant fails there again."""
    made: list[InboxSuite] = []
    reference = CORRECT["transactional"]

    class Counted(reference):  # type: ignore[misc, valid-type]
        def make_consumer(self) -> Consumer:
            made.append(self)
            return super().make_consumer()  # type: ignore[no-any-return]

    monkeypatch.setenv(SCENARIO_VARIABLE, COVERAGE_SCENARIO)
    run_inbox_suite(Counted)
    assert len(made) == 1
    with pytest.raises(AssertionError, match="effect applied 2 times") as caught:
        run_inbox_suite(MUTANTS["effect-outside-transaction"].suite)
    assert f"{SCENARIO_VARIABLE}={COVERAGE_SCENARIO} python -m pytest" in "\n".join(
        getattr(caught.value, "__notes__", [])
    )
    monkeypatch.setenv(SCENARIO_VARIABLE, "a scenario of the outbox's suite")
    run_inbox_suite(Counted)
    assert len(made) == 1
