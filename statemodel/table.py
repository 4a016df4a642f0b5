"""The transition table: every move a record can make, as data, in one place.

Rules (everything else in sendguard is derived from or checked against this table):

* A record is created PENDING by `Accepted` and claimed at once (`Claimed` -> QUEUED, in flight) in
  the same conditional write — or, for the transactional outbox, created PENDING alone (`Prepare`, in
  the team's own transaction) and claimed by `dispatch` or a re-drive; a PENDING record is claimed
  only by a re-drive (of the reconciler, a replay or a dispatch).
* Each row is one conditional write: its events are appended together or not at all.
* Every move out of IN_FLIGHT names the attempt that claimed the record (`fenced`); a command from any
  other attempt is refused with `StaleAttempt`, and its write's condition would fail anyway.
* CONFIRMED has no way out: a confirmed record is never rolled back. EXHAUSTED has one, taken only by
  an operator (`Rearm`, recording who and why): the record goes back to PENDING with a fresh attempt
  budget, and the reconciler re-drives it like any other; nothing re-drives an exhausted record on
  its own.
* Which row applies when several share a source and a command is chosen by its guard; a command with
  no row, or whose guards all fail, is refused with a `ForbiddenCommand`.

`decide` reads the rows to pick the events; `HistoryChecker` reads them to accept or reject a history;
`adapters.docgen.diagram` draws them; the tests build a `transitions` machine from them and check it agrees
with `decide`.
"""

from __future__ import annotations

import enum

import attrs

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
from statemodel.errors import ForbiddenCommand, LeaseStillLive
from statemodel.events import (
    Accepted,
    Claimed,
    Event,
    Rearmed,
    RedriveExhausted,
    RolledBack,
    SendConfirmed,
    SendFailed,
)
from statemodel.records import Phase


class Guard(enum.Enum):
    """A condition on (record, command, now) that selects a row. Evaluated in `decider`."""

    ATTEMPTS_LEFT = "attempts < max_attempts"
    NO_ATTEMPTS_LEFT = "attempts >= max_attempts"
    REDRIVABLE_FAILURE = "the error's category allows a re-drive"
    FINAL_FAILURE = "the error's category allows no re-drive (permanent)"
    LEASE_EXPIRED = "now >= lease_expires_at"

    @property
    def refusal(self) -> type[ForbiddenCommand]:
        return LeaseStillLive if self is Guard.LEASE_EXPIRED else ForbiddenCommand


@attrs.frozen
class Transition:
    source: Phase
    command: type[Command]
    events: tuple[type[Event], ...]
    target: Phase
    guard: Guard | None = None
    fenced: bool = False  # the command must name the attempt that owns the record
    condition: str = ""  # the conditional write's condition, for the docs

    @property
    def label(self) -> str:
        """How logs, coverage and docs name the row: source, command and target tell every row apart."""
        return f"{self.source.value} {self.command.__name__} -> {self.target.value}"


_SAME_RECORD = "status and version as read"
_SAME_ATTEMPT = "status, version and attempt id as read"

TRANSITIONS: tuple[Transition, ...] = (
    Transition(Phase.ABSENT, Submit, (Accepted, Claimed), Phase.IN_FLIGHT,
               condition="no record with this message id"),
    Transition(Phase.PENDING, Redrive, (Claimed,), Phase.IN_FLIGHT,
               guard=Guard.ATTEMPTS_LEFT, condition=_SAME_RECORD),
    Transition(Phase.PENDING, Redrive, (RedriveExhausted,), Phase.EXHAUSTED,
               guard=Guard.NO_ATTEMPTS_LEFT, condition=_SAME_RECORD),
    Transition(Phase.IN_FLIGHT, ConfirmSend, (SendConfirmed,), Phase.CONFIRMED,
               fenced=True, condition=_SAME_ATTEMPT),
    Transition(Phase.IN_FLIGHT, ReportSendFailure, (SendFailed, RolledBack), Phase.PENDING,
               guard=Guard.REDRIVABLE_FAILURE, fenced=True, condition=_SAME_ATTEMPT),
    Transition(Phase.IN_FLIGHT, ReportSendFailure, (SendFailed, RolledBack, RedriveExhausted),
               Phase.EXHAUSTED, guard=Guard.FINAL_FAILURE, fenced=True, condition=_SAME_ATTEMPT),
    Transition(Phase.IN_FLIGHT, ExpireLease, (RolledBack,), Phase.PENDING,
               guard=Guard.LEASE_EXPIRED, fenced=True, condition=_SAME_ATTEMPT),
    Transition(Phase.ABSENT, Prepare, (Accepted,), Phase.PENDING,
               condition="no record with this message id"),
    Transition(Phase.EXHAUSTED, Rearm, (Rearmed,), Phase.PENDING, condition=_SAME_RECORD),
)  # fmt: skip

# Where each event leaves the record (None: where it was). A row's events must walk from its
# source to its target through these; `test_table` checks that they do.
EVENT_TARGET: dict[type[Event], Phase | None] = {
    Accepted: Phase.PENDING,
    Claimed: Phase.IN_FLIGHT,
    SendConfirmed: Phase.CONFIRMED,
    SendFailed: None,
    RolledBack: Phase.PENDING,
    RedriveExhausted: Phase.EXHAUSTED,
    Rearmed: Phase.PENDING,
}

# Events that name their attempt: each must name the attempt that owns the record.
FENCED_EVENTS: frozenset[type[Event]] = frozenset({SendConfirmed, SendFailed, RolledBack})


Table = tuple[Transition, ...]


def row_writing(
    source: Phase, events: tuple[type[Event], ...], table: Table = TRANSITIONS
) -> Transition | None:
    """The row of `table` whose one write appends exactly `events` to a record in `source`."""
    return next((row for row in table if row.source is source and row.events == events), None)


def rows_for(source: Phase, command: type[Command], table: Table = TRANSITIONS) -> tuple[Transition, ...]:
    return tuple(t for t in table if t.source is source and t.command is command)


def forbidden_moves() -> list[tuple[Phase, type[Command]]]:
    """Every (phase, command) pair with no row: `decide` refuses these outright."""
    return [(phase, command) for phase in Phase for command in COMMAND_TYPES if not rows_for(phase, command)]
