"""The inbox's pure model: its table is consistent, a `transitions` machine built from it agrees with
`decide`, the decider fences and counts receives, histories are judged, and the flows answer each
delivery as docs/inbox.md says — on the in-memory world, step by step."""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.docgen.inbox_doc import (
    FENCED,
    build_machine,
    condition_names,
    inbox_markdown,
    next_steps_markdown,
)
from adapters.runtime.inbox import PROCESS_OUTCOMES, REARM_OUTCOMES, InboxRearmOutcome, ProcessOutcome
from statemodel.categories import ErrorCategory, Failure
from statemodel.checker.inbox_world import (
    EFFECT_REFUSED,
    HANDLER_FAILED,
    HANDLER_OK,
    InboxFault,
    InboxWorld,
    InboxWorldPorts,
)
from statemodel.errors import ForbiddenCommand, IllegalTransition, StaleAttempt
from statemodel.inbox import flows, interpreter, invariants
from statemodel.inbox.commands import (
    INBOX_COMMAND_TYPES,
    Claim,
    Commit,
    Complete,
    InboxCommand,
    RearmMessage,
    RecordFailure,
    Release,
)
from statemodel.inbox.decider import decide, evolve_all, replay, segment
from statemodel.inbox.events import (
    ClaimExpired,
    ClaimTaken,
    Completed,
    EffectCommitted,
    Received,
    event_from_dict,
    event_to_dict,
)
from statemodel.inbox.flows import (
    INBOX_FLOWS,
    Conflict,
    Handled,
    HandlerError,
    InboxFlow,
    InboxFlows,
    InboxResult,
    InboxSettings,
    InboxWrite,
    Invoke,
    Read,
    Stage,
    Written,
)
from statemodel.inbox.records import ClaimHeld, InboxMessage, InboxPhase, InboxRecord, phase_of
from statemodel.inbox.table import EVENT_TARGET, INBOX_TRANSITIONS, Guard, Mode, forbidden_moves, rows_of
from statemodel.rules import compile_rules

MESSAGE = InboxMessage("m-1", "sha256:ab")
SETTINGS = InboxSettings(max_receives=3, lease_margin_ms=30_000)


# ---- the table -----------------------------------------------------------------------------------


def test_each_row_walks_from_its_source_to_its_target() -> None:
    for row in INBOX_TRANSITIONS:
        phase = row.source
        for event_type in row.events:
            phase = EVENT_TARGET[event_type] or phase
        assert phase is row.target, row


def test_every_phase_is_reachable_and_only_done_has_no_way_out() -> None:
    reachable = {InboxPhase.ABSENT}
    for _ in InboxPhase:
        reachable |= {row.target for row in INBOX_TRANSITIONS if row.source in reachable}
    assert reachable == set(InboxPhase)
    assert set(InboxPhase) - {row.source for row in INBOX_TRANSITIONS} == {InboxPhase.DONE}


def test_only_an_operator_takes_a_message_out_of_failed() -> None:
    rows = [row for row in INBOX_TRANSITIONS if row.source is InboxPhase.FAILED]
    assert [(row.command, row.target) for row in rows] == [(RearmMessage, InboxPhase.WAITING)]


def test_each_mode_has_its_rows_and_shares_only_the_rearm() -> None:
    guarded, transactional = set(rows_of(Mode.GUARDED)), set(rows_of(Mode.TRANSACTIONAL))
    assert {row.command for row in guarded & transactional} == {RearmMessage}
    assert {row.command for row in guarded} == {Claim, Complete, Release, RearmMessage}
    assert {row.command for row in transactional} == {Commit, RecordFailure, RearmMessage}


def test_rows_sharing_a_command_are_told_apart_by_complementary_guards() -> None:
    pairs = {
        (Guard.RECEIVE_LEFT, Guard.NO_RECEIVE_LEFT),
        (Guard.EXPIRED_RECEIVE_LEFT, Guard.EXPIRED_NO_RECEIVE_LEFT),
        (Guard.ANOTHER_RECEIVE, Guard.LAST_RECEIVE),
    }
    for phase in InboxPhase:
        for command in INBOX_COMMAND_TYPES:
            rows = [r for r in INBOX_TRANSITIONS if r.source is phase and r.command is command]
            if len(rows) > 1:
                assert tuple(r.guard for r in rows) in pairs, rows


# ---- a transitions machine agrees with decide ----------------------------------------------------


