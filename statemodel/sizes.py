"""Every size limit sendguard enforces or inherits, and every size rule, in one module; the rest of
sendguard calls it (docs/limits.md's size rows are generated from it: `adapters.docgen.limits_doc`). Pure:
no I/O.

The limits come in two kinds: AWS's published quotas, which sendguard inherits (each says which
service and quota), and sendguard's own, derived from them (each says how). The rules:

* a message: its size (`message_bytes`), its limit with or without a body bucket (`message_limit`),
  and why it is refused (`message_size_problem`, `attribute_count_problem`,
  `attribute_name_problem`, `record_extra_problem`, `item_name_problem`);
* a DynamoDB item: its size (`item_size`, `value_size`) and the write units it is billed at
  (`write_units`);
* where a body is kept (`placement`) and whether an exhausted record has room for a fresh attempt
  budget (`rearm_fits`);
* the inbox's: a guarded result (`inbox_result_problem`), a transaction's effects
  (`inbox_effects_problem`), a message's key (`inbox_key_fits`) and the prefix before it
  (`inbox_prefix_problem`).

Text is counted as its limit counts it: in UTF-8 bytes wherever AWS stores or sends it (an item, a
key, a message); in characters only where the quota is in characters over an ASCII alphabet (SQS's
attribute names and ids), where the two agree.

An item's size is DynamoDB's rule, from its low-level (typed JSON) form: the sum over attributes of
the UTF-8 length of the name plus the value's size — a string its UTF-8 bytes, a number 1 byte per
two significant digits plus 1, a binary its raw bytes, a null or a Boolean 1 byte, a list or a map
3 bytes plus its elements, each element 1 byte more (and, in a map, its name's length).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

# AWS's published quotas, which sendguard inherits.
# SQS (Amazon SQS Developer Guide, "Amazon SQS message quotas"):
SQS_MAX_MESSAGE_BYTES = 1_048_576  # a message, body and attributes (name, type, value) together: 1 MiB
SQS_MAX_ATTRIBUTES = 10  # message attributes a message may carry
SQS_MAX_ATTRIBUTE_NAME_CHARS = 256  # a message attribute's name
SQS_MAX_ID_CHARS = 128  # a MessageDeduplicationId or MessageGroupId
SQS_MAX_BATCH_ENTRIES = 10  # SendMessageBatch's entries
SQS_MAX_BATCH_BYTES = 262_144  # SendMessageBatch's entries' messages together, on every queue: 256 KiB
SQS_MAX_QUEUE_NAME_CHARS = 80  # a queue's name, a FIFO queue's `.fifo` counted
# DynamoDB (Amazon DynamoDB Developer Guide, "Quotas in Amazon DynamoDB"):
DYNAMODB_MAX_ITEM_BYTES = 409_600  # an item, names and values together: 400 KB
DYNAMODB_MAX_PARTITION_BYTES = 2_048  # a partition key attribute's value
DYNAMODB_MAX_SORT_BYTES = 1_024  # a sort key attribute's value
DYNAMODB_MAX_NAME_BYTES = 255  # an attribute name that is a key or projected into an index
DYNAMODB_MAX_TRANSACTION_ITEMS = 100  # the actions of one TransactWriteItems
DYNAMODB_MAX_BATCH_GET_KEYS = 100  # the keys of one BatchGetItem
DYNAMODB_WRITE_UNIT_BYTES = 1_024  # a write unit covers an item of up to 1 KB

# sendguard's own, derived from those.
# The record keeps room for its lifecycle fields and a history of up to MAX_ATTEMPTS_LIMIT attempts
# (measured: 20 attempts of history take ~7.5 KB; moto counts it twice); the message's attributes
# and the team's own item attributes take the rest.
RECORD_OVERHEAD_BYTES = 24_576
MAX_RECORD_EXTRA_BYTES = DYNAMODB_MAX_ITEM_BYTES - RECORD_OVERHEAD_BYTES
MAX_ATTEMPTS_LIMIT = 20  # bounds the history, and so the item's size
BODY_ITEM_KEY_BYTES = 2_048  # a body item's key and names, at most (names of up to 255 bytes)
# Without a body bucket: what a body item holds, kept under 400 KB less its key with room to spare
# (moto refuses items past 405,000 bytes, counted its own way).
MAX_MESSAGE_BYTES = 400_000
BODY_ITEM_LIMIT_BYTES = MAX_MESSAGE_BYTES + BODY_ITEM_KEY_BYTES  # a larger body goes to S3
# SQS counts each attribute's type ("String", 6 bytes) too, and sendguard adds `message_id` (an id of
# up to 128 characters): room for ten of them.
SQS_ATTRIBUTE_ROOM_BYTES = 256
MAX_MESSAGE_BYTES_WITH_BUCKET = SQS_MAX_MESSAGE_BYTES - SQS_ATTRIBUTE_ROOM_BYTES
MAX_BODY_BYTES = SQS_MAX_MESSAGE_BYTES + 65_536  # a raw request body past this is refused unparsed
MAX_DEPTH = 32  # JSON nesting of an API payload
RESERVED_ATTRIBUTE = "message_id"  # sendguard's own message attribute: the record's id
MAX_ATTRIBUTES = SQS_MAX_ATTRIBUTES - 1  # one is RESERVED_ATTRIBUTE
# What a happy path adds to the created record, at most: the confirm's history entry (with its SQS
# message id) and, with a retention, the TTL attribute, less the lease and index keys it removes
# (about 70 bytes). With the compact record that is never more: -37 bytes, -18 with a retention,
# measured with ids of the longest kind (tests/test_bodies.py checks the bound), so the confirm is
# billed at the created record's size.
CONFIRM_GROWTH_BYTES = 0
# A body written apart costs a request more on the submit path (the body's PutItem: a round trip, and
# the chance of a failure of its own): taken only when it saves more write units than this.
REQUEST_WORTH_UNITS = 1
# A re-arm's worst case: each attempt of the fresh budget adds a claim and its failure to the history
# (Claimed + SendFailed + RolledBack measured at ~380 bytes; a generous bound).
ATTEMPT_HISTORY_BYTES = 1_024
LIFECYCLE_BYTES = 2_048  # the record's lifecycle fields and index keys, generously
# A re-arm's `by` and `reason`, each: stored in its history entry (`rearm_fits` counts their bytes).
REARM_MAX_TEXT_CHARS = 512
# The inbox's (adapters.runtime.inbox).
INBOX_MAX_EFFECT_ENTRIES = DYNAMODB_MAX_TRANSACTION_ITEMS - 1  # the inbox's own record is one
INBOX_MAX_RESULT_BYTES = 65_536  # a guarded result is kept in the record, answered to duplicates
# A message's key (its `message_id` attribute, or the one named), in UTF-8: with the inbox's prefix it
# is the inbox record's partition key value, which DynamoDB takes up to 2,048 bytes.
INBOX_MAX_KEY_BYTES = 1_024
INBOX_MAX_PREFIX_BYTES = DYNAMODB_MAX_PARTITION_BYTES - INBOX_MAX_KEY_BYTES  # the prefix takes the rest


# A message's size: payload and attributes.


def message_limit(bucket: bool) -> int:
    """The most bytes of payload and attributes accepted, with a body bucket or without one."""
    return MAX_MESSAGE_BYTES_WITH_BUCKET if bucket else MAX_MESSAGE_BYTES


def attributes_bytes(attributes: Iterable[tuple[str, str]]) -> int:
    """Bytes of message attributes, as the size limits count them: each name and value in UTF-8."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in attributes)


