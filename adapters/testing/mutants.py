"""Deliberately broken handlers, to prove the fault-injection suite can fail (`make mutants`).

Each is built from parts passed in as parameters — none patches a module, and no production module
lists a helper for them to patch:

* adapter mutants: sendguard's own handlers, `adapters.aws_lambda.Handlers(aws=...)`, with a broken
  store, due index or queue (a subclass of `DynamoStore` / `DueIndex` / `SqsQueue`) or classifier
  (the `classify=` parameter the store and the queue take), or wrapped the way a broken deployment
  would run them;
* wiring mutants: a team's handler that gets the wiring wrong — around sendguard's handler (sends to
  SQS itself, answers 202 on its own, turns sendguard's 503 into a 202), or built on `Outbox` with
  the team's own table layout (`adapters.testing.OutboxSuite`: a write that overwrites a team
  attribute, a dispatch that claims a record whose status is not PENDING), or a payments team's own
  handler (`Payments(row_then_send=True)`, under `PaymentsSuite`, whose rows promise their events:
  the payment row written with its own PutItem, then `send`).

`main` runs the suite (the coverage phase, then Hypothesis' sequences without shrinking) against each
and prints, with the time it took, `caught` and the check that caught it (each mutant names the failure
of the promise it breaks: `CAUGHT_WITH`), `MISSED`, or `ELSEWHERE` — failed, but by another check or
a crash, which does not show the suite can catch it — exiting 1 unless every one is caught.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import attrs
import boto3
from botocore.exceptions import BotoCoreError, ClientError
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from adapters.aws_lambda import Handlers
from adapters.runtime.bodies import ITEM_PREFIX, new_nonce
from adapters.runtime.call_report import CallReport
from adapters.runtime.classify import Classified, Classifier, classify
from adapters.runtime.clients import make_client
from adapters.runtime.codec import MESSAGE, VERSION, body_item, serialize
from adapters.runtime.compact import pack_message
from adapters.runtime.config import Config
from adapters.runtime.due_index import DueIndex, DuePage
from adapters.runtime.item_size import Placement
from adapters.runtime.layout import TableLayout
from adapters.runtime.outbox import Outbox, SendResult
from adapters.runtime.runner import Aws
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.store import DynamoStore
from adapters.testing.hooks import Expected, Promise, Request
from adapters.testing.scenarios import SCENARIOS, run_scenario
from adapters.testing.service import QUIET_LOGGER, Service, outbox_service, sendguard_service
from adapters.testing.suite import FaultInjectionSuite, OutboxSuite
from statemodel.categories import ErrorCategory, Failure
from statemodel.events import Claimed, RedriveExhausted, RolledBack, SendConfirmed, SendFailed
from statemodel.flows import Outcome, Send, Settings, Write, Written
from statemodel.keys import Key
from statemodel.records import Phase as RecordPhase
from statemodel.records import Status
from statemodel.stored import Stored
from statemodel.validation import message_id_for_key

# ---- broken parts: passed to `Handlers(aws=...)` / `outbox_service(aws=...)` -------------------------


def _has(write: Write, event_type: type) -> bool:
    return any(isinstance(e, event_type) for e in write.events)


class _Unconditional(DynamoStore):
    """Writes carrying `event_type` lose their condition (and the values only the condition used)."""

    event_type: type = RolledBack

    def update_request(self, write: Write) -> dict[str, Any]:
        request = super().update_request(write)
        if _has(write, self.event_type):
            request.pop("ConditionExpression", None)
            request["ExpressionAttributeValues"] = {
                k: v for k, v in request["ExpressionAttributeValues"].items() if not k.startswith(":x_")
            }
            used = request["UpdateExpression"]
            request["ExpressionAttributeNames"] = {
                k: v for k, v in request["ExpressionAttributeNames"].items() if k in used
            }
        return request


class _UnconditionalRollback(_Unconditional):
    event_type = RolledBack


class _UnconditionalConfirm(_Unconditional):
    event_type = SendConfirmed


class _RollbackRewritesMetadata(DynamoStore):
    def update_request(self, write: Write) -> dict[str, Any]:
        request = super().update_request(write)
        if _has(write, RolledBack):  # "refresh" the correlation id on the way back to PENDING
            request["UpdateExpression"] = request["UpdateExpression"].replace("SET ", "SET #cid = :cid, ", 1)
            request["ExpressionAttributeNames"]["#cid"] = MESSAGE
            refreshed = attrs.evolve(write.after.message, correlation_id=str(uuid.uuid4()))
            request["ExpressionAttributeValues"][":cid"] = {"S": pack_message(refreshed)}
        return request


class _IgnoresLease(DueIndex):
    """A reconciler's read that takes every in-flight claim for expired, live or not."""

    def due(self, now: int, settings_: Settings, shards: Collection[int] | None = None) -> Iterator[DuePage]:
        ahead = 10 * 60 * 1000
        for page in super().due(now + ahead, settings_, shards):
            records = tuple(
                attrs.evolve(r, lease_expires_at=now) if r.phase is RecordPhase.IN_FLIGHT else r
                for r in page.records
                if r.phase is RecordPhase.IN_FLIGHT or r.updated_at + settings_.redrive_after_ms <= now
            )
            yield attrs.evolve(page, records=records)


