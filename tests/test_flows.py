"""The sans-I/O flows against the in-memory world, one named scenario per fault."""

from __future__ import annotations

import json

import pytest

from statemodel import ErrorCategory, Phase
from statemodel.checker.world import Fault, QueuedMessage, World
from statemodel.flows import (
    Answer,
    ConditionFailed,
    Failed,
    Failure,
    Flow,
    Kind,
    Result,
    Send,
    Sent,
    Settings,
    Stage,
    Write,
    Written,
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


# ---- answers a client or an operator depends on (each pins a contract: category, status, code) ----


def exhaust(world: World, msg: Message) -> None:
    """The record PENDING with every attempt spent: a failed submit, then failed replays."""
    submit(world, msg, None, Fault.SEND_RETRYABLE)
    for n in range(2, SETTINGS.max_attempts + 1):
        submit(world, msg, None, None, Fault.SEND_RETRYABLE, attempt=f"a-{n}")
    record = world.record(msg.message_id)
    assert record is not None and record.phase is Phase.PENDING
    assert record.attempts == SETTINGS.max_attempts


def test_a_replay_that_finds_no_attempt_left_flags_the_record_and_answers_500() -> None:
    """The replay's claim exhausts the record (the table's row), and the client is told so with a
    permanent failure: 500, not a 503 that invites another retry."""
    world, msg = World(), message()
    exhaust(world, msg)
    answer = submit(world, msg, attempt="a-9").answer
    assert answer.result is Result.FAILED
    assert answer.failure == Failure(ErrorCategory.PERMANENT, "RedriveExhausted")
    assert answer.http_status == 500
    assert world.record(msg.message_id).phase is Phase.EXHAUSTED
    assert msg.message_id not in world.landed
    again = submit(world, msg, attempt="a-10").answer  # an exhausted record answers the same
    assert again.failure == Failure(ErrorCategory.PERMANENT, "RedriveExhausted")
    assert again.http_status == 500 and again.record is not None


def test_the_reconciler_flags_a_record_with_no_attempt_left_as_exhausted() -> None:
    world, msg = World(), message()
    exhaust(world, msg)
    later = NOW + SETTINGS.redrive_after_ms
    assert reconcile(world, later) == [Result.EXHAUSTED]
    record = world.record(msg.message_id)
    assert record.phase is Phase.EXHAUSTED and record.exhausted
    with pytest.raises(ValueError, match="reconciler's result"):
        _ = Answer(Result.EXHAUSTED, msg.message_id, record).http_status


def test_a_replay_of_a_confirmed_record_sends_nothing_and_names_the_record() -> None:
    world, msg = World(), message()
    submit(world, msg)
    answer = submit(world, msg, attempt="a-2").answer
    assert answer.result is Result.ALREADY_QUEUED and answer.accepted and answer.http_status == 202
    assert answer.failure is None and answer.message_id == msg.message_id
    assert answer.record is not None and answer.record.phase is Phase.CONFIRMED
    assert world.landed[msg.message_id] == ["sqs-1"]


def test_a_conflicting_request_is_409_and_writes_nothing() -> None:
    world, msg = World(), message()
    submit(world, msg)
    before = world.items[msg.message_id]
    answer = submit(world, message({"other": 1}), attempt="a-2").answer
    assert answer.result is Result.CONFLICT and answer.http_status == 409 and not answer.accepted
    assert answer.failure is None
    assert world.items[msg.message_id] is before


def test_a_rejected_create_answers_503_and_stores_nothing() -> None:
    world, msg = World(), message()
    answer = submit(world, msg, Fault.WRITE_REJECTED).answer
    assert answer.result is Result.FAILED and answer.http_status == 503
    assert answer.failure == Failure(ErrorCategory.RETRYABLE, "ProvisionedThroughputExceededException")
    assert answer.message_id == msg.message_id and answer.record is None
    assert world.items == {} and not answer.unconfirmed and not answer.rollback_failed


def test_an_ambiguous_create_answers_503_and_leaves_the_record_to_its_lease() -> None:
    world, msg = World(), message()
    answer = submit(world, msg, Fault.WRITE_LANDED_THEN_TIMEOUT).answer
    assert answer.failure == Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError")
    assert answer.http_status == 503
    record = world.record(msg.message_id)
    assert record is not None and record.phase is Phase.IN_FLIGHT and record.attempt_id == "a-1"


def test_a_replay_whose_claim_loses_a_race_is_told_to_retry() -> None:
    """Two replays of a PENDING record read it together; the second's claim fails its condition and
    finds the record in flight: 503 InProgress, nothing written for it."""
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE)
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    first = start_submit(msg, "a-2", lease, NOW, SETTINGS)
    second = start_submit(msg, "a-3", lease, NOW, SETTINGS)
    first = advance(first, world.perform(first.effect, NOW), NOW)
    second = advance(second, world.perform(second.effect, NOW), NOW)
    assert first.stage is Stage.CLAIM and second.stage is Stage.CLAIM
    first = advance(first, world.perform(first.effect, NOW), NOW)
    assert first.stage is Stage.SEND
    answer = advance(second, world.perform(second.effect, NOW), NOW).answer
    assert answer.result is Result.FAILED
    assert answer.failure == Failure(ErrorCategory.RETRYABLE, "InProgress")
    assert world.record(msg.message_id).attempt_id == "a-2"


