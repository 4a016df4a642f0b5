"""An in-memory world that interprets the flows' effects: a table with DynamoDB's conditional-write
semantics and a queue with SQS's, each with injectable faults. The pure-model tests and the explorer
run the real flows against it; the adapters run the same flows against AWS.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterator, Sequence

import attrs

from statemodel.attention import DEFAULT_SHARDING, Shards, attention_key, is_due
from statemodel.categories import ErrorCategory, Failure
from statemodel.flows import (
    Answer,
    ConditionFailed,
    Effect,
    Outcome,
    Send,
    Sent,
    Settings,
    Write,
    Written,
    condition_holds,
)
from statemodel.keys import Key
from statemodel.ports import DuePage
from statemodel.records import Record
from statemodel.stored import Stored


class Fault(enum.Enum):
    """What can go wrong with one effect. Each is something AWS or the network really does."""

    # writes
    WRITE_REJECTED = "write rejected (throttled after the SDK's retries)"
    WRITE_LANDED_THEN_TIMEOUT = "write applied, then the caller timed out"
    WRITE_LANDED_THEN_RETRIED = "write applied, the SDK's retry failed its condition"
    # sends
    SEND_RETRYABLE = "send refused, retryable"
    SEND_PERMANENT = "send refused, permanent"
    SEND_LANDED_THEN_TIMEOUT = "send accepted by SQS, then the caller timed out (ambiguous)"
    SEND_LOST_TIMEOUT = "send timed out before SQS got it (ambiguous)"

    @property
    def applies_to(self) -> type[Write] | type[Send]:
        return Write if self.name.startswith("WRITE") else Send


WRITE_FAULTS = tuple(f for f in Fault if f.applies_to is Write)
SEND_FAULTS = tuple(f for f in Fault if f.applies_to is Send)


# How the table evaluates a write's condition: `condition_holds` (DynamoDB's semantics), unless a
# model mutant in the explorer builds its world with another.
Condition = Callable[[Write, Record | None], bool]


def apply_write(
    stored: Stored | None, write: Write, condition: Condition = condition_holds
) -> tuple[Stored | None, Outcome]:
    """DynamoDB's conditional write: all of it, or nothing and the item as it was."""
    current = stored.record if stored else None
    if not condition(write, current):
        return stored, ConditionFailed(current)
    history = (stored.history if stored else ()) + write.events
    return Stored(write.after, history), Written()


@attrs.frozen
class QueuedMessage:
    message_id: str
    sqs_message_id: str
    body: str


class World:
    """The table, the queue and what was sent, in memory. Mutable: one object per test run."""

    def __init__(self, condition: Condition = condition_holds, sqs_ids: int = 0) -> None:
        """`sqs_ids`: the SQS message ids given before (the next send is `sqs-<sqs_ids + 1>`)."""
        self.condition = condition
        self.items: dict[str, Stored] = {}
        self.bodies: dict[tuple[Key, str], str] = {}
        self.queue: list[QueuedMessage] = []
        self.consumed: list[QueuedMessage] = []
        # Every send SQS accepted, per message id, in order: the SQS message ids.
        self.landed: dict[str, list[str]] = {}
        self._sqs_ids = sqs_ids

    def perform(self, effect: Effect, now: int, fault: Fault | None = None) -> Outcome:
        if isinstance(effect, Answer):
            raise ValueError("an answer is not performed")  # pragma: no mutate (message text)
        if fault is not None and not isinstance(effect, fault.applies_to):
            kind = type(effect).__name__  # pragma: no mutate (message text)
            raise ValueError(f"{fault} cannot happen to a {kind}")  # pragma: no mutate (message text)
        if isinstance(effect, Write):
            return self._write(effect, fault)
        if now > effect.deadline:
            return Failure(ErrorCategory.RETRYABLE, "DeadlineExceeded")  # never started
        return self._send(effect, fault)

    def record(self, message_id: str) -> Record | None:
        stored = self.items.get(message_id)
        return stored.record if stored else None

    def consume(self, index: int = 0) -> QueuedMessage:
        message = self.queue.pop(index)
        self.consumed.append(message)
        return message

    def delivered(self) -> set[str]:
        return {message_id for message_id, sends in self.landed.items() if sends}

    def _write(self, write: Write, fault: Fault | None) -> Outcome:
        if fault is Fault.WRITE_REJECTED:
            return Failure(ErrorCategory.RETRYABLE, "ProvisionedThroughputExceededException")
        stored, outcome = apply_write(self.items.get(write.message_id), write, self.condition)
        if stored is not None:
            self.items[write.message_id] = stored
        if isinstance(outcome, Written) and fault is Fault.WRITE_LANDED_THEN_TIMEOUT:
            return Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError")
        if isinstance(outcome, Written) and fault is Fault.WRITE_LANDED_THEN_RETRIED:
            return ConditionFailed(write.after)
        return outcome

    def _send(self, send: Send, fault: Fault | None) -> Outcome:
        if fault is Fault.SEND_RETRYABLE:
            return Failure(ErrorCategory.RETRYABLE, "RequestThrottled")
        if fault is Fault.SEND_PERMANENT:
            return Failure(ErrorCategory.PERMANENT, "AWS.SimpleQueueService.NonExistentQueue")
        if fault is Fault.SEND_LOST_TIMEOUT:
            return Failure(ErrorCategory.AMBIGUOUS, "ConnectionClosedError")
        self._sqs_ids += 1
        sqs_id = f"sqs-{self._sqs_ids}"
        message_id = send.message.message_id
        self.queue.append(QueuedMessage(message_id, sqs_id, send.body))
        self.landed.setdefault(message_id, []).append(sqs_id)
        if fault is Fault.SEND_LANDED_THEN_TIMEOUT:
            return Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError")
        return Sent(sqs_id)