class _DropsOnPermanentError(DynamoStore):
    """A permanent failure deletes the record instead of flagging it."""

    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
        outcome, call = super().perform(write, deadline_ms)
        permanent = any(
            isinstance(e, SendFailed) and e.category == ErrorCategory.PERMANENT.value for e in write.events
        )
        if isinstance(outcome, Written) and permanent and _has(write, RedriveExhausted):
            self.client.delete_item(TableName=self.table, Key=self.layout.key(write.after.message.record_key))
        return outcome, call


class _ClaimsWhateverTheStatus(DynamoStore):
    """The team's dispatch goes by a read that takes every record for PENDING, and claims it with a
    condition on the version alone: a record already sent (QUEUED) is claimed and sent again."""

    def get(self, key: Key, deadline_ms: int | None = None) -> tuple[Stored | Failure | None, CallReport]:
        found, call = super().get(key, deadline_ms)
        if isinstance(found, Stored) and found.record.phase is not RecordPhase.PENDING:
            record = attrs.evolve(
                found.record, status=Status.PENDING, attempt_id=None, lease_expires_at=None, exhausted=False
            )
            found = attrs.evolve(found, record=record)
        return found, call

    def update_request(self, write: Write) -> dict[str, Any]:
        request = super().update_request(write)
        if write.before is not None and _has(write, Claimed):
            names = request["ExpressionAttributeNames"]
            version = next(k for k, v in names.items() if v == VERSION)
            request["ConditionExpression"] = f"{version} = :x_version"
            values = request["ExpressionAttributeValues"]
            for unused in (":x_status", ":x_attempt_id", ":x_attempt_short"):
                values.pop(unused, None)
            used = request["UpdateExpression"] + request["ConditionExpression"]
            request["ExpressionAttributeNames"] = {k: v for k, v in names.items() if k in used}
        return request


class _BodyAfterRecord(DynamoStore):
    """A create that writes the record first, naming a body it writes only once the record landed
    (and shrugs off a failure of that): a fault or a crash in between leaves a record whose body
    is not there."""

    _late: tuple[Key, str, str] | None = None  # the body the create still has to write

    def place_body(
        self, write: Write, created: Mapping[str, Any], deadline_ms: int | None
    ) -> tuple[str | Classified | None, CallReport | None]:
        body = self.bodies.body_item(write.after.message)
        if self.bodies.placement(created, body) is not Placement.ITEM:
            return super().place_body(write, created, deadline_ms)
        nonce = new_nonce()
        self._late = (write.after.message.record_key, nonce, write.after.message.payload)
        return ITEM_PREFIX + nonce, None

    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
        self._late = None
        outcome, call = super().perform(write, deadline_ms)
        if self._late is not None and isinstance(outcome, Written):
            key, nonce, text = self._late
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.put_item(TableName=self.table, Item=body_item(self.layout, key, nonce, text))
        return outcome, call


