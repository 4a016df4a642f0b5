"""The consumer suite: a Hypothesis state machine over a team's consumer — its `Inbox`, its handler
and its Lambda function — on moto, under the faults SQS and DynamoDB really produce
(docs/inbox.md, "Testing your consumer").

The suite delivers the team's messages in batches, as the event source mapping does, and meets them
with: duplicates (a message delivered again, in the same batch or after it was deleted), concurrent
deliveries (while the handler runs for a message, the same message is delivered again and runs to its
end; or 45 s into it, a visibility timeout shorter than the function's), redeliveries after the
visibility timeout (inside the handler, time jumps past the first
invocation's lease and the message is delivered again: on a host whose clock runs ahead, the first
invocation then goes on; or the first invocation overran its end), crashes (inside the handler, and at
DynamoDB calls, before and after they applied: a crashed invocation's whole batch comes back), DynamoDB
throttles, conflicts, 500s and timeouts after a write applied (botocore's own layer, through
`FaultInjector`), poison messages (the handler fails for them until healed), and FIFO groups.

After every step it reads the team's table: every inbox record's history must be one the table
allows, a message SQS deleted must be DONE, and — transactional — the team's own count of a message's
effect (`Consumer.effects`) must be 0 until the record is DONE and 1 from then on, never 2; guarded —
the handler must never start for a message while another invocation within its deadline runs it,
nor once the message is DONE. At the end — faults off, poison healed, every lease run out — it
delivers every message until SQS deletes it or the inbox gives it up: each must be DONE (its effect
applied once) or FAILED (never applied). On a FIFO queue, no message of a group may run in a batch
after an earlier one of its group was not done.

Teams subclass `InboxSuite`, override `make_consumer` (and `message_body`, `fifo`), and run it with
`run_inbox_suite` inside the `sendguard_aws` fixture; a failure prints the steps and a command that
replays it, as the outbox's suite does.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import time_machine
from hypothesis import Phase, reproduce_failure, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from adapters.runtime.clients import now_ms
from adapters.runtime.inbox import Delivery, Inbox
from adapters.runtime.inbox_codec import is_inbox_record, stored_from_item
from adapters.testing import profiles, report
from adapters.testing.inbox_events import sqs_event, sqs_record
from adapters.testing.injector import Crashed, Fault, FaultInjector, Plan
from adapters.testing.report import StepLog, describe_plan
from statemodel.inbox.events import InboxStored
from statemodel.inbox.invariants import dropped, effect_problems, history_problems, settled_effect_problems
from statemodel.inbox.records import InboxPhase
from statemodel.inbox.table import Mode

LambdaFunction = Callable[[Mapping[str, Any], Any], Any]
Handler = Callable[[Delivery], Any]

# What happened across one run of a consumer suite: `run_inbox_suite` checks it is complete.
INBOX_COVERAGE: collections.Counter[str] = collections.Counter()

FAULTS = (
    Fault.DDB_THROTTLED_SDK_GAVE_UP,
    Fault.DDB_TRANSACTION_CONFLICT,
    Fault.DDB_INTERNAL_ERROR,
    Fault.CONNECT_TIMEOUT,
    Fault.APPLIED_THEN_READ_TIMEOUT,
    Fault.WRITE_LANDED_RETRY_FAILS_CONDITION,
    Fault.CRASH_BEFORE_CALL,
    Fault.CRASH_AFTER_CALL,
)
TIMEOUT_MS = 60_000  # the function's timeout: each invocation's remaining time when it starts
START = 1_767_225_600  # 2026-01-01T00:00:00Z: every example starts here (time is the suite's)


def default_wire(inbox: Inbox, handler: Handler) -> LambdaFunction:
    """The Lambda function of a consumer on sendguard's inbox: `inbox.lambda_handler(handler)`."""
    return inbox.lambda_handler(handler)


@attrs.frozen
class Consumer:
    """A team's consumer, as the suite drives it."""

    inbox: Inbox  # configured as in production (mode, layout, key, max_receives)
    handler: Handler  # the team's handler: TransactWriteItems entries (transactional), or a result
    # How many times the message with this key has had its effect applied, read from the team's own
    # table (transactional), or from the fake service the team's handler called (guarded).
    effects: Callable[[str], int]
    # The team's Lambda function from its inbox and handler (the suite passes the handler wrapped).
    wire: Callable[[Inbox, Handler], LambdaFunction] = default_wire


