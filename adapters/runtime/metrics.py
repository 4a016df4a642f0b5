"""Metrics in CloudWatch's Embedded Metric Format (EMF): one JSON document per submit invocation and
per reconciler pass, written on stdout beside the log lines, from which CloudWatch Logs extracts the
metrics. No API call, nothing to wait for.

The documents go through the structlog pipeline the logs use (`adapters.runtime.logs`), not through
aws-embedded-metrics or Powertools' Metrics: the Lambda's path loads boto3, attrs and structlog only,
and either library would add a dependency and import time to every cold start (measured in the note
of issue 14: Powertools' Metrics adds ~11 ms to importing boto3, structlog and attrs). A metrics line
is written whatever the log level: the alarms must not go quiet because someone raised it.

What each metric counts (the names and the dimension are the contract; docs/operations.md):

* `Accepted` — answers 202 (a new message SQS took, or a replay of a queued one);
* `SendFailed` (dimension `Category`: retryable / permanent / ambiguous) — sends SQS refused or whose
  outcome is unknown;
* `RollbackFailed` — a failed send whose rollback failed too (the lease protects the record);
* `Unconfirmed` — a send SQS took whose confirm write failed (the reconciler mends it);
* `Redriven` — re-drives SQS took; `LeaseExpired` — claims the reconciler rolled back;
* `Exhausted` — records flagged exhausted; `Rearmed` — exhausted records an operator re-armed;
* `ReconcilerDue` — records a pass found due; `ReconcilerStoppedEarly` — 1 when a pass ran out of time;
* `ReconcilerInvoked`, `ReconcilerInvokeFailed` — worker invocations a fanned-out pass queued, and
  those that failed (`adapters.runtime.fanout`).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import attrs

from adapters.runtime.log_events import METRICS, emit
from adapters.runtime.logs import unfiltered_logger
from statemodel.categories import Failure
from statemodel.events import Event, Rearmed, RedriveExhausted, RollbackCause, RolledBack
from statemodel.flows import Answer, Effect, Kind, Outcome, Send

ACCEPTED = "Accepted"
SEND_FAILED = "SendFailed"
ROLLBACK_FAILED = "RollbackFailed"
UNCONFIRMED = "Unconfirmed"
REDRIVEN = "Redriven"
LEASE_EXPIRED = "LeaseExpired"
EXHAUSTED = "Exhausted"
REARMED = "Rearmed"
RECONCILER_DUE = "ReconcilerDue"
RECONCILER_STOPPED_EARLY = "ReconcilerStoppedEarly"
RECONCILER_FAILED_READS = "ReconcilerFailedReads"  # due records it could not read (or refused to)
RECONCILER_LEFT = "ReconcilerLeft"  # due records of queues the pass does not serve
RECONCILER_INVOKED = "ReconcilerInvoked"  # worker invocations a fanned-out pass queued
RECONCILER_INVOKE_FAILED = "ReconcilerInvokeFailed"  # those that failed (their shards drained apart)
CATEGORY = "Category"

# Every metric sendguard publishes, with the one dimension set it is published with.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    ACCEPTED: (),
    SEND_FAILED: (CATEGORY,),
    ROLLBACK_FAILED: (),
    UNCONFIRMED: (),
    REDRIVEN: (),
    LEASE_EXPIRED: (),
    EXHAUSTED: (),
    REARMED: (),
    RECONCILER_DUE: (),
    RECONCILER_STOPPED_EARLY: (),
    RECONCILER_FAILED_READS: (),
    RECONCILER_LEFT: (),
    RECONCILER_INVOKED: (),
    RECONCILER_INVOKE_FAILED: (),
}
# Which metrics each kind of document carries (zeros included, so that every invocation or pass is
# a data point: the backlog alarm reads ReconcilerDue's samples as the reconciler's heartbeat).
SUBMIT_METRICS = (ACCEPTED, ROLLBACK_FAILED, UNCONFIRMED, EXHAUSTED)
PASS_METRICS: tuple[str, ...] = (REDRIVEN, LEASE_EXPIRED, EXHAUSTED, ROLLBACK_FAILED, UNCONFIRMED)
PASS_METRICS += (RECONCILER_DUE, RECONCILER_STOPPED_EARLY, RECONCILER_FAILED_READS, RECONCILER_LEFT)
REARM_METRICS = (REARMED,)


@attrs.define
class Tally:
    """What one invocation did, counted as the flow runner carries effects out."""

    counts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    send_failed: collections.Counter[str] = attrs.field(factory=collections.Counter)  # by category
    flows: int = 0  # flows run to their end

    def effect(self, effect: Effect, outcome: Outcome, landed: tuple[Event, ...]) -> None:
        """One effect carried out; `landed`: the events of a write that landed (else empty)."""
        if isinstance(effect, Send) and isinstance(outcome, Failure):
            self.send_failed[outcome.category.value] += 1
        for event in landed:
            if isinstance(event, RedriveExhausted):
                self.counts[EXHAUSTED] += 1
            elif isinstance(event, RolledBack) and event.cause is RollbackCause.LEASE_EXPIRED:
                self.counts[LEASE_EXPIRED] += 1
            elif isinstance(event, Rearmed):
                self.counts[REARMED] += 1

    def add(self, other: Tally) -> None:
        """Another tally's counts added to this one (a pass's groups, counted on their threads)."""
        self.counts.update(other.counts)
        self.send_failed.update(other.send_failed)
        self.flows += other.flows

    def answer(self, kind: Kind, answer: Answer) -> None:
        """A flow's end."""
        self.flows += 1
        if kind is Kind.SUBMIT and answer.accepted:
            self.counts[ACCEPTED] += 1
        if kind is Kind.REDRIVE and answer.accepted:
            self.counts[REDRIVEN] += 1
        self.counts[ROLLBACK_FAILED] += answer.rollback_failed
        self.counts[UNCONFIRMED] += answer.unconfirmed