def _record(phase: InboxPhase, receives: int, lease: int) -> InboxRecord:
    return InboxRecord(
        MESSAGE,
        phase,
        version=3,
        updated_at=0,
        receives=receives,
        attempt_id="a-1" if phase in (InboxPhase.PROCESSING, InboxPhase.DONE) else None,
        lease_expires_at=lease if phase is InboxPhase.PROCESSING else None,
    )


records = st.builds(
    _record,
    st.sampled_from([p for p in InboxPhase if p is not InboxPhase.ABSENT]),
    st.integers(0, 4),
    st.integers(0, 200),
)
attempts = st.sampled_from(["a-1", "a-2"])
categories = st.sampled_from(ErrorCategory)
commands: st.SearchStrategy[InboxCommand] = st.one_of(
    st.builds(Claim, st.just(MESSAGE), attempts, st.integers(0, 300), st.integers(1, 4)),
    st.builds(Complete, attempts, st.just("r")),
    st.builds(Release, attempts, categories, st.just("E"), st.integers(1, 4)),
    st.builds(Commit, st.just(MESSAGE), attempts),
    st.builds(RecordFailure, st.just(MESSAGE), attempts, categories, st.just("E"), st.integers(1, 4)),
    st.builds(RearmMessage, st.just("ops"), st.just("fixed")),
)


class Conditions:
    """The machine's model: one method per condition name, answered for (record, command, now)."""

    def __init__(self, record: InboxRecord | None, command: InboxCommand, now: int) -> None:
        holder = record.attempt_id if record else None
        setattr(self, FENCED, lambda: getattr(command, "attempt_id", None) == holder)
        receives = record.receives if record else 0
        limit = getattr(command, "max_receives", 0)
        expired = (
            record is not None and record.lease_expires_at is not None and now >= record.lease_expires_at
        )
        answers = {
            Guard.RECEIVE_LEFT: receives < limit,
            Guard.NO_RECEIVE_LEFT: receives >= limit,
            Guard.EXPIRED_RECEIVE_LEFT: expired and receives < limit,
            Guard.EXPIRED_NO_RECEIVE_LEFT: expired and receives >= limit,
            Guard.ANOTHER_RECEIVE: receives + 1 < limit,
            Guard.LAST_RECEIVE: receives + 1 >= limit,
        }
        for guard, answer in answers.items():
            setattr(self, guard.name.lower(), lambda a=answer: a)


@given(record=st.none() | records, command=commands, now=st.integers(0, 300))
def test_transitions_machine_agrees_with_decide(
    record: InboxRecord | None, command: InboxCommand, now: int
) -> None:
    conditions: Any = Conditions(record, command, now)
    machine = build_machine(conditions)
    machine.set_state(phase_of(record).value)
    trigger = type(command).__name__
    moved = trigger in machine.get_triggers(conditions.state) and getattr(conditions, trigger)()
    try:
        after = evolve_all(record, decide(record, command, now))
    except ForbiddenCommand:
        assert not moved
    else:
        assert moved and conditions.state == phase_of(after).value


def test_the_machine_has_one_transition_per_row() -> None:
    machine = build_machine(Conditions(None, RearmMessage("o", "r"), 0))
    count = sum(len(ts) for event in machine.events.values() for ts in event.transitions.values())
    assert count == len(INBOX_TRANSITIONS)
    assert all(condition_names(r) for r in INBOX_TRANSITIONS if r.fenced or r.guard)


@pytest.mark.parametrize(("phase", "command_type"), forbidden_moves())
def test_every_forbidden_move_is_refused(phase: InboxPhase, command_type: type[InboxCommand]) -> None:
    record = None if phase is InboxPhase.ABSENT else _record(phase, 1, 10)
    commands: dict[type[InboxCommand], InboxCommand] = {
        Claim: Claim(MESSAGE, "a-9", 500, 5),
        Complete: Complete("a-1", "r"),
        Release: Release("a-1", ErrorCategory.RETRYABLE, "E", 5),
        Commit: Commit(MESSAGE, "a-1"),
        RecordFailure: RecordFailure(MESSAGE, "a-1", ErrorCategory.RETRYABLE, "E", 5),
        RearmMessage: RearmMessage("ops", "fixed"),
    }
    with pytest.raises(ForbiddenCommand):
        decide(record, commands[command_type], 100)


# ---- the decider ---------------------------------------------------------------------------------


