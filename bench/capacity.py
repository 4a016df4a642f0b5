"""DynamoDB's documented capacity rules, applied to the items moto actually stores.

moto does not report consumed capacity reliably, so the benchmarks compute it ("computed from item
sizes, DynamoDB's rule"):

* item size: the sum over attributes of the UTF-8 length of the name plus the value's size — a string
  its UTF-8 bytes, a number 1 byte per two significant digits plus 1, a binary its raw bytes, a null
  or a Boolean 1 byte, a list or a map 3 bytes plus its elements, each element 1 byte more;
* a write (PutItem, UpdateItem, DeleteItem) costs 1 write unit per started KB of the larger of the
  item before and after it, at least 1; a write whose condition fails still costs, at the size of the
  item as it is (at least 1);
* a global secondary index write: when an item enters the index, leaves it, or changes while in it
  (projection ALL, so any change is a change of the index entry), 1 write per started KB of the index
  entry (2 when the index key itself changes: a delete and a put); nothing when the item is in the
  index neither before nor after;
* a read: a Query page or a GetItem costs 1 read unit per started 4 KB of the items it returns when
  strongly consistent, half that when eventually consistent, and at least that minimum when it
  returns nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

KB = 1024
READ_BLOCK = 4 * KB


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one DynamoDB attribute value (typed JSON), without its name."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def number_size(text: str) -> int:
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1


def item_size(item: Mapping[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def table_write_units(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, applied: bool
) -> int:
    """A write that DynamoDB evaluated: applied, or refused by its condition."""
    if applied:
        return write_units(max(item_size(before), item_size(after)))
    return write_units(item_size(before))


def index_write_units(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, keys: Sequence[str]
) -> int:
    """The writes a global secondary index (projection ALL, key attributes `keys`) takes for one
    applied table write."""
    was = _index_key(before, keys)
    now = _index_key(after, keys)
    if was is None and now is None:
        return 0
    if was is None:
        return write_units(item_size(after))
    if now is None:
        return write_units(item_size(before))
    if was != now:
        return write_units(item_size(before)) + write_units(item_size(after))
    return write_units(item_size(after)) if before != after else 0


def index_writes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, keys: Sequence[str]
) -> int:
    """How many index entries one applied table write puts or deletes (whatever their size): an
    entry in, out or changed is 1, a changed index key 2 (a delete and a put)."""
    was = _index_key(before, keys)
    now = _index_key(after, keys)
    if was is None and now is None:
        return 0
    if was is not None and now is not None:
        return 2 if was != now else int(before != after)
    return 1


def _index_key(item: Mapping[str, Any] | None, keys: Sequence[str]) -> tuple[Any, ...] | None:
    if not item or any(k not in item for k in keys):
        return None
    return tuple(sorted(item[k].items()) for k in keys)


def read_units(items: Sequence[Mapping[str, Any]], consistent: bool) -> float:
    return read_units_of_bytes(sum(item_size(i) for i in items), consistent)


def read_units_of_bytes(size: int, consistent: bool) -> float:
    blocks = max(1, math.ceil(size / READ_BLOCK))
    return float(blocks) if consistent else blocks / 2
