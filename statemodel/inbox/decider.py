"""decide / evolve / replay for the inbox: the Decider over `statemodel.inbox.table`.

`decide(record, command, now)` picks the row and builds its events, or raises a `ForbiddenCommand`
(`StaleAttempt` for a command naming an attempt that does not hold the claim, `ClaimHeld` for a claim
of a live one). `evolve(record, event)` is bookkeeping only; `replay(events)` is the careful fold: it
checks every event against the table (through `InboxHistoryChecker`) before evolving.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from statemodel.errors import ForbiddenCommand, IllegalTransition, StaleAttempt
from statemodel.inbox.commands import (
    Claim,
    Commit,
    Complete,
    InboxCommand,
    RearmMessage,
    RecordFailure,
    Release,
)
from statemodel.inbox.events import (
    ClaimExpired,
    ClaimTaken,
    Completed,
    EffectCommitted,
    InboxEvent,
    MessageRearmed,
    Received,
    ReceiveFailed,
    ReceivesExhausted,
    Released,
)
from statemodel.inbox.records import ClaimHeld, InboxPhase, InboxRecord, phase_of
from statemodel.inbox.table import (
    FENCED_EVENTS,
    INBOX_TRANSITIONS,
    Guard,
    InboxTable,
    InboxTransition,
    rows_for,
)


def decide(
    record: InboxRecord | None, command: InboxCommand, now: int, table: InboxTable = INBOX_TRANSITIONS
) -> tuple[InboxEvent, ...]:
    """The events of the row of `table` (the inbox's table, unless a model mutant passes another)
    that `command` takes from `record` at `now`."""
    phase = phase_of(record)
    rows = rows_for(phase, type(command), table)
    name = type(command).__name__
    if not rows:
        raise ForbiddenCommand(_refusal_text(phase, name))
    if rows[0].fenced:
        assert record is not None
        named = attrs.asdict(command).get("attempt_id")  # None: a command naming no attempt
        if named != record.attempt_id:
            raise StaleAttempt(
                f"{name} names attempt {named!r}, but {record.message_id} is held by {record.attempt_id!r}"
            )
    for row in rows:
        if row.guard is None or _guard_holds(row.guard, record, command, now):
            return tuple(_MAKE[event_type](record, command, now) for event_type in row.events)
    guard = rows[-1].guard
    assert guard is not None
    if guard.refusal is ClaimHeld:
        assert record is not None
        held = f"{record.message_id} is held by {record.attempt_id!r} until {record.lease_expires_at}"
        raise ClaimHeld(f"{name}: {held}, when its lease expires")
    raise guard.refusal(f"{name} on a {phase.value} record: guard failed ({guard.value})")


def evolve(record: InboxRecord | None, event: InboxEvent) -> InboxRecord:
    if isinstance(event, Received):
        return InboxRecord(event.message, InboxPhase.WAITING, version=1, updated_at=event.at)
    if record is None:
        raise IllegalTransition(f"{type(event).__name__} before Received")
    record = attrs.evolve(record, version=record.version + 1, updated_at=event.at)
    match event:
        case ClaimTaken():
            return attrs.evolve(
                record,
                phase=InboxPhase.PROCESSING,
                receives=record.receives + 1,
                attempt_id=event.attempt_id,
                lease_expires_at=event.lease_expires_at,
            )
        case ClaimExpired():
            return attrs.evolve(record, phase=InboxPhase.WAITING, attempt_id=None, lease_expires_at=None)
        case Completed():
            return attrs.evolve(record, phase=InboxPhase.DONE, lease_expires_at=None, result=event.result)
        case Released():
            return attrs.evolve(
                record,
                phase=InboxPhase.WAITING,
                attempt_id=None,
                lease_expires_at=None,
                last_error=event.failure,
            )
        case EffectCommitted():
            return attrs.evolve(record, phase=InboxPhase.DONE, attempt_id=event.attempt_id)
        case ReceiveFailed():
            return attrs.evolve(
                record,
                phase=InboxPhase.WAITING,
                receives=record.receives + 1,
                last_error=event.failure,
            )
        case ReceivesExhausted():
            return attrs.evolve(record, phase=InboxPhase.FAILED, attempt_id=None, lease_expires_at=None)
        case MessageRearmed():
            # A fresh budget; the last error stays, as what the operator fixed.
            return attrs.evolve(record, phase=InboxPhase.WAITING, receives=0)


def evolve_all(record: InboxRecord | None, events: Iterable[InboxEvent]) -> InboxRecord | None:
    for event in events:
        record = evolve(record, event)
    return record


def replay(events: Iterable[InboxEvent]) -> InboxRecord | None:
    """The record a history projects to; raises IllegalTransition unless `decide` could have written
    that history, one whole row at a time."""
    checker = InboxHistoryChecker()
    for event in events:
        checker.apply(event)
    checker.require_complete()
    return checker.record


class InboxHistoryChecker:
    """Checks an inbox history one event at a time: the table's rows as paths of events, the fencing
    of a claim's events, and that a claim is taken over only once its lease ran out."""

    def __init__(self, table: InboxTable = INBOX_TRANSITIONS) -> None:
        self.table = table
        self.record: InboxRecord | None = None
        self._positions: frozenset[InboxPhase | tuple[InboxTransition, int]] = frozenset({InboxPhase.ABSENT})

    @property
    def phase(self) -> InboxPhase:
        return phase_of(self.record)

    @property
    def complete(self) -> bool:
        return any(isinstance(p, InboxPhase) for p in self._positions)

    def require_complete(self) -> None:
        if not self.complete:
            raise IllegalTransition(f"history of {self._id()} ends inside a write")

    def apply(self, event: InboxEvent) -> InboxRecord:
        event_type = type(event)
        advanced: set[InboxPhase | tuple[InboxTransition, int]] = set()
        for position in self._positions:
            if isinstance(position, InboxPhase):
                candidates = [(row, 0) for row in self.table if row.source is position]
            else:
                candidates = [position]
            for row, index in candidates:
                if row.events[index] is event_type:
                    done = index + 1 == len(row.events)
                    advanced.add(row.target if done else (row, index + 1))
        if not advanced:
            inside = "" if self.complete else " (inside a write)"
            raise IllegalTransition(
                f"{event_type.__name__} is not allowed for {self._id()} in phase {self.phase.value}{inside}"
            )
        self._check_event(event)
        self.record = evolve(self.record, event)
        self._positions = frozenset(advanced)
        return self.record

    def _check_event(self, event: InboxEvent) -> None:
        record = self.record
        if record is None:
            return
        if type(event) in FENCED_EVENTS:
            named = attrs.asdict(event)["attempt_id"]  # every fenced event names its attempt
            if named != record.attempt_id:
                raise IllegalTransition(
                    f"{type(event).__name__} by {named!r}, whose claim on {self._id()} was lost to "
                    f"{record.attempt_id!r} (fencing)"
                )
        if isinstance(event, ClaimExpired):
            assert record.lease_expires_at is not None
            if event.at < record.lease_expires_at:
                raise IllegalTransition(
                    f"the claim of {event.attempt_id} on {self._id()} was taken over at {event.at}, "
                    f"before its lease expired at {record.lease_expires_at}"
                )

    def _id(self) -> str:
        return self.record.message_id if self.record else "a new inbox record"


def segment(history: Iterable[InboxEvent], table: InboxTable = INBOX_TRANSITIONS) -> list[InboxTransition]:
    """The rows that wrote a history, one per conditional write (the longest row that fits first).
    Raises IllegalTransition for a history no sequence of rows writes."""
    events = list(history)
    rows: list[InboxTransition] = []
    phase, index = InboxPhase.ABSENT, 0
    longest = max(len(row.events) for row in table)
    while index < len(events):
        types = tuple(type(e) for e in events[index : index + longest])
        row = next(
            (
                r
                for n in range(len(types), 0, -1)
                for r in table
                if r.source is phase and r.events == types[:n]
            ),
            None,
        )
        if row is None:
            raise IllegalTransition(f"no row writes {type(events[index]).__name__} from {phase.value}")
        rows.append(row)
        phase, index = row.target, index + len(row.events)
    return rows


def _guard_holds(guard: Guard, record: InboxRecord | None, command: InboxCommand, now: int) -> bool:
    assert isinstance(command, Claim | Release | RecordFailure)  # the commands with a receive budget
    limit = command.max_receives
    receives = record.receives if record is not None else 0
    match guard:
        case Guard.RECEIVE_LEFT:
            return receives < limit
        case Guard.NO_RECEIVE_LEFT:
            return receives >= limit
        case Guard.ANOTHER_RECEIVE:
            return receives + 1 < limit
        case Guard.LAST_RECEIVE:
            return receives + 1 >= limit
        case Guard.EXPIRED_RECEIVE_LEFT | Guard.EXPIRED_NO_RECEIVE_LEFT:
            assert record is not None  # an expiry's rows start from a held claim
            assert record.lease_expires_at is not None
            if now < record.lease_expires_at:
                return False
            return (receives < limit) is (guard is Guard.EXPIRED_RECEIVE_LEFT)


def _refusal_text(phase: InboxPhase, name: str) -> str:
    if phase is InboxPhase.DONE:
        return f"{name} is forbidden: a DONE message is never applied again"
    if phase is InboxPhase.FAILED:
        return f"{name} is forbidden: the message was given up; an operator must re-arm it"
    return f"{name} is forbidden in phase {phase.value}"


# How each event type is made from the record and the command that the row answers.
def _received(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    assert isinstance(command, Claim | Commit | RecordFailure)
    return Received(command.message, now)


def _claim_taken(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    assert isinstance(command, Claim)
    return ClaimTaken(command.attempt_id, command.lease_expires_at, now)


def _claim_expired(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    assert record is not None  # a takeover's row starts from a held claim
    assert record.attempt_id is not None
    return ClaimExpired(record.attempt_id, now)


def _completed(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    assert isinstance(command, Complete)
    return Completed(command.attempt_id, command.result, now)


def _released(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    assert isinstance(command, Release)
    return Released(command.attempt_id, command.category.value, command.code, now)


def _effect_committed(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    assert isinstance(command, Commit)
    return EffectCommitted(command.attempt_id, now)


def _receive_failed(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    assert isinstance(command, RecordFailure)
    return ReceiveFailed(command.attempt_id, command.category.value, command.code, now)


def _exhausted(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    return ReceivesExhausted(now)


def _rearmed(record: InboxRecord | None, command: InboxCommand, now: int) -> InboxEvent:
    assert isinstance(command, RearmMessage)
    return MessageRearmed(command.by, command.reason, now)


_MAKE: dict[type[InboxEvent], Callable[[InboxRecord | None, InboxCommand, int], InboxEvent]] = {
    Received: _received,
    ClaimTaken: _claim_taken,
    ClaimExpired: _claim_expired,
    Completed: _completed,
    Released: _released,
    EffectCommitted: _effect_committed,
    ReceiveFailed: _receive_failed,
    ReceivesExhausted: _exhausted,
    MessageRearmed: _rearmed,
}