class _SendsPastItsLease(SqsQueue):
    """A send bounded by nothing: not by the invocation's end, nor by its lease."""

    def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
        return super().perform(send, None)


def _permanent_retried(error: BaseException, operation_model: Any = None) -> Classified:
    result = classify(error, operation_model)
    if result.category is ErrorCategory.PERMANENT:
        return attrs.evolve(result, failure=attrs.evolve(result.failure, category=ErrorCategory.RETRYABLE))
    return result


AwsFactory = Callable[[Config], Aws]


def _aws(
    store: type[DynamoStore] = DynamoStore,
    queue: type[SqsQueue] = SqsQueue,
    classifier: Classifier = classify,
    due_index: type[DueIndex] = DueIndex,
) -> AwsFactory:
    """What `Handlers(aws=...)` and `outbox_service(aws=...)` build the store, queue and due index
    with."""

    def build(config: Config) -> Aws:
        dynamodb = make_client("dynamodb", config.aws_max_attempts)
        records = store(dynamodb, config.table, config.layout, classify=classifier)
        return Aws(
            records,
            queue(make_client("sqs", config.aws_max_attempts), config.queue_url, classify=classifier),
            due_index(records),
        )

    return build


# ---- how a mutant's service is made --------------------------------------------------------------

Build = Callable[[Settings], Service]
_BUILT: dict[str, Handlers] = {}  # one container per mutant, kept across examples like sendguard's


def _handlers(name: str, aws: AwsFactory) -> Handlers:
    if name not in _BUILT:
        _BUILT[name] = Handlers(aws)
    return _BUILT[name]


def adapter(aws: AwsFactory) -> Callable[[str], Build]:
    return lambda name: lambda protocol: sendguard_service(protocol, handlers=_handlers(name, aws))


def wrapped(
    wrap: Callable[[Service, Handlers], Service], aws: AwsFactory = Aws.from_config
) -> Callable[[str], Build]:
    def build(name: str) -> Build:
        def service(protocol: Settings) -> Service:
            handlers = _handlers(name, aws)
            return wrap(sendguard_service(protocol, handlers=handlers), handlers)

        return service

    return build


def on_outbox(
    aws: AwsFactory = Aws.from_config, wrap: Callable[[Service], Service] = lambda s: s
) -> Callable[[str], Build]:
    """A team's handler on `Outbox` with `OutboxSuite`'s layout (`outbox_service`), built from `aws`,
    or wrapped."""
    return lambda name: lambda protocol: wrap(outbox_service(protocol, OutboxSuite.layout, aws=aws))


def _header(event: Any, name: str) -> str | None:
    headers = event.get("headers") or {}
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _reconciler_resends_confirmed(service: Service, handlers: Handlers) -> Service:
    """A reconciler that "makes sure" confirmed records were sent by sending them again."""

    def reconcile(event: Any, context: Any) -> Any:
        summary = service.reconcile(event, context)
        aws = handlers.aws()
        for _, stored in aws.dynamodb.scan():
            if not isinstance(stored, Exception) and stored.record.phase is RecordPhase.CONFIRMED:
                aws.queue.perform(Send(stored.record.message, str(uuid.uuid4()), 2**62), None)
        return summary

    return attrs.evolve(service, reconcile=reconcile)


class _HalfTheTime:
    def __init__(self, context: Any) -> None:
        self.context = context

    def get_remaining_time_in_millis(self) -> int:
        return int(self.context.get_remaining_time_in_millis()) // 2


def _lease_leaves_out_the_invocation(service: Service, _: Handlers) -> Service:
    """The handler is told only half the invocation's time: its lease leaves out the rest (and its
    queue sends past its lease)."""
    return attrs.evolve(service, submit=lambda event, context: service.submit(event, _HalfTheTime(context)))


