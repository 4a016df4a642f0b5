"""The record as a DynamoDB item, for a `TableLayout`: the one item format.

An item holds, under the layout's names, the key (`TableLayout.key`), the status and — when it is kept
inline — the body; under `sg_` names the rest of the message, packed into one string (`sg_message`:
attributes, correlation id, creation time, request hash, the queue it is sent to, idempotency key,
FIFO group, caller), the lifecycle fields a write's condition or the index reads, or that an operator
looks for (status, `sg_version`, `sg_attempt_id` (its compact form), `sg_lease_expires_at`, `sg_last_error`,
`sg_exhausted` while true), the history (a list each write appends one compact entry per event to)
and the sparse index keys `sg_attention` / `sg_attention_at` (`statemodel.attention`). Nothing is
said twice: the time of the last change, the attempt count and the SQS message id are the history's
(`_derived`), and its entries leave out what the item holds already (`adapters.runtime.compact`).

Records written before the compact form (separate `sg_created_at`, `sg_request_hash` … attributes,
`sg_updated_at`, `sg_attempts`, `sg_sqs_message_id`, history entries as maps) read as they are; a
later write appends compact entries to their history and removes the attributes the history says,
so one history may hold both kinds of entry.

Every other attribute is the team's: the create may write the team's `item` attributes, and no
later write names them, so they stay byte for byte — and the team may change them
with its own writes (UpdateItem of its own names) while sendguard works the record: sendguard's writes
are conditioned on its own attributes only.

The body and the message are written once, by the create, and never again: later writes SET only
lifecycle attributes (status, `sg_version` … and one appended history entry). DynamoDB bills an
UpdateItem at the larger of the item before and after it, so a body kept in the record would be paid
again by every lifecycle write: only a small body stays inline. A larger one is written once, before
the record, to a body item of its own or to S3 (`adapters.runtime.bodies`), and the record names it
in `sg_body_at` instead of holding it.

A body item sits in the same table under the record's key, `#` and a nonce (`body_key`). A record's
key may hold `#` too, so a record and another record's body item could name the same key; they can
never overwrite each other (the create and the body's put are both conditioned on no item having the
key), and a reader tells them apart by what they hold (`is_record`: bookkeeping; `is_body_item`: a
body and none) — and reads a body only under its own record's key (`adapters.runtime.bodies.names`).
A body item holds the key and `sg_body`, carries no bookkeeping and no index keys, and nothing writes
it again.

Retention (`SENDGUARD_RETENTION_DAYS`, 0: never, the default): the table's TTL attribute
`sg_expires_at` (epoch seconds) is the message's acceptance (`sg_created_at`) plus the retention. A
record carries it only once confirmed: the confirm write sets it (`lifecycle_attributes`), no other
write does (any other removes it), and no write follows a confirm. A body item gets the same
`sg_expires_at` when it is written (`body_item`): it is never written again, and its record is
confirmed by then or — if it is still unconfirmed that late — needs an operator anyway
(docs/operations.md, Retention).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from adapters.runtime.compact import (
    MalformedRecord,
    history_entries,
    long_id,
    pack_message,
    packed_request,
    read_entries,
    short_id,
    unpack_message,
)
from adapters.runtime.layout import BOOKKEEPING_PREFIX, TableLayout
from statemodel.attention import attention_key
from statemodel.categories import ErrorCategory, Failure
from statemodel.decider import evolve_all
from statemodel.events import Accepted, Event, event_from_dict
from statemodel.flows import Write
from statemodel.keys import Key
from statemodel.records import Message, Phase, Record, Status
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
QUEUE = f"{P}queue"  # the queue URL every send of the record goes to
CALLER = f"{P}caller"  # who sent it, where the API keeps callers apart
# The message's fields above, packed (`compact.pack_message`): what a create writes in their place.
MESSAGE = f"{P}message"
EXPIRES_AT = f"{P}expires_at"  # the table's TTL attribute, epoch seconds: confirmed records and body items
DAY_SECONDS = 86_400
BODY_AT, BODY = f"{P}body_at", f"{P}body"  # where an out-of-line body is; a body item's text
INDEX = "attention"  # the sparse index's name; its keys are ATTENTION (hash) and ATTENTION_AT (range)
BODY_SEPARATOR = "#"  # between the record's key value and a body's nonce
# How `sg_body_at` names where a body is: `item:<nonce>` (a body item), `s3://<bucket>/<key>`.
ITEM_PREFIX, S3_PREFIX = "item:", "s3://"

_DEFAULT = TableLayout()
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def expires_at(message: Message, retention_days: int) -> int | None:
    """When the items of a message may go (`EXPIRES_AT`, epoch seconds): its acceptance plus the
    retention; None for a retention of 0 (never)."""
    return None if retention_days == 0 else message.created_at // 1000 + retention_days * DAY_SECONDS


def past_retention(raw: Mapping[str, Any], now_ms: int) -> bool:
    """Whether an item's `EXPIRES_AT` has passed: DynamoDB's TTL deletes it, within a few days, and
    until then the record's reads treat it as gone already (its body item may go first)."""
    return EXPIRES_AT in raw and int(raw[EXPIRES_AT]["N"]) <= now_ms // 1000


