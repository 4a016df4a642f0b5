"""The compact forms a record's message and history take in its item (`adapters.runtime.codec`).

The message's fields are written once, by the create, packed into one string (`sg_message`): a JSON
array `[created_at, correlation_id, request_hash, attributes, queue, idempotency_key, group_id,
caller]`, trailing nulls left out. Each history entry is one string too, a JSON array whose first
element names the event, with its times in milliseconds relative to the message's acceptance
(`created_at`, which the item holds once):

| Event | Entry |
|---|---|
| `Accepted` | `["A", at, digest]` (`digest`: of the packed message, which it pins) |
| `Claimed` | `["C", at, cause, attempt_id, lease_expires_at - at]` |
| `SendConfirmed` | `["S", at, sqs_message_id, attempt_id]` |
| `SendFailed` | `["F", at, category, code, attempt_id]` |
| `RolledBack` | `["R", at, cause, attempt_id]` |
| `RedriveExhausted` | `["X", at, cause]` |
| `Rearmed` | `["M", at, by, reason]` |

An `Accepted` does not say the message again: it holds a digest of the packed message (the first
`DIGEST_BYTES` of its SHA-256), so a message rewritten after its acceptance reads as a history that
disagrees with it, as a rewritten field did when the history repeated it. Causes and categories are
one letter (`_CODES`). An event's `attempt_id` is null when it is the
attempt the write was fenced on (the record's attempt before it, which is its history's last
`Claimed`). Trailing nulls are left out.

Ids in canonical UUID form (attempt ids, SQS message ids, generated correlation ids) are kept as
their 16 bytes in base64url (22 characters), a SHA-256 request hash as its 32 bytes (43), and an SQS
queue URL of the standard form `https://sqs.<region>.amazonaws.com/<account>/<name>` as
`<region>/<account>/<name>`. Any other value is kept as it is, behind `=` where it could be read as a
compact form. Every form reads back to exactly what was written.

What is read back is input: an entry or a message that does not have exactly this shape raises
`MalformedRecord`, never a guess.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from statemodel.categories import ErrorCategory
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
from statemodel.keys import Key
from statemodel.records import Message
from statemodel.validation import BODY_HASH

__all__ = [
    "MalformedRecord",
    "history_entries",
    "pack_message",
    "packed_request",
    "read_entries",
    "unpack_message",
]


class MalformedRecord(ValueError):
    """An item's compact message or history entry that no write of sendguard's could leave."""


ESCAPE = "="  # before a value kept as it is that could be read as a compact form
_B64 = re.compile(r"[A-Za-z0-9_-]*")
_QUEUE_URL = re.compile(
    r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com/([0-9]{12})/([A-Za-z0-9_-]{1,80}(?:\.fifo)?)"
)
_QUEUE_SHORT = re.compile(r"([a-z0-9-]+)/([0-9]{12})/([A-Za-z0-9_-]{1,80}(?:\.fifo)?)")
_UUID, _SHA256 = 16, 32  # the byte lengths of the two compact id forms
_CODES: dict[type[Any], dict[str, str]] = {
    ClaimCause: {"submit": "s", "replay": "p", "redrive": "r", "dispatch": "d"},
    RollbackCause: {"send_failed": "f", "lease_expired": "l"},
    ExhaustionCause: {"permanent_error": "p", "max_attempts": "m"},
    ErrorCategory: {"retryable": "r", "permanent": "p", "ambiguous": "a"},
}
_FIELDS = 8  # the packed message's fields
DIGEST_BYTES = 6  # of an Accepted's digest: catches a rewrite, which is all it is for


# ---- ids ------------------------------------------------------------------------------------------


def _canonical_bytes(text: str, size: int) -> bytes | None:
    """The bytes a value is the canonical text of (a lowercase UUID; lowercase hex), else None."""
    if size == _UUID:
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            return None
        return parsed.bytes if str(parsed) == text else None
    return bytes.fromhex(text) if re.fullmatch(rf"[0-9a-f]{{{2 * size}}}", text) else None


def _from_b64(text: str, size: int) -> bytes | None:
    """The bytes a compact form holds, when `text` is exactly one (the form `short_id` writes)."""
    if len(text) != -(-size * 4 // 3) or not _B64.fullmatch(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size and _to_b64(raw) == text else None


def _to_b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def short_id(text: str, size: int = _UUID) -> str:
    """An id as kept: its `size` bytes in base64url when it is their canonical text (a lowercase
    UUID, or lowercase hex), else as it is (behind `ESCAPE` where it could be read as bytes)."""
    raw = _canonical_bytes(text, size)
    if raw is not None:
        return _to_b64(raw)
    return ESCAPE + text if text.startswith(ESCAPE) or _from_b64(text, size) is not None else text


def long_id(text: str, size: int = _UUID) -> str:
    """The id `short_id` kept."""
    if not isinstance(text, str):  # read back from a table: input like any other
        raise MalformedRecord(f"an id is a string, not {text!r}")
    if text.startswith(ESCAPE):
        return text[len(ESCAPE) :]
    raw = _from_b64(text, size)
    if raw is None:
        return text
    return str(uuid.UUID(bytes=raw)) if size == _UUID else raw.hex()


def _short_hash(text: str) -> str:
    prefix = BODY_HASH if text.startswith(BODY_HASH) else ""
    return prefix + short_id(text.removeprefix(prefix), _SHA256)


def _long_hash(text: str) -> str:
    prefix = BODY_HASH if text.startswith(BODY_HASH) else ""
    return prefix + long_id(text.removeprefix(prefix), _SHA256)


def _short_queue(url: str) -> str:
    found = _QUEUE_URL.fullmatch(url)
    if found:
        return "/".join(found.groups())
    return url if "://" in url and not url.startswith(ESCAPE) else ESCAPE + url


def _long_queue(text: str) -> str:
    if text.startswith(ESCAPE) or "://" in text:
        return text.removeprefix(ESCAPE)
    found = _QUEUE_SHORT.fullmatch(text)
    if not found:
        raise MalformedRecord(f"not a queue: {text!r}")
    region, account, name = found.groups()
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


# ---- the message ----------------------------------------------------------------------------------


def pack_message(message: Message) -> str:
    """The message's fields but its id, key and payload (the item holds those apart), as one string."""
    fields: list[Any] = [
        message.created_at,
        short_id(message.correlation_id),
        _short_hash(message.request_hash),
        dict(message.attributes) or None,
        None if message.queue is None else _short_queue(message.queue),
        message.idempotency_key,
        message.group_id,
        message.caller,
    ]
    while fields and fields[-1] is None:
        fields.pop()
    return _dumps(fields)


