"""An inbox record as a DynamoDB item, for a `TableLayout`: the one item format of the consumer side.

An inbox record sits in the team's table under its own key: the layout's partition key holds the
inbox's key prefix (`inbox#` by default) and the message's key, and a table with a sort key holds
the layout's `sort_key_value` there — apart from the team's rows and from outbox records (whose
keys a team chooses without the prefix). Everything it holds is named `sg_inbox_…`, so neither the
outbox's tools (`codec.is_record` looks for `sg_version`) nor the team's own attributes can mistake
it. A FAILED record carries the `attention` index's keys (`sg_attention` = `INBOX_FAILED`,
`sg_attention_at` = when it gave up), so `sendguard inbox-failed` finds it without a scan on a table
that has the index; the outbox's queries read other partitions of it and never meet one.

Each write is one UpdateItem (or, for the transactional commit, one Update of the team's
TransactWriteItems) conditioned on the record as the flow read it — status, version and attempt
id, or no item at the key — that sets the lifecycle attributes and appends its events to the
history; the message's attributes are written by the first write only.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from adapters.runtime.codec import ATTENTION, ATTENTION_AT
from adapters.runtime.layout import TableLayout
from statemodel.categories import ErrorCategory, Failure
from statemodel.inbox.events import InboxStored, event_from_dict, event_to_dict
from statemodel.inbox.flows import InboxWrite
from statemodel.inbox.records import InboxMessage, InboxPhase, InboxRecord
from statemodel.keys import Key

P = "sg_inbox_"
STATUS, VERSION, UPDATED_AT, RECEIVES = f"{P}status", f"{P}version", f"{P}updated_at", f"{P}receives"
ATTEMPT_ID, LEASE, RESULT, LAST_ERROR = (
    f"{P}attempt_id",
    f"{P}lease_expires_at",
    f"{P}result",
    f"{P}last_error",
)
HISTORY, MESSAGE_ID, BODY_HASH, GROUP_ID = f"{P}history", f"{P}message_id", f"{P}body_hash", f"{P}group_id"
# What the handler or DynamoDB said of the last error (at most classify.MESSAGE_BOUND characters), for
# the operator's list; the model's `last_error` stays (category, code). Records written before have none.
LAST_ERROR_MESSAGE = f"{P}last_error_message"
EXPIRES = f"{P}expires_at"  # epoch seconds, for the team's TTL (set on DONE when `keep_done_seconds`)
FAILED_PARTITION = "INBOX_FAILED"  # the `attention` index partition of FAILED inbox records
DEFAULT_KEY_PREFIX = "inbox#"

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def record_key(message_id: str, prefix: str = DEFAULT_KEY_PREFIX) -> Key:
    """The key of the inbox record of the message whose inbox key is `message_id`."""
    return Key(prefix + message_id)


def is_inbox_record(raw: Mapping[str, Any]) -> bool:
    return VERSION in raw


def lifecycle_attributes(record: InboxRecord, expires_at: int | None = None) -> dict[str, Any]:
    """Every attribute a transition sets; None means the attribute is removed."""
    error = record.last_error
    failed = record.phase is InboxPhase.FAILED
    return {
        STATUS: record.phase.value,
        VERSION: record.version,
        UPDATED_AT: record.updated_at,
        RECEIVES: record.receives,
        ATTEMPT_ID: record.attempt_id,
        LEASE: record.lease_expires_at,
        RESULT: record.result,
        LAST_ERROR: None if error is None else {"category": error.category.value, "code": error.code},
        ATTENTION: FAILED_PARTITION if failed else None,
        ATTENTION_AT: record.updated_at if failed else None,
        EXPIRES: expires_at if record.phase is InboxPhase.DONE else None,
    }


def update_request(
    write: InboxWrite,
    layout: TableLayout,
    prefix: str = DEFAULT_KEY_PREFIX,
    expires_at: int | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    """The UpdateItem parameters (less TableName) of one write; a transaction's `Update` has the same.
    `expires_at`: the TTL a DONE record gets (epoch seconds), if the inbox keeps DONE records for a
    while only. `error_message`: what was said of the failure this write records, if it records one
    (a write that records none leaves the stored message as it is; one without a last error removes it)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    assignments: list[str] = []
    removals: list[str] = []

    def name(attribute: str) -> str:
        placeholder = f"#n{len(names)}"
        names[placeholder] = attribute
        return placeholder

    to_set = lifecycle_attributes(write.after, expires_at)
    if write.after.last_error is None:
        to_set[LAST_ERROR_MESSAGE] = None
    elif any(getattr(event, "failure", None) is not None for event in write.events):
        to_set[LAST_ERROR_MESSAGE] = error_message  # None: nothing said of this failure, none kept
    if write.before is None:
        message = write.after.message
        to_set |= {MESSAGE_ID: message.message_id, BODY_HASH: message.body_hash, GROUP_ID: message.group_id}
    history = name(HISTORY)
    values |= {":history": [event_dict(e) for e in write.events], ":empty": []}
    assignments.append(f"{history} = list_append(if_not_exists({history}, :empty), :history)")
    for index, (attribute, value) in enumerate(to_set.items()):
        if value is None:
            if write.before is not None:
                removals.append(name(attribute))
        else:
            assignments.append(f"{name(attribute)} = :v{index}")
            values[f":v{index}"] = value
    before = write.before
    if before is None:
        condition = f"attribute_not_exists({name(layout.partition_key)})"
    else:
        values |= {":x_status": before.phase.value, ":x_version": before.version}
        condition = f"{name(STATUS)} = :x_status AND {name(VERSION)} = :x_version AND "
        if before.attempt_id is None:
            condition += f"attribute_not_exists({name(ATTEMPT_ID)})"
        else:
            condition += f"{name(ATTEMPT_ID)} = :x_attempt"
            values[":x_attempt"] = before.attempt_id
    return {
        "Key": layout.key(record_key(write.after.message_id, prefix)),
        "UpdateExpression": "SET "
        + ", ".join(assignments)
        + (" REMOVE " + ", ".join(removals) if removals else ""),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {k: _SERIALIZER.serialize(v) for k, v in values.items()},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def error_message_of(raw: Mapping[str, Any]) -> str | None:
    """What was said of an item's last error (low-level values), if the write that recorded it knew."""
    value = raw.get(LAST_ERROR_MESSAGE)
    text = value.get("S") if isinstance(value, Mapping) else None
    return text if isinstance(text, str) else None


def event_dict(event: Any) -> dict[str, Any]:
    return {k: v for k, v in event_to_dict(event).items() if v is not None}


def stored_from_item(raw: Mapping[str, Any]) -> InboxStored:
    """The inbox record an item holds (low-level values). Raises KeyError / ValueError for an item no
    write of the inbox could have left."""
    item = {k: _plain(_DESERIALIZER.deserialize(v)) for k, v in raw.items()}
    message = InboxMessage(item[MESSAGE_ID], item[BODY_HASH], item.get(GROUP_ID))
    error = item.get(LAST_ERROR)
    record = InboxRecord(
        message=message,
        phase=InboxPhase(item[STATUS]),
        version=int(item[VERSION]),
        updated_at=int(item[UPDATED_AT]),
        receives=int(item.get(RECEIVES, 0)),
        attempt_id=item.get(ATTEMPT_ID),
        lease_expires_at=item.get(LEASE),
        result=item.get(RESULT),
        last_error=None if error is None else Failure(ErrorCategory(error["category"]), error["code"]),
    )
    history = tuple(event_from_dict(entry, message) for entry in item.get(HISTORY, []))
    return InboxStored(record, history)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