def documents(
    names: tuple[str, ...],
    tally: Tally,
    now_ms: int,
    namespace_: str,
    extra: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The EMF documents of one invocation: `names` (zeros included) and `extra` values, and the
    send failures by category. One document; one more per further category of send failure, since a
    document gives each dimension one value."""
    values = {name: int(tally.counts[name]) for name in names} | dict(extra or {})
    categories = sorted(c for c, n in tally.send_failed.items() if n)
    docs = [_document(values, now_ms, namespace_)]
    for index, category in enumerate(categories):
        failed = {SEND_FAILED: tally.send_failed[category]}
        if index == 0:
            docs[0] = _document(values, now_ms, namespace_, failed, category)
        else:
            docs.append(_document({}, now_ms, namespace_, failed, category))
    return docs


def _document(
    values: Mapping[str, int],
    now_ms: int,
    namespace_: str,
    failed: Mapping[str, int] | None = None,
    category: str | None = None,
) -> dict[str, Any]:
    directives: list[dict[str, Any]] = []
    if values:
        directives.append(
            {
                "Namespace": namespace_,
                "Dimensions": [[]],
                "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
            }
        )
    if failed:
        directives.append(
            {
                "Namespace": namespace_,
                "Dimensions": [[CATEGORY]],
                "Metrics": [{"Name": SEND_FAILED, "Unit": "Count"}],
            }
        )
    document: dict[str, Any] = {"_aws": {"Timestamp": now_ms, "CloudWatchMetrics": directives}}
    document |= dict(values) | dict(failed or {})
    if category is not None:
        document[CATEGORY] = category
    return document


def publish(docs: list[dict[str, Any]]) -> None:
    """Writes each document as one line through the log pipeline, whatever the log level
    (`logs.unfiltered_logger`: the team's logger, if the call gave one, decides)."""
    log = unfiltered_logger()
    for doc in docs:
        emit(log, METRICS, **doc)


def values(docs: list[dict[str, Any]]) -> collections.Counter[str]:
    """The documents' metrics summed: `Name` for a metric without dimensions, `Name{Dim=value}` for
    one with (what CloudWatch would aggregate). For tests and `sendguard status`-like summaries."""
    total: collections.Counter[str] = collections.Counter()
    for doc in docs:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            dims = directive["Dimensions"][0]
            for metric in directive["Metrics"]:
                suffix = ",".join(f"{d}={doc[d]}" for d in dims)
                total[metric["Name"] + (f"{{{suffix}}}" if suffix else "")] += doc[metric["Name"]]
    return total
