"""The fault-injection suite: a Hypothesis state machine over a team's entry points on moto.

Several invocations interleave — new submissions, replays with their Idempotency-Key, reconciler
passes, a consumer that receives and deletes, time passing, and invocations that stall past their
lease while the reconciler runs — each drawing a fault from `FaultInjector`, which reaches the team's
own clients as well as sendguard's (and can be aimed at the team's own writes). Each answer is judged
by what it claims (a success names a message SQS already has). After every step the table is judged
by statemodel's invariants (allowed transitions, history replays to projection, metadata intact,
fencing held, no send after a confirmed one) and by what the suite itself knows: the classifier's
category for each injected error, one record per Idempotency-Key, no item ever gone, the team's
attributes never rewritten, no event stamped in the future, no message on any of the service's queues
that no record or promising row accounts for, each on its record's queue (and group, on FIFO). At
quiescence — faults off, every lease any invocation could hold expired, the reconciler run until a
full pass finds nothing due, the queues drained — nothing may be orphaned or lost, every payload on
the queue is the one submitted, a message went out twice only where a fault left its sender unsure,
and every message the team's rows promise went out with exactly its body. Every failure says which
promise broke, by the team's keys.

Service teams subclass `FaultInjectionSuite` and override its hooks (docs/fault-injection.md):
`make_service` (their handlers, table and queues), `request_bodies` / `request_headers` (what clients
send), `make_event` (the event their handler takes), `read_reply` (what its answer means),
`read_item` (a record in their table), `expected_message` (what a request must send) and
`promised_message` (what one of their rows promises). Each default is right for sendguard's own
handler; `OutboxSuite`'s are right for a team's handler built on `adapters.Outbox` with its own
`TableLayout`. `run_suite` runs it: first the coverage phase (`scenarios`), then Hypothesis'
sequences.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, NamedTuple

import time_machine
from botocore.exceptions import ClientError
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.ops.audit import record_problems
from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.codec import S3_PREFIX, with_bodies
from adapters.runtime.layout import TableLayout
from adapters.runtime.rearm import rearm
from adapters.runtime.runner import Aws
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.store import DynamoStore
from adapters.testing.clients import client, table_items
from adapters.testing.hooks import (
    Expected,
    Promise,
    Reply,
    Request,
    TableRecord,
    api_gateway_event,
    outbox_event,
    outbox_message,
    read_api_reply,
    read_layout_item,
    read_send_result,
    read_sendguard_item,
    sendguard_message,
)
from adapters.testing.injector import OPERATIONS, TEAM, WRITE, Crashed, Fault, FaultInjector, Plan
from adapters.testing.report import StepLog, describe_plan, fired_names
from adapters.testing.service import Handler, Service, context, outbox_service, sendguard_service
from statemodel.decider import segment
from statemodel.errors import DomainError
from statemodel.events import SendFailed
from statemodel.flows import Send, Settings
from statemodel.invariants import duplicate_problems, lost, orphans
from statemodel.records import Phase, Record
from statemodel.validation import parse_key

# What happened across one run of a suite (all its examples): `run_suite` checks it is complete.
COVERAGE: collections.Counter[str] = collections.Counter()

STALLS = (Fault.STALL_PAST_LEASE, Fault.DELAYED_ON_THE_WIRE)
FAULTS = [f for f in Fault if f not in STALLS]  # stalls need the `stall` rule's thread
RECONCILE_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event"}
GROUPS = (None, "g-1", "g-2")  # the FIFO message groups requests are drawn with (None: none given)


@st.composite
def _plans(draw: st.DrawFn) -> Plan | None:
    """No fault a third of the time; else one fault, on the first call it can hit, or (for a fault
    that can hit any call) on the second or third — anyone's call, or now and then the team's own
    code's only (its own writes: the window before sendguard's record)."""
    if draw(st.integers(0, 2)) == 0:
        return None
    fault = draw(st.sampled_from(FAULTS))
    skip = draw(st.integers(0, 2)) if fault.value.target is None else 0
    return Plan(fault, skip, draw(st.sampled_from([None, None, TEAM])))


plans = _plans()


class FaultInjectionSuite(RuleBasedStateMachine):
    """Subclass it and override the hooks your handler needs; each has a default for sendguard's own
    handler (`adapters.aws_lambda`)."""

    protocol = Settings(max_attempts=2, redrive_after_ms=1_000, lease_margin_ms=1_000)

    # ---- hooks -----------------------------------------------------------------------------------

    def make_service(self) -> Service:
        """The handlers, table and queue under test. The default: sendguard's own, on a fresh table."""
        return sendguard_service(self.protocol)

    def request_bodies(self) -> st.SearchStrategy[Any]:
        """What clients send (valid requests; invalid ones are the handler's own tests). Some
        payloads are large enough that the body is written apart from the record
        (`adapters.runtime.bodies`), so that faults hit that write and its reads too."""
        small = st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=12),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
            max_leaves=6,
        )
        large = st.builds(
            lambda n, c: {"blob": c * n}, st.sampled_from([1_500, 4_000]), st.sampled_from("xyz")
        )
        payloads = small | large
        attributes = st.dictionaries(
            st.sampled_from(["group", "kind", "tenant"]), st.text("abc", min_size=1, max_size=4)
        )
        return st.fixed_dictionaries({"payload": payloads, "attributes": attributes})

    def request_headers(self) -> st.SearchStrategy[Mapping[str, str]]:
        """Headers sent with each request besides the Idempotency-Key (the default: none)."""
        return st.just({})

    def make_event(self, request: Request) -> Any:
        """The event the submit handler takes for one request (default: API Gateway HTTP API 2.0)."""
        return api_gateway_event(request)

    def read_reply(self, answer: Any) -> Reply:
        """What the submit handler's answer means (default: sendguard's JSON answer)."""
        return read_api_reply(answer)

    def read_item(self, item: dict[str, Any]) -> TableRecord | None:
        """One table item as a sendguard record, or None for an item of the team's that is not one
        (default: sendguard's own layout, in which every item is a record). Raise KeyError,
        ValueError or TypeError for a record that cannot be read: the suite reports it."""
        return read_sendguard_item(item)

    def expected_message(self, request: Request) -> Expected:
        """What the request must put on the queue (default: sendguard's `payload` and `attributes`)."""
        return sendguard_message(request)

    def promised_message(self, item: dict[str, Any]) -> Promise | None:
        """What one item of the table promises, as the team's domain sees it: a `Promise` of the
        message the row must have (its key, its exact body, its queue) — or that it must have none —
        or None, for an item that promises nothing (the default: every item). The suite reads every
        item with it (records, the team's own rows, low-level values as a Scan gives them): after
        every step no message may have gone out that no record or row accounts for, and at
        quiescence every promised message must have gone out with exactly its body."""
        return None

    # ---- set up ----------------------------------------------------------------------------------

    def __init__(self) -> None:
        super().__init__()
        self.log = StepLog()
        self._exit = contextlib.ExitStack()
        try:
            self.clock = self._exit.enter_context(time_machine.travel(time.time(), tick=True))
            self.injector = self._exit.enter_context(FaultInjector().installed())
            self.service = self.make_service()
            self._exit.callback(self.service.cleanup)
            self.injector.layout = self.service.layout
        except BaseException:
            self._exit.close()
            raise
        self.dynamodb = client("dynamodb")
        self.sqs = client("sqs")
        self.key_names = _key_names(self.service.table)
        self._keys = itertools.count(1)
        self.requests: list[Request] = []  # the keyed requests, for replays
        self.accepted: dict[str, set[str]] = collections.defaultdict(set)  # Idempotency-Key -> ids
        self.accepted_ids: set[str] = set()
        self.request_keys: dict[str, str] = {}  # message id -> the Idempotency-Key it was made for
        self.ever_items: set[str] = set()  # table keys of every item ever seen or written
        self.team_attributes: dict[str, Mapping[str, Any]] = {}  # as first seen, per record
        self.exhausted: set[str] = set()  # the records last seen exhausted (an operator re-arms them)
        self.consumed: list[str] = []
        if self.service.transactional:
            COVERAGE["transactional service"] += 1
        queues = ", ".join(_queue_name(url) for url in self.service.queue_urls)
        self.log.step(f"a fresh table {self.service.table} and queue {queues}")

    # ---- invocations -----------------------------------------------------------------------------

    def _invoke(
        self, handler: Handler, event: Any, timeout_ms: int, plan: Plan | tuple[Plan, ...] | None, name: str
    ) -> Any:
        """One invocation with its fault armed; None if the fault killed it."""
        with self.injector.armed(plan):
            try:
                return handler(event, context(timeout_ms, name))
            except Crashed:
                COVERAGE["invocation crashed"] += 1
                return None

    def _reconcile(self, plan: Plan | tuple[Plan, ...] | None) -> Any:
        service = self.service
        return self._invoke(service.reconcile, dict(RECONCILE_EVENT), service.reconcile_ms, plan, "reconcile")

    def _submit(self, request: Request, plan: Plan | tuple[Plan, ...] | None) -> str:
        """Submits one request; returns what happened, for the report. An answer is judged at once
        by what it claims: a success (2xx) names a message that is on the queue, a conflict (409) is
        only for a key another request used, and nothing else but 500 and 503 is an answer."""
        fired = len(self.injector.fired)
        service = self.service
        answer = self._invoke(service.submit, self.make_event(request), service.invocation_ms, plan, "submit")
        faults = [f.fault for f in self.injector.fired[fired:]]
        if answer is None:
            return f"killed by the fault ({fired_names(faults)})"
        reply = self.read_reply(answer)
        COVERAGE[f"answer {reply.status}"] += 1
        said = f"answered {reply.status} ({answer_meaning(reply.status)})"
        if reply.accepted and reply.message_id:
            self.accepted_ids.add(reply.message_id)
            if request.key:
                self.accepted[request.key].add(reply.message_id)
                self.request_keys[reply.message_id] = request.key
        problem = self._broken_answer(request, reply, said)
        if problem is not None:
            self.log.detail(f"{said} {reply.detail}".rstrip())
            self.log.table(self._summary(self.records(), now_ms()))
            raise AssertionError(f"{_key(request)}: {problem} (the answer: {answer!r:.300})")
        if reply.accepted:
            return f"{said}, message {self.name(reply.message_id or '')}"
        return f"{said} {reply.detail}".rstrip()

    def _broken_answer(self, request: Request, reply: Reply, said: str) -> str | None:
        """Which promise an answer breaks, in words; None when it keeps them."""
        if reply.accepted:
            if not reply.message_id:
                return f"{said}, but the answer names no message"
            if not self._sent(reply.message_id, self.service.queue_urls):
                return f"{said}, but no message was sent"
            return None
        if reply.status == 409:  # the suite never sends two different requests with one key
            return f"{said}, but no other request used its key: the same request again must be accepted"
        if reply.status in (500, 503):
            return None
        return (
            f"{said}, which the contract does not allow for a valid request: success (2xx), "
            "conflict (409), failed for good (500) or retry later (503)"
        )

    def new_request(
        self,
        body: Any,
        headers: Mapping[str, str],
        keyed: bool,
        transactional: bool = False,
        group_id: str | None = None,
        queue: str | None = None,
    ) -> Request:
        key = f"key-{next(self._keys)}" if keyed else None
        request = Request(
            body, key, dict(headers), transactional and self.service.transactional, group_id, queue
        )
        if request.key:
            self.requests.append(request)
        return request

    # ---- the steps (the rules draw their arguments; the coverage phase passes them) -------------

    def do_submit(self, request: Request, plan: Plan | None) -> None:
        self.log.step(f"submit {_key(request)} with {describe_plan(plan)}")
        self.log.detail(self._submit(request, plan))

    def do_replay(self, request: Request, plan: Plan | None) -> None:
        self.log.step(f"replay {_key(request)} with {describe_plan(plan)}")
        self.log.detail(self._submit(request, plan))

    def do_reconcile(self, plan: Plan | None) -> None:
        self.log.step(f"reconciler pass with {describe_plan(plan)}")
        summary = self._reconcile(plan)
        self.log.detail("killed by the fault" if summary is None else f"-> {summary}")

    def do_rearm(self, key: str, plan: Plan | None) -> None:
        """An operator re-arms an exhausted record, under a fault like any other call."""
        self.log.step(f"an operator re-arms {key} with {describe_plan(plan)}")
        rearm_one = self.service.rearm or _default_rearm(self.service)
        with self.injector.armed(plan):
            try:
                outcome: object = rearm_one(key)
            except Crashed:
                COVERAGE["invocation crashed"] += 1
                outcome = "killed by the fault"
        self.log.detail(f"-> {outcome}")

    def do_consume(self) -> None:
        received = self._receive()
        self.consumed += [m["MessageId"] for m in received]
        self.log.step(f"the consumer received and deleted {len(received)} message(s)")

    def do_tick(self, seconds: float) -> None:
        self.clock.shift(seconds)
        self.log.step(f"{seconds:g} s pass")

    def do_stall(self, request: Request, how: Fault, at_call: int, past: bool, send_fails: bool) -> None:
        """An invocation stalls at a call boundary, or one of its requests is delayed on the wire —
        after its send failed, too, so that the late request can be its rollback; time passes (past
        its lease, or well within it); the reconciler runs twice (expiry, then re-drive); then the
        invocation, or its request, goes on."""
        plan = (Plan(how, at_call), *((Plan(Fault.SQS_THROTTLED_SDK_GAVE_UP),) if send_fails else ()))
        when = "past" if past else "within"
        self.log.step(f"submit {_key(request)} with {describe_plan(plan)}, {when} its lease")
        outcome: list[str] = []
        errors: list[BaseException] = []

        def invocation() -> None:
            try:
                outcome.append(self._submit(request, plan))
            except BaseException as exc:  # handed to the test's thread: it fails the run
                errors.append(exc)

        worker = threading.Thread(target=invocation, name="sendguard-stalled-invocation")
        self.injector.reset_stall()
        try:
            worker.start()
            while worker.is_alive() and not self.injector.stall_reached.wait(0.005):
                pass
            if self.injector.stall_reached.is_set():
                settings = self.service.settings
                lease_ms = self.service.invocation_ms + settings.lease_margin_ms
                shift = (lease_ms + 1_000 if past else self.service.invocation_ms // 4) / 1000
                self.clock.shift(shift)
                self.log.detail(f"it stalls; {shift:g} s pass; reconciler pass -> {self._reconcile(None)}")
                self.clock.shift((settings.redrive_after_ms + 100) / 1000)
                self.log.detail(f"{(settings.redrive_after_ms + 100) / 1000:g} s pass; "
                                f"reconciler pass -> {self._reconcile(None)}")  # fmt: skip
                COVERAGE[f"{how.name} {when} the lease"] += 1
        finally:
            self.injector.resume_all()
            worker.join(timeout=60)
        assert not worker.is_alive(), "a stalled invocation did not finish"
        if errors:
            raise errors[0]
        self.log.detail(f"it goes on: {outcome[0] if outcome else '?'}")

    # ---- the rules -------------------------------------------------------------------------------

    def _draw_request(self, data: st.DataObject, keyed: bool) -> Request:
        body = data.draw(self.request_bodies(), label="body")
        headers = data.draw(self.request_headers(), label="headers")
        transactional = self.service.transactional and data.draw(st.booleans(), label="transactional")
        group = data.draw(st.sampled_from(GROUPS), label="group") if self.service.fifo else None
        names = list(self.service.queues)
        queue = data.draw(st.sampled_from(names), label="queue") if len(names) > 1 else None
        return self.new_request(body, headers, keyed, transactional, group, queue)

    @rule(data=st.data(), keyed=st.booleans(), plan=plans)
    def submit(self, data: st.DataObject, keyed: bool, plan: Plan | None) -> None:
        self.do_submit(self._draw_request(data, keyed), plan)

    @precondition(lambda self: self.requests)
    @rule(data=st.data(), plan=plans)
    def replay(self, data: st.DataObject, plan: Plan | None) -> None:
        self.do_replay(data.draw(st.sampled_from(self.requests), label="request"), plan)

    @rule(plan=plans)
    def reconcile(self, plan: Plan | None) -> None:
        self.do_reconcile(plan)

    @precondition(lambda self: self.exhausted)
    @rule(data=st.data(), plan=plans)
    def rearm(self, data: st.DataObject, plan: Plan | None) -> None:
        self.do_rearm(data.draw(st.sampled_from(sorted(self.exhausted)), label="record"), plan)

    @rule()
    def consume(self) -> None:
        self.do_consume()

    @rule(seconds=st.sampled_from([1, 2, 7]))
    def tick(self, seconds: int) -> None:
        self.do_tick(seconds)

    @rule(
        data=st.data(),
        at_call=st.integers(0, 2),
        how=st.sampled_from(STALLS),
        past=st.booleans(),
        send_fails=st.booleans(),
    )
    def stall(self, data: st.DataObject, at_call: int, how: Fault, past: bool, send_fails: bool) -> None:
        self.do_stall(self._draw_request(data, True), how, at_call, past, send_fails)

    # ---- what is stored --------------------------------------------------------------------------

    def _receive(self) -> list[dict[str, Any]]:
        """One receive from each queue; what it got is deleted."""
        received: list[Any] = []
        for queue_url in self.service.queue_urls:
            messages: list[Any] = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            for message in messages:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            received += messages
        return received

    def _items(self) -> list[dict[str, Any]]:
        return table_items(self.service.table)

    def _table_key(self, item: Mapping[str, Any]) -> str:
        return json.dumps([item.get(name) for name in self.key_names], sort_keys=True)

    def _whole(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The table's items as the team sees them: each record with its body in it wherever it is
        kept (`codec.with_bodies`), and no body item."""
        return with_bodies(items, self.service.layout, _read_s3)

    def records(
        self, items: list[dict[str, Any]] | None = None
    ) -> dict[str, tuple[dict[str, Any], TableRecord | Exception]]:
        """Every record in the table (or in `items` read from it) by its key, or why it cannot be
        read; the team's other items are left out. `read_item` reads each record whole."""
        result: dict[str, tuple[dict[str, Any], TableRecord | Exception]] = {}
        for item in self._whole(self._items() if items is None else items):
            try:
                view: TableRecord | Exception | None = self.read_item(item)
            except (KeyError, ValueError, TypeError) as exc:
                view = exc
            if view is None:
                continue
            key = view.key if isinstance(view, TableRecord) else f"the item {self._row_name(item)}"
            result[key] = (item, view)
            if isinstance(view, TableRecord) and view.request_key is not None:
                self.request_keys.setdefault(key, view.request_key)
        return result

    def promises(self, items: list[dict[str, Any]]) -> tuple[list[Promised], list[str]]:
        """What the items read from the table promise (`promised_message`), and the promises that
        name no key of the layout."""
        promised, problems = [], []
        for item in self._whole(items):
            promise = self.promised_message(item)
            if promise is None:
                continue
            row = self._row_name(item)
            key = parse_key(promise.key)
            if isinstance(key, str) or self.service.layout.key_problem(key) is not None:
                why = key if isinstance(key, str) else self.service.layout.key_problem(key)
                problems.append(f"the row {row} promises a message under {promise.key!r}: {why}")
                continue
            if promise.queue is not None and promise.queue not in self.service.queues:
                problems.append(
                    f"the row {row} promises a message on queue {promise.queue!r}, not one of its queues"
                )
                continue
            promised.append(Promised(row, self.service.layout.normal(key).message_id, promise))
        return promised, problems

    def _row_name(self, item: Mapping[str, Any]) -> str:
        """An item's key as the team writes it: its value, or its (partition, sort) pair."""
        values = tuple(next(iter(item[name].values())) for name in self.key_names)
        return repr(values[0]) if len(values) == 1 else repr(values)

    def name(self, message_id: str) -> str:
        """A message's record as the team knows it: the Idempotency-Key it was made for, and its key
        in the team's form (a (partition, sort) pair on a composite key) where that says more."""
        key = self.service.layout.key_named(message_id)
        form = message_id if key is None or key.sort is None else repr((key.partition, key.sort))
        request_key = self.request_keys.get(message_id)
        if request_key is None or request_key == form:
            return form
        return f"{request_key} (record {form})"

    def _named(self, problems: list[str]) -> list[str]:
        """Problems the model's invariants phrase by message id, phrased by `name`."""
        named = []
        for problem in problems:
            message_id, separator, rest = problem.partition(": ")
            named.append(f"{self.name(message_id)}: {rest}" if separator else problem)
        return named

    def _written_keys(self) -> set[str]:
        """The table keys of every item a landed write put or updated on the service's table."""
        keys = set()
        for write in self.injector.writes:
            for table, target in _write_targets(write.operation, write.params):
                if table == self.service.table and target is not None:
                    keys.add(self._table_key(target))
        return keys

    def _landed(self, records: Mapping[str, Record]) -> dict[str, list[str]]:
        """Per record, the SQS message ids of its sends that SQS accepted on the record's queue."""
        landed: dict[str, list[str]] = collections.defaultdict(list)
        for send in self.injector.landed:
            record = records.get(send.message_id or "")
            if record is not None and send.queue_url == self._queue_of(record):
                landed[record.message_id].append(send.sqs_message_id)
        return landed

    def _sent(self, message_id: str, queues: tuple[str, ...]) -> list[str]:
        """The bodies SQS accepted under `message_id` on `queues`."""
        return [s.body for s in self.injector.landed if s.message_id == message_id and s.queue_url in queues]

    def _queue_of(self, record: Record) -> str:
        return record.message.queue or self.service.queue_url

    def _delayed_sends(self) -> set[str]:
        return {
            f.message_id or ""
            for f in self.injector.fired
            if f.fault is Fault.DELAYED_ON_THE_WIRE and f.operation in OPERATIONS["send"]
        }

    # ---- invariants ------------------------------------------------------------------------------

    @invariant()
    def records_are_consistent(self) -> None:
        problems: list[str] = []
        items = self._items()
        records = self.records(items)
        present = {self._table_key(item) for item in items}
        self.ever_items |= present | self._written_keys()
        for gone in sorted(self.ever_items - present):
            values = dict(zip(self.key_names, json.loads(gone), strict=True))
            problems.append(f"the item {self._row_name(values)} disappeared")
        stored = {k: view.stored.record for k, (_, view) in records.items() if isinstance(view, TableRecord)}
        landed = self._landed(stored)
        expected = {f.value.code: f.value.category for f in Fault if f.value.category and f.value.code}
        now = now_ms()
        delayed = self._delayed_sends()
        by_request: dict[str, list[Request]] = collections.defaultdict(list)
        for request in self.requests:
            by_request[str(request.key)].append(request)
        request_keys: collections.Counter[str] = collections.Counter()
        for key, (item, view) in records.items():
            name = self.name(key) if isinstance(view, TableRecord) else key
            if isinstance(view, Exception):
                problems.append(f"{name}: unreadable: {type(view).__name__}: {view}")
                continue
            record, history = view.stored.record, view.stored.history
            if record.phase is Phase.EXHAUSTED:
                self.exhausted.add(key)
            else:
                self.exhausted.discard(key)
            problems += self._named(record_problems(item, view.stored))
            if key not in delayed:  # a send late past the lease may repeat one
                problems += self._named(duplicate_problems(record, history, landed.get(key, [])))
            try:
                rows = segment(history)
            except DomainError as exc:
                problems.append(f"{name}: its history is no path through the table: {exc}")
                rows = []
            for row in rows:
                COVERAGE[f"row {row.label}"] += 1
            for event in history:
                if event.at > now + 1:
                    problems.append(
                        f"{name}: {type(event).__name__} stamped {event.at - now} ms in the future"
                    )
                wanted = expected.get(event.code) if isinstance(event, SendFailed) else None
                if isinstance(event, SendFailed) and wanted is not None and wanted.value != event.category:
                    problems.append(f"{name}: {event.code} filed as {event.category}, not {wanted.value}")
            first = self.team_attributes.setdefault(key, dict(view.team_attributes))
            if dict(view.team_attributes) != first:
                problems.append(
                    f"{name}: the team's attributes were rewritten: {first} -> {view.team_attributes}"
                )
            if view.request_key is not None:
                request_keys[view.request_key] += 1
                asked = by_request.get(view.request_key, [])
                if asked and not any(self._carries(record, self.expected_message(r)) for r in asked):
                    problems.append(
                        f"{name}: its payload, attributes, group or queue differ from the request's"
                    )
        problems += [f"Idempotency-Key {k} has {n} records" for k, n in request_keys.items() if n > 1]
        for request_key, ids in self.accepted.items():
            if len(ids) > 1:
                problems.append(
                    f"Idempotency-Key {request_key} was answered success with {len(ids)} message ids"
                )
        promised, promise_problems = self.promises(items)
        problems += promise_problems + self._unaccounted_sends(stored, promised)
        self.log.table(self._summary(records, now, promised))
        _fail_on(problems)

    def _unaccounted_sends(self, records: Mapping[str, Record], promised: list[Promised]) -> list[str]:
        """Every message on the service's queues went out for a record, to the record's queue (on a
        FIFO queue with the record's group and its message id as deduplication id), or for a row
        that promises it."""
        problems = []
        promises = {p.message_id: p for p in promised}
        queues = self.service.queue_urls
        for send in self.injector.landed:
            if send.queue_url not in queues:
                continue
            where = f"SQS message {send.sqs_message_id} on queue {_queue_name(send.queue_url)}"
            record = records.get(send.message_id or "")
            promise = promises.get(send.message_id or "")
            if promise is not None and promise.promise.body is None:
                problems.append(f"the row {promise.row} promises no message, but one went out: {where}")
            if record is None:
                if promise is None:
                    problems.append(
                        f"a message went out that no record or row accounts for (sent outside sendguard?): "
                        f"{where}, body {send.body[:60]!r}"
                    )
                continue
            name = self.name(record.message_id)
            if send.queue_url != self._queue_of(record):
                problems.append(
                    f"{name}: {where}, but the record names queue {_queue_name(self._queue_of(record))}"
                )
            if send.queue_url.endswith(".fifo"):
                group = Send(record.message, "", 0).group_id
                if (send.group_id, send.deduplication_id) != (group, record.message_id):
                    problems.append(
                        f"{name}: {where} went out in group {send.group_id!r} with deduplication id "
                        f"{send.deduplication_id!r}, not group {group!r} and id {record.message_id!r}"
                    )
        return problems

    def _carries(self, record: Record, expected: Expected) -> bool:
        try:
            payload = json.loads(record.message.payload)
        except ValueError:
            return False
        queue = None if expected.queue is None else self.service.queues.get(expected.queue)
        return bool(
            payload == expected.payload
            and dict(record.message.attributes) == dict(expected.attributes)
            and expected.group_id in (None, record.message.group_id)
            and queue in (None, self._queue_of(record))
        )

    # ---- quiescence ------------------------------------------------------------------------------

    def teardown(self) -> None:
        """Quiescence and its judgment — unless a step failed already (Hypothesis and the coverage
        phase call this in a `finally`): then the step's failure is the one to report, and judging
        a run cut short would only add noise to it."""
        try:
            if sys.exc_info()[1] is None:
                self._quiesce()
        finally:
            self._exit.close()

    def _waiting(self, items: list[dict[str, Any]]) -> list[TableRecord]:
        """Records the reconciler still has to settle: in flight, or PENDING with attempts left."""
        return [
            view
            for _, view in self.records(items).values()
            if isinstance(view, TableRecord) and view.stored.record.phase in (Phase.IN_FLIGHT, Phase.PENDING)
        ]

    def _due_by(self, waiting: list[TableRecord]) -> int:
        """When every waiting record is due: its lease expired, or its re-drive wait over."""
        settings = self.service.settings
        times = [now_ms()]
        for view in waiting:
            record = view.stored.record
            if record.phase is Phase.IN_FLIGHT and record.lease_expires_at is not None:
                times.append(record.lease_expires_at)
            times.append(record.updated_at + settings.redrive_after_ms)
        return max(times)

    def _quiesce(self) -> None:
        """Faults off. First every lease any invocation can hold (the longest timeout, submit's or the
        reconciler's, plus the margin) expires; then the reconciler runs, the clock moving on each
        time to when every waiting record is due, until nothing waits and one more full pass changes
        nothing. Then every promise is judged: the records' (nothing orphaned, nothing accepted
        lost, each payload as accepted, no duplicate without a fault to explain it) and the rows'."""
        self.log.step("faults stop; the reconciler runs until it settles")
        settings = self.service.settings
        self.clock.shift((self.service.longest_lease_ms + settings.redrive_after_ms + 1_000) / 1000)
        passes = 2 * settings.max_attempts + 4
        items = self._items()
        for _ in range(passes):
            self.log.detail(f"reconciler pass -> {self._reconcile(None)}")
            before, items = items, self._items()
            waiting = self._waiting(items)
            if not waiting and _same(before, items):
                break
            self.clock.shift(max(self._due_by(waiting) - now_ms(), 0) / 1000 + 1)
        else:
            raise AssertionError(
                f"the reconciler did not settle in {passes} passes: {self._summary(self.records(), now_ms())}"
            )
        while batch := self._receive():
            self.consumed += [m["MessageId"] for m in batch]
        self.records_are_consistent()
        items = self._items()
        views = {k: v for k, (_, v) in self.records(items).items() if isinstance(v, TableRecord)}
        stored = {key: view.stored.record for key, view in views.items()}
        landed = self._landed(stored)
        delivered = {m for m, sends in landed.items() if sends}
        problems = self._named(orphans(stored.values(), delivered, now_ms()))
        problems += self._named(lost(stored, self.accepted_ids, delivered))
        explained = self.injector.faulted_message_ids(ambiguous_only=False)
        for message_id, sends in landed.items():
            if len(sends) > 1 and message_id not in explained:
                problems.append(
                    f"{self.name(message_id)}: sent {len(sends)} times with no fault to explain it"
                )
        for send in self.injector.landed:
            record = stored.get(send.message_id or "")
            if record is not None and send.body != record.message.payload:
                problems.append(
                    f"{self.name(record.message_id)}: the queue carried another body than the record's"
                )
        problems += self._broken_promises(self.promises(items)[0], stored)
        _fail_on(problems)
        for record in stored.values():
            COVERAGE[f"quiescent {record.phase.value}"] += 1
        for fired in self.injector.fired:
            COVERAGE[f"fault {fired.fault.name}"] += 1
            if fired.caller == TEAM:
                COVERAGE[f"fault {fired.fault.name} on the team's own call"] += 1
        if any(write.caller == TEAM for write in self.injector.writes):
            COVERAGE[TEAM_WRITES] += 1

    def _broken_promises(self, promised: list[Promised], records: Mapping[str, Record]) -> list[str]:
        """At quiescence: every message a row promises went out, with exactly the promised body —
        unless its record was given up on (exhausted: a permanent failure, or every attempt used),
        which waits for an operator to re-arm it, as an accepted message does."""
        problems = []
        for row, message_id, promise in promised:
            record = records.get(message_id)
            if promise.body is None or (record is not None and record.phase is Phase.EXHAUSTED):
                continue
            queues = (
                self.service.queue_urls if promise.queue is None else (self.service.queues[promise.queue],)
            )
            bodies = self._sent(message_id, queues)
            if not bodies:
                problems.append(
                    f"the row {row} was left without its message: it promises message {message_id!r} "
                    f"(body {promise.body[:80]!r}), but none went out"
                )
            elif promise.body not in bodies:
                problems.append(
                    f"the row {row}'s message {message_id!r} went out with another body: {bodies[0][:80]!r}, "
                    f"not the promised {promise.body[:80]!r}"
                )
        return problems

    def _summary(
        self,
        records: Mapping[str, tuple[Any, TableRecord | Exception]],
        now: int,
        promised: Sequence[Promised] = (),
    ) -> str:
        """The records, and the team's rows that promise a message no record holds."""
        parts = [f"[row {p.row} promises {p.message_id}]" for p in promised if p.message_id not in records]
        for key, (_, view) in records.items():
            if isinstance(view, Exception):
                parts.append(f"[{key[:40]} unreadable]")
                continue
            record = view.stored.record
            name = view.request_key or self.name(key)[:24]
            text = f"{name} {record.phase.value} v{record.version} attempts {record.attempts}"
            if record.phase is Phase.IN_FLIGHT and record.lease_expires_at is not None:
                text += f" lease {(record.lease_expires_at - now) / 1000:+.1f} s"
            parts.append(f"[{text}]")
        return " ".join(parts) or "empty"


class OutboxSuite(FaultInjectionSuite):
    """The suite with defaults for a team's handler built on `adapters.Outbox` with its own table
    layout (`layout`): `outbox_service`'s handler by default; items read with `layout`, the team's
    attributes checked; a plain event in, the `SendResult` (or a proxy answer) out. Override
    `make_service` with your own handler (`outbox_service(..., submit=your_handler, ...)`), and
    `make_event` / `read_reply` / `expected_message` for your event and answer."""

    layout = TableLayout(partition_key="pk", status_attribute="state", body_attribute="body")

    def make_service(self) -> Service:
        return outbox_service(self.protocol, self.layout)

    def request_bodies(self) -> st.SearchStrategy[Any]:
        """sendguard's default bodies, with the team's own attributes of the item (`item`)."""
        item = st.fixed_dictionaries({"note": st.text("xyz", min_size=1, max_size=4)})
        return st.tuples(super().request_bodies(), item).map(lambda b: {**b[0], "item": b[1]})

    def make_event(self, request: Request) -> Any:
        return outbox_event(request)

    def read_reply(self, answer: Any) -> Reply:
        return read_send_result(answer)

    def read_item(self, item: dict[str, Any]) -> TableRecord | None:
        return read_layout_item(item, self.service.layout)

    def expected_message(self, request: Request) -> Expected:
        return outbox_message(request)


def _default_rearm(service: Service) -> Any:
    """sendguard's own re-arm on the service's table (clients made under the injector, so faulted)."""
    store = DynamoStore(make_client("dynamodb", 2), service.table, service.layout)
    aws = Aws(store, SqsQueue(make_client("sqs", 2), service.queue_url))

    def rearm_one(key: str) -> object:
        settings = service.settings
        record_key = service.layout.key_named(key)
        assert record_key is not None, f"{key}: a digest names no key; the suite re-arms by key"
        found = rearm(aws, record_key, reason="suite", by="suite", max_attempts=settings.max_attempts)
        return found.outcome

    return rearm_one


_KEY_NAMES: dict[str, tuple[str, ...]] = {}


def _key_names(table: str) -> tuple[str, ...]:
    if table not in _KEY_NAMES:
        schema = client("dynamodb").describe_table(TableName=table)["Table"]["KeySchema"]
        _KEY_NAMES[table] = tuple(part["AttributeName"] for part in schema)
    return _KEY_NAMES[table]


def _same(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> bool:
    def dumped(items: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps(item, sort_keys=True) for item in items)

    return dumped(before) == dumped(after)


def _key(request: Request) -> str:
    return request.key or "(no Idempotency-Key)"


def _queue_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


TEAM_WRITES = "the team's own writes"  # a run in which the team's code wrote to DynamoDB itself


class Promised(NamedTuple):
    """A promise, with the row that makes it and the message id its key names."""

    row: str
    message_id: str
    promise: Promise


def answer_meaning(status: int) -> str:
    """What an answer claims, in words."""
    if 200 <= status < 300:
        return "accepted" if status == 202 else "success"
    words = {409: "conflict", 500: "failed for good", 503: "retry later"}
    try:
        return words.get(status) or HTTPStatus(status).phrase.lower()
    except ValueError:
        return "not an HTTP status"


def _fail_on(problems: list[str]) -> None:
    """Fails the run with every broken promise, one a line."""
    if problems:
        raise AssertionError("\n".join(problems))


def _read_s3(location: str) -> str | None:
    """A body kept in S3 (`s3://bucket/key`), or None when it is not there."""
    bucket, _, key = location.removeprefix(S3_PREFIX).partition("/")
    try:
        body: bytes = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        return None
    return body.decode()


def _write_targets(operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """(table, key or item) of each item a landed write puts or updates (deletes are not counted:
    an item, once there, must stay)."""
    if operation in ("UpdateItem", "PutItem"):
        return [(params.get("TableName", ""), params.get("Key") or params.get("Item"))]
    if operation == "TransactWriteItems":
        targets = []
        for entry in params.get("TransactItems", []):
            for kind in ("Put", "Update"):
                if kind in entry:
                    part = entry[kind]
                    targets.append((part.get("TableName", ""), part.get("Key") or part.get("Item")))
        return targets
    if operation == "BatchWriteItem":
        return [
            (table, request["PutRequest"]["Item"])
            for table, requests in params.get("RequestItems", {}).items()
            for request in requests
            if "PutRequest" in request
        ]
    assert operation in OPERATIONS[WRITE]
    return []