def message_bytes(payload: str, attributes: Iterable[tuple[str, str]]) -> int:
    """Bytes of payload and attributes, as the size limit counts them (UnicodeEncodeError for a lone
    surrogate)."""
    return len(payload.encode()) + attributes_bytes(attributes)


def sqs_message_bytes(body: str, attributes: Iterable[tuple[str, str, str]]) -> int:
    """SQS's count for one message: the body and each attribute's (name, data type, value), in UTF-8."""
    return len(body.encode()) + sum(
        len(name.encode()) + len(kind.encode()) + len(value.encode()) for name, kind, value in attributes
    )


def message_size_problem(
    what: str, payload: str, attributes: tuple[tuple[str, str], ...], limit: int
) -> str | None:
    """Why `payload` (called `what`: "payload", "body") and `attributes` are too large for `limit`
    bytes, naming the largest attribute; None when they fit."""
    size = message_bytes(payload, attributes)
    if size <= limit:
        return None
    return (
        f"{what} and attributes take {size} bytes; at most {limit} are accepted "
        f"({what} {len(payload.encode())} bytes{_largest_attribute(attributes)})"
    )


def _largest_attribute(attributes: tuple[tuple[str, str], ...]) -> str:
    if not attributes:
        return ""
    name, value = max(attributes, key=lambda pair: len(pair[0].encode()) + len(pair[1].encode()))
    return f", largest attribute {name!r} {len(name.encode()) + len(value.encode())} bytes"