def _claimed(attempt: str = "a-1", lease: int = 100, receives: int = 3) -> InboxRecord:
    record = evolve_all(None, decide(None, Claim(MESSAGE, attempt, lease, receives), 0))
    assert record is not None
    return record


def test_a_live_claim_is_held_and_an_expired_one_is_taken_over_for_a_receive() -> None:
    record = _claimed(lease=100)
    with pytest.raises(ClaimHeld):
        decide(record, Claim(MESSAGE, "a-2", 200, 3), 99)
    events = decide(record, Claim(MESSAGE, "a-2", 200, 3), 100)
    assert [type(e) for e in events] == [ClaimExpired, ClaimTaken]
    taken = evolve_all(record, events)
    assert taken is not None and (taken.attempt_id, taken.receives, taken.phase) == (
        "a-2",
        2,
        InboxPhase.PROCESSING,
    )


def test_a_takeover_with_no_receive_left_gives_up() -> None:
    record = _claimed(lease=100, receives=1)
    failed = evolve_all(record, decide(record, Claim(MESSAGE, "a-2", 200, 1), 100))
    assert failed is not None and failed.phase is InboxPhase.FAILED and failed.attempt_id is None


def test_only_the_holder_completes_or_releases() -> None:
    record = _claimed()
    with pytest.raises(StaleAttempt):
        decide(record, Complete("a-2", "r"), 1)
    with pytest.raises(StaleAttempt):
        decide(record, Release("a-2", ErrorCategory.RETRYABLE, "E", 3), 1)
    done = evolve_all(record, decide(record, Complete("a-1", "r"), 1))
    assert done is not None and (done.phase, done.result) == (InboxPhase.DONE, "r")


def test_the_last_release_and_the_last_failed_receive_give_up() -> None:
    record = _claimed(receives=1)
    failed = evolve_all(record, decide(record, Release("a-1", ErrorCategory.RETRYABLE, "Boom", 1), 1))
    assert failed is not None and failed.phase is InboxPhase.FAILED and failed.last_error is not None
    assert failed.last_error.code == "Boom"
    waiting = evolve_all(
        None, decide(None, RecordFailure(MESSAGE, "a-1", ErrorCategory.RETRYABLE, "E", 2), 0)
    )
    assert waiting is not None and (waiting.phase, waiting.receives) == (InboxPhase.WAITING, 1)
    given_up = evolve_all(
        waiting, decide(waiting, RecordFailure(MESSAGE, "a-2", ErrorCategory.PERMANENT, "E", 2), 1)
    )
    assert given_up is not None and (given_up.phase, given_up.receives) == (InboxPhase.FAILED, 2)


def test_a_claim_of_a_waiting_record_whose_budget_was_lowered_gives_up() -> None:
    """The row the explorer cannot reach (the budget never changes within a run)."""
    waiting = evolve_all(
        None, decide(None, RecordFailure(MESSAGE, "a-1", ErrorCategory.RETRYABLE, "E", 5), 0)
    )
    assert waiting is not None
    failed = evolve_all(waiting, decide(waiting, Claim(MESSAGE, "a-2", 100, 1), 1))
    assert failed is not None and failed.phase is InboxPhase.FAILED


def test_a_rearm_gives_a_fresh_budget_and_keeps_the_last_error() -> None:
    failed = evolve_all(
        None, decide(None, RecordFailure(MESSAGE, "a-1", ErrorCategory.PERMANENT, "Bad", 1), 0)
    )
    assert failed is not None and failed.phase is InboxPhase.FAILED
    rearmed = evolve_all(failed, decide(failed, RearmMessage("ops", "fixed the schema"), 5))
    assert rearmed is not None and (rearmed.phase, rearmed.receives) == (InboxPhase.WAITING, 0)
    assert rearmed.last_error == failed.last_error


# ---- histories -----------------------------------------------------------------------------------


def test_a_history_replays_and_segments_into_rows() -> None:
    first = decide(None, Claim(MESSAGE, "a-1", 100, 3), 0)
    record = evolve_all(None, first)
    second = decide(record, Claim(MESSAGE, "a-2", 300, 3), 150)
    record = evolve_all(record, second)
    third = decide(record, Complete("a-2", "r"), 160)
    history = first + second + third
    assert replay(history) == evolve_all(record, third)
    assert [row.label for row in segment(history)] == [
        "ABSENT Claim -> PROCESSING",
        "PROCESSING Claim -> PROCESSING",
        "PROCESSING Complete -> DONE",
    ]


