"""The message on SQS: each `Send` effect becomes one SendMessage.

The body is the payload's JSON text; the message attribute `message_id` carries the record's id, so
that a consumer can deduplicate the at-least-once deliveries that an ambiguous send allows. On a FIFO
queue the group is the `group` attribute (or the message id) and the deduplication id is the message
id, so SQS itself drops a re-drive that lands within its five-minute deduplication window.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from adapters.runtime.call_report import CallReport, report
from adapters.runtime.classify import Classifier, classify
from adapters.runtime.clients import DeadlineExceeded, aws_call
from statemodel.flows import Failed, Outcome, Send, Sent
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
    """Sends to one queue. `classify` files each failed send (`adapters.runtime.classify`)."""

    def __init__(self, client: Any, queue_url: str, *, classify: Classifier = classify) -> None:
        self.client = client
        self.queue_url = queue_url
        self.classify = classify
        self._model = client.meta.service_model.operation_model("SendMessage")

    def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
        started = time.perf_counter()
        error = None
        with aws_call(deadline_ms) as call:
            try:
                response = self.client.send_message(**send_request(send, self.queue_url))
                outcome: Outcome = Sent(response["MessageId"])
            except (ClientError, BotoCoreError, DeadlineExceeded) as exc:
                error = self.classify(exc, self._model)
                outcome = Failed(error.category, error.code)
        return outcome, report("sqs", "SendMessage", call.attempts, started, error)
