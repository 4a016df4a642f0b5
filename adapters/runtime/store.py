"""The record in DynamoDB: each `Write` effect becomes exactly one conditional UpdateItem.

The item holds the message at its top level (written once, by the create, and never again: later
writes SET only lifecycle attributes), the projection's lifecycle fields, the history as a list that
each write appends to, and the sparse `attention` / `attention_at` index keys derived from the
projection (`statemodel.attention`). The condition is the write's `Expectation` — status, version and
attempt id as the flow last saw them — or, for the create, that no item exists. A failed condition
returns the item as it is (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), which the flow uses both to
recognise its own landed retry and to answer an idempotent replay, without a second read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from adapters.runtime.call_report import CallReport, report
from adapters.runtime.classify import Classified, classify
from adapters.runtime.clients import DeadlineExceeded, aws_call
from statemodel.attention import attention_key, due_queries
from statemodel.categories import ErrorCategory
from statemodel.events import Event, event_from_dict, event_to_dict
from statemodel.flows import ConditionFailed, Failed, Outcome, Settings, Write, Written
from statemodel.records import LastError, Message, Record, Status
from statemodel.stored import Stored

INDEX = "attention"
KEY = "message_id"
ATTENTION, ATTENTION_AT = "attention", "attention_at"  # the sparse index's partition and sort keys
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


# ---- the item codec ------------------------------------------------------------------------------


def lifecycle_attributes(record: Record) -> dict[str, Any]:
    """Every attribute a transition may set; None means the attribute is removed."""
    key = attention_key(record)
    error = record.last_error
    return {
        "status": record.status.value,
        "version": record.version,
        "updated_at": record.updated_at,
        "attempts": record.attempts,
        "exhausted": record.exhausted,
        "attempt_id": record.attempt_id,
        "lease_expires_at": record.lease_expires_at,
        "sqs_message_id": record.sqs_message_id,
        "last_error": None if error is None else {"category": error.category, "code": error.code},
        "attention": None if key is None else key[0],
        "attention_at": None if key is None else key[1],
    }


def message_attributes(message: Message) -> dict[str, Any]:
    values = attrs.asdict(message)
    values["attributes"] = dict(message.attributes)
    del values[KEY]
    return values


def stored_from_item(raw: dict[str, Any]) -> Stored:
    item = {name: _plain(_deserialize(value)) for name, value in raw.items()}
    message = Message(
        message_id=item[KEY],
        payload=item["payload"],
        attributes=tuple(sorted(item["attributes"].items())),
        correlation_id=item["correlation_id"],
        created_at=item["created_at"],
        request_hash=item["request_hash"],
        idempotency_key=item.get("idempotency_key"),
    )
    error = item.get("last_error")
    record = Record(
        message=message,
        status=Status(item["status"]),
        version=item["version"],
        updated_at=item["updated_at"],
        attempts=item["attempts"],
        attempt_id=item.get("attempt_id"),
        lease_expires_at=item.get("lease_expires_at"),
        sqs_message_id=item.get("sqs_message_id"),
        last_error=None if error is None else LastError(error["category"], error["code"]),
        exhausted=item["exhausted"],
    )
    history = tuple(event_from_dict(event, message) for event in item.get("history", []))
    return Stored(record, history)


def update_request(write: Write) -> dict[str, Any]:
    """The UpdateItem parameters (less TableName) that carry out one write."""
    names = {"#history": "history"}
    values: dict[str, Any] = {":history": write_history(write.events), ":empty": []}
    assignments = ["#history = list_append(if_not_exists(#history, :empty), :history)"]
    removals = []
    to_set = lifecycle_attributes(write.after)
    if write.before is None:
        to_set |= message_attributes(write.after.message)
    for name, value in to_set.items():
        if value is None and write.before is None:
            continue  # a new item has nothing to remove
        names[f"#{name}"] = name
        if value is None:
            removals.append(f"#{name}")
        else:
            assignments.append(f"#{name} = :{name}")
            values[f":{name}"] = value
    expected = write.expected
    if expected is None:
        names[f"#{KEY}"] = KEY
        condition = f"attribute_not_exists(#{KEY})"
    else:
        names |= {"#status": "status", "#version": "version", "#attempt_id": "attempt_id"}
        values |= {":x_status": expected.status.value, ":x_version": expected.version}
        condition = "#status = :x_status AND #version = :x_version AND "
        if expected.attempt_id is None:
            condition += "attribute_not_exists(#attempt_id)"
        else:
            condition += "#attempt_id = :x_attempt_id"
            values[":x_attempt_id"] = expected.attempt_id
    return {
        "Key": {KEY: {"S": write.message_id}},
        "UpdateExpression": "SET "
        + ", ".join(assignments)
        + (" REMOVE " + ", ".join(removals) if removals else ""),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {k: _serialize(v) for k, v in values.items()},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def write_history(events: tuple[Event, ...]) -> list[dict[str, Any]]:
    return [{k: v for k, v in event_to_dict(e).items() if v is not None} for e in events]


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; every number sendguard stores is whole."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# ---- the store -----------------------------------------------------------------------------------


@attrs.frozen
class DuePage:
    """One page of an index query: its records, and the call's report (with its failure, if any)."""

    records: tuple[Record, ...]
    call: CallReport


