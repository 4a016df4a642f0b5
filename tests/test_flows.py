"""The sans-I/O flows against the in-memory world, one named scenario per fault."""

from __future__ import annotations

import json

from statemodel import ErrorCategory, Phase
from statemodel.checker.world import Fault, World
from statemodel.flows import (
    ConditionFailed,
    Flow,
    Kind,
    Result,
    Send,
    Settings,
    Stage,
    Write,
    advance,
    lease_expiry,
    reconcile_start,
    start_submit,
)
from statemodel.invariants import is_orphan
from statemodel.records import Message
from statemodel.validation import message_id_for_key, new_message, parse_submission

SETTINGS = Settings(max_attempts=3, redrive_after_ms=60_000, lease_margin_ms=30_000)
NOW = 1_000_000


def message(body: object = None, key: str | None = "k-1") -> Message:
    request = parse_submission(json.dumps({"payload": body or {"n": 1}}))
    assert not hasattr(request, "code")
    message_id = message_id_for_key(key) if key else "m-1"
    return new_message(request, message_id, "corr-1", NOW, key)


def submit(world: World, msg: Message, *faults: Fault | None, now: int = NOW, attempt: str = "a-1") -> Flow:
    """Runs a submit flow to its end, the n-th effect meeting the n-th fault."""
    flow = start_submit(msg, attempt, lease_expiry(now, 10_000, SETTINGS), now, SETTINGS)
    return run(world, flow, *faults, now=now)


def run(world: World, flow: Flow, *faults: Fault | None, now: int = NOW) -> Flow:
    planned = list(faults)
    while not flow.done:
        fault = planned.pop(0) if planned else None
        flow = advance(flow, world.perform(flow.effect, now, fault), now)
    return flow


def reconcile(world: World, now: int) -> list[Result]:
    results = []
    for stored in list(world.items.values()):
        flow = reconcile_start(stored.record, now, SETTINGS, "r-1", lease_expiry(now, 10_000, SETTINGS))
        if flow is not None:
            results.append(run(world, flow, now=now).answer.result)
    return results


def test_happy_path_is_three_effects_and_202() -> None:
    world, msg = World(), message()
    flow = start_submit(msg, "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    effects = []
    while not flow.done:
        effects.append(type(flow.effect))
        flow = advance(flow, world.perform(flow.effect, NOW), NOW)
    assert effects == [Write, Send, Write]
    assert flow.answer.result is Result.SENT and flow.answer.http_status == 202
    assert world.record(msg.message_id).phase is Phase.CONFIRMED


def test_a_retried_write_that_had_landed_counts_as_written() -> None:
    world, msg = World(), message()
    flow = submit(world, msg, Fault.WRITE_LANDED_THEN_RETRIED, None, Fault.WRITE_LANDED_THEN_RETRIED)
    assert flow.answer.result is Result.SENT and not flow.answer.unconfirmed
    assert world.record(msg.message_id).phase is Phase.CONFIRMED


def test_each_send_failure_rolls_back_and_answers_by_category() -> None:
    expected = {
        Fault.SEND_RETRYABLE: (ErrorCategory.RETRYABLE, 503, Phase.PENDING),
        Fault.SEND_LOST_TIMEOUT: (ErrorCategory.AMBIGUOUS, 503, Phase.PENDING),
        Fault.SEND_LANDED_THEN_TIMEOUT: (ErrorCategory.AMBIGUOUS, 503, Phase.PENDING),
        Fault.SEND_PERMANENT: (ErrorCategory.PERMANENT, 500, Phase.EXHAUSTED),
    }
    for fault, (category, status, phase) in expected.items():
        world, msg = World(), message()
        answer = submit(world, msg, None, fault).answer
        assert (answer.failure.category, answer.http_status) == (category, status), fault
        record = world.record(msg.message_id)
        assert record is not None and record.phase is phase and record.message == msg


def test_a_failed_rollback_leaves_the_record_to_the_reconciler() -> None:
    world, msg = World(), message()
    answer = submit(world, msg, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED).answer
    assert answer.result is Result.FAILED and answer.rollback_failed
    record = world.record(msg.message_id)
    assert record is not None and record.phase is Phase.IN_FLIGHT
    assert not is_orphan(record, world.delivered(), NOW)  # the lease still covers it
    later = record.lease_expires_at
    assert is_orphan(record, world.delivered(), later)
    assert reconcile(world, later) == [Result.EXPIRED]
    assert reconcile(world, later + SETTINGS.redrive_after_ms) == [Result.SENT]
    assert world.record(msg.message_id).phase is Phase.CONFIRMED


def test_a_lost_confirm_is_still_202_and_the_reconciler_mends_the_record() -> None:
    world, msg = World(), message()
    answer = submit(world, msg, None, None, Fault.WRITE_REJECTED).answer
    assert answer.result is Result.SENT and answer.unconfirmed and answer.http_status == 202
    lease = world.record(msg.message_id).lease_expires_at
    assert reconcile(world, lease) == [Result.EXPIRED]
    assert reconcile(world, lease + SETTINGS.redrive_after_ms) == [Result.SENT]
    assert len(world.landed[msg.message_id]) == 2  # the duplicate the lost confirm explains


def test_replays() -> None:
    world, msg = World(), message()
    assert submit(world, msg).answer.result is Result.SENT
    assert submit(world, msg, attempt="a-2").answer.result is Result.ALREADY_QUEUED
    assert submit(world, message({"other": 1}), attempt="a-3").answer.http_status == 409
    assert len(world.landed[msg.message_id]) == 1


def test_a_replay_of_a_pending_record_redrives_it() -> None:
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE)
    flow = submit(world, msg, attempt="a-2")
    assert flow.answer.result is Result.SENT
    assert world.record(msg.message_id).attempts == 2


