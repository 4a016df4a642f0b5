"""The record: what one message's DynamoDB item projects to.

A record is split in two on purpose. `Message` is the metadata a client gave us (and the id, the
time and the correlation id we gave it): it is written once, by `Accepted`, and nothing after that may
change it — rollbacks in particular must keep it byte for byte. `Record` adds the lifecycle fields
that every transition rewrites. All times are integer epoch milliseconds, so that the projection read
back from DynamoDB compares equal to the one computed here.
"""

from __future__ import annotations

import enum

import attrs

from statemodel.categories import Failure
from statemodel.keys import Key


class Status(enum.StrEnum):
    """The persisted `status` attribute: exactly these two strings."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"


class Phase(enum.StrEnum):
    """The states of the transition table: `Status` refined by the lifecycle fields.

    A QUEUED record is *in flight* (claimed by one attempt, under a lease) or *confirmed* (SQS accepted
    it). A PENDING record waits for a re-drive, or is *exhausted*: it stays PENDING, flagged, for an
    operator, and nothing re-drives it on its own any more.
    """

    ABSENT = "ABSENT"
    PENDING = "PENDING"
    EXHAUSTED = "EXHAUSTED"
    IN_FLIGHT = "IN_FLIGHT"
    CONFIRMED = "CONFIRMED"

    @property
    def status(self) -> Status | None:
        return _STATUS_OF_PHASE[self]


_STATUS_OF_PHASE: dict[Phase, Status | None] = {
    Phase.ABSENT: None,
    Phase.PENDING: Status.PENDING,
    Phase.EXHAUSTED: Status.PENDING,
    Phase.IN_FLIGHT: Status.QUEUED,
    Phase.CONFIRMED: Status.QUEUED,
}


@attrs.frozen
class Message:
    """What was accepted. Immutable for the record's whole life."""

    message_id: str
    payload: str  # the payload as JSON text, exactly as it is sent to SQS
    attributes: tuple[tuple[str, str], ...]  # sorted by name
    correlation_id: str
    created_at: int
    request_hash: str  # tells a replay of the same request from a conflicting one
    idempotency_key: str | None = None
    group_id: str | None = None  # the FIFO MessageGroupId the sender chose, if any
    # The record's key when it has a sort value of its own (the team's row); None: the message id
    # is the key (`statemodel.keys`). Its message id is `message_id`.
    key: Key | None = None
    # Where every send of this record goes (a queue URL); None for a record written before records
    # named their queue, which goes to the queue of whoever reads it (`adapters` fills it in).
    queue: str | None = None
    # Who sent it, where the API keeps callers apart (the caller's IAM principal); None otherwise.
    caller: str | None = None

    @property
    def record_key(self) -> Key:
        return Key(self.message_id) if self.key is None else self.key


@attrs.frozen
class Record:
    """The projection of a record's history (see `statemodel.decider.evolve`)."""

    message: Message
    status: Status
    version: int  # the number of events in the history
    updated_at: int
    attempts: int = 0  # claims so far
    attempt_id: str | None = None  # set while in flight
    lease_expires_at: int | None = None  # set while in flight
    sqs_message_id: str | None = None  # set once confirmed
    last_error: Failure | None = None  # the last failed send's
    exhausted: bool = False

    @property
    def message_id(self) -> str:
        return self.message.message_id

    @property
    def phase(self) -> Phase:
        if self.status is Status.QUEUED:
            return Phase.CONFIRMED if self.sqs_message_id is not None else Phase.IN_FLIGHT
        return Phase.EXHAUSTED if self.exhausted else Phase.PENDING


def phase_of(record: Record | None) -> Phase:
    return Phase.ABSENT if record is None else record.phase
