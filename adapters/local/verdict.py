"""The demo's verdict: from what the clients were told, what the table and the queue hold at the end,
what the fault proxy did and what the function logged, it judges the promises — with statemodel's own
definitions (`orphans`, `lost`, `duplicate_problems`) and the audit's record checks — and explains
every duplicate by the faults that hit that message.

A message may be on the queue more than once only where its sender could not know a send had landed.
Each send SQS accepted that the record does not confirm needs a reason: its SendMessage was applied
and the answer lost (a reset after moto applied it, an answer held past the read timeout, an answer
that came late on its own), or it was answered but its confirm write failed, so the record stayed in
flight until the reconciler rolled the lease back and sent again. A send with no reason is an
unexplained duplicate, and fails the run. Without the proxy (a real deployment), the reasons are what
the record's history and the logs show: an ambiguous send failure, a failed confirm, an expired lease.
"""

from __future__ import annotations

import collections
from typing import Any

import attrs

from adapters.local.fault_proxy import ANSWERED, APPLIED, LATE, Kind, Landed, Ledger
from adapters.local.load import INVALID, Answered
from adapters.ops.audit import AuditReport
from adapters.runtime.log_events import AWS_FAILURE, ROLLBACK_FAILED
from statemodel.events import RollbackCause, RolledBack, SendConfirmed, SendFailed
from statemodel.invariants import duplicate_problems, lost, orphans
from statemodel.records import Phase
from statemodel.stored import Stored
from statemodel.validation import message_id_for_key


@attrs.frozen
class Delivery:
    sqs_id: str
    message_id: str | None  # the `message_id` message attribute
    body: str
    sent_at: int  # SentTimestamp, epoch ms


@attrs.frozen
class Evidence:
    answers: list[Answered]
    planned_ids: frozenset[str]  # the record ids this run's requests name
    invalid_ids: frozenset[str]  # ids of keys sent only with malformed bodies: nothing may exist
    stored: dict[str, Stored]  # this run's records
    foreign: list[str]  # records no request of this run names
    deliveries: list[Delivery]  # this run's messages, drained from the queue
    foreign_deliveries: int
    ledger: Ledger | None
    logs: list[dict[str, Any]]
    audit: AuditReport
    now: int
    strict: bool  # the table and queue are this run's alone (the embedded server)
    settled: bool
    function_raised: int = 0
    waiting: frozenset[str] = frozenset()  # records the settle phase left unsettled: not judged yet


@attrs.frozen
class Duplicate:
    message_id: str
    copies: int
    reasons: list[str]
    explained: bool


@attrs.frozen
class Verdict:
    orphans: list[str]
    lost: list[str]
    duplicates: list[Duplicate]
    breaches: list[str]
    settled: bool

    @property
    def unexpected_duplicates(self) -> list[Duplicate]:
        return [d for d in self.duplicates if not d.explained]

    @property
    def broken(self) -> bool:
        """A promise broke (whether or not the table settled)."""
        return bool(self.orphans or self.lost or self.unexpected_duplicates or self.breaches)

    @property
    def ok(self) -> bool:
        return self.settled and not self.broken


