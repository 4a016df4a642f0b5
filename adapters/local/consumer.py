"""The consumer side of `sendguard demo`: the ready consumer (`adapters.aws_lambda_consumer`, the SAM
template's ConsumerFunction) driven as Lambda's SQS event source mapping drives it, under faults, and
the check that every accepted message's effect was applied exactly once.

`EventSourceMapping` polls the queue from a few threads (as Lambda's pollers do): it receives a batch
of up to 10 messages under a visibility timeout, invokes the function with an SQS event and a Lambda
context counting down from the function's timeout, deletes the messages the function did not list in
`batchItemFailures`, and leaves the others — and a whole batch whose invocation crashed, raised, timed
out or answered something Lambda cannot read — to come back after the visibility timeout. Its own
faults, drawn from the seed per message (the same seed, the same draws):

* `duplicate`  — a second copy of a message delivered after the first was processed (a standard
  queue delivers at least once);
* `concurrent` — a second copy delivered while the first invocation still runs (a visibility timeout
  that ran out mid-work).

`FaultyWiring` gives the function a DynamoDB client that, for a seeded share of the inbox's and the
effect's calls (the first two of each operation on each item), crashes the invocation just before the
call (`crash_before`: a write never made) or just after it landed (`crash_after`: a commit made and
never answered), or refuses it as DynamoDB does once the SDK's retries are spent (`throttled`). A
crash ends the invocation as a dead runtime would: nothing of its batch is deleted. The fault proxy
puts its faults on the same calls besides (resets, delays, 500s, 503s, throttles the SDK retries).

`judge_effects` reads the consumer table past the proxy: each message accepted (answered 202) or
found on the queue must have its effect item with `applied` = 1 — missing or applied twice fails the
run. The tests pass broken wirings (an effect written outside the transaction, a swallowed failure)
through `DemoOptions.consumer_wiring`, and this check catches each.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs
from botocore.exceptions import ClientError

from adapters.aws_lambda_consumer import (
    APPLIED,
    CALLS,
    EFFECT_PREFIX,
    LAYOUT,
    ConsumerConfig,
    ConsumerHandlers,
    Handler,
    Wiring,
)
from adapters.local.fault_proxy import _uniform
from adapters.local.sandbox import LambdaContext
from adapters.local.verdict import Delivery
from adapters.runtime.inbox import BatchResult
from adapters.runtime.inbox_codec import DEFAULT_KEY_PREFIX, STATUS
from statemodel.validation import RESERVED_ATTRIBUTE

CRASH_BEFORE, CRASH_AFTER, THROTTLED = "crash_before", "crash_after", "throttled"
DUPLICATE, CONCURRENT = "duplicate", "concurrent"
FAULTED_CALLS = 2  # of each operation on each item: the later ones go through, so that every message ends
FAULTED_OPERATIONS = ("get_item", "update_item", "transact_write_items")
POLL_PAUSE_S = 0.1


class InvocationCrashed(BaseException):
    """Injected: the function's runtime died in the middle of an invocation. A BaseException, so
    that nothing in the function can catch it, as nothing can catch a dead process."""


# ---- the faults inside the function ------------------------------------------------------------


class CallFaults:
    """The seeded draws for the function's DynamoDB calls; thread-safe."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate, self.seed = rate, seed
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.injected: collections.Counter[str] = collections.Counter()

    def draw(self, operation: str, key: str) -> str | None:
        with self._lock:
            self._counts[(operation, key)] += 1
            n = self._counts[(operation, key)]
            if self.rate <= 0 or n > FAULTED_CALLS:
                return None
            if _uniform(self.seed, "consumer", operation, key, n) >= self.rate:
                return None
            kinds = (CRASH_BEFORE, CRASH_AFTER, THROTTLED)
            kind = kinds[int(_uniform(self.seed, "consumer-kind", operation, key, n) * len(kinds))]
            if kind == CRASH_AFTER and operation == "get_item":
                kind = CRASH_BEFORE  # a read changes nothing: a crash after it is one before the next call
            self.injected[kind] += 1
            return kind

    def quiet(self) -> None:
        with self._lock:
            self.rate = 0.0


