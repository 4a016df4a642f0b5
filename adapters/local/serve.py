"""`sendguard serve`: the submit API over local HTTP, for a person with curl.

The local gateway in front of the real submit function, on an embedded moto server (a fresh table and
queue) or on `--endpoint-url` (the table and queue are created if missing), or on AWS with `--table`
and `--queue-url`. The reconciler function runs every `--reconcile-every` seconds, as its schedule
would on AWS. The function's JSON log lines go to stdout, as on Lambda; the banner goes to stderr.
It serves until Ctrl-C (or `--seconds`). Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time

from adapters.local.service import EMBEDDED, LocalService

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
        # This interpreter's own `-m adapters.cli`, not `sendguard`: that script is on PATH only
        # while the virtualenv is active, and these lines must work as printed in any shell.
        env = (
            f"AWS_ENDPOINT_URL={service.upstream} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
            "AWS_DEFAULT_REGION=us-east-1"
        )
        command = f"{shlex.quote(sys.executable)} -m adapters.cli"
        lines += ["", "  the same data from another shell:"]
        lines += [
            f"  {env} {command} {what} --table {service.table}"
            for what in ("audit", "status", "redrive --exhausted --dry-run")
        ]
    lines += ["", "Ctrl-C stops it. The function's JSON logs follow on stdout."]
    return "\n".join(lines)


def serve_until(service: LocalService, stop: threading.Event, seconds: float, every: float) -> None:
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