def test_a_completion_by_a_lost_claim_is_an_illegal_history() -> None:
    history = (
        Received(MESSAGE, 0),
        ClaimTaken("a-1", 100, 0),
        ClaimExpired("a-1", 100),
        ClaimTaken("a-2", 300, 100),
        Completed("a-1", "r", 120),
    )
    with pytest.raises(IllegalTransition, match="Completed by 'a-1', whose claim on m-1 was lost to 'a-2'"):
        replay(history)


def test_a_takeover_before_the_lease_expired_is_an_illegal_history() -> None:
    history = (
        Received(MESSAGE, 0),
        ClaimTaken("a-1", 100, 0),
        ClaimExpired("a-1", 99),
        ClaimTaken("a-2", 300, 99),
    )
    with pytest.raises(IllegalTransition, match="taken over at 99, before its lease expired at 100"):
        replay(history)


def test_an_effect_committed_twice_is_an_illegal_history() -> None:
    history = (Received(MESSAGE, 0), EffectCommitted("a-1", 0), EffectCommitted("a-2", 1))
    with pytest.raises(IllegalTransition, match="EffectCommitted is not allowed for m-1 in phase DONE"):
        replay(history)
    record = replay(history[:2])
    assert record is not None
    assert invariants.history_problems(record, history[:2]) == []
    assert invariants.history_problems(record, history)


@given(record=records)
def test_events_round_trip_through_their_dicts(record: InboxRecord) -> None:
    for command in (Claim(MESSAGE, "a-3", 900, 9), Complete("a-1", '{"x": 1}'), RearmMessage("o", "r")):
        try:
            events = decide(record, command, 1_000)
        except ForbiddenCommand:
            continue
        for event in events:
            assert event_from_dict(event_to_dict(event), MESSAGE) == event
    with pytest.raises(ValueError, match="not an inbox event"):
        event_from_dict({"type": "Accepted"}, MESSAGE)


# ---- the flows, on the in-memory world -----------------------------------------------------------


def run(
    world: InboxWorld,
    flow: InboxFlow,
    now: int = 0,
    handler: Any = HANDLER_OK,
    faults: dict[Stage, InboxFault] | None = None,
) -> InboxFlow:
    """The flow carried to its end by the adapters' own loop (`statemodel.inbox.interpreter`) on the
    world, each step meeting the fault named for its stage."""
    faults = faults or {}
    while not flow.done:
        _, flow = interpreter.step(
            flow, InboxWorldPorts(world, faults.get(flow.stage), handler), None, lambda: now
        )
    return flow


class Told:
    def __init__(self) -> None:
        self.steps: list[tuple[str, str, str]] = []

    def stepped(self, before: InboxFlow, outcome: object, report: None, after: InboxFlow) -> None:
        self.steps.append((before.stage.value, type(outcome).__name__, after.stage.value))


def test_the_interpreter_performs_each_effect_on_its_port_and_tells_the_observer() -> None:
    world, told = InboxWorld(), Told()
    done = interpreter.run(transactional("a-1"), InboxWorldPorts(world), None, lambda: 0, told)
    assert done.answer.result is InboxResult.DONE and world.effects == 1
    assert told.steps == [
        ("read", "Found", "handler"),
        ("handler", "Handled", "commit"),
        ("commit", "Written", "done"),
    ]
    again = Told()
    guarded_done = interpreter.run(guarded("a-2"), InboxWorldPorts(InboxWorld()), None, lambda: 0, again)
    assert guarded_done.answer.result is InboxResult.DONE
    assert [s[:2] for s in again.steps] == [
        ("claim", "Written"),
        ("handler", "Handled"),
        ("complete", "Written"),
    ]
    with pytest.raises(ValueError, match=r"^the flow has finished$"):
        interpreter.perform(done, InboxWorldPorts(world), None)


class Reporting:
    """The world's ports, each call reported by what it was given."""

    def __init__(self, world: InboxWorld) -> None:
        self.world = world

    def read(self, read: flows.Read, deadline_ms: int | None) -> tuple[flows.InboxOutcome, str]:
        return self.world.perform(read), f"read by {deadline_ms}"

    def write(self, write: InboxWrite, deadline_ms: int | None) -> tuple[flows.InboxOutcome, str]:
        return self.world.perform(write), f"write by {deadline_ms}"

    def invoke(self, invoke: Invoke) -> tuple[flows.InboxOutcome, str]:
        return self.world.perform(invoke), f"invoke by {invoke.deadline}"


