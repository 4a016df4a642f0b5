"""`run_suite`: the coverage phase, then Hypothesis' sequences, then the coverage check; and the
profiles.

A failure from either phase carries the failing sequence as numbered steps and a command that runs
exactly it again (`report`). Hypothesis' shrinking is bounded (`report.SHRINK_SECONDS`).
"""

from __future__ import annotations

import os

from hypothesis import Phase, reproduce_failure, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from adapters.testing import profiles, report
from adapters.testing.scenarios import SCENARIOS, expected_coverage, run_scenario
from adapters.testing.suite import COVERAGE, TEAM_WRITES, FaultInjectionSuite
from statemodel.commands import Prepare
from statemodel.table import TRANSITIONS

# `ci` is the coverage phase, then 15 derandomized sequences of 25 steps (the same each run; coverage
# is checked); `long` draws anew (`make fuzz`); `smoke` has neither phase nor check
# (adapters.testing.profiles). On top: one failure reported and shrunk, not several (each costs
# minutes of shrinking), and no `explain` phase (it replays each step many times over).
PROFILES = {
    name: settings(
        value,
        report_multiple_bugs=False,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    )
    for name, value in profiles.for_size(15, 25).items()
}


def run_suite(machine: type[FaultInjectionSuite], profile: str | None = None) -> None:
    """Runs a suite with the `ci`, `long` or `smoke` profile (default: $HYPOTHESIS_PROFILE, else
    `ci`). Except for `smoke`, the coverage phase runs first, and the run fails if some fault kind,
    table row or stall never happened.

    $SENDGUARD_SCENARIO runs one coverage-phase scenario and nothing else; $SENDGUARD_REPRODUCE
    replays one Hypothesis example: a failure prints the command that sets them."""
    COVERAGE.clear()
    name = profiles.selected(profile)
    chosen = PROFILES[name]
    only = os.environ.get(report.SCENARIO_VARIABLE)
    replay = os.environ.get(report.REPRODUCE_VARIABLE)
    if replay:
        _run_hypothesis(_reproducing(machine, replay), chosen)
        return
    if name != "smoke" or only:
        for scenario in SCENARIOS:
            if only and scenario.name != only:
                continue
            try:
                run_scenario(machine, scenario)
            except BaseException as error:
                report.explain(
                    error,
                    f"The coverage phase's scenario {scenario.name!r} failed",
                    report.SCENARIO_VARIABLE,
                    scenario.name,
                )
                raise
        if only:
            return
    _run_hypothesis(machine, chosen)
    if name == "smoke":
        return
    expected = expected_coverage(bool(COVERAGE["transactional service"]), bool(COVERAGE[TEAM_WRITES]))
    missing = sorted(expected - set(COVERAGE))
    assert not missing, f"never happened in this run: {missing}{_hint(missing)}"


def _hint(missing: list[str]) -> str:
    """What to change when the run missed the transactional outbox's own row: the service was made
    transactional (`outbox_service`'s default) and no request wrote its record that way."""
    prepare = {f"row {row.label}" for row in TRANSITIONS if row.command is Prepare}
    if prepare & set(missing):
        return (
            " (no record was written in the team's own transaction: pass transactional=False to"
            " outbox_service when the handlers only send; see docs/fault-injection.md)"
        )
    return ""


def _run_hypothesis(machine: type[RuleBasedStateMachine] | object, chosen: settings) -> None:
    with report.shrink_budget():
        try:
            run_state_machine_as_test(machine, settings=chosen)  # type: ignore[arg-type]
        except BaseException as error:
            report.explain(error, "The shrunk sequence", report.REPRODUCE_VARIABLE, None)
            raise


def _reproducing(machine: type[FaultInjectionSuite], value: str) -> object:
    """The machine, with Hypothesis told to replay one example (what `@reproduce_failure` does)."""

    def factory() -> FaultInjectionSuite:
        return machine()

    version, blob = report.parse_reproduction(value)
    return reproduce_failure(version, blob)(factory)
