"""Creates the table (with the reconciler's sparse index) and the queue, idempotently.

Its clients are the runtime's (`make_client`: region, credentials and endpoints from the environment,
short timeouts, few attempts), so `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_DYNAMODB` /
`AWS_ENDPOINT_URL_SQS`) points it at moto or any other endpoint. On AWS the SAM template
(deploy/template.yaml) is the way to create them; this is for local runs and tests.
"""

from __future__ import annotations

import contextlib
from typing import Any

from adapters.runtime.clients import make_client
from adapters.runtime.codec import ATTENTION, ATTENTION_AT, INDEX
from adapters.runtime.layout import TableLayout


def table_definition(layout: TableLayout | None = None) -> dict[str, Any]:
    """CreateTable's parameters (less TableName) for a layout: its key, and the sparse index."""
    layout = layout or TableLayout()
    keys = [(layout.partition_key, "HASH")] + ([(layout.sort_key, "RANGE")] if layout.sort_key else [])
    return {
        "KeySchema": [{"AttributeName": name, "KeyType": kind} for name, kind in keys],
        "AttributeDefinitions": [
            *({"AttributeName": name, "AttributeType": "S"} for name, _ in keys),
            {"AttributeName": ATTENTION, "AttributeType": "S"},
            {"AttributeName": ATTENTION_AT, "AttributeType": "N"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": INDEX,
                "KeySchema": [
                    {"AttributeName": ATTENTION, "KeyType": "HASH"},
                    {"AttributeName": ATTENTION_AT, "KeyType": "RANGE"},
                ],
                # Keys only: an entry stays ~100 bytes, one write unit whatever the message's size;
                # a pass reads the records it names by key (`DueIndex.current`).
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


TABLE_DEFINITION: dict[str, Any] = table_definition()  # sendguard's own table
ATTEMPTS = 3  # per call: a wrong endpoint fails in seconds, not after the default retries' minute


def ensure_resources(
    table_name: str,
    queue_name: str,
    *,
    fifo: bool = False,
    layout: TableLayout | None = None,
    bucket: str | None = None,
) -> str:
    """Creates what is missing — a table for `layout` (default: sendguard's own) with the
    reconciler's index, the queue and, when named, the body bucket — and returns the queue URL.
    Safe to run again."""
    if bucket is not None:
        s3 = make_client("s3", ATTEMPTS)
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            region = s3.meta.region_name
            where = (
                {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            )
            s3.create_bucket(Bucket=bucket, **where)
    ensure_table(table_name, layout)
    return ensure_queue(queue_name, fifo=fifo)


def ensure_table(table_name: str, layout: TableLayout | None = None) -> None:
    """Creates the table for `layout` with the reconciler's index, if it does not exist."""
    dynamodb = make_client("dynamodb", ATTEMPTS)
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):  # it exists already
        dynamodb.create_table(TableName=table_name, **table_definition(layout))
    dynamodb.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def ensure_queue(queue_name: str, *, fifo: bool = False) -> str:
    """Creates the queue (a FIFO one's name ends in `.fifo`: added when missing), if it does not
    exist, and returns its URL."""
    sqs = make_client("sqs", ATTEMPTS)
    if fifo and not queue_name.endswith(".fifo"):
        queue_name += ".fifo"
    attributes: dict[Any, str] = {"FifoQueue": "true"} if fifo else {}
    url: str = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    return url
