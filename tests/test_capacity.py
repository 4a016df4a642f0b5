"""`bench.capacity`'s write and read units by DynamoDB's documented rules, for each index projection:
an index entry is the table key, the index key and the projected attributes, and a change of an item
that stays in the index costs an index write only when a projected attribute changed."""

from __future__ import annotations

from typing import Any

import pytest

from bench import capacity

TABLE_KEY = ("message_id",)
INDEX_KEY = ("sg_attention", "sg_attention_at")
KEYS_ONLY = {"ProjectionType": "KEYS_ONLY"}
ALL = {"ProjectionType": "ALL"}
INCLUDE_STATE = {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["sg_state"]}


def record(payload_bytes: int = 10, *, in_index: bool = True, **more: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "message_id": {"S": "m-1"},
        "payload": {"S": "x" * payload_bytes},
        "sg_state": {"S": "DISPATCH"},
    }
    if in_index:
        item |= {"sg_attention": {"S": "att#3"}, "sg_attention_at": {"N": "1700000000000"}}
    return item | {name: {"S": value} for name, value in more.items()}


def units(before: dict[str, Any] | None, after: dict[str, Any] | None, projection: dict[str, Any]) -> int:
    return capacity.index_write_units(before, after, INDEX_KEY, TABLE_KEY, projection)


def writes(before: dict[str, Any] | None, after: dict[str, Any] | None, projection: dict[str, Any]) -> int:
    return capacity.index_writes(before, after, INDEX_KEY, TABLE_KEY, projection)


# ---- the index entry ------------------------------------------------------------------------------


def test_a_keys_only_entry_of_a_big_item_holds_the_keys_alone_and_costs_one_write_unit() -> None:
    big = record(payload_bytes=50_000)
    entry = capacity.index_entry(big, INDEX_KEY, TABLE_KEY, KEYS_ONLY)
    assert entry is not None and set(entry) == {"message_id", "sg_attention", "sg_attention_at"}
    assert capacity.item_size(entry) < 100  # no 100-byte overhead: that is storage, not write units
    assert capacity.table_write_units(None, big, applied=True) == 49  # the table write is the whole item
    assert units(None, big, KEYS_ONLY) == 1
    assert units(None, big, ALL) == 49  # under ALL the entry is the whole item


def test_an_include_entry_holds_the_keys_and_the_included_attributes_only() -> None:
    item = record(payload_bytes=5_000, sg_lease="w-1")
    entry = capacity.index_entry(item, INDEX_KEY, TABLE_KEY, INCLUDE_STATE)
    assert entry == {
        name: item[name] for name in ("message_id", "sg_attention", "sg_attention_at", "sg_state")
    }
    assert units(None, item, INCLUDE_STATE) == 1
    with_payload = {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["payload"]}
    assert units(None, item, with_payload) == 5


def test_an_item_without_every_index_key_attribute_has_no_entry() -> None:
    assert capacity.index_entry(record(in_index=False), INDEX_KEY, TABLE_KEY, ALL) is None
    half = record(in_index=False) | {"sg_attention": {"S": "att#3"}}
    assert capacity.index_entry(half, INDEX_KEY, TABLE_KEY, KEYS_ONLY) is None
    assert capacity.index_entry(None, INDEX_KEY, TABLE_KEY, KEYS_ONLY) is None


def test_an_unknown_projection_type_is_refused() -> None:
    with pytest.raises(ValueError, match="projection type"):
        capacity.index_entry(record(), INDEX_KEY, TABLE_KEY, {"ProjectionType": "SOME"})


# ---- entering, leaving, changing ------------------------------------------------------------------


@pytest.mark.parametrize("projection", [KEYS_ONLY, INCLUDE_STATE, ALL], ids=["KEYS_ONLY", "INCLUDE", "ALL"])
def test_entering_and_leaving_the_index_cost_one_write_each(projection: dict[str, Any]) -> None:
    outside, inside = record(in_index=False), record()
    assert (units(outside, inside, projection), writes(outside, inside, projection)) == (1, 1)
    assert (units(inside, outside, projection), writes(inside, outside, projection)) == (1, 1)
    assert (units(None, inside, projection), writes(None, inside, projection)) == (1, 1)  # a new item
    assert (units(inside, None, projection), writes(inside, None, projection)) == (1, 1)  # a deletion
    assert (units(outside, outside, projection), writes(outside, outside, projection)) == (0, 0)
    assert (units(None, outside, projection), writes(None, outside, projection)) == (0, 0)


@pytest.mark.parametrize("projection", [KEYS_ONLY, INCLUDE_STATE, ALL], ids=["KEYS_ONLY", "INCLUDE", "ALL"])
def test_a_changed_index_key_is_a_delete_and_a_put(projection: dict[str, Any]) -> None:
    before = record()
    after = before | {"sg_attention_at": {"N": "1700000009999"}}
    assert (units(before, after, projection), writes(before, after, projection)) == (2, 2)


def test_a_change_inside_the_index_costs_nothing_under_keys_only_and_a_write_under_all() -> None:
    before = record(payload_bytes=1_500)
    after = before | {"payload": {"S": "y" * 1_500}, "sg_lease": {"S": "w-2"}}
    assert (units(before, after, KEYS_ONLY), writes(before, after, KEYS_ONLY)) == (0, 0)
    assert units(before, after, ALL) >= 1 and writes(before, after, ALL) == 1
    assert units(before, after, ALL) == capacity.write_units(capacity.item_size(after))  # the entry after
    assert (units(before, before, ALL), writes(before, before, ALL)) == (0, 0)  # nothing changed


def test_a_change_inside_the_index_costs_under_include_only_when_an_included_attribute_changes() -> None:
    before = record(payload_bytes=1_500)
    other = before | {"payload": {"S": "y" * 1_500}}
    assert (units(before, other, INCLUDE_STATE), writes(before, other, INCLUDE_STATE)) == (0, 0)
    included = before | {"sg_state": {"S": "PENDING"}}
    assert (units(before, included, INCLUDE_STATE), writes(before, included, INCLUDE_STATE)) == (1, 1)
    dropped = {name: value for name, value in before.items() if name != "sg_state"}
    assert (units(before, dropped, INCLUDE_STATE), writes(before, dropped, INCLUDE_STATE)) == (1, 1)


def test_the_projection_defaults_to_all_as_before() -> None:
    before = record()
    after = before | {"payload": {"S": "z" * 1_900}}  # about 1.9 KB
    assert capacity.index_write_units(before, after, INDEX_KEY, TABLE_KEY) == units(before, after, ALL) == 2


# ---- reads ----------------------------------------------------------------------------------------


def test_item_reads_round_each_item_up_on_its_own_and_a_missing_one_costs_the_minimum() -> None:
    kb = capacity.KB
    # AWS's example: a 1.5 KB and a 6.5 KB item cost 4 KB + 8 KB, not 8 KB
    assert capacity.item_read_units([int(1.5 * kb), int(6.5 * kb)], consistent=True) == 3.0
    assert capacity.read_units_of_bytes(8 * kb, consistent=True) == 2.0  # a Query page sums first
    assert capacity.item_read_units([0, 0], consistent=True) == 2.0  # two keys with no item
    assert capacity.item_read_units([0, 10 * kb], consistent=False) == 0.5 + 1.5
    assert capacity.item_read_units([], consistent=True) == 0.0
