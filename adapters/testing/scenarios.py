"""The coverage phase: fixed scenarios that reach every fault kind, table row and stall by
construction, whatever the suite class is called and whatever its hooks draw.

Hypothesis' sequences (derandomized in `ci`) depend on the class they run for, so whether one run
reaches, say, `CRASH_BEFORE_CALL` was luck. Each scenario here is a short sequence of the suite's own
steps (`do_submit`, `do_replay`, `do_reconcile`, `do_tick`, `do_stall`), run on a fresh instance of
the team's subclass with its hooks, judged by the same invariants after each step and at quiescence.
Bodies and headers are the simplest ones the team's strategies give.

To cover a new table row or fault kind: add a scenario that reaches it to `SCENARIOS` (and, for a new
kind of step, a `do_*` method on the suite); `expected_coverage` derives what must happen from the
table and the fault kinds, so a row nobody reaches fails the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import HealthCheck, find, settings

from adapters.testing.hooks import Request
from adapters.testing.injector import TEAM, Fault, Plan
from adapters.testing.suite import FAULTS, GROUPS, STALLS, FaultInjectionSuite
from statemodel.commands import Prepare
from statemodel.records import Phase
from statemodel.table import TRANSITIONS

Step = Callable[[FaultInjectionSuite], None]


@attrs.frozen
class Scenario:
    name: str
    steps: tuple[Step, ...]
    transactional: bool = False  # for a service that writes records in the team's transaction only


def submit(plan: Plan | None = None, keyed: bool = True, transactional: bool = False) -> Step:
    return lambda suite: suite.do_submit(_request(suite, keyed, transactional), plan)


def replay(plan: Plan | None = None) -> Step:
    return lambda suite: suite.do_replay(suite.requests[-1], plan)


def reconcile(plan: Plan | None = None) -> Step:
    return lambda suite: suite.do_reconcile(plan)


def tick(seconds: float) -> Step:
    return lambda suite: suite.do_tick(seconds)


def stall(how: Fault, at_call: int, past: bool, send_fails: bool = False) -> Step:
    return lambda suite: suite.do_stall(_request(suite, True), how, at_call, past, send_fails)


_FIND = settings(database=None, derandomize=True, max_examples=20, suppress_health_check=list(HealthCheck))
_SIMPLEST: dict[type, tuple[Any, Any]] = {}


def rearm() -> Step:
    """An operator re-arms the record the step before left exhausted."""

    def step(suite: FaultInjectionSuite) -> None:
        assert suite.exhausted, "the scenario meant to leave a record exhausted did not"
        suite.do_rearm(sorted(suite.exhausted)[0], None)

    return step


def _request(suite: FaultInjectionSuite, keyed: bool, transactional: bool = False) -> Request:
    """A new request with the simplest body and headers the suite's strategies give; on a FIFO
    service in a group of its own choosing, and on a service with several queues for each queue in
    turn."""
    kind = type(suite)
    if kind not in _SIMPLEST:
        body = find(suite.request_bodies(), lambda _: True, settings=_FIND)
        headers = find(suite.request_headers(), lambda _: True, settings=_FIND)
        _SIMPLEST[kind] = (body, headers)
    body, headers = _SIMPLEST[kind]
    queues = list(suite.service.queues)
    queue = queues[len(suite.requests) % len(queues)] if len(queues) > 1 else None
    group = GROUPS[1] if suite.service.fifo else None
    return suite.new_request(body, headers, keyed, transactional, group, queue)


def _later(seconds_after_redrive: float = 1.0) -> Step:
    """Past the re-drive wait of a record that just went back to PENDING."""
    return lambda suite: suite.do_tick(suite.service.settings.redrive_after_ms / 1000 + seconds_after_redrive)


THROTTLED = Plan(Fault.SQS_THROTTLED_SDK_GAVE_UP)


def _redrives_fail_until_none_is_left() -> Step:
    """Re-drives that fail until no attempt is left (however many the protocol allows): the last one
    is killed after its claim, so that its lease expires on its own and the exhaustion is a write of
    its own (`PENDING Redrive -> EXHAUSTED`, not a failure's rollback and exhaustion in one go)."""

    def steps(suite: FaultInjectionSuite) -> None:
        attempts = suite.service.settings.max_attempts - 1
        for attempt in range(attempts):
            _later()(suite)
            suite.do_reconcile(THROTTLED if attempt < attempts - 1 else Plan(Fault.CRASH_AFTER_CALL))
        suite.do_tick(suite.service.longest_lease_ms / 1000 + 1)
        suite.do_reconcile(None)  # the killed claim's lease expired: rolled back
        _later()(suite)

    return steps


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("accepted, then replayed", (submit(), replay(), submit(keyed=False))),
    # The window between the team's own write (its row, its transaction) and sendguard's record, for
    # a handler that writes itself: killed right after that write, or the write landed and its answer
    # lost — and no client retries, so that only what the table promises is left to keep.
    Scenario(
        "killed right after the team writes on its own",
        (submit(Plan(Fault.CRASH_AFTER_CALL, caller=TEAM), transactional=True),),
    ),
    Scenario(
        "the team writes on its own, the answer is lost",
        (submit(Plan(Fault.APPLIED_THEN_READ_TIMEOUT, caller=TEAM), transactional=True),),
    ),
    # every fault on the first call it can hit (any-call faults on each of submit's three calls:
    # the create, the send, the confirm), then a replay of the same request
    *(
        Scenario(f"submit under {fault.name} on call {skip + 1}", (submit(Plan(fault, skip)), replay()))
        for fault in FAULTS
        for skip in ((0, 1, 2) if fault.value.target is None else (0,))
    ),
    Scenario(
        "re-drives fail until the attempts run out",
        (submit(THROTTLED), _redrives_fail_until_none_is_left(), reconcile()),
    ),
    # The false alarm of issue 17: a reconciler crashed after its claim holds a lease as long as its
    # own timeout (30 s), longer than a submit's; quiescence must wait for it.
    Scenario(
        "a reconciler crashes after its claim",
        (submit(THROTTLED), _later(), reconcile(Plan(Fault.CRASH_AFTER_CALL))),
    ),
    Scenario(
        "a reconciler's re-drive is refused for good",
        (submit(THROTTLED), _later(), reconcile(Plan(Fault.SQS_KMS_DISABLED))),
    ),
    Scenario(
        "refused for good, re-armed by an operator, re-driven",
        (submit(Plan(Fault.SQS_KMS_DISABLED)), rearm(), _later(), reconcile()),
    ),
    # the transactional outbox: the record written in the team's own transaction, then dispatched
    Scenario(
        "written in the team's transaction, dispatched, replayed",
        (submit(transactional=True), replay()),
        transactional=True,
    ),
    Scenario(
        "killed between the team's transaction and its dispatch",
        (submit(Plan(Fault.CRASH_AFTER_CALL), transactional=True), _later(), reconcile(), replay()),
        transactional=True,
    ),
    *(
        Scenario(
            f"{how.name} at call {at_call + 1}, {'past' if past else 'within'} the lease{extra}",
            (stall(how, at_call, past, send_fails),),
        )
        for how in STALLS
        for at_call in (0, 1, 2)
        for past in (True, False)
        for send_fails, extra in ((False, ""), (True, ", after its send failed"))
        if not (send_fails and at_call != 2)
    ),
)


