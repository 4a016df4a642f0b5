"""The message on SQS: each `Send` effect becomes one SendMessage.

A record names its queue (`Message.queue`, written when it was created): every send of it goes
there, whoever sends it; a record written before records named their queue goes to the sender's own.
The body is the payload's JSON text; the message attribute `message_id` carries the record's id
(`statemodel.keys`: the key itself, or a composite key's encoding), so that a consumer can
deduplicate the at-least-once deliveries that an ambiguous send allows. On a FIFO queue the group is
the `group` attribute (or the message id) and the deduplication id is the message id, so SQS itself
drops a re-drive that lands within its five-minute deduplication window.
"""

from __future__ import annotations

from typing import Any

from adapters.runtime.call_report import CallReport, call, outcome_of
from adapters.runtime.classify import Classifier, classify
from statemodel.flows import Outcome, Send, Sent
from statemodel.validation import RESERVED_ATTRIBUTE


def send_request(send: Send, queue_url: str) -> dict[str, Any]:
    attributes = {RESERVED_ATTRIBUTE: send.message.message_id, **dict(send.message.attributes)}
    request: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MessageBody": send.body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
    }
    if queue_url.endswith(".fifo"):
        request["MessageGroupId"] = send.group_id
        request["MessageDeduplicationId"] = send.deduplication_id
    elif send.message.group_id is not None:  # a standard queue takes a group too (SQS fair queues)
        request["MessageGroupId"] = send.message.group_id
    return request


class SqsQueue:
    """Sends each message to its record's queue (`queue_url`: that of a record that names none).
    `classify` files each failed send (`adapters.runtime.classify`)."""

    def __init__(self, client: Any, queue_url: str, *, classify: Classifier = classify) -> None:
        self.client = client
        self.queue_url = queue_url
        self.classify = classify

    def destination(self, send: Send) -> str:
        """The queue URL `send` goes to."""
        return send.message.queue or self.queue_url

    def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
        request = send_request(send, self.destination(send))
        sent, done = call(
            self.client,
            "sqs",
            "SendMessage",
            lambda: self.client.send_message(**request),
            deadline_ms,
            self.classify,
            answered=lambda response: Sent(response["MessageId"]),
        )
        return (outcome_of(sent), done)