def _key_ignored(service: Service, _: Handlers) -> Service:
    """The team's handler loses the Idempotency-Key on the way in: each replay is a new message."""

    def submit(event: Any, context: Any) -> Any:
        headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "idempotency-key"}
        if _header(event, "idempotency-key") is not None:
            headers["idempotency-key"] = f"fresh-{uuid.uuid4()}"
        return service.submit({**event, "headers": headers}, context)

    return attrs.evolve(service, submit=submit)


# ---- a team's wiring gone wrong ------------------------------------------------------------------


def _sends_before_sendguard(service: Service, _: Handlers) -> Service:
    """The team's handler sends the message itself (its own boto3 client on the default session),
    then calls sendguard: the dual write sendguard exists to replace."""
    sqs: dict[str, Any] = {}

    def submit(event: Any, context: Any) -> Any:
        if "client" not in sqs:
            sqs["client"] = boto3.client("sqs")
        sqs["client"].send_message(QueueUrl=service.queue_url, MessageBody=event.get("body") or "")
        return service.submit(event, context)

    return attrs.evolve(service, submit=submit)


def _answers_202_itself(service: Service, _: Handlers) -> Service:
    """The team's handler keeps its own list of keys it has seen and answers a replay 202 without
    calling sendguard — also when the first try was not accepted."""
    seen: set[str] = set()

    def submit(event: Any, context: Any) -> Any:
        key = _header(event, "idempotency-key")
        if key is not None and key in seen:
            body = {"messageId": message_id_for_key(key), "status": "QUEUED"}
            return {"statusCode": 202, "headers": {}, "body": json.dumps(body)}
        if key is not None:
            seen.add(key)
        return service.submit(event, context)

    return attrs.evolve(service, submit=submit)


def _turns_503_into_202(service: Service, _: Handlers) -> Service:
    """The team's handler tells its clients "accepted" whenever sendguard says "retry later"."""

    def submit(event: Any, context: Any) -> Any:
        answer = service.submit(event, context)
        if answer["statusCode"] == 503:
            key = _header(event, "idempotency-key")
            message_id = message_id_for_key(key) if key else str(uuid.uuid4())
            return {"statusCode": 202, "headers": {}, "body": json.dumps({"messageId": message_id})}
        return answer

    return attrs.evolve(service, submit=submit)


def _rewrites_a_team_attribute(service: Service) -> Service:
    """The team's handler stamps its own attribute on the record's item at every request (an
    UpdateItem of its `note`, after sendguard's send): what the create wrote is overwritten."""
    team: dict[str, Any] = {}

    def submit(event: Any, context: Any) -> Any:
        answer = service.submit(event, context)
        if answer.accepted:
            if "dynamodb" not in team:
                team["dynamodb"] = boto3.client("dynamodb")
            team["dynamodb"].update_item(
                TableName=service.table,
                Key=service.layout.key(answer.message_id),
                UpdateExpression="SET #note = :note",
                ExpressionAttributeNames={"#note": "note"},
                ExpressionAttributeValues={":note": {"S": f"seen {uuid.uuid4().hex[:6]}"}},
            )
        return answer

    return attrs.evolve(service, submit=submit)


# ---- a team's own table: payments ------------------------------------------------------------------
#
# A payments service keeps a payment row per payment, `(paymentId, "payment")`, and every payment
# promises a `PaymentTaken` event under its id. Its correct handler commits the row and the event's
# record in one transaction, then dispatches the record (or, for a request that takes the other way,
# sends with the payment's attributes on the record itself). The broken one writes the row with its
# own PutItem, then calls `send`, and answers 503 when either fails: a crash or a fault between the
# two leaves a payment whose event is never sent — the classic dual-write bug, which only the rows'
# promise (`PaymentsSuite.promised_message`) can see, since no record of sendguard's is ever wrong.

