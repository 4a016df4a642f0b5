"""The records a reconciler pass must look at, read from the `attention` index (a
`statemodel.ports.DueIndex` on DynamoDB).

The index projects keys only: an entry stays about 100 bytes, one write unit whatever the message's
size. A pass reads the records an index page names by key (`BatchGetItem`, strongly consistent),
and keeps those still where the index saw them; a record that moved since (the index is eventually
consistent) is left to the query that finds it where it is now.
"""

from __future__ import annotations

import json
import zlib
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from adapters.runtime.batch_get import batch_get
from adapters.runtime.call_report import CallReport, call, refused
from adapters.runtime.classify import Classified, failed
from adapters.runtime.codec import ATTENTION, ATTENTION_AT, INDEX, body_at, index_keys, is_record
from adapters.runtime.store import BODY_MISSING, DynamoStore, decode
from statemodel import ports
from statemodel.attention import due_queries
from statemodel.categories import ErrorCategory
from statemodel.flows import Settings
from statemodel.stored import Stored

__all__ = ["PAGE", "DueIndex", "DuePage"]

PAGE = 25  # records a due query returns at a time: the partitions take turns page by page

DuePage = ports.DuePage[CallReport]  # one page: its records, the query's report, its reads' reports


class DueIndex:
    """The due records of the table of `store`, whose reads (records, bodies) it shares."""

    def __init__(self, store: DynamoStore) -> None:
        self.store = store

    def current(
        self, entries: Sequence[dict[str, Any]], deadline_ms: int | None = None
    ) -> tuple[list[tuple[dict[str, Any], Stored]], list[CallReport]]:
        """The records that index entries name, read whole as they are now (their bodies too),
        each with its entry: only those still where the entry says (the same index
        keys), in the entries' order. A record that could not be read is left out, and its read's
        report carries the failure."""
        if not entries:
            return [], []
        store = self.store
        key_names = self.store.layout.key_names
        keys = [{name: entry[name] for name in key_names} for entry in entries]
        unique = list({json.dumps(k, sort_keys=True): k for k in keys}.values())
        items, reports = batch_get(store.client, store.table, unique, deadline_ms, store.classify)
        by_key = {json.dumps({n: item[n] for n in key_names}, sort_keys=True): item for item in items}
        still: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for entry, key in zip(entries, keys, strict=True):
            item = by_key.get(json.dumps(key, sort_keys=True))
            if item is not None and is_record(item) and index_keys(item) == index_keys(entry):
                still.append((entry, item))
        wanted = [(self.store.layout.key_of(i), at) for _, i in still if (at := body_at(i))]
        texts, body_reports = self.store.bodies.read(wanted, deadline_ms) if wanted else ({}, [])
        found: list[tuple[dict[str, Any], Stored]] = []
        missing = 0
        for entry, item in still:
            at = body_at(item)
            text = None if at is None else texts.get((self.store.layout.key_of(item), at))
            if at is not None and text is None:
                missing += 1  # a later pass reads it again
                continue
            decoded = decode(item, self.store.layout, text, self.store.queue_url)
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
        queries = due_queries(now, settings, self.store.layout.shards)
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
            "TableName": self.store.table,
            "IndexName": INDEX,
            "KeyConditionExpression": "#p = :p AND #s <= :s",
            "ExpressionAttributeNames": {"#p": ATTENTION, "#s": ATTENTION_AT},
            "ExpressionAttributeValues": {":p": {"S": partition}, ":s": {"N": str(latest)}},
            "Limit": PAGE,
        }
        if start is not None:
            request["ExclusiveStartKey"] = start
        page, query = call(
            self.store.client,
            "dynamodb",
            "Query",
            lambda: self.store.client.query(**request),
            None,
            self.store.classify,
        )
        if isinstance(page, Classified):
            return DuePage((), query), None
        found, reads = self.current(page.get("Items", []))
        done = DuePage(tuple(stored.record for _, stored in found), query, tuple(reads))
        return done, page.get("LastEvaluatedKey")
