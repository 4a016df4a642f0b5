"""Lambda SQS events for a consumer's tests: a record built by hand, or from a message received from
a queue (what the event source mapping hands the function), in Lambda's shape."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:events"
_SQS_IDS = itertools.count(1)


def sqs_record(
    body: str,
    *,
    key: str | None = None,
    key_attribute: str = "message_id",
    attributes: Mapping[str, str] | None = None,
    sqs_message_id: str | None = None,
    group_id: str | None = None,
    receive_count: int = 1,
    queue_arn: str = QUEUE_ARN,
) -> dict[str, Any]:
    """One record of a Lambda SQS event. `key`: set as the `key_attribute` message attribute (as
    sendguard's outbox sets `message_id`); each call gets a new SQS message id unless given."""
    message_attributes = {
        name: {"stringValue": value, "dataType": "String"} for name, value in (attributes or {}).items()
    }
    if key is not None:
        message_attributes[key_attribute] = {"stringValue": key, "dataType": "String"}
    system = {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "0"}
    if group_id is not None:
        system["MessageGroupId"] = group_id
    return {
        "messageId": sqs_message_id or f"sqs-{next(_SQS_IDS)}",
        "receiptHandle": "handle",
        "body": body,
        "attributes": system,
        "messageAttributes": message_attributes,
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: Mapping[str, Any]) -> dict[str, Any]:
    return {"Records": [dict(r) for r in records]}


def from_received(message: Mapping[str, Any], queue_arn: str = QUEUE_ARN) -> dict[str, Any]:
    """A record of a Lambda SQS event from a message `ReceiveMessage` returned (asked with
    `AttributeNames=["All"]` and `MessageAttributeNames=["All"]`)."""
    attributes = {
        name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType", "String")}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message.get("ReceiptHandle", ""),
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }
