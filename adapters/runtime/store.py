"""The record in DynamoDB: each `Write` effect becomes exactly one conditional UpdateItem (the item's
format, for the team's `TableLayout`, is `adapters.runtime.codec`'s).

The condition is the write's `Expectation` — status, version and attempt id as the flow last saw them —
or, for the create, that no item has the key. A failed condition returns the item as it is
(`ReturnValuesOnConditionCheckFailure=ALL_OLD`), which the flow uses both to recognise its own landed
retry and to answer an idempotent replay, without a second read. An item with the key that is not a
sendguard record (the team's own) fails the create permanently (`NOT_A_RECORD`): nothing is written.
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from adapters.runtime.call_report import CallReport, report
from adapters.runtime.classify import Classified, Classifier, classify
from adapters.runtime.clients import DeadlineExceeded, aws_call
from adapters.runtime.codec import (
    ATTENTION,
    ATTENTION_AT,
    INDEX,
    is_record,
    stored_from_item,
    update_request,
)
from adapters.runtime.layout import TableLayout
from statemodel.attention import due_queries
from statemodel.categories import ErrorCategory
from statemodel.flows import ConditionFailed, Failed, Outcome, Settings, Write, Written
from statemodel.records import Record
from statemodel.stored import Stored

__all__ = ["NOT_A_RECORD", "DuePage", "DynamoStore"]

NOT_A_RECORD = "NotAnOutboxRecord"  # the key is taken by an item without sendguard's bookkeeping
PAGE = 25  # records a due query returns at a time: the partitions take turns page by page


# ---- the store -----------------------------------------------------------------------------------


@attrs.frozen
class DuePage:
    """One page of an index query: its records, and the call's report (with its failure, if any)."""

    records: tuple[Record, ...]
    call: CallReport


def _decode(item: dict[str, Any] | None, layout: TableLayout) -> Stored | Classified | None:
    """An item as stored, None for no item, or a failure: the team's own item (no sendguard
    bookkeeping) under the key, or an item no write of ours could leave."""
    if not item:
        return None
    if not is_record(item):
        return Classified(ErrorCategory.PERMANENT, NOT_A_RECORD)
    try:
        return stored_from_item(item, layout)
    except (KeyError, ValueError, TypeError):
        return Classified(ErrorCategory.AMBIGUOUS, "UnreadableItem")


class DynamoStore:
    """The records of one table. `classify` files each failed call (`adapters.runtime.classify`)."""

    def __init__(
        self,
        client: Any,
        table: str,
        layout: TableLayout | None = None,
        *,
        classify: Classifier = classify,
    ) -> None:
        self.client = client
        self.table = table
        self.layout = layout or TableLayout()
        self.classify = classify
        model = client.meta.service_model
        self._models = {name: model.operation_model(name) for name in ("UpdateItem", "GetItem", "Query")}

    def perform(
        self, write: Write, deadline_ms: int | None, item: Mapping[str, Any] | None = None
    ) -> tuple[Outcome, CallReport]:
        """`item`: the team's own attributes, which a create writes with the record."""
        started = time.perf_counter()
        error: Classified | None = None
        with aws_call(deadline_ms) as call:
            try:
                self.client.update_item(TableName=self.table, **self.update_request(write, item))
                outcome: Outcome = Written()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
                    decoded = _decode(old, self.layout)
                    if isinstance(decoded, Classified):
                        error, outcome = decoded, Failed(decoded.category, decoded.code)
                    else:
                        outcome = ConditionFailed(decoded.record if decoded else None)
                else:
                    error = self.classify(exc, self._models["UpdateItem"])
                    outcome = Failed(error.category, error.code)
            except (BotoCoreError, DeadlineExceeded) as exc:
                error = self.classify(exc, self._models["UpdateItem"])
                outcome = Failed(error.category, error.code)
        return outcome, report("dynamodb", "UpdateItem", call.attempts, started, error)

    def update_request(self, write: Write, item: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The UpdateItem parameters (less TableName) that carry out one write; `item`, the team's
        own attributes, goes with a create only (`adapters.runtime.codec.update_request`)."""
        return update_request(write, self.layout, item if write.before is None else None)

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
                    TableName=self.table, Key=self.layout.key(message_id), ConsistentRead=True
                )
                decoded = _decode(response.get("Item"), self.layout)
                if isinstance(decoded, Classified):
                    error = decoded
                else:
                    found = decoded
            except (ClientError, BotoCoreError, DeadlineExceeded) as exc:
                error = self.classify(exc, self._models["GetItem"])
        if error is not None:
            found = Failed(error.category, error.code)
        return found, report("dynamodb", "GetItem", call.attempts, started, error)

    def due(self, now: int, settings: Settings) -> Iterator[DuePage]:
        """The records one reconciler pass must look at, a page at a time: queries of the sparse
        index's partitions (every shard an entry can be in, `Shards.read`), never a scan. Confirmed
        records are not in the index, so they cost nothing here. The partitions take turns, a page
        of `PAGE` records each, starting at a partition derived from the second, so that a pass that
        cannot finish still gives every kind and shard its share (oldest first within each).
        A partition whose query fails past the SDK's retries ends with a page that carries no records
        and the classified failure, and the others are read on: one bad partition does not stop the
        pass."""
        queries = due_queries(now, settings, self.layout.shards)
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
        started = time.perf_counter()
        with aws_call(None) as call:
            try:
                page = self.client.query(**request)
            except (ClientError, BotoCoreError, DeadlineExceeded) as exc:
                error = self.classify(exc, self._models["Query"])
                return DuePage((), report("dynamodb", "Query", call.attempts, started, error)), None
        records = tuple(stored_from_item(item, self.layout).record for item in page.get("Items", []))
        done = DuePage(records, report("dynamodb", "Query", call.attempts, started, None))
        return done, page.get("LastEvaluatedKey")

    def scan(self) -> Iterator[tuple[dict[str, Any], Stored | Exception]]:
        """Every record (the audit's read), each with what it decodes to, or why it does not. The
        team's own items (without sendguard's bookkeeping) are not records: skipped."""
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table, ConsistentRead=True):
            for item in page.get("Items", []):
                if not is_record(item):
                    continue
                try:
                    yield item, stored_from_item(item, self.layout)
                except (KeyError, ValueError, TypeError) as exc:
                    yield item, exc
