"""`Inbox`: the consumer side, as a library — each SQS message's effect applied once, on the team's
own table, in one of two modes (docs/inbox.md):

* `transactional`: the team's handler returns its effect as DynamoDB `TransactWriteItems` entries
  and writes nothing itself; the inbox commits them in one transaction with its own record, which is
  conditioned on the record as read. A duplicate, a concurrent delivery (a visibility timeout that
  ran out mid-work) or a stale invocation has its whole transaction cancelled: exactly one effect,
  whatever SQS does.
* `guarded`: for effects outside DynamoDB (an HTTP call). The inbox claims the message under a lease
  (the invocation's end plus a margin) before it runs the handler, completes it with the handler's
  result, or releases it when the handler fails; completion and release are conditioned on the
  claiming attempt, so a lost claim completes nothing, and a duplicate of a completed message is
  answered with the stored result without running the handler. The handler gets a stable
  `idempotency_key` to pass to the service it calls: the claim keeps two invocations from running it
  at once, the key keeps a re-run (after a crash past the call) from repeating its effect.

The same pure flows as the explorer's (`statemodel.inbox.flows`), run by the same loop
(`statemodel.inbox.interpreter`), carry each message; this module gives that loop its ports,
DynamoDB and the team's handler, and decides nothing.

`handle_batch(event, handler)` serves a Lambda SQS event: it answers `{"batchItemFailures": [...]}`
(the event source mapping needs `ReportBatchItemFailures`). On a FIFO queue, once a message of a
group is not done, the group's later messages in the batch are not started and fail with it, so
their order holds. A message is not started when the invocation's time is nearly out; it fails and
comes back. A message whose key cannot be read is not processed: it fails, and the queue's redrive
policy takes it. A layout that does not fit the table (DynamoDB refuses the record's key, and
DescribeTable says why: `adapters.runtime.table_check.RefusalCheck`, as for `Outbox`) is no message's
failure: `InboxLayoutMismatch` (a ConfigError) is raised, and the whole batch fails.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import boto3
import structlog
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from adapters.runtime.call_report import CallReport, call
from adapters.runtime.classify import (
    VALIDATION_EXCEPTION,
    Classified,
    Classifier,
    bounded_message,
    classify,
    failed,
)
from adapters.runtime.clients import (
    ANSWER_RESERVE_MS,
    ANSWER_RESERVE_SHARE,
    ATTEMPT_BUDGET_MS,
    make_client,
    now_ms,
    remaining_ms,
)
from adapters.runtime.codec import ATTENTION, INDEX
from adapters.runtime.config import ConfigError
from adapters.runtime.inbox_codec import (
    DEFAULT_KEY_PREFIX,
    FAILED_PARTITION,
    error_message_of,
    is_inbox_record,
    record_key,
    stored_from_item,
    update_request,
)
from adapters.runtime.layout import TableLayout, given_layout
from adapters.runtime.log_events import (
    AWS_FAILURE,
    INBOX_DELIVERY,
    INBOX_GIVEN_UP,
    INBOX_HANDLER_FAILED,
    INBOX_KEY_MISSING,
    INBOX_TRANSITION,
    emit,
)
from adapters.runtime.logs import get_logger, logging_to
from statemodel.categories import ErrorCategory, Failure, consequence
from statemodel.errors import ForbiddenCommand
from statemodel.inbox import flows, interpreter
from statemodel.inbox.decider import evolve
from statemodel.inbox.events import InboxEvent, InboxStored, event_to_dict
from statemodel.inbox.flows import (
    Conflict,
    Found,
    Handled,
    HandlerError,
    InboxAnswer,
    InboxFlow,
    InboxOutcome,
    InboxResult,
    InboxSettings,
    InboxWrite,
    Invoke,
    Read,
    Written,
)
from statemodel.inbox.records import InboxMessage, InboxPhase, InboxRecord, phase_of
from statemodel.inbox.table import Mode
from statemodel.sizes import inbox_effects_problem, inbox_key_fits, inbox_prefix_problem, inbox_result_problem

if TYPE_CHECKING:
    from adapters.runtime.table_check import RefusalCheck

MIN_START_MS = 1_000  # a message is not started with less time left than this
NOT_AN_INBOX_RECORD = "NotAnInboxRecord"
EFFECT_REFUSED = "EffectConditionFailed"
KEY_MISSING = "KeyMissing"
NOT_STARTED = "NotStarted"  # no time left, or an earlier message of its FIFO group was not done
DEFAULT_KEY_ATTRIBUTE = "message_id"  # what sendguard's outbox sets on every message it sends

Handler = Callable[["Delivery"], Any]


class InvalidEffect(ValueError):
    """A transactional handler returned what cannot be committed: it must be a list of at most 99
    `TransactWriteItems` entries, each one of Put, Update, Delete or ConditionCheck."""


class InboxError(Exception):
    """A record could not be read or written (an AWS failure, already classified and logged)."""

    def __init__(self, message: str, *, category: str, code: str) -> None:
        super().__init__(message)
        self.category, self.code = category, code


class InboxLayoutMismatch(ConfigError, InboxError):
    """The Inbox's layout does not fit its table: DynamoDB refused the record's key (a
    ValidationException) and DescribeTable says why; the message names the table, its key, the
    layout's and the `TableLayout` arguments to set. Raised by `process`, `process_batch`,
    `handle_batch` (the whole batch fails: no message is processed with a layout that cannot hold
    its record) and `get`; a ConfigError, and an InboxError (permanent, the refusal's code)."""

    def __init__(self, problem: str) -> None:
        InboxError.__init__(self, problem, category=ErrorCategory.PERMANENT.value, code=VALIDATION_EXCEPTION)


@attrs.frozen
class Delivery:
    """One SQS message, as the team's handler gets it."""

    key: str  # the inbox's key of the message: the producer's message id, or the team's key
    body: str
    attributes: Mapping[str, str]  # the message's String and Number attributes
    sqs_message_id: str
    receive_count: int  # SQS's ApproximateReceiveCount
    group_id: str | None
    idempotency_key: str  # the same for every delivery of this message: pass it to the service you call
    attempt_id: str  # this delivery's, in the inbox record's history
    deadline_ms: int  # epoch ms: the invocation's end, which the handler must finish before
    record: Mapping[str, Any] = attrs.field(repr=False)  # the SQS record as Lambda gave it

    def json(self) -> Any:
        """The body, parsed as JSON."""
        return json.loads(self.body)


class ProcessOutcome(enum.StrEnum):
    """What `process` did with one message (string-valued: `outcome == "done"` keeps working).
    docs/inbox-transitions.md, "What a delivery answers", says what each means."""

    DONE = "done"  # this delivery applied the effect (or completed the handler)
    DUPLICATE = "duplicate"  # already done: answered from the record, nothing run
    BUSY = "busy"  # another invocation holds its claim under a live lease: nothing run
    RETRY = "retry"  # not done this time: the next delivery tries again
    LOST = "lost"  # the handler ran, but its claim was lost to a later delivery, which completes it
    GIVEN_UP = "given_up"  # FAILED: receives exhausted, left to the redrive policy and the operator
    NOT_STARTED = "not_started"  # no time left, or an earlier message of its FIFO group was not done
    KEY_MISSING = "key_missing"  # the message has no key: not processed


PROCESS_OUTCOMES = {
    InboxResult.DONE: ProcessOutcome.DONE,
    InboxResult.DUPLICATE: ProcessOutcome.DUPLICATE,
    InboxResult.BUSY: ProcessOutcome.BUSY,
    InboxResult.RETRY: ProcessOutcome.RETRY,
    InboxResult.LOST: ProcessOutcome.LOST,
    InboxResult.GIVEN_UP: ProcessOutcome.GIVEN_UP,
}  # a delivery's flow ends in one of these (REARMED and SUPERSEDED are the operator's re-arm's)


class InboxRearmOutcome(enum.StrEnum):
    """What `Inbox.rearm` did (string-valued: `outcome == "rearmed"` keeps working)."""

    REARMED = "rearmed"  # a fresh receive budget: the next delivery processes it
    NOT_FAILED = "not_failed"  # only a FAILED message is re-armed: left as it is
    NOT_FOUND = "not_found"  # no inbox record with this key
    CHANGED = "changed"  # the record changed since it was read: left as it is
    FAILED = "failed"  # an AWS failure (classified, in `failure`): nothing changed, or unknown


REARM_OUTCOMES = {
    InboxResult.REARMED: InboxRearmOutcome.REARMED,
    InboxResult.SUPERSEDED: InboxRearmOutcome.CHANGED,
}  # the re-arm flow's own answers; any other is a failed request's (FAILED)


@attrs.frozen
class ProcessResult:
    """What the inbox did with one message. `ok`: SQS may delete it (its effect is applied, by this
    delivery or an earlier one); otherwise it is in the batch response's `batchItemFailures`."""

    sqs_message_id: str
    key: str | None
    outcome: ProcessOutcome = attrs.field(converter=ProcessOutcome)  # a team's code may give the string
    ok: bool
    ran: bool = False  # the handler ran in this delivery
    result: Any = None  # guarded: the handler's result, this delivery's or the stored one
    error_code: str | None = None
    receives: int | None = None  # receives counted so far (None: no record read)


@attrs.frozen
class BatchResult:
    results: tuple[ProcessResult, ...]

    @property
    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda partial batch response."""
        return {"batchItemFailures": [{"itemIdentifier": r.sqs_message_id} for r in self.results if not r.ok]}


@attrs.frozen
class InboxView:
    """An inbox record as `get` and `failed` read it."""

    key: str
    status: str  # PROCESSING | WAITING | DONE | FAILED
    receives: int
    updated_at: int
    body_hash: str
    last_error: str | None = None  # "category:code"
    result: Any = None
    attempt_id: str | None = None
    lease_expires_at: int | None = None
    last_error_message: str | None = None  # what the handler or DynamoDB said of it (bounded), if known


@attrs.frozen
class InboxRearmResult:
    key: str
    outcome: InboxRearmOutcome = attrs.field(converter=InboxRearmOutcome)
    receives_before: int | None = None
    failure: str | None = None


class InboxStore:
    """The inbox's records in one table."""

    def __init__(
        self, client: Any, table: str, layout: TableLayout, prefix: str, *, classify: Classifier = classify
    ) -> None:
        self.client, self.table, self.layout, self.prefix, self.classify = (
            client,
            table,
            layout,
            prefix,
            classify,
        )
        model = client.meta.service_model
        self._models = {n: model.operation_model(n) for n in ("GetItem", "UpdateItem", "TransactWriteItems")}

    def key(self, message_id: str) -> dict[str, Any]:
        return self.layout.key(record_key(message_id, self.prefix))

    def get(
        self, message_id: str, deadline_ms: int | None
    ) -> tuple[InboxStored | Failure | None, CallReport]:
        found, done = self.read(message_id, deadline_ms)
        return (found[0] if isinstance(found, tuple) else found), done

    def read(
        self, message_id: str, deadline_ms: int | None
    ) -> tuple[tuple[InboxStored, str | None] | Failure | None, CallReport]:
        """The record, with what was said of its last error (`error_message_of`)."""
        found: tuple[InboxStored, str | None] | Classified | None
        found, done = call(
            self.client,
            "dynamodb",
            "GetItem",
            lambda: self.client.get_item(TableName=self.table, Key=self.key(message_id), ConsistentRead=True),
            deadline_ms,
            self.classify,
            answered=lambda item: self._decode(item.get("Item")),
        )
        return (found.failure if isinstance(found, Classified) else found), done

    def perform(
        self,
        write: InboxWrite,
        deadline_ms: int | None,
        entries: Sequence[Mapping[str, Any]] = (),
        expires_at: int | None = None,
        error_message: str | None = None,
    ) -> tuple[InboxOutcome, CallReport]:
        """One write: an UpdateItem, or — for the transactional commit — the Update of a
        TransactWriteItems with the handler's `entries`. `error_message`: what was said of the failure
        the write records, if any."""
        request = update_request(write, self.layout, self.prefix, expires_at, error_message)
        operation = "TransactWriteItems" if write.commit else "UpdateItem"
        handlers: list[Classified] = []  # a refusal that is the handler's effect's failure

        def write_it() -> Any:
            if write.commit:
                own = {"Update": {"TableName": self.table, **request}}
                return self.client.transact_write_items(TransactItems=[own, *entries])
            return self.client.update_item(TableName=self.table, **request)

        def refusal(exc: ClientError) -> InboxOutcome | Classified:
            outcome, error = self._refused(exc, operation, deadline_ms, write, bool(entries))
            if error is not None and isinstance(outcome, HandlerError):
                handlers.append(error)
            return outcome if error is None else error

        written: InboxOutcome | Classified
        written, done = call(
            self.client,
            "dynamodb",
            operation,
            write_it,
            deadline_ms,
            self.classify,
            answered=lambda _: Written(),
            refusal=refusal,
        )
        if isinstance(written, Classified):
            return (HandlerError(written.failure) if handlers else written.failure), done
        return written, done

    def _refused(
        self, exc: ClientError, operation: str, deadline_ms: int | None, write: InboxWrite, effect: bool
    ) -> tuple[InboxOutcome, Classified | None]:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException":
            item: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            return self._conflict(item, write, deadline_ms)
        if code == "TransactionCanceledException":
            reasons: list[dict[str, Any]] = list(exc.response.get("CancellationReasons", []))  # type: ignore[arg-type]
            own = reasons[0] if reasons else {}
            if own.get("Code") == "ConditionalCheckFailed":
                return self._conflict(own.get("Item"), write, deadline_ms)
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons[1:]):
                return HandlerError(Failure(ErrorCategory.PERMANENT, EFFECT_REFUSED)), None
            refusing = [r for r in reasons if r.get("Code") not in (None, "None")]
            codes = [str(r["Code"]) for r in refusing]
            said = refusing[0].get("Message") if refusing else None  # the first refusal's, for the logs
            transient = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
            if codes and set(codes) <= transient:
                error = failed(ErrorCategory.RETRYABLE, codes[0], message=said)
                return error.failure, error
            if codes:  # a validation of one of the team's entries, say: a bug of the handler's effect
                error = failed(ErrorCategory.PERMANENT, str(codes[0]), message=said)
                return HandlerError(error.failure), error
        error = self.classify(exc, self._models[operation])
        if effect and not consequence(error.category).retry_after:  # statemodel.categories decides
            # DynamoDB refused the whole request, not one entry: a malformed entry of the team's effect
            # (a ValidationException), a table it names that does not exist, no permission on it. The
            # same commit fails so on every delivery (the inbox's own part is the one its GetItem just
            # read), so it counts a failed receive, to FAILED and the operator's list, as a handler's
            # failure does; else the message reached the DLQ with no record of why.
            return HandlerError(error.failure), error
        return error.failure, error

    def _conflict(
        self, item: dict[str, Any] | None, write: InboxWrite, deadline_ms: int | None
    ) -> tuple[InboxOutcome, Classified | None]:
        if item is None:  # not every answer carries the item: read it
            found, call = self.get(write.message_id, deadline_ms)
            if isinstance(found, Failure):
                return found, call.error
            return Conflict(found.record if found else None), None
        decoded = self._decode(item)
        if isinstance(decoded, Classified):
            return decoded.failure, decoded
        return Conflict(decoded[0].record if decoded else None), None

    def _decode(self, item: dict[str, Any] | None) -> tuple[InboxStored, str | None] | Classified | None:
        if not item:
            return None
        if not is_inbox_record(item):
            return failed(ErrorCategory.PERMANENT, NOT_AN_INBOX_RECORD)
        try:
            return stored_from_item(item), error_message_of(item)
        except (KeyError, ValueError, TypeError):
            return failed(ErrorCategory.AMBIGUOUS, "UnreadableItem")


