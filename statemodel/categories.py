"""Error categories and what each one implies. Which AWS error falls in which category is the
adapters' business (`adapters.runtime.classify`); what follows from a category is decided here, once.

Every category rolls the record back to PENDING: a record must never stay QUEUED without a message
that SQS accepted. They differ in whether a re-drive may help, in whether the message may already be
on the queue (so that a re-drive can deliver it twice), and in what the client is told.
"""

from __future__ import annotations

import enum

import attrs


class ErrorCategory(enum.StrEnum):
    RETRYABLE = "retryable"  # did not reach the service, or the service said "try again"
    PERMANENT = "permanent"  # the same request will fail the same way until someone changes something
    AMBIGUOUS = "ambiguous"  # the request may have reached the service and been applied


@attrs.frozen
class Consequence:
    roll_back: bool  # the sender rolls its claim back (QUEUED -> PENDING)
    redrive: bool  # the reconciler may send it again later; if not, the record is flagged exhausted
    may_have_sent: bool  # the message may be on the queue already: a re-drive can duplicate it
    http_status: int  # the client's SYSTEM_ERROR status
    retry_after: bool  # the answer carries Retry-After


CONSEQUENCES: dict[ErrorCategory, Consequence] = {
    ErrorCategory.RETRYABLE: Consequence(
        roll_back=True, redrive=True, may_have_sent=False, http_status=503, retry_after=True
    ),
    ErrorCategory.AMBIGUOUS: Consequence(
        roll_back=True, redrive=True, may_have_sent=True, http_status=503, retry_after=True
    ),
    ErrorCategory.PERMANENT: Consequence(
        roll_back=True, redrive=False, may_have_sent=False, http_status=500, retry_after=False
    ),
}


@attrs.frozen
class Failure:
    """What went wrong, said once for every layer: its category (which decides what follows, above)
    and the code that names it (the AWS error code, the botocore exception's name, or the model's own:
    `Conflict`, `InProgress`, `RedriveExhausted`)."""

    category: ErrorCategory
    code: str


def consequence(category: ErrorCategory | str) -> Consequence:
    return CONSEQUENCES[ErrorCategory(category)]
