"""decide / evolve / replay: the Decider over the transition table.

`decide(record, command, now)` picks the table row and builds its events, or raises a
`ForbiddenCommand`. `evolve(record, event)` is bookkeeping only — it sets fields and counts; it trusts
its input. `replay(events)` is the careful fold: it checks every event against the table (through
`HistoryChecker`) before evolving, so a history that `decide` could not have written raises
`IllegalTransition`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from statemodel.categories import consequence
from statemodel.commands import (
    Command,
    ConfirmSend,
    ExpireLease,
    Prepare,
    Rearm,
    Redrive,
    ReportSendFailure,
    Submit,
)
from statemodel.errors import ForbiddenCommand, IllegalTransition, StaleAttempt
from statemodel.events import (
    Accepted,
    ClaimCause,
    Claimed,
    Event,
    ExhaustionCause,
    Rearmed,
    RedriveExhausted,
    RollbackCause,
    RolledBack,
    SendConfirmed,
    SendFailed,
)
from statemodel.records import Phase, Record, Status, phase_of
from statemodel.table import (
    EVENT_TARGET,
    FENCED_EVENTS,
    TRANSITIONS,
    Guard,
    Table,
    Transition,
    row_writing,
    rows_for,
)


def decide(
    record: Record | None, command: Command, now: int, table: Table = TRANSITIONS
) -> tuple[Event, ...]:
    """The events of the row of `table` (the transition table unless a caller, such as a model
    mutant in the explorer, passes another) that `command` takes from `record` at `now`."""
    phase = phase_of(record)
    rows = rows_for(phase, type(command), table)
    if not rows:
        raise ForbiddenCommand(_refusal_text(phase, command))  # pragma: no mutate (message text)
    if rows[0].fenced:
        assert record is not None
        owner = record.attempt_id
        # Every command of a fenced row names an attempt, so getattr's default is never used.
        named = getattr(command, "attempt_id", None)  # pragma: no mutate
        if named != owner:
            raise StaleAttempt(
                f"{type(command).__name__} names attempt {named!r}, "  # pragma: no mutate (message text)
                f"but {record.message_id} is owned by attempt {owner!r}"  # pragma: no mutate (message text)
            )
    for row in rows:
        if row.guard is None or _guard_holds(row.guard, record, command, now):
            return tuple(_MAKE[event_type](command, now) for event_type in row.events)
    guard = rows[-1].guard
    assert guard is not None
    # The refusal's type is the contract; its words are for people.
    name = type(command).__name__  # pragma: no mutate
    raise guard.refusal(f"{name} on {phase.value} record: guard failed ({guard.value})")  # pragma: no mutate


def evolve(record: Record | None, event: Event) -> Record:
    if isinstance(event, Accepted):
        return Record(message=event.message, status=Status.PENDING, version=1, updated_at=event.at)
    if record is None:
        raise IllegalTransition(f"{type(event).__name__} before Accepted")  # pragma: no mutate (words)
    record = attrs.evolve(record, version=record.version + 1, updated_at=event.at)
    match event:
        case Claimed():
            return attrs.evolve(
                record,
                status=Status.QUEUED,
                attempts=record.attempts + 1,
                attempt_id=event.attempt_id,
                lease_expires_at=event.lease_expires_at,
            )
        case SendConfirmed():
            return attrs.evolve(record, sqs_message_id=event.sqs_message_id, lease_expires_at=None)
        case SendFailed():
            return attrs.evolve(record, last_error=event.failure)
        case RolledBack():
            return attrs.evolve(record, status=Status.PENDING, attempt_id=None, lease_expires_at=None)
        case RedriveExhausted():
            return attrs.evolve(record, exhausted=True)
        case Rearmed():
            # A fresh budget: `attempts` counts the claims since the last re-arm (the history keeps
            # every claim). The last error stays, as what the operator fixed.
            return attrs.evolve(record, exhausted=False, attempts=0)


def evolve_all(record: Record | None, events: Iterable[Event]) -> Record | None:
    for event in events:
        record = evolve(record, event)
    return record


def replay(events: Iterable[Event]) -> Record | None:
    """The record a history projects to; raises IllegalTransition unless `decide` could have
    written that history, one whole table row at a time."""
    checker = HistoryChecker()
    for event in events:
        checker.apply(event)
    checker.require_complete()
    return checker.record


def segment(history: Iterable[Event]) -> list[Transition]:
    """The table rows that wrote a history, one per conditional write. Where two ways to cut it fit
    (a permanent failure's rollback and exhaustion, in one write or two), the longer row is taken; a
    creation and a claim are one Submit write only if the claim's cause is `submit` (else Prepare,
    then a claim).
    Raises IllegalTransition for a history `decide` could not have written."""
    events = list(history)
    rows: list[Transition] = []
    phase, index = Phase.ABSENT, 0
    longest = max(len(row.events) for row in TRANSITIONS)
    while index < len(events):
        types = tuple(type(e) for e in events[index : index + longest])
        row = next(
            (
                r
                for n in range(len(types), 0, -1)
                if (r := row_writing(phase, types[:n])) is not None
                and _causes_fit(r, events[index : index + n])
            ),
            None,
        )
        if row is None:
            raise IllegalTransition(f"no table row writes {type(events[index]).__name__} from {phase.value}")
        rows.append(row)
        phase, index = row.target, index + len(row.events)
    return rows


def _causes_fit(row: Transition, events: list[Event]) -> bool:
    """A claim made with its record's creation (cause `submit`) is the Submit row's; any other claim
    (a dispatch of a prepared record, a re-drive) is a row of its own."""
    return all(
        (event.cause is ClaimCause.SUBMIT) == (row.command is Submit)
        for event in events
        if isinstance(event, Claimed)
    )


class HistoryChecker:
    """Checks a history one event at a time (the trace checker feeds it log lines).

    It follows the table's rows as paths of events: between rows the record sits in a phase; inside a
    row only that row's next event may follow. Fencing and the lease guard are checked on the events
    themselves, so a forged or reordered history fails here even when every event type fits.
    """

    def __init__(self) -> None:
        self.record: Record | None = None
        # Where we may be: a phase between rows, or (row, index of the next event) inside one.
        self._positions: frozenset[Phase | tuple[Transition, int]] = frozenset({Phase.ABSENT})

    @property
    def phase(self) -> Phase:
        return phase_of(self.record)

    @property
    def complete(self) -> bool:
        """True when the history so far ends on a row boundary (no write half applied)."""
        return any(isinstance(p, Phase) for p in self._positions)

    def require_complete(self) -> None:
        if not self.complete:
            raise IllegalTransition(f"history of {self._id()} ends inside a write")

    def apply(self, event: Event) -> Record:
        event_type = type(event)
        advanced: set[Phase | tuple[Transition, int]] = set()
        for position in self._positions:
            if isinstance(position, Phase):
                candidates = [(t, 0) for t in TRANSITIONS if t.source is position]
            else:
                candidates = [position]
            for row, index in candidates:
                if row.events[index] is event_type:
                    done = index + 1 == len(row.events)
                    advanced.add(row.target if done else (row, index + 1))
        if not advanced:
            raise IllegalTransition(
                # The message's words are for people; the error's type is the contract.
                f"{event_type.__name__} is not allowed for {self._id()} in phase "  # pragma: no mutate
                f"{self.phase.value}" + ("" if self.complete else " (inside a write)")  # pragma: no mutate
            )
        self._check_event(event)
        self.record = evolve(self.record, event)
        # A defence against a bug in `evolve`: with statemodel's own, every event lands where the
        # table says, so no history reaches this raise (mutmut's mutants of it are equivalent).
        expected = EVENT_TARGET[event_type]  # pragma: no mutate
        if expected is not None and self.record.phase is not expected:
            raise IllegalTransition(
                f"{event_type.__name__} left {self._id()} in {self.record.phase.value}, "  # pragma: no mutate
                f"not {expected.value}"  # pragma: no mutate
            )
        self._positions = frozenset(advanced)
        return self.record

    def _check_event(self, event: Event) -> None:
        record = self.record
        if record is None:
            return
        named = getattr(event, "attempt_id", None)  # pragma: no mutate (every fenced event has one)
        if type(event) in FENCED_EVENTS and named != record.attempt_id:
            raise IllegalTransition(
                f"{type(event).__name__} of attempt {named!r} on "  # pragma: no mutate (message text)
                f"{self._id()}, owned by attempt {record.attempt_id!r} (fencing)"  # pragma: no mutate (words)
            )
        if isinstance(event, RolledBack) and event.cause is RollbackCause.LEASE_EXPIRED:
            assert record.lease_expires_at is not None
            if event.at < record.lease_expires_at:
                raise IllegalTransition(
                    f"lease of {self._id()} rolled back at {event.at}, "  # pragma: no mutate (message text)
                    f"before it expired at {record.lease_expires_at}"  # pragma: no mutate (message text)
                )

    def _id(self) -> str:
        return self.record.message_id if self.record else "a new record"  # pragma: no mutate


def _guard_holds(guard: Guard, record: Record | None, command: Command, now: int) -> bool:
    assert record is not None  # every guarded row starts from an existing record
    match guard:
        case Guard.ATTEMPTS_LEFT | Guard.NO_ATTEMPTS_LEFT:
            assert isinstance(command, Redrive)
            left = record.attempts < command.max_attempts
            return left if guard is Guard.ATTEMPTS_LEFT else not left
        case Guard.REDRIVABLE_FAILURE | Guard.FINAL_FAILURE:
            assert isinstance(command, ReportSendFailure)
            redrives = consequence(command.category).redrive
            return redrives if guard is Guard.REDRIVABLE_FAILURE else not redrives
        case Guard.LEASE_EXPIRED:
            assert record.lease_expires_at is not None
            return now >= record.lease_expires_at


def _refusal_text(phase: Phase, command: Command) -> str:  # pragma: no mutate block (words only)
    # The refusal's type is what callers act on; its words are for people: no line here is mutated.
    name = type(command).__name__
    if isinstance(command, Rearm):
        only = "only an exhausted record is re-armed"  # pragma: no mutate
        return f"{name} is forbidden in phase {phase.value}: {only}"  # pragma: no mutate
    if phase is Phase.CONFIRMED:
        return f"{name} is forbidden: a confirmed record is never rolled back"  # pragma: no mutate
    if phase is Phase.EXHAUSTED:
        reason = "the record's re-drives are exhausted; an operator must re-arm it"  # pragma: no mutate
        return f"{name} is forbidden: {reason}"  # pragma: no mutate
    return f"{name} is forbidden in phase {phase.value}"  # pragma: no mutate


def _claimed(command: Command, now: int) -> Event:
    assert isinstance(command, Submit | Redrive)
    cause = command.cause if isinstance(command, Redrive) else ClaimCause.SUBMIT
    return Claimed(command.attempt_id, command.lease_expires_at, cause, now)


def _rolled_back(command: Command, now: int) -> Event:
    assert isinstance(command, ReportSendFailure | ExpireLease)
    cause = (
        RollbackCause.SEND_FAILED if isinstance(command, ReportSendFailure) else RollbackCause.LEASE_EXPIRED
    )
    return RolledBack(command.attempt_id, cause, now)


def _exhausted(command: Command, now: int) -> Event:
    cause = (
        ExhaustionCause.PERMANENT_ERROR
        if isinstance(command, ReportSendFailure)
        else ExhaustionCause.MAX_ATTEMPTS
    )
    return RedriveExhausted(cause, now)


def _rearmed(command: Command, now: int) -> Event:
    assert isinstance(command, Rearm)
    return Rearmed(command.by, command.reason, now)


def _accepted(command: Command, now: int) -> Event:
    assert isinstance(command, Submit | Prepare)
    return Accepted(command.message, now)


def _send_confirmed(command: Command, now: int) -> Event:
    assert isinstance(command, ConfirmSend)
    return SendConfirmed(command.attempt_id, command.sqs_message_id, now)


def _send_failed(command: Command, now: int) -> Event:
    assert isinstance(command, ReportSendFailure)
    return SendFailed(command.attempt_id, command.category.value, command.code, now)


# How each event type is made from the command that the row answers.
_MAKE: dict[type[Event], Callable[[Command, int], Event]] = {
    Accepted: _accepted,
    Claimed: _claimed,
    SendConfirmed: _send_confirmed,
    SendFailed: _send_failed,
    RolledBack: _rolled_back,
    RedriveExhausted: _exhausted,
    Rearmed: _rearmed,
}
