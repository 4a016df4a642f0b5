"""The consumer suite can fail: its coverage phase passes the reference consumers (transactional,
guarded, FIFO) and catches each team-wiring mutant by the check its mistake fails (`make mutants`
runs the whole suite, Hypothesis' sequences too)."""

from __future__ import annotations

import pytest

from adapters.testing.inbox_mutants import CORRECT, MUTANTS
from adapters.testing.inbox_suite import INBOX_COVERAGE, coverage_scenario, expected_coverage


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
