"""`sendguard audit`: reads every record (a scan: this is an operator's tool, not a hot path) and
judges each with statemodel's invariants — its history replays to its projection through allowed
transitions only, its message is what was accepted, its index keys match its phase — and lists the
in-flight records whose lease expired (orphans, once the reconciler had its chance) and the exhausted
re-drives. Exit 1 on any violation."""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from typing import Any

import attrs

from adapters.aws import make_client, now_ms
from adapters.logs import configure
from adapters.store import DynamoStore
from statemodel.attention import attention_key
from statemodel.invariants import history_problems, metadata_problems
from statemodel.records import Phase
from statemodel.validation import message_problems
from statemodel.world import Stored


@attrs.define
class AuditReport:
    records: int = 0
    phases: dict[str, int] = attrs.field(factory=dict)
    orphans: list[dict[str, Any]] = attrs.field(factory=list)
    exhausted: list[dict[str, Any]] = attrs.field(factory=list)
    violations: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations and not self.orphans


def audit(store: DynamoStore, now: int, grace_ms: int) -> AuditReport:
    report = AuditReport()
    phases: collections.Counter[str] = collections.Counter()
    for item, decoded in store.scan():
        report.records += 1
        message_id = item.get("message_id", {}).get("S", "?")
        if isinstance(decoded, Exception):
            report.violations.append(f"{message_id}: unreadable item: {decoded}")
            continue
        phases[decoded.record.phase.value] += 1
        report.violations += record_problems(item, decoded)
        record = decoded.record
        if record.phase is Phase.IN_FLIGHT and (record.lease_expires_at or 0) + grace_ms <= now:
            report.orphans.append(
                {
                    "message_id": record.message_id,
                    "attempt_id": record.attempt_id,
                    "lease_expired_ms_ago": now - (record.lease_expires_at or 0),
                    "correlation_id": record.message.correlation_id,
                }
            )
        if record.phase is Phase.EXHAUSTED:
            error = record.last_error
            report.exhausted.append(
                {
                    "message_id": record.message_id,
                    "attempts": record.attempts,
                    "last_error": None if error is None else f"{error.category}:{error.code}",
                    "correlation_id": record.message.correlation_id,
                }
            )
    report.phases = dict(sorted(phases.items()))
    return report


def record_problems(item: dict[str, Any], stored: Stored) -> list[str]:
    record, history = stored.record, stored.history
    problems = history_problems(record, history) + metadata_problems(record, history)
    problems += message_problems(record.message)
    key = attention_key(record)
    stored_key = (
        item["attention"]["S"] if "attention" in item else None,
        int(item["attention_at"]["N"]) if "attention_at" in item else None,
    )
    if stored_key != (key or (None, None)):
        problems.append(f"{record.message_id}: index keys {stored_key} do not match its phase {key}")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sendguard audit", description=__doc__)
    parser.add_argument("--table", default=os.environ.get("SENDGUARD_TABLE"), required=False)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--grace-seconds",
        type=int,
        default=120,
        help="an expired lease counts as an orphan once it is this old (default 120: two passes)",
    )
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("--table (or SENDGUARD_TABLE) is required")
    configure("WARNING", stream=sys.stderr)
    store = DynamoStore(make_client("dynamodb", 5), args.table)
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


__all__ = ["AuditReport", "audit", "main"]
