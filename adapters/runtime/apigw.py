"""HTTP events in, answers out, in every shape AWS gives a Lambda function behind HTTP: API Gateway's
REST API (payload format 1.0) and HTTP API (2.0), a function URL (2.0), and an Application Load
Balancer's target group, with multi-value headers off or on.

Only shape lives here — reading a request out of an event, and writing an answer — so that the
handler reads as the protocol. Whatever arrives, `read_request` returns a request or a `Rejection`;
it never raises. Error answers carry a code, a fixed message and the correlation id, nothing else:
no exception text, AWS codes, ARNs, URLs or resource names.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from http import HTTPStatus
from typing import Any

import attrs

from statemodel.validation import VALIDATION_ERROR, Rejection

NOT_FOUND = "NOT_FOUND"
FORBIDDEN = "FORBIDDEN"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
SYSTEM_ERROR = "SYSTEM_ERROR"
_MESSAGES_PATH = re.compile(r"(?:^|/)messages(?:/(?P<message_id>[^/]*))?/?$")


@attrs.frozen(eq=False)  # never compared (it holds a dict): attrs generates less at import
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes | None
    message_id: str | None  # the {messageId} of /messages/{messageId}; None for /messages
    on_messages: bool  # the path is /messages or /messages/{messageId}
    caller: str | None = None  # the IAM principal that signed it (`caller`)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def read_request(event: object) -> HttpRequest | Rejection:
    """The request in an HTTP event of any of the module's shapes."""
    if not isinstance(event, dict):
        return Rejection(VALIDATION_ERROR, "the request is not an API Gateway proxy event")
    method, path = _method_and_path(event)
    if not method or path is None:
        return Rejection(VALIDATION_ERROR, "the request is not an API Gateway proxy event")
    lowered = _headers(event)
    if lowered is None:
        return Rejection(VALIDATION_ERROR, "the request's headers are malformed")
    body = event.get("body")
    raw: bytes | None
    if body is None:
        raw = None
    elif not isinstance(body, str):
        return Rejection(VALIDATION_ERROR, "the request's body is malformed")
    elif event.get("isBase64Encoded") is True:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return Rejection(VALIDATION_ERROR, "the body is marked base64 but is not valid base64")
    else:
        raw = body.encode("utf-8", "surrogatepass")
    match = _MESSAGES_PATH.search(path)
    message_id = match.group("message_id") if match else None
    return HttpRequest(method.upper(), path, lowered, raw, message_id, match is not None, caller(event))


def _method_and_path(event: dict[str, Any]) -> tuple[str | None, str | None]:
    context = event.get("requestContext")
    if event.get("version") == "2.0" and isinstance(context, dict):
        http = context.get("http")
        if isinstance(http, dict):
            method, path = http.get("method"), event.get("rawPath") or http.get("path")
            return _str(method), _str(path)
    return _str(event.get("httpMethod")), _str(event.get("path"))


def caller(event: object) -> str | None:
    """The IAM principal that signed the request (the API's IAM authorization): REST API
    `requestContext.identity.userArn`; HTTP API and function URL `requestContext.authorizer.iam.
    userArn`. None when the request names none (no IAM authorization, an ALB)."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    if not isinstance(context, dict):
        return None
    identity, authorizer = context.get("identity"), context.get("authorizer")
    iam = authorizer.get("iam") if isinstance(authorizer, dict) else None
    for found in (
        identity.get("userArn") if isinstance(identity, dict) else None,
        iam.get("userArn") if isinstance(iam, dict) else None,
    ):
        if isinstance(found, str) and found:
            return found
    return None


def header(event: object, name: str) -> str | None:
    """One header of the request in `event`, as `read_request` reads it; None when it is absent or the
    event is not one. The handler reads X-Correlation-Id with it before anything else, so that even
    the answer to a malformed request echoes it."""
    headers = _headers(event) if isinstance(event, dict) else None
    return headers.get(name.lower()) if headers is not None else None


def _headers(event: dict[str, Any]) -> dict[str, str] | None:
    """The request's headers, names lower-cased; None when they are malformed.

    `headers` holds one value a name (REST API: the last one; ALB with multi-value headers on sends
    no `headers` at all), `multiValueHeaders` every value (REST API, and ALB with multi-value headers
    on). A header sent more than once — several values, or names differing in case only — reads as
    its values joined with commas, as HTTP APIs and function URLs give it (RFC 9110 section 5.3): the
    same request then reads the same in every shape, and a repeated Idempotency-Key is a malformed
    one (400), never one of its values picked silently."""
    single, multi = event.get("headers") or {}, event.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return None
    values: dict[str, list[str]] = {}
    for name, listed in multi.items():
        if isinstance(listed, list):
            values.setdefault(str(name).lower(), []).extend(v for v in listed if isinstance(v, str))
    complete = set(values)  # `headers` repeats these, or holds only the last of their values
    for name, value in single.items():
        if isinstance(value, str) and str(name).lower() not in complete:
            values.setdefault(str(name).lower(), []).append(value)
    return {name: ",".join(given) for name, given in values.items() if given}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@attrs.frozen(eq=False)  # never compared (it holds dicts): attrs generates less at import
class Reply:
    """An answer as values, before `for_event` gives it the shape of the event it answers: the error
    code stays a value (the answer's log line reads it) and is never parsed back out of the body."""

    status: int
    body: dict[str, Any]
    correlation_id: str
    headers: dict[str, str] | None = None
    code: str | None = None  # the error's code; None for a success


def answer(
    status: int, body: dict[str, Any], correlation_id: str, headers: dict[str, str] | None = None
) -> Reply:
    return Reply(status, body, correlation_id, headers)


def error(
    status: int, code: str, message: str, correlation_id: str, headers: dict[str, str] | None = None
) -> Reply:
    body = {"error": {"code": code, "message": message, "correlationId": correlation_id}}
    return Reply(status, body, correlation_id, headers, code)


def for_event(event: object, reply: Reply) -> dict[str, Any]:
    """`reply` as a proxy answer API Gateway (both payload formats) and function URLs read, in the shape
    the sender of `event` reads. An ALB (`requestContext.elb`) needs the status line's
    `statusDescription`; with multi-value headers on (the event then carries `multiValueHeaders`), it
    ignores `headers` and reads `multiValueHeaders` only, so the headers move there."""
    result: dict[str, Any] = {
        "statusCode": reply.status,
        "headers": {
            "Content-Type": "application/json",
            "X-Correlation-Id": reply.correlation_id,
            **(reply.headers or {}),
        },
        "body": json.dumps(reply.body, ensure_ascii=False),
        "isBase64Encoded": False,
    }
    context = event.get("requestContext") if isinstance(event, dict) else None
    if not (isinstance(event, dict) and isinstance(context, dict) and "elb" in context):
        return result
    try:
        reason = HTTPStatus(reply.status).phrase
    except ValueError:  # a code without a registered phrase: a status line's reason may be empty
        reason = ""
    shaped = {**result, "statusDescription": f"{reply.status} {reason}".rstrip()}
    if isinstance(event.get("multiValueHeaders"), dict):
        shaped["multiValueHeaders"] = {name: [value] for name, value in shaped.pop("headers").items()}
    return shaped
