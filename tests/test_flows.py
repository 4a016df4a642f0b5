"""The sans-I/O flows against the in-memory world, one named scenario per fault."""

from __future__ import annotations

import json

import attrs
import pytest

from statemodel import (
    Accepted,
    ClaimCause,
    Claimed,
    ConfirmSend,
    ErrorCategory,
    ExpireLease,
    ForbiddenCommand,
    Phase,
    Prepare,
    Rearm,
    Rearmed,
    Redrive,
    ReportSendFailure,
    SendConfirmed,
    Submit,
)
from statemodel import flows as flows_module
from statemodel.attention import (
    DEFAULT_SHARDS,
    MAX_SHARDS,
    Shards,
    attention_key,
    due_queries,
    exhausted_partitions,
    is_due,
)
from statemodel.categories import Failure
from statemodel.checker.world import Fault, QueuedMessage, World, WorldQueue, WorldStore
from statemodel.flows import (
    FLOWS,
    NEXT,
    Answer,
    Came,
    ConditionFailed,
    Flow,
    Flows,
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
    prepare,
    reconcile_start,
    start_dispatch,
    start_outbox,
    start_rearm,
    start_submit,
)
from statemodel.invariants import foreign_changes, is_orphan, metadata_problems, orphans
from statemodel.records import Message, Record, Status
from statemodel.rules import compile_rules
from statemodel.stored import Stored
from statemodel.table import TRANSITIONS
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


