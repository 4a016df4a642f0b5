"""The three submit functions the benchmarks compare, behind one shape, and the requests they get.

`sendguard` is `adapters.aws_lambda.submit`, configured through its environment variables as on
Lambda; `plain` and `powertools` are `bench.baseline`'s. Each `Flow` knows its handler, its table and
queue, and how to find the record a request left behind.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from adapters import aws_lambda
from adapters.local.sandbox import LambdaContext
from bench import baseline
from bench.moto_env import Resources, environment
from statemodel.validation import message_id_for_key

SENDGUARD, PLAIN, POWERTOOLS = "sendguard", "plain", "powertools"
NAMES = (SENDGUARD, PLAIN, POWERTOOLS)
INVOCATION_MS = 30_000  # the function's timeout, which each invocation's context counts down from


@attrs.frozen
class Flow:
    name: str
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    table: str
    queue_url: str


def body(index: int, payload_bytes: int = 0) -> str:
    """A request like the demo's: an order, and a group attribute; `payload_bytes` pads the payload."""
    payload: dict[str, Any] = {"order": index, "sku": f"SKU-{index % 10_000:04d}", "quantity": 3}
    if payload_bytes:
        payload["note"] = "x" * max(0, payload_bytes - len(json.dumps(payload)) - 12)
    return json.dumps({"payload": payload, "attributes": {"group": "eu"}})


def post_event(text: str, key: str | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event for POST /messages."""
    headers = {"content-type": "application/json"} | ({"idempotency-key": key} if key else {})
    return {
        "version": "2.0",
        "routeKey": "POST /messages",
        "rawPath": "/messages",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/messages"}, "requestId": str(uuid.uuid4())},
        "body": text,
        "isBase64Encoded": False,
    }


def context() -> LambdaContext:
    return LambdaContext(INVOCATION_MS)


def sendguard_env(resources: Resources, log_level: str = "CRITICAL") -> dict[str, str]:
    bucket = resources.body_bucket
    return {
        "SENDGUARD_TABLE": resources.sendguard_table,
        "SENDGUARD_QUEUE_URL": resources.sendguard_queue,
        "SENDGUARD_LOG_LEVEL": log_level,
    } | ({} if bucket is None else {"SENDGUARD_BODY_BUCKET": bucket})


@contextlib.contextmanager
def flows(resources: Resources, log_level: str = "CRITICAL") -> Iterator[dict[str, Flow]]:
    """The three flows on `resources`, each with fresh clients (made at its first invocation, so that
    whatever is installed in botocore by then — meter, fault injector, moto — rides on them)."""
    plain = baseline.PlainHandler(resources.plain_table, resources.plain_queue)
    wrapped_plain = baseline.PlainHandler(resources.plain_table, resources.plain_queue)
    with environment(sendguard_env(resources, log_level)):
        aws_lambda.reset()
        try:
            yield {
                SENDGUARD: Flow(
                    SENDGUARD, aws_lambda.submit, resources.sendguard_table, resources.sendguard_queue
                ),
                PLAIN: Flow(PLAIN, plain, resources.plain_table, resources.plain_queue),
                POWERTOOLS: Flow(
                    POWERTOOLS,
                    baseline.with_powertools(wrapped_plain, resources.idempotency_table),
                    resources.plain_table,
                    resources.plain_queue,
                ),
            }
        finally:
            aws_lambda.reset()


def sendguard_message_id(key: str) -> str:
    return message_id_for_key(key)