def lifecycle_attributes(record: Record, layout: TableLayout, retention_days: int = 0) -> dict[str, Any]:
    """Every attribute a transition may set; None means the attribute is removed. With a retention,
    `EXPIRES_AT` is set on a confirmed record only, and removed from every other."""
    key = attention_key(record, layout.shards)
    error = record.last_error
    retention: dict[str, Any] = {}
    if retention_days:
        confirmed = record.phase is Phase.CONFIRMED
        retention[EXPIRES_AT] = expires_at(record.message, retention_days) if confirmed else None
    return retention | {
        layout.status_attribute: record.status.value,
        VERSION: record.version,
        # Said by the history (`_derived`); a record written before said them twice: removed.
        UPDATED_AT: None,
        ATTEMPTS: None,
        SQS_ID: None,
        EXHAUSTED: record.exhausted or None,
        ATTEMPT_ID: None if record.attempt_id is None else short_id(record.attempt_id),
        LEASE: record.lease_expires_at,
        LAST_ERROR: None if error is None else {"category": error.category.value, "code": error.code},
        ATTENTION: None if key is None else key[0],
        ATTENTION_AT: None if key is None else key[1],
    }


def message_attributes(message: Message, layout: TableLayout, body_at: str | None = None) -> dict[str, Any]:
    """What the create writes once: the body (or, for a body kept elsewhere, where it is) and the
    rest of the message (not the key)."""
    body = {layout.body_attribute: message.payload} if body_at is None else {BODY_AT: body_at}
    return {**body, MESSAGE: pack_message(message)}


def is_record(raw: Mapping[str, Any]) -> bool:
    """Whether an item carries sendguard's bookkeeping (a team's own item does not)."""
    return VERSION in raw


def stored_from_item(
    raw: Mapping[str, Any],
    layout: TableLayout | None = None,
    body: str | None = None,
    queue: str | None = None,
) -> Stored:
    """The record an item holds. `body`: the text of a body kept out of the item (`body_at`), read
    from where it is. `queue`: the queue of a record written before records named theirs (the
    reader's own). Raises KeyError, ValueError or TypeError for an item no write of sendguard's
    could leave, and KeyError for an out-of-line body not given."""
    layout = layout or _DEFAULT
    key = layout.key_of(raw)
    item = {name: _plain(_deserialize(value)) for name, value in raw.items() if layout.owns(name)}
    payload = item[layout.body_attribute] if BODY_AT not in item else body
    if payload is None:
        raise KeyError(f"the body at {item[BODY_AT]!r} was not read")
    if MESSAGE in item:
        message = unpack_message(item[MESSAGE], key, payload)
        if message.queue is None:
            message = attrs.evolve(message, queue=queue)
    else:
        message = _legacy_message(item, key, payload, queue)
    history = read_entries(
        item.get(HISTORY, []), message, item.get(MESSAGE), lambda entry: event_from_dict(entry, message)
    )
    # What the history says, unless the item says it too (a record written before the compact form).
    derived = None if UPDATED_AT in item and ATTEMPTS in item else _derived(history)
    error = item.get(LAST_ERROR)
    record = Record(
        message=message,
        status=Status(item[layout.status_attribute]),
        version=item[VERSION],
        updated_at=item[UPDATED_AT] if UPDATED_AT in item or derived is None else derived.updated_at,
        attempts=item[ATTEMPTS] if ATTEMPTS in item or derived is None else derived.attempts,
        attempt_id=long_id(item[ATTEMPT_ID]) if ATTEMPT_ID in item else None,
        lease_expires_at=item.get(LEASE),
        sqs_message_id=item.get(SQS_ID) if SQS_ID in item or derived is None else derived.sqs_message_id,
        last_error=None if error is None else Failure(ErrorCategory(error["category"]), error["code"]),
        exhausted=_flag(item.get(EXHAUSTED, False)),
    )
    return Stored(record, history)


