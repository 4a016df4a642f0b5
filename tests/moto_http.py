"""moto over real HTTP, with faults: `ThreadedMotoServer` with a WSGI middleware in front of it.

Under in-process `mock_aws` a botocore handler cannot stop moto applying a request, so faults that
depend on what reached the service (an error answer instead of the request, a request applied and then
a timeout) are injected here, on the wire, where a real client sees real HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


@attrs.define
class Rule:
    operation: str  # e.g. "SendMessage", "UpdateItem" (from X-Amz-Target)
    action: str  # "answer" | "apply_then_stall" | "hold_then_apply"
    times: int = 1
    status: int = 400
    body: dict[str, Any] = attrs.field(factory=dict)
    headers: dict[str, str] = attrs.field(factory=dict)
    stall_s: float = 0.0
    fired: int = 0
    applied_at_ms: list[int] = attrs.field(factory=list)  # when a held request reached the service


def sqs_error(code: str, query_code: str, status: int = 400, times: int = 1) -> Rule:
    """An SQS JSON-protocol error answer, the legacy query code in x-amzn-query-error."""
    return Rule(
        "SendMessage",
        "answer",
        times=times,
        status=status,
        body={"__type": f"com.amazonaws.sqs#{query_code}", "message": "injected"},
        headers={"x-amzn-query-error": f"{code};Sender"},
    )


def dynamodb_error(code: str, status: int = 400, times: int = 1, operation: str = "UpdateItem") -> Rule:
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}
    return Rule(operation, "answer", times=times, status=status, body=body)


class FaultMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.rules: list[Rule] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rsplit(".", 1)[-1]
        with self._lock:
            self.requests.append(operation)
            rule = next((r for r in self.rules if r.operation == operation and r.fired < r.times), None)
            if rule is not None:
                rule.fired += 1
        if rule is None:
            return self.app(environ, start_response)
        if rule.action == "answer":
            payload = json.dumps(rule.body).encode()
            headers = [("Content-Type", "application/x-amz-json-1.0"), *rule.headers.items()]
            start_response(f"{rule.status} Injected", [*headers, ("Content-Length", str(len(payload)))])
            return [payload]
        if rule.action == "hold_then_apply":  # held on the wire, then it reaches the service after all
            time.sleep(rule.stall_s)
            rule.applied_at_ms.append(time.time_ns() // 1_000_000)
            return self.app(environ, start_response)
        # apply_then_stall: the service applies the request; its answer comes too late
        chunks = list(self.app(environ, lambda *a, **k: None))
        time.sleep(rule.stall_s)
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return chunks


class FaultyMotoServer(ThreadedMotoServer):
    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.faults = FaultMiddleware(DomainDispatcherApplication(create_backend_app))

    def _server_entry(self) -> None:
        self._server = make_server(self._ip_address, self._port, self.faults, threaded=True)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"