def _decode(item: dict[str, Any] | None) -> Stored | Classified | None:
    """An item as stored, None for no item, or (an item no write of ours could leave) a failure."""
    if not item:
        return None
    try:
        return stored_from_item(item)
    except (KeyError, ValueError, TypeError):
        return Classified(ErrorCategory.AMBIGUOUS, "UnreadableItem")


class DynamoStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        model = client.meta.service_model
        self._models = {name: model.operation_model(name) for name in ("UpdateItem", "GetItem", "Query")}

    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
        started = time.perf_counter()
        error: Classified | None = None
        with aws_call(deadline_ms) as call:
            try:
                self.client.update_item(TableName=self.table, **update_request(write))
                outcome: Outcome = Written()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    item: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
                    decoded = _decode(item)
                    if isinstance(decoded, Classified):
                        error, outcome = decoded, Failed(decoded.category, decoded.code)
                    else:
                        outcome = ConditionFailed(decoded.record if decoded else None)
                else:
                    error = classify(exc, self._models["UpdateItem"])
                    outcome = Failed(error.category, error.code)
            except (BotoCoreError, DeadlineExceeded) as exc:
                error = classify(exc, self._models["UpdateItem"])
                outcome = Failed(error.category, error.code)
        return outcome, report("dynamodb", "UpdateItem", call.attempts, started, error)

    def get(
        self, message_id: str, deadline_ms: int | None = None
    ) -> tuple[Stored | Failed | None, CallReport]:
        """A strongly consistent read, classified like a write: the stored record, None, or `Failed`."""
        started = time.perf_counter()
        error: Classified | None = None
        found: Stored | Failed | None = None
        with aws_call(deadline_ms) as call:
            try:
                response = self.client.get_item(
                    TableName=self.table, Key={KEY: {"S": message_id}}, ConsistentRead=True
                )
                decoded = _decode(response.get("Item"))
                if isinstance(decoded, Classified):
                    error = decoded
                else:
                    found = decoded
            except (ClientError, BotoCoreError, DeadlineExceeded) as exc:
                error = classify(exc, self._models["GetItem"])
        if error is not None:
            found = Failed(error.category, error.code)
        return found, report("dynamodb", "GetItem", call.attempts, started, error)

    def due(self, now: int, settings: Settings) -> Iterator[DuePage]:
        """The records one reconciler pass must look at, a page at a time: a query per sparse-index
        partition, never a scan. Confirmed records are not in the index, so they cost nothing here.
        A partition whose query fails past the SDK's retries ends with a page that carries no records
        and the classified failure, and the next partition is read: one bad partition does not stop
        the pass."""
        for partition, latest in due_queries(now, settings):
            yield from self._query(partition, latest)

    def _query(self, partition: str, latest: int) -> Iterator[DuePage]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": INDEX,
            "KeyConditionExpression": "#p = :p AND #s <= :s",
            "ExpressionAttributeNames": {"#p": "attention", "#s": "attention_at"},
            "ExpressionAttributeValues": {":p": {"S": partition}, ":s": {"N": str(latest)}},
        }
        while True:
            started = time.perf_counter()
            with aws_call(None) as call:
                try:
                    page = self.client.query(**request)
                except (ClientError, BotoCoreError, DeadlineExceeded) as exc:
                    error = classify(exc, self._models["Query"])
                    yield DuePage((), report("dynamodb", "Query", call.attempts, started, error))
                    return
            records = tuple(stored_from_item(item).record for item in page.get("Items", []))
            yield DuePage(records, report("dynamodb", "Query", call.attempts, started, None))
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def scan(self) -> Iterator[tuple[dict[str, Any], Stored | Exception]]:
        """Every item (the audit's read), each with what it decodes to, or why it does not."""
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table, ConsistentRead=True):
            for item in page.get("Items", []):
                try:
                    yield item, stored_from_item(item)
                except (KeyError, ValueError, TypeError) as exc:
                    yield item, exc
