"""Every log event sendguard writes, with its level and fields: the one owner of that vocabulary.

The logs write through `emit`; the trace checker, the demo's verdict and the SAM template's metric
filters read lines back by these names and fields (tests/test_template.py holds the template's
filters to this module). Each line also carries what structlog adds (`LINE_FIELDS`) and the ids
bound for the invocation (`CONTEXT_FIELDS`).
"""

from __future__ import annotations

from typing import Any

import attrs

# Bound with structlog's contextvars at the start of an invocation, and on every line after.
CONTEXT_FIELDS = frozenset({"correlation_id", "message_id", "attempt_id"})
# Added by the renderer to every line.
LINE_FIELDS = frozenset({"timestamp", "level", "event", "exception"})


@attrs.frozen
class LogEvent:
    name: str
    level: str  # the structlog method: info, warning, error, exception
    fields: frozenset[str]
    about: str


def _event(name: str, level: str, fields: str, about: str) -> LogEvent:
    return LogEvent(name, level, frozenset(fields.split()), about)


ANSWER = _event("answer", "info", "status code route", "the handler's answer (warning for SYSTEM_ERROR)")
AWS_FAILURE = _event(
    "aws_failure",
    "warning",
    "service operation category code http_status throttling attempts max_attempts_reached "
    "retry_quota_reached latency_ms stage error_message",
    "one AWS call failed after the SDK's retries, with its classification and the service's message",
)
TRANSITION = _event(
    "transition",
    "info",
    "message_id correlation_id from to status version attempt_id cause record_event",
    "one event of a write that landed: the trace `sendguard check-trace` replays",
)
ROLLBACK_FAILED = _event(
    "rollback_failed",
    "error",
    "message_id attempt_id lease_expires_at version note",
    "a failed send's rollback failed too: the lease protects the record until the reconciler",
)
REDRIVE_EXHAUSTED = _event(
    "redrive_exhausted",
    "error",
    "message_id correlation_id attempts cause last_error",
    "a record ran out of attempts or met a permanent failure: it waits for an operator",
)
RECONCILE_PASS = _event(
    "reconcile_pass",
    "info",
    "expired redriven exhausted superseded failed overdue_in_flight records_read queries failed_queries "
    "failed_reads left_to_other_queues stopped_early groups workers shards",
    "one reconciler pass's summary (`shards`: a fanned-out pass's worker's, else null: every shard)",
)
RECONCILE_FANOUT = _event(
    "reconcile_fanout",
    "info",
    "pass_id function groups invoked failed_invokes drained_here own_pass",
    "a coordinator's fan-out: worker invocations queued and failed, the shards it drained itself",
)
FANOUT_INVOKE_FAILED = _event(
    "fanout_invoke_failed",
    "error",
    "pass_id function shards category code",
    "a worker invocation failed (SYSTEM_ERROR): the coordinator drains its shards itself",
)
PAYLOAD_INVALID = _event(
    "payload_invalid",
    "error",
    "problem",
    "a reconciler invocation's payload is malformed: nothing was read or written",
)
RECORDS_LEFT = _event(
    "records_left",
    "info",
    "queues",
    "due records a pass left to the reconciler of their own queue ({queue URL: count}), once a pass",
)
METRICS = _event(
    "metrics",
    "info",
    "_aws Category Accepted SendFailed RollbackFailed Unconfirmed Redriven LeaseExpired Exhausted Rearmed "
    "ReconcilerDue ReconcilerStoppedEarly ReconcilerFailedReads ReconcilerLeft",
    "one CloudWatch Embedded Metric Format document (adapters.runtime.metrics), whatever the log level",
)
REARM_SKIPPED = _event(
    "rearm_skipped",
    "warning",
    "message_id outcome note",
    "an operator's re-arm of one record did nothing: not exhausted, changed under it, or no room left",
)
HANDLER_FAILED = _event("handler_failed", "exception", "route", "an unexpected exception in the handler")
RECONCILE_FAILED = _event("reconcile_failed", "exception", "", "a reconciler pass raised")
CONFIG_INVALID = _event(
    "config_invalid",
    "error",
    "problem",
    "the configuration does not fit the table, or is malformed: `problem` says what to set",
)

INBOX_DELIVERY = _event(
    "inbox_delivery",
    "info",
    "message_id sqs_message_id mode result ok ran receives error_code",
    "one message of a batch, as the inbox answered it (warning when it was not ok)",
)
INBOX_TRANSITION = _event(
    "inbox_transition",
    "info",
    "message_id from to version attempt_id record_event",
    "one event of an inbox write that landed",
)
INBOX_GIVEN_UP = _event(
    "inbox_given_up",
    "error",
    "message_id receives last_error",
    "a message ran out of receives: FAILED, left to the redrive policy and `sendguard inbox-failed`",
)
INBOX_HANDLER_FAILED = _event(
    "inbox_handler_failed",
    "exception",
    "message_id code error_message",
    "the team's handler raised for a message: the exception's name and message, with its traceback",
)
INBOX_KEY_MISSING = _event(
    "inbox_key_missing",
    "warning",
    "sqs_message_id key_source",
    "a message without the key the inbox is told to read: not processed, left to the redrive policy",
)

EVENTS: dict[str, LogEvent] = {
    e.name: e
    for e in (
        ANSWER,
        AWS_FAILURE,
        TRANSITION,
        ROLLBACK_FAILED,
        REDRIVE_EXHAUSTED,
        RECONCILE_PASS,
        RECORDS_LEFT,
        RECONCILE_FANOUT,
        FANOUT_INVOKE_FAILED,
        PAYLOAD_INVALID,
        METRICS,
        REARM_SKIPPED,
        HANDLER_FAILED,
        RECONCILE_FAILED,
        CONFIG_INVALID,
        INBOX_DELIVERY,
        INBOX_TRANSITION,
        INBOX_GIVEN_UP,
        INBOX_HANDLER_FAILED,
        INBOX_KEY_MISSING,
    )
}


def emit(log: Any, event: LogEvent, *, level: str | None = None, **fields: Any) -> None:
    """Writes one line of `event` (at `level` instead of its own, where the event allows two)."""
    getattr(log, level or event.level)(event.name, **fields)