class Inbox:
    """The inbox on a table. Make one per container (it holds the boto3 client)."""

    def __init__(
        self,
        table: str,
        *,
        mode: str | Mode = Mode.TRANSACTIONAL,
        layout: TableLayout | None = None,
        max_receives: int = 5,
        lease_margin_seconds: int = 30,
        key_attribute: str | None = DEFAULT_KEY_ATTRIBUTE,
        key_field: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        keep_done_seconds: int | None = None,
        aws_max_attempts: int = 3,
        logger: Any = None,
        session: boto3.Session | None = None,
        botocore_config: BotoConfig | None = None,
        client: Any = None,
    ) -> None:
        """`mode`: "transactional" or "guarded" (docs/inbox.md). `max_receives`: the receives a
        message gets before it is given up (FAILED; 1 to 100): keep it below the queue's
        maxReceiveCount, so the inbox records why before SQS moves the message to the DLQ.
        `lease_margin_seconds`: how long a guarded claim outlives its invocation. The message's key:
        the message attribute `key_attribute` (default `message_id`, which sendguard's outbox sets),
        or, with `key_field`, a field of the JSON body (a dotted path, `detail.orderId`).
        `key_prefix`: what the inbox record's key starts with, apart from the team's rows.
        `keep_done_seconds`: set `sg_inbox_expires_at` (epoch seconds) on DONE records this long
        ahead, for the table's TTL; keep it past the queue's retention, or a late duplicate runs
        again. `session`, `botocore_config`: the team's (as for `Outbox`). `client`: not for teams (kept
        out of docs/inbox.md) — a DynamoDB client `make_client` made, for sendguard's own commands to
        share theirs, or a test's; a client made elsewhere lacks sendguard's deadline hook."""
        layout = given_layout(layout)  # as Outbox refuses another
        if mode not in {m.value for m in Mode}:
            raise ValueError(f"mode={mode!r}: give 'transactional' or 'guarded'")
        self.mode = Mode(mode)
        if not 1 <= max_receives <= 100:
            raise ValueError(f"max_receives={max_receives} is outside 1..100")
        if not 1 <= lease_margin_seconds <= 3_600:
            raise ValueError(f"lease_margin_seconds={lease_margin_seconds} is outside 1..3600")
        if key_attribute is None and key_field is None:
            raise ValueError("name the message's key by one of key_attribute and key_field")
        if key_attribute is not None and key_field is not None:
            raise ValueError(
                f"key_field={key_field!r} and key_attribute={key_attribute!r} both name the key (the "
                f"attribute's default is {DEFAULT_KEY_ATTRIBUTE!r}): pass key_attribute=None with key_field"
            )
        if not key_prefix or "/" in key_prefix:
            raise ValueError(f"key_prefix={key_prefix!r}: give a non-empty prefix without '/'")
        if too_long := inbox_prefix_problem(key_prefix):
            raise ValueError(too_long)
        self.table = table
        self.layout = layout
        self.settings = InboxSettings(max_receives, 1000 * lease_margin_seconds)
        self.key_attribute, self.key_field, self.key_prefix = key_attribute, key_field, key_prefix
        self.keep_done_seconds = keep_done_seconds
        self._logger = logger
        # What DescribeTable says of the layout, once DynamoDB refused the record's key (`_refused`).
        self._refusal_checks: dict[str, RefusalCheck] = {}
        dynamodb = client or make_client(
            "dynamodb", aws_max_attempts, session=session, botocore_config=botocore_config
        )
        self.store = InboxStore(dynamodb, table, self.layout, key_prefix)

    # ---- the Lambda batch --------------------------------------------------------------------------

    def lambda_handler(self, handler: Handler) -> Callable[[Mapping[str, Any], Any], dict[str, Any]]:
        """A Lambda function for an SQS event source mapping with `ReportBatchItemFailures`:
        `handler = inbox.lambda_handler(apply)`."""

        def function(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
            return self.handle_batch(event, handler, context=context)

        return function

    def handle_batch(
        self,
        event: Mapping[str, Any],
        handler: Handler,
        *,
        context: object = None,
        deadline_ms: int | None = None,
    ) -> dict[str, Any]:
        """`process_batch`'s partial batch response: `{"batchItemFailures": [{"itemIdentifier": …}]}`."""
        return self.process_batch(event, handler, context=context, deadline_ms=deadline_ms).response

    def process_batch(
        self,
        event: Mapping[str, Any],
        handler: Handler,
        *,
        context: object = None,
        deadline_ms: int | None = None,
    ) -> BatchResult:
        """Every message of a Lambda SQS event, in order. On a FIFO queue, a group's messages after one
        that is not done are not started (they fail with it, so that their order holds)."""
        end = deadline_ms if deadline_ms is not None else now_ms() + remaining_ms(context)
        blocked: set[str] = set()
        results: list[ProcessResult] = []
        for record in event.get("Records", []):
            group = _attribute(record, "MessageGroupId")
            sqs_id = str(record.get("messageId", ""))
            not_started = ProcessResult(
                sqs_id, None, ProcessOutcome.NOT_STARTED, False, error_code=NOT_STARTED
            )
            if group is not None and group in blocked:
                results.append(not_started)
                continue
            if now_ms() + MIN_START_MS > end:
                results.append(not_started)
                blocked |= {group} if group is not None else set()
                continue
            result = self.process(record, handler, deadline_ms=end)
            results.append(result)
            if not result.ok and group is not None:
                blocked.add(group)
        return BatchResult(tuple(results))

    # ---- one message -----------------------------------------------------------------------------

    def process(
        self,
        record: Mapping[str, Any],
        handler: Handler,
        *,
        context: object = None,
        deadline_ms: int | None = None,
    ) -> ProcessResult:
        """One SQS record (as Lambda gives it) through the inbox: its effect applied once."""
        sqs_id = str(record.get("messageId", ""))
        key = self.key_of(record)
        with self._scope(key, None):
            if key is None:
                source = (
                    f"attribute {self.key_attribute}"
                    if self.key_attribute
                    else f"body field {self.key_field}"
                )
                emit(get_logger(), INBOX_KEY_MISSING, sqs_message_id=sqs_id, key_source=source)
                return ProcessResult(sqs_id, None, ProcessOutcome.KEY_MISSING, False, error_code=KEY_MISSING)
        now = now_ms()
        end = deadline_ms if deadline_ms is not None else now + remaining_ms(context)
        reserve = min(ANSWER_RESERVE_MS, max(end - now, 0) // ANSWER_RESERVE_SHARE)
        body = str(record.get("body", ""))
        message = InboxMessage(
            key, "sha256:" + hashlib.sha256(body.encode()).hexdigest(), _attribute(record, "MessageGroupId")
        )
        attempt = str(uuid.uuid4())
        flow = flows.start(self.mode, message, attempt, now, end, self.settings)
        with self._scope(key, attempt):
            ports = _Ports(self, record, handler, end)
            answer = interpreter.run(flow, ports, end - reserve, now_ms, _LOGGED).answer
        return self._result(sqs_id, key, answer)

    def key_of(self, record: Mapping[str, Any]) -> str | None:
        """The message's key: its `key_attribute`, or its JSON body's `key_field`; None if it has none
        that fits (`statemodel.sizes.inbox_key_fits`: 1 to 1,024 bytes of UTF-8)."""
        value: Any
        if self.key_attribute is not None:
            attribute = (record.get("messageAttributes") or {}).get(self.key_attribute) or {}
            value = attribute.get("stringValue")
        else:
            assert self.key_field is not None
            try:
                value = json.loads(str(record.get("body", "")))
            except ValueError:
                return None
            for part in self.key_field.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
        if not isinstance(value, str) or not inbox_key_fits(value):
            return None
        return value

    def _result(self, sqs_id: str, key: str, answer: InboxAnswer) -> ProcessResult:
        record = answer.record
        result = None
        if self.mode is Mode.GUARDED and answer.ok and answer.stored_result is not None:
            result = json.loads(answer.stored_result)
        code = answer.failure.code if answer.failure else None
        processed = ProcessResult(
            sqs_id,
            key,
            PROCESS_OUTCOMES[answer.result],
            answer.ok,
            answer.ran,
            result,
            code,
            record.receives if record else None,
        )
        with self._scope(key, None):
            emit(
                get_logger(),
                INBOX_DELIVERY,
                level="info" if answer.ok else "warning",
                message_id=key,
                sqs_message_id=sqs_id,
                mode=self.mode.value,
                result=answer.result.value,
                ok=answer.ok,
                ran=answer.ran,
                receives=processed.receives,
                error_code=code,
            )
        return processed

    # ---- the operator's view ---------------------------------------------------------------------

    def get(self, key: str) -> InboxView | None:
        """The message's inbox record, or None; InboxError when it cannot be read now."""
        found, _ = self.store.read(key, None)
        if isinstance(found, Failure):
            self._refused(found.code, now_ms() + 2 * ATTEMPT_BUDGET_MS)
            raise InboxError(
                f"the inbox record of {key!r} could not be read",
                category=found.category.value,
                code=found.code,
            )
        return None if found is None else view(found[0].record, found[1])

    def failed(self, *, limit: int | None = None) -> Iterator[InboxView]:
        """The FAILED messages, oldest first: from the `attention` index's INBOX_FAILED partition when
        the table has the index, else by a scan."""
        for count, (stored, said) in enumerate(self._failed_records()):
            if limit is not None and count >= limit:
                return
            yield view(stored.record, said)

    def rearm(self, key: str, reason: str, *, by: str | None = None) -> InboxRearmResult:
        """An operator's re-arm of a FAILED message: a fresh receive budget (its history keeps who and
        why); the next delivery processes it. Redrive the DLQ to the source queue after."""
        from adapters.runtime.rearm import check_request, default_operator  # an operator's path only

        by = by if by is not None else default_operator()
        check_request(by, reason)
        found, _ = self.store.get(key, None)
        if isinstance(found, Failure):
            unread = f"{found.category.value}:{found.code}"
            return InboxRearmResult(key, InboxRearmOutcome.FAILED, failure=unread)
        if found is None:
            return InboxRearmResult(key, InboxRearmOutcome.NOT_FOUND)
        record = found.record
        if record.phase is not InboxPhase.FAILED:
            return InboxRearmResult(key, InboxRearmOutcome.NOT_FAILED, record.receives)
        try:
            flow = flows.start_rearm(record, by, reason, now_ms())
        except ForbiddenCommand:
            return InboxRearmResult(key, InboxRearmOutcome.NOT_FAILED, record.receives)
        with self._scope(key, None):
            outcome, call = interpreter.perform(flow, _Ports(self, {}, None, 0), None)
            done = interpreter.carry(flow, outcome, call, now_ms(), _LOGGED).answer
        rearmed = REARM_OUTCOMES.get(done.result)
        if rearmed is not None:
            return InboxRearmResult(key, rearmed, record.receives)
        error = call.error if call is not None else None
        failure = None if error is None else f"{error.category.value}:{error.code}"
        return InboxRearmResult(key, InboxRearmOutcome.FAILED, record.receives, failure)

    def _failed_records(self) -> Iterator[tuple[InboxStored, str | None]]:
        client, table = self.store.client, self.store.table
        try:
            pages = client.get_paginator("query").paginate(
                TableName=table,
                IndexName=INDEX,
                KeyConditionExpression="#p = :p",
                ExpressionAttributeNames={"#p": ATTENTION},
                ExpressionAttributeValues={":p": {"S": FAILED_PARTITION}},
            )
            for page in pages:
                for entry in page.get("Items", []):
                    key = {name: entry[name] for name in self.layout.key_names}
                    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
                    if item and is_inbox_record(item):
                        stored = stored_from_item(item)
                        if stored.record.phase is InboxPhase.FAILED:
                            yield stored, error_message_of(item)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "ValidationException",
                "ResourceNotFoundException",
            ):
                raise
        # No `attention` index on this table: a scan, filtered (the operator's command, not a hot path).
        pages = client.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression="#s = :failed",
            ExpressionAttributeNames={"#s": "sg_inbox_status"},
            ExpressionAttributeValues={":failed": {"S": InboxPhase.FAILED.value}},
            ConsistentRead=True,
        )
        found = [
            (stored_from_item(item), error_message_of(item))
            for page in pages
            for item in page.get("Items", [])
            if is_inbox_record(item)
        ]
        yield from sorted(found, key=lambda s: s[0].record.updated_at)

    def _refused(self, code: str | None, deadline_ms: int) -> None:
        """Raises the InboxLayoutMismatch that explains DynamoDB's refusal of the record's key (`code`
        a ValidationException), if the table does. The check is the Outbox's
        (`adapters.runtime.table_check.RefusalCheck`): a DescribeTable only once a key was refused —
        never on the happy path, and a consuming role needs no `dynamodb:DescribeTable` (without it,
        the refusal is answered as it came) —, once per Inbox, thread-safe, within `deadline_ms`."""
        from adapters.runtime.table_check import RefusalCheck  # never on the happy path

        check = self._refusal_checks.get("layout")
        if check is None:
            made = RefusalCheck(self.store.client, self.table, self.layout, in_code=True, logger=self._logger)
            check = self._refusal_checks.setdefault("layout", made)  # atomic: racing threads share one
        problem = check.explain(code, deadline_ms=deadline_ms)
        if problem is not None:
            raise InboxLayoutMismatch(problem)

    @contextlib.contextmanager
    def _scope(self, message_id: str | None, attempt_id: str | None) -> Iterator[None]:
        bound = {k: v for k, v in (("message_id", message_id), ("attempt_id", attempt_id)) if v is not None}
        with logging_to(self._logger), structlog.contextvars.bound_contextvars(**bound):
            yield


