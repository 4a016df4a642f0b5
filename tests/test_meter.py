"""`bench.meter` on in-process moto: index write units by the projection that describe_table reports,
a PutItem of an item outside the index (a message body's own item), BatchGetItem's read units and
items, and other services' calls counted by operation; and the cost report naming the projection it
was measured with."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bench import capacity, report_cost
from bench.meter import Meter

pytestmark = pytest.mark.usefixtures("sendguard_aws")

INDEX_KEY = ("sg_attention", "sg_attention_at")


def make_table(name: str, projection: dict[str, Any]) -> None:
    client: Any = boto3.client("dynamodb")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "message_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "message_id", "AttributeType": "S"},
            {"AttributeName": "sg_attention", "AttributeType": "S"},
            {"AttributeName": "sg_attention_at", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "attention",
                "KeySchema": [
                    {"AttributeName": "sg_attention", "KeyType": "HASH"},
                    {"AttributeName": "sg_attention_at", "KeyType": "RANGE"},
                ],
                "Projection": projection,
            }
        ],
    )


def record(message_id: str, payload_bytes: int, in_index: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {"message_id": {"S": message_id}, "payload": {"S": "x" * payload_bytes}}
    if in_index:
        item |= {"sg_attention": {"S": "att#1"}, "sg_attention_at": {"N": "1700000000000"}}
    return item


@contextlib.contextmanager
def installed(meter: Meter) -> Iterator[Meter]:
    """The meter's handlers in, and a new default session, so that the clients made after see them."""
    with meter.installed():
        boto3.DEFAULT_SESSION = None
        try:
            yield meter
        finally:
            boto3.DEFAULT_SESSION = None


@pytest.fixture
def meter() -> Iterator[Meter]:
    with installed(Meter()) as meter:
        yield meter


def _put_then_touch(table: str, meter: Meter) -> tuple[int, int, int, int]:
    """A 5 KB record put into the index, then updated in place (its payload; same index key): the
    put's table and index units, then the update's."""
    client: Any = boto3.client("dynamodb")
    with meter.counting() as put:
        client.put_item(TableName=table, Item=record("m-1", 5_000))
    with meter.counting() as touch:
        client.update_item(
            TableName=table,
            Key={"message_id": {"S": "m-1"}},
            UpdateExpression="SET payload = :p",
            ExpressionAttributeValues={":p": {"S": "y" * 5_000}},
        )
    return put.table_wru, put.index_wru, touch.table_wru, touch.index_wru


def test_index_write_units_follow_the_projection_describe_table_reports(meter: Meter) -> None:
    make_table("keys-only", {"ProjectionType": "KEYS_ONLY"})
    make_table("all", {"ProjectionType": "ALL"})
    assert meter.describe("keys-only") == {
        "key": ["message_id"],
        "indexes": [
            {"name": "attention", "keys": list(INDEX_KEY), "projection": {"ProjectionType": "KEYS_ONLY"}}
        ],
    }
    assert _put_then_touch("keys-only", meter) == (5, 1, 5, 0)  # the entry is the keys: 1 in, 0 after
    assert _put_then_touch("all", meter) == (5, 5, 5, 5)  # the entry is the whole item


def test_an_include_projection_counts_only_its_included_attributes(meter: Meter) -> None:
    make_table("include", {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["sg_state"]})
    client: Any = boto3.client("dynamodb")
    with meter.counting() as put:
        client.put_item(TableName="include", Item=record("m-1", 5_000) | {"sg_state": {"S": "DISPATCH"}})
    with meter.counting() as state:
        client.update_item(
            TableName="include",
            Key={"message_id": {"S": "m-1"}},
            UpdateExpression="SET sg_state = :s",
            ExpressionAttributeValues={":s": {"S": "PENDING"}},
        )
    assert (put.index_wru, put.index_writes, state.index_wru, state.index_writes) == (1, 1, 1, 1)
    assert state.table_wru == 5


def test_a_put_of_an_item_outside_the_index_costs_its_size_on_the_table_only(meter: Meter) -> None:
    make_table("bodies", {"ProjectionType": "KEYS_ONLY"})
    body = record("m-1#body", 3_000, in_index=False)
    with meter.counting() as tally:
        boto3.client("dynamodb").put_item(TableName="bodies", Item=body)
    assert tally.table_wru == math.ceil(capacity.item_size(body) / capacity.KB) == 3
    assert (tally.index_wru, tally.index_writes) == (0, 0)
    assert tally.written == [("bodies", "m-1#body")]  # the key read from the PutItem's Item
    assert tally.calls == {"PutItem": 1}