class Poison(Exception):
    """What the suite makes the handler raise for a poison message."""


class Context:
    """A Lambda context whose remaining time counts down on the suite's clock."""

    def __init__(self, timeout_ms: int = TIMEOUT_MS) -> None:
        self.ends = now_ms() + timeout_ms
        self.aws_request_id = "suite"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.ends - now_ms())


@attrs.define
class _Run:
    key: str
    attempt_id: str
    deadline: int


_EXAMPLES = itertools.count(1)


class InboxSuite(RuleBasedStateMachine):
    """Override `make_consumer` (and `message_body`, `fifo`, `messages`) for your consumer."""

    fifo: bool = False  # deliver with message groups, and check their order within a batch
    messages: int = 3  # messages per example

    # ---- hooks -------------------------------------------------------------------------------------

    def make_consumer(self) -> Consumer:
        raise NotImplementedError("override make_consumer: your Inbox, handler and effect count")

    def message_body(self, key: str) -> str:
        """The body of the message with this key (your producer's format)."""
        return json.dumps({"key": key})

    # ---- set up ------------------------------------------------------------------------------------

    def __init__(self) -> None:
        super().__init__()
        self.log = StepLog()
        self._stack = contextlib.ExitStack()
        self.clock = self._stack.enter_context(time_machine.travel(START, tick=False))
        self.injector = self._stack.enter_context(FaultInjector().installed())
        self.consumer = self.make_consumer()
        self.inbox = self.consumer.inbox
        self.guarded = self.inbox.mode is Mode.GUARDED
        self.function = self.consumer.wire(self.inbox, self._probe)
        example = next(_EXAMPLES)
        self.keys = [f"ex{example}-m{n}" for n in range(1, self.messages + 1)]
        self.groups = {key: f"g{n % 2}" for n, key in enumerate(self.keys)} if self.fifo else {}
        self.deleted: set[str] = set()
        self.poison: set[str] = set()
        self.inside: dict[str, list[_Run]] = collections.defaultdict(list)
        self.inner: dict[str, str] = {}  # what the handler does inside, next time it runs for a key
        self.problems: list[str] = []
        self.ran: list[str] = []  # SQS message ids, in the order the handler started for them
        self.ends: list[int] = []  # the real end of each invocation running now, innermost last

    def teardown(self) -> None:
        """The end of an example: quiescence and its checks, unless a step already failed (its
        failure is the one reported)."""
        try:
            if not self.problems:
                self._quiesce()
        finally:
            self._stack.close()

    # ---- the handler, watched ----------------------------------------------------------------------

    def _probe(self, delivery: Delivery) -> Any:
        key = delivery.key
        now = now_ms()
        running = [r for r in self.inside[key] if r.deadline >= now]
        if self.guarded and running:
            holders = ", ".join(r.attempt_id[:8] for r in running)
            self.problems.append(f"{key}: the handler started while {holders} ran it within its deadline")
        stored = self._stored(key)
        if self.guarded and stored is not None and stored.record.phase is InboxPhase.DONE:
            self.problems.append(f"{key}: the handler ran again after the message was DONE")
        run = _Run(key, delivery.attempt_id, self.ends[-1] if self.ends else delivery.deadline_ms)
        self.inside[key].append(run)
        self.ran.append(delivery.sqs_message_id)
        try:
            self._inside(key)
            if key in self.poison:
                INBOX_COVERAGE["poison message ran"] += 1
                raise Poison(f"{key} is poison")
            return self.consumer.handler(delivery)
        finally:
            self.inside[key].remove(run)

    def _inside(self, key: str) -> None:
        """What the suite does while the handler runs for `key`, when a rule asked for it."""
        action = self.inner.pop(key, None)
        if action is None:
            return
        self.log.detail(f"inside the handler for {key}: {action}")
        if action == "crash":
            INBOX_COVERAGE["crash inside the handler"] += 1
            raise Crashed(f"the invocation running {key} was killed")
        if action == "concurrent":
            INBOX_COVERAGE["concurrent delivery"] += 1
            self._deliver([key], None, "  the same message, delivered again while it runs")
            return
        if action == "early":
            # A visibility timeout shorter than the function's: 45 s in, well within this invocation.
            INBOX_COVERAGE["redelivery while it runs"] += 1
            self.clock.shift(45)
            self._deliver([key], None, "  delivered again 45 s later, while it still runs")
            return
        # A redelivery after the visibility timeout: past this invocation's lease (its end, plus the
        # inbox's margin), then either back (a host whose clock runs ahead) or on (this one overran).
        past = TIMEOUT_MS + self.inbox.settings.lease_margin_ms + 1_000
        self.clock.shift(past / 1000)
        INBOX_COVERAGE["redelivery after the visibility timeout"] += 1
        self._deliver([key], None, "  delivered again after the visibility timeout")
        if action == "late, skewed":
            self.clock.shift(-past / 1000)

    # ---- rules -------------------------------------------------------------------------------------

    @rule(
        picks=st.lists(st.integers(0, 9), min_size=1, max_size=3),
        fault=st.none() | st.sampled_from(FAULTS),
        skip=st.integers(0, 1),
    )
    def deliver(self, picks: list[int], fault: Fault | None, skip: int) -> None:
        keys = [self.keys[p % len(self.keys)] for p in picks]
        plan = None if fault is None else Plan(fault, skip)
        self._deliver(keys, plan, f"deliver {', '.join(keys)} with {describe_plan(plan)}")

    @rule(
        pick=st.integers(0, 9), how=st.sampled_from(["concurrent", "late, skewed", "late, overran", "crash"])
    )
    def deliver_with_trouble(self, pick: int, how: str) -> None:
        key = self.keys[pick % len(self.keys)]
        self.inner[key] = how
        self._deliver([key], None, f"deliver {key}; inside its handler: {how}")
        self.inner.pop(key, None)

    @rule(pick=st.integers(0, 9))
    def make_poison(self, pick: int) -> None:
        key = self.keys[pick % len(self.keys)]
        self.poison.add(key)
        self.log.step(f"{key} turns poison: its handler fails")

    @rule(pick=st.integers(0, 9))
    def heal(self, pick: int) -> None:
        key = self.keys[pick % len(self.keys)]
        self.poison.discard(key)
        self.log.step(f"{key} is healed")

    @rule(seconds=st.sampled_from([1, 30, 120]))
    def tick(self, seconds: int) -> None:
        self.clock.shift(seconds)
        self.log.step(f"{seconds} s pass")

    # ---- one batch ---------------------------------------------------------------------------------

    def _deliver(self, keys: list[str], plan: Plan | None, text: str) -> None:
        if not text.startswith("  "):
            self.log.step(text)
        else:
            self.log.detail(text.strip())
        records = [self._record(key) for key in keys]
        if len(set(keys)) < len(keys) or any(k in self.deleted for k in keys):
            INBOX_COVERAGE["duplicate delivery"] += 1
        before, fired = len(self.ran), len(self.injector.fired)
        context = Context()
        self.ends.append(context.ends)
        try:
            with self.injector.armed(plan):
                response = self.function(sqs_event(*records), context)
        except Crashed:
            INBOX_COVERAGE["crash"] += 1
            self._note_faults(fired)
            self.log.detail("the invocation crashed: its whole batch comes back")
            return
        finally:
            self.ends.pop()
        self._note_faults(fired)
        failures = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        answered = []
        for key, record in zip(keys, records, strict=True):
            ok = record["messageId"] not in failures
            answered.append(f"{key} {'ok' if ok else 'failed'}")
            if ok:
                self.deleted.add(key)
        self.log.detail("answered: " + ", ".join(answered))
        self._check_groups(keys, records, failures, self.ran[before:])

    def _note_faults(self, before: int) -> None:
        for fired in self.injector.fired[before:]:
            INBOX_COVERAGE[f"fault {fired.fault.name}"] += 1
            self.log.detail(f"fault fired: {fired.fault.value.name} on {fired.operation}")

    def _record(self, key: str) -> dict[str, Any]:
        body = self.message_body(key)
        group = self.groups.get(key)
        if self.inbox.key_attribute is not None:
            return sqs_record(body, key=key, key_attribute=self.inbox.key_attribute, group_id=group)
        return sqs_record(body, group_id=group)

    def _check_groups(
        self, keys: list[str], records: list[dict[str, Any]], failures: set[str], ran: list[str]
    ) -> None:
        """FIFO: in a batch, no message of a group runs after an earlier one of its group failed."""
        if not self.fifo:
            return
        failed_groups: set[str] = set()
        for key, record in zip(keys, records, strict=True):
            group = self.groups[key]
            if group in failed_groups:
                if record["messageId"] in ran:
                    self.problems.append(f"{key}: ran in a batch after an earlier message of {group} failed")
                if record["messageId"] in failures:
                    INBOX_COVERAGE["FIFO group held back"] += 1
            if record["messageId"] in failures:
                failed_groups.add(group)

    # ---- judging -----------------------------------------------------------------------------------

    def _stored(self, key: str) -> InboxStored | None:
        item = self.injector.raw_dynamodb.get_item(
            TableName=self.inbox.table, Key=self.inbox.store.key(key), ConsistentRead=True
        ).get("Item")
        return stored_from_item(item) if item and is_inbox_record(item) else None

    @invariant()
    def the_table_holds(self) -> None:
        problems = list(self.problems)
        states = []
        for key in self.keys:
            stored = self._stored(key)
            record = stored.record if stored else None
            if stored is not None:
                problems += history_problems(stored.record, stored.history)
                INBOX_COVERAGE[f"record {stored.record.phase.value}"] += 1
            if not self.guarded:
                problems += effect_problems(key, record, self.consumer.effects(key))
            problems += dropped(key, record, key in self.deleted)
            states.append(f"{key} {record.phase.value if record else '-'}")
        self.log.table(", ".join(states))
        self.problems = problems  # a failed example is not run on to its end (teardown)
        assert not problems, "\n".join(problems)

    def _quiesce(self) -> None:
        """Faults off, poison healed, every lease run out; then every message delivered until SQS
        deletes it or the inbox gives it up."""
        self.log.step("the end: faults off, poison healed, leases run out, every message delivered")
        self.poison.clear()
        self.clock.shift((TIMEOUT_MS + self.inbox.settings.lease_margin_ms) / 1000 + 1)
        for _ in range(self.inbox.settings.max_receives + 2):
            waiting = [k for k in self.keys if k not in self.deleted and not self._failed(k)]
            if not waiting:
                break
            self._deliver(waiting, None, "  deliver what is left")
            self.clock.shift(1)
        problems = list(self.problems)
        for key in self.keys:
            stored = self._stored(key)
            record = stored.record if stored else None
            phase = record.phase if record else None
            if phase not in (InboxPhase.DONE, InboxPhase.FAILED) or (
                phase is InboxPhase.DONE and key not in self.deleted
            ):
                problems.append(f"{key}: never settles: {phase.value if phase else 'no record'}")
            if not self.guarded:
                problems += settled_effect_problems(key, record, self.consumer.effects(key))
            elif phase is InboxPhase.DONE and self.consumer.effects(key) < 1:
                problems.append(f"{key}: DONE, but the handler's effect never happened")
            INBOX_COVERAGE[f"settled {phase.value if phase else 'nowhere'}"] += 1
        assert not problems, "\n".join(problems)

    def _failed(self, key: str) -> bool:
        stored = self._stored(key)
        return stored is not None and stored.record.phase is InboxPhase.FAILED


