"""`sendguard status`: the backlog in the sparse index, by kind — in flight, pending, exhausted — with
how many are due now and the age of the oldest due one, from counting queries (no scan); and the
waiting records by the queue each names (each record's queue read, the first 1,000). Exit 0.

Ages: in flight, since its lease expired; pending, since its last transition (a pass re-drives it
once that is `SENDGUARD_REDRIVE_AFTER_SECONDS` or more); exhausted, since it was flagged.
"""

from __future__ import annotations

import argparse
import json
import sys

from adapters.cli import table_options
from adapters.ops.backlog import backlog, queues
from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.logs import configure
from adapters.runtime.store import DynamoStore


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sendguard status", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the backlog as one JSON object")
    table_options.add_table_options(parser)
    args = parser.parse_args(argv)
    with table_options.aws_environment(args):
        config = table_options.checked(args, index=True)
        configure("WARNING", stream=sys.stderr)
        store = DynamoStore(make_client("dynamodb", config.aws_max_attempts), config.table, config.layout)
        report = backlog(store, now_ms(), config.settings).as_dict()
        by_queue = queues(store)
    if args.json:
        print(json.dumps({"table": config.table, **report, "queues": by_queue.as_dict()}))
        return 0
    print(f"backlog of {config.table} ({report['queries']} index queries)")
    print(f"  {'kind':<10} {'waiting':>8} {'due':>8}  oldest due")
    for kind, row in report["kinds"].items():
        age = row["oldest_due_age_seconds"]
        print(f"  {kind:<10} {row['waiting']:>8} {row['due']:>8}  {'-' if age is None else f'{age:.0f} s'}")
    first = "" if by_queue.complete else f" (the first {by_queue.read})"
    failed = f"; {by_queue.failed_reads} read(s) failed" if by_queue.failed_reads else ""
    print(f"waiting by queue{first}{failed}: each queue's reconciler re-drives its own")
    for queue, count in by_queue.counts.items():
        print(f"  {count:>8}  {queue}")
    return 0
