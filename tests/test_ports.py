"""One contract for the two backends the flows run on (eventsourcing's style: written once, subclassed
per backend): the in-memory world (`statemodel.checker.world`) and DynamoDB/SQS on moto. Whatever the
pure-model tests and the explorer prove on the world holds on AWS only as far as the two agree; this
is where they are held to the same conditional-write and send semantics."""

from __future__ import annotations

import abc
import json
import typing
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import pytest
from moto import mock_aws

from adapters.ops.provision import ensure_resources
from adapters.runtime.bodies import S3Bodies, TableBodies
from adapters.runtime.call_report import CallReport
from adapters.runtime.clients import make_client
from adapters.runtime.due_index import DueIndex as AwsDueIndex
from adapters.runtime.layout import TableLayout
from adapters.runtime.runner import Aws, run_flow
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.store import DynamoStore
from statemodel.categories import ErrorCategory, Failure
from statemodel.checker.world import World, WorldBodies, WorldDue, WorldQueue, WorldStore
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
from statemodel.interpreter import Ports
from statemodel.keys import Key
from statemodel.ports import BodyStore, DueIndex, MessageQueue, RecordStore
from statemodel.stored import Stored
from statemodel.validation import MAX_MESSAGE_BYTES_WITH_BUCKET, new_message, parse_submission
from tests.import_graph import import_graph

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
        found, _ = store.get(write.after.message.record_key)
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
        found, _ = store.get(write.after.message.record_key)
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
        assert store.get(Key("nothing-here"))[0] is None

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
        found, call = store.get(Key("x"))
    assert isinstance(found, Failure) and call.error is not None and call.operation == "GetItem"


# ---- the bodies ---------------------------------------------------------------------------------


class BodyStoreContract(abc.ABC):
    """Subclass with a `bodies` fixture for a backend."""

    @abc.abstractmethod
    def bodies(self) -> BodyStore[Any]: ...

    def test_a_body_reads_back_by_the_name_it_was_given(self, bodies: BodyStore[Any]) -> None:
        key = Key("order-1")
        name, _ = bodies.put(key, "é" * 5_000, None)
        assert isinstance(name, str) and bodies.names(key, name)
        texts, _ = bodies.get_many([(key, name)], None)
        assert texts == {(key, name): "é" * 5_000}

    def test_each_put_gets_a_name_of_its_own(self, bodies: BodyStore[Any]) -> None:
        key = Key("order-1")
        first, _ = bodies.put(key, "one", None)
        second, _ = bodies.put(key, "two", None)
        assert isinstance(first, str) and isinstance(second, str) and first != second
        texts, _ = bodies.get_many([(key, first), (key, second)], None)
        assert texts == {(key, first): "one", (key, second): "two"}

    def test_a_body_never_written_is_absent(self, bodies: BodyStore[Any]) -> None:
        key = Key("order-1")
        name, _ = bodies.put(key, "one", None)
        assert isinstance(name, str)
        other = name[:-1] + ("2" if name[-1] != "2" else "3")
        assert bodies.names(key, other)  # a name of this store's form, but never given
        assert bodies.get_many([(key, other)], None)[0] == {}

    def test_a_name_of_another_form_is_not_this_store_s(self, bodies: BodyStore[Any]) -> None:
        assert not bodies.names(Key("order-1"), "elsewhere/order-1")


class TestWorldBodies(BodyStoreContract):
    @pytest.fixture
    def bodies(self) -> WorldBodies:  # type: ignore[override]
        return WorldBodies(World())


class TestTableBodiesOnMoto(BodyStoreContract):
    @pytest.fixture
    def bodies(self, aws_env: None) -> Iterator[TableBodies]:  # type: ignore[override]
        with mock_aws():
            ensure_resources("contract", "contract")
            yield TableBodies(make_client("dynamodb", 3), "contract", TableLayout())


class TestS3BodiesOnMoto(BodyStoreContract):
    @pytest.fixture
    def bodies(self, aws_env: None) -> Iterator[S3Bodies]:  # type: ignore[override]
        with mock_aws():
            s3 = make_client("s3", 3)
            s3.create_bucket(Bucket="contract-bodies")
            yield S3Bodies("contract-bodies", client=s3)


# ---- the due index ------------------------------------------------------------------------------


