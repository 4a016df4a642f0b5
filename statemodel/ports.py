"""The ports the flows and their callers work on, each implemented once on AWS and once in memory:

* `RecordStore`: the record table, with DynamoDB's conditional writes;
* `BodyStore`: bodies kept out of their record, written once and read back by the name the record
  keeps (what is read is then checked against the record's request hash, by the record store);
* `DueIndex`: the records a reconciler pass must look at, a page at a time;
* `MessageQueue`: the queue, with SQS's sends.

On AWS: `adapters.runtime.store.DynamoStore`, `adapters.runtime.bodies.TableBodies` and `S3Bodies`,
`adapters.runtime.due_index.DueIndex`, `adapters.runtime.sqs.SqsQueue`. In memory:
`statemodel.checker.world`'s `WorldStore`, `WorldBodies`, `WorldDue` and `WorldQueue`. Each call also
returns the backend's own report of it (`R`: the AWS adapters' `CallReport`, for the logs; None in
memory). One contract test per port, written once against these protocols, runs against both
backends (tests/test_ports.py). `statemodel.interpreter` performs the flows' effects on them; the
reconciler reads the due records through `DueIndex` alone. Where a create's body goes is decided
beside the port, not through it (`adapters.runtime.bodies.Bodies` measures the body item it would
write), so a `BodyStore` is held to its contract by the tests and composed by the record store.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

import attrs

from statemodel.categories import Failure
from statemodel.flows import Outcome, Send, Settings, Write
from statemodel.keys import Key
from statemodel.records import Record
from statemodel.stored import Stored

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class RecordStore(Protocol[R_co]):
    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, R_co]:
        """One conditional write: `Written`, `ConditionFailed` with the record as it is, or its `Failure`."""
        ...

    def get(self, key: Key, deadline_ms: int | None = None) -> tuple[Stored | Failure | None, R_co]:
        """The stored record (strongly consistent), None when there is none, or why it cannot be read."""
        ...


class BodyStore(Protocol[R]):
    """Bodies written once and read by the name `put` returns (what the record keeps in `sg_body_at`)."""

    def names(self, key: Key, at: str) -> bool:
        """Whether `at` is a name `put` gives a body of the record `key` here (else it is not read)."""
        ...

    def put(
        self, key: Key, text: str, deadline_ms: int | None, expires: int | None = None
    ) -> tuple[str | Failure, R]:
        """The body's name, or why it could not be written. `expires`: when the body may go (epoch
        seconds; None: never), where the store keeps that per body."""
        ...

    def get_many(
        self, wanted: Sequence[tuple[Key, str]], deadline_ms: int | None
    ) -> tuple[dict[tuple[Key, str], str], list[R]]:
        """The texts of (record key, name) pairs, and the calls made: a body not read (a failed
        call, a missing body) is absent from the answer, and a failed call's report says why."""
        ...


@attrs.frozen
class DuePage(Generic[R]):
    """One page of the due records: its records, the report of the read that found them (with its
    failure, if any: then no records), and those of the reads of the records themselves."""

    records: tuple[Record, ...]
    call: R
    reads: tuple[R, ...] = ()


class DueIndex(Protocol[R]):
    def due(
        self, now: int, settings: Settings, shards: Collection[int] | None = None
    ) -> Iterator[DuePage[R]]:
        """The records a reconciler pass at `now` must look at (`statemodel.attention`), a page at a
        time, each read whole as it is now. `shards`: only those of these shards (None: all)."""
        ...


class MessageQueue(Protocol[R_co]):
    def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, R_co]:
        """One send: `Sent` with the queue's message id, or its `Failure`."""
        ...