class WorldStore:
    """The world's table behind `statemodel.ports.RecordStore`. `fault`: what every write it performs
    meets (the world's `Fault`s; None: none)."""

    def __init__(self, world: World, fault: Fault | None = None) -> None:
        self.world = world
        self.fault = fault

    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, None]:
        return self.world.perform(write, 0, self.fault), None  # pragma: no mutate (a write reads no time)

    def get(self, key: Key | str, deadline_ms: int | None = None) -> tuple[Stored | None, None]:
        """`key`: the record's key, or its message id."""
        return self.world.items.get(key if isinstance(key, str) else key.message_id), None


class WorldQueue:
    """The world's queue behind `statemodel.ports.MessageQueue`. A send whose own deadline has
    passed by `clock()` never starts, as the AWS adapters' deadline guard refuses it. `fault`: what
    every send it performs meets (None: none)."""

    def __init__(self, world: World, clock: Callable[[], int], fault: Fault | None = None) -> None:
        self.world = world
        self.clock = clock
        self.fault = fault

    def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, None]:
        return self.world.perform(send, self.clock(), self.fault), None


@attrs.frozen
class WorldPorts:
    """The world's table and queue, as `statemodel.interpreter` performs effects on them."""

    store: WorldStore
    queue: WorldQueue


BODY_PREFIX = "world#"  # what the world names its bodies with: the prefix, then a number


class WorldBodies:
    """Bodies kept apart, in memory, behind `statemodel.ports.BodyStore`."""

    def __init__(self, world: World) -> None:
        self.world = world

    def names(self, key: Key, at: str) -> bool:
        return at.startswith(BODY_PREFIX) and at.removeprefix(BODY_PREFIX).isdigit()

    def put(
        self, key: Key, text: str, deadline_ms: int | None, expires: int | None = None
    ) -> tuple[str, None]:
        at = f"{BODY_PREFIX}{len(self.world.bodies) + 1}"
        self.world.bodies[(key, at)] = text
        return at, None

    def get_many(
        self, wanted: Sequence[tuple[Key, str]], deadline_ms: int | None
    ) -> tuple[dict[tuple[Key, str], str], list[None]]:
        bodies = self.world.bodies
        return {pair: bodies[pair] for pair in wanted if pair in bodies}, []


class WorldDue:
    """The world's due records behind `statemodel.ports.DueIndex`: what the index query selects
    (`statemodel.attention.is_due`), in one page, in the index's order (by `attention_key`'s time)."""

    def __init__(self, world: World, shards: Shards = DEFAULT_SHARDING) -> None:
        self.world = world
        self.shards = shards

    def due(
        self, now: int, settings: Settings, shards: Collection[int] | None = None
    ) -> Iterator[DuePage[None]]:
        # Whether a record is due, and when it came due, do not depend on the sharding (it splits the
        # index, never selects from it): dropping `self.shards` below is an equivalent mutant.
        records = [
            stored.record
            for stored in self.world.items.values()
            if is_due(stored.record, now, settings, self.shards)  # pragma: no mutate (equivalent)
            and (shards is None or self.shards.of(stored.record.message_id) in shards)
        ]
        yield DuePage(tuple(sorted(records, key=self._attention_at)), None)

    def _attention_at(self, record: Record) -> int:
        key = attention_key(record, self.shards)  # pragma: no mutate (equivalent, as above)
        assert key is not None  # a due record has one
        return key[1]