class Reports:
    def __init__(self) -> None:
        self.reports: list[str] = []

    def stepped(self, before: InboxFlow, outcome: object, report: str, after: InboxFlow) -> None:
        self.reports.append(report)


def test_the_interpreter_gives_each_call_its_deadline_and_the_observer_each_call_s_report() -> None:
    told = Reports()
    interpreter.run(transactional("a-1", deadline=900), Reporting(InboxWorld()), 777, lambda: 0, told)
    assert told.reports == ["read by 777", "invoke by 900", "write by 777"]
    outcome, after = interpreter.step(guarded("a-2"), Reporting(InboxWorld()), 555, lambda: 0, told)
    assert isinstance(outcome, Written) and after.stage is Stage.HANDLER
    assert told.reports[-1] == "write by 555"


def test_the_world_s_ports_meet_their_fault_and_answer_with_the_handler_given() -> None:
    world = InboxWorld()
    read, _ = interpreter.perform(transactional("a-1"), InboxWorldPorts(world, InboxFault.READ_FAILED), None)
    assert isinstance(read, Failure) and read.category is ErrorCategory.RETRYABLE
    claim = guarded("a-1")
    rejected, _ = interpreter.perform(claim, InboxWorldPorts(world, InboxFault.WRITE_REJECTED), None)
    assert isinstance(rejected, Failure) and world.record is None
    running = flows.advance(claim, interpreter.perform(claim, InboxWorldPorts(world), None)[0], 0)
    handled, report = interpreter.perform(running, InboxWorldPorts(world, handler=HANDLER_FAILED), None)
    assert (handled, report) == (HANDLER_FAILED, None)


def test_the_interpreter_advances_with_the_function_it_is_given() -> None:
    """The explorer's mutants advance through the same loop: `advance` is a parameter, not a global."""
    seen: list[str] = []

    def advance(flow: InboxFlow, outcome: Any, now: int) -> InboxFlow:
        seen.append(flow.stage.value)
        return flows.advance(flow, outcome, now)

    interpreter.run(transactional("a-1"), InboxWorldPorts(InboxWorld()), None, lambda: 0, advance=advance)
    assert seen == ["read", "handler", "commit"]


def transactional(attempt: str, now: int = 0, deadline: int = 10_000) -> InboxFlow:
    return flows.start_transactional(MESSAGE, attempt, now, deadline, SETTINGS)


def guarded(attempt: str, now: int = 0, deadline: int = 10_000) -> InboxFlow:
    return flows.start_guarded(MESSAGE, attempt, now, deadline, SETTINGS)


def test_the_module_s_inbox_flows_are_those_over_the_inbox_s_table() -> None:
    assert INBOX_FLOWS.table is INBOX_TRANSITIONS and InboxFlows() == INBOX_FLOWS
    assert INBOX_FLOWS.rules is flows.RULES and INBOX_FLOWS.next is flows.NEXT
    assert flows.advance == INBOX_FLOWS.advance and flows.start == INBOX_FLOWS.start


def test_an_inbox_flows_over_other_rules_takes_them() -> None:
    """What a flow does next is the entry of the rules its `InboxFlows` holds: a mutant's rule put
    first holds where it names a key, and the inbox's own nowhere else."""
    done = evolve_all(None, decide(None, Commit(MESSAGE, "a-0"), 0))
    rerun = (
        Mode.TRANSACTIONAL,
        Stage.READ,
        flows.Came.FOUND,
        flows.Seen.DONE,
        flows.RunHandler(flows.End(InboxResult.RETRY)),
    )
    other = InboxFlows(rules=(rerun, *flows.RULES))
    assert other != INBOX_FLOWS and other.next[rerun[:4]] == rerun[4]
    rerunning = other.advance(transactional("a-1"), flows.Found(done), 5)
    assert rerunning.stage is Stage.HANDLER  # the rule put first: the handler runs, where the inbox answers
    assert (
        INBOX_FLOWS.advance(transactional("a-1"), flows.Found(done), 5).answer.result is InboxResult.DUPLICATE
    )
    assert (
        other.advance(transactional("a-2"), flows.Found(None), 5).stage is Stage.HANDLER
    )  # the rest: the inbox's


