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

The `attention` index projects keys only: an entry stays about 100 bytes, one write unit whatever
the message's size. A pass reads the records an index page names by key (`BatchGetItem`, strongly
consistent), and keeps those still where the index saw them; a record that moved since (the index is
eventually consistent) is left to the query that finds it where it is now.
"""

from __future__ import annotations

import json
import zlib
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import attrs
from botocore.exceptions import ClientError

from adapters.runtime.batch_get import batch_get
from adapters.runtime.bodies import ITEM_PREFIX, LONGEST_BODY_AT, POINTER_REFUSED, S3Bodies, TableBodies
from adapters.runtime.call_report import CallReport, call, outcome_of, refused
from adapters.runtime.classify import Classified, Classifier, classify, failed
from adapters.runtime.clients import now_ms
from adapters.runtime.codec import (
    ATTENTION,
    ATTENTION_AT,
    BODY_AT,
    INDEX,
    body_at,
    created_item,
    expires_at,
    index_keys,
    is_record,
    past_retention,
    stored_from_item,
    update_request,
)
from adapters.runtime.item_size import Placement, item_size, placement
from adapters.runtime.layout import TableLayout
from statemodel.attention import due_queries
from statemodel.categories import ErrorCategory, Failure
from statemodel.flows import ConditionFailed, Outcome, Settings, Write, Written
from statemodel.keys import Key
from statemodel.records import Message, Record
from statemodel.stored import Stored
from statemodel.validation import message_problems

__all__ = ["DuePage", "DynamoStore", "NotARecord"]

BODY_MISSING = "BodyMissing"  # a record names a body that is not there (it is written first: never)
BODY_MISMATCH = "BodyMismatch"  # a record's body, attributes or group no longer hash to what was accepted
TOO_LARGE = "BodyTooLarge"  # a body that fits nowhere (validation refuses it before)
PAGE = 25  # records a due query returns at a time: the partitions take turns page by page


class NotARecord(Exception):
    """The item under the key is not a sendguard record: the team's own, without sendguard's
    bookkeeping. `DynamoStore.get` raises it, and so does a create whose key such an item holds
    (nothing is written). A write to a record that such an item has since replaced fails with
    `failure` instead: the flow that made it ends there."""

    failure = Failure(ErrorCategory.PERMANENT, "NotAnOutboxRecord")

    def __init__(self) -> None:
        super().__init__("the item under this key is not a sendguard record")


# ---- the store -----------------------------------------------------------------------------------


@attrs.frozen
class DuePage:
    """One page of an index query: its records, and the call's report (with its failure, if any)."""

    records: tuple[Record, ...]
    call: CallReport  # the index query's
    reads: tuple[CallReport, ...] = ()  # the reads of its records and their bodies