def test_a_replay_of_an_in_flight_record_is_told_to_retry() -> None:
    world, msg = World(), message()
    first = start_submit(msg, "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    first = advance(first, world.perform(first.effect, NOW), NOW)
    assert first.stage is Stage.SEND
    answer = submit(world, msg, attempt="a-2").answer
    assert answer.result is Result.FAILED and answer.failure.code == "InProgress"
    assert answer.http_status == 503


def test_a_stalled_sender_cannot_send_after_its_deadline() -> None:
    world, msg = World(), message()
    flow = start_submit(msg, "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    flow = advance(flow, world.perform(flow.effect, NOW), NOW)
    late = NOW + 10_001
    assert world.perform(flow.effect, late).code == "DeadlineExceeded"
    assert msg.message_id not in world.landed


def test_reconciler_leaves_live_leases_and_fresh_pending_records_alone() -> None:
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED)  # in flight, lease live
    assert reconcile(world, NOW + 1_000) == []
    other = message(key="k-2")
    submit(world, other, None, Fault.SEND_RETRYABLE)  # PENDING, rolled back just now
    assert reconcile(world, NOW + 1_000) == []


def test_redrive_exhausts_after_max_attempts() -> None:
    world, msg = World(), message()
    now = NOW
    submit(world, msg, None, Fault.SEND_RETRYABLE)
    results = []
    for _ in range(SETTINGS.max_attempts + 1):
        now += SETTINGS.redrive_after_ms
        stored = world.items[msg.message_id]
        flow = reconcile_start(stored.record, now, SETTINGS, "r", lease_expiry(now, 10_000, SETTINGS))
        if flow is None:
            break
        results.append(run(world, flow, None, Fault.SEND_RETRYABLE, now=now).answer.result)
    assert results == [Result.FAILED, Result.FAILED, Result.EXHAUSTED]
    assert world.record(msg.message_id).phase is Phase.EXHAUSTED


def test_a_stale_reconciler_write_is_superseded() -> None:
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED)
    stale = world.record(msg.message_id)
    assert stale is not None
    lease = stale.lease_expires_at
    assert reconcile(world, lease) == [Result.EXPIRED]
    later = lease + 5
    flow = reconcile_start(stale, later, SETTINGS, "r-2", later + 1)
    assert flow is not None and flow.kind is Kind.EXPIRE
    outcome = world.perform(flow.effect, later)
    assert isinstance(outcome, ConditionFailed)
    assert advance(flow, outcome, later).answer.result is Result.SUPERSEDED
