"""The inbox's pure model, pinned where `make mutation` found it loose: the exact events each command
decides (times, attempts, errors), the exact record each event leaves, the refusals and what they
say, the boundaries of every guard, the histories the checker accepts and rejects, the stored form of
every event, the invariants' verdicts, and the in-memory world's conditional writes as DynamoDB's.

Pure and fast: `[tool.mutmut]` runs this file against every mutant of statemodel/inbox.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemodel.categories import ErrorCategory, Failure
from statemodel.checker.inbox_world import (
    EFFECT_REFUSED,
    HANDLER_FAILED,
    HANDLER_OK,
    InboxFault,
    InboxWorld,
    commit_effects,
)
from statemodel.errors import ForbiddenCommand, IllegalTransition, StaleAttempt
from statemodel.inbox import flows, invariants
from statemodel.inbox.commands import (
    Claim,
    Commit,
    Complete,
    InboxCommand,
    RearmMessage,
    RecordFailure,
    Release,
)
from statemodel.inbox.decider import InboxHistoryChecker, decide, evolve, evolve_all, replay, segment
from statemodel.inbox.events import (
    INBOX_EVENT_TYPES,
    ClaimExpired,
    ClaimTaken,
    Completed,
    EffectCommitted,
    InboxEvent,
    InboxStored,
    MessageRearmed,
    Received,
    ReceiveFailed,
    ReceivesExhausted,
    Released,
    event_from_dict,
    event_to_dict,
)
from statemodel.inbox.flows import (
    Conflict,
    Found,
    Handled,
    HandlerError,
    InboxAnswer,
    InboxFlow,
    InboxFlows,
    InboxResult,
    InboxSettings,
    InboxWrite,
    Invoke,
    Read,
    Written,
    condition_holds,
)
from statemodel.inbox.records import ClaimHeld, InboxMessage, InboxPhase, InboxRecord
from statemodel.inbox.table import (
    EVENT_TARGET,
    INBOX_TRANSITIONS,
    Guard,
    InboxTransition,
    Mode,
    forbidden_moves,
    row_writing,
    rows_for,
    rows_of,
)
from statemodel.validation import ECHO_CHARS, Rejection, parse_submission

MESSAGE = InboxMessage("m-1", "sha256:ab", "g-1")
RETRYABLE, PERMANENT = ErrorCategory.RETRYABLE, ErrorCategory.PERMANENT


def record(phase: InboxPhase, **fields: object) -> InboxRecord:
    base: dict[str, object] = {"version": 4, "updated_at": 50}
    return InboxRecord(MESSAGE, phase, **{**base, **fields})  # type: ignore[arg-type]


def waiting(receives: int = 1) -> InboxRecord:
    return record(InboxPhase.WAITING, receives=receives, last_error=Failure(ErrorCategory.RETRYABLE, "E"))


def held(attempt: str = "a-1", lease: int = 100, receives: int = 1) -> InboxRecord:
    return record(InboxPhase.PROCESSING, receives=receives, attempt_id=attempt, lease_expires_at=lease)


def after(before: InboxRecord | None, command: InboxCommand, now: int) -> InboxRecord:
    result = evolve_all(before, decide(before, command, now))
    assert result is not None
    return result


# ---- decide: the exact events of each row --------------------------------------------------------


def test_each_row_decides_its_events_stamped_with_now_and_the_commands_fields() -> None:
    assert decide(None, Claim(MESSAGE, "a-1", 130, 3), 7) == (Received(MESSAGE, 7), ClaimTaken("a-1", 130, 7))
    assert decide(waiting(), Claim(MESSAGE, "a-2", 140, 3), 8) == (ClaimTaken("a-2", 140, 8),)
    assert decide(waiting(3), Claim(MESSAGE, "a-2", 140, 3), 8) == (ReceivesExhausted(8),)
    assert decide(held(lease=100), Claim(MESSAGE, "a-2", 230, 3), 101) == (
        ClaimExpired("a-1", 101),
        ClaimTaken("a-2", 230, 101),
    )
    assert decide(held(lease=100, receives=3), Claim(MESSAGE, "a-2", 230, 3), 102) == (
        ClaimExpired("a-1", 102),
        ReceivesExhausted(102),
    )
    assert decide(held(), Complete("a-1", '{"ok": 1}'), 9) == (Completed("a-1", '{"ok": 1}', 9),)
    assert decide(held(), Release("a-1", PERMANENT, "Bad", 3), 10) == (
        Released("a-1", "permanent", "Bad", 10),
    )
    assert decide(held(receives=3), Release("a-1", RETRYABLE, "E", 3), 11) == (
        Released("a-1", "retryable", "E", 11),
        ReceivesExhausted(11),
    )
    assert decide(None, Commit(MESSAGE, "a-1"), 12) == (Received(MESSAGE, 12), EffectCommitted("a-1", 12))
    assert decide(waiting(), Commit(MESSAGE, "a-3"), 13) == (EffectCommitted("a-3", 13),)
    assert decide(None, RecordFailure(MESSAGE, "a-1", PERMANENT, "Bad", 3), 14) == (
        Received(MESSAGE, 14),
        ReceiveFailed("a-1", "permanent", "Bad", 14),
    )
    assert decide(None, RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", 1), 15) == (
        Received(MESSAGE, 15),
        ReceiveFailed("a-1", "retryable", "E", 15),
        ReceivesExhausted(15),
    )
    assert decide(waiting(), RecordFailure(MESSAGE, "a-2", RETRYABLE, "E", 3), 16) == (
        ReceiveFailed("a-2", "retryable", "E", 16),
    )
    assert decide(waiting(2), RecordFailure(MESSAGE, "a-2", RETRYABLE, "E", 3), 17) == (
        ReceiveFailed("a-2", "retryable", "E", 17),
        ReceivesExhausted(17),
    )
    failed = record(InboxPhase.FAILED, receives=3)
    assert decide(failed, RearmMessage("ops", "fixed the schema"), 18) == (
        MessageRearmed("ops", "fixed the schema", 18),
    )


# ---- decide: the guards at their boundaries ------------------------------------------------------


def test_a_claim_counts_against_max_receives_exactly() -> None:
    assert after(waiting(2), Claim(MESSAGE, "a-2", 200, 3), 0).phase is InboxPhase.PROCESSING
    assert after(waiting(3), Claim(MESSAGE, "a-2", 200, 3), 0).phase is InboxPhase.FAILED
    assert after(waiting(4), Claim(MESSAGE, "a-2", 200, 3), 0).phase is InboxPhase.FAILED


def test_a_release_gives_up_once_the_claim_used_the_last_receive() -> None:
    assert after(held(receives=2), Release("a-1", RETRYABLE, "E", 3), 0).phase is InboxPhase.WAITING
    assert after(held(receives=3), Release("a-1", RETRYABLE, "E", 3), 0).phase is InboxPhase.FAILED


@pytest.mark.parametrize("before", [None, waiting(0)])
def test_a_failed_receive_gives_up_when_it_is_the_last(before: InboxRecord | None) -> None:
    receives = 0 if before is None else before.receives
    for limit, phase in ((receives + 2, InboxPhase.WAITING), (receives + 1, InboxPhase.FAILED)):
        failure = RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", limit)
        assert after(before, failure, 0).phase is phase, limit
    assert after(waiting(1), RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", 3), 0).phase is InboxPhase.WAITING


def test_a_claim_is_taken_over_from_the_instant_its_lease_expires() -> None:
    with pytest.raises(ClaimHeld):
        decide(held(lease=100), Claim(MESSAGE, "a-2", 300, 3), 99)
    assert after(held(lease=100, receives=2), Claim(MESSAGE, "a-2", 300, 3), 100).attempt_id == "a-2"
    assert after(held(lease=100, receives=3), Claim(MESSAGE, "a-2", 300, 3), 100).phase is InboxPhase.FAILED
    with pytest.raises(ClaimHeld):
        decide(held(lease=100, receives=3), Claim(MESSAGE, "a-2", 300, 3), 99)


def test_the_row_chosen_does_not_depend_on_the_order_of_the_rows() -> None:
    """Rows sharing a source and a command are told apart by their guards alone."""
    reordered = tuple(reversed(INBOX_TRANSITIONS))
    cases: list[tuple[InboxRecord | None, InboxCommand, int]] = [
        (before, command, now)
        for before in (
            None,
            waiting(0),
            waiting(1),
            waiting(2),
            waiting(3),
            held(receives=2),
            held(receives=3),
        )
        for limit in (1, 2, 3, 4)
        for command in (
            Claim(MESSAGE, "a-2", 300, limit),
            Release("a-1", RETRYABLE, "E", limit),
            RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", limit),
        )
        for now in (99, 100)
    ]
    for before, command, now in cases:
        try:
            expected = decide(before, command, now)
        except ForbiddenCommand as exc:
            with pytest.raises(type(exc)):
                decide(before, command, now, reordered)
        else:
            assert decide(before, command, now, reordered) == expected, (before, command, now)


# ---- decide: the refusals, and what they tell the caller ----------------------------------------


def test_a_command_with_no_row_is_refused_saying_why() -> None:
    with pytest.raises(
        ForbiddenCommand, match=r"^Claim is forbidden: a DONE message is never applied again$"
    ):
        decide(record(InboxPhase.DONE), Claim(MESSAGE, "a-1", 100, 3), 0)
    with pytest.raises(
        ForbiddenCommand, match=r"^Commit is forbidden: the message was given up; an operator must re-arm it$"
    ):
        decide(record(InboxPhase.FAILED), Commit(MESSAGE, "a-1"), 0)
    with pytest.raises(ForbiddenCommand, match=r"^RearmMessage is forbidden in phase WAITING$"):
        decide(waiting(), RearmMessage("ops", "why"), 0)
    with pytest.raises(ForbiddenCommand, match=r"^Complete is forbidden in phase ABSENT$"):
        decide(None, Complete("a-1", "r"), 0)


def test_a_command_of_an_attempt_that_does_not_hold_the_claim_is_stale() -> None:
    message = r"^Complete names attempt 'a-2', but m-1 is held by 'a-1'$"
    with pytest.raises(StaleAttempt, match=message):
        decide(held(), Complete("a-2", "r"), 0)
    with pytest.raises(StaleAttempt, match=r"^Release names attempt 'a-9', but m-1 is held by 'a-1'$"):
        decide(held(), Release("a-9", RETRYABLE, "E", 3), 0)
    assert decide(held(), Release("a-1", RETRYABLE, "E", 3), 0) == (Released("a-1", "retryable", "E", 0),)


def test_a_claim_of_a_live_lease_is_refused_naming_the_holder_and_its_expiry() -> None:
    with pytest.raises(ClaimHeld, match=r"^Claim: m-1 is held by 'a-1' until 100, when its lease expires$"):
        decide(held(lease=100), Claim(MESSAGE, "a-2", 300, 3), 50)


def test_a_command_whose_guards_all_fail_is_refused_naming_the_guard() -> None:
    """Only a table missing a row leaves a command with no guard that holds; `decide` refuses it."""
    only_receive_left = tuple(row for row in INBOX_TRANSITIONS if row.guard is not Guard.NO_RECEIVE_LEFT)
    message = r"^Claim on a WAITING record: guard failed \(receives < max_receives\)$"
    with pytest.raises(ForbiddenCommand, match=message) as refused:
        decide(waiting(3), Claim(MESSAGE, "a-2", 300, 3), 0, only_receive_left)
    assert type(refused.value) is ForbiddenCommand
    assert decide(waiting(2), Claim(MESSAGE, "a-2", 300, 3), 0, only_receive_left) == (
        ClaimTaken("a-2", 300, 0),
    )


def test_guards_refuse_with_their_own_error() -> None:
    assert Guard.EXPIRED_RECEIVE_LEFT.refusal is ClaimHeld
    assert Guard.EXPIRED_NO_RECEIVE_LEFT.refusal is ClaimHeld
    for guard in (Guard.RECEIVE_LEFT, Guard.NO_RECEIVE_LEFT, Guard.ANOTHER_RECEIVE, Guard.LAST_RECEIVE):
        assert guard.refusal is ForbiddenCommand, guard


# ---- evolve: the exact record each event leaves --------------------------------------------------


def test_the_first_event_creates_the_record_waiting_at_version_one() -> None:
    assert evolve(None, Received(MESSAGE, 5)) == InboxRecord(
        MESSAGE, InboxPhase.WAITING, version=1, updated_at=5
    )


def test_no_event_but_received_starts_a_record() -> None:
    with pytest.raises(IllegalTransition, match=r"^ClaimTaken before Received$"):
        evolve(None, ClaimTaken("a-1", 100, 0))


def test_each_event_leaves_exactly_its_record() -> None:
    error = Failure(ErrorCategory.RETRYABLE, "E")
    cases: list[tuple[InboxRecord, InboxEvent, InboxRecord]] = [
        (
            waiting(1),
            ClaimTaken("a-2", 300, 60),
            record(
                InboxPhase.PROCESSING,
                version=5,
                updated_at=60,
                receives=2,
                attempt_id="a-2",
                lease_expires_at=300,
                last_error=error,
            ),
        ),
        (
            held(),
            ClaimExpired("a-1", 100),
            record(InboxPhase.WAITING, version=5, updated_at=100, receives=1),
        ),
        (
            held(),
            Completed("a-1", "r", 61),
            record(InboxPhase.DONE, version=5, updated_at=61, receives=1, attempt_id="a-1", result="r"),
        ),
        (
            held(),
            Released("a-1", "permanent", "Bad", 62),
            record(
                InboxPhase.WAITING,
                version=5,
                updated_at=62,
                receives=1,
                last_error=Failure(ErrorCategory.PERMANENT, "Bad"),
            ),
        ),
        (
            waiting(1),
            EffectCommitted("a-3", 63),
            record(InboxPhase.DONE, version=5, updated_at=63, receives=1, attempt_id="a-3", last_error=error),
        ),
        (
            waiting(1),
            ReceiveFailed("a-3", "ambiguous", "ReadTimeoutError", 64),
            record(
                InboxPhase.WAITING,
                version=5,
                updated_at=64,
                receives=2,
                last_error=Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError"),
            ),
        ),
        (
            held(receives=3),
            ReceivesExhausted(65),
            record(InboxPhase.FAILED, version=5, updated_at=65, receives=3),
        ),
        (
            record(InboxPhase.FAILED, receives=3, last_error=error),
            MessageRearmed("ops", "fixed", 66),
            record(InboxPhase.WAITING, version=5, updated_at=66, receives=0, last_error=error),
        ),
    ]
    for before, event, expected in cases:
        assert evolve(before, event) == expected, event
    assert {type(event) for _, event, _ in cases} | {Received} == set(INBOX_EVENT_TYPES)


def test_every_event_leaves_the_record_where_the_table_says() -> None:
    """`EVENT_TARGET` (which the docs and the rows' walk read) and `evolve` agree, from any phase."""
    starts = [waiting(1), held(), record(InboxPhase.FAILED, receives=3), record(InboxPhase.DONE)]
    samples: list[InboxEvent] = [
        ClaimTaken("a-1", 100, 0),
        ClaimExpired("a-1", 100),
        Completed("a-1", "r", 0),
        Released("a-1", "retryable", "E", 0),
        EffectCommitted("a-1", 0),
        ReceiveFailed("a-1", "retryable", "E", 0),
        ReceivesExhausted(0),
        MessageRearmed("ops", "r", 0),
    ]
    assert evolve(None, Received(MESSAGE, 0)).phase is EVENT_TARGET[Received]
    for start in starts:
        for event in samples:
            assert evolve(start, event).phase is EVENT_TARGET[type(event)], (start.phase, event)


# ---- histories: what the checker accepts, segments and rejects -----------------------------------


def _history(*steps: tuple[InboxCommand, int]) -> tuple[InboxEvent, ...]:
    events: tuple[InboxEvent, ...] = ()
    current: InboxRecord | None = None
    for command, now in steps:
        new = decide(current, command, now)
        current = evolve_all(current, new)
        events += new
    return events


def test_a_takeover_exactly_at_the_lease_expiry_is_a_legal_history() -> None:
    history = _history((Claim(MESSAGE, "a-1", 100, 3), 0), (Claim(MESSAGE, "a-2", 300, 3), 100))
    replayed = replay(history)
    assert replayed is not None and (replayed.attempt_id, replayed.receives) == ("a-2", 2)


def test_the_checker_follows_every_row_of_each_mode() -> None:
    guarded = _history(
        (Claim(MESSAGE, "a-1", 100, 2), 0),
        (Release("a-1", RETRYABLE, "E", 2), 10),
        (Claim(MESSAGE, "a-2", 200, 2), 20),
        (Claim(MESSAGE, "a-3", 400, 2), 200),
        (RearmMessage("ops", "fixed"), 300),
        (Claim(MESSAGE, "a-4", 500, 2), 310),
        (Release("a-4", RETRYABLE, "E", 1), 320),
        (RearmMessage("ops", "again"), 330),
        (Claim(MESSAGE, "a-5", 600, 2), 340),
        (Complete("a-5", "r"), 350),
    )
    transactional = _history(
        (RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", 3), 0),
        (RecordFailure(MESSAGE, "a-2", RETRYABLE, "E", 3), 1),
        (RecordFailure(MESSAGE, "a-3", RETRYABLE, "E", 3), 2),
        (RearmMessage("ops", "fixed"), 3),
        (Commit(MESSAGE, "a-4"), 4),
    )
    for history in (guarded, transactional):
        checker = InboxHistoryChecker()
        assert (checker.phase, checker.record) == (InboxPhase.ABSENT, None)
        for event in history:
            checker.apply(event)
        assert checker.complete and checker.record == replay(history) == evolve_all(None, history)
        assert checker.phase is InboxPhase.DONE
    assert [row.label for row in segment(guarded)] == [
        "ABSENT Claim -> PROCESSING",
        "PROCESSING Release -> WAITING",
        "WAITING Claim -> PROCESSING",
        "PROCESSING Claim -> FAILED",
        "FAILED RearmMessage -> WAITING",
        "WAITING Claim -> PROCESSING",
        "PROCESSING Release -> FAILED",
        "FAILED RearmMessage -> WAITING",
        "WAITING Claim -> PROCESSING",
        "PROCESSING Complete -> DONE",
    ]
    assert [row.label for row in segment(transactional)] == [
        "ABSENT RecordFailure -> WAITING",
        "WAITING RecordFailure -> WAITING",
        "WAITING RecordFailure -> FAILED",
        "FAILED RearmMessage -> WAITING",
        "WAITING Commit -> DONE",
    ]


def test_segment_takes_the_longest_row_that_fits_first() -> None:
    """Received, ReceiveFailed, ReceivesExhausted is one failed last receive, not a failed receive
    then a claim with no receive left."""
    history = _history((RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", 1), 0))
    assert [row.label for row in segment(history)] == ["ABSENT RecordFailure -> FAILED"]
    assert segment(history) == [rows_for(InboxPhase.ABSENT, RecordFailure)[1]]
    single = _history((RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", 3), 0), (Commit(MESSAGE, "a-2"), 1))
    assert [len(row.events) for row in segment(single)] == [2, 1]
    assert segment(()) == []


def test_segment_rejects_a_history_no_row_writes() -> None:
    with pytest.raises(IllegalTransition, match=r"^no row writes ClaimTaken from ABSENT$"):
        segment((ClaimTaken("a-1", 100, 0),))
    with pytest.raises(IllegalTransition, match=r"^no row writes Completed from DONE$"):
        segment((*_history((Commit(MESSAGE, "a-1"), 0)), Completed("a-1", "r", 1)))


def test_a_history_that_stops_inside_a_write_is_incomplete() -> None:
    with pytest.raises(IllegalTransition, match=r"^history of m-1 ends inside a write$"):
        replay((Received(MESSAGE, 0),))
    checker = InboxHistoryChecker()
    checker.apply(Received(MESSAGE, 0))
    assert not checker.complete
    with pytest.raises(IllegalTransition, match="ends inside a write"):
        checker.require_complete()
    with pytest.raises(
        IllegalTransition, match=r"^Completed is not allowed for m-1 in phase WAITING \(inside a write\)$"
    ):
        checker.apply(Completed("a-1", "r", 0))


def test_an_event_no_row_allows_is_rejected_saying_where() -> None:
    with pytest.raises(
        IllegalTransition, match=r"^ClaimTaken is not allowed for a new inbox record in phase ABSENT$"
    ):
        replay((ClaimTaken("a-1", 100, 0),))
    with pytest.raises(IllegalTransition, match=r"^MessageRearmed is not allowed for m-1 in phase DONE$"):
        replay((*_history((Commit(MESSAGE, "a-1"), 0)), MessageRearmed("ops", "r", 1)))
    assert replay(()) is None


def test_the_events_of_a_lost_claim_are_fenced_out() -> None:
    claimed = _history((Claim(MESSAGE, "a-1", 100, 3), 0))
    stale: list[tuple[InboxEvent, ...]] = [
        (Completed("a-9", "r", 5),),
        (Released("a-9", "retryable", "E", 5),),
        (ClaimExpired("a-9", 100), ClaimTaken("a-2", 300, 100)),
    ]
    for events in stale:
        lost = rf"^{type(events[0]).__name__} by 'a-9', whose claim on m-1 was lost to 'a-1' \(fencing\)$"
        with pytest.raises(IllegalTransition, match=lost):
            replay(claimed + events)
    assert replay((*claimed, Released("a-1", "retryable", "E", 5))) is not None
    early = r"^the claim of a-1 on m-1 was taken over at 99, before its lease expired at 100$"
    with pytest.raises(IllegalTransition, match=early):
        replay((*claimed, ClaimExpired("a-1", 99), ClaimTaken("a-2", 300, 99)))


def test_a_checker_judges_by_the_table_it_is_given() -> None:
    """A checker of a table without the transactional commit rejects the history that row wrote."""
    no_commit = tuple(row for row in INBOX_TRANSITIONS if row.command is not Commit)
    history = _history((Commit(MESSAGE, "a-1"), 0))
    checker = InboxHistoryChecker(no_commit)
    checker.apply(history[0])
    with pytest.raises(IllegalTransition, match="EffectCommitted is not allowed"):
        checker.apply(history[1])
    assert InboxHistoryChecker().apply(history[0]).phase is InboxPhase.WAITING


# ---- the events' stored form ---------------------------------------------------------------------


def test_each_event_is_stored_as_its_type_and_its_fields() -> None:
    assert event_to_dict(Received(MESSAGE, 5)) == {"type": "Received", "at": 5}
    assert event_to_dict(ClaimTaken("a-1", 130, 6)) == {
        "type": "ClaimTaken",
        "attempt_id": "a-1",
        "lease_expires_at": 130,
        "at": 6,
    }
    assert event_to_dict(Released("a-1", "permanent", "Bad", 7)) == {
        "type": "Released",
        "attempt_id": "a-1",
        "category": "permanent",
        "code": "Bad",
        "at": 7,
    }
    assert event_to_dict(MessageRearmed("ops", "fixed", 8)) == {
        "type": "MessageRearmed",
        "by": "ops",
        "reason": "fixed",
        "at": 8,
    }
    assert event_to_dict(ReceivesExhausted(9)) == {"type": "ReceivesExhausted", "at": 9}


EVENTS: list[InboxEvent] = [
    Received(MESSAGE, 1),
    ClaimTaken("a-1", 130, 2),
    ClaimExpired("a-1", 130),
    Completed("a-1", '{"x": 1}', 3),
    Released("a-1", "retryable", "E", 4),
    EffectCommitted("a-1", 5),
    ReceiveFailed("a-1", "permanent", "Bad", 6),
    ReceivesExhausted(7),
    MessageRearmed("ops", "fixed", 8),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_an_event_read_back_from_dynamodb_numbers_is_the_event_with_integer_times(event: InboxEvent) -> None:
    """DynamoDB hands numbers back as Decimal; the events read back hold ints (JSON-able, as logged)."""
    stored = {k: Decimal(v) if isinstance(v, int) else v for k, v in event_to_dict(event).items()}
    read = event_from_dict(stored, MESSAGE)
    assert read == event
    assert json.dumps(event_to_dict(read)) == json.dumps(event_to_dict(event))
    assert all(type(v) is int for k, v in event_to_dict(read).items() if k in ("at", "lease_expires_at"))


def test_a_stored_event_that_no_write_left_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^not an inbox event: \{'type': 'Accepted', 'at': 1\}$"):
        event_from_dict({"type": "Accepted", "at": 1}, MESSAGE)
    with pytest.raises(ValueError, match=r"^not an inbox event: \{'at': 1\}$"):
        event_from_dict({"at": 1}, MESSAGE)
    with pytest.raises(ValueError, match=r"^malformed Received \('at'\): \{'type': 'Received'\}$"):
        event_from_dict({"type": "Received"}, MESSAGE)
    with pytest.raises(ValueError, match=r"^malformed ClaimTaken \(.*lease_expires_at.*\): "):
        event_from_dict({"type": "ClaimTaken", "attempt_id": "a-1", "at": 1}, MESSAGE)
    with pytest.raises(
        ValueError, match=r"^malformed ReceivesExhausted \(.*\): \{'type': 'ReceivesExhausted'"
    ):
        event_from_dict({"type": "ReceivesExhausted", "at": "soon"}, MESSAGE)
    with pytest.raises(ValueError, match=r"^malformed Completed \(.*'extra'.*\)"):
        event_from_dict({"type": "Completed", "attempt_id": "a", "result": "r", "at": 1, "extra": 2}, MESSAGE)
    data = {"type": "Received", "at": 3}
    assert event_from_dict(data, MESSAGE) == Received(MESSAGE, 3) and data == {"type": "Received", "at": 3}


@given(at=st.integers(0, 2**53), lease=st.integers(0, 2**53), attempt=st.text(min_size=1, max_size=8))
def test_every_claim_round_trips_through_its_stored_form(at: int, lease: int, attempt: str) -> None:
    for event in (ClaimTaken(attempt, lease, at), ClaimExpired(attempt, at), Received(MESSAGE, at)):
        assert event_from_dict(event_to_dict(event), MESSAGE) == event


# ---- the table's queries -------------------------------------------------------------------------


def test_the_table_answers_which_row_writes_what() -> None:
    claim = row_writing(InboxPhase.ABSENT, (Received, ClaimTaken))
    assert claim is not None and (claim.command, claim.target) == (Claim, InboxPhase.PROCESSING)
    assert row_writing(InboxPhase.WAITING, (Received, ClaimTaken)) is None
    assert row_writing(InboxPhase.ABSENT, (Received,)) is None
    assert [row.guard for row in rows_for(InboxPhase.PROCESSING, Release)] == [
        Guard.RECEIVE_LEFT,
        Guard.NO_RECEIVE_LEFT,
    ]
    assert rows_for(InboxPhase.DONE, Claim) == ()
    moves = forbidden_moves()
    assert (InboxPhase.DONE, Claim) in moves and (InboxPhase.ABSENT, Claim) not in moves
    assert {command for phase, command in moves if phase is InboxPhase.DONE} == {
        Claim,
        Complete,
        Release,
        Commit,
        RecordFailure,
        RearmMessage,
    }
    assert len(moves) == 5 * 6 - len({(row.source, row.command) for row in INBOX_TRANSITIONS})
    assert forbidden_moves(()) == [(phase, command) for phase in InboxPhase for command in (
        Claim, Complete, Release, Commit, RecordFailure, RearmMessage)]  # fmt: skip
    assert rows_of(Mode.GUARDED, ()) == ()
    assert len(rows_of(Mode.GUARDED)) + len(rows_of(Mode.TRANSACTIONAL)) == len(INBOX_TRANSITIONS) + 1


def test_a_row_is_labelled_by_source_command_and_target() -> None:
    row = InboxTransition(InboxPhase.WAITING, Commit, (EffectCommitted,), InboxPhase.DONE)
    assert row.label == "WAITING Commit -> DONE"
    assert row.modes == frozenset(Mode) and not row.fenced and row.guard is None


# ---- the invariants' verdicts --------------------------------------------------------------------


def test_a_history_is_judged_against_its_stored_projection() -> None:
    history = _history((Commit(MESSAGE, "a-1"), 0))
    done = replay(history)
    assert done is not None and invariants.history_problems(done, history) == []
    wrong = record(InboxPhase.DONE, version=2, updated_at=0, attempt_id="a-2")
    assert invariants.history_problems(wrong, history) == [
        f"m-1: history replays to {done!r}, stored {wrong!r}"
    ]
    assert invariants.history_problems(done, history[:1]) == [
        "m-1: illegal history: history of m-1 ends inside a write"
    ]


def test_the_effect_invariants_say_what_is_wrong() -> None:
    done, waiting_record = record(InboxPhase.DONE), waiting()
    assert invariants.effect_problems("m", None, 0) == []
    assert invariants.effect_problems("m", None, 2) == ["m: effect applied 2 times"]
    assert invariants.effect_problems("m", waiting_record, 1) == []
    assert invariants.effect_problems("m", done, 3) == ["m: effect applied 3 times"]
    assert invariants.settled_effect_problems("m", done, 1) == []
    assert invariants.settled_effect_problems("m", done, 0) == [
        "m: DONE with its effect applied 0 times, not once"
    ]
    assert invariants.settled_effect_problems("m", done, 2) == [
        "m: DONE with its effect applied 2 times, not once"
    ]
    assert invariants.settled_effect_problems("m", waiting_record, 0) == []
    assert invariants.settled_effect_problems("m", None, 0) == []
    assert invariants.settled_effect_problems("m", waiting_record, 1) == [
        "m: WAITING, yet its effect was applied 1 time(s)"
    ]
    assert invariants.settled_effect_problems("m", None, 2) == [
        "m: no record, yet its effect was applied 2 time(s)"
    ]


def test_the_guarded_invariants_say_what_is_wrong() -> None:
    done, running = record(InboxPhase.DONE), held()
    assert invariants.holder_problems("m", []) == []
    assert invariants.holder_problems("m", ["b", "c", "a"]) == ["m: held by 3 invocations at once (a, b, c)"]
    assert invariants.rerun_problems("m", done, []) == []
    assert invariants.rerun_problems("m", None, ["a"]) == []
    assert invariants.rerun_problems("m", running, ["a"]) == []
    assert invariants.rerun_problems("m", done, ["b", "a"]) == [
        "m: a, b runs its handler again after it was done"
    ]


def test_a_message_deleted_before_it_is_done_is_dropped() -> None:
    assert invariants.dropped("m", None, deleted=False) == []
    assert invariants.dropped("m", waiting(), deleted=False) == []
    assert invariants.dropped("m", record(InboxPhase.DONE), deleted=True) == []
    assert invariants.dropped("m", None, deleted=True) == [
        "m: deleted from the queue but never done (no record)"
    ]
    assert invariants.dropped("m", held(), deleted=True) == [
        "m: deleted from the queue but never done (PROCESSING)"
    ]


# ---- the world: DynamoDB's conditional writes, in memory -----------------------------------------


def _create(command: InboxCommand, now: int = 0, commit: bool = False) -> InboxWrite:
    events = decide(None, command, now)
    new = evolve_all(None, events)
    assert new is not None
    return InboxWrite(None, events, new, commit)


def _next(write: InboxWrite, command: InboxCommand, now: int, commit: bool = False) -> InboxWrite:
    events = decide(write.after, command, now)
    return InboxWrite(write.after, events, evolve_all(write.after, events) or write.after, commit)


def test_a_write_lands_only_on_the_record_it_was_decided_from() -> None:
    world = InboxWorld()
    assert world.record is None and world.stored is None and world.effects == 0
    claim = _create(Claim(MESSAGE, "a-1", 100, 3))
    assert world.perform(claim) == Written()
    assert world.stored == InboxStored(claim.after, claim.events)
    rival = _create(Claim(MESSAGE, "a-2", 200, 3))
    assert world.perform(rival) == Conflict(claim.after)  # the old item, as ALL_OLD returns it
    assert world.stored == InboxStored(claim.after, claim.events)
    complete = _next(claim, Complete("a-1", "r"), 5)
    assert world.perform(complete) == Written()
    assert world.stored == InboxStored(complete.after, claim.events + complete.events)
    assert world.record == complete.after
    assert world.perform(complete) == Conflict(complete.after)  # a retry finds its own result
    assert world.perform(Read("m-1")) == Found(complete.after)
    assert world.effects == 0  # a guarded write carries no effect


def test_the_condition_is_status_version_and_attempt_as_read() -> None:
    claim = _create(Claim(MESSAGE, "a-1", 100, 3))
    assert condition_holds(claim, None)
    assert not condition_holds(claim, claim.after)
    complete = _next(claim, Complete("a-1", "r"), 5)
    assert condition_holds(complete, claim.after)
    assert not condition_holds(complete, None)
    assert condition_holds(complete, InboxRecord(MESSAGE, InboxPhase.PROCESSING, 2, 99, 7, "a-1", 1, "x"))
    for changed in (
        InboxRecord(MESSAGE, InboxPhase.WAITING, 2, 0, 1),
        InboxRecord(MESSAGE, InboxPhase.PROCESSING, 3, 0, 1, "a-1", 100),
        InboxRecord(MESSAGE, InboxPhase.PROCESSING, 2, 0, 1, "a-2", 100),
    ):
        assert not condition_holds(complete, changed), changed


def test_a_world_writes_under_the_condition_it_is_given() -> None:
    claim = _create(Claim(MESSAGE, "a-1", 100, 3))
    refusing = InboxWorld(condition=lambda write, current: False)
    assert refusing.perform(claim) == Conflict(None) and refusing.stored is None
    counting = InboxWorld(effects_of=lambda effect, outcome, landed: 2)
    counting.perform(Read("m-1"))
    counting.perform(claim)
    assert counting.effects == 4


def test_the_effect_lands_with_the_commit_and_only_with_it() -> None:
    world = InboxWorld()
    commit = _create(Commit(MESSAGE, "a-1"), commit=True)
    assert world.perform(commit) == Written() and world.effects == 1
    assert world.perform(Read("m-1")) == Found(commit.after) and world.effects == 1
    assert world.perform(commit) == Conflict(commit.after) and world.effects == 1
    failure = InboxWorld()
    assert failure.perform(_create(RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", 3))) == Written()
    assert failure.effects == 0
    assert commit_effects(commit, Written(), True) == 1
    assert commit_effects(commit, Conflict(None), False) == 0
    assert commit_effects(with_commit(commit, False), Written(), True) == 0
    assert commit_effects(Read("m-1"), Found(None), True) == 0


def with_commit(write: InboxWrite, commit: bool) -> InboxWrite:
    return InboxWrite(write.before, write.events, write.after, commit)


def test_a_commit_cancelled_by_the_effects_own_condition_writes_nothing() -> None:
    world = InboxWorld()
    commit = _create(Commit(MESSAGE, "a-1"), commit=True)
    assert world.perform(commit, handler=EFFECT_REFUSED) == EFFECT_REFUSED
    assert world.stored is None and world.effects == 0
    failure = _create(RecordFailure(MESSAGE, "a-1", RETRYABLE, "E", 3))
    assert world.perform(failure, handler=EFFECT_REFUSED) == Written()  # not a commit: no effect to refuse
    assert (
        world.perform(_next(failure, Commit(MESSAGE, "a-2"), 1, commit=True), handler=HANDLER_FAILED)
        == Written()
    )
    assert world.effects == 1


def test_the_handler_answers_an_invoke() -> None:
    world = InboxWorld()
    invoke = Invoke("m-1", "a-1", "m-1", 100)
    assert world.perform(invoke) == HANDLER_OK == Handled("result")
    assert world.perform(invoke, handler=HANDLER_FAILED) == HANDLER_FAILED
    assert world.perform(invoke, InboxFault.WRITE_REJECTED, Handled("x")) == Handled("x")
    assert world.stored is None and world.effects == 0
    with pytest.raises(ValueError, match=r"^an answer is not performed$"):
        world.perform(InboxAnswer(InboxResult.DONE, "m-1", None))


def test_each_fault_fails_as_dynamodb_does_and_lands_or_not() -> None:
    throttled = Failure(RETRYABLE, "ProvisionedThroughputExceededException")
    world = InboxWorld()
    assert world.perform(Read("m-1"), InboxFault.READ_FAILED) == throttled
    commit = _create(Commit(MESSAGE, "a-1"), commit=True)
    assert world.perform(commit, InboxFault.WRITE_REJECTED) == throttled
    assert world.stored is None and world.effects == 0
    assert world.perform(commit, InboxFault.WRITE_LANDED_THEN_TIMEOUT) == Failure(
        ErrorCategory.AMBIGUOUS, "ReadTimeoutError"
    )
    assert world.record == commit.after and world.effects == 1
    retried = InboxWorld()
    assert retried.perform(commit, InboxFault.WRITE_LANDED_THEN_RETRIED) == Conflict(commit.after)
    assert retried.record == commit.after and retried.effects == 1
    # A landing fault on a write whose condition fails: nothing landed, the plain conflict.
    assert retried.perform(commit, InboxFault.WRITE_LANDED_THEN_TIMEOUT) == Conflict(commit.after)
    assert retried.perform(commit, InboxFault.WRITE_LANDED_THEN_RETRIED) == Conflict(commit.after)
    assert retried.effects == 1
    assert world.perform(Read("m-1"), InboxFault.WRITE_REJECTED) == Found(commit.after)


# ---- validation: how an error repeats the caller's text ------------------------------------------


def test_an_error_repeats_a_short_name_whole_and_cuts_a_long_one_saying_its_length() -> None:
    fits = "n" * ECHO_CHARS
    whole = parse_submission(json.dumps({"payload": 1, fits: 2}))
    assert isinstance(whole, Rejection) and whole.message.startswith(f"unknown field {fits!r};")
    longer = "n" * (ECHO_CHARS + 1)
    cut = parse_submission(json.dumps({"payload": 1, longer: 2}))
    assert isinstance(cut, Rejection)
    assert cut.message.startswith(f"unknown field {fits!r}… ({ECHO_CHARS + 1} characters);")


# ---- the flows: each step's effect and each answer, whole ----------------------------------------

SETTINGS = InboxSettings(max_receives=3, lease_margin_ms=30_000)


def _guarded(
    attempt: str = "a-1", now: int = 0, deadline: int = 1_000, settings: InboxSettings = SETTINGS
) -> InboxFlow:
    return flows.start_guarded(MESSAGE, attempt, now, deadline, settings)


def _transactional(attempt: str = "a-1", now: int = 0, deadline: int = 1_000) -> InboxFlow:
    return flows.start_transactional(MESSAGE, attempt, now, deadline, SETTINGS)


def test_a_claims_lease_ends_the_margin_after_the_invocations_deadline() -> None:
    assert flows.lease_expiry(1_000, SETTINGS) == 31_000
    assert flows.idempotency_key(MESSAGE) == "m-1"
    flow = _guarded(deadline=1_000)
    assert flow.lease_expires_at == 31_000 and not flow.done
    assert flow.effect == _create(Claim(MESSAGE, "a-1", 31_000, 3), now=0)


def test_a_transactional_delivery_reads_first_then_commits_with_the_effect() -> None:
    flow = _transactional(now=3, deadline=900)
    assert flow.effect == Read("m-1") and not flow.done
    flow = flows.advance(flow, Found(None), 5)
    assert flow.effect == Invoke("m-1", "a-1", "m-1", 900)
    flow = flows.advance(flow, Handled("r"), 7)
    assert flow.effect == _create(Commit(MESSAGE, "a-1"), now=7, commit=True)
    commit = flow.effect
    assert isinstance(commit, InboxWrite) and commit.message_id == "m-1"
    done = flows.advance(flow, Written(), 9)
    assert done.done and done.answer == InboxAnswer(InboxResult.DONE, "m-1", commit.after, ran=True)
    assert done.answer.ok and done.answer.stored_result is None
    with pytest.raises(ValueError, match=r"^the flow has finished$"):
        flows.advance(done, Written(), 10)


def test_a_transactional_delivery_counts_a_failed_handler_as_a_failed_receive() -> None:
    found = waiting(1)
    flow = flows.advance(_transactional(), Found(found), 5)
    assert flow.effect == Invoke("m-1", "a-1", "m-1", 1_000)
    failure = HandlerError(Failure(PERMANENT, "Bad"))
    flow = flows.advance(flow, failure, 6)
    write = flow.effect
    assert isinstance(write, InboxWrite) and not write.commit
    assert write == _next(InboxWrite(None, (), found), RecordFailure(MESSAGE, "a-1", PERMANENT, "Bad", 3), 6)
    answer = flows.advance(flow, Written(), 7).answer
    assert answer == InboxAnswer(InboxResult.RETRY, "m-1", write.after, failure.failure, ran=True)
    assert not answer.ok
    last = flows.advance(
        flows.advance(flows.advance(_transactional(), Found(waiting(2)), 5), failure, 6), Written(), 7
    )
    assert last.answer.result is InboxResult.GIVEN_UP and last.answer.record is not None
    assert last.answer.record.phase is InboxPhase.FAILED


def test_a_transactional_commit_cancelled_by_the_effects_condition_counts_a_failed_receive() -> None:
    flow = flows.advance(flows.advance(_transactional(), Found(None), 5), Handled("r"), 6)
    flow = flows.advance(flow, EFFECT_REFUSED, 7)
    assert flow.effect == _create(RecordFailure(MESSAGE, "a-1", PERMANENT, "EffectConditionFailed", 3), now=7)
    answer = flows.advance(flow, Written(), 8).answer
    assert (answer.result, answer.failure, answer.ran, answer.uncompleted) == (
        InboxResult.RETRY,
        EFFECT_REFUSED.failure,
        True,
        False,
    )


def test_a_transactional_delivery_answers_from_what_it_reads() -> None:
    done = record(InboxPhase.DONE, attempt_id="a-0")
    assert flows.advance(_transactional(), Found(done), 5).answer == InboxAnswer(
        InboxResult.DUPLICATE, "m-1", done
    )
    failed = record(InboxPhase.FAILED, receives=3)
    assert flows.advance(_transactional(), Found(failed), 5).answer == InboxAnswer(
        InboxResult.GIVEN_UP, "m-1", failed
    )
    claimed = held()
    assert flows.advance(_transactional(), Found(claimed), 5).answer == InboxAnswer(
        InboxResult.BUSY, "m-1", claimed
    )


def test_a_transactional_commit_that_finds_the_record_changed_answers_by_what_it_found() -> None:
    committing = flows.advance(flows.advance(_transactional(), Found(None), 5), Handled("r"), 6)
    done = record(InboxPhase.DONE, attempt_id="a-2")
    assert flows.advance(committing, Conflict(done), 7).answer == InboxAnswer(
        InboxResult.DUPLICATE, "m-1", done, ran=True
    )
    other = waiting(1)
    assert flows.advance(committing, Conflict(other), 7).answer == InboxAnswer(
        InboxResult.RETRY, "m-1", other, ran=True, uncompleted=True
    )
    failing = flows.advance(flows.advance(_transactional(), Found(None), 5), HANDLER_FAILED, 6)
    assert flows.advance(failing, Conflict(other), 7).answer == InboxAnswer(
        InboxResult.RETRY, "m-1", other, HANDLER_FAILED.failure, ran=True
    )
    assert flows.advance(failing, Conflict(done), 7).answer.result is InboxResult.DUPLICATE


def test_a_failed_call_answers_retry_and_says_whether_a_completion_may_not_have_landed() -> None:
    timeout = Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError")
    throttled = Failure(RETRYABLE, "ProvisionedThroughputExceededException")
    as_failure = Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError")
    assert flows.advance(_transactional(), throttled, 1).answer == InboxAnswer(
        InboxResult.RETRY,
        "m-1",
        None,
        Failure(RETRYABLE, "ProvisionedThroughputExceededException"),
    )
    committing = flows.advance(flows.advance(_transactional(), Found(None), 5), Handled("r"), 6)
    assert flows.advance(committing, timeout, 7).answer == InboxAnswer(
        InboxResult.RETRY, "m-1", None, as_failure, ran=True, uncompleted=True
    )
    failing = flows.advance(flows.advance(_transactional(), Found(None), 5), HANDLER_FAILED, 6)
    assert flows.advance(failing, timeout, 7).answer == InboxAnswer(
        InboxResult.RETRY,
        "m-1",
        None,
        HANDLER_FAILED.failure,
        ran=True,  # the handler's failure, kept
    )
    claim = _guarded()
    assert flows.advance(claim, timeout, 1).answer == InboxAnswer(InboxResult.RETRY, "m-1", None, as_failure)
    running = flows.advance(claim, Written(), 1)
    completing = flows.advance(running, Handled("r"), 2)
    assert flows.advance(completing, timeout, 3).answer == InboxAnswer(
        InboxResult.RETRY, "m-1", running.record, as_failure, ran=True, uncompleted=True
    )
    releasing = flows.advance(running, HANDLER_FAILED, 2)
    assert flows.advance(releasing, timeout, 3).answer == InboxAnswer(
        InboxResult.RETRY, "m-1", running.record, HANDLER_FAILED.failure, ran=True
    )


def test_a_guarded_delivery_claims_runs_and_completes_under_its_attempt() -> None:
    flow = _guarded(now=2, deadline=1_000)
    claim = flow.effect
    assert isinstance(claim, InboxWrite)
    flow = flows.advance(flow, Written(), 3)
    assert flow.effect == Invoke("m-1", "a-1", "m-1", 1_000)
    flow = flows.advance(flow, Handled('{"id": 7}'), 4)
    complete = flow.effect
    assert complete == _next(claim, Complete("a-1", '{"id": 7}'), 4)
    assert isinstance(complete, InboxWrite) and not complete.commit
    answer = flows.advance(flow, Written(), 5).answer
    assert answer == InboxAnswer(InboxResult.DONE, "m-1", complete.after, ran=True)
    assert answer.ok and answer.stored_result == '{"id": 7}'


def test_a_guarded_handler_starts_up_to_its_deadline_and_not_after() -> None:
    at_deadline = flows.advance(_guarded(deadline=100), Written(), 100)
    assert isinstance(at_deadline.effect, Invoke)
    late = flows.advance(_guarded(deadline=100), Written(), 101)
    assert late.answer.result is InboxResult.RETRY and late.answer.record is not None
    assert late.answer.failure == Failure(RETRYABLE, "DeadlineExceeded")


def test_a_guarded_failing_handler_releases_its_claim() -> None:
    flow = _guarded()
    claim = flow.effect
    assert isinstance(claim, InboxWrite)
    failure = HandlerError(Failure(PERMANENT, "Bad"))
    flow = flows.advance(flows.advance(flow, Written(), 1), failure, 2)
    release = flow.effect
    assert release == _next(claim, Release("a-1", PERMANENT, "Bad", 3), 2)
    assert isinstance(release, InboxWrite)
    assert flows.advance(flow, Written(), 3).answer == InboxAnswer(
        InboxResult.RETRY, "m-1", release.after, failure.failure, ran=True
    )
    assert flows.advance(flow, Conflict(None), 3).answer == InboxAnswer(
        InboxResult.LOST, "m-1", None, failure.failure, ran=True, uncompleted=True
    )
    last = _guarded(settings=InboxSettings(max_receives=1, lease_margin_ms=30_000))
    last = flows.advance(flows.advance(last, Written(), 1), failure, 2)
    assert flows.advance(last, Written(), 3).answer.result is InboxResult.GIVEN_UP


def test_a_guarded_claim_meets_what_is_there() -> None:
    taker = held("a-0", lease=500)
    busy = flows.advance(_guarded(), Conflict(taker), 499)
    assert busy.answer == InboxAnswer(InboxResult.BUSY, "m-1", taker)
    retaking = flows.advance(_guarded(now=500), Conflict(taker), 500)
    assert retaking.effect == _next(InboxWrite(None, (), taker), Claim(MESSAGE, "a-1", 31_000, 3), 500)
    assert flows.advance(retaking, Conflict(held("a-7", lease=900)), 501).answer.result is InboxResult.BUSY
    moved_again = flows.advance(retaking, Conflict(waiting(1)), 501)  # one retry only: come back later
    assert moved_again.answer == InboxAnswer(InboxResult.BUSY, "m-1", waiting(1))
    done = record(InboxPhase.DONE, attempt_id="a-0", result="kept")
    duplicate = flows.advance(_guarded(), Conflict(done), 1).answer
    assert duplicate == InboxAnswer(InboxResult.DUPLICATE, "m-1", done) and duplicate.stored_result == "kept"
    failed = record(InboxPhase.FAILED, receives=3)
    assert flows.advance(_guarded(), Conflict(failed), 1).answer == InboxAnswer(
        InboxResult.GIVEN_UP, "m-1", failed
    )
    spent = flows.advance(_guarded(), Conflict(waiting(3)), 1)
    gave_up = flows.advance(spent, Written(), 2).answer
    assert gave_up.result is InboxResult.GIVEN_UP and not gave_up.ran and not gave_up.ok


def test_a_guarded_completion_that_lost_its_claim_is_lost() -> None:
    running = flows.advance(_guarded(), Written(), 1)
    completing = flows.advance(running, Handled("r"), 2)
    thief = held("a-2", lease=90_000, receives=2)
    assert flows.advance(completing, Conflict(thief), 3).answer == InboxAnswer(
        InboxResult.LOST, "m-1", thief, ran=True, uncompleted=True
    )


def test_an_operator_rearm_is_one_write_on_the_record_as_read() -> None:
    failed = record(InboxPhase.FAILED, receives=3)
    flow = flows.start_rearm(failed, "ops", "fixed", 40)
    rearm = flow.effect
    assert rearm == _next(InboxWrite(None, (), failed), RearmMessage("ops", "fixed"), 40)
    assert isinstance(rearm, InboxWrite)
    assert flows.advance(flow, Written(), 41).answer == InboxAnswer(InboxResult.REARMED, "m-1", rearm.after)
    moved = waiting(0)
    assert flows.advance(flow, Conflict(moved), 41).answer == InboxAnswer(
        InboxResult.SUPERSEDED, "m-1", moved
    )
    assert flows.advance(flow, Conflict(rearm.after), 41).answer.result is InboxResult.REARMED
    throttled = Failure(RETRYABLE, "ProvisionedThroughputExceededException")
    retry = InboxAnswer(InboxResult.RETRY, "m-1", failed, throttled)
    assert flows.advance(flow, throttled, 41).answer == retry
    with pytest.raises(ValueError, match=r"^Found cannot answer rearm in "):
        flows.advance(flow, Found(failed), 41)


def test_an_outcome_a_step_cannot_take_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^Written cannot answer read in transactional$"):
        flows.advance(_transactional(), Written(), 1)
    with pytest.raises(ValueError, match=r"^Found cannot answer claim in guarded$"):
        flows.advance(_guarded(), Found(None), 1)
    with pytest.raises(AssertionError, match="the flow has not finished"):
        _ = _guarded().answer


def test_a_delivery_writes_by_the_table_its_flows_hold() -> None:
    """The explorer's model mutants enter through the `InboxFlows` that starts and advances a flow."""
    no_commit = InboxFlows(tuple(row for row in INBOX_TRANSITIONS if row.command is not Commit))
    flow = no_commit.start(Mode.TRANSACTIONAL, MESSAGE, "a-1", 0, 1_000, SETTINGS)
    flow = no_commit.advance(flow, Found(None), 1)
    with pytest.raises(ForbiddenCommand, match="Commit is forbidden in phase ABSENT"):
        no_commit.advance(flow, Handled("r"), 2)
    no_claim = InboxFlows(tuple(row for row in INBOX_TRANSITIONS if row.command is not Claim))
    with pytest.raises(ForbiddenCommand, match="Claim is forbidden in phase ABSENT"):
        no_claim.start(Mode.GUARDED, MESSAGE, "a-1", 0, 1_000, SETTINGS)
    no_rearm = InboxFlows(tuple(row for row in INBOX_TRANSITIONS if row.command is not RearmMessage))
    with pytest.raises(ForbiddenCommand, match="RearmMessage is forbidden"):
        no_rearm.start_rearm(record(InboxPhase.FAILED), "ops", "r", 0)