def _derived(history: tuple[Event, ...]) -> Record:
    """What the history projects to (`statemodel.decider.evolve_all`): where the item's time of
    change, attempt count and SQS message id come from (the item does not say them again)."""
    if not history or not isinstance(history[0], Accepted):
        raise MalformedRecord("a record's history starts with its Accepted")
    derived = evolve_all(None, history)
    assert derived is not None
    return derived


def _legacy_message(item: Mapping[str, Any], key: Key, payload: str, queue: str | None) -> Message:
    """The message of a record written before `sg_message`: a top-level attribute per field."""
    return Message(
        message_id=key.message_id,
        payload=payload,
        attributes=tuple(sorted(item[ATTRIBUTES].items())),
        correlation_id=item[CORRELATION_ID],
        created_at=item[CREATED_AT],
        request_hash=item[REQUEST_HASH],
        idempotency_key=item.get(IDEMPOTENCY_KEY),
        group_id=item.get(GROUP_ID),
        key=key if key.composite else None,
        queue=item.get(QUEUE, queue),
        caller=item.get(CALLER),
    )


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise MalformedRecord(f"{EXHAUSTED} is {value!r}, not a Boolean")
    return value


def named_queue(raw: Mapping[str, Any]) -> str | None:
    """The queue a record names (None: one written before records named theirs), of either format,
    from an item read whole or with `QUEUE` and `MESSAGE` projected. Raises ValueError for a packed
    message no write of sendguard's could leave."""
    if MESSAGE in raw:
        return packed_request(raw[MESSAGE]["S"])[1]
    return str(raw[QUEUE]["S"]) if QUEUE in raw else None


def created_request(raw: Mapping[str, Any]) -> tuple[str, str | None]:
    """The request hash and queue of a created item (a `put_request`'s, in the low-level shape),
    of either format. Raises KeyError, TypeError or ValueError for anything else."""
    if MESSAGE in raw:
        return packed_request(raw[MESSAGE]["S"])
    return str(raw[REQUEST_HASH]["S"]), (str(raw[QUEUE]["S"]) if QUEUE in raw else None)


def body_at(raw: Mapping[str, Any]) -> str | None:
    """Where an item's body is kept, when not in the item."""
    return str(raw[BODY_AT]["S"]) if BODY_AT in raw else None


def body_key(layout: TableLayout, key: Key, nonce: str) -> dict[str, dict[str, str]]:
    """A body item's key: beside its record, under the record's key and a nonce (in the sort key,
    when the layout has one)."""
    if layout.sort_key is None:
        return {layout.partition_key: {"S": f"{key.partition}{BODY_SEPARATOR}{nonce}"}}
    sort = layout.sort_key_value if key.sort is None else key.sort
    return {
        layout.partition_key: {"S": key.partition},
        layout.sort_key: {"S": f"{sort}{BODY_SEPARATOR}{nonce}"},
    }


def named_body_key(layout: TableLayout, key: Key, at: str) -> dict[str, dict[str, str]]:
    """The key of the body item a record names (`sg_body_at` = `item:<nonce>`)."""
    return body_key(layout, key, at.removeprefix(ITEM_PREFIX))


def body_item(
    layout: TableLayout, key: Key, nonce: str, text: str, expires: int | None = None
) -> dict[str, Any]:
    """A body item, whole: its key and its text, and when it may go (`expires_at`), nothing else."""
    item = {**body_key(layout, key, nonce), BODY: {"S": text}}
    return item if expires is None else item | {EXPIRES_AT: {"N": str(expires)}}


def is_body_item(raw: Mapping[str, Any]) -> bool:
    return BODY in raw and VERSION not in raw


