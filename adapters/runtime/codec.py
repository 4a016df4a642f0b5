"""The record as a DynamoDB item, for a `TableLayout`: the one item format.

An item holds, under the layout's names, the key (the message id), the status and the body; under
`sg_` names the rest of the message (attributes, correlation id, creation time, request hash, FIFO
group), the lifecycle fields of the projection, the history (a list each write appends to) and the
sparse index keys `sg_attention` / `sg_attention_at` (`statemodel.attention`). Every other attribute
is the team's: the create may write the team's `item` attributes, and no later write names them, so
they stay byte for byte.

The body and the message are written once, by the create, and never again: later writes SET only
lifecycle attributes (status, `sg_version` … and one appended history entry), so a lifecycle write's
request is small whatever the body's size. DynamoDB still bills an UpdateItem at the item's size; how
far this format gets towards "the payload written once" is said in docs/library.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from adapters.runtime.layout import BOOKKEEPING_PREFIX, TableLayout
from statemodel.attention import attention_key
from statemodel.events import Event, event_from_dict, event_to_dict
from statemodel.flows import Write
from statemodel.records import LastError, Message, Record, Status
from statemodel.stored import Stored

P = BOOKKEEPING_PREFIX
VERSION, UPDATED_AT, ATTEMPTS, EXHAUSTED = f"{P}version", f"{P}updated_at", f"{P}attempts", f"{P}exhausted"
ATTEMPT_ID, LEASE, SQS_ID, LAST_ERROR = (
    f"{P}attempt_id",
    f"{P}lease_expires_at",
    f"{P}sqs_message_id",
    f"{P}last_error",
)
HISTORY, ATTENTION, ATTENTION_AT = f"{P}history", f"{P}attention", f"{P}attention_at"
ATTRIBUTES, CORRELATION_ID, CREATED_AT = f"{P}attributes", f"{P}correlation_id", f"{P}created_at"
REQUEST_HASH, IDEMPOTENCY_KEY, GROUP_ID = f"{P}request_hash", f"{P}idempotency_key", f"{P}group_id"
INDEX = "attention"  # the sparse index's name; its keys are ATTENTION (hash) and ATTENTION_AT (range)

_DEFAULT = TableLayout()
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def lifecycle_attributes(record: Record, layout: TableLayout) -> dict[str, Any]:
    """Every attribute a transition may set; None means the attribute is removed."""
    key = attention_key(record, layout.shards)
    error = record.last_error
    return {
        layout.status_attribute: record.status.value,
        VERSION: record.version,
        UPDATED_AT: record.updated_at,
        ATTEMPTS: record.attempts,
        EXHAUSTED: record.exhausted,
        ATTEMPT_ID: record.attempt_id,
        LEASE: record.lease_expires_at,
        SQS_ID: record.sqs_message_id,
        LAST_ERROR: None if error is None else {"category": error.category, "code": error.code},
        ATTENTION: None if key is None else key[0],
        ATTENTION_AT: None if key is None else key[1],
    }


def message_attributes(message: Message, layout: TableLayout) -> dict[str, Any]:
    """What the create writes once: the body and the rest of the message (not the key)."""
    return {
        layout.body_attribute: message.payload,
        ATTRIBUTES: dict(message.attributes),
        CORRELATION_ID: message.correlation_id,
        CREATED_AT: message.created_at,
        REQUEST_HASH: message.request_hash,
        IDEMPOTENCY_KEY: message.idempotency_key,
        GROUP_ID: message.group_id,
    }


def is_record(raw: Mapping[str, Any]) -> bool:
    """Whether an item carries sendguard's bookkeeping (a team's own item does not)."""
    return VERSION in raw


def stored_from_item(raw: Mapping[str, Any], layout: TableLayout | None = None) -> Stored:
    """Raises KeyError, ValueError or TypeError for an item no write of sendguard's could leave."""
    layout = layout or _DEFAULT
    item = {name: _plain(_deserialize(value)) for name, value in raw.items() if layout.owns(name)}
    message = Message(
        message_id=item[layout.partition_key],
        payload=item[layout.body_attribute],
        attributes=tuple(sorted(item[ATTRIBUTES].items())),
        correlation_id=item[CORRELATION_ID],
        created_at=item[CREATED_AT],
        request_hash=item[REQUEST_HASH],
        idempotency_key=item.get(IDEMPOTENCY_KEY),
        group_id=item.get(GROUP_ID),
    )
    error = item.get(LAST_ERROR)
    record = Record(
        message=message,
        status=Status(item[layout.status_attribute]),
        version=item[VERSION],
        updated_at=item[UPDATED_AT],
        attempts=item[ATTEMPTS],
        attempt_id=item.get(ATTEMPT_ID),
        lease_expires_at=item.get(LEASE),
        sqs_message_id=item.get(SQS_ID),
        last_error=None if error is None else LastError(error["category"], error["code"]),
        exhausted=item[EXHAUSTED],
    )
    history = tuple(event_from_dict(event, message) for event in item.get(HISTORY, []))
    return Stored(record, history)