PAYMENTS = TableLayout(
    partition_key="paymentId",
    sort_key="kind",
    sort_key_value="event",  # the event's record, apart from the payment row
    status_attribute="outboxStatus",
    body_attribute="message",
)


def payment_event(payment_id: str, amount: int, currency: str) -> str:
    """The team's serialization of the event a payment promises."""
    body = {"type": "PaymentTaken", "paymentId": payment_id, "amount": amount, "currency": currency}
    return json.dumps(body, sort_keys=True)


class Payments:
    """The payments team's handlers (`row_then_send`: the broken wiring), on the table and queue its
    environment names, with its Outbox made once per container."""

    def __init__(self, *, row_then_send: bool) -> None:
        self.row_then_send = row_then_send
        self._state: dict[str, Any] = {}

    def outbox(self) -> Outbox:
        if "outbox" not in self._state:
            self._state["outbox"] = Outbox(
                os.environ["PAYMENTS_TABLE"],
                os.environ["PAYMENTS_QUEUE_URL"],
                layout=PAYMENTS,
                max_attempts=2,
                redrive_after_seconds=1,
                lease_margin_seconds=1,
                aws_max_attempts=2,
                logger=QUIET_LOGGER,
            )
        found: Outbox = self._state["outbox"]
        return found

    def reset(self) -> None:
        self._state.clear()

    def environment(self, table: str, queue_url: str) -> dict[str, str]:
        return {"PAYMENTS_TABLE": table, "PAYMENTS_QUEUE_URL": queue_url}

    def submit(self, event: dict[str, Any], context: Any) -> SendResult:
        box, payment_id = self.outbox(), event["paymentId"]
        body = payment_event(payment_id, event["amount"], event["currency"])
        item = {"amount": event["amount"], "currency": event["currency"]}
        if "dynamodb" not in self._state:
            self._state["dynamodb"] = boto3.client("dynamodb")
        dynamodb = self._state["dynamodb"]
        failed = SendResult(False, True, 503, payment_id, "failed", "PaymentNotStored")
        row = {**box.layout.key(Key(payment_id, "payment")), **{k: serialize(v) for k, v in item.items()}}
        if self.row_then_send:
            try:
                dynamodb.put_item(TableName=box.table, Item=row)
            except (ClientError, BotoCoreError):
                return failed
            return box.send(payment_id, body, context=context)
        if not event["transactional"]:  # the row is the event's record itself
            return box.send(payment_id, body, item=item, context=context)
        put = box.pending_put(payment_id, body)
        try:
            dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": box.table, "Item": row}}, put])
        except ClientError as exc:
            if not box.record_exists(exc, put):
                return failed
        except BotoCoreError:
            return failed
        return box.dispatch(put, context=context)

    def reconcile(self, event: Any, context: Any) -> Any:
        return self.outbox().reconcile(context=context).as_dict()


def payments_service(handlers: Payments) -> Service:
    return outbox_service(
        outbox=handlers.outbox,
        submit=handlers.submit,
        reconcile=handlers.reconcile,
        environment_for=handlers.environment,
        reset=handlers.reset,
        transactional=True,
    )


_PAYMENTS = Payments(row_then_send=False)


class PaymentsSuite(OutboxSuite):
    """The payments team's suite: its requests, events and answers, and what its rows promise."""

    def make_service(self) -> Service:
        return payments_service(_PAYMENTS)

    def request_bodies(self) -> st.SearchStrategy[Any]:
        return st.fixed_dictionaries(
            {"amount": st.integers(1, 999), "currency": st.sampled_from(["EUR", "USD"])}
        )

    def make_event(self, request: Request) -> Any:
        payment_id = request.key or f"p-{uuid.uuid4().hex[:8]}"
        return {"paymentId": payment_id, "transactional": request.transactional, **request.body}

    def expected_message(self, request: Request) -> Expected:
        return Expected(json.loads(payment_event(str(request.key), **request.body)))

    def promised_message(self, item: dict[str, Any]) -> Promise | None:
        """Every item that holds a payment — its row, or the event's record carrying it — promises
        the payment's event, under the payment's id."""
        if "amount" not in item:
            return None
        payment_id = item["paymentId"]["S"]
        amount, currency = int(item["amount"]["N"]), item["currency"]["S"]
        return Promise(payment_id, payment_event(payment_id, amount, currency))