def attribute_count_problem(count: int) -> str | None:
    """Why `count` message attributes are too many; None when they are not."""
    if count <= MAX_ATTRIBUTES:
        return None
    return (
        f"{count} attributes given; at most {MAX_ATTRIBUTES} attributes are allowed (count limit: SQS "
        f"takes {SQS_MAX_ATTRIBUTES} and sendguard uses one for {RESERVED_ATTRIBUTE!r})"
    )


def attribute_name_problem(name: str) -> str | None:
    """Why the attribute name `name` has the wrong length; None when it has not."""
    if 1 <= len(name) <= SQS_MAX_ATTRIBUTE_NAME_CHARS:
        return None
    return (
        f"attribute name {name[:64]!r} is {len(name)} characters; names take 1 to "
        f"{SQS_MAX_ATTRIBUTE_NAME_CHARS} (name length limit)"
    )


def record_extra_problem(
    attributes: tuple[tuple[str, str], ...], item_sizes: Mapping[str, int], key_bytes: int
) -> str | None:
    """Why the attributes and the team's item attributes (`item_sizes`: each one's size, name and
    value), with the record's key and message id (`key_bytes`), do not fit in the record beside
    sendguard's fields; None when they fit."""
    parts = {f"attribute {name!r}": len(name.encode()) + len(value.encode()) for name, value in attributes}
    parts.update((f"item[{name!r}]", size) for name, size in item_sizes.items())
    size = key_bytes + sum(parts.values())
    if size <= MAX_RECORD_EXTRA_BYTES:
        return None
    largest = max(parts, key=lambda part: parts[part], default=None)
    where = "" if largest is None else f"; largest {largest} {parts[largest]} bytes"
    return (
        f"attributes and item take {size} bytes; at most {MAX_RECORD_EXTRA_BYTES} fit in the record "
        f"(record size limit, key {key_bytes} bytes{where})"
    )


def item_name_problem(name: object) -> str | None:
    """Why `name` cannot name one of the team's item attributes; None when it can."""
    if not isinstance(name, str):
        return f"item attribute name {name!r} must be a string, not {type(name).__name__}"
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        return f"item attribute name {name[:64]!r} is not valid Unicode text"  # pragma: no mutate (text)
    if 0 < size <= DYNAMODB_MAX_NAME_BYTES:
        return None
    return (
        f"item attribute name {name[:64]!r} is {size} bytes; names take 1 to {DYNAMODB_MAX_NAME_BYTES} "
        "(name length limit)"
    )


