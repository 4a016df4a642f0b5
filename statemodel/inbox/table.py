"""The inbox's transition table: every move a consumed message's record can make, as data, in one place.

Rules (everything else in the inbox is derived from or checked against this table):

* A record is created by the first write any receive of its message makes — a claim (guarded), the
  commit (transactional) or a failed receive (transactional) — in one conditional write whose
  condition is that no item has the key; every later write is conditioned on the record's status and
  version as read (and, for a claim's own moves, on its attempt id: `fenced`).
* Each row is one conditional write: its events are appended together or not at all. The
  transactional `Commit` is that write inside the team's own `TransactWriteItems`, beside the
  handler's effect: the effect commits with it, or neither does — so an effect is applied exactly
  when the record becomes DONE, and a DONE record has no way back.
* Guarded mode: a claim holds the message for one attempt under a lease (the invocation's end plus a
  margin). Only an expired lease is taken over (`ClaimExpired`, then the new `ClaimTaken`, in one
  write); a claim of a live one is refused with `ClaimHeld`. Completing or releasing names the
  attempt that holds the claim, and a command from any other attempt is refused with `StaleAttempt`
  (its write's condition would fail anyway): a claim that was lost can complete nothing.
* Receives are counted against `max_receives`: each claim counts one, and so does each failed
  transactional receive. A claim with none left, a release of the last, and the last failed receive
  give up: the record goes FAILED (`ReceivesExhausted`) and its message is left to the queue's
  redrive policy. Only an operator takes a record out of FAILED (`RearmMessage`: back to WAITING with
  a fresh budget, recording who and why).
* DONE has no way out. A duplicate of a DONE message is answered from the record (the guarded
  handler's stored result) and runs nothing: the flows read the record and decide no command.
* Which row applies when several share a source and a command is chosen by its guard; a command with
  no row, or whose guards all fail, is refused with a `ForbiddenCommand`.
* A row belongs to the mode whose flows take it (`modes`); the operator's re-arm, to both.

`decide` reads the rows to pick the events; `InboxHistoryChecker` reads them to accept or reject a
history; `adapters.docgen.inbox_doc` draws them (docs/inbox-transitions.md); the explorer covers
every row.
"""

from __future__ import annotations

import enum

import attrs

