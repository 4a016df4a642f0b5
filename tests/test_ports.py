"""One contract for the two backends the flows run on (eventsourcing's style: written once, subclassed
per backend): the in-memory world (`statemodel.checker.world`) and DynamoDB/SQS on moto. Whatever the
pure-model tests and the explorer prove on the world holds on AWS only as far as the two agree; this
is where they are held to the same conditional-write and send semantics."""

from __future__ import annotations

import abc
import json
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import pytest
from moto import mock_aws

from adapters.ops.provision import ensure_resources
from adapters.runtime.bodies import S3Bodies
from adapters.runtime.clients import make_client
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.store import DynamoStore
from statemodel.categories import Failure
from statemodel.checker.world import World, WorldQueue, WorldStore
from statemodel.flows import (
    ConditionFailed,
    Sent,
    Settings,
    Write,
    Written,
    advance,
    lease_expiry,
    start_submit,
)
from statemodel.ports import MessageQueue, RecordStore
from statemodel.stored import Stored
from statemodel.validation import MAX_MESSAGE_BYTES_WITH_BUCKET, new_message, parse_submission

SETTINGS = Settings(max_attempts=3, redrive_after_ms=60_000, lease_margin_ms=30_000)
NOW = 1_000_000


def first_write(message_id: str | None = None, payload: Any = None) -> Write:
    """A create and claim; `payload` (default a small one) decides where a store keeps the body."""
    document = {"payload": {"n": 1} if payload is None else payload, "attributes": {"kind": "x"}}
    request = parse_submission(json.dumps(document), MAX_MESSAGE_BYTES_WITH_BUCKET)
    message = new_message(request, message_id or str(uuid.uuid4()), "corr", NOW, None)  # type: ignore[arg-type]
    flow = start_submit(message, "attempt-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    assert isinstance(flow.effect, Write)
    return flow.effect


class RecordStoreContract(abc.ABC):
    """Subclass with `store` (and `queue`) fixtures for a backend. `PAYLOAD`: the payload of every
    write (None: a small one); a subclass with a large one holds a store to the same contract with
    the body kept out of the record."""

    PAYLOAD: ClassVar[Any] = None

    @abc.abstractmethod
    def store(self) -> RecordStore[Any]: ...

    @abc.abstractmethod
    def queue(self) -> MessageQueue[Any]: ...

    def test_a_create_lands_once_and_reads_back_whole(self, store: RecordStore[Any]) -> None:
        write = first_write(payload=self.PAYLOAD)
        assert store.perform(write, None)[0] == Written()
        found, _ = store.get(write.message_id)
        assert found == Stored(write.after, write.events)

    def test_a_second_create_fails_its_condition_with_the_record_as_it_is(
        self, store: RecordStore[Any]
    ) -> None:
        write = first_write(payload=self.PAYLOAD)
        store.perform(write, None)
        assert store.perform(write, None)[0] == ConditionFailed(write.after)

    def test_a_write_from_a_stale_read_changes_nothing(self, store: RecordStore[Any], queue: Any) -> None:
        write = first_write(payload=self.PAYLOAD)
        store.perform(write, None)
        flow = start_submit(write.after.message, "attempt-1", NOW + 40_000, NOW, SETTINGS)
        flow = advance(flow, Written(), NOW)  # the claim landed: the flow sends next
        flow = advance(flow, Sent("sqs-1"), NOW + 1)  # and confirms
        confirm = flow.effect
        assert isinstance(confirm, Write)
        assert store.perform(confirm, None)[0] == Written()
        # the same confirm again expects the version it read before: refused, the record as it is
        outcome, _ = store.perform(confirm, None)
        assert outcome == ConditionFailed(confirm.after)
        found, _ = store.get(write.message_id)
        assert isinstance(found, Stored) and found.record == confirm.after
        assert found.history == write.events + confirm.events

    def test_a_fenced_write_from_another_attempt_is_refused(self, store: RecordStore[Any]) -> None:
        write = first_write(payload=self.PAYLOAD)
        store.perform(write, None)
        flow = start_submit(write.after.message, "attempt-1", NOW + 40_000, NOW, SETTINGS)
        flow = advance(advance(flow, Written(), NOW), Sent("sqs-1"), NOW + 1)
        confirm = flow.effect
        assert isinstance(confirm, Write) and confirm.before is not None
        forged = attrs.evolve(confirm, before=attrs.evolve(confirm.before, attempt_id="someone-else"))
        assert store.perform(forged, None)[0] == ConditionFailed(write.after)

    def test_no_record_reads_as_none(self, store: RecordStore[Any]) -> None:
        assert store.get("nothing-here")[0] is None

    def test_a_send_is_accepted_with_the_queue_s_own_id(self, queue: MessageQueue[Any]) -> None:
        write = first_write(payload=self.PAYLOAD)
        flow = advance(start_submit(write.after.message, "a", NOW + 40_000, NOW, SETTINGS), Written(), NOW)
        send = flow.effect
        first, _ = queue.perform(send, None)  # type: ignore[arg-type]
        second, _ = queue.perform(send, None)  # type: ignore[arg-type]
        assert isinstance(first, Sent) and isinstance(second, Sent)
        assert first.sqs_message_id != second.sqs_message_id


class TestWorld(RecordStoreContract):
    @pytest.fixture
    def world(self) -> World:
        return World()

    @pytest.fixture
    def store(self, world: World) -> WorldStore:  # type: ignore[override]
        return WorldStore(world)

    @pytest.fixture
    def queue(self, world: World) -> WorldQueue:  # type: ignore[override]
        return WorldQueue(world, lambda: NOW)


class TestDynamoOnMoto(RecordStoreContract):
    @pytest.fixture
    def resources(self, aws_env: None) -> Iterator[tuple[str, str]]:
        with mock_aws():
            yield "contract", ensure_resources("contract", "contract")

    @pytest.fixture
    def store(self, resources: tuple[str, str]) -> DynamoStore:  # type: ignore[override]
        return DynamoStore(make_client("dynamodb", 3), resources[0])

    @pytest.fixture
    def queue(self, resources: tuple[str, str]) -> SqsQueue:  # type: ignore[override]
        return SqsQueue(make_client("sqs", 3), resources[1])


class TestDynamoBodyItemOnMoto(TestDynamoOnMoto):
    """A 3 KB payload: the body in a body item of its own (`adapters.runtime.bodies`)."""

    PAYLOAD: ClassVar[Any] = {"note": "b" * 3_000}


class TestDynamoS3BodyOnMoto(TestDynamoOnMoto):
    """A 450 KB payload, past what an item holds: the body in the body bucket."""

    PAYLOAD: ClassVar[Any] = {"note": "s" * 450_000}

    @pytest.fixture
    def store(self, resources: tuple[str, str]) -> DynamoStore:  # type: ignore[override]
        s3 = make_client("s3", 3)
        s3.create_bucket(Bucket="contract-bodies")
        bodies = S3Bodies("contract-bodies", client=s3)
        return DynamoStore(make_client("dynamodb", 3), resources[0], s3=bodies)


def test_a_failed_read_is_classified_not_raised(aws_env: None) -> None:
    with mock_aws():
        store = DynamoStore(make_client("dynamodb", 1), "no-such-table")
        found, call = store.get("x")
    assert isinstance(found, Failure) and call.error is not None and call.operation == "GetItem"
