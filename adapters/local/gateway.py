"""A local stand-in for API Gateway's HTTP API: HTTP requests in, payload-format-2.0 proxy events to a
Lambda handler, the handler's proxy answer back out as HTTP.

`sendguard serve` and `sendguard demo` put it in front of `adapters.aws_lambda.submit`, so that curl or
the demo's load drives the real entry point over real HTTP. Each request is one invocation, on its own
thread (concurrent invocations, as concurrent Lambda containers; they share this process's clients),
with a context whose remaining time counts down from the function's timeout. As API Gateway does, an
invocation that overruns its timeout is answered 503 whatever it returned, and one that raises is
answered 500. Every path goes to the function (a `$default` route, besides the two named ones).
Listens on loopback only.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import attrs

from adapters.local.loopback import LoopbackServer, owner_of
from adapters.local.sandbox import ACCOUNT, LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
API_ID = "local"


def _route(method: str, path: str) -> tuple[str, dict[str, str] | None]:
    """The route of the deployed API (deploy/template.yaml) a request matches, or `$default`."""
    if method == "POST" and path == "/messages":
        return "POST /messages", None
    rest = path.removeprefix("/messages/")
    if method == "GET" and rest != path and rest and "/" not in rest:
        return "GET /messages/{messageId}", {"messageId": urllib.parse.unquote(rest)}
    return "$default", None


def http_api_event(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, host: str, source_ip: str
) -> dict[str, Any]:
    """The HTTP API (payload format 2.0) event API Gateway would hand the function."""
    parts = urllib.parse.urlsplit(target)
    path = parts.path or "/"
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        if name.lower() == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        else:
            key = name.lower()
            merged[key] = f"{merged[key]},{value}" if key in merged else value
    merged.update({"x-forwarded-for": source_ip, "x-forwarded-proto": "http"})
    route_key, path_parameters = _route(method, path)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": parts.query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if parts.query:
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def http_answer(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """The function's answer as API Gateway turns it into HTTP (payload format 2.0)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return 200, [("Content-Type", "application/json")], json.dumps(result).encode()
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(c)) for c in result.get("cookies") or []]
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, data


def _gateway_error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()


@attrs.define
class GatewayStats:
    invocations: int = 0
    past_timeout: int = 0  # answered 503 by the gateway: the function overran its timeout
    raised: int = 0  # answered 500 by the gateway: the function raised
    slowest_ms: int = 0


class Gateway:
    def __init__(self, handler: Handler, timeout_ms: int = 10_000, port: int = 0) -> None:
        self.handler = handler
        self.timeout_ms = timeout_ms
        self.port = port
        self.stats = GatewayStats()
        self._lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self, "gateway", port)

    def start(self) -> str:
        return self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    def invoke(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        started = time.monotonic()
        try:
            result = self.handler(event, LambdaContext(self.timeout_ms))
            answer = http_answer(result)
            failed = False
        except Exception:
            answer, failed = _gateway_error(500, "Internal Server Error"), True
        elapsed = int((time.monotonic() - started) * 1000)
        overran = elapsed > self.timeout_ms
        with self._lock:
            self.stats.invocations += 1
            self.stats.raised += failed
            self.stats.past_timeout += overran
            self.stats.slowest_ms = max(self.stats.slowest_ms, elapsed)
        return _gateway_error(503, "Service Unavailable") if overran else answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._invoke()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _invoke(self) -> None:
        gateway: Gateway = owner_of(self)
        length = self.headers.get("Content-Length")
        if length is None and "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            status, headers, payload = _gateway_error(411, "Length Required")
            self.close_connection = True
        else:
            body = self.rfile.read(int(length or 0))
            host = self.headers.get("Host", "127.0.0.1")
            event = http_api_event(
                self.command, self.path, list(self.headers.items()), body, host, self.client_address[0]
            )
            status, headers, payload = gateway.invoke(event)
            headers.append(("Apigw-Requestid", event["requestContext"]["requestId"]))
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:
            self.close_connection = True
