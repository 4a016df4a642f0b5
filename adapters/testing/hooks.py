"""What the suite's hooks take and give, their defaults, and the events a team's HTTP handler takes.

`FaultInjectionSuite` calls each hook on the instance, so a subclass's override is what runs
(docs/fault-injection.md lists them): `make_event` turns a `Request` into the event the team's submit
handler takes, `read_reply` reads its answer, `read_item` reads a table item as a `TableRecord`,
`expected_message` says what a request must put on the queue, `promised_message` what one of the
team's rows promises (a `Promise`). The functions here are the defaults, two sets of them:

* for sendguard's own handler (`FaultInjectionSuite`): an API Gateway (HTTP API 2.0)
  `POST /messages`, sendguard's JSON answer, sendguard's item layout;
* for a team's handler built on `adapters.Outbox` with its own `TableLayout` (`OutboxSuite`): a plain
  event `{"key", "body", "attributes", "item", "transactional", "group_id", "queue"}`, an answer that
  is the Outbox's `SendResult` (or a proxy answer with `messageId`), and items read with the team's
  layout, the team's attributes beside sendguard's `sg_` bookkeeping, the team's other items (an
  invoice) left out.

And the builders of complete HTTP events as AWS sends them — API Gateway's HTTP API and REST API, a
function URL, an Application Load Balancer — for a team's `make_event`.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from adapters.runtime.clients import aws_region
from adapters.runtime.codec import foreign_attributes, is_record, stored_from_item
from adapters.runtime.layout import TableLayout
from statemodel.stored import Stored


@attrs.frozen
class Request:
    """One request a client makes: a body from `request_bodies()`, the Idempotency-Key the suite
    chose for it (None: sent without one), headers from `request_headers()`, and — for a service
    whose handler can write the record in the team's own transaction (`Service.transactional`) —
    whether this request takes that way (`Outbox.pending_put` then `dispatch`). On a FIFO service
    the suite draws a message group for it (`group_id`; None: none given), and on a service with
    several queues the queue it is for (`queue`, one of `Service.queues`' names; None: the first)."""

    body: Any
    key: str | None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    transactional: bool = False
    group_id: str | None = None
    queue: str | None = None


@attrs.frozen
class Reply:
    """What an answer means, read by `read_reply`: its HTTP status (or the status it stands for, for
    a handler that does not answer HTTP), and for a success (2xx) the message id."""

    status: int
    message_id: str | None = None
    detail: str = ""  # for the report: an error code, say

    @property
    def accepted(self) -> bool:
        """The answer claims success: the message is on the queue."""
        return 200 <= self.status < 300


@attrs.frozen
class TableRecord:
    """One sendguard record as `read_item` finds it in a table item."""

    key: str  # the record's id (the `message_id` its sends carry)
    stored: Stored  # the record's projection and history, as sendguard reads them
    request_key: str | None  # the Idempotency-Key the record was made for, if any
    team_attributes: Mapping[str, Any] = attrs.field(factory=dict)  # the team's own, never rewritten


@attrs.frozen
class Expected:
    """What a request must put on the queue: the payload (as JSON data) and the message attributes;
    and, where the request says, its FIFO message group and the queue (by its name in
    `Service.queues`; None: any of the service's)."""

    payload: Any
    attributes: Mapping[str, str] = attrs.field(factory=dict)
    group_id: str | None = None
    queue: str | None = None


@attrs.frozen
class Promise:
    """What one of the team's rows promises (`promised_message`): the message the row must have —
    sent under `key` (what the team gives `send` or `pending_put`: a string or a (partition, sort)
    pair), with exactly `body` as its text, on `queue` (a name in `Service.queues`; None: any of the
    service's) — or, with `body` None, that no message goes out under `key`."""

    key: str | tuple[str, str]
    body: str | None
    queue: str | None = None


# ---- events as AWS sends them ---------------------------------------------------------------------
# Each builder makes one HTTP request as the service in front of a function sends it, with every field
# AWS documents for it: the request's headers (with its Idempotency-Key), the body as JSON, a fresh
# request id and X-Ray trace header. Powertools' event classes read them, and its `correlation_paths`
# find the correlation id in them (tests/test_fault_injection.py).

ACCOUNT = "123456789012"
SOURCE_IP = "203.0.113.7"  # TEST-NET-3
USER_AGENT = "sendguard-suite"
API_ID = "sgsuite123"
FUNCTION_URL_ID = "sgsuitefunctionurl1234567890"
TARGET_GROUP = "targetgroup/sendguard-suite/6d0ecf831eec9f09"


def api_gateway_event(
    request: Request, path: str = "/messages", body: Any = None, *, method: str = "POST"
) -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0) of the request, to `path`, with `body`
    (default: the request's)."""
    return _v2_event(request, path, body, method, f"{method} {path}", API_ID, _api_request_id())


def function_url_event(
    request: Request, path: str = "/messages", body: Any = None, *, method: str = "POST"
) -> dict[str, Any]:
    """A Lambda function URL event (payload format 2.0) of the request."""
    return _v2_event(request, path, body, method, "$default", FUNCTION_URL_ID, str(uuid.uuid4()))


def rest_api_event(
    request: Request, path: str = "/messages", body: Any = None, *, method: str = "POST"
) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload format 1.0) of the request, on stage `prod`."""
    text, now = _body(request, body), time.time()
    headers = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "Content-Length": str(len(text.encode())),
        "Host": f"{API_ID}.execute-api.{_region()}.amazonaws.com",
        "User-Agent": USER_AGENT,
        "X-Amzn-Trace-Id": _trace_id(now),
        "X-Forwarded-For": SOURCE_IP,
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **_request_headers(request, "Idempotency-Key"),
    }
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "a1b2c3",
            "resourcePath": path,
            "httpMethod": method,
            "extendedRequestId": _api_request_id(),
            "requestTime": _request_time(now),
            "path": f"/prod{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": SOURCE_IP, "userAgent": USER_AGENT},
            "domainName": f"{API_ID}.execute-api.{_region()}.amazonaws.com",
            "apiId": API_ID,
        },
        "body": text,
        "isBase64Encoded": False,
    }


def alb_event(
    request: Request,
    path: str = "/messages",
    body: Any = None,
    *,
    method: str = "POST",
    multi_value_headers: bool = False,
) -> dict[str, Any]:
    """An Application Load Balancer target group's event of the request; with `multi_value_headers`
    (the target group's setting) the headers and query come as lists only, as ALB then sends them."""
    text, now = _body(request, body), time.time()
    headers = {
        "accept": "*/*",
        "content-type": "application/json",
        "content-length": str(len(text.encode())),
        "host": f"sendguard-suite-1815800096.{_region()}.elb.amazonaws.com",
        "user-agent": USER_AGENT,
        "x-amzn-trace-id": _trace_id(now),
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **_request_headers(request, "idempotency-key"),
    }
    shape: dict[str, Any] = (
        {"multiValueQueryStringParameters": {}, "multiValueHeaders": {k: [v] for k, v in headers.items()}}
        if multi_value_headers
        else {"queryStringParameters": {}, "headers": headers}
    )
    return {
        "requestContext": {
            "elb": {"targetGroupArn": f"arn:aws:elasticloadbalancing:{_region()}:{ACCOUNT}:{TARGET_GROUP}"}
        },
        "httpMethod": method,
        "path": path,
        **shape,
        "body": text,
        "isBase64Encoded": False,
    }


def _v2_event(
    request: Request, path: str, body: Any, method: str, route_key: str, api_id: str, request_id: str
) -> dict[str, Any]:
    """Payload format 2.0, as HTTP APIs and function URLs send it (they differ in the route key, the
    domain and the request id's form)."""
    text, now = _body(request, body), time.time()
    domain = (
        f"{api_id}.lambda-url.{_region()}.on.aws"
        if api_id == FUNCTION_URL_ID
        else f"{api_id}.execute-api.{_region()}.amazonaws.com"
    )
    headers = {
        "accept": "*/*",
        "content-type": "application/json",
        "content-length": str(len(text.encode())),
        "host": domain,
        "user-agent": USER_AGENT,
        "x-amzn-trace-id": _trace_id(now),
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **_request_headers(request, "idempotency-key"),
    }
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous" if api_id == FUNCTION_URL_ID else ACCOUNT,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": api_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": USER_AGENT,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": _request_time(now),
            "timeEpoch": int(now * 1000),
        },
        "body": text,
        "isBase64Encoded": False,
    }