def judge(evidence: Evidence) -> Verdict:
    """Orphans and losses are judged on the settled records only: a record the reconciler has not
    settled yet (`Evidence.waiting`) is neither, whatever its state — the next pass settles it. A
    202 whose message is not on the queue is a loss whatever its record's state: SQS had it."""
    records = {message_id: stored.record for message_id, stored in evidence.stored.items()}
    settled = {m: r for m, r in records.items() if m not in evidence.waiting}
    copies: dict[str, list[Delivery]] = collections.defaultdict(list)
    for delivery in evidence.deliveries:
        copies[delivery.message_id or ""].append(delivery)
    delivered = set(copies)
    accepted = [
        a.message_id for a in evidence.answers if a.method == "POST" and a.status == 202 and a.message_id
    ]
    found_orphans = orphans(settled.values(), delivered, evidence.now)
    seen = {line.split(":")[0] for line in found_orphans} | evidence.waiting
    for stuck in evidence.audit.orphans:
        if stuck["message_id"] not in seen and (evidence.strict or stuck["message_id"] in records):
            found_orphans.append(
                f"{stuck['message_id']}: in flight, lease expired {stuck['lease_expired_ms_ago']} ms ago, "
                "never rolled back"
            )
    breaches = _breaches(evidence, records, copies)
    duplicates = []
    for message_id, stored in sorted(evidence.stored.items()):
        landed = _landed_order(copies.get(message_id, []), evidence.ledger)
        breaches += duplicate_problems(stored.record, stored.history, landed)
        if len(landed) > 1:
            duplicates.append(_explain(message_id, stored, landed, evidence))
    return Verdict(
        orphans=found_orphans,
        lost=lost(settled, accepted, delivered),
        duplicates=duplicates,
        breaches=breaches,
        settled=evidence.settled,
    )


def _breaches(evidence: Evidence, records: dict[str, Any], copies: dict[str, list[Delivery]]) -> list[str]:
    breaches = list(evidence.audit.violations)
    if evidence.strict:
        breaches += [f"{m}: a record no request asked for" for m in evidence.foreign]
        if evidence.foreign_deliveries:
            breaches.append(f"{evidence.foreign_deliveries} messages on the queue name no record of this run")
    for message_id, messages in copies.items():
        record = records.get(message_id)
        if record is None:
            breaches.append(f"{message_id or '(no message_id attribute)'}: on the queue, but no such record")
            continue
        breaches += [
            f"{message_id}: SQS message {m.sqs_id} carries another body than the record's payload"
            for m in messages
            if m.body != record.message.payload
        ]
    for answer in evidence.answers:
        if (
            answer.method == "POST"
            and answer.status == 202
            and answer.message_id != message_id_for_key(answer.key or "")
        ):
            breaches.append(f"request {answer.index}: 202 for {answer.message_id}, not its key's message")
        if answer.status == 0:
            breaches.append(f"request {answer.index}: no HTTP answer ({answer.method})")
    breaches += [f"{m}: a malformed request wrote a record" for m in evidence.invalid_ids if m in records]
    if evidence.function_raised:
        breaches.append(f"the function raised {evidence.function_raised} times (no exception may leave it)")
    if evidence.ledger is not None and evidence.strict:
        on_queue = {d.sqs_id for d in evidence.deliveries}
        breaches += [
            f"{s.message_id}: SQS accepted {s.sqs_id}, but it was not on the queue at the end"
            for s in evidence.ledger.sends
            if s.message_id in evidence.planned_ids and s.sqs_id not in on_queue
        ]
    return breaches


def _landed_order(messages: list[Delivery], ledger: Ledger | None) -> list[str]:
    """The record's sends in the order SQS accepted them: as the proxy saw them, else by SentTimestamp."""
    ids = {m.sqs_id for m in messages}
    order = [s.sqs_id for s in ledger.sends if s.sqs_id in ids] if ledger is not None else []
    rest = sorted((m for m in messages if m.sqs_id not in order), key=lambda m: (m.sent_at, m.sqs_id))
    return list(dict.fromkeys(order + [m.sqs_id for m in rest]))


def _explain(message_id: str, stored: Stored, landed: list[str], evidence: Evidence) -> Duplicate:
    confirmed = {e.sqs_message_id for e in stored.history if isinstance(e, SendConfirmed)}
    reasons, missing = [], 0
    for sqs_id in landed:
        if sqs_id in confirmed:
            continue
        reason = _reason(message_id, sqs_id, stored, evidence)
        if reason is None:
            missing += 1
            reasons.append(f"{_short(sqs_id)}: no fault or failure explains this send")
        else:
            reasons.append(f"{_short(sqs_id)} {reason}")
    return Duplicate(message_id, len(landed), reasons, missing == 0)