class _Ports:
    """The inbox's ports (`statemodel.inbox.interpreter.InboxPorts`) for one message: its record on
    DynamoDB and the team's handler, whose transactional effect the commit writes beside the record."""

    def __init__(self, inbox: Inbox, record: Mapping[str, Any], handler: Handler | None, end: int) -> None:
        self.inbox, self.record, self.handler, self.end = inbox, record, handler, end
        self.entries: list[Mapping[str, Any]] = []
        self.said: str | None = None  # what the handler or the commit said of the last failure, bounded

    def read(self, read: Read, deadline_ms: int | None) -> tuple[InboxOutcome, CallReport | None]:
        found, call = self.inbox.store.get(read.message_id, deadline_ms)
        if isinstance(found, Failure):
            self.inbox._refused(found.code, self.end if deadline_ms is None else deadline_ms)
        return (found if isinstance(found, Failure) else Found(found.record if found else None)), call

    def write(self, write: InboxWrite, deadline_ms: int | None) -> tuple[InboxOutcome, CallReport | None]:
        expires = None
        if self.inbox.keep_done_seconds is not None:
            expires = now_ms() // 1000 + self.inbox.keep_done_seconds
        entries = self.entries if write.commit else ()
        outcome, done = self.inbox.store.perform(write, deadline_ms, entries, expires, self.said)
        if isinstance(outcome, Failure):  # the record's own write (a refused effect is a HandlerError)
            self.inbox._refused(outcome.code, self.end if deadline_ms is None else deadline_ms)
        if write.commit:  # a refused commit is the failure the next write records
            self.said = None if done.error is None else done.error.message
        return outcome, done

    def invoke(self, invoke: Invoke) -> tuple[InboxOutcome, CallReport | None]:
        if self.handler is None:
            raise ValueError("an operator's flow runs no handler")
        record = self.record
        delivery = Delivery(
            key=invoke.message_id,
            body=str(record.get("body", "")),
            attributes=_string_attributes(record),
            sqs_message_id=str(record.get("messageId", "")),
            receive_count=int(_attribute(record, "ApproximateReceiveCount") or 1),
            group_id=_attribute(record, "MessageGroupId"),
            idempotency_key=invoke.idempotency_key,
            attempt_id=invoke.attempt_id,
            deadline_ms=self.end,
            record=record,
        )
        self.said = None
        try:
            returned = self.handler(delivery)
            if self.inbox.mode is Mode.TRANSACTIONAL:
                self.entries = _effect_entries(returned)
                return Handled(""), None
            text = json.dumps(returned, separators=(",", ":"), sort_keys=True)
            too_large = inbox_result_problem(text)
            if too_large:
                raise InvalidEffect(too_large)
            return Handled(text), None
        except Exception as exc:  # the team's handler: any failure is a failed receive
            code = type(exc).__name__
            emit(
                get_logger(),
                INBOX_HANDLER_FAILED,
                message_id=invoke.message_id,
                code=code,
                error_message=bounded_message(exc),
            )
            self.said = bounded_message(exc)
            category = (
                ErrorCategory.PERMANENT
                if isinstance(exc, InvalidEffect | TypeError)
                else ErrorCategory.RETRYABLE
            )
            return HandlerError(Failure(category, code)), None


