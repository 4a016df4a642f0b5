"""A deterministic fault injector at the botocore layer.

It rides on botocore's own event system, the way moto does: while installed, every client's events
carry its handlers — sendguard's clients and the team's own, made on boto3's default session or on a
session of their own, before the suite started or after (a client is hooked at its first call). The
faults hit DynamoDB writes and SQS sends, whoever makes them, and every message SQS accepts is
recorded (`landed`), whoever sent it. Each fault is something production really does, raised where production
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

A fault is armed per invocation (per thread): `armed(Plan(kind, skip=n))` fires it on the (n+1)-th
call the kind can hit — of anyone's, or only of the team's own clients (`caller=TEAM`: any client
sendguard's `make_client` did not make) or of sendguard's (`caller=SENDGUARD`), so that the window
between a team's own write and sendguard's record is broken on purpose. Every fault fired is
recorded, and every message SQS accepted (`landed`).
"""

from __future__ import annotations

import contextlib
import enum
import threading
import weakref
from collections.abc import Iterator
from typing import Any
from unittest import mock

import attrs
from botocore import xform_name
from botocore.client import BaseClient
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.handlers import BUILTIN_HANDLERS

from adapters.runtime.clients import is_sendguard_client
from adapters.runtime.layout import TableLayout
from adapters.testing.clients import client, is_own
from statemodel.categories import ErrorCategory
from statemodel.validation import RESERVED_ATTRIBUTE


class Crashed(BaseException):
    """The invocation was killed at a call boundary. Deliberately not an Exception."""


@attrs.frozen
class Kind:
    name: str
    target: str | None  # SEND (an SQS send), WRITE (a DynamoDB write), or None: either
    stage: str  # "before" (never applied), "after" (applied), "crash-before", "crash-after", "stall"
    category: ErrorCategory | None  # what the classifier must make of it (None: not an error answer)
    code: str = ""
    status: int = 400
    query_code: str | None = None
    ambiguous_applied: bool = False  # the request was applied: a duplicate send is explained


