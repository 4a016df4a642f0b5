"""In-process AWS for the benchmarks (moto's `mock_aws`), and the tables and queues of the flows compared.

Fake credentials and no endpoint overrides, as in the test suite's `sendguard_aws` fixture, so that
nothing can reach a real account.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import boto3

from adapters.local.sandbox import FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS, environment
from adapters.ops.provision import ensure_resources

__all__ = ["Resources", "environment", "in_process_aws", "provision"]


@contextlib.contextmanager
def in_process_aws() -> Iterator[None]:
    from moto import mock_aws

    with environment(FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS), mock_aws():
        yield


@attrs.frozen
class Resources:
    """One set of resources: sendguard's table (with its sparse index) and queue; the plain flow's
    table and queue; Powertools' idempotency table."""

    sendguard_table: str
    sendguard_queue: str
    plain_table: str
    plain_queue: str
    idempotency_table: str
    body_bucket: str | None = None  # sendguard's, for bodies too large for an item (section 1 only)


def _table(name: str, key: str) -> None:
    client: Any = boto3.client("dynamodb")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def provision(prefix: str = "bench", *, body_bucket: bool = False) -> Resources:
    """Fresh resources with unique names (moto must be active); `body_bucket`: sendguard gets one."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    bucket = f"{name}-bodies" if body_bucket else None
    sendguard_queue = ensure_resources(f"{name}-sg", f"{name}-sg", bucket=bucket)
    _table(f"{name}-plain", "message_id")
    _table(f"{name}-idem", "id")
    plain_queue: str = boto3.client("sqs").create_queue(QueueName=f"{name}-plain")["QueueUrl"]
    return Resources(f"{name}-sg", sendguard_queue, f"{name}-plain", plain_queue, f"{name}-idem", bucket)