def _body(request: Request, body: Any) -> str:
    return json.dumps(request.body if body is None else body)


def _request_headers(request: Request, key_header: str) -> dict[str, str]:
    """The request's own headers, and its Idempotency-Key under `key_header` (the shape's spelling)."""
    headers = dict(request.headers)
    if request.key is not None:
        headers[key_header] = request.key
    return headers


def _api_request_id() -> str:
    """An API Gateway request id of the form it gives HTTP APIs (`C3tBxhT1joEEMqQ=`)."""
    return base64.b64encode(uuid.uuid4().bytes[:11]).decode()


def _trace_id(now: float) -> str:
    """The X-Ray trace header AWS adds (`Root=1-<epoch seconds, hex>-<96 random bits, hex>`)."""
    return f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}"


def _request_time(now: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))


def _region() -> str:
    return aws_region() or "us-east-1"


def read_api_reply(answer: Any) -> Reply:
    """An API Gateway proxy answer with a JSON body: `messageId` when accepted; for a refusal,
    sendguard's `error.code` (or the team's `error` text)."""
    status = int(answer["statusCode"])
    body = json.loads(answer.get("body") or "null")
    if 200 <= status < 300:
        message_id = body.get("messageId") if isinstance(body, dict) else None
        return Reply(status, None if message_id is None else str(message_id))
    error = body.get("error", "") if isinstance(body, dict) else ""
    detail = error.get("code", "") if isinstance(error, dict) else error
    return Reply(status, None, str(detail))