def unpack_message(text: Any, key: Key, payload: str) -> Message:
    """The message `pack_message` packed, for the record at `key` with this payload. Raises
    MalformedRecord for anything `pack_message` could not have written."""
    created_at, correlation, request_hash, attributes, queue, idempotency_key, group_id, caller = _fields(
        text
    )
    return Message(
        message_id=key.message_id,
        payload=payload,
        attributes=tuple(sorted((attributes or {}).items())),
        correlation_id=long_id(correlation),
        created_at=created_at,
        request_hash=_long_hash(request_hash),
        idempotency_key=idempotency_key,
        group_id=group_id,
        key=key if key.composite else None,
        queue=None if queue is None else _long_queue(queue),
        caller=caller,
    )


def packed_request(text: Any) -> tuple[str, str | None]:
    """The request hash and queue of a packed message (what tells one request from another)."""
    fields = _fields(text)
    return _long_hash(fields[2]), None if fields[4] is None else _long_queue(fields[4])


def _fields(text: Any) -> list[Any]:
    fields = _loads(text, "message")
    if not 3 <= len(fields) <= _FIELDS:
        raise MalformedRecord(f"a packed message has 3 to {_FIELDS} fields: {text!r}")
    fields += [None] * (_FIELDS - len(fields))
    _expect(fields[0], int, "created_at", text)
    for index, name in ((1, "correlation_id"), (2, "request_hash")):
        _expect(fields[index], str, name, text)
    for index, name in ((4, "queue"), (5, "idempotency_key"), (6, "group_id"), (7, "caller")):
        _expect(fields[index], (str, type(None)), name, text)
    attributes = fields[3]
    if attributes is not None and not (
        isinstance(attributes, dict) and attributes and all(isinstance(v, str) for v in attributes.values())
    ):
        raise MalformedRecord(f"a packed message's attributes are a non-empty object of strings: {text!r}")
    return fields


# ---- the history ----------------------------------------------------------------------------------


def history_entries(events: Iterable[Event], created_at: int, fenced: str | None) -> list[str]:
    """One write's events as entries. `created_at`: the message's acceptance (times are relative to
    it); `fenced`: the attempt the write is conditioned on (the record's before it; None for a
    create)."""
    entries = []
    current = fenced
    for event in events:
        at = event.at - created_at
        row: list[Any]
        match event:
            case Accepted():
                row = ["A", at, digest(pack_message(event.message))]
            case Claimed():
                lease = event.lease_expires_at - event.at
                row = ["C", at, _code(event.cause), short_id(event.attempt_id), lease]
                current = event.attempt_id
            case SendConfirmed():
                row = ["S", at, short_id(event.sqs_message_id), _attempt(event.attempt_id, current)]
            case SendFailed():
                category = _code(ErrorCategory(event.category))
                row = ["F", at, category, event.code, _attempt(event.attempt_id, current)]
            case RolledBack():
                row = ["R", at, _code(event.cause), _attempt(event.attempt_id, current)]
            case RedriveExhausted():
                row = ["X", at, _code(event.cause)]
            case Rearmed():
                row = ["M", at, event.by, event.reason]
        while row[-1] is None:
            row.pop()
        entries.append(_dumps(row))
    return entries