MUTANTS: dict[str, tuple[str, Callable[[str], Build]]] = {
    "rollback_without_fencing": (
        "a rollback write without its status/version/attempt condition",
        adapter(_aws(store=_UnconditionalRollback)),
    ),
    "unconditional_confirm": (
        "a confirm write without its condition",
        adapter(_aws(store=_UnconditionalConfirm)),
    ),
    "reconciler_resends_confirmed": (
        "the reconciler sends confirmed records again",
        wrapped(_reconciler_resends_confirmed),
    ),
    "lease_shorter_than_invocation": (
        "the lease leaves out the invocation's time; sends not bounded by the lease",
        wrapped(_lease_leaves_out_the_invocation, _aws(queue=_SendsPastItsLease)),
    ),
    "permanent_errors_retried": (
        "permanent errors filed as retryable and re-driven",
        adapter(_aws(classifier=_permanent_retried)),
    ),
    "idempotency_key_ignored": (
        "a replay with the same Idempotency-Key makes a new message",
        wrapped(_key_ignored),
    ),
    "rollback_rewrites_metadata": (
        "a rollback rewrites the correlation id",
        adapter(_aws(store=_RollbackRewritesMetadata)),
    ),
    "reconciler_ignores_lease": (
        "the reconciler rolls back live claims",
        adapter(_aws(due_index=_IgnoresLease)),
    ),
    "body_written_after_record": (
        "a large body written after the record that names it",
        adapter(_aws(store=_BodyAfterRecord)),
    ),
    "drops_records_on_permanent_error": (
        "a permanent failure deletes the record instead of flagging it",
        adapter(_aws(store=_DropsOnPermanentError)),
    ),
    # a team's wiring
    "team_sends_before_sendguard": (
        "the team's handler sends to SQS itself before calling sendguard",
        wrapped(_sends_before_sendguard),
    ),
    "team_answers_202_itself": (
        "the team's handler answers a replay 202 without calling sendguard",
        wrapped(_answers_202_itself),
    ),
    "team_turns_503_into_202": (
        "the team's handler turns sendguard's 503 into a 202",
        wrapped(_turns_503_into_202),
    ),
    "team_overwrites_its_attribute": (
        "the team's write overwrites a team attribute of the record's item",
        on_outbox(wrap=_rewrites_a_team_attribute),
    ),
    "team_dispatch_claims_any_status": (
        "the team's dispatch claims a record whose status is not PENDING",
        on_outbox(aws=_aws(store=_ClaimsWhateverTheStatus)),
    ),
    "team_row_then_send": (
        "the team writes its payment row, then calls send, and answers 503 when either fails",
        lambda name: lambda protocol: payments_service(Payments(row_then_send=True)),
    ),
}
# The check each mutant must be caught by: a pattern (`re.search`) of the failure the suite reports for
# the promise the mutant breaks. A mutant the suite fails for anything else — a crash, another
# invariant — is not shown to be caught (`judge`).
CAUGHT_WITH: dict[str, str] = {
    "rollback_without_fencing": r"illegal history: (SendFailed|RolledBack) is not allowed for \S+ in phase "
    r"CONFIRMED",
    "unconditional_confirm": r"illegal history: SendConfirmed is not allowed",
    "reconciler_resends_confirmed": r"sent again after SQS message \S+ was confirmed",
    "lease_shorter_than_invocation": r"sent again after SQS message \S+ was confirmed",
    "permanent_errors_retried": r"filed as retryable, not permanent",
    "idempotency_key_ignored": r"was answered success with \d+ message ids",
    "rollback_rewrites_metadata": r"Accepted disagrees with the record's message",
    "reconciler_ignores_lease": r"rolled back at \d+, before it expired",
    "body_written_after_record": r"the body at 'item:\S+' was not read",
    "drops_records_on_permanent_error": r"the item .+ disappeared",
    "team_sends_before_sendguard": r"a message went out that no record or row accounts for",
    "team_answers_202_itself": r"answered 202 \(accepted\), but no message was sent",
    "team_turns_503_into_202": r"answered 202 \(accepted\), but no message was sent",
    "team_overwrites_its_attribute": r"the team's attributes were rewritten",
    "team_dispatch_claims_any_status": r"illegal history: Claimed is not allowed for \S+ in phase CONFIRMED",
    "team_row_then_send": r"was left without its message",
}

