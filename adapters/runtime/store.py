"""The record in DynamoDB: each `Write` effect becomes exactly one conditional UpdateItem (the item's
format, for the team's `TableLayout`, is `adapters.runtime.codec`'s). A create whose body is too
large to keep in the record writes the body first, once (`adapters.runtime.bodies`); every read of
a record reads such a body from where the record says it is.

The condition is the write's `Expectation` — status, version and attempt id as the flow last saw them —
or, for the create, that no item has the key. A failed condition returns the item as it is
(`ReturnValuesOnConditionCheckFailure=ALL_OLD`), which the flow uses both to recognise its own landed
retry and to answer an idempotent replay, without a second read. An item with the key that is not a
sendguard record (the team's own) is `NotARecord`: a create on it, or a read of it, raises that and
writes nothing (the caller's bad input, not an AWS failure).

The records a reconciler pass looks at are read by `adapters.runtime.due_index`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any, Self

from botocore.exceptions import ClientError

from adapters.runtime.bodies import Bodies, S3Bodies
from adapters.runtime.call_report import CallReport, call, outcome_of
from adapters.runtime.classify import Classified, Classifier, classify, failed
from adapters.runtime.clients import now_ms
from adapters.runtime.codec import (
    body_apart,
    body_at,
    create_request,
    created_item,
    is_record,
    past_retention,
    stored_from_item,
    update_request,
)
from adapters.runtime.layout import TableLayout
from statemodel.categories import ErrorCategory, Failure
from statemodel.flows import ConditionFailed, Outcome, Write, Written
from statemodel.keys import Key
from statemodel.records import Message
from statemodel.stored import Stored
from statemodel.validation import message_problems

__all__ = ["DynamoStore", "NotARecord", "decode"]

BODY_MISSING = "BodyMissing"  # a record names a body that is not there (it is written first: never)
BODY_MISMATCH = "BodyMismatch"  # a record's body, attributes or group no longer hash to what was accepted


class NotARecord(Exception):
    """The item under the key is not a sendguard record: the team's own, without sendguard's
    bookkeeping. `DynamoStore.get` raises it, and so does a create whose key such an item holds
    (nothing is written). A write to a record that such an item has since replaced fails with
    `failure` instead: the flow that made it ends there."""

    failure = Failure(ErrorCategory.PERMANENT, "NotAnOutboxRecord")

    def __init__(self) -> None:
        super().__init__("the item under this key is not a sendguard record")


# ---- the store -----------------------------------------------------------------------------------


def decode(
    item: dict[str, Any] | None, layout: TableLayout, body: str | None = None, queue: str | None = None
) -> Stored | Classified | None:
    """An item as stored (`body`: its out-of-line body's text; `queue`: the queue of a record that
    names none), None for no item, or a failure: an item no write of ours could leave, or a record
    whose message no longer hashes to what was accepted (a body swapped, an attribute rewritten:
    never sent, never answered for). The team's own item (no sendguard bookkeeping) under the key
    raises `NotARecord`."""
    if not item:
        return None
    if not is_record(item):
        raise NotARecord
    try:
        stored = stored_from_item(item, layout, body, queue)
    except (KeyError, ValueError, TypeError):
        return failed(ErrorCategory.AMBIGUOUS, "UnreadableItem")
    if message_problems(stored.record.message):
        return failed(ErrorCategory.PERMANENT, BODY_MISMATCH)
    return stored


class DynamoStore:
    """The records of one table (a `statemodel.ports.RecordStore`). `classify` files each failed call
    (`adapters.runtime.classify`)."""

    def __init__(
        self,
        client: Any,
        table: str,
        layout: TableLayout | None = None,
        *,
        classify: Classifier = classify,
        s3: S3Bodies | None = None,
        queue_url: str | None = None,
        retention_days: int = 0,
    ) -> None:
        """`s3`: the body bucket, for bodies too large for a body item (without it, they are refused).
        `queue_url`: the queue of records written before records named their queue (the queue this
        store's records were sent to then). `retention_days`: how long after its acceptance a
        confirmed record and a body item may be deleted by the table's TTL (0: never; `codec`)."""
        self.client = client
        self.table = table
        self.layout = layout or TableLayout()
        self.queue_url = queue_url
        self.retention_days = retention_days
        self.classify = classify
        self.item: Mapping[str, Any] | None = None  # the team's attributes a create writes (`with_item`)
        self.bodies = Bodies(
            client, table, self.layout, s3=s3, retention_days=retention_days, classify=classify
        )

    def with_item(self, item: Mapping[str, Any] | None) -> Self:
        """This store, its creates writing `item` (the team's own attributes) with the record: what
        `Outbox.send(item=...)` runs its flow on, so that `perform` is the port's. A shallow copy:
        the client, the bodies and whatever else the store holds are shared."""
        twin = copy.copy(self)
        twin.item = item
        return twin

    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
        if write.before is None:
            created, body_call = self.create_item(write, deadline_ms)
            if isinstance(created, Classified):
                assert body_call is not None
                return outcome_of(created), body_call
            request = create_request(created, self.layout)
        else:
            request = self.update_request(write)

        def condition_failed(exc: ClientError) -> ConditionFailed | Classified | None:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                return None
            old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            try:
                decoded = self._whole(old, deadline_ms, write.before.message if write.before else None)
            except NotARecord as not_a_record:
                if write.before is None:
                    raise  # a create on the team's own item: nothing was written
                return Classified(not_a_record.failure)
            return (
                decoded
                if isinstance(decoded, Classified)
                else ConditionFailed(decoded.record if decoded else None)
            )

        written: Outcome | Classified
        written, done = call(
            self.client,
            "dynamodb",
            "UpdateItem",
            lambda: self.client.update_item(TableName=self.table, **request),
            deadline_ms,
            self.classify,
            answered=lambda _: Written(),
            refusal=condition_failed,
        )
        return outcome_of(written), done

    def update_request(self, write: Write) -> dict[str, Any]:
        """The UpdateItem parameters (less TableName) that carry out one write to a record
        (`adapters.runtime.codec.update_request`); a create's are `codec.create_request`'s."""
        return update_request(write, self.layout, retention_days=self.retention_days)

    def create_item(
        self, write: Write, deadline_ms: int | None
    ) -> tuple[Mapping[str, Any] | Classified, CallReport | None]:
        """The item a create (`write`) puts, the team's `item` in it: built once, measured, its body
        written first where the record cannot keep it (`place_body`; the report of that write), or
        why that body could not be written. `perform` puts it; `Outbox.pending_put` hands it to the
        team's transaction."""
        created = created_item(write, self.layout, self.item)
        placed, body_call = self.place_body(write, created, deadline_ms)
        if isinstance(placed, Classified):
            return placed, body_call
        return self.apart(created, placed), body_call

    def place_body(
        self, write: Write, created: Mapping[str, Any], deadline_ms: int | None
    ) -> tuple[str | Classified | None, CallReport | None]:
        """Where the body of a create goes (`Bodies.place`; `created`: the item it leaves, body
        inline): None for the record itself, else the name of the body it wrote first (or why it
        could not)."""
        return self.bodies.place(write.after.message, created, deadline_ms)

    def apart(self, created: Mapping[str, Any], at: str | None) -> Mapping[str, Any]:
        """The created item as written: its body in it (`at` None), or named where it was placed."""
        return created if at is None else body_apart(created, self.layout, at)

    def get(self, key: Key, deadline_ms: int | None = None) -> tuple[Stored | Failure | None, CallReport]:
        """A strongly consistent read, classified like a write: the stored record (its body read
        from where it is), None (none, or one past its retention), or its `Failure`. The team's own item
        under the key raises `NotARecord`."""

        def whole(response: dict[str, Any]) -> Stored | Classified | None:
            item = response.get("Item")
            if item and past_retention(item, now_ms()):
                item = None  # confirmed, and past the retention: as good as deleted
            return self._whole(item, deadline_ms)

        found, done = call(
            self.client,
            "dynamodb",
            "GetItem",
            lambda: self.client.get_item(TableName=self.table, Key=self.layout.key(key), ConsistentRead=True),
            deadline_ms,
            self.classify,
            answered=whole,
        )
        return (found.failure if isinstance(found, Classified) else found), done

    def _whole(
        self, item: dict[str, Any] | None, deadline_ms: int | None, known: Message | None = None
    ) -> Stored | Classified | None:
        """An item decoded, its out-of-line body read. `known`: the message a write expected to find
        under the key; a record is never re-created, so a stored record of the same message has the
        same body, and it is not read again."""
        at = body_at(item) if item and is_record(item) else None
        if at is None:
            return decode(item, self.layout, queue=self.queue_url)
        if known is not None:
            decoded = decode(item, self.layout, known.payload, self.queue_url)
            if isinstance(decoded, Stored) and decoded.record.message == known:
                return decoded
        assert item is not None
        key = self.layout.key_of(item)
        texts, reports = self.bodies.read([(key, at)], deadline_ms)
        if (key, at) not in texts:
            errors = [r.error for r in reports if r.error is not None]
            return errors[0] if errors else failed(ErrorCategory.AMBIGUOUS, BODY_MISSING)
        return decode(item, self.layout, texts[(key, at)], self.queue_url)

    def scan(self) -> Iterator[tuple[dict[str, Any], Stored | Exception]]:
        """Every record (the audit's read), each with what it decodes to (its body read from where it
        is), or why it does not. The team's own items and body items (without sendguard's
        bookkeeping) are not records, and records past their retention are as good as deleted:
        skipped."""
        paginator = self.client.get_paginator("scan")
        now = now_ms()
        for page in paginator.paginate(TableName=self.table, ConsistentRead=True):
            for item in page.get("Items", []):
                if not is_record(item) or past_retention(item, now):
                    continue
                text = None
                try:
                    if (at := body_at(item)) is not None:
                        key = self.layout.key_of(item)
                        texts, reports = self.bodies.read([(key, at)], None)
                        text = texts.get((key, at))
                        why = [r.error.code for r in reports if r.error is not None]
                        if text is None and why:
                            raise ValueError(f"its body {at!r} was not read: {why[0]}")
                    yield item, stored_from_item(item, self.layout, text, self.queue_url)
                except (KeyError, ValueError, TypeError) as exc:
                    yield item, exc