class _Logged:
    """What the interpreter tells of each step, logged: a failed AWS call, the transitions a landed
    write made, and a message given up."""

    def stepped(
        self, before: InboxFlow, outcome: InboxOutcome, report: CallReport | None, after: InboxFlow
    ) -> None:
        log = get_logger()
        if report is not None and report.error is not None:
            _log_failure(log, report, before)
        effect = before.effect
        if isinstance(effect, InboxWrite) and after.record == effect.after:
            _log_transitions(effect.before, effect.events)
            if effect.after.phase is InboxPhase.FAILED:
                error = effect.after.last_error
                emit(
                    log,
                    INBOX_GIVEN_UP,
                    message_id=effect.message_id,
                    receives=effect.after.receives,
                    last_error=error and f"{error.category}:{error.code}",
                )


_LOGGED = _Logged()


def _effect_entries(returned: Any) -> list[Mapping[str, Any]]:
    if returned is None:
        return []
    if not isinstance(returned, list | tuple):
        raise InvalidEffect(
            "a transactional handler returns a list of TransactWriteItems entries, not "
            f"{type(returned).__name__}"
        )
    too_many = inbox_effects_problem(len(returned))
    if too_many:
        raise InvalidEffect(too_many)
    kinds = {"Put", "Update", "Delete", "ConditionCheck"}
    for entry in returned:
        if not isinstance(entry, Mapping) or len(entry) != 1 or next(iter(entry)) not in kinds:
            raise InvalidEffect(f"not a TransactWriteItems entry (one of {sorted(kinds)}): {entry!r}"[:300])
    return list(returned)


