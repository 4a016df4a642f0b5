"""A deterministic fault injector at the botocore layer.

It rides on botocore's own event system, the way moto does: while installed, its handlers sit in
`botocore.handlers.BUILTIN_HANDLERS`, so every client made afterwards — the service's own, made by its
own code — carries them. Each fault is something production really does, raised where production
raises it, so that the SDK's retry logic, the classifier and the flows meet it as they would on AWS:

* before the request leaves (`before-send`, on every attempt): connection failures that botocore
  retries; error answers after the SDK gave up (`MaxAttemptsReached`), throttling, 5xx, permanent codes;
* after the service applied the request (`after-call`): the caller sees a timeout or a closed
  connection, or botocore's retry of a landed write fails its condition;
* a crash at a call boundary: `Crashed`, a BaseException no handler catches — a killed Lambda does
  not unwind, so nothing of that invocation runs any more;
* a stall at a call boundary: the invocation's thread waits until the test resumes it;
* a request delayed on the wire: it left before the invocation's deadline (the deadline guard let it
  go) and reaches the service only after the test resumes it — the late, stale write or send that the
  conditions' fencing exists for.

A fault is armed per invocation (per thread): `arm(Plan(kind, skip=n))` fires it on the (n+1)-th call
the kind can hit. Every fault fired is recorded, and every message SQS accepted (`landed`).
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.handlers import BUILTIN_HANDLERS

from statemodel.categories import ErrorCategory


class Crashed(BaseException):
    """The invocation was killed at a call boundary. Deliberately not an Exception."""


@attrs.frozen
class Kind:
    name: str
    operation: str | None  # "SendMessage", "UpdateItem", or None for any call
    stage: str  # "before" (never applied), "after" (applied), "crash-before", "crash-after", "stall"
    category: ErrorCategory | None  # what the classifier must make of it (None: not an error answer)
    code: str = ""
    status: int = 400
    query_code: str | None = None
    ambiguous_applied: bool = False  # the request was applied: a duplicate send is explained


def _error(
    name: str, operation: str, code: str, status: int, category: ErrorCategory, query: str | None = None
) -> Kind:
    return Kind(name, operation, "before", category, code, status, query)


class Fault(enum.Enum):
    """Every fault the injector can fire."""

    # SQS SendMessage error answers (never applied)
    SQS_THROTTLED_SDK_GAVE_UP = _error(
        "sqs throttled, SDK gave up",
        "SendMessage",
        "RequestThrottled",
        403,
        ErrorCategory.RETRYABLE,
        "RequestThrottled",
    )
    SQS_KMS_THROTTLED = _error(
        "sqs KMS throttled",
        "SendMessage",
        "KMS.ThrottlingException",
        400,
        ErrorCategory.RETRYABLE,
        "KmsThrottled",
    )
    SQS_KMS_DISABLED = _error(
        "sqs KMS key disabled",
        "SendMessage",
        "KMS.DisabledException",
        400,
        ErrorCategory.PERMANENT,
        "KmsDisabled",
    )
    SQS_NON_EXISTENT_QUEUE = _error(
        "sqs queue gone",
        "SendMessage",
        "AWS.SimpleQueueService.NonExistentQueue",
        400,
        ErrorCategory.PERMANENT,
        "QueueDoesNotExist",
    )
    SQS_ACCESS_DENIED = _error(
        "sqs access denied", "SendMessage", "AccessDenied", 403, ErrorCategory.PERMANENT
    )
    SQS_INTERNAL_ERROR = _error("sqs 500", "SendMessage", "InternalError", 500, ErrorCategory.AMBIGUOUS)
    SQS_UNAVAILABLE = _error("sqs 503", "SendMessage", "ServiceUnavailable", 503, ErrorCategory.AMBIGUOUS)
    # DynamoDB UpdateItem error answers (never applied)
    DDB_THROTTLED_SDK_GAVE_UP = _error(
        "dynamodb throttled, SDK gave up",
        "UpdateItem",
        "ProvisionedThroughputExceededException",
        400,
        ErrorCategory.RETRYABLE,
    )
    DDB_TRANSACTION_CONFLICT = _error(
        "dynamodb transaction conflict",
        "UpdateItem",
        "TransactionConflictException",
        400,
        ErrorCategory.RETRYABLE,
    )
    DDB_INTERNAL_ERROR = _error(
        "dynamodb 500", "UpdateItem", "InternalServerError", 500, ErrorCategory.AMBIGUOUS
    )
    # the connection, before the request left (botocore retries these on every attempt)
    CONNECT_TIMEOUT = Kind("connect timeout", None, "before", ErrorCategory.RETRYABLE, "ConnectTimeoutError")
    ENDPOINT_UNREACHABLE = Kind(
        "endpoint unreachable", None, "before", ErrorCategory.RETRYABLE, "EndpointConnectionError"
    )
    # applied, then the caller does not hear of it
    APPLIED_THEN_READ_TIMEOUT = Kind(
        "applied, then read timeout",
        None,
        "after",
        ErrorCategory.AMBIGUOUS,
        "ReadTimeoutError",
        ambiguous_applied=True,
    )
    APPLIED_THEN_CONNECTION_CLOSED = Kind(
        "applied, then connection closed",
        None,
        "after",
        ErrorCategory.AMBIGUOUS,
        "ConnectionClosedError",
        ambiguous_applied=True,
    )
    WRITE_LANDED_RETRY_FAILS_CONDITION = Kind(
        "write applied, SDK retry fails its condition", "UpdateItem", "after", None, ambiguous_applied=True
    )
    # the process
    CRASH_BEFORE_CALL = Kind("crash before a call", None, "crash-before", None)
    CRASH_AFTER_CALL = Kind("crash after a call applied", None, "crash-after", None, ambiguous_applied=True)
    STALL_PAST_LEASE = Kind("stall past the lease", None, "stall", None, ambiguous_applied=True)
    DELAYED_ON_THE_WIRE = Kind(
        "request delayed on the wire", None, "stall-wire", None, ambiguous_applied=True
    )

    def hits(self, operation: str) -> bool:
        """A SendMessage fault hits a SendMessageBatch too, as a whole: every entry of it."""
        target = self.value.operation
        if operation == "SendMessageBatch":
            operation = "SendMessage"
        return operation in ("SendMessage", "UpdateItem") and (target is None or target == operation)


@attrs.frozen
class Plan:
    fault: Fault
    skip: int = 0  # fire on the (skip+1)-th call this fault can hit


@attrs.frozen
class Fired:
    fault: Fault
    operation: str
    message_id: str | None


@attrs.frozen
class Landed:
    message_id: str
    sqs_message_id: str
    body: str


@attrs.define
class _Invocation:
    plans: tuple[Plan, ...]
    seen: list[int]  # per plan: the calls it could have hit so far


class FaultInjector:
    def __init__(self) -> None:
        self.fired: list[Fired] = []
        self.landed: list[Landed] = []
        self.created: set[str] = set()  # records whose create landed: none may ever disappear
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handlers: list[tuple[str, Any]] = [
            ("provide-client-params", self._remember_params),
            ("before-call", self._before_call),
            ("before-send", self._before_send),
            ("after-call", self._after_call),
        ]
        self._raw_dynamodb: Any = None
        self.stall_reached = threading.Event()  # an invocation is waiting at its stall
        self._resume = threading.Event()

    # ---- arming ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        """Clients made inside carry the injector; `raw` clients made first do not."""
        self._raw_dynamodb = boto3.client("dynamodb")
        for position, handler in enumerate(self._handlers):
            BUILTIN_HANDLERS.insert(position, handler)  # before moto's stubber: it sees requests first
        try:
            yield self
        finally:
            for handler in self._handlers:
                BUILTIN_HANDLERS.remove(handler)

    @contextlib.contextmanager
    def armed(self, plan: Plan | tuple[Plan, ...] | None) -> Iterator[_Invocation]:
        """Arms faults for the invocation run on this thread: none, one, or several (each counts the
        calls it can hit on its own; a call takes the first plan that fires on it)."""
        plans = () if plan is None else (plan,) if isinstance(plan, Plan) else plan
        invocation = _Invocation(plans, [0] * len(plans))
        self._local.invocation = invocation
        try:
            yield invocation
        finally:
            self._local.invocation = None

    def _current(self) -> _Invocation | None:
        return getattr(self._local, "invocation", None)

    # ---- handlers --------------------------------------------------------------------------------

    def _remember_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["sendguard_params"] = dict(params)

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        invocation = self._current()
        context["sendguard_armed"] = False
        if invocation is None:
            return
        firing = None
        for index, plan in enumerate(invocation.plans):
            if plan.fault.hits(model.name):
                invocation.seen[index] += 1
                if invocation.seen[index] == plan.skip + 1 and firing is None:
                    firing = plan.fault
        if firing is None:
            return
        fault = firing
        context["sendguard_armed"] = True
        self._record(fault, model.name, context)
        stage = fault.value.stage
        if stage == "crash-before":
            raise Crashed(fault.name)
        if stage == "stall":
            self.stall_reached.set()
            self._resume.wait(timeout=60)

    def _before_send(self, request: Any, **_: Any) -> None:
        context = request.context
        if not context.get("sendguard_armed"):
            return
        kind: Fault | None = context.get("sendguard_fault")
        if kind is None:
            return
        if kind.value.stage == "stall-wire" and not context.get("sendguard_delayed"):
            context["sendguard_delayed"] = True  # the first attempt only
            self.stall_reached.set()
            self._resume.wait(timeout=60)
            return
        if kind.value.stage == "before":
            raise _before_error(kind.value, context.get("sendguard_operation", ""))

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        applied = http_response is not None and http_response.status_code < 300
        if applied and model.name == "SendMessage":
            params = context.get("sendguard_params", {})
            with self._lock:
                self.landed.append(
                    Landed(_sent_id(params), parsed["MessageId"], params.get("MessageBody", ""))
                )
        if applied and model.name == "SendMessageBatch":
            entries = {e["Id"]: e for e in context.get("sendguard_params", {}).get("Entries", [])}
            with self._lock:
                for done in parsed.get("Successful", []):
                    entry = entries[done["Id"]]
                    self.landed.append(
                        Landed(_sent_id(entry), done["MessageId"], entry.get("MessageBody", ""))
                    )
        if applied and model.name == "UpdateItem":
            params = context.get("sendguard_params", {})
            if str(params.get("ConditionExpression", "")).startswith("attribute_not_exists"):
                with self._lock:
                    self.created.add(params["Key"]["message_id"]["S"])
        if not applied or not context.get("sendguard_armed"):
            return
        kind: Fault | None = context.get("sendguard_fault")
        if kind is None:
            return
        stage = kind.value.stage
        if stage == "crash-after":
            raise Crashed(kind.name)
        if stage != "after":
            return
        if kind is Fault.WRITE_LANDED_RETRY_FAILS_CONDITION:
            try:  # botocore's retry of the landed write, as DynamoDB would answer it
                self._raw_dynamodb.update_item(**context["sendguard_params"])
            except ClientError as retry_answer:
                raise retry_answer from None
            raise AssertionError("a landed write's retry met its condition")
        error = ReadTimeoutError if kind is Fault.APPLIED_THEN_READ_TIMEOUT else ConnectionClosedError
        raise error(endpoint_url="https://injected")

    def _record(self, fault: Fault, operation: str, context: dict[str, Any]) -> None:
        context["sendguard_fault"] = fault
        context["sendguard_operation"] = operation
        params = context.get("sendguard_params", {})
        with self._lock:
            if operation == "SendMessageBatch":  # the fault hits every entry's message
                self.fired.extend(Fired(fault, operation, _sent_id(e)) for e in params.get("Entries", []))
            else:
                self.fired.append(Fired(fault, operation, _message_id(operation, params)))

    def resume_all(self) -> None:
        """Lets every stalled invocation go on; later stalls wait again."""
        self._resume.set()

    def reset_stall(self) -> None:
        self.stall_reached.clear()
        self._resume.clear()

    def faulted_message_ids(self, ambiguous_only: bool = True) -> set[str]:
        return {
            f.message_id
            for f in self.fired
            if f.message_id and (f.fault.value.ambiguous_applied or not ambiguous_only)
        }


def _sent_id(params: dict[str, Any]) -> str:
    """The record's id in a SendMessage request or a SendMessageBatch entry."""
    value: str = params.get("MessageAttributes", {}).get("message_id", {}).get("StringValue", "")
    return value


def _message_id(operation: str, params: dict[str, Any]) -> str | None:
    if operation == "SendMessage":
        value: str | None = params.get("MessageAttributes", {}).get("message_id", {}).get("StringValue")
        return value
    key = params.get("Key", {}).get("message_id", {})
    return key.get("S") if isinstance(key, dict) else None


def _before_error(kind: Kind, operation: str) -> Exception:
    if kind.code == "ConnectTimeoutError":
        return ConnectTimeoutError(endpoint_url="https://injected")
    if kind.code == "EndpointConnectionError":
        return EndpointConnectionError(endpoint_url="https://injected")
    error: dict[str, Any] = {"Code": kind.code, "Message": "injected"}
    if kind.query_code:
        error["QueryErrorCode"] = kind.query_code
    metadata: dict[str, Any] = {"HTTPStatusCode": kind.status, "RetryAttempts": 2, "MaxAttemptsReached": True}
    response: Any = {"Error": error, "ResponseMetadata": metadata}
    return ClientError(response, operation)
