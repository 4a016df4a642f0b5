"""Commands: what someone asks of a record, in the imperative. `decide` turns them into events or
refuses them with a `ForbiddenCommand`.

Time, ids and outcomes are fields or arguments: the model never reads a clock or draws a random id.
"""

from __future__ import annotations

import attrs

from statemodel.categories import ErrorCategory
from statemodel.events import ClaimCause
from statemodel.records import Message


@attrs.frozen
class Submit:
    """Accept a new message and claim it for its first send, in one write."""

    message: Message
    attempt_id: str
    lease_expires_at: int


@attrs.frozen
class Prepare:
    """Accept a new message as PENDING, unclaimed: the transactional outbox's record, which the team's
    own transaction writes beside its domain change; `dispatch` (or a re-drive) claims it later."""

    message: Message


@attrs.frozen
class Redrive:
    """Claim a PENDING record for another send, or flag it exhausted when no attempt is left."""

    attempt_id: str
    lease_expires_at: int
    cause: ClaimCause
    max_attempts: int


@attrs.frozen
class ConfirmSend:
    """SQS accepted this attempt's message."""

    attempt_id: str
    sqs_message_id: str


@attrs.frozen
class ReportSendFailure:
    """This attempt's send failed; roll the claim back."""

    attempt_id: str
    category: ErrorCategory
    code: str


@attrs.frozen
class ExpireLease:
    """The attempt's lease ran out while it was in flight; roll the claim back (the reconciler)."""

    attempt_id: str


@attrs.frozen
class Rearm:
    """An operator gives an exhausted record a fresh attempt budget, after fixing what exhausted it.
    `by` says who asked and `reason` why; both go into the history."""

    by: str
    reason: str


Command = Submit | Prepare | Redrive | ConfirmSend | ReportSendFailure | ExpireLease | Rearm
COMMAND_TYPES: tuple[type[Command], ...] = (
    Submit,
    Prepare,
    Redrive,
    ConfirmSend,
    ReportSendFailure,
    ExpireLease,
    Rearm,
)
