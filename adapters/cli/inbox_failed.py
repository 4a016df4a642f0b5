"""`sendguard inbox-failed`: the consumer's messages the inbox gave up on (FAILED, after
`max_receives` receives), with their last error; `--rearm` gives each a fresh receive budget once its
cause is fixed.

The records are found through the `attention` index's INBOX_FAILED partition (a query), or by a scan
on a table without the index. A re-arm is one write conditioned on the record as read: a record
that changed in between is skipped and reported. The messages themselves are on the queue's
dead-letter queue by then (or on their way there): after a re-arm, move them back to the source
queue (`aws sqs start-message-move-task --source-arn <DLQ ARN>`), and the next delivery of each runs
its handler again. Exit 0, or 1 when some re-arm failed on AWS.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from adapters.cli import table_options
from adapters.runtime.clients import make_client
from adapters.runtime.inbox import Inbox, InboxRearmResult, InboxView
from adapters.runtime.inbox_codec import DEFAULT_KEY_PREFIX
from adapters.runtime.logs import configure
from adapters.runtime.rearm import InvalidRearm, check_request, default_operator

DEFAULT_REASON = "sendguard inbox-failed --rearm"
KEY_PREFIX = "SENDGUARD_INBOX_KEY_PREFIX"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sendguard inbox-failed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rearm", action="store_true", help="re-arm every message listed")
    parser.add_argument("--limit", type=int, help="list (and re-arm) at most this many messages")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--reason", default=DEFAULT_REASON, help="why (stored in each record's history)")
    parser.add_argument("--by", default=default_operator(), help="who asks (default: user@host)")
    parser.add_argument(
        "--inbox-key-prefix",
        default=None,
        help=f"what the inbox's record keys start with (${KEY_PREFIX}, default {DEFAULT_KEY_PREFIX})",
    )
    table_options.add_table_options(parser)
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        check_request(args.by, args.reason)
    except InvalidRearm as exc:
        parser.error(str(exc))
    with table_options.aws_environment(args):
        config = table_options.checked(args, index=False)
        configure(config.log_level, stream=sys.stderr)
        env = table_options.environ(args)
        prefix = args.inbox_key_prefix or env.get(KEY_PREFIX) or DEFAULT_KEY_PREFIX
        client = make_client("dynamodb", config.aws_max_attempts)
        inbox = Inbox(config.table, layout=config.layout, key_prefix=prefix, client=client)
        listed = list(inbox.failed(limit=args.limit))
        rearmed = [inbox.rearm(v.key, args.reason, by=args.by) for v in listed] if args.rearm else []
    report = _report(config.table, listed, rearmed, args)
    print(json.dumps(report) if args.json else render(report))
    return 1 if any(r["outcome"] == "failed" for r in report["rearmed"]) else 0


def _report(
    table: str, listed: list[InboxView], rearmed: list[InboxRearmResult], args: argparse.Namespace
) -> dict[str, Any]:
    return {
        "table": table,
        "failed": [
            {
                "key": v.key,
                "receives": v.receives,
                "last_error": v.last_error,
                "last_error_message": v.last_error_message,
                "failed_at": datetime.fromtimestamp(v.updated_at / 1000, UTC).isoformat(),
                "body_hash": v.body_hash,
            }
            for v in listed
        ],
        "rearmed": [{"key": r.key, "outcome": r.outcome, "failure": r.failure} for r in rearmed],
        "by": args.by if args.rearm else None,
        "reason": args.reason if args.rearm else None,
    }


def render(report: dict[str, Any]) -> str:
    lines = [f"{len(report['failed'])} failed message(s) in the inbox of {report['table']}"]
    for f in report["failed"]:
        lines.append(f"  FAILED   {f['key']}  {f['receives']} receive(s), last error {f['last_error']}")
        if f["last_error_message"]:
            lines.append(f"           said: {f['last_error_message']}")
        lines.append(f"           failed at {f['failed_at']}")
    for r in report["rearmed"]:
        why = f"  {r['failure']}" if r["failure"] else ""
        lines.append(f"  {r['outcome'].upper().replace('_', '-'):<8} {r['key']}{why}")
    if any(r["outcome"] == "rearmed" for r in report["rearmed"]):
        lines.append(
            "move their messages back from the dead-letter queue (aws sqs start-message-move-task "
            "--source-arn <DLQ ARN>): the next delivery of each runs its handler again"
        )
    return "\n".join(lines)