def item_text(raw: Mapping[str, Any]) -> str:
    """A body item's text."""
    return str(raw[BODY]["S"])


def with_bodies(
    items: list[dict[str, Any]], layout: TableLayout, read_s3: Any = None
) -> list[dict[str, Any]]:
    """A table's items as a reader that knows nothing of body items sees them: the body items
    left out, and each record's out-of-line body put back in it, under the layout's body attribute
    (from its body item among `items`, or from S3 with `read_s3(location)` -> text). A record whose
    body is in neither keeps its `sg_body_at`, and does not decode."""

    def key_of(raw: Mapping[str, Any]) -> str:
        return repr([raw.get(name) for name in layout.key_names])

    texts = {key_of(item): item_text(item) for item in items if is_body_item(item)}
    whole: list[dict[str, Any]] = []
    for item in items:
        if is_body_item(item):
            continue
        at = body_at(item) if is_record(item) else None
        text: str | None = None
        if at is not None and at.startswith(ITEM_PREFIX):
            text = texts.get(key_of(named_body_key(layout, layout.key_of(item), at)))
        elif at is not None and read_s3 is not None:
            text = read_s3(at)
        if text is not None:
            item = {k: v for k, v in item.items() if k != BODY_AT} | {layout.body_attribute: {"S": text}}
        whole.append(item)
    return whole


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


def _creation(
    write: Write, layout: TableLayout, item: Mapping[str, Any] | None, body_at: str | None
) -> dict[str, Any]:
    values = {**(item or {}), **message_attributes(write.after.message, layout, body_at)}
    values |= lifecycle_attributes(write.after, layout)
    values[HISTORY] = write_history(write)
    return {name: value for name, value in values.items() if value is not None}


def update_request(
    write: Write,
    layout: TableLayout | None = None,
    item: Mapping[str, Any] | None = None,
    body_at: str | None = None,
    retention_days: int = 0,
) -> dict[str, Any]:
    """The UpdateItem parameters (less TableName) that carry out one write. `item`: the team's own
    attributes, and `body_at`: where the body was written when not in the record, both for a create
    only. `retention_days`: how long a confirmed record is kept (0: for ever)."""
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
        to_set = _creation(write, layout, item, body_at)
    else:
        to_set = lifecycle_attributes(write.after, layout, retention_days)
        history = name(HISTORY)
        values |= {":history": write_history(write), ":empty": []}
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
            # in either form: its compact one (`compact.short_id`), or as a record written before says it
            short = short_id(expected.attempt_id)
            values[":x_attempt_id"] = expected.attempt_id
            if short == expected.attempt_id:
                condition += f"{name(ATTEMPT_ID)} = :x_attempt_id"
            else:
                condition += f"{name(ATTEMPT_ID)} IN (:x_attempt_id, :x_attempt_short)"
                values[":x_attempt_short"] = short
    return {
        "Key": layout.key(write.after.message.record_key),
        "UpdateExpression": "SET "
        + ", ".join(assignments)
        + (" REMOVE " + ", ".join(removals) if removals else ""),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {k: _serialize(v) for k, v in values.items()},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def put_request(
    write: Write,
    layout: TableLayout,
    table: str,
    item: Mapping[str, Any] | None = None,
    body_at: str | None = None,
) -> dict[str, Any]:
    """A create as a transaction's Put (the low-level client's shape): the whole item, if no item
    has its key yet."""
    return {
        "TableName": table,
        "Item": created_item(write, layout, item, body_at),
        "ConditionExpression": "attribute_not_exists(#key)",
        "ExpressionAttributeNames": {"#key": layout.partition_key},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def created_item(
    write: Write,
    layout: TableLayout,
    item: Mapping[str, Any] | None = None,
    body_at: str | None = None,
) -> dict[str, Any]:
    """The whole item a create leaves, in the low-level client's shape."""
    assert write.before is None, "only a create makes an item"
    values = _creation(write, layout, item, body_at)
    return {**layout.key(write.after.message.record_key), **{k: _serialize(v) for k, v in values.items()}}


def write_history(write: Write) -> list[str]:
    """The history entries one write appends (`adapters.runtime.compact.history_entries`)."""
    fenced = None if write.before is None else write.before.attempt_id
    return history_entries(write.events, write.after.message.created_at, fenced)


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; every number sendguard stores is whole."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