def _decode(
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
    """The records of one table. `classify` files each failed call (`adapters.runtime.classify`)."""

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
        self.body_items = TableBodies(client, table, self.layout, classify=classify)
        self.s3 = s3

    def perform(
        self, write: Write, deadline_ms: int | None, item: Mapping[str, Any] | None = None
    ) -> tuple[Outcome, CallReport]:
        """`item`: the team's own attributes, which a create writes with the record."""
        at: str | None = None
        if write.before is None:
            placed, body_call = self.place_body(write, deadline_ms, item)
            if isinstance(placed, Classified):
                assert body_call is not None
                return outcome_of(placed), body_call
            at = placed
        request = self.update_request(write, item, at)

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

    def update_request(
        self, write: Write, item: Mapping[str, Any] | None = None, body_at: str | None = None
    ) -> dict[str, Any]:
        """The UpdateItem parameters (less TableName) that carry out one write; `item`, the team's
        own attributes, and `body_at`, where its body was written (None: in the record), go with a
        create only (`adapters.runtime.codec.update_request`)."""
        create = write.before is None
        return update_request(
            write, self.layout, item if create else None, body_at if create else None, self.retention_days
        )

    def place_body(
        self, write: Write, deadline_ms: int | None, item: Mapping[str, Any] | None = None
    ) -> tuple[str | Classified | None, CallReport | None]:
        """Where a create's body goes (`body_placement`): None for the record itself, else the name
        of the body it wrote first (or why it could not)."""
        message = write.after.message
        where = self.body_placement(write, item)
        if where is Placement.INLINE:
            return None, None
        if where is None:
            too_large = failed(ErrorCategory.PERMANENT, TOO_LARGE)
            return too_large, refused("dynamodb", "PutItem", too_large)
        store = self.body_items if where is Placement.ITEM or self.s3 is None else self.s3
        return store.put(message.record_key, message.payload, deadline_ms, self._expires(message))

    def _expires(self, message: Message) -> int | None:
        return expires_at(message, self.retention_days)

    def body_placement(self, write: Write, item: Mapping[str, Any] | None = None) -> Placement | None:
        """Where a create's body belongs (`adapters.runtime.item_size.placement`), by the sizes of the
        record with it and without it, and of its body item."""
        message = write.after.message
        created = created_item(write, self.layout, item)
        inline_bytes = item_size(created)
        # Apart, the record names its body instead of holding it: the same item, one attribute swapped.
        body = {self.layout.body_attribute: created[self.layout.body_attribute]}
        apart_bytes = inline_bytes - item_size(body) + item_size({BODY_AT: {"S": LONGEST_BODY_AT}})
        body_bytes = self.body_items.item_bytes(message.record_key, message.payload, self._expires(message))
        return placement(inline_bytes, apart_bytes, body_bytes, bucket=self.s3 is not None)

    def get(self, key: Key, deadline_ms: int | None = None) -> tuple[Stored | Failure | None, CallReport]:
        """A strongly consistent read, classified like a write: the stored record (its body read
        from where it is), None (none, or one past its retention), or `Failed`. The team's own item
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
            return _decode(item, self.layout, queue=self.queue_url)
        if known is not None:
            decoded = _decode(item, self.layout, known.payload, self.queue_url)
            if isinstance(decoded, Stored) and decoded.record.message == known:
                return decoded
        assert item is not None
        key = self.layout.key_of(item)
        texts, reports = self.read_bodies([(key, at)], deadline_ms)
        if (key, at) not in texts:
            errors = [r.error for r in reports if r.error is not None]
            return errors[0] if errors else failed(ErrorCategory.AMBIGUOUS, BODY_MISSING)
        return _decode(item, self.layout, texts[(key, at)], self.queue_url)

    def read_bodies(
        self, wanted: Sequence[tuple[Key, str]], deadline_ms: int | None
    ) -> tuple[dict[tuple[Key, str], str], list[CallReport]]:
        """The texts of out-of-line bodies, by (record key, `sg_body_at`), and the calls made. A body
        named where this configuration keeps none (`TableBodies.names`, `S3Bodies.names`: under the
        record's own key, in the configured bucket and prefix) is not read: a report per such name
        says `POINTER_REFUSED`, and its text is missing from the answer."""
        in_items = [(key, at) for key, at in wanted if self.body_items.names(key, at)]
        in_s3 = [(key, at) for key, at in wanted if self.s3 is not None and self.s3.names(key, at)]
        elsewhere = [at for key, at in wanted if (key, at) not in in_items and (key, at) not in in_s3]
        texts, reports = self.body_items.get_many(in_items, deadline_ms) if in_items else ({}, [])
        if in_s3:
            assert self.s3 is not None
            more, more_reports = self.s3.get_many(in_s3, deadline_ms)
            texts |= more
            reports += more_reports
        for at in elsewhere:
            service, operation = (
                ("dynamodb", "BatchGetItem") if at.startswith(ITEM_PREFIX) else ("s3", "GetObject")
            )
            reports.append(refused(service, operation, failed(ErrorCategory.PERMANENT, POINTER_REFUSED)))
        return texts, reports

    def current(
        self, entries: Sequence[dict[str, Any]], deadline_ms: int | None = None
    ) -> tuple[list[tuple[dict[str, Any], Stored]], list[CallReport]]:
        """The records that index entries name, read whole as they are now (their bodies too),
        each with its entry: only those still where the entry says (the same index
        keys), in the entries' order. A record that could not be read is left out, and its read's
        report carries the failure."""
        if not entries:
            return [], []
        key_names = self.layout.key_names
        keys = [{name: entry[name] for name in key_names} for entry in entries]
        unique = list({json.dumps(k, sort_keys=True): k for k in keys}.values())
        items, reports = batch_get(self.client, self.table, unique, deadline_ms, self.classify)
        by_key = {json.dumps({n: item[n] for n in key_names}, sort_keys=True): item for item in items}
        still: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for entry, key in zip(entries, keys, strict=True):
            item = by_key.get(json.dumps(key, sort_keys=True))
            if item is not None and is_record(item) and index_keys(item) == index_keys(entry):
                still.append((entry, item))
        wanted = [(self.layout.key_of(i), at) for _, i in still if (at := body_at(i))]
        texts, body_reports = self.read_bodies(wanted, deadline_ms) if wanted else ({}, [])
        found: list[tuple[dict[str, Any], Stored]] = []
        missing = 0
        for entry, item in still:
            at = body_at(item)
            text = None if at is None else texts.get((self.layout.key_of(item), at))
            if at is not None and text is None:
                missing += 1  # a later pass reads it again
                continue
            decoded = _decode(item, self.layout, text, self.queue_url)
            if isinstance(decoded, Stored):
                found.append((entry, decoded))
            elif isinstance(decoded, Classified):  # reported, never skipped in silence
                body_reports.append(refused("dynamodb", "BatchGetItem", decoded))
        if missing and not any(r.error is not None for r in body_reports):
            # Read, and not there: a body is written before its record, so this is never expected.
            gone = failed(ErrorCategory.AMBIGUOUS, BODY_MISSING)
            body_reports.append(refused("dynamodb", "BatchGetItem", gone))
        return found, reports + body_reports

    def due(self, now: int, settings: Settings, shards: Collection[int] | None = None) -> Iterator[DuePage]:
        """The records one reconciler pass must look at, a page at a time: queries of the sparse
        index's partitions (every shard an entry can be in, `Shards.read`), never a scan. Confirmed
        records are not in the index, so they cost nothing here. The partitions take turns, a page
        of `PAGE` records each, starting at a partition derived from the second, so that a pass that
        cannot finish still gives every kind and shard its share (oldest first within each).
        A partition whose query fails past the SDK's retries ends with a page that carries no records
        and the classified failure, and the others are read on: one bad partition does not stop the
        pass. `shards`: only the partitions of these shards (a fanned-out pass's worker,
        `adapters.runtime.fanout`); None: every shard."""
        queries = due_queries(now, settings, self.layout.shards)
        if shards is not None:
            queries = [(p, latest) for p, latest in queries if int(p.rpartition("#")[2]) in shards]
            if not queries:
                return
        # Where the turns start: the second's CRC, so that passes a minute apart (60 s, a multiple
        # of small partition counts) still start anywhere, and one pass is reproducible from `now`.
        first = zlib.crc32(str(now // 1000).encode()) % len(queries)
        turns: deque[tuple[str, int, dict[str, Any] | None]] = deque(
            (partition, latest, None) for partition, latest in queries[first:] + queries[:first]
        )
        while turns:
            partition, latest, start = turns.popleft()
            page, more = self._query_page(partition, latest, start)
            yield page
            if more is not None:
                turns.append((partition, latest, more))

    def _query_page(
        self, partition: str, latest: int, start: dict[str, Any] | None
    ) -> tuple[DuePage, dict[str, Any] | None]:
        """One page of a partition's due records, and where its next page starts (None: no more)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": INDEX,
            "KeyConditionExpression": "#p = :p AND #s <= :s",
            "ExpressionAttributeNames": {"#p": ATTENTION, "#s": ATTENTION_AT},
            "ExpressionAttributeValues": {":p": {"S": partition}, ":s": {"N": str(latest)}},
            "Limit": PAGE,
        }
        if start is not None:
            request["ExclusiveStartKey"] = start
        page, query = call(
            self.client, "dynamodb", "Query", lambda: self.client.query(**request), None, self.classify
        )
        if isinstance(page, Classified):
            return DuePage((), query), None
        found, reads = self.current(page.get("Items", []))
        done = DuePage(tuple(stored.record for _, stored in found), query, tuple(reads))
        return done, page.get("LastEvaluatedKey")

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
                        texts, reports = self.read_bodies([(key, at)], None)
                        text = texts.get((key, at))
                        why = [r.error.code for r in reports if r.error is not None]
                        if text is None and why:
                            raise ValueError(f"its body {at!r} was not read: {why[0]}")
                    yield item, stored_from_item(item, self.layout, text, self.queue_url)
                except (KeyError, ValueError, TypeError) as exc:
                    yield item, exc
