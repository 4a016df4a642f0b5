"""docs/errors.md: every known AWS error, its category and what follows — computed by running
`adapters.runtime.classify` on each, so the doc cannot drift from the code (`make docs-check`)."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore import exceptions as botocore_exceptions
from botocore.retries import standard

from adapters.runtime.classify import EXTRA_TRANSIENT, classify, classify_code
from adapters.runtime.clients import DeadlineExceeded
from adapters.runtime.sqs_batch import entry_failure
from statemodel.categories import ErrorCategory, consequence

# SendMessage's modeled errors: (shape name = Error.QueryErrorCode, legacy query code = Error.Code, HTTP
# status), from the awsQueryError traits of the SQS Smithy model. botocore's bundled model drops those
# traits, so the legacy codes are kept here.
SQS_SEND_MESSAGE_ERRORS: tuple[tuple[str, str, int], ...] = (
    ("InvalidMessageContents", "InvalidMessageContents", 400),
    ("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400),
    ("RequestThrottled", "RequestThrottled", 403),
    ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400),
    ("InvalidSecurity", "InvalidSecurity", 403),
    ("KmsDisabled", "KMS.DisabledException", 400),
    ("KmsInvalidState", "KMS.InvalidStateException", 400),
    ("KmsNotFound", "KMS.NotFoundException", 400),
    ("KmsOptInRequired", "KMS.OptInRequired", 403),
    ("KmsThrottled", "KMS.ThrottlingException", 400),
    ("KmsAccessDenied", "KMS.AccessDeniedException", 400),
    ("KmsInvalidKeyUsage", "KMS.InvalidKeyUsageException", 400),
    ("InvalidAddress", "InvalidAddress", 404),
)
DYNAMODB_OPERATIONS = ("UpdateItem", "GetItem", "Query")
EXCEPTIONS: tuple[BaseException, ...] = (
    botocore_exceptions.ConnectTimeoutError(endpoint_url="…"),
    botocore_exceptions.EndpointConnectionError(endpoint_url="…"),
    botocore_exceptions.ProxyConnectionError(proxy_url="…"),
    botocore_exceptions.SSLError(endpoint_url="…", error=OSError("handshake")),
    DeadlineExceeded("…"),
    botocore_exceptions.ReadTimeoutError(endpoint_url="…"),
    botocore_exceptions.ConnectionClosedError(endpoint_url="…"),
    botocore_exceptions.ResponseStreamingError(error="…"),
    botocore_exceptions.NoCredentialsError(),
    botocore_exceptions.ParamValidationError(report="…"),
)


def render() -> str:
    session = botocore.session.get_session()
    send = session.get_service_model("sqs").operation_model("SendMessage")
    sqs_rows = [
        _row(f"`{legacy}`", f"`{query}`", status, classify_code(legacy, status, send, query).category)
        for query, legacy, status in SQS_SEND_MESSAGE_ERRORS
    ]
    dynamodb = session.get_service_model("dynamodb")
    dynamodb_rows = []
    for name in sorted(
        {s.name for op in DYNAMODB_OPERATIONS for s in dynamodb.operation_model(op).error_shapes}
    ):
        if name == "ConditionalCheckFailedException":
            continue
        status = 500 if name == "InternalServerError" else 400
        operation = next(
            dynamodb.operation_model(op)
            for op in DYNAMODB_OPERATIONS
            if name in {s.name for s in dynamodb.operation_model(op).error_shapes}
        )
        dynamodb_rows.append(_row(f"`{name}`", "", status, classify_code(name, status, operation).category))
    generic = sorted(set(_botocore_codes("ThrottledRetryableChecker", "_THROTTLED_ERROR_CODES")))
    generic += [
        c for c in _botocore_codes("TransientRetryableChecker", "_TRANSIENT_ERROR_CODES") if c not in generic
    ]
    generic_rows = [_row(f"`{code}`", "", 400, classify_code(code, 400).category) for code in generic]
    generic_rows += [
        _row(f"`{code}`", "", 400, classify_code(code, 400).category) for code in sorted(EXTRA_TRANSIENT)
    ]
    status_rows = [
        _row("(no code)", "", status, classify_code("", status).category)
        for status in (429, 500, 502, 503, 504, 400, 403)
    ]
    batch = session.get_service_model("sqs").operation_model("SendMessageBatch")
    batch_rows = [
        f"| `{legacy}` | {'yes' if sender else 'no'} | {category.value} | {_consequence(category)} |"
        for legacy, sender, category in (
            (legacy, sender, entry_failure({"Code": legacy, "SenderFault": sender}, batch).category)
            for legacy in (
                "KMS.DisabledException",
                "KMS.ThrottlingException",
                "RequestThrottled",
                "InternalError",
            )
            for sender in (True, False)
        )
    ]
    exception_rows = [
        f"| `{type(e).__name__}` | {_base(e)} | {category.value} | {_consequence(category)} |"
        for e, category in ((e, classify(e).category) for e in EXCEPTIONS)
    ]
    return _TEMPLATE.format(
        sqs="\n".join(sqs_rows),
        dynamodb="\n".join(dynamodb_rows),
        generic="\n".join(generic_rows),
        statuses="\n".join(status_rows),
        exceptions="\n".join(exception_rows),
        batch="\n".join(batch_rows),
        extra=", ".join(f"`{c}`" for c in sorted(EXTRA_TRANSIENT)),
    )


def _botocore_codes(checker: str, attribute: str) -> list[str]:
    codes: list[str] = getattr(getattr(standard, checker), attribute, [])
    return list(codes)


def _row(code: str, query_code: str, status: int, category: ErrorCategory) -> str:
    cells = [code, query_code] if query_code else [code]
    return f"| {' | '.join(cells)} | {status} | {category.value} | {_consequence(category)} |"


def _consequence(category: ErrorCategory) -> str:
    c = consequence(category)
    parts = ["rolled back"]
    parts.append("re-driven later" if c.redrive else "flagged EXHAUSTED")
    if c.may_have_sent:
        parts.append("may be delivered twice")
    parts.append(f"client: {c.http_status}{' + Retry-After' if c.retry_after else ''}")
    return "; ".join(parts)


def _base(error: Any) -> str:
    if isinstance(error, botocore_exceptions.HTTPClientError):
        return "HTTPClientError: sent, then the connection failed"
    if isinstance(error, botocore_exceptions.ConnectionError):
        return "ConnectionError: never sent"
    if isinstance(error, DeadlineExceeded):
        return "refused before sending: the invocation's deadline"
    return "BotoCoreError: client side"


_TEMPLATE = """<!-- Generated by `make docs` from adapters/runtime/classify.py. Do not edit: `make docs-check`
     fails when this file and the code disagree. -->