@pytest.mark.parametrize(
    "step",
    [flows.CountFailure(), flows.ReleaseClaim(), flows.CompleteClaim()],
    ids=lambda s: type(s).__name__,
)
def test_a_step_a_flow_cannot_take_is_refused(step: flows.Step) -> None:
    """A rule whose step needs what the flow lacks (a failure to count or release before any failed,
    a handler's result before it ran) raises, naming the step."""
    wrong = (Mode.GUARDED, Stage.CLAIM, flows.Came.WRITTEN, tuple(flows.Seen), step)
    name = re.escape(repr(step))
    with pytest.raises(ValueError, match=rf"^{name} cannot be taken by a guarded flow here$"):
        InboxFlows(rules=(wrong,)).advance(guarded("a-1"), Written(), 5)


def test_every_key_of_the_next_step_table_is_one_a_rule_names_and_no_rule_is_dead() -> None:
    named: set[object] = set()
    for rule in flows.RULES:
        keys = set(compile_rules((rule,)))
        assert keys - named, f"no key is left to {rule}: it is dead"
        named |= keys
    assert named == set(flows.NEXT)


def test_the_inbox_page_draws_every_rule_and_exactly_the_public_outcomes() -> None:
    """docs/inbox-transitions.md lists what `ProcessOutcome` and `InboxRearmOutcome` hold, no more (a
    re-arm's `rearmed`/`superseded` are not a delivery's answers), and one row per rule."""
    assert len(next_steps_markdown().splitlines()) == len(flows.RULES)
    page = inbox_markdown()
    delivery = page.split("## What a delivery answers")[1].split("## ")[0]
    rearm = page.split("## What a re-arm answers")[1].split("## ")[0]
    row = re.compile(r"^\| `(\w+)` \|", re.MULTILINE)
    assert row.findall(delivery) == [o.value for o in ProcessOutcome]
    assert row.findall(rearm) == [o.value for o in InboxRearmOutcome]
    assert set(PROCESS_OUTCOMES) | set(REARM_OUTCOMES) == set(InboxResult)
    assert all(result.value == outcome.value for result, outcome in PROCESS_OUTCOMES.items())


def test_every_write_of_an_inbox_flow_is_decided_from_the_table_of_its_flows() -> None:
    """A mutant's `InboxFlows` over another table: each write comes from it, so a table without the
    row a step needs refuses that step (the claim, the commit, the re-arm)."""

    def without(command: type) -> InboxFlows:
        return InboxFlows(tuple(row for row in INBOX_TRANSITIONS if row.command is not command))

    with pytest.raises(ForbiddenCommand):
        without(Claim).start(Mode.GUARDED, MESSAGE, "a-1", 0, 10_000, SETTINGS)
    no_commit = without(Commit)
    flow = no_commit.start(Mode.TRANSACTIONAL, MESSAGE, "a-1", 0, 10_000, SETTINGS)
    flow = no_commit.advance(flow, InboxWorld().perform(flow.effect), 0)  # read: no record
    with pytest.raises(ForbiddenCommand):
        no_commit.advance(flow, Handled("ok"), 0)
    world = InboxWorld()
    bad = HandlerError(Failure(ErrorCategory.PERMANENT, "Bad"))
    for n in (1, 2, 3):  # SETTINGS' max_receives: the third failed receive gives the message up
        failed = run(world, transactional(f"a-{n}"), handler=bad)
    record = failed.answer.record
    assert record is not None and record.phase is InboxPhase.FAILED
    with pytest.raises(ForbiddenCommand):
        without(RearmMessage).start_rearm(record, "op", "fixed", 0)


def test_transactional_commits_the_effect_once_and_answers_a_duplicate_without_running() -> None:
    world = InboxWorld()
    first = run(world, transactional("a-1"))
    assert first.answer.result is InboxResult.DONE and first.answer.ok and first.answer.ran
    assert world.effects == 1 and world.record is not None and world.record.phase is InboxPhase.DONE
    second = run(world, transactional("a-2"), now=5)
    assert second.answer.result is InboxResult.DUPLICATE and second.answer.ok and not second.answer.ran
    assert world.effects == 1


def test_transactional_concurrent_deliveries_commit_once() -> None:
    world = InboxWorld()
    a, b = transactional("a-1"), transactional("b-1")
    a = flows.advance(a, world.perform(a.effect), 0)  # both read: no record
    b = flows.advance(b, world.perform(b.effect), 0)
    a = flows.advance(a, world.perform(a.effect), 0)  # both run the handler
    b = flows.advance(b, world.perform(b.effect), 0)
    assert isinstance(a.effect, InboxWrite) and a.effect.commit
    a = flows.advance(a, world.perform(a.effect), 0)
    b = flows.advance(b, world.perform(b.effect), 0)
    assert a.answer.result is InboxResult.DONE
    assert b.answer.result is InboxResult.DUPLICATE and b.answer.ran  # its transaction was cancelled
    assert world.effects == 1


