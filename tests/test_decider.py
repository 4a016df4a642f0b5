"""decide / evolve / replay: each allowed transition, fencing, the lease guard, and histories that
`decide` could not have written (duplicated, reordered, forged, half-written)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from statemodel import (
    Accepted,
    ClaimCause,
    Claimed,
    ConfirmSend,
    ErrorCategory,
    Event,
    ExhaustionCause,
    ExpireLease,
    ForbiddenCommand,
    IllegalTransition,
    LeaseStillLive,
    Message,
    Phase,
    Prepare,
    Rearm,
    Rearmed,
    Record,
    Redrive,
    RedriveExhausted,
    ReportSendFailure,
    RollbackCause,
    RolledBack,
    SendConfirmed,
    SendFailed,
    StaleAttempt,
    Status,
    Submit,
    decide,
    replay,
)
from statemodel.decider import HistoryChecker, evolve_all, segment
from statemodel.events import event_from_dict, event_to_dict, message_from_summary

MESSAGE = Message("m-1", '{"a":1}', (("group", "g"),), "c-1", 100, "hash", "key-1")


def submitted() -> tuple[list[Event], Record]:
    events = list(decide(None, Submit(MESSAGE, "a-1", 1_000), 100))
    record = evolve_all(None, events)
    assert record is not None
    return events, record


def test_submit_creates_and_claims_in_one_write() -> None:
    events, record = submitted()
    assert [type(e) for e in events] == [Accepted, Claimed]
    assert record.status is Status.QUEUED and record.phase is Phase.IN_FLIGHT
    assert (record.attempts, record.attempt_id, record.lease_expires_at, record.version) == (
        1,
        "a-1",
        1_000,
        2,
    )


def test_confirm_by_the_owner_confirms_and_ends_the_lease() -> None:
    _, record = submitted()
    (event,) = decide(record, ConfirmSend("a-1", "s-1"), 200)
    confirmed = evolve_all(record, [event])
    assert confirmed.phase is Phase.CONFIRMED and confirmed.lease_expires_at is None
    assert confirmed.message == MESSAGE


@pytest.mark.parametrize("category", [ErrorCategory.RETRYABLE, ErrorCategory.AMBIGUOUS])
def test_a_failed_send_rolls_back_keeping_the_message(category: ErrorCategory) -> None:
    _, record = submitted()
    events = decide(record, ReportSendFailure("a-1", category, "Code"), 200)
    assert [type(e) for e in events] == [SendFailed, RolledBack]
    after = evolve_all(record, events)
    assert after.phase is Phase.PENDING and after.attempt_id is None and after.lease_expires_at is None
    assert after.message == MESSAGE and after.last_error.category == category.value


def test_an_accepted_record_starts_pending_at_version_one() -> None:
    record = evolve_all(None, [Accepted(MESSAGE, 100)])
    assert record == Record(MESSAGE, Status.PENDING, version=1, updated_at=100)
    assert record.status.value == "PENDING"  # the persisted status, as the item stores it


def test_a_permanent_failure_rolls_back_and_exhausts() -> None:
    _, record = submitted()
    events = decide(record, ReportSendFailure("a-1", ErrorCategory.PERMANENT, "AccessDenied"), 200)
    assert [type(e) for e in events] == [SendFailed, RolledBack, RedriveExhausted]
    assert evolve_all(record, events).phase is Phase.EXHAUSTED
    _, rolled_back, exhausted = events  # why, as the history and the logs tell it
    assert rolled_back == RolledBack("a-1", RollbackCause.SEND_FAILED, 200)
    assert exhausted == RedriveExhausted(ExhaustionCause.PERMANENT_ERROR, 200)


def test_an_expired_lease_is_rolled_back_as_expired() -> None:
    _, record = submitted()
    (rolled_back,) = decide(record, ExpireLease("a-1"), 1_000)
    assert rolled_back == RolledBack("a-1", RollbackCause.LEASE_EXPIRED, 1_000)
    after = evolve_all(record, [rolled_back])
    assert after is not None and after.status is Status.PENDING  # the persisted status, as stored
    assert (after.attempt_id, after.lease_expires_at, after.version) == (None, None, record.version + 1)


def test_a_re_armed_record_is_pending_with_a_fresh_budget_and_its_last_error() -> None:
    _, record = submitted()
    events = decide(record, ReportSendFailure("a-1", ErrorCategory.PERMANENT, "AccessDenied"), 200)
    exhausted = evolve_all(record, events)
    assert exhausted is not None and exhausted.exhausted
    (rearmed,) = decide(exhausted, Rearm("ops@host", "key re-enabled"), 300)
    assert rearmed == Rearmed("ops@host", "key re-enabled", 300)
    after = evolve_all(exhausted, [rearmed])
    assert after == attrs.evolve(
        exhausted, exhausted=False, attempts=0, version=exhausted.version + 1, updated_at=300
    )


def test_redrive_claims_until_attempts_run_out() -> None:
    _, record = submitted()
    record = evolve_all(record, decide(record, ExpireLease("a-1"), 1_000))
    (claim,) = decide(record, Redrive("a-2", 5_000, ClaimCause.REDRIVE, max_attempts=2), 2_000)
    assert isinstance(claim, Claimed) and claim.cause is ClaimCause.REDRIVE
    (exhausted,) = decide(record, Redrive("a-2", 5_000, ClaimCause.REDRIVE, max_attempts=1), 2_000)
    assert exhausted == RedriveExhausted(ExhaustionCause.MAX_ATTEMPTS, 2_000)


def test_fencing_refuses_another_attempt() -> None:
    _, record = submitted()
    for command in (
        ConfirmSend("a-2", "s-1"),
        ReportSendFailure("a-2", ErrorCategory.RETRYABLE, "X"),
        ExpireLease("a-2"),
    ):
        with pytest.raises(StaleAttempt):
            decide(record, command, 5_000)


def test_a_live_lease_is_not_expired() -> None:
    _, record = submitted()
    with pytest.raises(LeaseStillLive):
        decide(record, ExpireLease("a-1"), 999)
    assert decide(record, ExpireLease("a-1"), 1_000)


def test_a_confirmed_record_is_never_rolled_back() -> None:
    _, record = submitted()
    confirmed = evolve_all(record, decide(record, ConfirmSend("a-1", "s-1"), 200))
    for command in (ExpireLease("a-1"), ReportSendFailure("a-1", ErrorCategory.AMBIGUOUS, "X")):
        with pytest.raises(ForbiddenCommand, match="never rolled back"):
            decide(confirmed, command, 10**9)


# ---- histories -----------------------------------------------------------------------------------


def good_history() -> list[Event]:
    events, record = submitted()
    more = decide(record, ReportSendFailure("a-1", ErrorCategory.RETRYABLE, "Throttled"), 200)
    record = evolve_all(record, more)
    claim = decide(record, Redrive("a-2", 9_000, ClaimCause.REDRIVE, 5), 300)
    record = evolve_all(record, claim)
    confirm = decide(record, ConfirmSend("a-2", "s-9"), 400)
    return [*events, *more, *claim, *confirm]


def test_replay_of_a_real_history_is_its_projection() -> None:
    history = good_history()
    record = replay(history)
    assert record is not None and record.phase is Phase.CONFIRMED and record.version == len(history)


@pytest.mark.parametrize(
    ("name", "tamper"),
    [
        ("duplicated confirm", lambda h: [*h, h[-1]]),
        ("duplicated claim", lambda h: [*h[:2], h[1], *h[2:]]),
        ("reordered", lambda h: [h[0], h[2], h[1], *h[3:]]),
        ("forged attempt", lambda h: [*h[:-1], attrs.evolve(h[-1], attempt_id="a-9")]),
        ("half a write", lambda h: h[:3]),
        ("no Accepted", lambda h: h[1:]),
        ("early lease rollback", lambda h: [*h[:2], RolledBack("a-1", RollbackCause.LEASE_EXPIRED, 999)]),
        ("confirm then rollback", lambda h: [*h, RolledBack("a-2", RollbackCause.LEASE_EXPIRED, 10**6)]),
    ],
)
def test_replay_refuses_a_history_decide_could_not_write(name: str, tamper: object) -> None:
    with pytest.raises(IllegalTransition):
        replay(tamper(good_history()))


def test_history_checker_knows_when_a_write_is_half_applied() -> None:
    checker = HistoryChecker()
    history = good_history()  # Accepted Claimed | SendFailed RolledBack | Claimed | SendConfirmed
    checker.apply(history[0])
    assert checker.complete  # Accepted alone is a whole write: the transactional outbox's Prepare
    checker.apply(history[1])
    assert checker.complete
    checker.apply(history[2])
    assert not checker.complete  # SendFailed without its RolledBack: half of one write
    with pytest.raises(IllegalTransition, match="ends inside a write"):
        checker.require_complete()
    checker.apply(history[3])
    assert checker.complete


def test_a_prepared_record_is_pending_and_claimed_by_a_dispatch() -> None:
    prepared = decide(None, Prepare(MESSAGE), 100)
    record = evolve_all(None, prepared)
    assert [type(e) for e in prepared] == [Accepted] and record is not None
    assert (record.phase, record.version, record.attempts) == (Phase.PENDING, 1, 0)
    claim = decide(record, Redrive("a-1", 9_000, ClaimCause.DISPATCH, 5), 200)
    assert replay([*prepared, *claim]) == evolve_all(record, claim)
    assert [row.command for row in segment([*prepared, *claim])] == [Prepare, Redrive]
    with pytest.raises(ForbiddenCommand):
        decide(record, Prepare(MESSAGE), 300)  # a record exists: Prepare is only for a new key


def test_events_survive_the_codec() -> None:
    history = good_history()
    assert [event_from_dict(event_to_dict(e), MESSAGE) for e in history] == history


def test_the_codec_keeps_payload_and_attributes_out_of_stored_and_logged_events() -> None:
    data = event_to_dict(good_history()[0])
    assert "payload" not in data and "attributes" not in data and '{"a":1}' not in str(data)


@pytest.mark.parametrize(
    "changed",
    [
        {"correlation_id": "c-other"},
        {"created_at": 101},
        {"request_hash": "other"},
        {"idempotency_key": None},
        {"correlation_id": "c-other", "request_hash": "other"},
    ],
)
def test_an_accepted_that_disagrees_with_the_record_is_refused_naming_what_disagrees(
    changed: dict[str, Any],
) -> None:
    """The error names each field that disagrees, and no other, beside the event it quotes."""
    data = event_to_dict(good_history()[0])
    with pytest.raises(ValueError) as caught:
        event_from_dict(data, attrs.evolve(MESSAGE, **changed))
    said = str(caught.value).replace(repr(data), "")
    named = {
        name for name in ("correlation_id", "created_at", "request_hash", "idempotency_key") if name in said
    }
    assert named == set(changed)


def test_a_summary_is_enough_to_check_a_trace() -> None:
    history = [event_to_dict(e) for e in good_history()]
    message = message_from_summary("m-1", history[0])
    assert replay([event_from_dict(d, message) for d in history]).phase is Phase.CONFIRMED


def test_unknown_event_types_are_refused() -> None:
    with pytest.raises(ValueError):
        event_from_dict({"type": "Teleported", "at": 1}, MESSAGE)


# ---- the stored and logged form of events (the item's history and the log lines: a contract) -------


def test_each_event_is_stored_as_plain_data_with_its_fields() -> None:
    """The shapes the DynamoDB item's history and the transition log lines carry, and that the trace
    checker and the audit read back."""
    accepted = event_to_dict(Accepted(MESSAGE, 100))
    assert accepted == {
        "type": "Accepted",
        "at": 100,
        "correlation_id": "c-1",
        "created_at": 100,
        "request_hash": "hash",
        "idempotency_key": "key-1",
    }
    assert event_to_dict(Claimed("a-1", 1_000, ClaimCause.REPLAY, 200)) == {
        "type": "Claimed", "attempt_id": "a-1", "lease_expires_at": 1_000, "cause": "replay", "at": 200,
    }  # fmt: skip
    assert event_to_dict(SendFailed("a-1", "permanent", "AccessDenied", 300)) == {
        "type": "SendFailed", "attempt_id": "a-1", "category": "permanent", "code": "AccessDenied", "at": 300,
    }  # fmt: skip
    assert event_to_dict(RolledBack("a-1", RollbackCause.LEASE_EXPIRED, 400)) == {
        "type": "RolledBack", "attempt_id": "a-1", "cause": "lease_expired", "at": 400,
    }  # fmt: skip
    assert event_to_dict(RedriveExhausted(ExhaustionCause.PERMANENT_ERROR, 500)) == {
        "type": "RedriveExhausted", "cause": "permanent_error", "at": 500,
    }  # fmt: skip


def test_stored_numbers_and_names_are_read_back_as_the_events_they_were() -> None:
    """DynamoDB returns numbers as Decimal (or text, in a log line): they are read back as ints, and
    causes as their enums."""
    from decimal import Decimal

    events: list[Event] = [
        Accepted(MESSAGE, 100),
        Claimed("a-1", 1_000, ClaimCause.REDRIVE, 200),
        RolledBack("a-1", RollbackCause.SEND_FAILED, 300),
        RedriveExhausted(ExhaustionCause.MAX_ATTEMPTS, 400),
    ]
    for event in events:
        data = {k: Decimal(v) if isinstance(v, int) else v for k, v in event_to_dict(event).items()}
        back = event_from_dict(data, MESSAGE)
        assert back == event and type(back.at) is int
    text = {**event_to_dict(events[1]), "at": "200", "lease_expires_at": "1000"}
    claimed = event_from_dict(text, MESSAGE)
    assert claimed == events[1] and isinstance(claimed, Claimed) and claimed.cause is ClaimCause.REDRIVE


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Claimed", "attempt_id": "a-1", "cause": "submit", "at": 1},  # no lease
        {"type": "Claimed", "attempt_id": "a-1", "lease_expires_at": 5, "cause": "teleport", "at": 1},
        {"type": "RolledBack", "attempt_id": "a-1", "at": 1},  # no cause
        {"type": "SendConfirmed", "attempt_id": "a-1", "at": 1, "extra": True},
        {"type": "Accepted", "at": 1},
        {"at": 1},
    ],
)
def test_a_malformed_event_is_a_value_error_that_names_it(data: dict[str, object]) -> None:
    with pytest.raises(ValueError) as caught:
        event_from_dict(data, MESSAGE)
    assert repr(data) in str(caught.value)


def test_segment_names_the_row_of_each_write() -> None:
    from statemodel.decider import segment

    events, record = submitted()
    failed = decide(record, ReportSendFailure("a-1", ErrorCategory.PERMANENT, "AccessDenied"), 300)
    rows = segment([*events, *failed])
    assert [(r.source, r.command.__name__, r.target) for r in rows] == [
        (Phase.ABSENT, "Submit", Phase.IN_FLIGHT),
        (Phase.IN_FLIGHT, "ReportSendFailure", Phase.EXHAUSTED),  # the longer row, in one write
    ]
    retryable = decide(record, ReportSendFailure("a-1", ErrorCategory.RETRYABLE, "Throttled"), 300)
    assert [r.target for r in segment([*events, *retryable])] == [Phase.IN_FLIGHT, Phase.PENDING]
    with pytest.raises(IllegalTransition, match="no table row writes SendConfirmed from ABSENT"):
        segment([SendConfirmed("a-1", "s-1", 1)])
    assert segment([]) == []


def test_an_accepted_with_its_numbers_as_text_reads_back_as_the_event() -> None:
    """A log line may carry `at` and `created_at` as text: compared with the message as numbers."""
    data = {k: str(v) if isinstance(v, int) else v for k, v in event_to_dict(Accepted(MESSAGE, 100)).items()}
    assert data["created_at"] == "100"
    assert event_from_dict(data, MESSAGE) == Accepted(MESSAGE, 100)
    with pytest.raises(ValueError):
        event_from_dict({**data, "created_at": "101"}, MESSAGE)


def test_stored_events_hold_plain_strings_and_numbers_not_enums() -> None:
    """JSON-able data of builtin types only: a cause is its text, not the enum member."""
    for event in [*good_history(), RedriveExhausted(ExhaustionCause.MAX_ATTEMPTS, 9)]:
        data = event_to_dict(event)
        assert all(type(value) in (str, int) for value in data.values() if value is not None), data
