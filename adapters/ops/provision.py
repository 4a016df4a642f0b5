"""Creates the table (with the reconciler's sparse index) and the queue, idempotently.

Everything goes through the default boto3 session, so `AWS_ENDPOINT_URL` (or
`AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`) points it at moto or any other endpoint. On AWS
the SAM template (deploy/template.yaml) is the way to create them; this is for local runs and tests.
"""

from __future__ import annotations

import contextlib
from typing import Any

import boto3

from adapters.runtime.store import INDEX, KEY

TABLE_DEFINITION: dict[str, Any] = {
    "KeySchema": [{"AttributeName": KEY, "KeyType": "HASH"}],
    "AttributeDefinitions": [
        {"AttributeName": KEY, "AttributeType": "S"},
        {"AttributeName": "attention", "AttributeType": "S"},
        {"AttributeName": "attention_at", "AttributeType": "N"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": INDEX,
            "KeySchema": [
                {"AttributeName": "attention", "KeyType": "HASH"},
                {"AttributeName": "attention_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def ensure_resources(table_name: str, queue_name: str, *, fifo: bool = False) -> str:
    """Creates what is missing and returns the queue URL. Safe to run again."""
    session = boto3.Session()
    dynamodb = session.client("dynamodb")
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):  # it exists already
        dynamodb.create_table(TableName=table_name, **TABLE_DEFINITION)
    dynamodb.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    sqs = session.client("sqs")
    if fifo and not queue_name.endswith(".fifo"):
        queue_name += ".fifo"
    attributes: dict[Any, str] = {"FifoQueue": "true"} if fifo else {}
    url: str = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    return url