def _reason(message_id: str, sqs_id: str, stored: Stored, evidence: Evidence) -> str | None:
    ledger = evidence.ledger
    send = next((s for s in ledger.sends if s.sqs_id == sqs_id), None) if ledger is not None else None
    if send is not None:
        if send.answer in {kind.value for kind in APPLIED}:
            return _APPLIED_REASONS[Kind(send.answer)]
        if send.answer == LATE:
            return "applied, its answer late on its own (past the read timeout)"
        assert ledger is not None
        confirms = [c for c in ledger.confirms if c.sqs_id == sqs_id]
        if confirms and not any(c.applied for c in confirms):
            tried = ", ".join(_confirm_fate(c) for c in confirms)
            return f"answered, but its confirm write failed ({tried}); the reconciler re-drove it"
    failures = _logged_failures(message_id, evidence.logs)
    if send is not None:
        confirm_failures = [f for f in failures if f.startswith("confirm")]
        if confirm_failures:
            return f"answered, but its confirm write failed ({', '.join(confirm_failures)})"
        return None
    # No proxy saw it: what the history and the logs show about this record's sends.
    history = [f"{e.category} send failure {e.code}" for e in stored.history if isinstance(e, SendFailed)] + [
        "a lease expired unconfirmed"
        for e in stored.history
        if isinstance(e, RolledBack) and e.cause is RollbackCause.LEASE_EXPIRED
    ]
    evidence_seen = [h for h in history if not h.startswith("retryable")] + failures
    return "; ".join(evidence_seen) if evidence_seen else None


_APPLIED_REASONS = {
    Kind.RESET_AFTER: "applied, then the connection was reset",
    Kind.DELAY: "applied, its answer held past the read timeout",
}


def _confirm_fate(confirm: Landed) -> str:
    if confirm.answer == ANSWERED:
        return "condition failed"
    return confirm.answer


def _logged_failures(message_id: str, logs: list[dict[str, Any]]) -> list[str]:
    return [
        f"{line.get('stage')} {line.get('category')} {line.get('code')}"
        for line in logs
        if line.get("event") == AWS_FAILURE.name
        and line.get("message_id") == message_id
        and (
            line.get("stage") == "confirm"
            or (line.get("stage") == "send" and line.get("category") != "retryable")
        )
    ]


def _short(sqs_id: str) -> str:
    return f"SQS {sqs_id[:8]}"


# ---- the report ----------------------------------------------------------------------------------


def record_states(stored: dict[str, Stored]) -> dict[str, int]:
    counts = collections.Counter(s.record.phase.value for s in stored.values())
    return {phase.value: counts[phase.value] for phase in Phase if counts[phase.value]}


def rollbacks(stored: dict[str, Stored], logs: list[dict[str, Any]]) -> dict[str, int]:
    causes = collections.Counter(
        e.cause.value for s in stored.values() for e in s.history if isinstance(e, RolledBack)
    )
    return {
        "by_sender": causes[RollbackCause.SEND_FAILED.value],
        "by_reconciler": causes[RollbackCause.LEASE_EXPIRED.value],
        "failed": sum(1 for line in logs if line.get("event") == ROLLBACK_FAILED.name),
    }


def aws_failures(logs: list[dict[str, Any]]) -> dict[str, int]:
    """AWS calls that failed once the SDK's retries were spent, by category (the `aws_failure` lines)."""
    counts = collections.Counter(
        str(line.get("category")) for line in logs if line.get("event") == AWS_FAILURE.name
    )
    return dict(sorted(counts.items()))


def answers_by_status(answers: list[Answered]) -> dict[str, int]:
    counts = collections.Counter(f"{a.method} {a.status}" for a in answers)
    return dict(sorted(counts.items(), key=lambda kv: (not kv[0].startswith("POST"), kv[0])))


def invalid_ids(plan_ids_by_kind: dict[str, set[str]]) -> frozenset[str]:
    others = set().union(*(ids for kind, ids in plan_ids_by_kind.items() if kind != INVALID))
    return frozenset(plan_ids_by_kind.get(INVALID, set()) - others)
