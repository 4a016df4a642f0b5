"""Events: what happened to a record, in the past tense. A record's history is a list of them.

Every event that leaves or stays in QUEUED names the attempt it belongs to (fencing); every event
carries the time it was decided at, in epoch milliseconds.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from statemodel.categories import ErrorCategory, Failure
from statemodel.records import Message


class ClaimCause(enum.StrEnum):
    SUBMIT = "submit"  # a new request
    REPLAY = "replay"  # the same request again, with its Idempotency-Key, found PENDING
    REDRIVE = "redrive"  # the reconciler, for a PENDING record that waited long enough
    DISPATCH = "dispatch"  # the library's dispatch, for a PENDING record the team's transaction wrote


class RollbackCause(enum.StrEnum):
    SEND_FAILED = "send_failed"  # by the sender, after SQS refused or the outcome is unknown
    LEASE_EXPIRED = "lease_expired"  # by the reconciler, after the attempt's lease ran out


class ExhaustionCause(enum.StrEnum):
    PERMANENT_ERROR = "permanent_error"  # re-sending cannot help until an operator acts
    MAX_ATTEMPTS = "max_attempts"


@attrs.frozen
class Accepted:
    message: Message
    at: int


@attrs.frozen
class Claimed:
    attempt_id: str
    lease_expires_at: int
    cause: ClaimCause
    at: int


@attrs.frozen
class SendConfirmed:
    attempt_id: str
    sqs_message_id: str
    at: int


@attrs.frozen
class SendFailed:
    attempt_id: str
    category: str  # an ErrorCategory value (stored flat, as the history's format has it)
    code: str
    at: int

    @property
    def failure(self) -> Failure:
        return Failure(ErrorCategory(self.category), self.code)


@attrs.frozen
class RolledBack:
    attempt_id: str
    cause: RollbackCause
    at: int


@attrs.frozen
class RedriveExhausted:
    cause: ExhaustionCause
    at: int


@attrs.frozen
class Rearmed:
    """An operator re-armed an exhausted record: who, and why."""

    by: str
    reason: str
    at: int


Event = Accepted | Claimed | SendConfirmed | SendFailed | RolledBack | RedriveExhausted | Rearmed
EVENT_TYPES: tuple[type[Event], ...] = (
    Accepted,
    Claimed,
    SendConfirmed,
    SendFailed,
    RolledBack,
    RedriveExhausted,
    Rearmed,
)
_EVENT_BY_NAME: dict[str, type[Event]] = {cls.__name__: cls for cls in EVENT_TYPES}


# What a stored or logged `Accepted` keeps of its message. The payload and attributes are not in it:
# the item holds them once, at its top level (they are most of its 400 KB), and logs never hold them.
# `request_hash` still pins them: `statemodel.validation.message_problems` recomputes it.
_SUMMARY = ("correlation_id", "created_at", "request_hash", "idempotency_key")


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as plain JSON-able data: how histories are stored and logged."""
    if isinstance(event, Accepted):
        summary = {name: getattr(event.message, name) for name in _SUMMARY}
        return {"type": "Accepted", "at": event.at, **summary}
    fields = attrs.asdict(event, recurse=False)  # pragma: no mutate (recurse=None is the same: falsy)
    return {"type": type(event).__name__, **{k: _plain(v) for k, v in fields.items()}}


def event_from_dict(data: dict[str, Any], message: Message) -> Event:
    """The inverse of `event_to_dict`, given the record's message (its item's top-level attributes,
    or `message_from_summary` where only the history is known). Raises ValueError for anything
    `event_to_dict` did not write, and for an `Accepted` that disagrees with the message."""
    fields = dict(data)
    try:
        cls = _EVENT_BY_NAME[fields.pop("type")]
    except KeyError as exc:
        raise ValueError(f"not an event: {data!r}") from exc
    try:
        if cls is Accepted:
            stored = {name: fields.get(name) for name in _SUMMARY}
            stored["created_at"] = int(fields["created_at"])
            changed = [name for name in _SUMMARY if stored[name] != getattr(message, name)]
            if changed:
                disagree = ", ".join(changed)  # pragma: no mutate (message text, not contract)
                raise ValueError(f"Accepted disagrees with the record's {disagree}")
            return Accepted(message=message, at=int(fields["at"]))
        if cls is Claimed:
            fields["cause"] = ClaimCause(fields["cause"])
        elif cls is RolledBack:
            fields["cause"] = RollbackCause(fields["cause"])
        elif cls is RedriveExhausted:
            fields["cause"] = ExhaustionCause(fields["cause"])
        for name in ("at", "lease_expires_at"):
            if name in fields:
                fields[name] = int(fields[name])
        return cls(**fields)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a bad value too: name the event
        raise ValueError(f"malformed {cls.__name__} ({exc}): {data!r}") from exc


def message_from_summary(message_id: str, data: dict[str, Any]) -> Message:
    """A message rebuilt from an `Accepted` summary alone: no payload, no attributes."""
    return Message(
        message_id=message_id,
        payload="",
        attributes=(),
        correlation_id=data["correlation_id"],
        created_at=int(data["created_at"]),
        request_hash=data["request_hash"],
        idempotency_key=data.get("idempotency_key"),
    )


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value