from statemodel.errors import ForbiddenCommand
from statemodel.inbox.commands import (
    INBOX_COMMAND_TYPES,
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
from statemodel.inbox.records import ClaimHeld, InboxPhase


class Mode(enum.StrEnum):
    """How a consumer applies a message's effect (docs/inbox.md)."""

    TRANSACTIONAL = "transactional"  # the effect is DynamoDB writes, committed with the inbox's
    GUARDED = "guarded"  # the effect is elsewhere: a fenced claim around the handler


class Guard(enum.Enum):
    """A condition on (record, command, now) that selects a row. Evaluated in the decider."""

    RECEIVE_LEFT = "receives < max_receives"
    NO_RECEIVE_LEFT = "receives >= max_receives"
    EXPIRED_RECEIVE_LEFT = "now >= lease_expires_at and receives < max_receives"
    EXPIRED_NO_RECEIVE_LEFT = "now >= lease_expires_at and receives >= max_receives"
    ANOTHER_RECEIVE = "receives + 1 < max_receives"
    LAST_RECEIVE = "receives + 1 >= max_receives"

    @property
    def refusal(self) -> type[ForbiddenCommand]:
        expired = (Guard.EXPIRED_RECEIVE_LEFT, Guard.EXPIRED_NO_RECEIVE_LEFT)
        return ClaimHeld if self in expired else ForbiddenCommand


@attrs.frozen
class InboxTransition:
    source: InboxPhase
    command: type[InboxCommand]
    events: tuple[type[InboxEvent], ...]
    target: InboxPhase
    guard: Guard | None = None
    fenced: bool = False  # the command must name the attempt that holds the claim
    condition: str = ""  # the conditional write's condition, for the docs
    modes: frozenset[Mode] = frozenset(Mode)

    @property
    def label(self) -> str:
        """How coverage and docs name the row: source, command, target and, where two rows share
        those, the guard's first word tells them apart."""
        return f"{self.source.value} {self.command.__name__} -> {self.target.value}"


_NEW = "no item with this key"
_SAME_RECORD = "status and version as read"
_SAME_CLAIM = "status, version and attempt id as read"
_GUARDED = frozenset({Mode.GUARDED})
_TRANSACTIONAL = frozenset({Mode.TRANSACTIONAL})
_IN_TRANSACTION = " (a write of the team's transaction, beside its effect)"

INBOX_TRANSITIONS: tuple[InboxTransition, ...] = (
    # guarded: the claim, its takeover once expired, completion and release
    InboxTransition(InboxPhase.ABSENT, Claim, (Received, ClaimTaken), InboxPhase.PROCESSING,
                    condition=_NEW, modes=_GUARDED),
    InboxTransition(InboxPhase.WAITING, Claim, (ClaimTaken,), InboxPhase.PROCESSING,
                    guard=Guard.RECEIVE_LEFT, condition=_SAME_RECORD, modes=_GUARDED),
    InboxTransition(InboxPhase.WAITING, Claim, (ReceivesExhausted,), InboxPhase.FAILED,
                    guard=Guard.NO_RECEIVE_LEFT, condition=_SAME_RECORD, modes=_GUARDED),
    InboxTransition(InboxPhase.PROCESSING, Claim, (ClaimExpired, ClaimTaken), InboxPhase.PROCESSING,
                    guard=Guard.EXPIRED_RECEIVE_LEFT, condition=_SAME_CLAIM, modes=_GUARDED),
    InboxTransition(InboxPhase.PROCESSING, Claim, (ClaimExpired, ReceivesExhausted), InboxPhase.FAILED,
                    guard=Guard.EXPIRED_NO_RECEIVE_LEFT, condition=_SAME_CLAIM, modes=_GUARDED),
    InboxTransition(InboxPhase.PROCESSING, Complete, (Completed,), InboxPhase.DONE,
                    fenced=True, condition=_SAME_CLAIM, modes=_GUARDED),
    InboxTransition(InboxPhase.PROCESSING, Release, (Released,), InboxPhase.WAITING,
                    guard=Guard.RECEIVE_LEFT, fenced=True, condition=_SAME_CLAIM, modes=_GUARDED),
    InboxTransition(InboxPhase.PROCESSING, Release, (Released, ReceivesExhausted), InboxPhase.FAILED,
                    guard=Guard.NO_RECEIVE_LEFT, fenced=True, condition=_SAME_CLAIM, modes=_GUARDED),
    # transactional: the commit with the effect, and a failed receive
    InboxTransition(InboxPhase.ABSENT, Commit, (Received, EffectCommitted), InboxPhase.DONE,
                    condition=_NEW + _IN_TRANSACTION, modes=_TRANSACTIONAL),
    InboxTransition(InboxPhase.WAITING, Commit, (EffectCommitted,), InboxPhase.DONE,
                    condition=_SAME_RECORD + _IN_TRANSACTION, modes=_TRANSACTIONAL),
    InboxTransition(InboxPhase.ABSENT, RecordFailure, (Received, ReceiveFailed), InboxPhase.WAITING,
                    guard=Guard.ANOTHER_RECEIVE, condition=_NEW, modes=_TRANSACTIONAL),
    InboxTransition(InboxPhase.ABSENT, RecordFailure, (Received, ReceiveFailed, ReceivesExhausted),
                    InboxPhase.FAILED, guard=Guard.LAST_RECEIVE, condition=_NEW, modes=_TRANSACTIONAL),
    InboxTransition(InboxPhase.WAITING, RecordFailure, (ReceiveFailed,), InboxPhase.WAITING,
                    guard=Guard.ANOTHER_RECEIVE, condition=_SAME_RECORD, modes=_TRANSACTIONAL),
    InboxTransition(InboxPhase.WAITING, RecordFailure, (ReceiveFailed, ReceivesExhausted), InboxPhase.FAILED,
                    guard=Guard.LAST_RECEIVE, condition=_SAME_RECORD, modes=_TRANSACTIONAL),
    # the operator
    InboxTransition(InboxPhase.FAILED, RearmMessage, (MessageRearmed,), InboxPhase.WAITING,
                    condition=_SAME_RECORD),
)  # fmt: skip

# Where each event leaves the record (None: where it was). A row's events walk from its source to its
# target through these, and `evolve` leaves each event's record there: tests/test_inbox_model.py and
# tests/test_inbox_kills.py check both.
EVENT_TARGET: dict[type[InboxEvent], InboxPhase | None] = {
    Received: InboxPhase.WAITING,
    ClaimTaken: InboxPhase.PROCESSING,
    ClaimExpired: InboxPhase.WAITING,
    Completed: InboxPhase.DONE,
    Released: InboxPhase.WAITING,
    EffectCommitted: InboxPhase.DONE,
    ReceiveFailed: InboxPhase.WAITING,
    ReceivesExhausted: InboxPhase.FAILED,
    MessageRearmed: InboxPhase.WAITING,
}

# Events that name their attempt and must name the one that holds the claim.
FENCED_EVENTS: frozenset[type[InboxEvent]] = frozenset({ClaimExpired, Completed, Released})

InboxTable = tuple[InboxTransition, ...]


def row_writing(
    source: InboxPhase, events: tuple[type[InboxEvent], ...], table: InboxTable = INBOX_TRANSITIONS
) -> InboxTransition | None:
    """The row of `table` whose one write appends exactly `events` to a record in `source`."""
    return next((row for row in table if row.source is source and row.events == events), None)


def rows_for(
    source: InboxPhase, command: type[InboxCommand], table: InboxTable = INBOX_TRANSITIONS
) -> tuple[InboxTransition, ...]:
    return tuple(t for t in table if t.source is source and t.command is command)


def forbidden_moves(table: InboxTable = INBOX_TRANSITIONS) -> list[tuple[InboxPhase, type[InboxCommand]]]:
    """Every (phase, command) pair with no row: `decide` refuses these outright."""
    return [
        (phase, command)
        for phase in InboxPhase
        for command in INBOX_COMMAND_TYPES
        if not rows_for(phase, command, table)
    ]


def rows_of(mode: Mode, table: InboxTable = INBOX_TRANSITIONS) -> tuple[InboxTransition, ...]:
    return tuple(row for row in table if mode in row.modes)