# The suite each team-wiring mutant runs under (the adapters' and the rest: FaultInjectionSuite).
SUITES: dict[str, type[FaultInjectionSuite]] = {
    "team_overwrites_its_attribute": OutboxSuite,
    "team_dispatch_claims_any_status": OutboxSuite,
    "team_row_then_send": PaymentsSuite,
}

# A mutant is caught when the suite fails within this budget; no shrinking (the verdict is all we need).
BUDGET = settings(
    max_examples=60,
    stateful_step_count=30,
    derandomize=True,
    phases=[Phase.generate],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def suite_for(name: str, base: type[FaultInjectionSuite] | None = None) -> type[FaultInjectionSuite]:
    """`base` (default: the mutant's team suite in `SUITES`, else `FaultInjectionSuite`) on the
    mutant's service."""
    build = MUTANTS[name][1](name)
    base = base or SUITES.get(name, FaultInjectionSuite)

    class Mutant(base):  # type: ignore[valid-type,misc]
        def make_service(self) -> Service:
            return build(self.protocol)

    Mutant.__name__ = Mutant.__qualname__ = f"Mutant_{name}"
    return Mutant


@attrs.frozen
class Verdict:
    """What came of the suite against one mutant."""

    caught: bool  # by its own check (`CAUGHT_WITH`), and by nothing else
    label: str  # caught | MISSED | ELSEWHERE (the suite failed, but not for the promise it breaks)
    said: str  # the check, and the suite's first line about it


def judge(name: str, failure: BaseException | None) -> Verdict:
    """`failure`: what the suite raised against the mutant `name` (None: it passed)."""
    if failure is None:
        return Verdict(False, "MISSED", "the suite passed")
    first = str(failure).splitlines()[0][:160] if str(failure) else ""
    said = f"{type(failure).__name__}: {first}"
    check = CAUGHT_WITH[name]
    if isinstance(failure, AssertionError) and re.search(check, str(failure)):
        return Verdict(True, "caught", f"by /{check}/ — {said}")
    return Verdict(False, "ELSEWHERE", f"not by /{check}/ but {said}")


def caught(name: str, base: type[FaultInjectionSuite] | None = None) -> Verdict:
    """Runs the suite against one mutant (moto must not be active yet), and judges what it said."""
    from moto import mock_aws

    machine = suite_for(name, base)
    with mock_aws():
        try:
            for scenario in SCENARIOS:
                run_scenario(machine, scenario)
            run_state_machine_as_test(machine, settings=BUDGET)
        except Exception as exc:
            return judge(name, exc)
    return judge(name, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.testing.mutants", description=__doc__)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="name the mutants and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, (what, _) in MUTANTS.items():
            print(f"{name:34} {what}")
        return 0
    _fake_credentials()
    missed = 0
    for name in args.names or list(MUTANTS):
        started = time.monotonic()
        verdict = caught(name)
        missed += not verdict.caught
        print(f"{verdict.label:9} {name:34} {time.monotonic() - started:5.1f}s  {verdict.said}", flush=True)
    return 1 if missed else 0


def _fake_credentials() -> None:
    import os

    from adapters.local.sandbox import fake_aws_environment

    fake_aws_environment(os.environ.__setitem__, lambda name: os.environ.pop(name, None))


if __name__ == "__main__":
    sys.exit(main())