def foreign_attributes(raw: Mapping[str, Any], layout: TableLayout) -> dict[str, Any]:
    """The team's attributes of an item, as stored (low-level values): sendguard never changes them."""
    return {name: value for name, value in raw.items() if not layout.owns(name)}


def index_keys(raw: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """The sparse index keys an item carries."""
    return (
        raw[ATTENTION]["S"] if ATTENTION in raw else None,
        int(raw[ATTENTION_AT]["N"]) if ATTENTION_AT in raw else None,
    )


def serialize(value: Any) -> dict[str, Any]:
    serialized: dict[str, Any] = dict(_serialize(value))
    return serialized


def _creation(write: Write, layout: TableLayout, item: Mapping[str, Any] | None) -> dict[str, Any]:
    values = {**(item or {}), **message_attributes(write.after.message, layout)}
    values |= lifecycle_attributes(write.after, layout)
    values[HISTORY] = write_history(write.events)
    return {name: value for name, value in values.items() if value is not None}


def update_request(
    write: Write, layout: TableLayout | None = None, item: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The UpdateItem parameters (less TableName) that carry out one write. `item`: the team's own
    attributes, written by a create only."""
    layout = layout or _DEFAULT
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    assignments: list[str] = []
    removals: list[str] = []

    def name(attribute: str) -> str:
        placeholder = f"#n{len(names)}"
        names[placeholder] = attribute
        return placeholder

    if write.before is None:
        to_set = _creation(write, layout, item)
    else:
        to_set = lifecycle_attributes(write.after, layout)
        history = name(HISTORY)
        values |= {":history": write_history(write.events), ":empty": []}
        assignments.append(f"{history} = list_append(if_not_exists({history}, :empty), :history)")
    for index, (attribute, value) in enumerate(to_set.items()):
        if value is None:
            removals.append(name(attribute))
        else:
            assignments.append(f"{name(attribute)} = :v{index}")
            values[f":v{index}"] = value
    expected = write.expected
    if expected is None:
        condition = f"attribute_not_exists({name(layout.partition_key)})"
    else:
        values |= {":x_status": expected.status.value, ":x_version": expected.version}
        condition = f"{name(layout.status_attribute)} = :x_status AND {name(VERSION)} = :x_version AND "
        if expected.attempt_id is None:
            condition += f"attribute_not_exists({name(ATTEMPT_ID)})"
        else:
            condition += f"{name(ATTEMPT_ID)} = :x_attempt_id"
            values[":x_attempt_id"] = expected.attempt_id
    return {
        "Key": layout.key(write.message_id),
        "UpdateExpression": "SET "
        + ", ".join(assignments)
        + (" REMOVE " + ", ".join(removals) if removals else ""),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {k: _serialize(v) for k, v in values.items()},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def put_request(
    write: Write, layout: TableLayout, table: str, item: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A create as a transaction's Put (the low-level client's shape): the whole item, if no item
    has its key yet."""
    assert write.before is None, "only a create can be a Put"
    values = {**_creation(write, layout, item)}
    whole = {**layout.key(write.message_id), **{k: _serialize(v) for k, v in values.items()}}
    return {
        "TableName": table,
        "Item": whole,
        "ConditionExpression": "attribute_not_exists(#key)",
        "ExpressionAttributeNames": {"#key": layout.partition_key},
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
