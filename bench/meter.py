"""Counts what an invocation asks of AWS, at botocore's event layer, for every client made while the
meter is installed (the service's own clients, made by its own code; the handlers ride in
`botocore.handlers.BUILTIN_HANDLERS`, as moto's and the fault injector's do).

* API calls: `before-call`, one per client method call (what the code asked for); calls of a client
  named in `count_as_retries` (the fault injector's replay of botocore's retry of a landed write) are
  counted as attempts of the call they retry, not as calls;
* attempts: `before-send`, one per HTTP attempt the SDK makes, its retries included, and attempts that
  an injected connection fault then fails before they reach moto;
* DynamoDB writes: the item before (`before-call`) and after (`after-call`) each PutItem, UpdateItem
  and DeleteItem, read from moto by a client the meter does not count, turned into write units by
  `bench.capacity` — the table's, and each global secondary index's at the size of its entry, by the
  key schema and `Projection` that describe_table reports for the table and the index;
* DynamoDB reads: Query and Scan pages, GetItem and BatchGetItem answers (each table's `Responses`,
  with the `ConsistentRead` of its `RequestItems`) into items read and read units; a GetItem or
  BatchGetItem whose `ProjectionExpression` trims the answer is metered at the whole items' sizes,
  read from moto like the writes' (DynamoDB meters the item, not the answer);
* other services' calls (SQS, S3's PutObject and GetObject) are API calls and attempts like any, by
  operation name.

With `write_units=False` the meter reads nothing from moto (so that timings stay clean): no write
units, and a trimmed GetItem or BatchGetItem is metered at the size of what it returned.

Counting is per thread: `counting()` opens a tally for the calling thread only.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
from botocore.handlers import BUILTIN_HANDLERS

from bench import capacity

WRITES = ("PutItem", "UpdateItem", "DeleteItem")
TRANSACT_WRITES = ("Put", "Update", "Delete")  # a TransactWriteItems entry that writes (not ConditionCheck)
TRIMMED = ("ProjectionExpression", "AttributesToGet")  # a read that answers with part of each item


@attrs.frozen
class Index:
    """A global secondary index as describe_table reports it."""

    name: str
    keys: tuple[str, ...]
    projection: dict[str, Any]  # {"ProjectionType": ..., "NonKeyAttributes": [...] for INCLUDE}

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "keys": list(self.keys), "projection": self.projection}


@attrs.frozen
class Schema:
    key: tuple[str, ...]
    indexes: tuple[Index, ...]


@attrs.define
class Tally:
    calls: collections.Counter[str] = attrs.field(factory=collections.Counter)  # "UpdateItem" -> n
    attempts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    table_wru: int = 0
    index_wru: int = 0
    index_writes: int = 0  # index entries put or deleted (a changed key counts 2)
    rru: float = 0.0
    items_read: int = 0
    rru_by_operation: dict[str, float] = attrs.field(factory=dict)
    items_read_by_operation: collections.Counter[str] = attrs.field(factory=collections.Counter)
    written: list[tuple[str, str]] = attrs.field(factory=list)  # (table, key) of every write, in order

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_attempts(self) -> int:
        return sum(self.attempts.values())

    @property
    def wru(self) -> int:
        return self.table_wru + self.index_wru

    def add(self, other: Tally) -> None:
        self.calls.update(other.calls)
        self.attempts.update(other.attempts)
        self.table_wru += other.table_wru
        self.index_wru += other.index_wru
        self.index_writes += other.index_writes
        self.rru += other.rru
        self.items_read += other.items_read
        for operation, rru in other.rru_by_operation.items():
            self.rru_by_operation[operation] = self.rru_by_operation.get(operation, 0.0) + rru
        self.items_read_by_operation.update(other.items_read_by_operation)
        self.written += other.written

    def as_dict(self) -> dict[str, Any]:
        return {
            "api_calls": self.total_calls,
            "attempts": self.total_attempts,
            "calls_by_operation": dict(sorted(self.calls.items())),
            "attempts_by_operation": dict(sorted(self.attempts.items())),
            "table_wru": self.table_wru,
            "index_wru": self.index_wru,
            "index_writes": self.index_writes,
            "wru": self.wru,
            "rru": self.rru,
            "items_read": self.items_read,
            "rru_by_operation": dict(sorted(self.rru_by_operation.items())),
            "items_read_by_operation": dict(sorted(self.items_read_by_operation.items())),
        }

    def read(self, operation: str, items: int, rru: float) -> None:
        self.items_read += items
        self.rru += rru
        self.items_read_by_operation[operation] += items
        self.rru_by_operation[operation] = self.rru_by_operation.get(operation, 0.0) + rru


class Meter:
    def __init__(self, write_units: bool = True) -> None:
        self.write_units = write_units  # False: no item reads from moto (timing stays clean)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tables: dict[str, Schema] = {}
        self._raw: Any = None
        self._retry_signers: set[int] = set()
        self._handlers: list[tuple[str, Any]] = [
            ("provide-client-params.dynamodb", self._params),
            ("before-call", self._before_call),
            ("before-send", self._before_send),
            ("after-call", self._after_call),
        ]

    @contextlib.contextmanager
    def installed(self) -> Iterator[Meter]:
        """Clients made inside are metered (moto must be active)."""
        self._raw = boto3.client("dynamodb")  # made before the handlers go in: never counted
        self.to_front()
        try:
            yield self
        finally:
            for handler in self._handlers:
                if handler in BUILTIN_HANDLERS:
                    BUILTIN_HANDLERS.remove(handler)

    def to_front(self) -> None:
        """Puts the meter's handlers first (again), ahead of any installed after it, so that it sees an
        attempt before the fault injector fails it."""
        for handler in self._handlers:
            if handler in BUILTIN_HANDLERS:
                BUILTIN_HANDLERS.remove(handler)
        for position, handler in enumerate(self._handlers):
            BUILTIN_HANDLERS.insert(position, handler)

    def count_as_retries(self, client: Any) -> None:
        """Calls of this client are the SDK's retries of another call: attempts, not calls."""
        self._retry_signers.add(id(client._request_signer))

    @contextlib.contextmanager
    def counting(self) -> Iterator[Tally]:
        tally = Tally()
        previous = getattr(self._local, "tally", None)
        self._local.tally = tally
        try:
            yield tally
        finally:
            self._local.tally = previous

    def _tally(self) -> Tally | None:
        return getattr(self._local, "tally", None)

    # ---- handlers --------------------------------------------------------------------------------

    def _params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = dict(params)

    def _before_call(self, model: Any, context: dict[str, Any], request_signer: Any = None, **_: Any) -> None:
        tally = self._tally()
        if tally is None:
            return
        if id(request_signer) not in self._retry_signers:
            tally.calls[model.name] += 1
        context["bench_tally"] = tally
        context["bench_operation"] = model.name
        if model.name in WRITES and self.write_units:
            params = context.get("bench_params", {})
            table = params.get("TableName", "")
            key = self._key(table, params)
            context["bench_write"] = (table, key, self._get(table, key))
        if model.name == "TransactWriteItems" and self.write_units:
            written = []
            for entry in context.get("bench_params", {}).get("TransactItems", []):
                for kind, request in entry.items():
                    if kind in TRANSACT_WRITES:
                        table = request.get("TableName", "")
                        key = self._key(table, request)
                        written.append((table, key, self._get(table, key)))
            context["bench_transaction"] = written

    def _before_send(self, request: Any, **_: Any) -> None:
        tally: Tally | None = request.context.get("bench_tally")
        if tally is not None:
            tally.attempts[request.context.get("bench_operation", "?")] += 1

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        tally: Tally | None = context.get("bench_tally")
        if tally is None:
            return
        status = getattr(http_response, "status_code", 0)
        params = context.get("bench_params", {})
        if model.name in WRITES and "bench_write" in context:
            table, key, before = context["bench_write"]
            code = parsed.get("Error", {}).get("Code")
            applied = status < 300
            if applied or code == "ConditionalCheckFailedException":
                after = self._get(table, key) if applied else before
                tally.table_wru += capacity.table_write_units(before, after, applied)
                if applied:
                    schema = self._schema(table)
                    for index in schema.indexes:
                        shape = (index.keys, schema.key, index.projection)
                        tally.index_wru += capacity.index_write_units(before, after, *shape)
                        tally.index_writes += capacity.index_writes(before, after, *shape)
                tally.written.append((table, _key_text(key)))
        elif model.name == "TransactWriteItems" and "bench_transaction" in context:
            self._transaction(tally, context["bench_transaction"], status < 300)
        elif status >= 300:
            return
        elif model.name in ("Query", "Scan"):
            items = parsed.get("Items", [])
            tally.read(model.name, len(items), capacity.read_units(items, bool(params.get("ConsistentRead"))))
        elif model.name == "GetItem":
            item = parsed.get("Item")
            keys = [params.get("Key", {})]
            sizes = self._read_sizes(params.get("TableName", ""), params, keys, [item] if item else [])
            rru = capacity.item_read_units(sizes, bool(params.get("ConsistentRead")))
            tally.read(model.name, 1 if item else 0, rru)
        elif model.name == "BatchGetItem":
            unprocessed = parsed.get("UnprocessedKeys", {})
            for table, request in params.get("RequestItems", {}).items():
                left = unprocessed.get(table, {}).get("Keys", [])
                keys = [k for k in request.get("Keys", []) if k not in left]  # what DynamoDB read
                items = parsed.get("Responses", {}).get(table, [])
                sizes = self._read_sizes(table, request, keys, items)
                rru = capacity.item_read_units(sizes, bool(request.get("ConsistentRead")))
                tally.read(model.name, len(items), rru)

    def _transaction(
        self, tally: Tally, written: list[tuple[str, dict[str, Any], dict[str, Any] | None]], applied: bool
    ) -> None:
        """A TransactWriteItems: each item's write units, twice over (DynamoDB bills a transactional
        write at two units per KB), whether it committed or was cancelled (a cancelled transaction
        is billed too, at the items' sizes before it); its indexes' writes as for a plain write."""
        for table, key, before in written:
            after = self._get(table, key) if applied else before
            tally.table_wru += 2 * capacity.table_write_units(before, after, applied)
            if applied:
                schema = self._schema(table)
                for index in schema.indexes:
                    shape = (index.keys, schema.key, index.projection)
                    tally.index_wru += capacity.index_write_units(before, after, *shape)
                    tally.index_writes += capacity.index_writes(before, after, *shape)
                tally.written.append((table, _key_text(key)))

    # ---- reading moto ----------------------------------------------------------------------------

    def describe(self, table: str) -> dict[str, Any]:
        """The table's key attributes and global secondary indexes (name, key attributes, `Projection`)
        as the meter sizes their entries: what describe_table reports (moto must be active)."""
        schema = self._schema(table)
        return {"key": list(schema.key), "indexes": [index.as_dict() for index in schema.indexes]}

    def _schema(self, table: str) -> Schema:
        with self._lock:
            if table not in self._tables:
                description = self._raw.describe_table(TableName=table)["Table"]
                key = tuple(k["AttributeName"] for k in description["KeySchema"])
                indexes = tuple(
                    Index(
                        index["IndexName"],
                        tuple(k["AttributeName"] for k in index["KeySchema"]),
                        dict(index.get("Projection", capacity.ALL)),
                    )
                    for index in description.get("GlobalSecondaryIndexes", [])
                )
                self._tables[table] = Schema(key, indexes)
            return self._tables[table]

    def _key(self, table: str, params: dict[str, Any]) -> dict[str, Any]:
        """The written item's key: the request's `Key` (UpdateItem, DeleteItem), or the table's key
        attributes taken from the `Item` a PutItem writes (a record or any other item of the table)."""
        if "Key" in params:
            return dict(params["Key"])
        item = params.get("Item", {})
        return {name: item[name] for name in self._schema(table).key if name in item}

    def _read_sizes(
        self, table: str, request: dict[str, Any], keys: list[dict[str, Any]], items: list[dict[str, Any]]
    ) -> list[int]:
        """The sizes DynamoDB meters a GetItem's or BatchGetItem's keys at: each whole item (0 where
        there is none); read from moto when a projection trimmed the answer."""
        if self.write_units and any(request.get(name) for name in TRIMMED):
            return [capacity.item_size(self._get(table, key)) for key in keys]
        sizes = [capacity.item_size(item) for item in items]
        return sizes + [0] * max(0, len(keys) - len(items))

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._raw.get_item(TableName=table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item


def _key_text(key: dict[str, Any]) -> str:
    return "|".join(str(next(iter(v.values()))) for v in key.values() if v)
