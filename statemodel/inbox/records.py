"""The inbox's record: what one consumed message's DynamoDB item projects to.

`InboxMessage` is what the consumer knows of a message when it first records it — its key (the
producer's message id, or the key the team names) and a hash of its body — written once, by
`Received`, and never changed. `InboxRecord` adds the lifecycle fields every transition rewrites. All
times are integer epoch milliseconds.
"""

from __future__ import annotations

import enum

import attrs

from statemodel.categories import Failure
from statemodel.errors import ForbiddenCommand


class InboxPhase(enum.StrEnum):
    """The states of the inbox's transition table; each but ABSENT is also the persisted status.

    * PROCESSING: claimed by one attempt (the guarded mode), under a lease that outlives the
      invocation holding it;
    * WAITING: not done; a receive failed (or a claim was released) and the next delivery tries again;
    * DONE: the effect is committed (transactional) or the handler completed (guarded), for good;
    * FAILED: given up after `max_receives` receives; left to the queue's redrive policy, and to an
      operator, who may re-arm it.
    """

    ABSENT = "ABSENT"
    PROCESSING = "PROCESSING"
    WAITING = "WAITING"
    DONE = "DONE"
    FAILED = "FAILED"


@attrs.frozen
class InboxMessage:
    """What the inbox records of a message, once. `message_id` is the inbox's key for it."""

    message_id: str
    body_hash: str  # sha256 of the body as received: shows the operator which body it was
    group_id: str | None = None  # the FIFO MessageGroupId, if any


@attrs.frozen
class InboxRecord:
    """The projection of an inbox record's history (`statemodel.inbox.decider.evolve`)."""

    message: InboxMessage
    phase: InboxPhase
    version: int  # the number of events in the history
    updated_at: int
    receives: int = 0  # receives counted against max_receives (claims; failed transactional receives)
    attempt_id: str | None = None  # the claim's holder (PROCESSING), or who made it DONE
    lease_expires_at: int | None = None  # set while PROCESSING
    result: str | None = None  # the guarded handler's result, answered to duplicates (DONE)
    last_error: Failure | None = None

    @property
    def message_id(self) -> str:
        return self.message.message_id


def phase_of(record: InboxRecord | None) -> InboxPhase:
    return InboxPhase.ABSENT if record is None else record.phase


class ClaimHeld(ForbiddenCommand):
    """A claim of a message whose claim is held by another attempt under a live lease."""
