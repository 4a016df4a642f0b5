"""A fault-injecting HTTP proxy on loopback, between boto3 and the AWS endpoint (the embedded moto).

The service's clients point `AWS_ENDPOINT_URL` at this proxy; it forwards each request to the real
endpoint, except that a seeded share of them (`rate`, per AWS request the service makes) meets a real
network or service fault, on the wire, where the client sees exactly what it would see from AWS:

* `reset_before`  — the request is read, then the connection is reset: it never reached the service;
* `reset_after`   — the request is forwarded and applied, then the connection is reset unanswered;
* `delay`         — the request is applied, and its answer held past the client's read timeout;
* `error_500`, `error_503`, `throttle` — an AWS-shaped error answer (JSON `__type`, and for SQS the
  `x-amzn-query-error` header), the request not forwarded.

To the client a reset before and a reset after are the same error; only the proxy knows which one was
applied. That is what the demo's verdict needs to explain a duplicate, so the proxy keeps a ledger:
every fault by kind and by record id (DynamoDB's key `message_id`, SQS's message attribute
`message_id`), the SDK's retries (botocore's `amz-sdk-request: attempt=N` header), every SendMessage
that SQS accepted with whether its answer reached the client, and every confirm write (an UpdateItem
that sets `sqs_message_id`) with its fate. The draw for a request depends on the seed, the operation,
the record and how many such requests came before, not on thread timing: the same seed puts the same
faults on the same requests.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import hashlib
import http.client
import json
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import attrs

from adapters.local.loopback import LoopbackServer, owner_of
from adapters.runtime.clients import READ_TIMEOUT_S
from adapters.runtime.layout import TableLayout
from statemodel.validation import RESERVED_ATTRIBUTE


class Kind(enum.StrEnum):
    RESET_BEFORE = "reset_before"
    RESET_AFTER = "reset_after"
    DELAY = "delay"
    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    THROTTLE = "throttle"


DESCRIPTIONS: dict[Kind, str] = {
    Kind.RESET_BEFORE: "connection reset before the request reached moto",
    Kind.RESET_AFTER: "connection reset after moto applied the request",
    Kind.DELAY: "answer held past the client's read timeout (applied)",
    Kind.ERROR_500: "500 internal error",
    Kind.ERROR_503: "503 service unavailable",
    Kind.THROTTLE: "throttling error",
}
# How often each kind is drawn, relative to the others. Delays are the rarest: each costs a client
# its whole read timeout.
WEIGHTS: dict[Kind, int] = {
    Kind.RESET_BEFORE: 3,
    Kind.RESET_AFTER: 3,
    Kind.DELAY: 1,
    Kind.ERROR_500: 2,
    Kind.ERROR_503: 2,
    Kind.THROTTLE: 3,
}
APPLIED: frozenset[Kind] = frozenset({Kind.RESET_AFTER, Kind.DELAY})  # applied, answer never seen
# What the service calls; TransactWriteItems: the ready consumer's commit (`sendguard demo --consumer`).
FAULTABLE = frozenset({"UpdateItem", "GetItem", "Query", "SendMessage", "TransactWriteItems"})
ANSWERED = "answered"
LATE = "late"  # not injected: the answer came after the client's read timeout, or could not be written
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"})
_ERRORS: dict[tuple[str, Kind], tuple[int, str, str]] = {
    # (service, kind): (HTTP status, error code, SQS query code's fault side)
    ("dynamodb", Kind.ERROR_500): (500, "InternalServerError", ""),
    ("dynamodb", Kind.ERROR_503): (503, "ServiceUnavailable", ""),
    ("dynamodb", Kind.THROTTLE): (400, "ThrottlingException", ""),
    ("sqs", Kind.ERROR_500): (500, "InternalError", "Receiver"),
    ("sqs", Kind.ERROR_503): (503, "ServiceUnavailable", "Receiver"),
    ("sqs", Kind.THROTTLE): (403, "RequestThrottled", "Sender"),
}


@attrs.frozen
class Injected:
    kind: Kind
    operation: str
    message_id: str | None
    attempt: int  # the SDK's attempt number of the request it hit


@attrs.define
class Landed:
    """A SendMessage SQS accepted, or a confirm write (an UpdateItem setting `sqs_message_id`)."""

    operation: str  # "SendMessage" or "confirm"
    message_id: str | None
    sqs_id: str
    applied: bool  # the service applied it (always, for a SendMessage here)
    answer: str = ANSWERED  # ANSWERED, LATE, or the Kind that kept the answer from the client


class Ledger:
    """What the proxy saw and did; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.retries = 0  # requests that were an SDK retry (attempt > 1)
        self.injected: list[Injected] = []
        self.sends: list[Landed] = []  # in the order SQS accepted them
        self.confirms: list[Landed] = []
        self.late = 0
        self.upstream_failures = 0

    def saw(self, operation: str, attempt: int, fault: Injected | None) -> None:
        with self._lock:
            self.requests[operation] += 1
            self.retries += attempt > 1
            if fault is not None:
                self.injected.append(fault)

    def landed(self, entry: Landed) -> Landed:
        with self._lock:
            (self.sends if entry.operation == "SendMessage" else self.confirms).append(entry)
        return entry

    def settle(self, entry: Landed | None, answer: str) -> None:
        with self._lock:
            if answer == LATE:
                self.late += 1
            if entry is not None:
                entry.answer = answer

    def failed_upstream(self) -> None:
        with self._lock:
            self.upstream_failures += 1

    def by_kind(self) -> dict[str, int]:
        with self._lock:
            counts = collections.Counter(fault.kind for fault in self.injected)
        return {kind.value: counts.get(kind, 0) for kind in Kind}

    def faults_for(self, message_id: str) -> list[Injected]:
        with self._lock:
            return [fault for fault in self.injected if fault.message_id == message_id]


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        rate: float,
        seed: int,
        read_timeout_s: float = READ_TIMEOUT_S,
        weights: dict[Kind, int] | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"the fault rate {rate} is not in [0, 1]")
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the fault proxy forwards to plain http endpoints only, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.rate = rate
        self.seed = seed
        self.read_timeout_s = read_timeout_s
        self.delay_s = read_timeout_s + 0.5
        self.weights = [(kind, weight) for kind, weight in (weights or WEIGHTS).items() if weight > 0]
        self.ledger = Ledger()
        self._drawn: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        # moto applies concurrent requests concurrently, and its conditional writes are not atomic
        # then; DynamoDB's are. The proxy hands moto one request at a time, so that a race the demo
        # shows is sendguard's, never moto's.
        self.upstream_lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self, "fault-proxy")

    def stop_faults(self) -> None:
        """From now on every request goes through as it is (the ledger still records them)."""
        self.rate = 0.0

    def decide(self, operation: str, key: str) -> Kind | None:
        """The fault for the n-th request of this operation on this key, or None."""
        if self.rate <= 0 or operation not in FAULTABLE:
            return None
        with self._lock:
            self._drawn[(operation, key)] += 1
            n = self._drawn[(operation, key)]
        if _uniform(self.seed, operation, key, n, "fault") >= self.rate:
            return None
        point = _uniform(self.seed, operation, key, n, "kind") * sum(w for _, w in self.weights)
        for kind, weight in self.weights:
            point -= weight
            if point < 0:
                return kind
        return self.weights[-1][0]

    def start(self) -> str:
        return self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def endpoint(self) -> str:
        return self._server.url


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    timeout = 60  # an idle kept-alive connection is dropped after this

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        self._relay()

    do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_POST

    def _relay(self) -> None:
        proxy: FaultProxy = owner_of(self)
        received = time.monotonic()
        body = self._body()
        target = self.headers.get("X-Amz-Target", "")
        service = (
            "dynamodb" if target.startswith("DynamoDB") else "sqs" if target.startswith("AmazonSQS") else ""
        )
        operation = target.rpartition(".")[2]
        data = _json(body)
        message_id = _message_id(operation, data)
        confirming = _confirmed_sqs_id(operation, data)
        attempt = _attempt(self.headers.get("amz-sdk-request", ""))
        kind = proxy.decide(operation, message_id or _other_key(data)) if service else None
        proxy.ledger.saw(operation, attempt, Injected(kind, operation, message_id, attempt) if kind else None)
        if kind is Kind.RESET_BEFORE:
            self._reset()
            return
        if kind is not None and kind not in APPLIED:
            if confirming:
                proxy.ledger.landed(
                    Landed("confirm", message_id, confirming, applied=False, answer=kind.value)
                )
            self._answer(*_error_answer(service, kind))
            return
        try:
            status, reason, headers, payload = self._forward(proxy, body)
        except OSError:
            proxy.ledger.failed_upstream()
            self._reset()
            return
        entry = None
        if operation == "SendMessage" and status == 200:
            sqs_id = str((_json(payload) or {}).get("MessageId", ""))
            entry = proxy.ledger.landed(Landed("SendMessage", message_id, sqs_id, applied=True))
        elif confirming:
            entry = proxy.ledger.landed(Landed("confirm", message_id, confirming, applied=status == 200))
        if kind is Kind.RESET_AFTER:
            proxy.ledger.settle(entry, kind.value)
            self._reset()
            return
        if kind is Kind.DELAY:
            time.sleep(proxy.delay_s)
        delivered = self._answer(status, reason, headers, payload)
        late = not delivered or time.monotonic() - received >= proxy.read_timeout_s
        proxy.ledger.settle(entry, kind.value if kind else LATE if late else ANSWERED)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, proxy: FaultProxy, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        connection = http.client.HTTPConnection(*proxy.upstream, timeout=30)
        try:
            with proxy.upstream_lock:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, response.reason, kept, payload
        finally:
            connection.close()

    def _answer(self, status: int, reason: str, headers: list[tuple[str, str]], payload: bytes) -> bool:
        try:
            self.send_response_only(status, reason)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
            return True
        except OSError:
            self.close_connection = True
            return False

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the peer gets a TCP RST, not an answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()