def view(record: InboxRecord, last_error_message: str | None = None) -> InboxView:
    error = record.last_error
    return InboxView(
        key=record.message_id,
        status=record.phase.value,
        receives=record.receives,
        updated_at=record.updated_at,
        body_hash=record.message.body_hash,
        last_error=None if error is None else f"{error.category}:{error.code}",
        result=json.loads(record.result) if record.result else None,
        attempt_id=record.attempt_id,
        lease_expires_at=record.lease_expires_at,
        last_error_message=last_error_message if error is not None else None,
    )


def _attribute(record: Mapping[str, Any], name: str) -> str | None:
    value = (record.get("attributes") or {}).get(name)
    return str(value) if value is not None else None


def _string_attributes(record: Mapping[str, Any]) -> dict[str, str]:
    found = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        text = value.get("stringValue") if isinstance(value, Mapping) else None
        if isinstance(text, str):
            found[name] = text
    return found


def _log_transitions(before: InboxRecord | None, events: tuple[InboxEvent, ...]) -> None:
    log = get_logger()
    record = before
    for event in events:
        after = evolve(record, event)
        emit(
            log,
            INBOX_TRANSITION,
            message_id=after.message_id,
            **{"from": phase_of(record).value, "to": after.phase.value},
            version=after.version,
            attempt_id=getattr(event, "attempt_id", None),
            record_event=event_to_dict(event),
        )
        record = after


def _log_failure(log: Any, call: CallReport, flow: InboxFlow) -> None:
    error = call.error
    assert error is not None
    emit(
        log,
        AWS_FAILURE,
        service=call.service,
        operation=call.operation,
        category=error.category.value,
        code=error.code,
        http_status=error.status,
        throttling=error.throttling,
        attempts=call.attempts,
        max_attempts_reached=error.max_attempts_reached,
        retry_quota_reached=error.retry_quota_reached,
        latency_ms=call.latency_ms,
        stage=f"inbox {flow.stage.value}",
        error_message=error.message,
    )