def run(world: World, flow: Flow, *faults: Fault | None, now: int = NOW, model: Flows = FLOWS) -> Flow:
    """Runs a flow to its end by `model` (the flows over the table as written unless a test gives
    another), the n-th effect meeting the n-th fault."""
    planned = list(faults)
    while not flow.done:
        fault = planned.pop(0) if planned else None
        flow = model.advance(flow, world.perform(flow.effect, now, fault), now)
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
        Fault.SEND_RETRYABLE: (False, Failure(ErrorCategory.RETRYABLE, "RequestThrottled")),
        Fault.SEND_PERMANENT: (
            False,
            Failure(ErrorCategory.PERMANENT, "AWS.SimpleQueueService.NonExistentQueue"),
        ),
        Fault.SEND_LOST_TIMEOUT: (False, Failure(ErrorCategory.AMBIGUOUS, "ConnectionClosedError")),
        Fault.SEND_LANDED_THEN_TIMEOUT: (True, Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError")),
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
    assert flow.send_deadline == NOW + 10_000 and flow.plan.max_attempts == SETTINGS.max_attempts


# ---- the transactional outbox's dispatch, and the world behind the ports ---------------------------


def prepared(world: World, msg: Message, now: int = NOW) -> Record:
    """The record the team's transaction writes: Accepted alone, PENDING, unclaimed."""
    assert world.perform(prepare(msg, now), now) == Written()
    record = world.record(msg.message_id)
    assert record is not None and record.phase is Phase.PENDING and record.attempts == 0
    return record


def dispatch(world: World, record: Record, *faults: Fault | None, attempt: str = "d-1") -> Flow:
    flow = start_dispatch(record, attempt, lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    return run(world, flow, *faults)


def test_dispatch_claims_a_prepared_record_sends_it_and_confirms_it() -> None:
    world, msg = World(), message()
    record = prepared(world, msg)
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    flow = start_dispatch(record, "d-1", lease, NOW, SETTINGS)
    assert (flow.kind, flow.stage, flow.record, flow.attempt_id) == (Kind.SUBMIT, Stage.CLAIM, record, "d-1")
    assert (flow.lease_expires_at, flow.plan.max_attempts) == (lease, SETTINGS.max_attempts)
    assert flow.send_deadline == lease - SETTINGS.lease_margin_ms == NOW + 10_000
    assert flow.plan.request_hash == msg.request_hash
    claim = flow.effect
    assert isinstance(claim, Write) and claim.before == record
    assert claim.events == (Claimed("d-1", lease, ClaimCause.DISPATCH, NOW),)
    answer = run(world, flow).answer
    assert (answer.result, answer.http_status, answer.message_id) == (Result.SENT, 202, msg.message_id)
    stored = world.items[msg.message_id]
    assert stored.record.phase is Phase.CONFIRMED and stored.record.attempts == 1
    assert [type(e) for e in stored.history] == [Accepted, Claimed, SendConfirmed]
    assert world.landed[msg.message_id] == ["sqs-1"]


def test_dispatch_answers_for_a_record_already_past_pending() -> None:
    """Sent already: 202 without a second message. In flight elsewhere: come back (503). Exhausted:
    500, nothing sent."""
    world, msg = World(), message()
    confirmed = dispatch(world, prepared(world, msg)).answer.record
    assert confirmed is not None and confirmed.phase is Phase.CONFIRMED
    again = dispatch(world, confirmed, attempt="d-2").answer
    assert (again.result, again.http_status, again.record) == (Result.ALREADY_QUEUED, 202, confirmed)
    assert again.message_id == msg.message_id  # answered for the record found, without a write
    assert world.landed[msg.message_id] == ["sqs-1"]

    world, msg = World(), message()
    record = prepared(world, msg)
    in_flight = start_dispatch(record, "d-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    in_flight = advance(in_flight, world.perform(in_flight.effect, NOW), NOW)
    assert in_flight.stage is Stage.SEND
    busy = dispatch(world, world.record(msg.message_id), attempt="d-2").answer
    assert busy.failure == Failure(ErrorCategory.RETRYABLE, "InProgress") and busy.http_status == 503
    assert world.record(msg.message_id).attempt_id == "d-1"

    world, msg = World(), message()
    dispatch(world, prepared(world, msg), None, Fault.SEND_PERMANENT)
    exhausted = world.record(msg.message_id)
    assert exhausted is not None and exhausted.phase is Phase.EXHAUSTED
    refused = dispatch(world, exhausted, attempt="d-2").answer
    assert refused.failure == Failure(ErrorCategory.PERMANENT, "RedriveExhausted")
    assert refused.http_status == 500 and msg.message_id not in world.landed


def test_dispatch_judges_the_callers_request_as_a_replay_of_send_is() -> None:
    """`dispatch` given the request its caller meant: another body, or the same body for another
    queue, is a conflict and nothing is claimed; the same request claims as before."""
    world, msg = World(), message()
    record = prepared(world, msg)
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    for other in (attrs.evolve(msg, request_hash="another"), attrs.evolve(msg, queue="https://q/other")):
        flow = start_dispatch(record, "d-1", lease, NOW, SETTINGS, request=other)
        assert flow.answer.result is Result.CONFLICT and flow.answer.http_status == 409
    assert world.record(msg.message_id) == record  # nothing written
    same = start_dispatch(record, "d-1", lease, NOW, SETTINGS, request=attrs.evolve(msg))
    assert same.stage is Stage.CLAIM and run(world, same).answer.result is Result.SENT


def test_a_replay_to_another_queue_is_a_conflict() -> None:
    world, msg = World(), attrs.evolve(message(), queue="https://q/standard")
    assert submit(world, msg).answer.result is Result.SENT
    elsewhere = submit(world, attrs.evolve(msg, queue="https://q/fifo.fifo"), attempt="a-2").answer
    assert (elsewhere.result, elsewhere.http_status) == (Result.CONFLICT, 409)
    assert submit(world, msg, attempt="a-3").answer.result is Result.ALREADY_QUEUED


def test_dispatch_of_a_record_with_no_attempt_left_flags_it_and_answers_500() -> None:
    world, msg = World(), message()
    record = prepared(world, msg)
    for n in range(SETTINGS.max_attempts):
        answer = dispatch(world, record, None, Fault.SEND_RETRYABLE, attempt=f"d-{n}").answer
        assert answer.failure == Failure(ErrorCategory.RETRYABLE, "RequestThrottled")
        record = world.record(msg.message_id)
    assert record.phase is Phase.PENDING and record.attempts == SETTINGS.max_attempts
    answer = dispatch(world, record, attempt="d-last").answer
    assert answer.result is Result.FAILED and answer.http_status == 500
    assert answer.failure == Failure(ErrorCategory.PERMANENT, "RedriveExhausted")
    assert world.record(msg.message_id).phase is Phase.EXHAUSTED


def test_the_world_behind_the_ports_applies_writes_and_sends_at_its_clock() -> None:
    world, msg = World(), message()
    store, now = WorldStore(world), [NOW]
    queue = WorldQueue(world, lambda: now[0])
    assert store.world is world and queue.world is world
    flow = start_submit(msg, "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    create = flow.effect
    assert isinstance(create, Write)
    assert store.perform(create, None) == (Written(), None)
    assert store.get(msg.message_id) == (Stored(create.after, create.events), None)
    assert store.get("nothing-here", 5) == (None, None)
    assert store.perform(create, 5) == (ConditionFailed(create.after), None)
    flow = advance(flow, Written(), NOW)
    send = flow.effect
    assert isinstance(send, Send)
    assert queue.perform(send, None) == (Sent("sqs-1"), None)
    now[0] = send.deadline + 1  # past the invocation's end: the send never starts
    assert queue.perform(send, None) == (Failure(ErrorCategory.RETRYABLE, "DeadlineExceeded"), None)
    now[0] = send.deadline  # at the deadline it may still start
    assert queue.perform(send, None) == (Sent("sqs-2"), None)
    assert world.landed[msg.message_id] == ["sqs-1", "sqs-2"]


def test_a_change_to_the_team_s_own_attributes_is_named() -> None:
    """`foreign_changes`: each attribute changed, dropped or added, by name, in name order."""
    before = {"orderId": "o-1", "total": 3, "note": "x"}
    assert foreign_changes(before, dict(before)) == []
    after = {"orderId": "o-1", "total": 4, "extra": True}
    assert foreign_changes(before, after) == [
        "team attribute 'extra' changed from None to True",
        "team attribute 'note' changed from 'x' to None",
        "team attribute 'total' changed from 3 to 4",
    ]


def test_the_reconciler_s_index_partitions_cover_every_shard_of_each_kind() -> None:
    record = prepared(World(), message())
    key = attention_key(record)
    assert key is not None and key[1] == record.updated_at
    assert exhausted_partitions() == [f"EXHAUSTED#{n}" for n in range(DEFAULT_SHARDS)]
    assert key[0].replace("PENDING", "EXHAUSTED") in exhausted_partitions()


# ---- each write is decided at its own time, from the table of the flows that runs it ---------------


def run_timed(world: World, flow: Flow, start: int, *faults: Fault | None) -> tuple[Flow, int]:
    """Runs a flow to its end, the n-th effect performed (and its outcome taken) at `start + n`."""
    planned, now = list(faults), start
    while not flow.done:
        fault = planned.pop(0) if planned else None
        flow = advance(flow, world.perform(flow.effect, now, fault), now)
        now += 1
    return flow, now


def test_every_event_carries_the_time_its_write_was_decided() -> None:
    """The create is decided at the flow's start; each later write when the outcome before it came
    in: a claim by a replay, a rollback, a confirm, an expiry, a re-drive, an outbox's claim."""
    world, msg = World(), message()
    t = 2_000_000
    lease = lease_expiry(t, 10_000, SETTINGS)
    run_timed(world, start_submit(msg, "a-1", lease, t, SETTINGS), t, None, Fault.SEND_RETRYABLE)
    replay = start_submit(msg, "a-2", lease, t + 10, SETTINGS)  # the create fails: a replay claims
    run_timed(world, replay, t + 20, None, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED)
    record = world.record(msg.message_id)
    assert record is not None and record.phase is Phase.IN_FLIGHT
    expiry = record.lease_expires_at
    assert expiry is not None
    expire = reconcile_start(record, expiry, SETTINGS, "r-1", expiry + 40_000)
    assert expire is not None
    run_timed(world, expire, expiry + 5)
    record = world.record(msg.message_id)
    due = record.updated_at + SETTINGS.redrive_after_ms
    redrive = reconcile_start(record, due, SETTINGS, "r-2", due + 40_000)
    assert redrive is not None
    run_timed(world, redrive, due + 7)
    history = world.items[msg.message_id].history
    assert [(type(e).__name__, e.at) for e in history] == [
        ("Accepted", t),
        ("Claimed", t),
        ("SendFailed", t + 1),
        ("RolledBack", t + 1),
        ("Claimed", t + 20),  # the replay's claim, decided when its create failed
        ("RolledBack", expiry),  # its rollback was rejected: the reconciler expires its lease
        ("Claimed", due),
        ("SendConfirmed", due + 8),  # decided when the send's outcome came in
    ]
    assert world.record(msg.message_id).updated_at == due + 8

    world, msg = World(), message()
    prepared(world, msg, now=t)
    outbox, _ = run_timed(world, start_outbox(msg, "o-1", lease, t + 3, SETTINGS), t + 30)
    assert outbox.answer.result is Result.SENT
    history = world.items[msg.message_id].history
    assert [(type(e).__name__, e.at) for e in history] == [
        ("Accepted", t),
        ("Claimed", t + 30),  # the outbox's own record existed: `dispatch` claims it
        ("SendConfirmed", t + 32),
    ]
    claimed = history[1]
    assert isinstance(claimed, Claimed) and claimed.cause is ClaimCause.DISPATCH


def without(command: type) -> Flows:
    """The flows over the transition table less the rows of `command`."""
    return Flows(tuple(row for row in TRANSITIONS if row.command is not command))


# The stages each kind of flow passes through, and the command each stage's write carries.
STAGES = {
    Kind.SUBMIT: (Stage.CREATE, Stage.PREPARE, Stage.CLAIM, Stage.SEND, Stage.CONFIRM, Stage.ROLLBACK),
    Kind.REDRIVE: (Stage.CLAIM, Stage.SEND, Stage.CONFIRM, Stage.ROLLBACK),
    Kind.EXPIRE: (Stage.EXPIRE,),
    Kind.REARM: (Stage.REARM,),
}
WRITES = {
    Stage.CREATE: Submit,
    Stage.PREPARE: Prepare,
    Stage.CLAIM: Redrive,
    Stage.CONFIRM: ConfirmSend,
    Stage.ROLLBACK: ReportSendFailure,
    Stage.EXPIRE: ExpireLease,
    Stage.REARM: Rearm,
}


def test_next_has_a_step_for_every_outcome_a_flow_can_meet() -> None:
    """A landed write leaves the record where its table row goes; a failed condition finds any
    record, or none; a failed request leaves the record as the flow knew it. `NEXT` answers each."""
    missing = []
    for kind, stages in STAGES.items():
        for stage in stages:
            meets: list[tuple[Came, Phase]] = [(Came.FAILED, phase) for phase in Phase]
            if stage is Stage.SEND:
                meets += [(Came.SENT, Phase.IN_FLIGHT)]
            else:
                meets += [(Came.WRITTEN, row.target) for row in TRANSITIONS if row.command is WRITES[stage]]
                found = [p for p in Phase if p is not Phase.ABSENT]
                meets += [(came, p) for came in (Came.FOUND, Came.OTHER) for p in found]
                meets += [(Came.GONE, Phase.ABSENT)]
            missing += [(kind, stage, came, p) for came, p in meets if (kind, stage, came, p) not in NEXT]
    assert missing == []


def test_next_has_no_step_for_an_outcome_its_effect_cannot_have() -> None:
    """A send is never answered by a write's outcome, nor a write by SQS's: `advance` raises."""
    assert [key for key in NEXT if key[1] is Stage.SEND and key[2] not in (Came.SENT, Came.FAILED)] == []
    assert [key for key in NEXT if key[2] is Came.SENT and key[1] is not Stage.SEND] == []
    flow = start_submit(message(), "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    with pytest.raises(ValueError, match="cannot answer create"):
        advance(flow, Sent("sqs-1"), NOW)


def test_the_module_s_flows_are_those_over_the_table_as_written() -> None:
    assert FLOWS.table is TRANSITIONS and Flows() == FLOWS
    assert advance == FLOWS.advance and start_submit == FLOWS.start_submit
    assert reconcile_start == FLOWS.reconcile_start and prepare == FLOWS.prepare


def test_every_write_of_a_flow_is_decided_from_the_table_of_its_flows() -> None:
    """A model mutant runs flows over another table: each write must come from it, so a table
    without the row a step needs refuses that step."""
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    msg = message()
    with pytest.raises(ForbiddenCommand):
        without(Submit).start_submit(msg, "a-1", lease, NOW, SETTINGS)
    with pytest.raises(ForbiddenCommand):
        without(Prepare).start_outbox(msg, "a-1", lease, NOW, SETTINGS)
    with pytest.raises(ForbiddenCommand):
        without(Prepare).prepare(msg, NOW)
    for command, faults in ((ConfirmSend, ()), (ReportSendFailure, (None, Fault.SEND_RETRYABLE))):
        model = without(command)
        flow = model.start_submit(msg, "a-1", lease, NOW, SETTINGS)
        with pytest.raises(ForbiddenCommand):
            run(World(), flow, *faults, model=model)
    world = World()
    record = prepared(world, msg)
    no_claim = without(Redrive)
    with pytest.raises(ForbiddenCommand):
        no_claim.start_dispatch(record, "d-1", lease, NOW, SETTINGS)
    with pytest.raises(ForbiddenCommand):
        run(world, no_claim.start_outbox(msg, "o-1", lease, NOW, SETTINGS), model=no_claim)
    with pytest.raises(ForbiddenCommand):  # a replay of the PENDING record claims it
        run(world, no_claim.start_submit(msg, "a-2", lease, NOW, SETTINGS), model=no_claim)
    later = NOW + SETTINGS.redrive_after_ms
    with pytest.raises(ForbiddenCommand):
        no_claim.reconcile_start(record, later, SETTINGS, "r-1", later + 1)
    world = World()
    submit(world, msg, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED)
    in_flight = world.record(msg.message_id)
    assert in_flight is not None
    with pytest.raises(ForbiddenCommand):
        without(ExpireLease).reconcile_start(in_flight, lease, SETTINGS, "r-1", lease + 1)
    exhausted = attrs.evolve(record, exhausted=True)
    with pytest.raises(ForbiddenCommand):
        without(Rearm).start_rearm(exhausted, "op", "fixed", NOW)


def test_a_re_drive_s_confirm_and_rollback_come_from_the_table_of_its_flows() -> None:
    """The re-drive's later writes (the confirm, the rollback) come from the table of the flows that
    advance it, like its claim: a mutant's table reaches every step of the reconciler's flows."""
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    later = NOW + SETTINGS.redrive_after_ms
    for command, faults in ((ConfirmSend, ()), (ReportSendFailure, (None, Fault.SEND_RETRYABLE))):
        world, msg, model = World(), message(), without(command)
        record = prepared(world, msg)
        flow = model.reconcile_start(record, later, SETTINGS, "r-1", later + lease)
        assert flow is not None and flow.kind is Kind.REDRIVE
        with pytest.raises(ForbiddenCommand):
            run(world, flow, *faults, model=model)


def test_a_re_drive_claims_as_a_re_drive_and_a_failed_step_names_the_record_it_read() -> None:
    """Why the record was claimed is part of its history (`Claimed.cause`, in the item and the
    logs); and an AWS failure of the reconciler's claim or expiry answers with the record as read."""
    world, msg = World(), message()
    record = prepared(world, msg)
    later = NOW + SETTINGS.redrive_after_ms
    redrive = reconcile_start(record, later, SETTINGS, "r-1", later + 40_000)
    assert redrive is not None and isinstance(redrive.effect, Write)
    (claimed,) = redrive.effect.events
    assert isinstance(claimed, Claimed) and claimed.cause is ClaimCause.REDRIVE
    failed = advance(redrive, Failure(ErrorCategory.RETRYABLE, "ProvisionedThroughputExceeded"), later)
    assert failed.answer.result is Result.FAILED and failed.answer.record == record
    world = World()
    submit(world, msg, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED)
    in_flight = world.record(msg.message_id)
    assert in_flight is not None and in_flight.lease_expires_at is not None
    expire = reconcile_start(in_flight, in_flight.lease_expires_at, SETTINGS, "r-2", NOW)
    assert expire is not None and expire.kind is Kind.EXPIRE
    failed = advance(expire, Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError"), NOW)
    assert failed.answer.result is Result.FAILED and failed.answer.record == in_flight


def test_the_outbox_claims_its_own_new_record_as_dispatch_when_the_prepare_lands() -> None:
    world, msg = World(), message()
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    flow = start_outbox(msg, "o-1", lease, NOW, SETTINGS)
    flow = advance(flow, world.perform(flow.effect, NOW), NOW + 5)  # the team's transaction landed
    assert flow.stage is Stage.CLAIM and isinstance(flow.effect, Write)
    (claimed,) = flow.effect.events
    assert claimed == Claimed("o-1", lease, ClaimCause.DISPATCH, NOW + 5)


def test_a_flow_knows_the_record_its_last_write_left_finished_or_not() -> None:
    """The adapters tell a landed write by the flow's record after it (`runner.Logged.stepped` logs
    its events): each step, the last one too, holds the record as the write left it, or as found."""
    world, msg = World(), message()
    flow = start_submit(msg, "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    while not flow.done:
        effect = flow.effect
        flow = advance(flow, world.perform(effect, NOW), NOW)
        if isinstance(effect, Write):
            assert flow.record == effect.after == world.record(msg.message_id)
    assert flow.answer.result is Result.SENT and flow.answer.record == flow.record
    replay = start_submit(msg, "a-2", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    found = world.record(msg.message_id)
    assert found is not None
    done = advance(replay, ConditionFailed(found), NOW)
    assert done.answer.result is Result.ALREADY_QUEUED and done.record == found == done.answer.record


def test_a_confirm_or_rollback_that_did_not_land_answers_with_the_record_the_flow_held() -> None:
    """The record its lease protects, which the runner's unconfirmed and rollback_failed logs name by
    its version: not the record a failed condition found (another attempt's), nor None."""
    world, msg = World(), message()
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    flow = start_submit(msg, "a-1", lease, NOW, SETTINGS)
    flow = advance(flow, world.perform(flow.effect, NOW), NOW)  # created and claimed
    held = flow.record
    assert held is not None and held.phase is Phase.IN_FLIGHT
    sent = advance(flow, Sent("sqs-1"), NOW)
    failed = advance(flow, Failure(ErrorCategory.RETRYABLE, "RequestThrottled"), NOW)
    other = attrs.evolve(held, version=held.version + 3, attempt_id="a-2")
    for found in (other, None):
        confirm = advance(sent, ConditionFailed(found), NOW).answer
        assert (confirm.result, confirm.unconfirmed, confirm.record) == (Result.SENT, True, held)
        rollback = advance(failed, ConditionFailed(found), NOW).answer
        assert (rollback.result, rollback.rollback_failed, rollback.record) == (Result.FAILED, True, held)
    rolled_back = {"status": Status.PENDING, "attempt_id": None, "lease_expires_at": None}
    pending = attrs.evolve(held, version=held.version + 2, **rolled_back)  # a replay claims it again
    claim = advance(start_submit(msg, "a-4", lease, NOW, SETTINGS), ConditionFailed(pending), NOW)
    assert claim.stage is Stage.CLAIM and claim.record == pending
    assert advance(claim, ConditionFailed(None), NOW).answer.record == pending  # vanished: as it held


def test_the_send_names_the_attempt_that_claimed_the_record() -> None:
    """The send after a claim carries the claiming attempt, the message and the send deadline."""
    world, msg = World(), message()
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    flow = start_submit(msg, "a-1", lease, NOW, SETTINGS)
    flow = advance(flow, world.perform(flow.effect, NOW), NOW)
    assert flow.effect == Send(msg, "a-1", lease - SETTINGS.lease_margin_ms)


# ---- the answers of the rarer outcomes -------------------------------------------------------------


def test_each_send_failure_is_answered_with_its_own_code() -> None:
    for fault, code in (
        (Fault.SEND_RETRYABLE, "RequestThrottled"),
        (Fault.SEND_PERMANENT, "AWS.SimpleQueueService.NonExistentQueue"),
        (Fault.SEND_LOST_TIMEOUT, "ConnectionClosedError"),
        (Fault.SEND_LANDED_THEN_TIMEOUT, "ReadTimeoutError"),
    ):
        world, msg = World(), message()
        answer = submit(world, msg, None, fault).answer
        assert answer.failure is not None and answer.failure.code == code, fault
        assert not answer.rollback_failed and not answer.unconfirmed
        record = world.record(msg.message_id)
        assert record.last_error is not None and record.last_error.code == code


def test_a_claim_that_finds_the_record_gone_or_rolled_back_again_is_told_to_retry() -> None:
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE)
    lease = lease_expiry(NOW, 10_000, SETTINGS)
    replay = start_submit(msg, "a-2", lease, NOW, SETTINGS)
    replay = advance(replay, world.perform(replay.effect, NOW), NOW)
    assert replay.stage is Stage.CLAIM
    # another replay claims the record, fails its send and rolls it back: PENDING again, a new version
    assert submit(world, msg, None, None, Fault.SEND_RETRYABLE, attempt="a-3").answer.result is Result.FAILED
    current = world.record(msg.message_id)
    assert current is not None and current.phase is Phase.PENDING
    outcome = world.perform(replay.effect, NOW)
    assert outcome == ConditionFailed(current)
    answer = advance(replay, outcome, NOW).answer
    assert answer.failure == Failure(ErrorCategory.RETRYABLE, "Conflict") and answer.http_status == 503
    assert answer.record == current and world.record(msg.message_id) == current  # nothing claimed
    gone = advance(replay, ConditionFailed(None), NOW).answer  # the item vanished before its read
    assert gone.failure == Failure(ErrorCategory.RETRYABLE, "Conflict") and gone.http_status == 503
    assert gone.result is Result.FAILED and answer.result is Result.FAILED
    for start in (start_submit, start_outbox):
        created = start(message(key="k-9"), "a-9", lease, NOW, SETTINGS)
        vanished = advance(created, ConditionFailed(None), NOW).answer
        assert vanished.failure == Failure(ErrorCategory.RETRYABLE, "Conflict"), start
        assert vanished.result is Result.FAILED and vanished.http_status == 503
        assert vanished.record is None and vanished.message_id == message(key="k-9").message_id


def test_a_reconciler_write_that_lost_a_race_is_superseded_and_names_the_record_as_it_is() -> None:
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE)
    record = world.record(msg.message_id)
    later = NOW + SETTINGS.redrive_after_ms
    redrive = reconcile_start(record, later, SETTINGS, "r-1", later + 40_000)
    assert redrive is not None and redrive.kind is Kind.REDRIVE
    submit(world, msg, attempt="a-2")  # a replay sends it first
    current = world.record(msg.message_id)
    answer = run(world, redrive, now=later).answer
    assert (answer.result, answer.record) == (Result.SUPERSEDED, current)
    assert advance(redrive, ConditionFailed(None), later).answer.record is None
    assert world.landed[msg.message_id] == ["sqs-1"]

    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED)
    stale = world.record(msg.message_id)
    lease = stale.lease_expires_at
    assert reconcile(world, lease) == [Result.EXPIRED]
    expire = reconcile_start(stale, lease + 5, SETTINGS, "r-2", lease + 6)
    answer = run(world, expire, now=lease + 5).answer
    assert (answer.result, answer.record) == (Result.SUPERSEDED, world.record(msg.message_id))


def test_an_operator_re_arms_an_exhausted_record_once() -> None:
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_PERMANENT)
    exhausted = world.record(msg.message_id)
    assert exhausted is not None and exhausted.phase is Phase.EXHAUSTED
    flow = start_rearm(exhausted, "op", "queue policy fixed", NOW + 5)
    assert (flow.kind, flow.stage, flow.record) == (Kind.REARM, Stage.REARM, exhausted)
    answer = run(world, flow).answer
    record = world.record(msg.message_id)
    assert (answer.result, answer.record, answer.message_id) == (Result.REARMED, record, msg.message_id)
    assert record.phase is Phase.PENDING and record.attempts == 0 and record.updated_at == NOW + 5
    assert world.items[msg.message_id].history[-1] == Rearmed("op", "queue policy fixed", NOW + 5)
    again = run(world, start_rearm(exhausted, "op", "twice", NOW + 6)).answer  # read before the first
    assert (again.result, again.record) == (Result.SUPERSEDED, record)
    with pytest.raises(ForbiddenCommand):
        start_rearm(record, "op", "not exhausted", NOW + 7)


def test_an_outcome_that_does_not_fit_the_effect_is_refused() -> None:
    world, msg = World(), message()
    flow = start_submit(msg, "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS)
    send = advance(flow, world.perform(flow.effect, NOW), NOW)
    assert send.stage is Stage.SEND
    with pytest.raises(ValueError):
        advance(send, Written(), NOW)
    with pytest.raises(ValueError):
        advance(flow, Sent("sqs-1"), NOW)


def test_orphans_and_a_missing_accepted_are_reported_not_raised() -> None:
    """`orphans` judges each record at the time it is given: a live lease covers an unsent record, an
    expired one does not; a history without `Accepted` is a problem, not an exception."""
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED)
    record = world.record(msg.message_id)
    assert record is not None and record.lease_expires_at is not None
    assert orphans([record], world.delivered(), record.lease_expires_at - 1) == []
    (orphan,) = orphans([record], world.delivered(), record.lease_expires_at)
    assert msg.message_id in orphan  # the problem names the record
    history = world.items[msg.message_id].history
    assert metadata_problems(record, history) == []
    (problem,) = metadata_problems(record, history[1:])
    assert msg.message_id in problem


def test_the_reconciler_finds_a_record_when_it_is_due_and_not_before() -> None:
    """`is_due` (what one pass of the index queries selects): an in-flight record once its lease has
    expired, a PENDING one `redrive_after_ms` after its last move, an exhausted or confirmed one
    never (an exhausted record is in its own partitions, for operators)."""
    world, msg = World(), message()
    submit(world, msg, None, Fault.SEND_RETRYABLE, Fault.WRITE_REJECTED)
    in_flight = world.record(msg.message_id)
    lease = in_flight.lease_expires_at
    assert attention_key(in_flight)[1] == lease
    assert not is_due(in_flight, lease - 1, SETTINGS) and is_due(in_flight, lease, SETTINGS)
    assert reconcile(world, lease) == [Result.EXPIRED]
    pending = world.record(msg.message_id)
    due = pending.updated_at + SETTINGS.redrive_after_ms
    assert not is_due(pending, pending.updated_at, SETTINGS)
    assert not is_due(pending, due - 1, SETTINGS) and is_due(pending, due, SETTINGS)
    exhausted = attrs.evolve(pending, exhausted=True)
    partition, at = attention_key(exhausted)
    assert partition in exhausted_partitions() and at == exhausted.updated_at
    assert not is_due(exhausted, due + 10**9, SETTINGS)
    world, msg = World(), message()
    confirmed = submit(world, msg).answer.record
    assert confirmed is not None and confirmed.phase is Phase.CONFIRMED
    assert attention_key(confirmed) is None and not is_due(confirmed, NOW + 10**9, SETTINGS)


# ---- the reconciler's index: shards that a change of their count cannot strand --------------------


def test_shards_take_one_to_max_shards_and_read_at_least_what_they_write() -> None:
    """`Shards(write, read)` holds 1 <= write <= read <= MAX_SHARDS: each bound is taken, and each
    passed by one is refused with the rule."""
    for good in ((1, 1), (3, 3), (1, MAX_SHARDS), (MAX_SHARDS, MAX_SHARDS)):
        assert attrs.astuple(Shards(*good)) == good
    for bad in ((0, 0), (0, 4), (4, 3), (8, 4), (4, MAX_SHARDS + 1), (MAX_SHARDS + 1, MAX_SHARDS + 1)):
        with pytest.raises(ValueError, match="shards need 1 <= write"):
            Shards(*bad)


def test_configured_shards_read_at_least_what_they_write() -> None:
    assert Shards() == Shards(DEFAULT_SHARDS, DEFAULT_SHARDS)
    assert Shards.configured(8) == Shards(8, 8)
    assert Shards.configured(1) == Shards(1, 1)
    assert Shards.configured(4, 16) == Shards(4, 16)
    assert Shards.configured(8, 4) == Shards(8, 8)  # a pass always reads what is written
    assert Shards.configured(MAX_SHARDS, 1) == Shards(MAX_SHARDS, MAX_SHARDS)


def test_shards_read_every_shard_an_entry_can_be_in() -> None:
    """An entry written with any count up to `read` is in a shard the pass queries."""
    reads = Shards(2, 8)
    queried = {p for p, _ in due_queries(0, SETTINGS, reads)}
    for written in range(1, 9):
        for n in range(50):
            shard = Shards(written, 8).of(f"m-{n}")
            assert f"INFLIGHT#{shard}" in queried and f"PENDING#{shard}" in queried


def test_due_queries_interleave_kinds_shard_by_shard() -> None:
    assert [p for p, _ in due_queries(100_000, SETTINGS, Shards(3, 3))] == [
        "INFLIGHT#0",
        "PENDING#0",
        "INFLIGHT#1",
        "PENDING#1",
        "INFLIGHT#2",
        "PENDING#2",
    ]


@pytest.mark.parametrize("read", [1, 2, 8])
def test_an_entry_may_sit_in_any_shard_a_count_up_to_read_puts_it_in(read: int) -> None:
    """`possible` (what the audit accepts): exactly the shards some count up to `read` writes to."""
    shards = Shards(1, read)
    for n in range(50):
        message_id = f"m-{n}"
        assert shards.possible(message_id) == {Shards(c, read).of(message_id) for c in range(1, read + 1)}
    assert Shards(1, 1).possible("m-0") == {0}


@pytest.mark.parametrize("shards", [Shards(1, 1), Shards(2, 2), Shards(8, 8), Shards(2, 8)])
def test_one_pass_finds_every_due_record_in_whichever_shard_it_is(shards: Shards) -> None:
    """`is_due` looks for the record's entry under these shards among this pass's queries: a record
    is found once due, and not before, in every shard the count writes to."""
    world = World()
    seen: set[str] = set()
    for n in range(40):
        record = prepared(world, message({"n": n}, key=f"k-{n}"))
        key = attention_key(record, shards)
        assert key is not None
        seen.add(key[0])
        due = record.updated_at + SETTINGS.redrive_after_ms
        assert not is_due(record, due - 1, SETTINGS, shards) and is_due(record, due, SETTINGS, shards)
    assert seen == {f"PENDING#{shard}" for shard in range(shards.write)}


def test_rules_compile_to_every_key_they_name_the_first_rule_holding() -> None:
    """`NEXT` is `RULES` compiled when the module is imported; compiled again here (so a broken
    compiler fails this test, not only the import): a rule names the product of its kinds, stages,
    outcomes and phases — one value or a tuple of them — and where two rules name one key, the first
    holds. Every rule is live: each names at least one key no earlier rule took."""
    from statemodel import flows

    assert compile_rules(flows.RULES) == NEXT
    first, second = flows.SendMessage(), flows.Confirm()
    both = (Kind.SUBMIT, Kind.REDRIVE)
    table = compile_rules(
        (
            (Kind.SUBMIT, Stage.SEND, Came.SENT, (Phase.IN_FLIGHT, Phase.PENDING), first),
            (both, Stage.SEND, Came.SENT, Phase.IN_FLIGHT, second),
        )
    )
    assert table == {
        (Kind.SUBMIT, Stage.SEND, Came.SENT, Phase.IN_FLIGHT): first,
        (Kind.SUBMIT, Stage.SEND, Came.SENT, Phase.PENDING): first,
        (Kind.REDRIVE, Stage.SEND, Came.SENT, Phase.IN_FLIGHT): second,
    }
    taken: set[object] = set()
    for n, rule in enumerate(flows.RULES):
        named = set(compile_rules((rule,)))
        assert named - taken, f"rule {n} ({rule}) names no key an earlier rule did not take"
        taken |= named
    assert taken == set(NEXT)


@pytest.mark.parametrize(
    ("step", "outcome"),
    [
        (flows_module.Claim(flows_module.ClaimCause.REDRIVE), None),
        (flows_module.SendMessage(), None),
        (flows_module.Confirm(), Sent("sqs-1")),
        (flows_module.RollBack(), Failure(ErrorCategory.RETRYABLE, "Throttled")),
    ],
)
def test_a_step_that_needs_the_record_is_refused_without_one(step: object, outcome: object) -> None:
    """A claim, a send, a confirm and a rollback act on the record the flow knows: no table row gives
    one of them to a flow that knows none, and one given it is refused by its own error, not by
    whatever the missing record would break further on."""
    plan = start_submit(message(), "a-1", lease_expiry(NOW, 10_000, SETTINGS), NOW, SETTINGS).plan
    with pytest.raises(ValueError, match="cannot be taken by a submit flow here"):
        FLOWS._take(plan, step, None, "m-1", NOW, outcome)  # type: ignore[arg-type]
