"""The inbox's commands: what a consumer (or an operator) asks of a message's record, in the
imperative. `statemodel.inbox.decider.decide` turns them into events or refuses them.

A command that may create the record (`Claim`, `Commit`, `RecordFailure`) carries the message; on an
existing record it is the record's own. Times, ids and outcomes are fields: nothing here reads a
clock or draws an id.
"""

from __future__ import annotations

import attrs

from statemodel.categories import ErrorCategory
from statemodel.inbox.records import InboxMessage


@attrs.frozen
class Claim:
    """Guarded mode: take the message for this attempt, under a lease, before running the handler;
    counts one receive (or gives up when none is left)."""

    message: InboxMessage
    attempt_id: str
    lease_expires_at: int
    max_receives: int


@attrs.frozen
class Complete:
    """Guarded mode: the handler ran to its end for this attempt; keep its result for duplicates."""

    attempt_id: str
    result: str


@attrs.frozen
class Release:
    """Guarded mode: the handler failed for this attempt; give the claim back for the next delivery
    (or give up, when no receive is left)."""

    attempt_id: str
    category: ErrorCategory
    code: str
    max_receives: int


@attrs.frozen
class Commit:
    """Transactional mode: record the message done, in one transaction with the handler's effect."""

    message: InboxMessage
    attempt_id: str


@attrs.frozen
class RecordFailure:
    """Transactional mode: this receive's handler (or its effect's own condition) failed; count the
    receive (or give up, when it was the last)."""

    message: InboxMessage
    attempt_id: str
    category: ErrorCategory
    code: str
    max_receives: int


@attrs.frozen
class RearmMessage:
    """An operator gives a FAILED message a fresh receive budget, once its cause is fixed. `by` says
    who asked and `reason` why; both go into the history."""

    by: str
    reason: str


InboxCommand = Claim | Complete | Release | Commit | RecordFailure | RearmMessage
INBOX_COMMAND_TYPES: tuple[type[InboxCommand], ...] = (
    Claim,
    Complete,
    Release,
    Commit,
    RecordFailure,
    RearmMessage,
)
