"""The `serve` command's arguments and printing; the work is `adapters.local.serve`'s."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable

from adapters.local.serve import DEFAULT_PORT, banner, serve_until
from adapters.local.serve import __doc__ as serve_doc
from adapters.local.service import LocalService, ServiceError, ServiceOptions
from adapters.runtime.clients import LAMBDA_MAX_TIMEOUT_S


def main(
    argv: list[str],
    *,
    stop: threading.Event | None = None,
    ready: Callable[[str], None] | None = None,
) -> int:
    """`stop` and `ready` (called with the base URL) let a test run it in a thread."""
    parser = argparse.ArgumentParser(prog="sendguard serve", description=(serve_doc or "").split("\n\n")[0])
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
    if not 1 <= args.lambda_timeout <= LAMBDA_MAX_TIMEOUT_S:
        parser.error(f"--lambda-timeout must be in 1..{LAMBDA_MAX_TIMEOUT_S} seconds (Lambda's)")
    if not args.seconds >= 0:  # nan too
        parser.error("--seconds must be 0 (until Ctrl-C) or more")
    if not args.reconcile_every >= 0:
        parser.error("--reconcile-every must be 0 (no passes) or more")
    options = ServiceOptions(
        endpoint_url=args.endpoint_url,
        table=args.table,
        queue_url=args.queue_url,
        fault_rate=args.fault_rate,
        seed=args.seed,
        always_proxy=True,  # moto takes one request at a time through it (see adapters.local.fault_proxy)
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
            serve_until(service, stop, args.seconds, args.reconcile_every)
    except ServiceError as exc:
        print(f"sendguard serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsendguard serve: stopped", file=sys.stderr)
    return 0