def expected_coverage(fifo: bool) -> set[str]:
    """What one run of the suite must have met."""
    wanted = {
        "duplicate delivery",
        "concurrent delivery",
        "redelivery while it runs",
        "redelivery after the visibility timeout",
        "crash",
        "crash inside the handler",
        "poison message ran",
        "record DONE",
        "record FAILED",
        "settled DONE",
        *(f"fault {fault.name}" for fault in (Fault.DDB_THROTTLED_SDK_GAVE_UP, Fault.CRASH_AFTER_CALL)),
    }
    if fifo:
        wanted.add("FIFO group held back")
    return wanted


# ---- running it ----------------------------------------------------------------------------------

PROFILES = {
    name: settings(
        value, report_multiple_bugs=False, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
    )
    for name, value in profiles.for_size(10, 20).items()
}


COVERAGE_SCENARIO = "inbox"  # the coverage phase's name for $SENDGUARD_SCENARIO


def coverage_scenario(machine: InboxSuite) -> None:
    """The coverage phase: fixed steps that meet every kind of trouble once, whatever Hypothesis
    draws after them, judged as any step is."""
    keys = [f"{machine.keys[0]}-{name}" for name in "abcdefghi"]
    machine.keys = keys
    if machine.fifo:  # h and i share a group: h is poison, so i is held back behind it
        machine.groups = {key: "fifo-hi" if key.endswith(("h", "i")) else f"fifo-{key}" for key in keys}
    steps: list[Callable[[], None]] = [
        lambda: machine.deliver([0], None, 0),
        lambda: machine.deliver([0, 0], None, 0),
        lambda: machine.deliver_with_trouble(1, "concurrent"),
        lambda: machine.deliver_with_trouble(1, "early"),
        lambda: machine.deliver_with_trouble(2, "early"),
        lambda: machine.deliver_with_trouble(2, "late, skewed"),
        lambda: machine.deliver_with_trouble(3, "late, overran"),
        lambda: machine.deliver_with_trouble(4, "crash"),
        lambda: machine.deliver([5], Fault.DDB_THROTTLED_SDK_GAVE_UP, 0),
        lambda: machine.deliver([6], Fault.CRASH_AFTER_CALL, 0),
        lambda: machine.tick(120),  # a crashed invocation's claim runs out
        lambda: machine.make_poison(7),
        *[lambda: machine.deliver([7, 8], None, 0) for _ in range(machine.inbox.settings.max_receives)],
        lambda: machine.tick(120),
    ]
    try:
        for step in steps:
            step()
            machine.the_table_holds()
    finally:
        machine.teardown()


