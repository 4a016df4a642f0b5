"""`sendguard serve`: the submit API over local HTTP, for a person with curl.

The local gateway in front of the real submit function, on an embedded moto server (a fresh table and
queue) or on `--endpoint-url` (the table and queue are created if missing), or on AWS with `--table`
and `--queue-url`. The reconciler function runs every `--reconcile-every` seconds, as its schedule
would on AWS. The function's JSON log lines go to stdout, as on Lambda; the banner goes to stderr.
It serves until Ctrl-C (or `--seconds`). Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from adapters.local_service import EMBEDDED, LocalService, ServiceError, ServiceOptions

DEFAULT_PORT = 8080
EXAMPLE_BODY = '{"payload": {"hello": "world"}}'


def banner(service: LocalService, port: int) -> str:
    where = service.mode + (f" at {service.upstream}" if service.upstream else "")
    lines = [
        f"sendguard serve: the submit API on {service.url} ({where}; table {service.table})",
        "",
        f"  curl -s -X POST localhost:{port}/messages -H 'Idempotency-Key: k1' -d '{EXAMPLE_BODY}'",
        f"  curl -s localhost:{port}/messages/MESSAGE_ID",
    ]
    if service.proxy and service.proxy.rate > 0:
        lines.append(f"  faults: {service.proxy.rate:.2f} of AWS requests, through {service.proxy.endpoint}")
    if service.mode == EMBEDDED:
        lines += [
            "",
            "  the same data from another shell:",
            f"  AWS_ENDPOINT_URL={service.upstream} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local "
            f"AWS_DEFAULT_REGION=us-east-1 sendguard audit --table {service.table}",
        ]
    lines += ["", "Ctrl-C stops it. The function's JSON logs follow on stdout."]
    return "\n".join(lines)


def main(
    argv: list[str],
    *,
    stop: threading.Event | None = None,
    ready: Callable[[str], None] | None = None,
) -> int:
    """`stop` and `ready` (called with the base URL) let a test run it in a thread."""
    parser = argparse.ArgumentParser(prog="sendguard serve", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free port"
    )
    parser.add_argument("--endpoint-url", help="AWS endpoint to use instead of the embedded moto server")
    parser.add_argument("--table", help="an existing table (on AWS, with --queue-url)")
    parser.add_argument("--queue-url", help="an existing queue (on AWS, with --table)")
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="put the fault proxy in front (default 0)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lambda-timeout", type=int, default=10, help="the function's timeout, seconds")
    parser.add_argument(
        "--reconcile-every", type=float, default=60.0, help="seconds between reconciler passes (0: none)"
    )
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: Ctrl-C)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be in 0..65535")
    if not 0.0 <= args.fault_rate <= 1.0:
        parser.error("--fault-rate must be in [0, 1]")
    options = ServiceOptions(
        endpoint_url=args.endpoint_url,
        table=args.table,
        queue_url=args.queue_url,
        fault_rate=args.fault_rate,
        seed=args.seed,
        always_proxy=True,  # moto takes one request at a time through it (see adapters.fault_proxy)
        lambda_timeout_ms=1000 * args.lambda_timeout,
        port=args.port,
        name="sendguard-local",
    )
    stop = stop or threading.Event()
    try:
        with LocalService(options) as service:
            port = int(service.url.rsplit(":", 1)[1])
            print(banner(service, port), file=sys.stderr, flush=True)
            if ready is not None:
                ready(service.url)
            _serve(service, stop, args.seconds, args.reconcile_every)
    except ServiceError as exc:
        print(f"sendguard serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsendguard serve: stopped", file=sys.stderr)
    return 0


def _serve(service: LocalService, stop: threading.Event, seconds: float, every: float) -> None:
    ends = time.monotonic() + seconds if seconds > 0 else None
    next_pass = time.monotonic() + every if every > 0 else None
    while not stop.is_set():
        now = time.monotonic()
        if ends is not None and now >= ends:
            return
        if next_pass is not None and now >= next_pass:
            try:
                service.reconcile()
            except Exception as exc:  # the function logged it; the next pass tries again
                print(f"sendguard serve: a reconciler pass failed: {type(exc).__name__}", file=sys.stderr)
            next_pass = time.monotonic() + every
        stop.wait(0.5)
