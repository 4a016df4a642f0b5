"""The baselines sendguard is compared with.

(a) The seed's plain flow, as a service team would write it without sendguard: put the record
PENDING, update it to QUEUED, send the message, and when the send fails update the record back to
PENDING and answer 503. It uses the same clients as sendguard
(`adapters.runtime.clients.make_client`: botocore's
standard retry mode, the same attempts per call and the same timeouts), sends the same body and
message attributes, and logs one JSON line per answer through the standard library when logging is on.

(b) The same handler under Powertools' idempotency utility (`@idempotent`, a DynamoDB persistence
layer on its own table keyed `id`, the key taken from the Idempotency-Key header), with the same
DynamoDB client settings. The wrapped function raises on a failure, as Powertools' documentation asks,
so that the utility deletes its record and a retry can run again; the outermost function turns the
exception into the same 503 answer.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from adapters.runtime.clients import make_client

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
log = logging.getLogger("bench.plain")
log.propagate = False


def configure_logging(level: int, stream: TextIO | None) -> None:
    """The plain handler's logs: one JSON line per answer at INFO, to `stream`."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
    if stream is not None:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(level)


def _answer(status: int, body: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "X-Correlation-Id": correlation_id}
    return {"statusCode": status, "headers": headers, "body": json.dumps(body), "isBase64Encoded": False}


def _log(event: str, **fields: Any) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps({"event": event, "level": "info", "timestamp": time.time(), **fields}))


class PlainHandler:
    """(a): the naive two-writes-and-a-send handler. Clients are made at the first invocation."""

    def __init__(self, table: str, queue_url: str, aws_max_attempts: int = 3) -> None:
        self.table = table
        self.queue_url = queue_url
        self.aws_max_attempts = aws_max_attempts
        self._clients: tuple[Any, Any] | None = None

    def clients(self) -> tuple[Any, Any]:
        if self._clients is None:
            self._clients = (
                make_client("dynamodb", self.aws_max_attempts),
                make_client("sqs", self.aws_max_attempts),
            )
        return self._clients

    def core(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The flow; raises when AWS fails (after rolling a failed send back)."""
        dynamodb, sqs = self.clients()
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        correlation_id = headers.get("x-correlation-id") or str(uuid.uuid4())
        document = json.loads(event.get("body") or "{}")
        payload = json.dumps(document.get("payload"), separators=(",", ":"), ensure_ascii=False)
        attributes: dict[str, str] = document.get("attributes") or {}
        message_id = str(uuid.uuid4())
        now = str(time.time_ns() // 1_000_000)
        key = {"message_id": {"S": message_id}}
        dynamodb.put_item(
            TableName=self.table,
            Item={
                **key,
                "status": {"S": "PENDING"},
                "payload": {"S": payload},
                "attributes": {"M": {k: {"S": v} for k, v in attributes.items()}},
                "correlation_id": {"S": correlation_id},
                "created_at": {"N": now},
                "updated_at": {"N": now},
            },
        )
        self._set_status(dynamodb, key, "QUEUED")
        try:
            sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=payload,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in {"message_id": message_id, **attributes}.items()
                },
            )
        except (ClientError, BotoCoreError):
            self._set_status(dynamodb, key, "PENDING")  # the rollback; if it fails, the record stays QUEUED
            raise
        _log("answer", status=202, message_id=message_id, correlation_id=correlation_id)
        return _answer(202, {"messageId": message_id, "status": "QUEUED"}, correlation_id)

    def _set_status(self, dynamodb: Any, key: dict[str, Any], status: str) -> None:
        dynamodb.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression="SET #s = :s, updated_at = :t",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}, ":t": {"N": str(time.time_ns() // 1_000_000)}},
        )

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return guarded(self.core)(event, context)


def guarded(function: Handler) -> Handler:
    """The Lambda entry point around a flow: an AWS failure (or any exception) becomes a 503."""

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        try:
            return function(event, context)
        except Exception as exc:
            correlation_id = str(uuid.uuid4())
            _log("answer", status=503, error=type(exc).__name__, correlation_id=correlation_id)
            return _answer(503, {"error": {"code": "SYSTEM_ERROR"}}, correlation_id)

    return handler


def with_powertools(plain: PlainHandler, idempotency_table: str) -> Handler:
    """(b): the plain handler under `@idempotent`, keyed on the Idempotency-Key header."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent,
    )

    store = DynamoDBPersistenceLayer(
        table_name=idempotency_table, boto3_client=make_client("dynamodb", plain.aws_max_attempts)
    )
    config = IdempotencyConfig(event_key_jmespath='headers."idempotency-key"')

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return plain.core(event, context)

    wrapped: Handler = idempotent(persistence_store=store, config=config)(handler)
    return guarded(wrapped)
