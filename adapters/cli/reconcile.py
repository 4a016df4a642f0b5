"""`sendguard reconcile`: one reconciler pass from a shell, its summary printed."""

from __future__ import annotations

import argparse
import json
import os
import sys

from adapters.ops.progress import Progress
from adapters.runtime.clients import now_ms
from adapters.runtime.config import Config
from adapters.runtime.logs import configure
from adapters.runtime.reconciler import PassSummary, reconcile_pass
from adapters.runtime.runner import Aws


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sendguard reconcile", description="Run one reconciler pass.")
    parser.add_argument("--table", default=os.environ.get("SENDGUARD_TABLE"))
    parser.add_argument("--queue-url", default=os.environ.get("SENDGUARD_QUEUE_URL"))
    parser.add_argument("--seconds", type=int, default=60, help="time budget of the pass (default 60)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parser.parse_args(argv)
    if not args.table or not args.queue_url:
        parser.error("--table and --queue-url (or SENDGUARD_TABLE and SENDGUARD_QUEUE_URL) are required")
    env = {**os.environ, "SENDGUARD_TABLE": args.table, "SENDGUARD_QUEUE_URL": args.queue_url}
    config = Config.from_env(env)
    configure(config.log_level, stream=sys.stderr)
    progress = Progress("reconcile")

    def show(summary: PassSummary) -> None:
        detail = f"redriven {summary.redriven}, expired {summary.expired}, exhausted {summary.exhausted}"
        progress.update(summary.records_read, f"records read; {detail}, failed {summary.failed}")

    deadline = now_ms() + 1000 * args.seconds
    summary = reconcile_pass(Aws.from_config(config), config, deadline, progress=show)
    progress.close()
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        for name, value in summary.as_dict().items():
            print(f"{name:>18}: {value}")
    return 0
