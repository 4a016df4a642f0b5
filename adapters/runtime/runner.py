"""Runs the flows on AWS: `statemodel.interpreter` performs their effects on the ports `Aws` holds
and feeds the outcomes back; what happened is logged and counted around it (`Logged`). It decides
nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import boto3
from botocore.config import Config as BotoConfig

from adapters.runtime.bodies import S3Bodies
from adapters.runtime.call_report import CallReport
from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.config import Config
from adapters.runtime.due_index import DueIndex
from adapters.runtime.log_events import AWS_FAILURE, REDRIVE_EXHAUSTED, ROLLBACK_FAILED, TRANSITION, emit
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import Tally
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.store import DynamoStore
from statemodel import ports
from statemodel.decider import evolve
from statemodel.events import (
    Accepted,
    Claimed,
    Event,
    Rearmed,
    RedriveExhausted,
    RolledBack,
    SendConfirmed,
    SendFailed,
    event_to_dict,
)
from statemodel.flows import Answer, Flow, Outcome, Write
from statemodel.interpreter import Ports, run, send_deadline
from statemodel.ports import MessageQueue, RecordStore
from statemodel.records import Record, phase_of

__all__ = ["Aws", "Logged", "finish", "log_failure", "log_transitions", "run_flow", "send_deadline"]


@attrs.frozen
class Aws:
    """The ports on AWS — the record table (with its bodies), the queue, the due index — which is all
    the interpreter and the reconciler reach (`store`, `queue`, `due_index`: typed as the ports).

    Beside them, `dynamodb` and `sqs` are the table and the queue themselves, for what the library
    and the operator tools do beyond the flows: a `pending_put`'s item and body (`create_item`), the
    audit's scan, the status and re-drive reads, batched sends, the table check's client."""

    dynamodb: DynamoStore
    sqs: SqsQueue
    # The reconciler reads due records through the port alone (a mutant's index, say, in its place).
    due_index: ports.DueIndex[CallReport] = attrs.field(
        default=attrs.Factory(lambda self: DueIndex(self.dynamodb), takes_self=True)
    )

    @property
    def store(self) -> RecordStore[CallReport]:
        """The record table, as the flows write and read it."""
        return self.dynamodb

    @property
    def queue(self) -> MessageQueue[CallReport]:
        """The queue, as the flows send to it."""
        return self.sqs

    @classmethod
    def from_config(
        cls, config: Config, session: boto3.Session | None = None, botocore_config: BotoConfig | None = None
    ) -> Aws:
        """The clients for `config`, from `session` (the team's) or the container's; see `make_client`
        for how `botocore_config` is merged."""

        def client(service: str) -> Any:
            return make_client(
                service, config.aws_max_attempts, session=session, botocore_config=botocore_config
            )

        s3 = None
        if config.body_bucket is not None:
            s3 = S3Bodies(config.body_bucket, config.body_prefix, make_client=lambda: client("s3"))
        return cls(
            DynamoStore(
                client("dynamodb"),
                config.table,
                config.layout,
                s3=s3,
                queue_url=config.queue_url,
                retention_days=config.retention_days,
            ),
            SqsQueue(client("sqs"), config.queue_url),
        )

    def with_item(self, item: Mapping[str, Any] | None) -> Aws:
        """These ports, a create writing `item` (the team's own attributes) with the record."""
        return attrs.evolve(self, dynamodb=self.dynamodb.with_item(item)) if item else self


def run_flow(
    flow: Flow,
    ports: Ports[CallReport],
    deadline_ms: int,
    clock: Callable[[], int] = now_ms,
    tally: Tally | None = None,
) -> Answer:
    """Carries the flow to its end on `ports` (`statemodel.interpreter.run`, the loop the explorer
    checks), logged. `deadline_ms`: when this invocation must be done. `tally` counts what
    happened, for the invocation's metrics."""
    log = get_logger()
    flow = run(flow, ports, deadline_ms, clock, Logged(log, tally))
    return finish(log, flow, tally)


@attrs.frozen
class Logged:
    """What the interpreter tells of each step, logged and counted: a failed call, the transitions
    of a write that landed, and the effect for the invocation's metrics (`tally`)."""

    log: Any
    tally: Tally | None = None

    def stepped(self, before: Flow, outcome: Outcome, call: CallReport, after: Flow) -> None:
        log, effect = self.log, before.effect
        if call.error is not None:
            log_failure(log, call, before)
        landed = isinstance(effect, Write) and after.record == effect.after
        if isinstance(effect, Write) and landed:
            first = effect.before
            if first is not None and first.version == 1:
                # A record written by the team's transaction (`Outbox.pending_put`) was never logged;
                # the first claim of it, which only one write can make, logs its creation first.
                log_transitions(log, None, (Accepted(first.message, first.updated_at),))
            log_transitions(log, first, effect.events)
        if self.tally is not None and not isinstance(effect, Answer):
            self.tally.effect(effect, outcome, effect.events if isinstance(effect, Write) and landed else ())


def finish(log: Any, flow: Flow, tally: Tally | None = None) -> Answer:
    """A finished flow's answer, counted; a rollback that did not land is logged as an error."""
    answer = flow.answer
    if tally is not None:
        tally.answer(flow.kind, answer)
    if answer.rollback_failed:
        record = answer.record
        emit(
            log,
            ROLLBACK_FAILED,
            message_id=answer.message_id,
            attempt_id=flow.attempt_id,
            lease_expires_at=flow.lease_expires_at,
            version=record.version if record else None,
            note="the record stays in flight under its lease; the reconciler rolls it back after it",
        )
    return answer


def log_failure(log: Any, call: CallReport, flow: Flow | None) -> None:
    error = call.error
    assert error is not None
    emit(
        log,
        AWS_FAILURE,
        service=call.service,
        operation=call.operation,
        category=error.category.value,
        code=error.code,
        http_status=error.status,
        throttling=error.throttling,
        attempts=call.attempts,
        max_attempts_reached=error.max_attempts_reached,
        retry_quota_reached=error.retry_quota_reached,
        latency_ms=call.latency_ms,
        stage=flow.stage.value if flow else None,
        error_message=error.message,
    )


def log_transitions(log: Any, before: Record | None, events: tuple[Event, ...]) -> None:
    """One line per event of a write that landed: the trace `sendguard check-trace` replays."""
    record = before
    for event in events:
        after = evolve(record, event)
        emit(
            log,
            TRANSITION,
            message_id=after.message_id,
            correlation_id=after.message.correlation_id,
            **{"from": phase_of(record).value, "to": after.phase.value},
            status=after.status.value,
            version=after.version,
            attempt_id=getattr(event, "attempt_id", None),
            cause=_cause(event),
            record_event=event_to_dict(event),
        )
        if isinstance(event, RedriveExhausted):
            emit(
                log,
                REDRIVE_EXHAUSTED,
                message_id=after.message_id,
                correlation_id=after.message.correlation_id,
                attempts=after.attempts,
                cause=event.cause.value,
                last_error=attrs.asdict(after.last_error) if after.last_error else None,
            )
        record = after


def _cause(event: Event) -> str:
    match event:
        case Accepted():
            return "accepted"
        case Claimed() | RolledBack() | RedriveExhausted():
            return event.cause.value
        case SendConfirmed():
            return "sqs_accepted"
        case SendFailed():
            return f"{event.category}:{event.code}"
        case Rearmed():
            return "rearmed"