def test_each_send_fault_reaches_sqs_or_not_as_it_says() -> None:
    """What SQS holds afterwards, and the category and code the sender is told, for each fault."""
    expected = {
        None: (True, None),
        Fault.SEND_RETRYABLE: (False, Failed(ErrorCategory.RETRYABLE, "RequestThrottled")),
        Fault.SEND_PERMANENT: (
            False,
            Failed(ErrorCategory.PERMANENT, "AWS.SimpleQueueService.NonExistentQueue"),
        ),
        Fault.SEND_LOST_TIMEOUT: (False, Failed(ErrorCategory.AMBIGUOUS, "ConnectionClosedError")),
        Fault.SEND_LANDED_THEN_TIMEOUT: (True, Failed(ErrorCategory.AMBIGUOUS, "ReadTimeoutError")),
    }
    for fault, (lands, outcome) in expected.items():
        world, msg = World(), message({"body": "x"})
        send = Send(msg, "a-1", NOW)
        got = world.perform(send, NOW, fault)
        assert (got if outcome is not None else None) == outcome, fault
        if outcome is None:
            assert got == Sent("sqs-1")
        assert world.delivered() == ({msg.message_id} if lands else set()), fault
        queued = [QueuedMessage(msg.message_id, "sqs-1", msg.payload)] if lands else []
        assert world.queue == queued, fault
        assert world.landed.get(msg.message_id, []) == (["sqs-1"] if lands else []), fault
    world = World()
    first, second = message(key="k-1"), message(key="k-2")
    world.perform(Send(first, "a", NOW), NOW)
    assert world.perform(Send(second, "b", NOW), NOW) == Sent("sqs-2")  # ids count across messages
    assert world.consume() == QueuedMessage(first.message_id, "sqs-1", first.payload)
    assert world.consumed == [QueuedMessage(first.message_id, "sqs-1", first.payload)]
    assert [m.sqs_message_id for m in world.queue] == ["sqs-2"]


def test_a_fault_must_fit_its_effect_and_an_answer_is_not_performed() -> None:
    world, msg = World(), message()
    with pytest.raises(ValueError, match="cannot happen"):
        world.perform(Send(msg, "a", NOW), NOW, Fault.WRITE_REJECTED)
    flow = submit(world, msg)
    with pytest.raises(ValueError, match="not performed"):
        world.perform(flow.effect, NOW)
    with pytest.raises(ValueError, match="finished"):
        advance(flow, Written(), NOW)


def test_a_send_carries_the_fifo_group_and_deduplication_ids() -> None:
    request = parse_submission(json.dumps({"payload": {"n": 1}, "attributes": {"group": "g-7"}}))
    assert not hasattr(request, "code")
    grouped = new_message(request, "m-7", "corr", NOW, "k-7")
    send = Send(grouped, "a-1", NOW)
    assert send.group_id == "g-7" and send.deduplication_id == "m-7" and send.body == grouped.payload
    plain = Send(message(), "a-1", NOW)
    assert plain.group_id == plain.message.message_id


def test_a_lease_outlives_the_invocation_by_the_margin() -> None:
    assert lease_expiry(NOW, 10_000, SETTINGS) == NOW + 10_000 + SETTINGS.lease_margin_ms
    assert lease_expiry(NOW, -5, SETTINGS) == NOW + SETTINGS.lease_margin_ms  # no time left: the margin
    flow = start_submit(message(), "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    assert flow.send_deadline == NOW + 10_000 and flow.max_attempts == SETTINGS.max_attempts
