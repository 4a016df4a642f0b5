"""`sendguard reconcile`: one reconciler pass from a shell, its summary printed."""

from __future__ import annotations

import argparse
import json
import sys

from adapters.cli import table_options
from adapters.ops.progress import Progress
from adapters.runtime.clients import LAMBDA_MAX_TIMEOUT_S, now_ms
from adapters.runtime.config import Config
from adapters.runtime.logs import configure
from adapters.runtime.reconciler import PassSummary, reconcile_pass
from adapters.runtime.runner import Aws


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sendguard reconcile", description="Run one reconciler pass.")
    parser.add_argument(
        "--seconds",
        type=int,
        default=60,
        help=f"time budget of the pass, 1 to {LAMBDA_MAX_TIMEOUT_S} (default 60); each claim's lease "
        "lasts to its end",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    table_options.add_table_options(parser, queue=True)
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= LAMBDA_MAX_TIMEOUT_S:  # a pass that dies leaves its claims until its end
        parser.error(
            f"--seconds must be in 1..{LAMBDA_MAX_TIMEOUT_S}, as a reconciler function's timeout "
            f"(got {args.seconds})"
        )
    with table_options.aws_environment(args):
        config = table_options.checked(args, index=True)
        summary = _pass(config, args.seconds)
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        for name, value in summary.as_dict().items():
            print(f"{name:>18}: {value}")
    return 0


def _pass(config: Config, seconds: int) -> PassSummary:
    configure(config.log_level, stream=sys.stderr)
    progress = Progress("reconcile")

    def show(summary: PassSummary) -> None:
        detail = f"redriven {summary.redriven}, expired {summary.expired}, exhausted {summary.exhausted}"
        progress.update(summary.records_read, f"records read; {detail}, failed {summary.failed}")

    deadline = now_ms() + 1000 * seconds
    summary = reconcile_pass(Aws.from_config(config), config, deadline, progress=show)
    progress.close()
    return summary
