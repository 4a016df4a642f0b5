"""What waits in the sparse `attention` index (keys `sg_attention` / `sg_attention_at`), read with
queries only (never a scan): the backlog by kind for `sendguard status`, the waiting records by the
queue each names, and the exhausted records for `sendguard redrive --exhausted`.

Counting uses `Select=COUNT`, which returns no items; the age of the oldest due record in a kind is
one more query per partition, ascending with `Limit=1`, returning only its `attention_at`. A record
in the index carries its kind's partition (`statemodel.attention`) and a time in `sg_attention_at`: the
lease's expiry for one in flight, its last transition for a pending or exhausted one. Index reads are
eventually consistent: a count can lag the table by a moment, which is what a status needs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from adapters.runtime.batch_get import batch_get
from adapters.runtime.codec import ATTENTION, ATTENTION_AT, INDEX, MESSAGE, QUEUE, named_queue
from adapters.runtime.due_index import DueIndex
from adapters.runtime.store import DynamoStore
from statemodel.attention import Attention, Shards, due_queries, exhausted_partitions
from statemodel.flows import Settings
from statemodel.stored import Stored

KINDS = {Attention.IN_FLIGHT: "in_flight", Attention.PENDING: "pending", Attention.EXHAUSTED: "exhausted"}


@attrs.frozen
class KindBacklog:
    kind: str
    waiting: int  # every record of this kind in the index
    due: int  # those a reconciler pass would act on now (exhausted: all of them, for an operator)
    oldest_due_age_ms: int | None  # now - attention_at of the oldest due one; None when none is due


@attrs.frozen
class Backlog:
    at: int
    kinds: tuple[KindBacklog, ...]
    queries: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "queries": self.queries,
            "kinds": {
                k.kind: {
                    "waiting": k.waiting,
                    "due": k.due,
                    "oldest_due_age_seconds": None
                    if k.oldest_due_age_ms is None
                    else round(k.oldest_due_age_ms / 1000, 1),
                }
                for k in self.kinds
            },
        }


class RecordsUnreadable(RuntimeError):
    """Records the index named could not be read (AWS failures, already classified)."""


def _partitions(now: int, settings: Settings, shards: Shards) -> dict[Attention, list[tuple[str, int]]]:
    """Each kind's partitions (every shard an entry can be in), with the latest `attention_at` that
    is due now."""
    kinds: dict[Attention, list[tuple[str, int]]] = {kind: [] for kind in KINDS}
    for partition, latest in due_queries(now, settings, shards):
        kinds[Attention(partition.split("#")[0])].append((partition, latest))
    kinds[Attention.EXHAUSTED] = [(partition, now) for partition in exhausted_partitions(shards)]
    return kinds


def backlog(store: DynamoStore, now: int, settings: Settings) -> Backlog:
    queries = [0]
    kinds = []
    for kind, partitions in _partitions(now, settings, store.layout.shards).items():
        waiting = due = 0
        oldest: int | None = None
        for partition, latest in partitions:
            waiting += _count(store, partition, None, queries)
            due += _count(store, partition, latest, queries)
            first = _oldest(store, partition, latest, queries)
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        age = None if oldest is None else now - oldest
        kinds.append(KindBacklog(KINDS[kind], waiting, due, age))
    return Backlog(now, tuple(kinds), queries[0])


QUEUE_READ_LIMIT = 1_000  # records `queues` reads at most: a status stays cheap on a large backlog
UNREADABLE = "(unreadable: `sendguard audit` names it)"  # a record whose packed message is malformed


@attrs.frozen
class QueueBacklog:
    """The waiting records by the queue each names (the index holds keys only, so each record's
    queue is read: one BatchGetItem of up to 100 keys, `sg_message` (or a record written before its
    `sg_queue`) alone)."""

    counts: dict[str, int]  # queue URL -> waiting records; a record naming none: the reader's queue
    read: int
    complete: bool  # False: more records wait than were read; the counts are of those read
    failed_reads: int  # BatchGetItem requests that failed (their records are not counted)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def queues(store: DynamoStore, limit: int = QUEUE_READ_LIMIT) -> QueueBacklog:
    """The records waiting in the index (every kind), by the queue each names: at most `limit`."""
    keys: list[dict[str, Any]] = []
    complete = True
    names = store.layout.key_names
    for partition in _every_partition(store.layout.shards):
        request = _request(store, partition)
        for page in _pages(store, request):
            keys += [{name: item[name] for name in names} for item in page.get("Items", [])]
            if len(keys) > limit:
                break
        if len(keys) > limit:
            complete, keys = False, keys[:limit]
            break
    projected = (
        *names,
        QUEUE,
        MESSAGE,
    )  # the queue: in `sg_message`, or `sg_queue` in a record written before
    items, reports = batch_get(store.client, store.table, keys, None, store.classify, projected)
    counts: dict[str, int] = {}
    for item in items:
        queue = queue_of(item) or store.queue_url or "(the reader's own)"
        counts[queue] = counts.get(queue, 0) + 1
    failed = sum(1 for r in reports if r.error is not None)
    return QueueBacklog(dict(sorted(counts.items())), len(items), complete, failed)


def _every_partition(shards: Shards) -> list[str]:
    """Every partition an index entry can be in, of every kind."""
    return sorted(
        {partition for partition, _ in due_queries(0, Settings(), shards)} | set(exhausted_partitions(shards))
    )


def exhausted(
    store: DynamoStore,
    *,
    since_ms: int | None = None,
    code: str | None = None,
    on_page: Callable[[int], None] = lambda _: None,
) -> Iterator[Stored]:
    """The exhausted records, oldest exhaustion first, flagged at or after `since_ms`, whose last
    error's code is `code` (when given). `on_page` is told how many items each index page held."""
    streams = [_exhausted_in(store, p, since_ms, on_page) for p in exhausted_partitions(store.layout.shards)]
    merged = heapq.merge(*streams, key=lambda pair: pair[0])
    for _, stored in merged:
        error = stored.record.last_error
        if code is None or (error is not None and error.code == code):
            yield stored