def run_inbox_suite(machine: type[InboxSuite], profile: str | None = None) -> None:
    """Runs a consumer suite: the coverage phase, then Hypothesis' sequences (`ci`: derandomized, 10
    sequences of 20 steps; `long`; `smoke`), then the coverage check. $SENDGUARD_REPRODUCE replays
    one Hypothesis example, $SENDGUARD_SCENARIO=inbox runs the coverage phase alone: a failure prints
    the command that sets the one it needs."""
    INBOX_COVERAGE.clear()
    name = profiles.selected(profile)
    replay = os.environ.get(report.REPRODUCE_VARIABLE)
    if replay:
        _run(_reproducing(machine, replay), PROFILES[name])
        return
    only = os.environ.get(report.SCENARIO_VARIABLE)  # the command a coverage-phase failure prints
    if only == COVERAGE_SCENARIO or (not only and name != "smoke"):
        try:
            coverage_scenario(machine())
        except BaseException as error:
            report.explain(error, "The coverage phase failed", report.SCENARIO_VARIABLE, COVERAGE_SCENARIO)
            raise
    if only:  # the coverage phase alone (another name is a scenario of the outbox's suite: none here)
        return
    _run(machine, PROFILES[name])
    if name == "smoke":
        return
    missing = sorted(expected_coverage(machine.fifo) - set(INBOX_COVERAGE))
    assert not missing, f"never happened in this run: {missing}"


def _run(machine: type[RuleBasedStateMachine] | object, chosen: settings) -> None:
    with report.shrink_budget():
        try:
            run_state_machine_as_test(machine, settings=chosen)  # type: ignore[arg-type]
        except BaseException as error:
            report.explain(error, "The shrunk sequence", report.REPRODUCE_VARIABLE, None)
            raise


def _reproducing(machine: type[InboxSuite], value: str) -> object:
    def factory() -> InboxSuite:
        return machine()

    version, blob = report.parse_reproduction(value)
    return reproduce_failure(version, blob)(factory)