def digest(packed: str) -> str:
    """What an `Accepted` entry keeps of the packed message: enough to tell it was rewritten."""
    return _to_b64(hashlib.sha256(packed.encode()).digest()[:DIGEST_BYTES])


def read_entries(
    entries: Sequence[Any],
    message: Message,
    packed: str | None,
    legacy: Callable[[dict[str, Any]], Event],
) -> tuple[Event, ...]:
    """A stored history: compact entries (strings) and, in a record written before them, entries as
    `statemodel.events.event_to_dict` wrote them (maps, read with `legacy(entry)`). `packed`: the
    record's packed message (None: a record written before it). Raises MalformedRecord (a
    ValueError) for an entry of neither shape, and for an `Accepted` whose digest is not the
    message's."""
    events: list[Event] = []
    current: str | None = None
    for index, entry in enumerate(entries):
        if isinstance(entry, Mapping):
            event = legacy(dict(entry))
        elif isinstance(entry, str):
            try:
                event = _read_entry(entry, message, packed, current)
            except MalformedRecord as exc:
                raise MalformedRecord(f"history entry {index + 1}: {exc}") from exc
        else:
            raise MalformedRecord(f"history entry {index + 1} is neither a map nor a string: {entry!r}")
        if isinstance(event, Claimed):
            current = event.attempt_id
        events.append(event)
    return tuple(events)


_ARITY = {"A": (3, 3), "C": (5, 5), "S": (3, 4), "F": (4, 5), "R": (3, 4), "X": (3, 3), "M": (4, 4)}


def _read_entry(text: str, message: Message, packed: str | None, current: str | None) -> Event:
    row = _loads(text, "history entry")
    kind = row[0] if row else None
    if not isinstance(kind, str) or kind not in _ARITY:
        raise MalformedRecord(f"not an event: {text!r}")
    low, high = _ARITY[kind]
    if not low <= len(row) <= high:
        raise MalformedRecord(f"{kind} takes {low} to {high} fields: {text!r}")
    row += [None] * (high - len(row))
    _expect(row[1], int, "at", text)
    at = message.created_at + row[1]
    if kind == "A":
        if packed is None or row[2] != digest(packed):
            raise MalformedRecord(f"Accepted disagrees with the record's message (rewritten since): {text!r}")
        return Accepted(message, at)
    if kind == "C":
        _expect(row[4], int, "lease", text)
        return Claimed(_id(row[3], None, text), at + row[4], _decode(ClaimCause, row[2], text), at)
    if kind == "S":
        _expect(row[2], str, "sqs_message_id", text)
        return SendConfirmed(_id(row[3], current, text), long_id(row[2]), at)
    if kind == "F":
        _expect(row[3], str, "code", text)
        return SendFailed(_id(row[4], current, text), _decode(ErrorCategory, row[2], text).value, row[3], at)
    if kind == "R":
        return RolledBack(_id(row[3], current, text), _decode(RollbackCause, row[2], text), at)
    if kind == "X":
        return RedriveExhausted(_decode(ExhaustionCause, row[2], text), at)
    _expect(row[2], str, "by", text)
    _expect(row[3], str, "reason", text)
    return Rearmed(row[2], row[3], at)


def _attempt(attempt_id: str, current: str | None) -> str | None:
    return None if attempt_id == current else short_id(attempt_id)


def _id(value: Any, current: str | None, text: str) -> str:
    if value is None:
        if current is None:
            raise MalformedRecord(f"names the current attempt, and no attempt was claimed before: {text!r}")
        return current
    _expect(value, str, "id", text)
    return long_id(value)


def _code(value: Any) -> str:
    return _CODES[type(value)][value.value]


def _decode(kind: Any, code: Any, text: str) -> Any:
    for value, letter in _CODES[kind].items():
        if code == letter:
            return kind(value)
    raise MalformedRecord(f"not a {kind.__name__} code: {code!r} in {text!r}")


def _expect(value: Any, kind: type[Any] | tuple[type[Any], ...], name: str, text: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise MalformedRecord(f"{name} is {value!r}: {text!r}")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _loads(text: Any, what: str) -> list[Any]:
    if not isinstance(text, str):
        raise MalformedRecord(f"a {what} is a string: {text!r}")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser goes
        raise MalformedRecord(f"a {what} is not JSON ({type(exc).__name__}): {text[:200]!r}") from None
    if not isinstance(value, list):
        raise MalformedRecord(f"a {what} is a JSON array: {text!r}")
    return value


def _refuse_constant(name: str) -> Any:
    raise MalformedRecord(f"{name} is not a value sendguard writes")