def _exhausted_in(
    store: DynamoStore, partition: str, since_ms: int | None, on_page: Callable[[int], None]
) -> Iterator[tuple[int, Stored]]:
    request = _request(store, partition, low=since_ms)
    for page in _pages(store, request):
        on_page(len(page.get("Items", [])))
        found, reads = DueIndex(store).current(page.get("Items", []))  # the index holds keys only
        failed = [read.error for read in reads if read.error is not None]
        if failed:
            raise RecordsUnreadable(
                f"{len(failed)} read(s) of exhausted records failed "
                f"({failed[0].category}: {failed[0].code}); run it again"
            )
        for entry, stored in found:
            yield int(entry[ATTENTION_AT]["N"]), stored


def _request(store: DynamoStore, partition: str, *, low: int | None = None, high: int | None = None) -> Any:
    condition = "#p = :p"
    values: dict[str, Any] = {":p": {"S": partition}}
    if low is not None:
        condition += " AND #s >= :low"
        values[":low"] = {"N": str(low)}
    elif high is not None:
        condition += " AND #s <= :high"
        values[":high"] = {"N": str(high)}
    names = {"#p": ATTENTION} | ({"#s": ATTENTION_AT} if len(values) > 1 else {})
    return {
        "TableName": store.table,
        "IndexName": INDEX,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _pages(store: DynamoStore, request: dict[str, Any], queries: list[int] | None = None) -> Iterator[Any]:
    while True:
        page = store.client.query(**request)
        if queries is not None:
            queries[0] += 1
        yield page
        if "LastEvaluatedKey" not in page:
            return
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def _count(store: DynamoStore, partition: str, latest: int | None, queries: list[int]) -> int:
    request = _request(store, partition, high=latest) | {"Select": "COUNT"}
    return sum(int(page["Count"]) for page in _pages(store, request, queries))


def _oldest(store: DynamoStore, partition: str, latest: int, queries: list[int]) -> int | None:
    request = _request(store, partition, high=latest)
    request |= {"Limit": 1, "ScanIndexForward": True, "ProjectionExpression": "#s"}
    page = next(_pages(store, request, queries))
    items = page.get("Items", [])
    return int(items[0][ATTENTION_AT]["N"]) if items else None


def queue_of(item: Mapping[str, Any]) -> str | None:
    """The queue an item read back from the table names (None: none), or UNREADABLE for an item no
    write of sendguard's could leave: counted, never a traceback."""
    try:
        return named_queue(item)
    except (KeyError, TypeError, ValueError):  # ValueError: MalformedRecord among them
        return UNREADABLE
