"""Section 6: the local service under `sendguard demo` — requests per second and p50/p99 latency, and
where the time goes.

The service is the demo's own: `adapters.local.service.LocalService` with the options
`adapters.local.demo.DemoOptions` gives it (embedded moto server on loopback, the fault proxy in front of
it — here at fault rate 0 — the local API gateway, the real submit function with its JSON logs on,
written to /dev/null). Clients on keep-alive connections POST new messages (each its own
Idempotency-Key, a demo-like body) over real HTTP; each request's latency is timed at the client.
The gateway's handler is wrapped to time the function and its AWS calls (`bench.awstime`), the
process's CPU time is read around the load, and after it a route that makes no AWS call is timed on
one connection: the floor of the HTTP path itself. Runs side by side: the demo's setup with 8 clients
and with 1 client; the same without the fault proxy (which hands moto one request at a time); and, as
a diagnosis, the demo's setup with the gateway's and the proxy's HTTP handlers writing each answer in
one write (a buffered `wfile`, patched in for that run only), against the headers-then-body writes
that make a peer's delayed ACK hold every answer. `sendguard demo --json` itself (120 requests, 8
clients, its default fault rate) runs last, as a person runs it; it reports no latencies, only its
phases' seconds.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import attrs

from bench import awstime, stats
from bench.flows import body


@attrs.frozen
class Setup:
    label: str
    proxy: bool
    clients: int
    buffered: bool = False  # the diagnosis: answers written in one write


SETUPS = (
    Setup("demo setup (fault proxy at rate 0), 8 clients", True, 8),
    Setup("demo setup (fault proxy at rate 0), 1 client", True, 1),
    Setup("no fault proxy, 8 clients", False, 8),
    Setup("demo setup, answers written in one write, 8 clients", True, 8, buffered=True),
    Setup("demo setup, answers written in one write, 1 client", True, 1, buffered=True),
)
WARMUP = 10
FLOOR_REQUESTS = 30


def run(
    requests: int = 300, demo: bool = True, say: Callable[[str], None] = lambda _: None, quick: bool = False
) -> dict[str, Any]:
    """`requests` per run with 8 clients; a third of that with 1 client. `quick`: one setup only."""
    rows = []
    for setup in SETUPS[-1:] if quick else SETUPS:
        count = requests if setup.clients > 1 else max(1, requests // 3)
        say(f"service: {setup.label}, {count} requests")
        with _buffered_answers(setup.buffered):
            measured = _load(count, setup.proxy, setup.clients, floor=3 if quick else FLOOR_REQUESTS)
        rows.append({**attrs.asdict(setup), "requests": count, **measured})
    result: dict[str, Any] = {"rows": rows}
    if demo:
        say("service: sendguard demo --json (its defaults: 120 requests, 8 clients, fault rate 0.2)")
        result["demo"] = _demo()
    return result


def _load(requests: int, proxy: bool, clients: int, floor: int = FLOOR_REQUESTS) -> dict[str, Any]:
    from adapters.local.demo import DemoOptions
    from adapters.local.service import LocalService

    options = attrs.evolve(DemoOptions(fault_rate=0.0).service(), always_proxy=proxy)
    function: list[tuple[float, float]] = []
    lock = threading.Lock()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        stack.enter_context(contextlib.redirect_stdout(sink))
        stack.enter_context(awstime.installed())
        service = stack.enter_context(LocalService(options))
        handler = service.gateway.handler

        def timed(event: dict[str, Any], context: Any) -> Any:
            with awstime.timing() as inside:
                started = time.perf_counter()
                answer = handler(event, context)
                spent = time.perf_counter() - started
            with lock:
                function.append((spent, inside.seconds))
            return answer

        service.gateway.handler = timed
        _drive(service.url, min(WARMUP, requests), min(clients, WARMUP))
        function.clear()
        cpu = os.times()
        started = time.perf_counter()
        latencies, statuses = _drive(service.url, requests, clients)
        wall = time.perf_counter() - started
        cpu_after = os.times()
        with lock:
            measured = list(function)
        floor_latencies, _ = _drive(service.url, floor, 1, method="GET", path="/no-such-route")
    cpu_seconds = (cpu_after.user - cpu.user) + (cpu_after.system - cpu.system)
    spent = [s for s, _ in measured]
    inside = [i for _, i in measured]
    return {
        "answers": statuses,
        "seconds": round(wall, 3),
        "requests_per_second": round(requests / wall, 1),
        "p50_ms": stats.ms(stats.percentile(latencies, 50)),
        "p99_ms": stats.ms(stats.percentile(latencies, 99)),
        "function_p50_ms": stats.ms(stats.percentile(spent, 50)),
        "aws_calls_p50_ms": stats.ms(stats.percentile(inside, 50)),
        "aws_share": round(sum(inside) / sum(spent), 3) if spent else None,
        "cpu_cores_busy": round(cpu_seconds / wall, 2),
        "no_aws_route_p50_ms": stats.ms(stats.percentile(floor_latencies, 50)),
    }


@contextlib.contextmanager
def _buffered_answers(on: bool) -> Iterator[None]:
    """While on, the gateway's and the fault proxy's request handlers write through a buffered `wfile`
    (flushed once per request by `http.server`): each answer leaves in one write."""
    from adapters.local import fault_proxy, gateway

    handlers: tuple[type[BaseHTTPRequestHandler], ...] = (gateway._Handler, fault_proxy._Handler)
    saved = [handler.wbufsize for handler in handlers]
    if on:
        for handler in handlers:
            handler.wbufsize = -1
    try:
        yield
    finally:
        for handler, size in zip(handlers, saved, strict=True):
            handler.wbufsize = size


def _drive(
    url: str, requests: int, clients: int, method: str = "POST", path: str = "/messages"
) -> tuple[list[float], dict[str, int]]:
    """`requests` requests (new messages) from `clients` threads, each on its own keep-alive
    connection."""
    parts = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        try:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                headers = {"Content-Type": "application/json", "Idempotency-Key": f"svc-{uuid.uuid4().hex}"}
                started = time.perf_counter()
                text = body(index) if method == "POST" else None
                connection.request(method, path, body=text, headers=headers)
                response = connection.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
        finally:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return latencies, statuses


def _demo() -> dict[str, Any]:
    command = [str(Path(sys.executable).with_name("sendguard")), "demo", "--json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    wall = time.perf_counter() - started
    report = json.loads(result.stdout)
    load = report["seconds"]["load"]
    return {
        "command": "sendguard demo --json",
        "exit_code": result.returncode,
        "ok": report["ok"],
        "requests": report["requests"],
        "concurrency": report["concurrency"],
        "fault_rate": report["fault_rate"],
        "answers": report["answers"],
        "faults_injected": report["faults_injected"],
        "aws_requests": report["aws_requests"],
        "seconds": report["seconds"],
        "requests_per_second_load": round(report["requests"] / load, 1) if load else None,
        "wall_seconds": round(wall, 1),
    }