def read_sendguard_item(item: dict[str, Any]) -> TableRecord | None:
    """An item of sendguard's own table: every item is a record, keyed `message_id`."""
    stored = stored_from_item(item)
    message = stored.record.message
    return TableRecord(message.message_id, stored, message.idempotency_key)


def read_layout_item(item: dict[str, Any], layout: TableLayout) -> TableRecord | None:
    """An item of a team's table with `layout`: a record if it carries sendguard's bookkeeping (its
    key is the request's key, and what sendguard does not own is the team's), else the team's own
    item (None)."""
    if not is_record(item):
        return None
    stored = stored_from_item(item, layout)
    key = stored.record.message.message_id
    return TableRecord(key, stored, key, foreign_attributes(item, layout))


def outbox_event(request: Request) -> dict[str, Any]:
    """The plain event of `outbox_handler`: the key, the payload as JSON text, its attributes, the
    team's item attributes, the way in, the group and the queue."""
    body = request.body
    return {
        "key": request.key,
        "body": json.dumps(body["payload"]),
        "attributes": dict(body.get("attributes", {})),
        "item": dict(body.get("item", {})),
        "transactional": request.transactional,
        "group_id": request.group_id,
        "queue": request.queue,
    }


def read_send_result(answer: Any) -> Reply:
    """An Outbox `SendResult` (what a handler that returns it answers), or a proxy answer."""
    if isinstance(answer, dict):
        return read_api_reply(answer)
    status = int(answer.http_status)
    if answer.accepted:
        return Reply(202, str(answer.message_id))
    return Reply(status, None, str(answer.error_code or answer.outcome))


def sendguard_message(request: Request) -> Expected:
    """sendguard's request body: `{"payload": ..., "attributes": {...}}` (its FIFO group is the
    `group` attribute's)."""
    body = request.body
    return Expected(body["payload"], dict(body.get("attributes", {})))


def outbox_message(request: Request) -> Expected:
    """`outbox_event`'s message: sendguard's body, with the request's group and queue."""
    return attrs.evolve(sendguard_message(request), group_id=request.group_id, queue=request.queue)
