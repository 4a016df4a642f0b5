"""Several `Send` effects in one SendMessageBatch: each entry is the very request `sqs.send_request`
makes for it, and each comes back with its own outcome.

SQS answers a batch entry by entry: a `Successful` entry carries its message id (`Sent`); a `Failed`
entry was not enqueued and carries its code. A `SenderFault` entry is permanent (the request itself
is wrong for SQS: a disabled key, a message too large, an invalid attribute); the rest are classified
by their code as a 5xx answer of theirs would be (throttling retryable; a server-side failure
retryable, not ambiguous — SQS says the entry was not enqueued). A request that fails as a whole
fails every entry with the same classification as a SendMessage would (a timeout after it left is
ambiguous for every entry).

A batch holds at most `SQS_MAX_BATCH_ENTRIES` entries and `SQS_MAX_BATCH_BYTES` of messages
(`statemodel.sizes`: every queue's and region's limit; SQS allows 1 MiB where the queue's
MaximumMessageSize does); a message too large to share a batch goes alone, as one SendMessage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from adapters.runtime.call_report import CallReport, call, outcome_of
from adapters.runtime.classify import Classified, classify_code, failed
from adapters.runtime.sqs import SqsQueue, send_request
from statemodel.categories import ErrorCategory
from statemodel.flows import Outcome, Send, Sent
from statemodel.sizes import SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES, sqs_message_bytes

MAX_ENTRIES = SQS_MAX_BATCH_ENTRIES  # SendMessageBatch's limits (statemodel.sizes)
MAX_BATCH_BYTES = SQS_MAX_BATCH_BYTES  # the sum of the entries' message sizes


def message_size(send: Send) -> int:
    """SQS's count for one message, as `send_request` makes it (`statemodel.sizes.sqs_message_bytes`)."""
    request = send_request(send, "")
    attributes = request["MessageAttributes"].items()
    typed = ((name, value["DataType"], value["StringValue"]) for name, value in attributes)
    return sqs_message_bytes(request["MessageBody"], typed)


def batches(sends: Sequence[Send], destination: Callable[[Send], str] = lambda _: "") -> list[list[int]]:
    """The sends' indexes grouped into batches: one queue each (`destination`), in order within it,
    at most `MAX_ENTRIES` and `MAX_BATCH_BYTES` each (a message larger than that alone)."""
    by_queue: dict[str, list[int]] = {}
    for index, send in enumerate(sends):
        by_queue.setdefault(destination(send), []).append(index)
    groups: list[list[int]] = []
    for indexes in by_queue.values():
        size = 0
        first = len(groups)
        for index in indexes:
            this = message_size(sends[index])
            if len(groups) == first or len(groups[-1]) == MAX_ENTRIES or size + this > MAX_BATCH_BYTES:
                groups.append([])
                size = 0
            groups[-1].append(index)
            size += this
    return groups


def entry_failure(entry: dict[str, Any], operation_model: Any = None) -> Classified:
    """What one `Failed` entry of a SendMessageBatch answer means for the protocol."""
    code = str(entry.get("Code") or "BatchEntryFailed")
    said = entry.get("Message")  # SQS's words, for the logs
    if entry.get("SenderFault"):
        return failed(ErrorCategory.PERMANENT, code, message=said)
    classified = classify_code(code, 500, operation_model)
    if classified.category is ErrorCategory.AMBIGUOUS:  # reported failed: it was not enqueued
        return failed(ErrorCategory.RETRYABLE, code, throttling=classified.throttling, message=said)
    return failed(classified.category, code, throttling=classified.throttling, message=said)


def send_batch(
    queue: SqsQueue, sends: Sequence[Send], deadline_ms: int | None
) -> list[tuple[Outcome, CallReport]]:
    """One SendMessageBatch of up to `MAX_ENTRIES` sends to one queue (`batches`); an outcome and a
    report per send, in order."""
    if len(sends) == 1:  # a batch of one is a SendMessage: the same request count, the plain API
        return [queue.perform(sends[0], deadline_ms)]
    queue_url = queue.destination(sends[0])
    assert all(queue.destination(send) == queue_url for send in sends), "one queue a batch"
    entries = []
    for index, send in enumerate(sends):
        request = send_request(send, queue_url)
        del request["QueueUrl"]
        entries.append({"Id": str(index), **request})
    client = queue.client
    response, done = call(  # the queue's classifier, as its own sends use
        client,
        "sqs",
        "SendMessageBatch",
        lambda: client.send_message_batch(QueueUrl=queue_url, Entries=entries),
        deadline_ms,
        queue.classify,
    )
    if isinstance(response, Classified):
        return [(outcome_of(response), done) for _ in sends]
    model = client.meta.service_model.operation_model("SendMessageBatch")
    results: list[tuple[Outcome, CallReport] | None] = [None] * len(sends)
    for entry in response.get("Successful", []):
        results[int(entry["Id"])] = (Sent(entry["MessageId"]), done)
    for entry in response.get("Failed", []):
        error = entry_failure(entry, model)
        results[int(entry["Id"])] = (outcome_of(error), attrs.evolve(done, error=error))
    missing = failed(ErrorCategory.AMBIGUOUS, "BatchEntryMissing")  # an answer SQS never gives
    return [
        result if result is not None else (outcome_of(missing), attrs.evolve(done, error=missing))
        for result in results
    ]
