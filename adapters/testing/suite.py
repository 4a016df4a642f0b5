"""The fault-injection suite: a Hypothesis state machine over the real entry points on moto.

Several invocations interleave — new submissions, replays with their Idempotency-Key, reconciler
passes, a consumer that receives and deletes, time passing, and invocations that stall past their
lease while the reconciler runs — each drawing a fault from `FaultInjector`. After every step the
table is judged by statemodel's invariants (allowed transitions, history replays to projection,
metadata intact, fencing held, no send after a confirmed one) and by what the suite itself knows: the
classifier's category for each injected error, one record per Idempotency-Key, no record ever gone,
no event stamped in the future. At quiescence — faults off, every lease expired, the reconciler
settled, the queue drained — nothing may be orphaned or lost, every payload on the queue is the one
submitted, and a message went out twice only where a fault left its sender unsure.

Service teams subclass `FaultInjectionSuite` and override `make_service` (their handler, table and
queue) and, if they like, `request_bodies`; `run_suite` runs it and fails a run in which some fault
kind or table row never happened. docs/fault-injection.md walks through it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import boto3
import time_machine
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.local.sandbox import LambdaContext, environment
from adapters.ops.audit import record_problems
from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.codec import foreign_attributes, is_record
from adapters.runtime.layout import TableLayout
from adapters.runtime.rearm import rearm
from adapters.runtime.runner import Aws
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.store import DynamoStore, stored_from_item
from adapters.testing import profiles
from adapters.testing.injector import Crashed, Fault, FaultInjector, Plan
from statemodel.commands import Prepare
from statemodel.decider import segment
from statemodel.events import SendFailed
from statemodel.flows import Settings
from statemodel.invariants import duplicate_problems, foreign_changes, lost, orphans
from statemodel.records import Phase
from statemodel.stored import Stored
from statemodel.table import TRANSITIONS

Handler = Callable[[Any, Any], dict[str, Any]]

# What happened across one run of a suite (all its examples): `run_suite` checks it is complete.
COVERAGE: collections.Counter[str] = collections.Counter()

# The `ci` run is 50 examples of 30 steps; `long` and `smoke` follow (adapters.testing.profiles).
PROFILES = profiles.for_size(50, 30)


@attrs.frozen
class Service:
    """What the suite drives: two Lambda entry points and the table and queue they use."""

    submit: Handler
    reconcile: Handler
    table: str
    queue_url: str
    settings: Settings  # the protocol settings the handlers were configured with
    invocation_ms: int = 10_000  # the submit function's timeout (the SAM template's), counted down
    reconcile_ms: int = 30_000  # the reconciler function's timeout
    cleanup: Callable[[], None] = lambda: None
    layout: TableLayout = attrs.field(factory=TableLayout)  # how the records sit in the table
    # An operator's re-arm of one exhausted record (`sendguard redrive --exhausted`); None: sendguard's
    # own, on `table` with `layout`.
    rearm: Callable[[str], object] | None = None


def sendguard_service(settings: Settings, invocation_ms: int = 10_000) -> Service:
    """sendguard's own entry points on a fresh table and queue (moto must be active)."""
    from adapters import aws_lambda

    name = f"sg-{uuid.uuid4().hex[:12]}"
    queue_url = ensure_resources(name, name)
    env = {
        "SENDGUARD_TABLE": name,
        "SENDGUARD_QUEUE_URL": queue_url,
        "SENDGUARD_MAX_ATTEMPTS": str(settings.max_attempts),
        "SENDGUARD_REDRIVE_AFTER_SECONDS": str(settings.redrive_after_ms // 1000),
        "SENDGUARD_LEASE_MARGIN_SECONDS": str(settings.lease_margin_ms // 1000),
        "SENDGUARD_AWS_MAX_ATTEMPTS": "2",
        "SENDGUARD_LOG_LEVEL": "CRITICAL",
        "SENDGUARD_METRICS": "off",
    }
    configured = environment(env)
    configured.__enter__()
    aws_lambda.reset()

    def cleanup() -> None:
        aws_lambda.reset()
        configured.__exit__(None, None, None)
        boto3.client("sqs").delete_queue(QueueUrl=queue_url)
        boto3.client("dynamodb").delete_table(TableName=name)

    return Service(
        aws_lambda.submit, aws_lambda.reconcile, name, queue_url, settings, invocation_ms, cleanup=cleanup
    )


def _default_rearm(service: Service) -> Callable[[str], object]:
    """sendguard's own re-arm on the service's table (a client made under the injector, so faulted)."""
    client = make_client("dynamodb", 2)
    aws = Aws(
        DynamoStore(client, service.table, service.layout), SqsQueue(make_client("sqs", 2), service.queue_url)
    )

    def rearm_one(message_id: str) -> object:
        result = rearm(
            aws, message_id, reason="suite", by="suite", max_attempts=service.settings.max_attempts
        )
        return result.outcome

    return rearm_one


def _event(method: str, path: str, body: str | None = None, key: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json"} | ({"idempotency-key": key} if key else {})
    return {
        "version": "2.0",
        "rawPath": path,
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": path}},
        "body": body,
        "isBase64Encoded": False,
    }


_STALLS = (Fault.STALL_PAST_LEASE, Fault.DELAYED_ON_THE_WIRE)
_FAULTS = [f for f in Fault if f not in _STALLS]  # stalls need the `stall` rule's thread


@st.composite
def _plans(draw: st.DrawFn) -> Plan | None:
    """No fault a third of the time; else one fault, on the first call it can hit, or (for a fault
    that can hit any call) on the second or third."""
    if draw(st.integers(0, 2)) == 0:
        return None
    fault = draw(st.sampled_from(_FAULTS))
    return Plan(fault, draw(st.integers(0, 2)) if fault.value.operation is None else 0)


plans = _plans()


class FaultInjectionSuite(RuleBasedStateMachine):
    """Subclass it; override `make_service` (and `request_bodies` if you like)."""

    protocol = Settings(max_attempts=2, redrive_after_ms=1_000, lease_margin_ms=1_000)

    def make_service(self) -> Service:
        """The hook: the handlers, table and queue under test. The default is sendguard's own."""
        return sendguard_service(self.protocol)

    @classmethod
    def request_bodies(cls) -> st.SearchStrategy[dict[str, Any]]:
        """The hook for what clients send (valid requests; invalid ones are the handler's tests)."""
        payloads = st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=12),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
            max_leaves=6,
        )
        attributes = st.dictionaries(
            st.sampled_from(["group", "kind", "tenant"]), st.text("abc", min_size=1, max_size=4)
        )
        return st.fixed_dictionaries({"payload": payloads, "attributes": attributes})

    def __init__(self) -> None:
        super().__init__()
        self._exit = contextlib.ExitStack()
        self.clock = self._exit.enter_context(time_machine.travel(time.time(), tick=True))
        self.injector = self._exit.enter_context(FaultInjector().installed())
        self.service = self.make_service()
        self._exit.callback(self.service.cleanup)
        self.dynamodb = boto3.client("dynamodb")
        self.sqs = boto3.client("sqs")
        self.requests: list[tuple[str, str]] = []  # (Idempotency-Key, body) submitted with a key
        self.submitted: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)  # by message id
        self.accepted: dict[str, set[str]] = collections.defaultdict(set)  # Idempotency-Key -> ids
        self.accepted_ids: set[str] = set()
        self.ever_stored: set[str] = set()
        self.team_attributes: dict[str, dict[str, Any]] = {}  # by message id, as first seen
        self.exhausted: set[str] = set()  # the records last seen exhausted
        self.consumed: list[str] = []
        self._pending_notes: list[str] = []

    # ---- invocations -----------------------------------------------------------------------------

    def _invoke(
        self, handler: Handler, event: dict[str, Any], plan: Plan | tuple[Plan, ...] | None
    ) -> dict[str, Any] | None:
        """One invocation with its fault armed; None if the fault killed it."""
        timeout = (
            self.service.reconcile_ms if handler is self.service.reconcile else self.service.invocation_ms
        )
        with self.injector.armed(plan):
            try:
                return handler(event, LambdaContext(timeout, clock=now_ms))  # the travelling clock
            except Crashed:
                COVERAGE["invocation crashed"] += 1
                return None

    def _submit(self, body: dict[str, Any], key: str | None, plan: Plan | tuple[Plan, ...] | None) -> None:
        text = json.dumps(body)
        answer = self._invoke(self.service.submit, _event("POST", "/messages", text, key), plan)
        self._note(
            f"submit key={key} plan={plan} -> {answer and answer['statusCode']} {answer and answer['body']}"
        )
        if answer is None:
            return
        status = answer["statusCode"]
        COVERAGE[f"answer {status}"] += 1
        assert status in (202, 409, 500, 503), answer
        if status == 202:
            message_id = json.loads(answer["body"])["messageId"]
            self.accepted_ids.add(message_id)
            if key:
                self.accepted[key].add(message_id)

    @rule(body=st.deferred(lambda: FaultInjectionSuite.request_bodies()), keyed=st.booleans(), plan=plans)
    def submit(self, body: dict[str, Any], keyed: bool, plan: Plan | None) -> None:
        key = f"key-{uuid.uuid4().hex[:8]}" if keyed else None
        if key:
            self.requests.append((key, json.dumps(body)))
        self._remember(body, key)
        self._submit(body, key, plan)

    @precondition(lambda self: self.requests)
    @rule(data=st.data(), plan=plans)
    def replay(self, data: st.DataObject, plan: Plan | None) -> None:
        key, text = data.draw(st.sampled_from(self.requests))
        self._submit(json.loads(text), key, plan)

    @rule(plan=plans)
    def reconcile(self, plan: Plan | None) -> None:
        summary = self._invoke(self.service.reconcile, {"source": "aws.events"}, plan)
        self._note(f"reconcile plan={plan} -> {summary}")

    @precondition(lambda self: self.exhausted)
    @rule(data=st.data(), plan=plans)
    def rearm(self, data: st.DataObject, plan: Plan | None) -> None:
        """An operator re-arms an exhausted record, under a fault like any other call."""
        message_id = data.draw(st.sampled_from(sorted(self.exhausted)))
        rearm = self.service.rearm or _default_rearm(self.service)
        with self.injector.armed(plan):
            try:
                outcome: object = rearm(message_id)
            except Crashed:
                COVERAGE["invocation crashed"] += 1
                outcome = None
        self._note(f"rearm {message_id} plan={plan} -> {outcome}")

    @rule()
    def consume(self) -> None:
        for message in self._receive():
            self.consumed.append(message["MessageId"])

    @rule(seconds=st.sampled_from([1, 2, 7]))
    def tick(self, seconds: int) -> None:
        self.clock.shift(seconds)

    @rule(
        body=st.deferred(lambda: FaultInjectionSuite.request_bodies()),
        at_call=st.integers(0, 2),
        how=st.sampled_from(_STALLS),
        past=st.booleans(),
        send_fails=st.booleans(),
    )
    def stall(self, body: dict[str, Any], at_call: int, how: Fault, past: bool, send_fails: bool) -> None:
        """An invocation stalls at a call boundary, or one of its requests is delayed on the wire —
        after its send failed, too, so that the late request can be its rollback; time passes (past
        its lease, or well within it); the reconciler runs twice (expiry, then re-drive); then the
        invocation, or its request, goes on."""
        key = f"key-{uuid.uuid4().hex[:8]}"
        self.requests.append((key, json.dumps(body)))
        self._remember(body, key)
        plans = (Plan(how, at_call), *((Plan(Fault.SQS_THROTTLED_SDK_GAVE_UP),) if send_fails else ()))
        worker = threading.Thread(target=self._submit, args=(body, key, plans))
        self.injector.reset_stall()
        try:
            worker.start()
            while worker.is_alive() and not self.injector.stall_reached.wait(0.005):
                pass
            if self.injector.stall_reached.is_set():
                settings_ = self.service.settings
                lease_ms = self.service.invocation_ms + settings_.lease_margin_ms
                self.clock.shift((lease_ms + 1_000 if past else self.service.invocation_ms // 4) / 1000)
                self._invoke(self.service.reconcile, {}, None)
                self.clock.shift((settings_.redrive_after_ms + 100) / 1000)
                self._invoke(self.service.reconcile, {}, None)
                COVERAGE[f"{how.name} {'past' if past else 'within'} the lease"] += 1
        finally:
            self.injector.resume_all()
            worker.join(timeout=60)
        assert not worker.is_alive(), "a stalled invocation did not finish"
        self._note(f"{how.name} at call {at_call}, {'past' if past else 'within'} the lease")

    def _note(self, text: str) -> None:
        """Hypothesis' note() works on the test's thread only: a stalled invocation's notes wait."""
        if threading.current_thread() is threading.main_thread():
            for pending in self._pending_notes:
                note(pending)
            self._pending_notes.clear()
            note(text)
        else:
            self._pending_notes.append(text)

    def _remember(self, body: dict[str, Any], key: str | None) -> None:
        if key:
            from statemodel.validation import message_id_for_key

            self.submitted[message_id_for_key(key)].append(body)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[Any] = self.sqs.receive_message(
            QueueUrl=self.service.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.service.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    # ---- what is stored --------------------------------------------------------------------------

    def _items(self) -> list[dict[str, Any]]:
        paginator = self.dynamodb.get_paginator("scan")
        return [item for page in paginator.paginate(TableName=self.service.table) for item in page["Items"]]

    def _stored(self) -> dict[str, tuple[dict[str, Any], Stored | Exception]]:
        result: dict[str, tuple[dict[str, Any], Stored | Exception]] = {}
        for item in self._items():
            if not is_record(item):
                continue  # the team's own item (an invoice, say), not a record
            try:
                decoded: Stored | Exception = stored_from_item(item, self.service.layout)
            except (KeyError, ValueError, TypeError) as exc:
                decoded = exc
            result[item[self.service.layout.partition_key]["S"]] = (item, decoded)
        return result

    def _delayed_sends(self) -> set[str]:
        return {
            f.message_id or ""
            for f in self.injector.fired
            if f.fault is Fault.DELAYED_ON_THE_WIRE and f.operation == "SendMessage"
        }

    def _landed(self) -> dict[str, list[str]]:
        landed: dict[str, list[str]] = collections.defaultdict(list)
        for send in self.injector.landed:
            landed[send.message_id].append(send.sqs_message_id)
        return landed

    # ---- invariants ------------------------------------------------------------------------------

    @invariant()
    def records_are_consistent(self) -> None:
        problems: list[str] = []
        stored = self._stored()
        landed = self._landed()
        expected = {f.value.code: f.value.category for f in Fault if f.value.category and f.value.code}
        now = now_ms()
        gone = (self.ever_stored | self.injector.created) - set(stored)
        problems += [f"{message_id}: the record disappeared" for message_id in sorted(gone)]
        for message_id, (item, decoded) in stored.items():
            self.ever_stored.add(message_id)
            if not isinstance(decoded, Exception):
                if decoded.record.phase is Phase.EXHAUSTED:
                    self.exhausted.add(message_id)
                else:
                    self.exhausted.discard(message_id)
            if isinstance(decoded, Exception):
                problems.append(f"{message_id}: unreadable: {decoded}")
                continue
            record, history = decoded.record, decoded.history
            problems += record_problems(item, decoded)
            team = foreign_attributes(item, self.service.layout)  # sendguard never changes these
            first = self.team_attributes.setdefault(message_id, team)
            problems += [f"{message_id}: {change}" for change in foreign_changes(first, team)]
            if message_id not in self._delayed_sends():  # a send late past the lease may repeat one
                problems += duplicate_problems(record, history, landed.get(message_id, []))
            for row in segment(history):
                COVERAGE[f"row {row.label}"] += 1
            for event in history:
                if event.at > now + 1:
                    problems.append(
                        f"{message_id}: {type(event).__name__} stamped {event.at - now} ms in the future"
                    )
                wanted = expected.get(event.code) if isinstance(event, SendFailed) else None
                if isinstance(event, SendFailed) and wanted is not None and wanted.value != event.category:
                    problems.append(
                        f"{message_id}: {event.code} filed as {event.category}, not {wanted.value}"
                    )
            bodies = self.submitted.get(message_id)
            if bodies and record.message.idempotency_key is not None:
                sent = [
                    json.loads(record.message.payload) == b["payload"]
                    and dict(record.message.attributes) == b.get("attributes", {})
                    for b in bodies
                ]
                if not any(sent):
                    problems.append(
                        f"{message_id}: payload or attributes differ from every request with its key"
                    )
        for key, ids in self.accepted.items():
            if len(ids) > 1:
                problems.append(f"Idempotency-Key {key} answered 202 with {len(ids)} message ids")
        keys = collections.Counter(
            d.record.message.idempotency_key
            for _, d in stored.values()
            if isinstance(d, Stored) and d.record.message.idempotency_key
        )
        problems += [f"Idempotency-Key {k} has {n} records" for k, n in keys.items() if n > 1]
        assert not problems, problems

    def teardown(self) -> None:
        try:
            self._quiesce()
        finally:
            self._exit.close()

    def _quiesce(self) -> None:
        settings_ = self.service.settings
        for _ in range(3 * settings_.max_attempts + 3):
            self.clock.shift(
                (self.service.invocation_ms + settings_.lease_margin_ms + settings_.redrive_after_ms) / 1000
                + 1
            )
            summary = self._invoke(self.service.reconcile, {}, None) or {}
            work = ("expired", "redriven", "exhausted", "failed", "superseded", "stopped_early")
            if not any(summary.get(k) for k in work):
                break
        else:
            raise AssertionError("the reconciler did not settle")
        while batch := self._receive():
            self.consumed += [m["MessageId"] for m in batch]
        self.records_are_consistent()
        stored = {m: d.record for m, (_, d) in self._stored().items() if isinstance(d, Stored)}
        landed = self._landed()
        delivered = {m for m, sends in landed.items() if sends}
        problems = orphans(stored.values(), delivered, now_ms())
        problems += lost(stored, self.accepted_ids, delivered)
        explained = self.injector.faulted_message_ids(ambiguous_only=False)
        for message_id, sends in landed.items():
            if len(sends) > 1 and message_id not in explained:
                problems.append(f"{message_id}: sent {len(sends)} times with no fault to explain it")
        for send in self.injector.landed:
            record = stored.get(send.message_id)
            if record is not None and send.body != record.message.payload:
                problems.append(f"{send.message_id}: the queue carried another payload than the record's")
        assert not problems, problems
        for record in stored.values():
            COVERAGE[f"quiescent {record.phase.value}"] += 1
        for fired in self.injector.fired:
            COVERAGE[f"fault {fired.fault.name}"] += 1


def run_suite(machine: type[FaultInjectionSuite], profile: str | None = None) -> None:
    """Runs a suite with the `ci`, `long` or `smoke` profile (default: $HYPOTHESIS_PROFILE, else
    `ci`), then — except for `smoke` — fails if some fault kind or table row never happened."""
    COVERAGE.clear()
    name = profiles.selected(profile)
    run_state_machine_as_test(machine, settings=PROFILES[name])
    if name == "smoke":
        return
    expected = {f"fault {fault.name}" for fault in Fault}
    # sendguard's own handler never writes a Prepare (the transactional outbox's record, which a team's
    # transaction writes); examples/orders' tests cover that row on moto.
    expected |= {f"row {row.label}" for row in TRANSITIONS if row.command is not Prepare}
    expected |= {f"{stall.name} past the lease" for stall in _STALLS}
    expected |= {"invocation crashed", f"quiescent {Phase.CONFIRMED.value}"}
    missing = sorted(expected - set(COVERAGE))
    assert not missing, f"never happened in this run: {missing}"