SEND = "send"
WRITE = "write"
# The calls a fault can hit, by target: whoever's client makes them (sendguard's or the team's own).
OPERATIONS = {
    SEND: frozenset({"SendMessage", "SendMessageBatch"}),
    WRITE: frozenset({"UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}),
}


def _error(
    name: str, target: str, code: str, status: int, category: ErrorCategory, query: str | None = None
) -> Kind:
    return Kind(name, target, "before", category, code, status, query)


class Fault(enum.Enum):
    """Every fault the injector can fire."""

    # SQS SendMessage error answers (never applied)
    SQS_THROTTLED_SDK_GAVE_UP = _error(
        "sqs throttled, SDK gave up",
        SEND,
        "RequestThrottled",
        403,
        ErrorCategory.RETRYABLE,
        "RequestThrottled",
    )
    SQS_KMS_THROTTLED = _error(
        "sqs KMS throttled",
        SEND,
        "KMS.ThrottlingException",
        400,
        ErrorCategory.RETRYABLE,
        "KmsThrottled",
    )
    SQS_KMS_DISABLED = _error(
        "sqs KMS key disabled",
        SEND,
        "KMS.DisabledException",
        400,
        ErrorCategory.PERMANENT,
        "KmsDisabled",
    )
    SQS_NON_EXISTENT_QUEUE = _error(
        "sqs queue gone",
        SEND,
        "AWS.SimpleQueueService.NonExistentQueue",
        400,
        ErrorCategory.PERMANENT,
        "QueueDoesNotExist",
    )
    SQS_ACCESS_DENIED = _error("sqs access denied", SEND, "AccessDenied", 403, ErrorCategory.PERMANENT)
    SQS_INTERNAL_ERROR = _error("sqs 500", SEND, "InternalError", 500, ErrorCategory.AMBIGUOUS)
    SQS_UNAVAILABLE = _error("sqs 503", SEND, "ServiceUnavailable", 503, ErrorCategory.AMBIGUOUS)
    # DynamoDB UpdateItem error answers (never applied)
    DDB_THROTTLED_SDK_GAVE_UP = _error(
        "dynamodb throttled, SDK gave up",
        WRITE,
        "ProvisionedThroughputExceededException",
        400,
        ErrorCategory.RETRYABLE,
    )
    DDB_TRANSACTION_CONFLICT = _error(
        "dynamodb transaction conflict",
        WRITE,
        "TransactionConflictException",
        400,
        ErrorCategory.RETRYABLE,
    )
    DDB_INTERNAL_ERROR = _error("dynamodb 500", WRITE, "InternalServerError", 500, ErrorCategory.AMBIGUOUS)
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
        "write applied, SDK retry fails its condition", WRITE, "after", None, ambiguous_applied=True
    )
    # the process
    CRASH_BEFORE_CALL = Kind("crash before a call", None, "crash-before", None)
    CRASH_AFTER_CALL = Kind("crash after a call applied", None, "crash-after", None, ambiguous_applied=True)
    STALL_PAST_LEASE = Kind("stall past the lease", None, "stall", None, ambiguous_applied=True)
    DELAYED_ON_THE_WIRE = Kind(
        "request delayed on the wire", None, "stall-wire", None, ambiguous_applied=True
    )

    def hits(self, operation: str) -> bool:
        targets = (self.value.target,) if self.value.target else (SEND, WRITE)
        return any(operation in OPERATIONS[target] for target in targets)

    def __repr__(self) -> str:  # how a failing run's steps print it
        return f"Fault.{self.name}"


# Whose call a fault hits: the team's own code (any client sendguard did not make), or sendguard's.
TEAM = "team"
SENDGUARD = "sendguard"


@attrs.frozen
class Plan:
    fault: Fault
    skip: int = 0  # fire on the (skip+1)-th call this fault can hit …
    caller: str | None = None  # … of this caller's (TEAM or SENDGUARD; None: anyone's)


@attrs.frozen
class Fired:
    fault: Fault
    operation: str
    message_id: str | None
    caller: str | None = None  # TEAM or SENDGUARD


@attrs.frozen
class Landed:
    """A message SQS accepted, from whichever client sent it."""

    message_id: str | None  # its `message_id` attribute: sendguard tags every send with its record
    sqs_message_id: str
    body: str
    queue_url: str
    group_id: str | None = None  # its MessageGroupId and MessageDeduplicationId, as sent
    deduplication_id: str | None = None


@attrs.frozen
class LandedWrite:
    """A DynamoDB write that was applied: what the suite needs to know which items ever existed."""

    operation: str
    params: dict[str, Any]
    caller: str | None = None  # TEAM or SENDGUARD


@attrs.define
class _Invocation:
    plans: tuple[Plan, ...]
    seen: list[int]  # per plan: the calls it could have hit so far


_EVENTS = ("provide-client-params", "before-call", "before-send", "after-call")


class FaultInjector:
    """While `installed()`, every botocore client carries the injector's handlers, however and
    whenever it was made: boto3's default session (`boto3.client(...)`), a `boto3.Session()` of its
    own, a resource's client, made before the suite started or after. A client gets them at its first
    call inside `installed()` and loses them on the way out."""

    def __init__(self) -> None:
        self.fired: list[Fired] = []
        self.landed: list[Landed] = []
        self.writes: list[LandedWrite] = []
        self.layout = TableLayout()  # the table's: which record a write is about
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handlers: dict[str, Any] = {
            "provide-client-params": self._remember_params,
            "before-call": self._before_call,
            "before-send": self._before_send,
            "after-call": self._after_call,
        }
        self._key = f"sendguard-fault-injector-{id(self)}"  # this injector's part of a call's context
        self._hooked: weakref.WeakSet[Any] = weakref.WeakSet()  # clients it registered itself on
        self._checked: weakref.WeakSet[Any] = weakref.WeakSet()  # clients it looked at
        self.stall_reached = threading.Event()  # an invocation is waiting at its stall
        self._resume = threading.Event()

    # ---- arming ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        """Every client's calls inside go through the injector (see the class).

        The handlers go into botocore's BUILTIN_HANDLERS first (as moto's stubber does), so that
        every session made inside carries them in botocore's own order; a client whose session was
        made before — boto3's default session, say — gets them at its first call inside."""
        self._raw("dynamodb")  # the injector's own client, made before its handlers go in
        entries = list(self._handlers.items())
        for position, entry in enumerate(entries):
            BUILTIN_HANDLERS.insert(position, entry)  # before moto's stubber: it sees requests first
        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        injector = self

        def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            injector._hook(client)
            caller = None if is_own(client) else SENDGUARD if is_sendguard_client(client) else TEAM
            outer, injector._local.caller = injector._caller(), caller
            try:
                return original(client, operation_name, api_params)
            finally:
                injector._local.caller = outer

        try:
            with mock.patch.object(BaseClient, "_make_api_call", _make_api_call):
                yield self
        finally:
            for entry in entries:
                BUILTIN_HANDLERS.remove(entry)
            self._unhook_all()

    def _hook(self, client: Any) -> None:
        """Registers the handlers on a client that does not carry them yet."""
        if client in self._checked or is_own(client):
            return
        with self._lock:
            if client in self._checked:
                return
            self._checked.add(client)
            probe: dict[str, Any] = {}
            client.meta.events.emit(
                "provide-client-params.sendguard.Probe", params={}, model=None, context=probe
            )
            if self._key in probe:  # its session was made while installed: it has them already
                return
            for event, handler in self._handlers.items():
                # first: ahead of moto's stubber (which answers before-send), after the deadline
                # guard a sendguard client registers first when it is made
                client.meta.events.register_first(event, handler, unique_id=self._uid(event))
            self._hooked.add(client)

    def _unhook_all(self) -> None:
        with self._lock:
            for client in list(self._hooked):
                for event in self._handlers:
                    client.meta.events.unregister(event, unique_id=self._uid(event))
            self._hooked = weakref.WeakSet()
            self._checked = weakref.WeakSet()

    def _uid(self, event: str) -> str:
        return f"{self._key}-{event}"

    def _raw(self, service: str) -> Any:
        """A client that no fault reaches (to replay a landed write)."""
        return client(service)

    @property
    def raw_dynamodb(self) -> Any:
        """The injector's own DynamoDB client (no fault reaches it): its calls are SDK retries."""
        return self._raw("dynamodb")

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

    def _caller(self) -> str | None:
        """Whose call this thread is making: TEAM, SENDGUARD, or None (the suite's own)."""
        caller: str | None = getattr(self._local, "caller", None)
        return caller

    # ---- handlers --------------------------------------------------------------------------------

    def _remember_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # each injector keeps to its own part of the context: a client made while an earlier
        # injector was installed still carries that one's (inert) handlers
        context[self._key] = {"params": dict(params)}

    def _mine(self, context: dict[str, Any]) -> dict[str, Any]:
        mine: dict[str, Any] = context.setdefault(self._key, {})
        return mine

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        invocation = self._current()
        if invocation is None:
            return
        firing = None
        caller = self._caller()
        for index, plan in enumerate(invocation.plans):
            if plan.fault.hits(model.name) and plan.caller in (None, caller):
                invocation.seen[index] += 1
                if invocation.seen[index] == plan.skip + 1 and firing is None:
                    firing = plan.fault
        if firing is None:
            return
        fault = firing
        self._record(fault, model.name, context)
        stage = fault.value.stage
        if stage == "crash-before":
            raise Crashed(fault.name)
        if stage == "stall":
            self.stall_reached.set()
            self._resume.wait(timeout=60)

    def _before_send(self, request: Any, **_: Any) -> None:
        mine = self._mine(request.context)
        kind: Fault | None = mine.get("fault")
        if kind is None:
            return
        if kind.value.stage == "stall-wire" and not mine.get("delayed"):
            mine["delayed"] = True  # the first attempt only
            self.stall_reached.set()
            self._resume.wait(timeout=60)
            return
        if kind.value.stage == "before":
            raise _before_error(kind.value, mine.get("operation", ""))

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        applied = http_response is not None and http_response.status_code < 300
        mine = self._mine(context)
        params = mine.get("params", {})
        if applied:
            self._note_applied(model.name, params, parsed)
        kind: Fault | None = mine.get("fault")
        if not applied or kind is None:
            return
        stage = kind.value.stage
        if stage == "crash-after":
            raise Crashed(kind.name)
        if stage != "after":
            return
        if kind is Fault.WRITE_LANDED_RETRY_FAILS_CONDITION:
            try:  # botocore's retry of the landed write, as DynamoDB would answer it
                getattr(self._raw("dynamodb"), xform_name(model.name))(**params)
            except ClientError as retry_answer:
                raise retry_answer from None
            return  # a write without a condition (the team's own, say) lands again, and succeeds
        error = ReadTimeoutError if kind is Fault.APPLIED_THEN_READ_TIMEOUT else ConnectionClosedError
        raise error(endpoint_url="https://injected")

    def _note_applied(self, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        with self._lock:
            if operation == "SendMessage":
                self.landed.append(_landed(params, parsed["MessageId"], params.get("QueueUrl", "")))
            elif operation == "SendMessageBatch":
                ids = {ok["Id"]: ok["MessageId"] for ok in parsed.get("Successful", [])}
                for entry in params.get("Entries", []):
                    if entry.get("Id") in ids:
                        self.landed.append(_landed(entry, ids[entry["Id"]], params.get("QueueUrl", "")))
            elif operation in OPERATIONS[WRITE]:
                self.writes.append(LandedWrite(operation, params, self._caller()))

    def _record(self, fault: Fault, operation: str, context: dict[str, Any]) -> None:
        mine = self._mine(context)
        mine["fault"], mine["operation"] = fault, operation
        with self._lock:
            params = mine.get("params", {})
            caller = self._caller()
            if operation == "SendMessageBatch":  # the fault hits every entry's message
                self.fired.extend(
                    Fired(fault, operation, _message_id("SendMessage", entry, self.layout), caller)
                    for entry in params.get("Entries", [])
                )
            else:
                self.fired.append(
                    Fired(fault, operation, _message_id(operation, params, self.layout), caller)
                )

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


def _landed(entry: dict[str, Any], sqs_message_id: str, queue_url: str) -> Landed:
    message_id = entry.get("MessageAttributes", {}).get(RESERVED_ATTRIBUTE, {}).get("StringValue")
    body = entry.get("MessageBody", "")
    group, deduplication = entry.get("MessageGroupId"), entry.get("MessageDeduplicationId")
    return Landed(message_id, sqs_message_id, body, queue_url, group, deduplication)


def _message_id(operation: str, params: dict[str, Any], layout: TableLayout) -> str | None:
    """The record a call is about, where the call says so: a send's `message_id` attribute, or the
    message id of a write's key (by the table's `layout`)."""
    if operation == "SendMessage":
        value: str | None = params.get("MessageAttributes", {}).get(RESERVED_ATTRIBUTE, {}).get("StringValue")
        return value
    if operation == "TransactWriteItems":  # the team's transaction: the first item with the key
        for entry in params.get("TransactItems", []):
            for part in entry.values():
                found = _message_id("UpdateItem", {"Key": part.get("Key") or part.get("Item")}, layout)
                if found is not None:
                    return found
        return None
    try:
        return layout.key_of(params.get("Key") or {}).message_id
    except (KeyError, TypeError, AttributeError):  # not a key of the layout's (another table's)
        return None


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
