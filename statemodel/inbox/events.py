"""The inbox's events: what happened to a message's record, in the past tense. A record's history is
a list of them; every event carries the time it was decided at (epoch milliseconds), and every event
of a claim's life names its attempt (fencing).
"""

from __future__ import annotations

from typing import Any

import attrs

from statemodel.categories import ErrorCategory, Failure
from statemodel.inbox.records import InboxMessage, InboxRecord


@attrs.frozen
class Received:
    """The inbox recorded the message (the record's first event)."""

    message: InboxMessage
    at: int


@attrs.frozen
class ClaimTaken:
    attempt_id: str
    lease_expires_at: int
    at: int


@attrs.frozen
class ClaimExpired:
    """The claim of `attempt_id` ran past its lease and was taken from it (by the next claim)."""

    attempt_id: str
    at: int


@attrs.frozen
class Completed:
    attempt_id: str
    result: str
    at: int


@attrs.frozen
class Released:
    attempt_id: str
    category: str  # an ErrorCategory value (stored flat, as the history's format has it)
    code: str
    at: int

    @property
    def failure(self) -> Failure:
        return Failure(ErrorCategory(self.category), self.code)


@attrs.frozen
class EffectCommitted:
    """The handler's effect committed, in the same transaction as this event's write."""

    attempt_id: str
    at: int


@attrs.frozen
class ReceiveFailed:
    attempt_id: str
    category: str  # an ErrorCategory value (stored flat, as the history's format has it)
    code: str
    at: int

    @property
    def failure(self) -> Failure:
        return Failure(ErrorCategory(self.category), self.code)


@attrs.frozen
class ReceivesExhausted:
    at: int


@attrs.frozen
class MessageRearmed:
    """An operator re-armed a FAILED message: who, and why."""

    by: str
    reason: str
    at: int


InboxEvent = (
    Received
    | ClaimTaken
    | ClaimExpired
    | Completed
    | Released
    | EffectCommitted
    | ReceiveFailed
    | ReceivesExhausted
    | MessageRearmed
)
INBOX_EVENT_TYPES: tuple[type[InboxEvent], ...] = (
    Received,
    ClaimTaken,
    ClaimExpired,
    Completed,
    Released,
    EffectCommitted,
    ReceiveFailed,
    ReceivesExhausted,
    MessageRearmed,
)
_BY_NAME: dict[str, type[InboxEvent]] = {cls.__name__: cls for cls in INBOX_EVENT_TYPES}


@attrs.frozen
class InboxStored:
    """A stored inbox item: the projection, and the history it was built from."""

    record: InboxRecord
    history: tuple[InboxEvent, ...]


def event_to_dict(event: InboxEvent) -> dict[str, Any]:
    """The event as plain JSON-able data: how histories are stored and logged. A `Received` keeps no
    message: the item holds it once, at its top level."""
    if isinstance(event, Received):
        return {"type": "Received", "at": event.at}
    return {"type": type(event).__name__, **attrs.asdict(event)}


def event_from_dict(data: dict[str, Any], message: InboxMessage) -> InboxEvent:
    """The inverse of `event_to_dict`, given the record's message. Raises ValueError for anything
    `event_to_dict` did not write."""
    fields = dict(data)
    try:
        cls = _BY_NAME[fields.pop("type")]
    except KeyError as exc:
        raise ValueError(f"not an inbox event: {data!r}") from exc
    try:
        if cls is Received:
            return Received(message, int(fields["at"]))
        for name in ("at", "lease_expires_at"):
            if name in fields:
                fields[name] = int(fields[name])
        return cls(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed {cls.__name__} ({exc}): {data!r}") from exc
