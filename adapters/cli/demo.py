"""The `demo` command's arguments and printing; the work is `adapters.local.demo`'s."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from adapters.local.demo import (
    DEFAULT_CONCURRENCY,
    DEFAULT_FAULT_RATE,
    DEFAULT_REQUESTS,
    DEFAULT_SEED,
    DemoOptions,
    render,
    run,
)
from adapters.local.demo import __doc__ as demo_doc
from adapters.local.service import ServiceError
from adapters.runtime.clients import LAMBDA_MAX_TIMEOUT_S


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sendguard demo",
        description=(demo_doc or "").split("\n\n")[0],
        epilog="exit status: 0 every promise kept on a settled table (and every accepted message's effect "
        "applied exactly once); 1 a promise broken; 2 the service could not start; 3 no promise broken, "
        "but records still waiting at the settle bound (or messages the consumer did not reach)",
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="POSTs to send (default 120)")
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="clients at once (default 8)"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=None,
        help=f"share of AWS requests that meet a fault (default {DEFAULT_FAULT_RATE}; 0 on a deployment)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the plan's and the faults' seed")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--endpoint-url", help="run against this AWS endpoint (table and queue made if missing)"
    )
    parser.add_argument("--table", help="an existing table (on AWS, with --queue-url)")
    parser.add_argument("--queue-url", help="an existing queue (on AWS, with --table)")
    parser.add_argument(
        "--aws-max-attempts", type=int, default=3, help="the SDK's attempts per call (default 3)"
    )
    parser.add_argument(
        "--lambda-timeout", type=int, default=10, help="the function's timeout, seconds (default 10)"
    )
    parser.add_argument("--log-file", help="write the function's JSON log lines here (for check-trace)")
    parser.add_argument(
        "--consumer",
        choices=["transactional", "guarded", "none"],
        help="the ready consumer's mode (default transactional on the embedded server; none elsewhere)",
    )
    parser.add_argument(
        "--consumer-fault-rate",
        type=float,
        default=None,
        help="share of the consumer's deliveries and DynamoDB calls meeting a fault (default: --fault-rate)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 10_000:
        parser.error("--requests must be in 1..10000")
    if not 1 <= args.concurrency <= 64:
        parser.error("--concurrency must be in 1..64")
    if args.fault_rate is not None and not 0.0 <= args.fault_rate <= 1.0:
        parser.error("--fault-rate must be in [0, 1]")
    if args.consumer_fault_rate is not None and not 0.0 <= args.consumer_fault_rate <= 1.0:
        parser.error("--consumer-fault-rate must be in [0, 1]")
    if not 1 <= args.aws_max_attempts <= 10:
        parser.error("--aws-max-attempts must be in 1..10")
    if not 5 <= args.lambda_timeout <= LAMBDA_MAX_TIMEOUT_S:
        parser.error(f"--lambda-timeout must be in 5..{LAMBDA_MAX_TIMEOUT_S} seconds")
    if args.log_file is not None:  # written at the end: found unwritable now, not after the run
        try:
            with open(args.log_file, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            parser.error(f"--log-file {args.log_file}: cannot write it: {exc.strerror}")
    options = DemoOptions(
        requests=args.requests,
        concurrency=args.concurrency,
        fault_rate=args.fault_rate,
        seed=args.seed,
        endpoint_url=args.endpoint_url,
        table=args.table,
        queue_url=args.queue_url,
        aws_max_attempts=args.aws_max_attempts,
        lambda_timeout_s=args.lambda_timeout,
        log_file=args.log_file,
        consumer=args.consumer,
        consumer_fault_rate=args.consumer_fault_rate,
    )
    try:
        report = run(options)
    except ServiceError as exc:
        print(f"sendguard demo: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else render(report))
    return exit_code(report)


NOT_SETTLED = 3  # no promise broken, but records still waited for the reconciler at the bound


def exit_code(report: dict[str, Any]) -> int:
    """0 every promise kept on a settled table; 1 a promise broken; 3 not settled, nothing broken."""
    if report["ok"]:
        return 0
    return 1 if report["broken"] else NOT_SETTLED
