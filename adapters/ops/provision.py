"""Creates the table (with the reconciler's sparse index) and the queue, idempotently.

Its clients are the runtime's (`make_client`: short timeouts, few attempts), of the team's boto3 Session
when one is given (its credentials, region and endpoints, as `Outbox(session=...)`), else of the
environment's: then `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS` /
`AWS_ENDPOINT_URL_S3`) points it at moto or any other endpoint. On AWS the SAM template
(deploy/template.yaml) is the way to create them; this is for local runs and tests.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

import boto3

from adapters.runtime.clients import make_client
from adapters.runtime.codec import ATTENTION, ATTENTION_AT, INDEX
from adapters.runtime.config import ConfigError
from adapters.runtime.config import body_bucket as bucket_name
from adapters.runtime.layout import TableLayout, given_layout
from adapters.runtime.table_check import (
    index_problem,
    key_types_problem,
    keys_differ,
    layout_keys,
    records_problem,
    table_keys,
)
from statemodel.sizes import SQS_MAX_QUEUE_NAME_CHARS


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
    session: boto3.Session | None = None,
) -> str:
    """Creates what is missing — a table for `layout` (None: sendguard's own, `TableLayout()`) with
    the reconciler's index, the queue and, when named, the S3 `bucket` for large bodies (the
    Outbox's `body_bucket`, in the session's region) — and returns the queue URL. Every client is of
    `session` (the team's: credentials, region, endpoints), else of the environment's.
    Safe to run again. Raises ConfigError, in one line, for a queue name SQS refuses (a FIFO queue's
    must end in `.fifo` and a standard one's must not; 1 to 80 letters, digits, `-` and `_`) and a
    bucket name S3 refuses, checked before anything is created, and for an existing table that does
    not fit `layout` (its key, its `attention` index, or the status and body attributes a record the
    index names holds), checked before the bucket and the queue are made: an existing table is never
    changed."""
    layout = given_layout(layout)
    queue_problem = queue_name_problem(queue_name, fifo)
    if queue_problem is not None:
        raise ConfigError(queue_problem)
    bucket = bucket_name(bucket, "bucket")  # S3's rule, as Outbox(body_bucket=...) checks it
    ensure_table(table_name, layout, session=session)
    if bucket is not None:
        s3 = make_client("s3", ATTEMPTS, session=session)
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            region = s3.meta.region_name
            where = (
                {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            )
            s3.create_bucket(Bucket=bucket, **where)
    return ensure_queue(queue_name, fifo=fifo, session=session)


class TableMismatch(ConfigError):
    """The table exists already, made for another layout (or without sendguard's index)."""


def ensure_table(
    table_name: str, layout: TableLayout | None = None, *, session: boto3.Session | None = None
) -> None:
    """Creates the table for `layout` with the reconciler's index, if it does not exist; an existing
    one must fit `layout` — its key, its index and, when the index names a record, that record's
    status and body attributes (TableMismatch, a ConfigError, says what it has and what was asked).
    `session`: the team's boto3 Session, else the environment's."""
    layout = given_layout(layout)
    dynamodb = make_client("dynamodb", ATTEMPTS, session=session)
    try:
        dynamodb.create_table(TableName=table_name, **table_definition(layout))
        existed = False
    except dynamodb.exceptions.ResourceInUseException:
        existed = True
    dynamodb.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    if existed:
        problem = table_problem(table_name, dynamodb.describe_table(TableName=table_name)["Table"], layout)
        if problem is None:  # what DescribeTable cannot tell, a record can: its status and body attributes
            found = records_problem(dynamodb, table_name, layout, in_code=True)
            problem = None if found is None else f"{found} (an existing table is never changed)"
        if problem is not None:
            raise TableMismatch(problem)


def table_problem(table_name: str, description: Mapping[str, Any], layout: TableLayout) -> str | None:
    """What the existing table `description` (DescribeTable's `Table`) has that `layout` does not
    ask for, in the terms of `TableLayout`; None when it fits."""
    if keys_differ(description, layout):
        return (
            f"table {table_name} exists with {table_keys(description)}, but the layout asks for "
            f"{layout_keys(layout)}: pass the TableLayout the table was made for, or another table name "
            "(an existing table is never changed)"
        )
    problem = key_types_problem(table_name, description, layout) or index_problem(table_name, description)
    return None if problem is None else f"{problem} (an existing table is never changed)"


def ensure_queue(queue_name: str, *, fifo: bool = False, session: boto3.Session | None = None) -> str:
    """Creates the queue if it does not exist, and returns its URL. A FIFO queue's name ends in
    `.fifo` and a standard queue's does not, within 80 letters, digits, `-` and `_` (SQS's rule):
    ConfigError otherwise, nothing created.
    `session`: the team's boto3 Session, else the environment's."""
    problem = queue_name_problem(queue_name, fifo)
    if problem is not None:
        raise ConfigError(problem)
    sqs = make_client("sqs", ATTEMPTS, session=session)
    attributes: dict[Any, str] = {"FifoQueue": "true"} if fifo else {}
    url: str = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    return url


# SQS's rule for a queue's name: up to SQS_MAX_QUEUE_NAME_CHARS of these characters.
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def queue_name_problem(queue_name: str, fifo: bool) -> str | None:
    """What SQS would refuse in `queue_name` for a queue of this kind, in one line; None when fine."""
    if fifo and not queue_name.endswith(".fifo"):
        return (
            f"queue {queue_name!r}: a FIFO queue's name must end in '.fifo' (SQS refuses any other); "
            f"name it {queue_name + '.fifo'!r}"
        )
    if not fifo and queue_name.endswith(".fifo"):
        return (
            f"queue {queue_name!r}: only a FIFO queue's name ends in '.fifo'; pass fifo=True (--fifo) "
            "for a FIFO queue, or drop '.fifo' from the name"
        )
    base = queue_name.removesuffix(".fifo") if fifo else queue_name
    if len(queue_name) > SQS_MAX_QUEUE_NAME_CHARS or not QUEUE_NAME.fullmatch(base):
        return (
            f"queue {queue_name!r}: a queue's name is 1 to {SQS_MAX_QUEUE_NAME_CHARS} letters, digits, "
            f"hyphens and underscores (a FIFO queue's ends in '.fifo', counted in the "
            f"{SQS_MAX_QUEUE_NAME_CHARS}): SQS refuses any other"
        )
    return None