def expected_coverage(transactional: bool, team_writes: bool = False) -> set[str]:
    """What a complete run must have done: every fault kind fired, every table row taken (the
    transactional outbox's `Prepare` only by a service that writes records in the team's own
    transaction), every stall past the lease, an invocation killed, a record confirmed at
    quiescence; and where the team's code writes itself, an invocation killed right after such a
    write."""
    expected = {f"fault {fault.name}" for fault in Fault}
    expected |= {f"row {row.label}" for row in TRANSITIONS if transactional or row.command is not Prepare}
    expected |= {f"{how.name} past the lease" for how in STALLS}
    expected |= {"invocation crashed", f"quiescent {Phase.CONFIRMED.value}"}
    if team_writes:
        expected.add(f"fault {Fault.CRASH_AFTER_CALL.name} on the team's own call")
    return expected


def run_scenario(machine: type[FaultInjectionSuite], scenario: Scenario) -> None:
    """One scenario on a fresh instance: its steps, the invariants after each, then quiescence."""
    suite = machine()
    try:
        if scenario.transactional and not suite.service.transactional:
            return
        _check_invariants(suite)
        for step in scenario.steps:
            step(suite)
            _check_invariants(suite)
    finally:
        suite.teardown()


def _check_invariants(suite: FaultInjectionSuite) -> None:
    for invariant in suite.invariants:  # the subclass's own @invariant methods too
        if all(condition(suite) for condition in invariant.preconditions):
            invariant.function(suite)