# A DynamoDB item's size and cost.


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value, without its name."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode("utf-8", "surrogatepass"))
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(str(k).encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "SS":
        return sum(len(str(s).encode("utf-8", "surrogatepass")) for s in inner)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """An item's size (low-level form): the sum of its names' UTF-8 bytes and its values' sizes."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """A write's units for an item of `size` bytes: 1 per started KB, at least 1."""
    return max(1, -(-size // DYNAMODB_WRITE_UNIT_BYTES))


def _number_size(text: str) -> int:
    # abs() would round to 28 digits; no mutate: strip's set of characters meets only digits here
    digits = f"{Decimal(text).copy_abs():f}".replace(".", "").strip("0")  # pragma: no mutate
    return (max(len(digits), 1) + 1) // 2 + 1  # pragma: no mutate (equivalent: 1 or 2 digits, 2 bytes)


# Where a body is kept.


class Placement(enum.StrEnum):
    """Where a body is kept (`adapters.runtime.bodies` writes and reads those kept apart)."""

    INLINE = "inline"
    ITEM = "item"
    S3 = "s3"


def placement(
    inline_record_bytes: int, record_bytes: int, body_item_bytes: int, *, bucket: bool
) -> Placement | None:
    """Where a body goes. `inline_record_bytes`: the created record's size with the body in it;
    `record_bytes`: without it (naming it); `body_item_bytes`: the body item's. None: it fits
    nowhere (validation refuses such a body first).

    DynamoDB bills a write at the larger of the item before and after it, 1 unit per started KB, so
    a body kept in the record is paid again by every lifecycle write. On the happy path's two
    writes (the create and the confirm; the index entry is the same either way) the body stays in
    the record (`INLINE`, 3 requests) unless writing it apart saves more than `REQUEST_WORTH_UNITS`
    units: with the compact record's ~300–400 bytes of bookkeeping, one unit a write up to about
    550 bytes of payload, and inline up to about 1.7 KB, then by whole units, not one size (apart
    to 2 KB, inline again to about 2.7 KB: docs/library.md, What a record costs). Else a body
    item (`ITEM`, 4 requests: the body's own units plus the record's) up to DynamoDB's item limit,
    else an S3 object when there is a bucket (`S3`)."""
    inline = _happy_path_units(inline_record_bytes)
    apart = write_units(body_item_bytes) + _happy_path_units(record_bytes)
    # no mutate: the growth is 0 today (a confirm adds no bytes), kept so that a change to it counts
    fits = inline_record_bytes + CONFIRM_GROWTH_BYTES <= DYNAMODB_MAX_ITEM_BYTES  # pragma: no mutate
    if fits and inline <= apart + REQUEST_WORTH_UNITS:
        return Placement.INLINE
    if body_item_bytes <= BODY_ITEM_LIMIT_BYTES:
        return Placement.ITEM
    return Placement.S3 if bucket else None


def _happy_path_units(created_bytes: int) -> int:
    """The create's and the confirm's write units on the record (the index entry aside)."""
    return write_units(created_bytes) + write_units(created_bytes + CONFIRM_GROWTH_BYTES)  # pragma: no mutate


# Whether a re-arm has room.


def rearm_fits(
    payload: str,
    attributes: Iterable[tuple[str, str]],
    history_bytes: int,
    max_attempts: int,
    texts: Iterable[str] = (),
) -> bool:
    """Whether a record of `payload` and `attributes` whose history takes `history_bytes` (in its
    long form, which the compact one never exceeds) still fits in 400 KB after the re-arm's own
    entry (its `texts`, `by` and `reason`) and a fresh budget of `max_attempts` attempts' worst-case
    history (`adapters.runtime.item_size.rearm_has_room`). Text counts in UTF-8 bytes, as DynamoDB
    counts the item: `by` and `reason` are at most REARM_MAX_TEXT_CHARS characters, up to four
    times as many bytes."""
    size = message_bytes(payload, attributes) + sum(len(text.encode()) for text in texts)
    size += history_bytes + LIFECYCLE_BYTES
    return size + max_attempts * ATTEMPT_HISTORY_BYTES <= DYNAMODB_MAX_ITEM_BYTES


# The inbox's.


def inbox_result_problem(text: str) -> str | None:
    """Why a guarded handler's result, as JSON `text`, is too large to keep; None when it is not."""
    size = len(text.encode())
    if size <= INBOX_MAX_RESULT_BYTES:
        return None
    return f"the handler's result is {size} bytes as JSON; the inbox keeps {INBOX_MAX_RESULT_BYTES}"


def inbox_key_fits(key: str) -> bool:
    """Whether `key` can be a message's inbox key: 1 to INBOX_MAX_KEY_BYTES bytes of UTF-8 (a lone
    surrogate is no text DynamoDB stores)."""
    try:
        size = len(key.encode())
    except UnicodeEncodeError:
        return False
    return 0 < size <= INBOX_MAX_KEY_BYTES


def inbox_prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot start the inbox records' keys (with a key of up to INBOX_MAX_KEY_BYTES it
    is their partition key value): its UTF-8 bytes past INBOX_MAX_PREFIX_BYTES; None when it fits."""
    try:
        size = len(prefix.encode())
    except UnicodeEncodeError:
        return f"key_prefix={prefix[:64]!r} is not valid Unicode text"  # pragma: no mutate (text)
    if size <= INBOX_MAX_PREFIX_BYTES:
        return None
    return (
        f"key_prefix={prefix[:64]!r} takes {size} bytes; at most {INBOX_MAX_PREFIX_BYTES} (with a key of up "
        f"to {INBOX_MAX_KEY_BYTES} bytes it is the inbox record's partition key, which DynamoDB takes up to "
        f"{DYNAMODB_MAX_PARTITION_BYTES})"
    )


def inbox_effects_problem(count: int) -> str | None:
    """Why `count` transactional effect entries are too many; None when they are not."""
    if count <= INBOX_MAX_EFFECT_ENTRIES:
        return None
    return (
        f"{count} entries: a transaction takes {INBOX_MAX_EFFECT_ENTRIES} beside the inbox's record "
        f"(DynamoDB takes {DYNAMODB_MAX_TRANSACTION_ITEMS})"
    )
