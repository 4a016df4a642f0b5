"""One reconciler pass, and `sendguard reconcile`.

A pass reads only the sparse `attention` index (in-flight records whose lease has expired, PENDING
records that waited `redrive_after`), and for each hands the record to `statemodel.flows.
reconcile_start`, which decides: roll the expired claim back (fenced by attempt and version), re-drive
it, flag it exhausted, or nothing. Index reads are eventually consistent; that is safe, because every
write is conditioned on the version it read, so a stale read only costs a superseded write.
A pass stops starting new work when its own deadline is near; what is left waits for the next pass.

A record names its queue, and a pass serves the queues it is configured for (its own, and
`Config.other_queues`): a due record of another queue is left to that queue's reconciler, counted
(`left_to_other_queues`) and logged once a pass by queue (`records_left`), never sent elsewhere.

To drain a backlog fast, the records are taken ten at a time (the index's partitions taking turns,
`DueIndex.due`), and each group's flows run together (`batch_runner.run_flows`: one conditional
write per claim, confirm and rollback, one SendMessageBatch per ten sends). With
`SENDGUARD_RECONCILER_WORKERS` above 1 the groups run on that many threads at once: the pass is
I/O-bound (each request waits ~10 ms on AWS), so threads multiply its rate until DynamoDB's or SQS's
limits; the reading stays on the invoking thread, a few groups ahead of the workers. Past one
invocation, a pass fans out across Lambda invocations, each over some of the index's shards
(`adapters.runtime.fanout`).
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from adapters.runtime.batch_runner import run_flows
from adapters.runtime.clients import ATTEMPT_BUDGET_MS, now_ms
from adapters.runtime.config import Config
from adapters.runtime.log_events import RECONCILE_PASS, RECORDS_LEFT, emit
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import (
    PASS_METRICS,
    RECONCILER_DUE,
    RECONCILER_FAILED_READS,
    RECONCILER_LEFT,
    RECONCILER_STOPPED_EARLY,
    Tally,
)
from adapters.runtime.metrics import documents as metric_documents
from adapters.runtime.metrics import publish as publish_metrics
from adapters.runtime.runner import Aws, log_failure
from adapters.runtime.sqs_batch import MAX_ENTRIES
from statemodel.flows import Answer, Flow, Result, Settings, lease_expiry, reconcile_start
from statemodel.records import Phase, Record

__all__ = ["PassSummary", "reconcile_pass"]


@attrs.define
class PassSummary:
    expired: int = 0
    redriven: int = 0
    exhausted: int = 0
    superseded: int = 0
    failed: int = 0
    overdue_in_flight: int = 0  # in-flight records found with their lease already expired
    records_read: int = 0
    queries: int = 0
    failed_queries: int = 0  # index partitions a pass could not read (past the SDK's retries)
    failed_reads: int = 0  # reads of due records or their bodies that failed: left to a later pass
    left_to_other_queues: int = 0  # due records of queues this pass does not serve
    stopped_early: bool = False  # the pass ran out of time; the next pass continues
    groups: int = 0  # groups of up to ten records whose flows ran together
    workers: int = 1  # the threads the groups ran on
    shards: list[int] | None = None  # the shards read (a fanned-out pass's worker); None: every one

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


_TALLY = {
    Result.EXPIRED: "expired",
    Result.SENT: "redriven",
    Result.EXHAUSTED: "exhausted",
    Result.SUPERSEDED: "superseded",
    Result.FAILED: "failed",
}


def reconcile_pass(
    aws: Aws,
    config: Config,
    deadline_ms: int,
    clock: Callable[[], int] = now_ms,
    new_attempt_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    progress: Callable[[PassSummary], None] | None = None,
    shards: frozenset[int] | None = None,
    refused: Callable[[str], None] | None = None,
) -> PassSummary:
    """One pass. `progress` is called after each group of records (the command line shows it).
    `shards`: only those shards of the index (a fanned-out pass's worker, `adapters.runtime.fanout`).
    `refused` is given the code of an index query DynamoDB refused, and raises what explains it (an
    `Outbox`'s: a table without the index is a ConfigError, not a pass that reads nothing)."""
    read = None if shards is None else sorted(shards)
    summary = PassSummary(workers=config.reconciler_workers, shards=read)
    tally = Tally()
    settings = config.settings
    log = get_logger()
    served = {aws.sqs.queue_url, *config.other_queues}  # its own queue, and those it is told
    left: dict[str, int] = {}

    def groups() -> Iterator[list[Flow]]:
        group: list[Flow] = []
        for record in _due_records(aws, clock(), settings, summary, log, shards, refused):
            summary.records_read += 1
            queue = aws.sqs.queue_url if record.message.queue is None else record.message.queue
            if queue not in served:
                summary.left_to_other_queues += 1
                left[queue] = left.get(queue, 0) + 1
                continue
            now = clock()
            if now + ATTEMPT_BUDGET_MS > deadline_ms:  # not one more attempt fits: the next pass goes on
                summary.stopped_early = True
                break
            if record.phase is Phase.IN_FLIGHT:
                summary.overdue_in_flight += 1
            lease = lease_expiry(now, deadline_ms - now, settings)
            flow = reconcile_start(record, now, settings, new_attempt_id(), lease)
            if flow is not None:
                group.append(flow)
            if len(group) == MAX_ENTRIES:
                yield group
                group = []
        if group:
            yield group

    def run(group: list[Flow]) -> tuple[list[Answer], Tally]:
        counted = Tally()  # each group counts on its own thread; the pass adds them up here
        return run_flows(group, aws, deadline_ms, clock, counted), counted

    for answers, counted in _each(groups(), run, config.reconciler_workers):
        summary.groups += 1
        tally.add(counted)
        for answer in answers:
            field = _TALLY.get(answer.result)
            if field is not None:
                setattr(summary, field, getattr(summary, field) + 1)
        if progress is not None:
            progress(summary)
    if left:
        emit(log, RECORDS_LEFT, queues=left)
    emit(log, RECONCILE_PASS, **summary.as_dict())
    # ReconcilerDue: the records of its own queues this pass read as due (a lower bound when it
    # stopped early); the others, and those it could not read, counted apart: neither waits silently.
    extra = {
        RECONCILER_DUE: summary.records_read - summary.left_to_other_queues,
        RECONCILER_STOPPED_EARLY: int(summary.stopped_early),
        RECONCILER_FAILED_READS: summary.failed_reads,
        RECONCILER_LEFT: summary.left_to_other_queues,
    }
    if config.metrics:
        publish_metrics(metric_documents(PASS_METRICS, tally, clock(), config.metrics_namespace, extra))
    return summary


def _due_records(
    aws: Aws,
    now: int,
    settings: Settings,
    summary: PassSummary,
    log: Any,
    shards: frozenset[int] | None,
    refused: Callable[[str], None] | None,
) -> Iterator[Record]:
    """The due records, page by page; each page counted, and each failed query logged and skipped
    (once `refused` raised nothing for it)."""
    index = aws.due_index
    pages = index.due(now, settings) if shards is None else index.due(now, settings, shards)
    for page in pages:
        if page.call.error is None:
            summary.queries += 1
        else:
            summary.failed_queries += 1
            log_failure(log, page.call, None)
            if refused is not None:
                refused(page.call.error.failure.code)
        for read in page.reads:
            if read.error is not None:
                summary.failed_reads += 1
                log_failure(log, read, None)
        yield from page.records


Ran = tuple[list[Answer], Tally]


def _each(groups: Iterator[list[Flow]], run: Callable[[list[Flow]], Ran], workers: int) -> Iterator[Ran]:
    """`run` over every group: on this thread in order with one worker; otherwise on `workers`
    threads, reading at most two groups a worker ahead (what is read past the pass's deadline is
    left for the next pass). Each group runs in a copy of this thread's context, so its log lines
    carry the invocation's bound fields."""
    if workers == 1:
        yield from map(run, groups)
        return
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sendguard-reconcile") as pool:
        running: set[Future[Ran]] = set()
        for group in groups:
            running.add(pool.submit(contextvars.copy_context().run, run, group))
            if len(running) >= 2 * workers:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
        yield from (future.result() for future in running)