# AWS errors: category and consequence

Every failed AWS call is put in one of three categories (`adapters/runtime/classify.py`), and the category
alone decides what follows (`statemodel/categories.py`):

* **retryable** — it did not reach the service, or the service said "try again";
* **permanent** — the same request fails the same way until someone changes something;
* **ambiguous** — the request may have reached the service and been applied.

The knowledge is botocore's: `botocore.retries.standard`'s checkers (`StandardRetryConditions`,
`ThrottlingErrorDetector`) decide whether an answer is transient or throttling, and botocore's exception
hierarchy decides whether a request left (`HTTPClientError`: it may have) or not (`ConnectionError`).
A 5xx answer is ambiguous unless it is throttling. sendguard adds what botocore does not retry but is
transient: {extra}. Every client runs botocore's `standard` retry mode with an explicit
`total_max_attempts`; the categories below apply once the SDK's own retries are spent
(`ResponseMetadata.MaxAttemptsReached`), and each failure is logged with its attempts.

The consequences are those of a failed **send**. A failed **write** changes nothing it did not apply:
a create that failed leaves no record (the client gets SYSTEM_ERROR by category); a claim, confirm or
rollback that failed leaves the record in flight under its lease, and the reconciler rolls it back when
the lease expires.

## SQS SendMessage

SQS answers in its JSON protocol with two codes: `Error.Code` holds the legacy query code and
`Error.QueryErrorCode` the modeled shape. Both are matched.

| Error.Code | Error.QueryErrorCode | HTTP | Category | Consequence |
|---|---|---|---|---|
{sqs}

## SQS SendMessageBatch entries

The reconciler re-drives with SendMessageBatch (`adapters/runtime/sqs_batch.py`). A batch that fails
as a whole fails every entry with the category its error has in the tables here. A batch that is
answered reports each entry on its own; a `Failed` entry was not enqueued, and is classified alone
(`entry_failure`): `SenderFault` entries are permanent whatever their code; the others are the
service's own failures, classified by their code as a 5xx answer with it would be, except that
they are never ambiguous (SQS says the entry was not enqueued), so they are retryable. For example:

| Entry code | SenderFault | Category | Consequence |
|---|---|---|---|
{batch}

## DynamoDB (UpdateItem, GetItem, Query)

`ConditionalCheckFailedException` is not a failure here: it is the fence working, and its returned item
(`ReturnValuesOnConditionCheckFailure=ALL_OLD`) tells the flow what happened. A `ValidationException`
(400, permanent) refuses a key the table's key schema does not take: the Outbox then checks the layout
against the table, and raises `adapters.LayoutMismatch` (a `ConfigError` and an `OutboxError`, 500)
when it does not fit ([library.md](library.md#results-and-exceptions)).

| Error code | HTTP | Category | Consequence |
|---|---|---|---|
{dynamodb}

## Codes botocore knows for every service

| Error code | HTTP | Category | Consequence |
|---|---|---|---|
{generic}

## Answers without a known code

| Error code | HTTP | Category | Consequence |
|---|---|---|---|
{statuses}

## Exceptions (no answer)

| Exception | Kind | Category | Consequence |
|---|---|---|---|
{exceptions}
"""
