"""The `audit` command's arguments and printing; the work is `adapters.ops.audit`'s."""

from __future__ import annotations

import argparse
import json
import sys

import attrs

from adapters.cli import table_options
from adapters.ops.audit import __doc__ as audit_doc
from adapters.ops.audit import audit
from adapters.runtime.clients import now_ms
from adapters.runtime.logs import configure
from adapters.runtime.runner import Aws


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sendguard audit", description=audit_doc)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--grace-seconds",
        type=int,
        default=120,
        help="an expired lease counts as an orphan once it is this old (default 120: two passes)",
    )
    table_options.add_table_options(parser)
    args = parser.parse_args(argv)
    if args.grace_seconds < 0:  # a lease not yet expired would count as an orphan
        parser.error(f"--grace-seconds must be 0 or more (got {args.grace_seconds})")
    with table_options.aws_environment(args):
        config = table_options.checked(args, index=False)  # a scan: the index is not read
        configure("WARNING", stream=sys.stderr)
        store = Aws.from_config(config).dynamodb  # its body bucket too: bodies are read from there only
        report = audit(store, now_ms(), 1000 * args.grace_seconds)
    if args.json:
        print(json.dumps({**attrs.asdict(report), "ok": report.ok}))
    else:
        print(f"records: {report.records}  " + "  ".join(f"{k}: {v}" for k, v in report.phases.items()))
        for orphan in report.orphans:
            print(f"ORPHAN     {orphan['message_id']}: lease expired {orphan['lease_expired_ms_ago']} ms ago")
        for exhausted in report.exhausted:
            attempts, error = exhausted["attempts"], exhausted["last_error"]
            print(f"EXHAUSTED  {exhausted['message_id']}: {attempts} attempts, last error {error}")
        for violation in report.violations:
            print(f"VIOLATION  {violation}")
        print("ok" if report.ok else "FAILED")
    return 0 if report.ok else 1
