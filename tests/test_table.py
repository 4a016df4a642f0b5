"""The transition table is consistent, a `transitions` machine built from it agrees with `decide` for
every phase and trigger, and the generated docs are current."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.docgen import generate as docgen
from adapters.docgen.diagram import FENCED, build_machine, condition_names
from statemodel.categories import ErrorCategory
from statemodel.commands import (
    COMMAND_TYPES,
    Command,
    ConfirmSend,
    ExpireLease,
    Prepare,
    Rearm,
    Redrive,
    ReportSendFailure,
    Submit,
)
from statemodel.decider import decide, evolve_all
from statemodel.errors import ForbiddenCommand
from statemodel.events import ClaimCause
from statemodel.records import Message, Phase, Record, Status, phase_of
from statemodel.table import EVENT_TARGET, TRANSITIONS, Guard, forbidden_moves

MESSAGE = Message("m-1", "{}", (), "c-1", 0, "h")


def test_each_row_walks_from_its_source_to_its_target() -> None:
    for row in TRANSITIONS:
        phase = row.source
        for event_type in row.events:
            phase = EVENT_TARGET[event_type] or phase
        assert phase is row.target, row


def test_every_phase_is_reachable_and_only_final_phases_have_no_way_out() -> None:
    reachable = {Phase.ABSENT}
    for _ in Phase:
        reachable |= {row.target for row in TRANSITIONS if row.source in reachable}
    assert reachable == set(Phase)
    finals = set(Phase) - {row.source for row in TRANSITIONS}
    assert finals == {Phase.CONFIRMED}


def test_only_an_operator_takes_a_record_out_of_exhausted() -> None:
    rows = [row for row in TRANSITIONS if row.source is Phase.EXHAUSTED]
    assert [(row.command, row.target, row.fenced) for row in rows] == [(Rearm, Phase.PENDING, False)]
    assert rows[0].condition == "status and version as read"


def test_rows_sharing_a_command_are_told_apart_by_complementary_guards() -> None:
    pairs = {(Guard.ATTEMPTS_LEFT, Guard.NO_ATTEMPTS_LEFT), (Guard.REDRIVABLE_FAILURE, Guard.FINAL_FAILURE)}
    for phase in Phase:
        for command in COMMAND_TYPES:
            rows = [r for r in TRANSITIONS if r.source is phase and r.command is command]
            if len(rows) > 1:
                assert tuple(r.guard for r in rows) in pairs, rows


# ---- the transitions machine agrees with decide --------------------------------------------------

records = st.builds(
    lambda phase, attempts, lease: _record(phase, attempts, lease),
    st.sampled_from([Phase.PENDING, Phase.EXHAUSTED, Phase.IN_FLIGHT, Phase.CONFIRMED]),
    st.integers(0, 5),
    st.integers(0, 200),
)


def _record(phase: Phase, attempts: int, lease: int) -> Record:
    status = Status.QUEUED if phase in (Phase.IN_FLIGHT, Phase.CONFIRMED) else Status.PENDING
    return Record(
        MESSAGE,
        status,
        version=3,
        updated_at=0,
        attempts=attempts,
        attempt_id="a-1" if status is Status.QUEUED else None,
        lease_expires_at=lease if phase is Phase.IN_FLIGHT else None,
        sqs_message_id="s-1" if phase is Phase.CONFIRMED else None,
        exhausted=phase is Phase.EXHAUSTED,
    )


attempt_ids = st.sampled_from(["a-1", "a-2"])
commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(Submit, st.just(MESSAGE), attempt_ids, st.integers(0, 200)),
    st.builds(Redrive, attempt_ids, st.integers(0, 200), st.sampled_from(ClaimCause), st.integers(1, 5)),
    st.builds(ConfirmSend, attempt_ids, st.just("s-2")),
    st.builds(ReportSendFailure, attempt_ids, st.sampled_from(ErrorCategory), st.just("Code")),
    st.builds(ExpireLease, attempt_ids),
    st.builds(Rearm, st.just("ops"), st.just("fixed the queue policy")),
)


class Conditions:
    """The machine's model: one method per condition name, answered for (record, command, now)."""

    def __init__(self, record: Record | None, command: Command, now: int) -> None:
        owner = record.attempt_id if record else None
        setattr(self, FENCED, lambda: getattr(command, "attempt_id", None) == owner)
        for guard in Guard:
            setattr(self, guard.name.lower(), lambda g=guard: _guard(g, record, command, now))


def _guard(guard: Guard, record: Any, command: Any, now: int) -> bool:
    match guard:
        case Guard.ATTEMPTS_LEFT:
            return bool(record.attempts < command.max_attempts)
        case Guard.NO_ATTEMPTS_LEFT:
            return bool(record.attempts >= command.max_attempts)
        case Guard.REDRIVABLE_FAILURE:
            return command.category is not ErrorCategory.PERMANENT
        case Guard.FINAL_FAILURE:
            return command.category is ErrorCategory.PERMANENT
        case Guard.LEASE_EXPIRED:
            return bool(now >= record.lease_expires_at)


@given(record=st.none() | records, command=commands, now=st.integers(0, 200))
def test_transitions_machine_agrees_with_decide(record: Record | None, command: Command, now: int) -> None:
    conditions = Conditions(record, command, now)
    machine = build_machine(conditions)
    conditions.state = phase_of(record).value
    machine.set_state(phase_of(record).value)
    trigger = type(command).__name__
    moved = trigger in machine.get_triggers(conditions.state) and getattr(conditions, trigger)()
    try:
        after = evolve_all(record, decide(record, command, now))
    except ForbiddenCommand:
        assert not moved
        assert conditions.state == phase_of(record).value
    else:
        assert moved
        assert conditions.state == phase_of(after).value


def test_the_machine_has_one_transition_per_row() -> None:
    machine = build_machine(Conditions(None, ExpireLease("a-1"), 0))
    count = sum(len(ts) for event in machine.events.values() for ts in event.transitions.values())
    assert count == len(TRANSITIONS)
    assert all(condition_names(r) for r in TRANSITIONS if r.fenced or r.guard)


@pytest.mark.parametrize(("phase", "command_type"), forbidden_moves())
def test_every_forbidden_move_is_refused(phase: Phase, command_type: type[Command]) -> None:
    record = None if phase is Phase.ABSENT else _record(phase, 1, 10)
    command = {
        Submit: Submit(MESSAGE, "a-1", 10),
        Prepare: Prepare(MESSAGE),
        Redrive: Redrive("a-1", 10, ClaimCause.REDRIVE, 5),
        ConfirmSend: ConfirmSend("a-1", "s-1"),
        ReportSendFailure: ReportSendFailure("a-1", ErrorCategory.RETRYABLE, "X"),
        ExpireLease: ExpireLease("a-1"),
        Rearm: Rearm("ops", "fixed"),
    }[command_type]
    with pytest.raises(ForbiddenCommand):
        decide(record, command, 100)


def test_generated_docs_are_current() -> None:
    assert docgen.stale() == [], "run `make docs`"


def test_docs_check_fails_on_a_stale_file(tmp_path: Any) -> None:
    docgen.write(tmp_path)
    assert docgen.stale(tmp_path) == []
    (tmp_path / "transitions.md").write_text("edited by hand\n")
    assert docgen.stale(tmp_path) == ["transitions.md"]