def _error_answer(service: str, kind: Kind) -> tuple[int, str, list[tuple[str, str]], bytes]:
    status, code, side = _ERRORS[(service, kind)]
    namespace = "com.amazonaws.dynamodb.v20120810" if service == "dynamodb" else "com.amazonaws.sqs"
    body = json.dumps({"__type": f"{namespace}#{code}", "message": f"injected by the demo's proxy: {kind}"})
    headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    if side:
        headers.append(("x-amzn-query-error", f"{code};{side}"))
    reason = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}
    return status, reason[status], headers, body.encode()


def _uniform(seed: int, *parts: object) -> float:
    digest = hashlib.blake2b("|".join(map(str, (seed, *parts))).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _message_id(operation: str, data: dict[str, Any] | None) -> str | None:
    if data is None:
        return None
    if operation == "SendMessage":
        value = data.get("MessageAttributes", {}).get(RESERVED_ATTRIBUTE, {}).get("StringValue")
    else:
        value = (data.get("Key") or {}).get(TableLayout().partition_key, {}).get("S")
    return value if isinstance(value, str) else None


def _confirmed_sqs_id(operation: str, data: dict[str, Any] | None) -> str | None:
    if operation != "UpdateItem" or data is None:
        return None
    value = (data.get("ExpressionAttributeValues") or {}).get(":sqs_message_id", {}).get("S")
    return value if isinstance(value, str) else None


def _other_key(data: dict[str, Any] | None) -> str:
    """What identifies a request without a record id (a reconciler's index query: its partition)."""
    if data is None:
        return ""
    partition = (data.get("ExpressionAttributeValues") or {}).get(":p", {}).get("S")
    return str(partition or data.get("TableName") or data.get("QueueUrl") or "")


def _attempt(header: str) -> int:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            return int(value)
    return 1
