"""`sendguard audit`: reads every record (a scan: this is an operator's tool, not a hot path) and
judges each with statemodel's invariants — its history replays to its projection through allowed
transitions only, its message is what was accepted, its index keys match its phase, it carries the
table's TTL attribute only once confirmed (records past it are skipped: as good as deleted) — and lists the
in-flight records whose lease expired (orphans, once the reconciler had its chance) and the exhausted
re-drives. Exit 1 on any violation."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any, Protocol

import attrs

from adapters.runtime.codec import EXPIRES_AT, index_keys
from adapters.runtime.layout import TableLayout
from statemodel.attention import DEFAULT_SHARDING, Shards, attention_key
from statemodel.invariants import history_problems, metadata_problems
from statemodel.records import Phase
from statemodel.stored import Stored
from statemodel.validation import message_problems


class Scanned(Protocol):
    """What the audit reads: every record of the table with what it decodes to (its body read from
    where it is kept), and the table's layout (`adapters.runtime.store.DynamoStore` on AWS)."""

    @property
    def layout(self) -> TableLayout: ...

    def scan(self) -> Iterator[tuple[dict[str, Any], Stored | Exception]]: ...


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


def audit(store: Scanned, now: int, grace_ms: int) -> AuditReport:
    report = AuditReport()
    phases: collections.Counter[str] = collections.Counter()
    for item, decoded in store.scan():
        report.records += 1
        message_id = item.get(store.layout.partition_key, {}).get("S", "?")
        if isinstance(decoded, Exception):
            report.violations.append(f"{message_id}: unreadable item: {decoded}")
            continue
        phases[decoded.record.phase.value] += 1
        report.violations += record_problems(item, decoded, store.layout.shards)
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


def record_problems(item: dict[str, Any], stored: Stored, shards: Shards = DEFAULT_SHARDING) -> list[str]:
    """What is wrong with one record. Its index entry may sit in any shard a count up to
    `shards.read` puts it in (written before the count changed); kind and time must match."""
    record, history = stored.record, stored.history
    problems = history_problems(record, history) + metadata_problems(record, history)
    problems += message_problems(record.message)
    if EXPIRES_AT in item and record.phase is not Phase.CONFIRMED:
        problems.append(
            f"{record.message_id}: {EXPIRES_AT} on a {record.phase.value} record: the table's TTL would "
            "delete a record that is not settled"
        )
    key = attention_key(record, shards)
    stored_key = index_keys(item)
    if key is not None and stored_key[0] is not None and stored_key[1] == key[1]:
        kind, _, shard = stored_key[0].partition("#")
        same_kind = kind == key[0].partition("#")[0]
        if same_kind and shard.isdigit() and int(shard) in shards.possible(record.message_id):
            return problems
    if stored_key != (key or (None, None)):
        problems.append(f"{record.message_id}: index keys {stored_key} do not match its phase {key}")
    return problems


__all__ = ["AuditReport", "audit"]
