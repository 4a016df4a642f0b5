"""The size rules of items: an item's size by DynamoDB's rule, from its low-level (typed JSON) form
(what a write is billed at and what an item may hold, 400 KB), where a message's body is kept
(`placement`), and whether an exhausted record has room for a fresh budget (`rearm_has_room`).

The sum over attributes of the UTF-8 length of the name plus the value's size: a string its UTF-8
bytes, a number 1 byte per two significant digits plus 1, a binary its raw bytes, a null or a
Boolean 1 byte, a list or a map 3 bytes plus its elements, each element 1 byte more (and, in a map,
its name's length).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from statemodel.events import event_to_dict
from statemodel.stored import Stored
from statemodel.validation import BODY_ITEM_LIMIT_BYTES, DYNAMODB_MAX_ITEM_BYTES

__all__ = [
    "CONFIRM_GROWTH_BYTES",
    "REQUEST_WORTH_UNITS",
    "Placement",
    "item_size",
    "placement",
    "rearm_has_room",
    "value_size",
    "write_units",
]

# What a happy path adds to the created record, at most: the confirm's history entry (with its SQS
# message id) and, with a retention, the TTL attribute, less the lease and index keys it removes
# (about 70 bytes). With the compact record that is never more: -37 bytes, -18 with a retention,
# measured with ids of the longest kind (tests/test_bodies.py checks the bound), so the confirm is
# billed at the created record's size.
CONFIRM_GROWTH_BYTES = 0
# A body written apart costs a request more on the submit path (the body's PutItem: a round trip, and
# the chance of a failure of its own): taken only when it saves more write units than this.
REQUEST_WORTH_UNITS = 1


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
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """A write's units for an item of `size` bytes: 1 per started KB, at least 1."""
    return max(1, -(-size // 1024))


def _number_size(text: str) -> int:
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1


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
    550 bytes of payload, and inline up to about 2.5 KB. Else a body item (`ITEM`, 4 requests: the
    body's own units plus the record's) up to DynamoDB's item limit, else an S3 object when there
    is a bucket (`S3`)."""
    inline = _happy_path_units(inline_record_bytes)
    apart = write_units(body_item_bytes) + _happy_path_units(record_bytes)
    fits = inline_record_bytes + CONFIRM_GROWTH_BYTES <= DYNAMODB_MAX_ITEM_BYTES
    if fits and inline <= apart + REQUEST_WORTH_UNITS:
        return Placement.INLINE
    if body_item_bytes <= BODY_ITEM_LIMIT_BYTES:
        return Placement.ITEM
    return Placement.S3 if bucket else None


def _happy_path_units(created_bytes: int) -> int:
    """The create's and the confirm's write units on the record (the index entry aside)."""
    return write_units(created_bytes) + write_units(created_bytes + CONFIRM_GROWTH_BYTES)


# A re-arm's worst case: each attempt of the fresh budget adds a claim and its failure to the history.
ATTEMPT_HISTORY_BYTES = 1_024
LIFECYCLE_BYTES = 2_048  # the record's lifecycle fields and index keys, generously


def rearm_has_room(stored: Stored, max_attempts: int) -> bool:
    """Whether the item still fits in 400 KB after a fresh budget's worst-case history (measured on
    the history's long form, which the compact one never exceeds)."""
    message = stored.record.message
    size = len(message.payload.encode()) + sum(len(k) + len(v) for k, v in message.attributes)
    size += len(json.dumps([event_to_dict(e) for e in stored.history]).encode()) + LIFECYCLE_BYTES
    return size + max_attempts * ATTEMPT_HISTORY_BYTES <= DYNAMODB_MAX_ITEM_BYTES
