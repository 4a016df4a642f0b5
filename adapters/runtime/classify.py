"""What an AWS failure means for the protocol: retryable, permanent or ambiguous.

The knowledge is botocore's own, not a copied list:
* whether an error answer is transient or throttling comes from `botocore.retries.standard`'s
  checkers (the transient, throttled, throttling-status and modeled checks that make up
  `StandardRetryConditions`, and `ThrottlingErrorDetector`), asked about the very response the call got;
* whether an exception left before or after the request was on the wire comes from botocore's
  exception hierarchy: a `ConnectionError` (connect timeout, endpoint, proxy, TLS handshake) never
  sent the request; an `HTTPClientError` (read timeout, connection closed, response streaming) may
  have, so the request may have been applied: ambiguous. So is a 5xx answer.

Added to that is what botocore does not retry but is transient all the same (`EXTRA_TRANSIENT`).
SQS answers in its JSON protocol with two codes — `Error.Code` (the legacy query code, such as
`AWS.SimpleQueueService.NonExistentQueue`) and `Error.QueryErrorCode` (the modeled shape, such as
`QueueDoesNotExist`); both are matched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from botocore.retries import standard
from botocore.retries.standard import (
    ModeledRetryableChecker,
    OrRetryChecker,
    RetryContext,
    RetryEventAdapter,
    ThrottledRetryableChecker,
    ThrottlingErrorDetector,
    TransientRetryableChecker,
)

from adapters.runtime.clients import DeadlineExceeded
from statemodel.categories import ErrorCategory, Failure

VALIDATION_EXCEPTION = "ValidationException"  # DynamoDB's answer to a key that does not fit the schema

# The most of an error's message the logs keep (AWS's `Error.Message`, an exception's text): enough
# for DynamoDB's "reserved keyword: total", bounded so that a long message cannot swell a log line.
MESSAGE_BOUND = 256

# Transient, though botocore does not retry them (they are not modeled as retryable).
EXTRA_TRANSIENT: frozenset[str] = frozenset(
    {
        "KMS.ThrottlingException",  # SQS: KmsThrottled, the KMS key's request quota
        "KmsThrottled",
        "TransactionConflictException",  # DynamoDB: a transaction holds the item for a moment
    }
)

# StandardRetryConditions' own checkers, less its max-attempts check and its two special cases (STS IDP
# errors; DynamoDB CRC32 mismatches, which concern a response body, never a parsed error answer).
# ThrottlingStatusCodeChecker (a bare 429) is recent in botocore: used where the installed one has it.
_status_checker = getattr(standard, "ThrottlingStatusCodeChecker", None)
_RETRYABLE = OrRetryChecker(
    [
        TransientRetryableChecker(),
        ThrottledRetryableChecker(),
        ModeledRetryableChecker(),
        *([_status_checker()] if _status_checker else []),
    ]
)
_THROTTLING = ThrottlingErrorDetector(RetryEventAdapter())


@attrs.frozen
class Classified:
    """A failed call: the failure as every layer names it (`statemodel.categories.Failure`), and what
    botocore said of it (for the logs)."""

    failure: Failure
    throttling: bool = False
    status: int | None = None
    attempts: int | None = None  # from botocore's metadata, when the answer carries it
    max_attempts_reached: bool = False
    retry_quota_reached: bool = False
    # What the service or botocore said (`Error.Message`, or the exception's text), at most
    # MESSAGE_BOUND characters: for the logs only, so it takes no part in equality.
    message: str | None = attrs.field(default=None, eq=False)

    @property
    def category(self) -> ErrorCategory:
        return self.failure.category

    @property
    def code(self) -> str:
        return self.failure.code


def failed(
    category: ErrorCategory,
    code: str,
    *,
    throttling: bool = False,
    status: int | None = None,
    message: str | None = None,
) -> Classified:
    """A failure the adapters name themselves, not from a botocore answer."""
    return Classified(Failure(category, code), throttling, status, message=bounded_message(message))


def bounded_message(text: object) -> str | None:
    """An error's message as the logs keep it: its text, cut to MESSAGE_BOUND characters (an ellipsis
    marks a cut); None for no text."""
    if text is None:
        return None
    message = str(text)
    if not message:
        return None
    return message if len(message) <= MESSAGE_BOUND else message[: MESSAGE_BOUND - 1] + "…"


Classifier = Callable[[BaseException, Any], Classified]  # what the store and the queue classify with


def classify(error: BaseException, operation_model: Any = None) -> Classified:
    """The category of a failed call. `operation_model` (client.meta.service_model.operation_model
    (name)) lets botocore match the operation's modeled errors."""
    if isinstance(error, ClientError):
        return _classify_answer(dict(error.response), operation_model)
    name, text = type(error).__name__, str(error)
    if isinstance(error, DeadlineExceeded):  # not sent; but an earlier attempt of the call may have landed
        category = ErrorCategory.AMBIGUOUS if error.sent_before else ErrorCategory.RETRYABLE
        return failed(category, name, message=text)
    if isinstance(error, HTTPClientError):  # sent, then the connection failed: it may have landed
        return failed(ErrorCategory.AMBIGUOUS, name, message=text)
    if isinstance(error, ConnectionError):  # never sent
        return failed(ErrorCategory.RETRYABLE, name, message=text)
    if isinstance(error, BotoCoreError):  # credentials, parameters, configuration
        return failed(ErrorCategory.PERMANENT, name, message=text)
    return failed(ErrorCategory.PERMANENT, name, message=text)


def classify_code(
    code: str, status: int, operation_model: Any = None, query_code: str | None = None
) -> Classified:
    """The category of an error answer with this code and HTTP status (used for the docs, too)."""
    error: dict[str, Any] = {"Code": code}
    if query_code:
        error["QueryErrorCode"] = query_code
    return _classify_answer({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, operation_model)


def _classify_answer(response: dict[str, Any], operation_model: Any) -> Classified:
    error = response.get("Error") or {}
    metadata = response.get("ResponseMetadata") or {}
    status = metadata.get("HTTPStatusCode")
    codes = [c for c in (error.get("Code"), error.get("QueryErrorCode")) if c]
    contexts = [_context(code, status, operation_model) for code in codes] or [
        _context(None, status, operation_model)
    ]
    retryable = any(_RETRYABLE.is_retryable(c) for c in contexts)
    throttling = any(_THROTTLING.is_throttling_error_from_context(c) for c in contexts)
    if isinstance(status, int) and status >= 500 and not throttling:
        category = ErrorCategory.AMBIGUOUS  # the service may have applied it before failing
    elif retryable or throttling or EXTRA_TRANSIENT.intersection(codes):
        category = ErrorCategory.RETRYABLE
    else:
        category = ErrorCategory.PERMANENT
    retries = metadata.get("RetryAttempts")
    return Classified(
        Failure(category, codes[0] if codes else f"HTTP{status}"),
        throttling=throttling,
        status=status,
        attempts=None if retries is None else retries + 1,
        max_attempts_reached=bool(metadata.get("MaxAttemptsReached")),
        retry_quota_reached=bool(metadata.get("RetryQuotaReached")),
        message=bounded_message(error.get("Message")),
    )


def _context(code: str | None, status: int | None, operation_model: Any) -> RetryContext:
    http = AWSResponse("", status, HTTPHeaders(), None) if isinstance(status, int) else None
    parsed = {"Error": {"Code": code}} if code else {}
    return RetryContext(
        attempt_number=1, operation_model=operation_model, parsed_response=parsed, http_response=http
    )
