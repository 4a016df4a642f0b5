"""DynamoDB's documented capacity rules, applied to the items moto actually stores.

moto does not report consumed capacity reliably, so the benchmarks compute it ("computed from item
sizes, DynamoDB's rule"):

* item size: the sum over attributes of the UTF-8 length of the name plus the value's size — a string
  its UTF-8 bytes, a number 1 byte per two significant digits plus 1, a binary its raw bytes, a null
  or a Boolean 1 byte, a list or a map 3 bytes plus its elements, each element 1 byte more;
* a write (PutItem, UpdateItem, DeleteItem) costs 1 write unit per started KB of the larger of the
  item before and after it, at least 1; a write whose condition fails still costs, at the size of the
  item as it is (at least 1);
* a global secondary index entry: an item is in the index when it has every index key attribute (a
  sparse index leaves the others out); its entry holds the table's key attributes, the index's key
  attributes and the projected ones — none more under KEYS_ONLY, the NonKeyAttributes under INCLUDE,
  all of the item's under ALL — and is sized like an item (no overhead: see below);
* a global secondary index write: 1 write unit per started KB of the entry, at least 1, when the item
  enters the index or leaves it; the old entry's and the new one's when the index key changes (a
  delete and a put); when the item stays in the index under the same key, the new entry's only if a
  projected attribute changed (under ALL any change, under INCLUDE an included attribute, under
  KEYS_ONLY never: the keys are all it holds), else nothing; nothing when the item is in the index
  neither before nor after;
* a read: a Query page costs 1 read unit per started 4 KB of the items it returns when strongly
  consistent, half that when eventually consistent, and at least that minimum when it returns
  nothing; a GetItem, and each key of a BatchGetItem on its own, 1 read unit per started 4 KB of the
  whole item (half when eventually consistent), the minimum when the item does not exist, whatever a
  ProjectionExpression leaves out of the answer.

Sources: AWS's Amazon DynamoDB Developer Guide, quoted from the source AWS published for it (GitHub
awsdocs/amazon-dynamodb-developer-guide, doc_source/GSI.md and doc_source/ProvisionedThroughput.md):

https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations

"Provisioned Throughput Considerations for Global Secondary Indexes", "Write Capacity Units": "If you
write a new item to the table that defines an indexed attribute, or you update an existing item to
define a previously undefined indexed attribute, one write operation is required to put the item into
the index. If an update to the table changes the value of an indexed key attribute (from A to B), two
writes are required, one to delete the previous item from the index and another write to put the new
item into the index. If an item was present in the index, but a write to the table caused the indexed
attribute to be deleted, one write is required to delete the old item projection from the index. If
an item is not present in the index before or after the item is updated, there is no additional write
cost for the index. If an update to the table only changes the value of projected attributes in the
index key schema, but does not change the value of any indexed key attribute, then one write is
required to update the values of the projected attributes into the index. All of these factors assume
that the size of each item in the index is less than or equal to the 1 KB item size for calculating
write capacity units. Larger index entries will require additional write capacity units." "Read
Capacity Units": "the calculation is based on the sizes of the index entries, rather than the size of
the item in the base table". "Attribute Projections": "KEYS_ONLY – Each item in the index consists
only of the table partition key and sort key values, plus the index key values"; "INCLUDE – In
addition to the attributes described in KEYS_ONLY, the secondary index will include other non-key
attributes that you specify". "Storage Considerations for Global Secondary Indexes": "The amount of
space used by an index item is the sum of the following: The size in bytes of the base table primary
key (partition key and sort key); The size in bytes of the index key attribute; The size in bytes of
the projected attributes (if any); 100 bytes of overhead per index item." The 100 bytes are stated for
storage only; the write-unit text names no overhead, so an entry's write units leave them out. The
guide does not say at which size an entry updated in place is metered: the entry after the write.

https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ProvisionedThroughput.html

"Capacity Unit Consumption for Reads": "BatchGetItem—Reads up to 100 items, from one or more tables.
DynamoDB processes each item in the batch as an individual GetItem request, so DynamoDB first rounds
up the size of each item to the next 4 KB boundary, and then calculates the total size." "If you
perform a read operation on an item that does not exist, DynamoDB still consumes provisioned read
throughput". "For any operation that returns items, you can request a subset of attributes to
retrieve; however, doing so has no impact on the item size calculations."
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from adapters.runtime.item_size import item_size, value_size, write_units

KB = 1024
READ_BLOCK = 4 * KB
ALL: Mapping[str, Any] = {"ProjectionType": "ALL"}  # a Projection as describe_table reports it
PROJECTION_TYPES = ("KEYS_ONLY", "INCLUDE", "ALL")
# The size rule and a write's units are the runtime's own (what `bodies.placement` decides by).
__all__ = ["item_size", "value_size", "write_units"]


def table_write_units(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, applied: bool
) -> int:
    """A write that DynamoDB evaluated: applied, or refused by its condition."""
    if applied:
        return write_units(max(item_size(before), item_size(after)))
    return write_units(item_size(before))


def projected_names(
    projection: Mapping[str, Any], keys: Sequence[str], table_keys: Sequence[str]
) -> frozenset[str] | None:
    """The attribute names an index entry holds (None: all of the item's, projection ALL)."""
    kind = projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return None
    if kind == "KEYS_ONLY":
        return frozenset((*table_keys, *keys))
    if kind == "INCLUDE":
        return frozenset((*table_keys, *keys, *projection.get("NonKeyAttributes", ())))
    raise ValueError(f"unknown projection type {kind!r}, not one of {PROJECTION_TYPES}")


def index_entry(
    item: Mapping[str, Any] | None,
    keys: Sequence[str],
    table_keys: Sequence[str],
    projection: Mapping[str, Any] = ALL,
) -> dict[str, Any] | None:
    """The item's entry in a global secondary index keyed `keys` on a table keyed `table_keys`, with
    that index's `Projection`; None when the item is not in the index (no item, or an index key
    attribute missing)."""
    if item is None or _index_key(item, keys) is None:
        return None
    names = projected_names(projection, keys, table_keys)
    return {name: value for name, value in item.items() if names is None or name in names}


def index_write_units(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    keys: Sequence[str],
    table_keys: Sequence[str],
    projection: Mapping[str, Any] = ALL,
) -> int:
    """The write units a global secondary index (key attributes `keys`, its `Projection`, on a table
    keyed `table_keys`) takes for one applied table write."""
    was = index_entry(before, keys, table_keys, projection)
    now = index_entry(after, keys, table_keys, projection)
    if was is None and now is None:
        return 0
    if was is None:
        return write_units(item_size(now))
    if now is None:
        return write_units(item_size(was))
    if _index_key(was, keys) != _index_key(now, keys):
        return write_units(item_size(was)) + write_units(item_size(now))
    return write_units(item_size(now)) if was != now else 0


def index_writes(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    keys: Sequence[str],
    table_keys: Sequence[str],
    projection: Mapping[str, Any] = ALL,
) -> int:
    """How many index entries one applied table write puts or deletes (whatever their size): an
    entry in, out or changed is 1, a changed index key 2 (a delete and a put); an item that stays
    under the same index key with its entry unchanged (only unprojected attributes changed) 0."""
    was = index_entry(before, keys, table_keys, projection)
    now = index_entry(after, keys, table_keys, projection)
    if was is None and now is None:
        return 0
    if was is not None and now is not None:
        return 2 if _index_key(was, keys) != _index_key(now, keys) else int(was != now)
    return 1


def _index_key(item: Mapping[str, Any] | None, keys: Sequence[str]) -> tuple[Any, ...] | None:
    if not item or any(k not in item for k in keys):
        return None
    return tuple(sorted(item[k].items()) for k in keys)


def read_units(items: Sequence[Mapping[str, Any]], consistent: bool) -> float:
    """One Query or Scan page: the items' sizes summed, then rounded up to 4 KB."""
    return read_units_of_bytes(sum(item_size(i) for i in items), consistent)


def read_units_of_bytes(size: int, consistent: bool) -> float:
    blocks = max(1, math.ceil(size / READ_BLOCK))
    return float(blocks) if consistent else blocks / 2


def item_read_units(sizes: Iterable[int], consistent: bool) -> float:
    """GetItem, or a BatchGetItem's keys on one table: each item (its whole size; 0 for a key with
    no item) rounded up to 4 KB on its own, at least the minimum, then summed."""
    return sum(read_units_of_bytes(size, consistent) for size in sizes)