class FaultyClient:
    """A DynamoDB client that meets `CallFaults`' faults; everything else is the real client's."""

    def __init__(self, client: Any, faults: CallFaults) -> None:
        self._client, self._faults = client, faults

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in FAULTED_OPERATIONS:
            return attribute

        def call(**request: Any) -> Any:
            kind = self._faults.draw(name, _item_key(request))
            if kind == CRASH_BEFORE:
                raise InvocationCrashed(f"before {name}")
            if kind == THROTTLED:
                error = {"Error": {"Code": "ThrottlingException", "Message": "injected by the demo"}}
                raise ClientError(error, _operation_name(name))  # type: ignore[arg-type]
            answer = attribute(**request)
            if kind == CRASH_AFTER:
                raise InvocationCrashed(f"after {name}")
            return answer

        return call


def _item_key(request: Mapping[str, Any]) -> str:
    key: Any = request.get("Key")
    if key is None:
        items: list[dict[str, Any]] = request.get("TransactItems") or [{}]
        entry: dict[str, Any] = next(iter(items[0].values()), {})
        key = entry.get("Key", {})
    return str((key or {}).get(LAYOUT.partition_key, {}).get("S", ""))


def _operation_name(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


class FaultyWiring(Wiring):
    """`base`'s wiring (production's by default, or a broken one), with `FaultyClient`."""

    def __init__(self, faults: CallFaults, base: Wiring | None = None) -> None:
        self.faults, self.base = faults, base or Wiring()

    def client(self, config: ConsumerConfig) -> Any:
        return FaultyClient(self.base.client(config), self.faults)

    def transactional(self, config: ConsumerConfig, client: Any) -> Handler:
        return self.base.transactional(config, client)

    def guarded(self, config: ConsumerConfig, client: Any) -> Handler:
        return self.base.guarded(config, client)

    def response(self, result: BatchResult) -> dict[str, Any]:
        return self.base.response(result)


# ---- consumers wired wrong, for the demo's tests -------------------------------------------------


class EffectOutsideTransaction(Wiring):
    """Broken: the transactional handler writes the effect itself and returns nothing to commit."""

    def transactional(self, config: ConsumerConfig, client: Any) -> Handler:
        entries = Wiring().transactional(config, client)

        def effect(delivery: Any) -> list[dict[str, Any]]:
            for entry in entries(delivery):
                client.update_item(**entry["Update"])
            return []

        return effect


class SwallowedFailure(Wiring):
    """Broken: every message is reported processed, the failed ones too (SQS deletes them)."""

    def response(self, result: BatchResult) -> dict[str, Any]:
        return {"batchItemFailures": []}


BROKEN_WIRINGS: dict[str, Callable[[], Wiring]] = {
    "effect-outside-transaction": EffectOutsideTransaction,
    "swallowed-failure": SwallowedFailure,
}


# ---- Lambda's SQS event source mapping -------------------------------------------------------------


@attrs.define
class MappingStats:
    invocations: int = 0
    crashed: int = 0  # the runtime died (an injected crash): nothing of the batch deleted
    raised: int = 0  # the function raised: the batch failed as a whole
    timed_out: int = 0
    unreadable: int = 0  # a response Lambda cannot read: the batch failed as a whole
    item_failures: int = 0  # messages listed in batchItemFailures
    deleted: int = 0
    received: int = 0  # messages received, every receive of every copy
    duplicate: int = 0  # copies delivered again after the first was processed
    concurrent: int = 0  # copies delivered while the first was still running


class EventSourceMapping:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        function: Callable[[Mapping[str, Any], Any], Any],
        *,
        timeout_ms: int,
        visibility_s: int,
        fault_rate: float,
        seed: int,
        pollers: int = 2,
        batch_size: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sqs, self.queue_url, self.function = sqs, queue_url, function
        self.timeout_ms, self.visibility_s, self.batch_size = timeout_ms, visibility_s, batch_size
        self.rate, self.seed, self.pollers = fault_rate, seed, pollers
        # What judges an invocation timed out (Lambda would have stopped it): the tests pass one that
        # stands still, so that a loaded machine's slowness is never taken for a timeout.
        self.clock = clock
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.stats = MappingStats()
        self.seen: dict[str, Delivery] = {}  # every SQS message received, by its id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._busy = 0
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.pollers):
            thread = threading.Thread(target=self._poll, name=f"consumer-poller-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def quiet(self) -> None:
        """No more duplicate or concurrent copies."""
        with self._lock:
            self.rate = 0.0

    def finish(self, budget_s: float) -> bool:
        """Waits until the queue is empty, nothing in flight and no invocation running (True), or the
        budget is spent (False); then stops the pollers."""
        deadline = time.monotonic() + budget_s
        empty = False
        while time.monotonic() < deadline:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            waiting = sum(int(v) for v in attributes.values())
            with self._lock:
                busy = self._busy
            if waiting == 0 and busy == 0:
                empty = True
                break
            time.sleep(0.25)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return empty

    def _poll(self) -> None:
        while not self._stop.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                VisibilityTimeout=self.visibility_s,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                time.sleep(POLL_PAUSE_S)
                continue
            with self._lock:
                self._busy += 1
            try:
                self._deliver(messages)
            finally:
                with self._lock:
                    self._busy -= 1

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        records = [self._record(m) for m in messages]
        concurrent = [r for r in records if self._draw(CONCURRENT, r)]
        duplicate = [r for r in records if self._draw(DUPLICATE, r)]
        side: threading.Thread | None = None
        if concurrent:
            side = threading.Thread(target=self._invoke, args=(concurrent,), name="consumer-redelivery")
            side.start()
        failed = self._invoke(records)
        if side is not None:
            side.join()
        if failed is None:
            return  # the whole batch comes back after the visibility timeout
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        with self._lock:
            self.stats.deleted += len(done)
            self.stats.item_failures += len(failed)
        finished = [r for r in duplicate if r["messageId"] not in failed]
        if finished:
            self._invoke(finished)  # SQS's duplicate, after the first copy was processed

    def _draw(self, kind: str, record: Mapping[str, Any]) -> bool:
        """A copy of this message, on its first receive only (draws per message, from the seed)."""
        if record["attributes"].get("ApproximateReceiveCount") != "1":
            return False
        key = (record["messageAttributes"].get(RESERVED_ATTRIBUTE) or {}).get("stringValue", "")
        with self._lock:
            hit = self.rate > 0 and _uniform(self.seed, kind, key) < self.rate / 2
            if hit:
                setattr(self.stats, kind, getattr(self.stats, kind) + 1)
        return hit

    def _invoke(self, records: list[dict[str, Any]]) -> set[str] | None:
        """One invocation; the ids it reported failed, or None when the whole batch failed."""
        ids = {r["messageId"] for r in records}
        context = LambdaContext(self.timeout_ms, "sendguard-consumer")
        started = self.clock()
        with self._lock:
            self.stats.invocations += 1
            self.stats.received += len(records)
        try:
            answer = self.function({"Records": records}, context)
        except InvocationCrashed:
            with self._lock:
                self.stats.crashed += 1
            return None
        except Exception:  # the function raised: Lambda fails the batch as a whole
            with self._lock:
                self.stats.raised += 1
            return None
        if (self.clock() - started) * 1000 > self.timeout_ms:
            with self._lock:
                self.stats.timed_out += 1
            return None
        failed = _failures(answer, ids)
        if failed is None:
            with self._lock:
                self.stats.unreadable += 1
        return failed

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The message as a record of a Lambda SQS event; noted among those seen."""
        key = (message.get("MessageAttributes") or {}).get(RESERVED_ATTRIBUTE, {}).get("StringValue")
        attributes = dict(message.get("Attributes") or {})
        with self._lock:
            self.seen.setdefault(
                message["MessageId"],
                Delivery(
                    sqs_id=message["MessageId"],
                    message_id=key,
                    body=message.get("Body", ""),
                    sent_at=int(attributes.get("SentTimestamp", 0)),
                ),
            )
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message.get("ReceiptHandle", ""),
            "body": message.get("Body", ""),
            "attributes": attributes,
            "messageAttributes": {
                name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType", "String")}
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.queue_arn.split(":")[3],
        }


def _failures(answer: Any, ids: set[str]) -> set[str] | None:
    """The partial batch response as Lambda reads it: None (the whole batch failed) when it is not
    one, or names a message that was not in the batch."""
    if answer is None:
        return set()
    if not isinstance(answer, Mapping) or not isinstance(answer.get("batchItemFailures", []), list):
        return None
    failed = set()
    for item in answer.get("batchItemFailures", []):
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if identifier not in ids:
            return None
        failed.add(str(identifier))
    return failed


# ---- the consumer, assembled, and its verdict --------------------------------------------------------


@attrs.define
class ConsumerRun:
    """The ready consumer on the demo's queue: the mapping, the function and its faults."""

    mode: str
    table: str
    handlers: ConsumerHandlers
    faults: CallFaults
    mapping: EventSourceMapping

    def quiet(self) -> None:
        self.faults.quiet()
        self.mapping.quiet()


@attrs.frozen
class EffectsVerdict:
    expected: int  # messages whose effect must be applied once: accepted, or found on the queue
    once: int
    missing: list[str]  # "id: …why"
    twice: list[str]  # "id: applied N times"
    unexpected: list[str]  # effects of messages no one accepted and the queue never held
    inbox: dict[str, int]  # the inbox records by status
    finished: bool  # the queue was emptied within the budget
    repeats: int = 0  # guarded: calls after the first, dropped by their idempotency key

    @property
    def broken(self) -> bool:
        return bool(self.twice or self.unexpected or (self.missing and self.finished))

    @property
    def ok(self) -> bool:
        return self.finished and not self.broken and not self.missing


def judge_effects(dynamodb: Any, table: str, expected: Collection[str], finished: bool) -> EffectsVerdict:
    """Reads the consumer table (strongly consistent scan, past the proxy) and counts each message's
    effect against the messages that must have one."""
    applied: dict[str, int] = {}
    calls: dict[str, int] = {}
    inbox: dict[str, str] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page.get("Items", []):
            key = item.get(LAYOUT.partition_key, {}).get("S", "")
            if key.startswith(EFFECT_PREFIX):
                applied[key.removeprefix(EFFECT_PREFIX)] = int(item.get(APPLIED, {}).get("N", "0"))
                calls[key.removeprefix(EFFECT_PREFIX)] = int(item.get(CALLS, {}).get("N", "0"))
            elif key.startswith(DEFAULT_KEY_PREFIX):
                inbox[key.removeprefix(DEFAULT_KEY_PREFIX)] = item.get(STATUS, {}).get("S", "?")
    wanted = set(expected)
    missing = [
        f"{m}: " + (f"inbox record {inbox[m]}, effect never applied" if m in inbox else "never consumed")
        for m in sorted(wanted)
        if applied.get(m, 0) == 0
    ]
    twice = [f"{m}: applied {n} times" for m, n in sorted(applied.items()) if m in wanted and n > 1]
    unexpected = [f"{m}: an effect no accepted message asked for" for m in sorted(set(applied) - wanted)]
    statuses = collections.Counter(inbox.values())
    return EffectsVerdict(
        expected=len(wanted),
        once=sum(1 for m in wanted if applied.get(m) == 1),
        missing=missing,
        twice=twice,
        unexpected=unexpected,
        inbox=dict(sorted(statuses.items())),
        finished=finished,
        repeats=sum(max(n - applied.get(m, 0), 0) for m, n in calls.items()),
    )


__all__ = [
    "BROKEN_WIRINGS",
    "CallFaults",
    "ConsumerRun",
    "EffectsVerdict",
    "EventSourceMapping",
    "FaultyWiring",
    "InvocationCrashed",
    "judge_effects",
]