def test_transactional_failures_count_receives_until_given_up() -> None:
    world = InboxWorld()
    answers = [
        run(world, transactional(f"a-{n}", now=n), now=n, handler=HANDLER_FAILED).answer for n in range(4)
    ]
    assert [a.result for a in answers] == [
        InboxResult.RETRY,
        InboxResult.RETRY,
        InboxResult.GIVEN_UP,
        InboxResult.GIVEN_UP,
    ]
    assert not answers[3].ran and world.effects == 0
    assert world.record is not None and world.record.receives == 3


def test_a_commit_refused_by_the_effects_own_condition_counts_a_failed_receive() -> None:
    world = InboxWorld()
    flow = transactional("a-1")
    flow = flows.advance(flow, world.perform(flow.effect), 0)  # read
    flow = flows.advance(flow, world.perform(flow.effect), 0)  # the handler returns its effect
    assert isinstance(flow.effect, InboxWrite) and flow.effect.commit
    flow = flows.advance(flow, world.perform(flow.effect, handler=EFFECT_REFUSED), 0)
    assert flow.stage is Stage.FAILURE
    flow = run(world, flow)
    assert flow.answer.result is InboxResult.RETRY and flow.answer.failure == EFFECT_REFUSED.failure
    assert world.effects == 0 and world.record is not None and world.record.receives == 1
    assert world.record.last_error is not None and world.record.last_error.code == "EffectConditionFailed"


def test_a_commit_that_landed_then_timed_out_is_retried_and_then_answered_done() -> None:
    world = InboxWorld()
    lost = run(world, transactional("a-1"), faults={Stage.COMMIT: InboxFault.WRITE_LANDED_THEN_TIMEOUT})
    assert lost.answer.result is InboxResult.RETRY and lost.answer.uncompleted
    landed = run(world, transactional("a-2"), faults={Stage.COMMIT: InboxFault.WRITE_LANDED_THEN_RETRIED})
    assert landed.answer.result is InboxResult.DUPLICATE and world.effects == 1
    again = InboxWorld()
    retried = run(again, transactional("a-1"), faults={Stage.COMMIT: InboxFault.WRITE_LANDED_THEN_RETRIED})
    assert retried.answer.result is InboxResult.DONE and again.effects == 1  # its own write, found


def test_guarded_claims_runs_completes_and_answers_the_result_to_a_duplicate() -> None:
    world = InboxWorld()
    flow = guarded("a-1")
    assert isinstance(flow.effect, InboxWrite) and flow.effect.before is None
    flow = flows.advance(flow, world.perform(flow.effect), 0)
    assert isinstance(flow.effect, Invoke) and flow.effect.idempotency_key == "m-1"
    busy = run(world, guarded("a-2"))
    assert busy.answer.result is InboxResult.BUSY and not busy.answer.ran
    flow = run(world, flow)
    assert flow.answer.result is InboxResult.DONE and flow.answer.stored_result == "result"
    duplicate = run(world, guarded("a-3"))
    assert duplicate.answer.result is InboxResult.DUPLICATE and duplicate.answer.stored_result == "result"
    assert not duplicate.answer.ran


def test_guarded_an_expired_claim_is_taken_over_and_the_lost_one_completes_nothing() -> None:
    world = InboxWorld()
    stale = guarded("a-1", now=0, deadline=1_000)
    stale = flows.advance(stale, world.perform(stale.effect), 0)  # claimed: lease 31,000
    early = run(world, guarded("a-2", now=30_999, deadline=40_000), now=30_999)
    assert early.answer.result is InboxResult.BUSY
    later = run(world, guarded("a-3", now=31_000, deadline=40_000), now=31_000)
    assert later.answer.result is InboxResult.DONE and later.answer.ran
    stale = run(world, stale, now=31_500)
    assert stale.answer.result is InboxResult.LOST and not stale.answer.ok
    assert world.record is not None and world.record.attempt_id == "a-3" and world.record.receives == 2
    assert invariants.history_problems(world.record, world.stored.history if world.stored else ()) == []


