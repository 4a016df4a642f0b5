"""Re-arming one exhausted record: the operator's `Rearm`, after the cause of its exhaustion is fixed.

The record goes back to PENDING with a fresh attempt budget, and the reconciler re-drives it (the
first pass at least `SENDGUARD_REDRIVE_AFTER_SECONDS` after the re-arm). The write is conditioned on
the record's status and version as read, so a record that changed since it was read (re-armed by
someone else, or an index entry read stale) is skipped, never overwritten. `sendguard redrive
--exhausted` calls this for each record it finds; a library user calls it with one key.
"""

from __future__ import annotations

import enum
import getpass
import os
import socket
from collections.abc import Callable
from typing import Any

import attrs

from adapters.runtime.clients import now_ms
from adapters.runtime.item_size import rearm_has_room
from adapters.runtime.log_events import REARM_SKIPPED, emit
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import Tally
from adapters.runtime.runner import Aws, log_failure, run_flow
from adapters.runtime.store import NotARecord
from statemodel.categories import Failure
from statemodel.flows import Result, start_rearm
from statemodel.keys import Key
from statemodel.records import Phase, Record
from statemodel.sizes import REARM_MAX_TEXT_CHARS
from statemodel.stored import Stored

MAX_TEXT = REARM_MAX_TEXT_CHARS  # of `by` and `reason`: they are stored in the history, so bounded
OPERATION_MS = 30_000  # an operator's call has no Lambda deadline; this bounds its SDK retries


class InvalidRearm(ValueError):
    """`by` or `reason` is empty, too long, or not printable text."""


class RearmOutcome(enum.StrEnum):
    """What `rearm` did with one record (string-valued: `outcome == "rearmed"` keeps working)."""

    REARMED = "rearmed"
    WOULD_REARM = "would_rearm"  # a dry run: nothing written
    CHANGED = "changed"  # the record changed since it was read: skipped, not overwritten
    NOT_EXHAUSTED = "not_exhausted"
    NOT_FOUND = "not_found"
    NO_ROOM = "no_room"  # another attempt budget's history would not fit in the item
    FAILED = "failed"  # an AWS failure (classified): nothing changed, or the write's fate is unknown


REARMED, WOULD_REARM, CHANGED = RearmOutcome.REARMED, RearmOutcome.WOULD_REARM, RearmOutcome.CHANGED
NOT_EXHAUSTED, NOT_FOUND, NO_ROOM = RearmOutcome.NOT_EXHAUSTED, RearmOutcome.NOT_FOUND, RearmOutcome.NO_ROOM
FAILED = RearmOutcome.FAILED


@attrs.frozen
class RearmResult:
    message_id: str
    outcome: RearmOutcome = attrs.field(converter=RearmOutcome)
    record: Record | None  # the record as last known (after the re-arm, when it landed)
    failure: Failure | None = None

    @property
    def rearmed(self) -> bool:
        return self.outcome is RearmOutcome.REARMED

    def as_dict(self) -> dict[str, Any]:
        record, error = self.record, self.record.last_error if self.record else None
        return {
            "message_id": self.message_id,
            "outcome": self.outcome,
            "phase": record.phase.value if record else None,
            "version": record.version if record else None,
            "last_error": f"{error.category}:{error.code}" if error else None,
            "failure": f"{self.failure.category.value}:{self.failure.code}" if self.failure else None,
        }


def default_operator() -> str:
    """Who asks, when the caller does not say: the Lambda function, or user@host."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if function:
        return f"lambda:{function}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def check_request(by: str, reason: str) -> None:
    """Raises InvalidRearm unless `by` and `reason` are printable text of 1..MAX_TEXT characters."""
    for name, value in (("by", by), ("reason", reason)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidRearm(f"{name} must say {'who asks' if name == 'by' else 'why'}: it is empty")
        if len(value) > MAX_TEXT:
            raise InvalidRearm(f"{name} is {len(value)} characters long; at most {MAX_TEXT}")
        if not value.isprintable():
            raise InvalidRearm(f"{name} holds control characters; use printable text")


def rearm(
    aws: Aws,
    key: Key | str,
    *,
    reason: str,
    by: str | None = None,
    max_attempts: int,
    found: Stored | None = None,
    dry_run: bool = False,
    clock: Callable[[], int] = now_ms,
    tally: Tally | None = None,
) -> RearmResult:
    """Re-arms the exhausted record `key`, as `found` (an index read) or as read now
    (strongly consistent). `by`: who asks (default `default_operator()`). Bad `by`/`reason`:
    InvalidRearm, nothing written or read. The library's `Outbox.rearm(key, reason)` is this, with its
    own store and settings."""
    by = default_operator() if by is None else by
    check_request(by, reason)
    key = Key(key) if isinstance(key, str) else key  # a string: a plain key
    message_id = key.message_id
    stored = found
    if stored is None:
        got = _get(aws, key, clock() + OPERATION_MS)
        if isinstance(got, Failure):
            return RearmResult(message_id, FAILED, None, got)
        if got is None:
            return _skipped(RearmResult(message_id, NOT_FOUND, None))
        stored = got
    record = stored.record
    if record.phase is not Phase.EXHAUSTED:
        return _skipped(RearmResult(message_id, NOT_EXHAUSTED, record))
    if not rearm_has_room(stored, max_attempts, (by, reason)):
        return _skipped(RearmResult(message_id, NO_ROOM, record))
    if dry_run:
        return RearmResult(message_id, WOULD_REARM, record)
    flow = start_rearm(record, by, reason, clock())
    answer = run_flow(flow, aws, clock() + OPERATION_MS, clock, tally=tally)
    if answer.result is Result.REARMED:
        return RearmResult(message_id, REARMED, answer.record)
    if answer.result is Result.SUPERSEDED:
        return _skipped(RearmResult(message_id, CHANGED, answer.record))
    return RearmResult(message_id, FAILED, answer.record, answer.failure)


def _get(aws: Aws, key: Key, deadline_ms: int) -> Stored | Failure | None:
    try:
        found, call = aws.store.get(key, deadline_ms)
    except NotARecord as not_a_record:  # the team's own item: nothing to re-arm, and no AWS failure
        return not_a_record.failure
    if isinstance(found, Failure):
        log_failure(get_logger(), call, None)
        return Failure(found.category, found.code)
    return found


def _skipped(result: RearmResult) -> RearmResult:
    notes = {
        CHANGED: "the record changed since it was read; left as it is",
        NOT_EXHAUSTED: "only an exhausted record is re-armed",
        NOT_FOUND: "no record with this id",
        NO_ROOM: "the item has no room for another attempt budget's history",
    }
    emit(get_logger(), REARM_SKIPPED, message_id=result.message_id, outcome=result.outcome,
         note=notes[result.outcome])  # fmt: skip
    return result
