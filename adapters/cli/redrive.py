"""`sendguard redrive --exhausted`: re-arm the exhausted records, once their cause is fixed, so that the
reconciler re-drives them.

The records are found through the sparse index's EXHAUSTED partitions (queries, never a scan), oldest
exhaustion first, narrowed by `--code` (the last error's code) and `--since` (exhausted at or after).
Each is re-armed with one write conditioned on its status and version as read: a record that changed
in between is skipped and reported, never overwritten. The reconciler re-drives a re-armed record at
its first pass `SENDGUARD_REDRIVE_AFTER_SECONDS` (default 60) or more after the re-arm. Progress goes
to stderr; the report to stdout. Exit 0 when nothing failed, 1 when some re-arm failed on AWS.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from adapters.cli import table_options
from adapters.ops.backlog import exhausted
from adapters.ops.progress import Progress
from adapters.runtime.clients import now_ms
from adapters.runtime.config import Config
from adapters.runtime.logs import configure
from adapters.runtime.metrics import REARM_METRICS, Tally, documents, publish
from adapters.runtime.rearm import (
    FAILED,
    REARMED,
    WOULD_REARM,
    InvalidRearm,
    RearmResult,
    check_request,
    default_operator,
    rearm,
)
from adapters.runtime.runner import Aws

DEFAULT_REASON = "sendguard redrive --exhausted"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sendguard redrive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exhausted", action="store_true", help="re-arm exhausted records (required)")
    parser.add_argument("--code", help="only records whose last error has this code (e.g. AccessDenied)")
    parser.add_argument(
        "--since", help="only records exhausted at or after this ISO-8601 time (UTC if no zone)"
    )
    parser.add_argument("--limit", type=int, help="re-arm at most this many records")
    parser.add_argument("--dry-run", action="store_true", help="list what would be re-armed; write nothing")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--reason", default=DEFAULT_REASON, help="why (stored in each record's history)")
    parser.add_argument("--by", default=default_operator(), help="who asks (default: user@host)")
    table_options.add_table_options(parser)
    args = parser.parse_args(argv)
    if not args.exhausted:
        parser.error(
            "--exhausted is required: only exhausted records are re-armed (the reconciler re-drives the rest)"
        )
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    since = _since(parser, args.since)
    try:
        check_request(args.by, args.reason)
    except InvalidRearm as exc:
        parser.error(str(exc))
    with table_options.aws_environment(args):
        config = table_options.checked(args, index=True)  # a re-arm sends nothing: no queue
        configure(config.log_level, stream=sys.stderr)
        report = redrive(args, since, config)
    print(json.dumps(report) if args.json else render(report))
    return 1 if report["failed"] else 0


def redrive(args: argparse.Namespace, since: int | None, config: Config) -> dict[str, Any]:
    aws = Aws.from_config(config)  # a re-arm writes the record and sends nothing
    store = aws.dynamodb
    tally = Tally()
    progress = Progress("redrive", args.limit)
    read = [0]

    def on_page(items: int) -> None:
        read[0] += items

    results: list[RearmResult] = []
    rearmed = 0
    for stored in exhausted(store, since_ms=since, code=args.code, on_page=on_page):
        if args.limit is not None and rearmed >= args.limit:
            break
        result = rearm(
            aws,
            stored.record.message.record_key,
            reason=args.reason,
            by=args.by,
            max_attempts=config.settings.max_attempts,
            found=stored,
            dry_run=args.dry_run,
            tally=tally,
        )
        results.append(result)
        rearmed += result.outcome in (REARMED, WOULD_REARM)
        progress.update(rearmed, f"{len(results) - rearmed} skipped, {read[0]} read from the index")
    progress.close()
    if not args.dry_run and config.metrics:
        publish(documents(REARM_METRICS, tally, now_ms(), config.metrics_namespace))
    done = [r.as_dict() for r in results if r.outcome in (REARMED, WOULD_REARM)]
    return {
        "table": config.table,
        "dry_run": args.dry_run,
        "rearmed" if not args.dry_run else "would_rearm": done,
        "skipped": [r.as_dict() for r in results if r.outcome not in (REARMED, WOULD_REARM, FAILED)],
        "failed": [r.as_dict() for r in results if r.outcome == FAILED],
        "index_items_read": read[0],
        "by": args.by,
        "reason": args.reason,
    }


def render(report: dict[str, Any]) -> str:
    key = "would_rearm" if report["dry_run"] else "rearmed"
    verb = "would re-arm" if report["dry_run"] else "re-armed"
    lines = [f"{verb} {len(report[key])} exhausted record(s) in {report['table']}"]
    lines += [
        f"  {verb.upper().replace(' ', '-'):<12} {r['message_id']}  last error {r['last_error']}"
        for r in report[key]
    ]
    lines += [
        f"  SKIPPED      {r['message_id']}  {r['outcome'].replace('_', ' ')}" for r in report["skipped"]
    ]
    lines += [f"  FAILED       {r['message_id']}  {r['failure']}" for r in report["failed"]]
    if report[key] and not report["dry_run"]:
        lines.append("the reconciler re-drives them at its next pass after SENDGUARD_REDRIVE_AFTER_SECONDS")
    return "\n".join(lines)


def _since(parser: argparse.ArgumentParser, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        parser.error(f"--since {text!r} is not an ISO-8601 time (e.g. 2026-12-01T09:30:00Z)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