def _batch_get(meter: Meter) -> Any:
    make_table("left", {"ProjectionType": "KEYS_ONLY"})
    make_table("right", {"ProjectionType": "KEYS_ONLY"})
    client: Any = boto3.client("dynamodb")
    client.put_item(TableName="left", Item=record("a", 6_000))  # 2 blocks of 4 KB
    client.put_item(TableName="left", Item=record("b", 1_000))  # 1 block
    client.put_item(TableName="right", Item=record("c", 9_000))  # 3 blocks
    with meter.counting() as tally:
        answer = client.batch_get_item(
            RequestItems={
                "left": {
                    "Keys": [{"message_id": {"S": k}} for k in ("a", "b", "missing")],
                    "ConsistentRead": True,
                    "ProjectionExpression": "message_id",  # the answer is tiny: the items are not
                },
                "right": {"Keys": [{"message_id": {"S": "c"}}]},  # eventually consistent
            }
        )
    assert sum(len(items) for items in answer["Responses"].values()) == 3
    return tally


def test_batch_get_item_reads_each_whole_item_with_each_tables_consistency(meter: Meter) -> None:
    tally = _batch_get(meter)
    assert tally.items_read == 3  # a, b, c: the missing key returns nothing
    assert tally.rru == (2 + 1 + 1) + 3 / 2  # strong on left (the missing key costs 1), eventual on right
    assert tally.items_read_by_operation == {"BatchGetItem": 3}
    assert tally.rru_by_operation == {"BatchGetItem": 5.5}
    assert tally.calls == {"BatchGetItem": 1}


def test_without_reads_from_moto_a_trimmed_batch_get_is_sized_by_its_answer() -> None:
    with installed(Meter(write_units=False)) as meter:
        tally = _batch_get(meter)
    assert tally.items_read == 3
    assert tally.rru == 3 + 3 / 2  # left's tiny answers and missing key, the minimum each; right untrimmed


def test_get_item_with_a_projection_is_metered_at_the_whole_item(meter: Meter) -> None:
    make_table("gets", {"ProjectionType": "KEYS_ONLY"})
    client: Any = boto3.client("dynamodb")
    client.put_item(TableName="gets", Item=record("a", 9_000))
    with meter.counting() as tally:
        client.get_item(TableName="gets", Key={"message_id": {"S": "a"}}, ProjectionExpression="message_id")
        client.get_item(TableName="gets", Key={"message_id": {"S": "none"}}, ConsistentRead=True)
    assert (tally.items_read, tally.rru) == (1, 1.5 + 1.0)


def test_s3_calls_are_counted_by_operation_beside_dynamodbs(meter: Meter) -> None:
    s3: Any = boto3.client("s3")
    s3.create_bucket(Bucket="bodies")
    with meter.counting() as tally:
        s3.put_object(Bucket="bodies", Key="m-1", Body=b"x" * 500_000)
        s3.get_object(Bucket="bodies", Key="m-1")["Body"].read()
    assert tally.calls == {"PutObject": 1, "GetObject": 1}
    assert tally.attempts == {"PutObject": 1, "GetObject": 1}
    assert tally.as_dict()["calls_by_operation"] == {"GetObject": 1, "PutObject": 1}
    assert (tally.wru, tally.rru) == (0, 0.0)


def described(projection: dict[str, Any]) -> dict[str, Any]:
    """A table as `Meter.describe` records it in the results, its `attention` index so projected."""
    index = {"name": "attention", "keys": list(INDEX_KEY), "projection": projection}
    return {"key": ["message_id"], "indexes": [index]}


def test_the_cost_report_names_the_projection_it_was_measured_with() -> None:
    keys_only = report_cost.index_rule(described({"ProjectionType": "KEYS_ONLY"}))
    assert "projection KEYS_ONLY" in keys_only and "projection ALL" not in keys_only
    assert "only the keys `message_id`, `sg_attention` and `sg_attention_at`" in keys_only
    assert "nothing when only other attributes change" in keys_only
    include = report_cost.index_rule(
        described({"ProjectionType": "INCLUDE", "NonKeyAttributes": ["sg_state"]})
    )
    assert "projection INCLUDE" in include and "the included `sg_state`" in include
    everything = report_cost.index_rule(described({"ProjectionType": "ALL"}))
    assert "projection ALL" in everything and "an entry is the whole item" in everything
    assert "not recorded" in report_cost.index_rule(None)  # results written before it was recorded