def test_guarded_a_record_gone_between_the_two_claims_is_retried_unrun() -> None:
    """The first claim found an expired claim; the record vanished before the second (an operator's
    delete, a DONE record's TTL): the second claim's condition fails on no record. Nothing was
    claimed, so nothing runs: the message goes back to the queue and its next receive claims anew."""
    world = InboxWorld()
    stale = guarded("a-1", now=0, deadline=1_000)
    flows.advance(stale, world.perform(stale.effect), 0)  # claimed: lease 31,000
    flow = guarded("a-2", now=31_000, deadline=40_000)
    second = flows.advance(flow, world.perform(flow.effect), 31_000)  # found it expired: claim again
    assert isinstance(second.effect, InboxWrite) and second.stage is flows.Stage.CLAIM
    gone = flows.advance(second, Conflict(None), 31_000)
    assert gone.done and gone.answer.result is InboxResult.RETRY and not gone.answer.ran


def test_guarded_no_handler_starts_past_its_deadline() -> None:
    world = InboxWorld()
    flow = guarded("a-1", now=0, deadline=100)
    late = flows.advance(flow, world.perform(flow.effect), 101)
    assert late.done and late.answer.result is InboxResult.RETRY and not late.answer.ran
    assert late.answer.failure == Failure(ErrorCategory.RETRYABLE, "DeadlineExceeded")


def test_guarded_a_failing_handler_releases_until_given_up() -> None:
    world = InboxWorld()
    results = [run(world, guarded(f"a-{n}"), handler=HANDLER_FAILED).answer.result for n in range(4)]
    assert results == [InboxResult.RETRY, InboxResult.RETRY, InboxResult.GIVEN_UP, InboxResult.GIVEN_UP]
    assert world.record is not None and world.record.phase is InboxPhase.FAILED


def test_an_operator_rearms_a_failed_message_and_a_changed_one_is_superseded() -> None:
    world = InboxWorld()
    given_up = run(world, transactional("a-1"), handler=HandlerError(Failure(ErrorCategory.PERMANENT, "Bad")))
    assert given_up.answer.result is InboxResult.RETRY
    for n in (2, 3):
        run(world, transactional(f"a-{n}"), handler=HANDLER_FAILED)
    failed = world.record
    assert failed is not None and failed.phase is InboxPhase.FAILED
    assert run(world, flows.start_rearm(failed, "ops", "fixed", 10)).answer.result is InboxResult.REARMED
    assert run(world, flows.start_rearm(failed, "ops", "again", 11)).answer.result is InboxResult.SUPERSEDED
    assert world.record is not None
    with pytest.raises(ForbiddenCommand):
        flows.start_rearm(world.record, "ops", "not failed", 12)
    assert run(world, transactional("a-4")).answer.result is InboxResult.DONE and world.effects == 1


def test_a_write_landing_twice_is_recognised_only_when_it_is_exactly_ours() -> None:
    world = InboxWorld()
    flow = guarded("a-1")
    assert isinstance(flow.effect, InboxWrite)
    after = flows.advance(flow, Conflict(flow.effect.after), 0)
    assert isinstance(after.effect, Invoke)
    other = attrs.evolve(flow.effect.after, attempt_id="a-9")
    assert flows.advance(flow, Conflict(other), 0).answer.result is InboxResult.BUSY
    assert isinstance(flows.advance(flow, Written(), 0).effect, Invoke)
    assert isinstance(world.perform(Read("m-1")), flows.Found)


# ---- the invariants can fail ---------------------------------------------------------------------


def test_each_invariant_finds_what_it_is_for() -> None:
    done = _record(InboxPhase.DONE, 1, 0)
    waiting = _record(InboxPhase.WAITING, 1, 0)
    assert invariants.effect_problems("m", done, 1) == []
    assert invariants.effect_problems("m", done, 2) == ["m: effect applied 2 times"]
    assert invariants.effect_problems("m", done, 0) == ["m: DONE, but its effect was never applied"]
    assert invariants.settled_effect_problems("m", waiting, 1)
    assert invariants.settled_effect_problems("m", done, 1) == []
    assert invariants.holder_problems("m", ["a1"]) == []
    assert invariants.holder_problems("m", ["a2", "a1"]) == ["m: held by 2 invocations at once (a1, a2)"]
    assert (
        invariants.rerun_problems("m", done, ["a2"]) and invariants.rerun_problems("m", waiting, ["a2"]) == []
    )
    assert (
        invariants.dropped("m", waiting, deleted=True) and invariants.dropped("m", done, deleted=True) == []
    )
