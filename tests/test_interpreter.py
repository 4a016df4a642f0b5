"""The one interpreter (`statemodel.interpreter`) and the in-memory ports it runs on in the explorer
(`statemodel.checker.world`): pure, no AWS. tests/test_ports.py holds the ports to one contract with
AWS; here, what the interpreter does with them, and the world's own knobs (faults, SQS ids, shards)."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from statemodel.attention import Shards
from statemodel.categories import ErrorCategory, Failure
from statemodel.checker.world import (
    Fault,
    World,
    WorldBodies,
    WorldDue,
    WorldPorts,
    WorldQueue,
    WorldStore,
)
from statemodel.flows import (
    ConditionFailed,
    Flow,
    Outcome,
    Result,
    Send,
    Sent,
    Settings,
    Write,
    Written,
    advance,
    lease_expiry,
    start_submit,
)
from statemodel.interpreter import carry, perform, run, send_deadline, step
from statemodel.keys import Key
from statemodel.records import Message, Phase
from statemodel.validation import message_id_for_key, new_message, parse_submission

SETTINGS = Settings(max_attempts=3, redrive_after_ms=1_000, lease_margin_ms=100)
NOW = 10_000


def message(key: str = "k-1") -> Message:
    request = parse_submission(json.dumps({"payload": {"n": 1}}))
    return new_message(request, message_id_for_key(key), "corr", NOW, key)  # type: ignore[arg-type]


def submit(key: str = "k-1") -> Flow:
    return start_submit(message(key), "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)


@attrs.define
class Recorder:
    """Ports that answer as told and remember what they were asked, with a report per call."""

    write_outcome: Outcome = attrs.field(factory=Written)
    send_outcome: Outcome = attrs.field(factory=lambda: Sent("sqs-9"))
    calls: list[tuple[str, Any, int | None]] = attrs.field(factory=list)

    @property
    def store(self) -> Recorder:
        return self

    @property
    def queue(self) -> _Queue:
        return _Queue(self)

    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, str]:
        self.calls.append(("write", write, deadline_ms))
        return self.write_outcome, f"report-{len(self.calls)}"

    def get(self, key: Key, deadline_ms: int | None = None) -> tuple[None, str]:
        return None, "read"


@attrs.frozen
class _Queue:
    ports: Recorder

    def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, str]:
        self.ports.calls.append(("send", send, deadline_ms))
        return self.ports.send_outcome, f"report-{len(self.ports.calls)}"


@attrs.define
class Seen:
    steps: list[tuple[Flow, Outcome, Any, Flow]] = attrs.field(factory=list)

    def stepped(self, before: Flow, outcome: Outcome, report: Any, after: Flow) -> None:
        self.steps.append((before, outcome, report, after))


def test_a_send_starts_by_the_earlier_of_the_invocation_s_end_and_its_own_deadline() -> None:
    send = Send(message(), "a-1", deadline=500)
    assert send_deadline(None, send) == 500
    assert send_deadline(400, send) == 400
    assert send_deadline(600, send) == 500


def test_a_write_goes_to_the_store_and_a_send_to_the_queue_bounded_by_its_deadline() -> None:
    ports, flow = Recorder(), submit()
    assert perform(flow, ports, 7) == (Written(), "report-1")
    assert ports.calls == [("write", flow.effect, 7)]
    flow = advance(flow, Written(), NOW)
    assert isinstance(flow.effect, Send)
    assert perform(flow, ports, 10**12) == (Sent("sqs-9"), "report-2")
    assert ports.calls[-1] == ("send", flow.effect, flow.effect.deadline)
    perform(flow, ports, 3)
    assert ports.calls[-1] == ("send", flow.effect, 3)


def test_a_finished_flow_is_not_performed() -> None:
    done = advance(submit(), Failure(ErrorCategory.PERMANENT, "X"), NOW)
    assert done.done
    with pytest.raises(ValueError, match="finished"):
        perform(done, Recorder(), None)


def test_a_step_advances_at_the_clock_s_time_after_its_call_and_tells_the_observer() -> None:
    ports, seen, flow = Recorder(), Seen(), submit()
    times = iter([NOW + 5, NOW + 99])
    outcome, after = step(flow, ports, None, lambda: next(times), seen)
    assert outcome == Written() and after == advance(flow, Written(), NOW + 5)
    assert seen.steps == [(flow, Written(), "report-1", after)]
    outcome, confirm = step(after, ports, None, lambda: next(times), seen)
    assert outcome == Sent("sqs-9") and confirm == advance(after, Sent("sqs-9"), NOW + 99)
    assert isinstance(confirm.effect, Write) and confirm.effect.after.updated_at == NOW + 99
    assert seen.steps[-1] == (after, Sent("sqs-9"), "report-2", confirm)


def test_a_step_advances_with_the_advance_it_is_given() -> None:
    flow, seen = submit(), Seen()

    def stuck(flow: Flow, outcome: Outcome, now: int) -> Flow:
        return flow

    assert carry(flow, Written(), "r", NOW, seen, advance=stuck) is flow
    assert seen.steps == [(flow, Written(), "r", flow)]
    assert carry(flow, Written(), "r", NOW) == advance(flow, Written(), NOW)


def test_run_carries_a_flow_to_its_end() -> None:
    ports, seen = Recorder(), Seen()
    done = run(submit(), ports, None, lambda: NOW, seen)
    assert done.done and done.answer.result is Result.SENT
    assert [kind for kind, _, _ in ports.calls] == ["write", "send", "write"]
    assert len(seen.steps) == 3 and seen.steps[-1][3] == done


def test_run_bounds_every_call_by_the_invocation_s_deadline() -> None:
    ports = Recorder()
    run(submit(), ports, 123, lambda: NOW)
    assert [deadline for _, _, deadline in ports.calls] == [123, 123, 123]


def test_run_on_the_world_lands_the_record_and_the_message() -> None:
    world = World()
    ports = WorldPorts(WorldStore(world), WorldQueue(world, lambda: NOW))
    flow = submit()
    done = run(flow, ports, None, lambda: NOW)
    assert done.answer.result is Result.SENT
    record = world.record(done.answer.message_id)
    assert record is not None and record.phase is Phase.CONFIRMED
    assert world.landed[done.answer.message_id] == ["sqs-1"]


def test_the_world_s_ports_meet_the_fault_they_are_given() -> None:
    world = World()
    flow = submit()
    write = flow.effect
    assert isinstance(write, Write)
    refused = WorldStore(world, Fault.WRITE_REJECTED).perform(write, None)
    assert refused == (Failure(ErrorCategory.RETRYABLE, "ProvisionedThroughputExceededException"), None)
    assert world.items == {}
    landed = WorldStore(world, Fault.WRITE_LANDED_THEN_RETRIED).perform(write, None)
    assert landed == (ConditionFailed(write.after), None)
    send = advance(flow, Written(), NOW).effect
    assert isinstance(send, Send)
    lost = WorldQueue(world, lambda: NOW, Fault.SEND_LOST_TIMEOUT).perform(send, None)
    assert lost == (Failure(ErrorCategory.AMBIGUOUS, "ConnectionClosedError"), None)
    assert world.landed == {}
    with pytest.raises(ValueError, match="cannot happen"):
        WorldQueue(world, lambda: NOW, Fault.WRITE_REJECTED).perform(send, None)


def test_the_world_numbers_its_sends_after_those_it_is_told_of() -> None:
    world = World(sqs_ids=4)
    send = advance(submit(), Written(), NOW).effect
    assert isinstance(send, Send)
    assert WorldQueue(world, lambda: NOW).perform(send, None) == (Sent("sqs-5"), None)


def test_the_world_reads_a_record_by_its_key_or_its_message_id() -> None:
    world = World()
    write = submit().effect
    assert isinstance(write, Write)
    store = WorldStore(world)
    store.perform(write, None)
    key = write.after.message.record_key
    assert store.get(key)[0] == store.get(key.message_id)[0] == world.items[key.message_id]


def test_the_world_s_bodies_are_named_in_order_and_read_by_their_name() -> None:
    world = World()
    bodies = WorldBodies(world)
    key = Key("k-1")
    assert bodies.put(key, "one", None) == ("world#1", None)
    assert bodies.put(key, "two", None) == ("world#2", None)
    assert bodies.names(key, "world#12") and not bodies.names(key, "world#") and not bodies.names(key, "x#1")
    assert bodies.get_many([(key, "world#2"), (key, "world#3"), (Key("k-2"), "world#1")], None) == (
        {(key, "world#2"): "two"},
        [],
    )


def test_the_world_s_due_index_finds_what_the_index_query_selects_in_the_index_s_order() -> None:
    world = World()
    store = WorldStore(world)
    flows = [start_submit(message(f"k-{n}"), "a", NOW + 100 - n, NOW + n, SETTINGS) for n in range(3)]
    for flow in flows:
        assert isinstance(flow.effect, Write)
        store.perform(flow.effect, None)
    due = WorldDue(world)
    (page,) = due.due(NOW + 100, SETTINGS)
    assert [r.message_id for r in page.records] == [f.effect.message_id for f in reversed(flows)]  # type: ignore[union-attr]
    assert page.call is None and page.reads == ()
    (early,) = due.due(NOW + 98, SETTINGS)
    assert [r.message_id for r in early.records] == [flows[2].effect.message_id]  # type: ignore[union-attr]
    split = WorldDue(world, Shards(2, 2))
    for shard in (0, 1):
        (page,) = split.due(NOW + 100, SETTINGS, {shard})
        assert all(Shards(2, 2).of(r.message_id) == shard for r in page.records)
    together = [
        r for shard in (0, 1) for page in split.due(NOW + 100, SETTINGS, {shard}) for r in page.records
    ]
    assert sorted(r.message_id for r in together) == sorted(f.effect.message_id for f in flows)  # type: ignore[union-attr]