class DueIndexContract(abc.ABC):
    """Subclass with `due` and `store` fixtures for a backend (the store writes what the index finds)."""

    @abc.abstractmethod
    def due(self) -> DueIndex[Any]: ...

    @abc.abstractmethod
    def store(self) -> RecordStore[Any]: ...

    def _found(self, due: DueIndex[Any], now: int) -> list[str]:
        return [record.message_id for page in due.due(now, SETTINGS) for record in page.records]

    def test_a_claim_is_due_once_its_lease_ran_out(self, due: DueIndex[Any], store: RecordStore[Any]) -> None:
        write = first_write()
        assert store.perform(write, None)[0] == Written()
        lease = write.after.lease_expires_at
        assert lease is not None
        assert self._found(due, lease - 1) == []
        assert self._found(due, lease) == [write.message_id]

    def test_a_confirmed_record_is_never_due(self, due: DueIndex[Any], store: RecordStore[Any]) -> None:
        write = first_write()
        store.perform(write, None)
        flow = start_submit(write.after.message, "attempt-1", NOW + 40_000, NOW, SETTINGS)
        flow = advance(advance(flow, Written(), NOW), Sent("sqs-1"), NOW + 1)
        assert isinstance(flow.effect, Write) and store.perform(flow.effect, None)[0] == Written()
        assert self._found(due, NOW + 10**9) == []

    def test_a_rolled_back_record_is_due_after_the_redrive_wait(
        self, due: DueIndex[Any], store: RecordStore[Any]
    ) -> None:
        write = first_write()
        store.perform(write, None)
        flow = start_submit(write.after.message, "attempt-1", NOW + 40_000, NOW, SETTINGS)
        flow = advance(advance(flow, Written(), NOW), Failure(ErrorCategory.RETRYABLE, "Throttled"), NOW + 1)
        rollback = flow.effect
        assert isinstance(rollback, Write) and store.perform(rollback, None)[0] == Written()
        rolled_back_at = rollback.after.updated_at
        assert self._found(due, rolled_back_at + SETTINGS.redrive_after_ms - 1) == []
        assert self._found(due, rolled_back_at + SETTINGS.redrive_after_ms) == [write.message_id]


class TestWorldDue(DueIndexContract):
    @pytest.fixture
    def world(self) -> World:
        return World()

    @pytest.fixture
    def due(self, world: World) -> WorldDue:  # type: ignore[override]
        return WorldDue(world)

    @pytest.fixture
    def store(self, world: World) -> WorldStore:  # type: ignore[override]
        return WorldStore(world)


class TestDueIndexOnMoto(DueIndexContract):
    @pytest.fixture
    def records(self, aws_env: None) -> Iterator[DynamoStore]:
        with mock_aws():
            ensure_resources("contract", "contract")
            yield DynamoStore(make_client("dynamodb", 3), "contract")

    @pytest.fixture
    def due(self, records: DynamoStore) -> DueIndex[Any]:  # type: ignore[override]
        return AwsDueIndex(records)

    @pytest.fixture
    def store(self, records: DynamoStore) -> DynamoStore:  # type: ignore[override]
        return records


# ---- what the loop depends on -------------------------------------------------------------------


def test_the_loop_that_runs_knows_the_ports_alone() -> None:
    """The interpreter imports the flows and the ports, nothing else; `run_flow` (the Lambda's, the
    library's, the reconciler's) takes `Ports`, and `Aws` gives the interpreter its table and queue
    typed as the ports: `mypy --strict` holds every use of them to what the ports declare."""
    assert import_graph()["statemodel.interpreter"] == {"statemodel.flows", "statemodel.ports"}
    assert typing.get_type_hints(run_flow)["ports"] == Ports[CallReport]
    assert typing.get_type_hints(Aws.store.fget)["return"] == RecordStore[CallReport]  # type: ignore[attr-defined]
    assert typing.get_type_hints(Aws.queue.fget)["return"] == MessageQueue[CallReport]  # type: ignore[attr-defined]
    assert typing.get_type_hints(Aws)["due_index"] == DueIndex[CallReport]


def test_a_create_with_the_team_s_item_is_the_port_s_perform_on_a_bound_store(aws_env: None) -> None:
    """`DynamoStore.with_item` binds the team's attributes to a store whose `perform` is the port's:
    the create writes them with the record; the store it was made from writes none."""
    with mock_aws():
        ensure_resources("bound", "bound")
        store = DynamoStore(make_client("dynamodb", 3), "bound")
        team = {"total": 3}  # as the team gives it, serialized with the record
        bound: RecordStore[CallReport] = store.with_item(team)
        first, second = first_write("with-item"), first_write("without")
        assert bound.perform(first, None)[0] == Written() and store.perform(second, None)[0] == Written()
        client = store.client
        read = [
            client.get_item(TableName="bound", Key={"message_id": {"S": m}})["Item"]
            for m in ("with-item", "without")
        ]
    assert read[0]["total"] == {"N": "3"} and "total" not in read[1]
