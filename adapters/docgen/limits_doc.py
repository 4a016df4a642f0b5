"""docs/limits.md: every limit sendguard enforces or inherits, in one table. The size rows are
`statemodel.sizes`'s constants, each value read from the module; the rest (timeouts, the stack's
settings) are the other modules' and the template's, written here once."""

from __future__ import annotations

from statemodel import sizes as s


def _n(value: int) -> str:
    return f"{value:,}"


def size_rows() -> list[tuple[str, str, str]]:
    """(limit, value, why) for each of `statemodel.sizes`'s limits a caller meets."""
    return [
        (
            "Payload (or library body) plus attributes",
            f"{_n(s.MAX_MESSAGE_BYTES)} bytes; {_n(s.MAX_MESSAGE_BYTES_WITH_BUCKET)} with a body bucket "
            "(`SENDGUARD_BODY_BUCKET`, `Outbox(body_bucket=…)`)",
            "A payload too large for its record goes to a body item of its own; a DynamoDB item holds "
            f"{_n(s.DYNAMODB_MAX_ITEM_BYTES)} bytes less its key (moto refuses past 405,000). With the "
            f"bucket a larger one goes to S3, up to SQS's 1 MiB less {s.SQS_ATTRIBUTE_ROOM_BYTES} bytes for "
            "the attributes' types and `message_id`. Where a body is kept, and why there: "
            "[library.md, What a record costs](library.md#what-a-record-costs) "
            "(`statemodel.sizes.placement`).",
        ),
        (
            "Attributes plus `item` (a team's own row attributes)",
            f"{_n(s.MAX_RECORD_EXTRA_BYTES)} bytes, with the record's key",
            f"They stay in the record: {s.RECORD_OVERHEAD_BYTES // 1024} KiB of its item are kept for "
            f"sendguard's fields and history ({s.MAX_ATTEMPTS_LIMIT} attempts of history measure about "
            "7.5 KB).",
        ),
        (
            "Raw request body (API)",
            f"{_n(s.MAX_BODY_BYTES)} bytes (1 MiB + {(s.MAX_BODY_BYTES - s.SQS_MAX_MESSAGE_BYTES) // 1024} "
            "KiB), before parsing",
            "Larger bodies are refused unread.",
        ),
        ("JSON nesting (API payload)", f"{s.MAX_DEPTH} levels", ""),
        (
            "Message attributes",
            f"at most {s.MAX_ATTRIBUTES}; names 1–{s.SQS_MAX_ATTRIBUTE_NAME_CHARS} characters of "
            "`A-Za-z0-9_-.`; values non-empty strings",
            f"SQS takes {s.SQS_MAX_ATTRIBUTES} and sendguard uses one, `{s.RESERVED_ATTRIBUTE}`. A refusal "
            "names the attribute and the limit.",
        ),
        (
            "`item` attribute names",
            f"1–{s.DYNAMODB_MAX_NAME_BYTES} bytes, none of sendguard's",
            "DynamoDB's limit for a name a key or an index may hold.",
        ),
        (
            "`Idempotency-Key`, `X-Correlation-Id` (API)",
            f"1–{s.SQS_MAX_ID_CHARS} characters of `A-Za-z0-9._:-`",
            "The key is logged as given ([api.md, Logs](api.md#logs)): no personal data in it.",
        ),
        (
            "Library string key, FIFO `group_id`",
            f"1–{s.SQS_MAX_ID_CHARS} printable ASCII characters, no spaces",
            "SQS's deduplication-id alphabet: the key is the message id. A (partition, sort) pair takes "
            "any key values.",
        ),
        (
            "Key values of a pair",
            f"strings of 1–{_n(s.DYNAMODB_MAX_PARTITION_BYTES)} bytes (partition), "
            f"1–{_n(s.DYNAMODB_MAX_SORT_BYTES)} bytes (sort)",
            f"DynamoDB's. A pair whose message id would pass {s.SQS_MAX_ID_CHARS} characters is named by "
            "a digest ([library.md](library.md)).",
        ),
        (
            "Attempts (`MaxAttempts`, `SENDGUARD_MAX_ATTEMPTS`)",
            f"at most {s.MAX_ATTEMPTS_LIMIT} (default 10)",
            "Bounds the history, and so the item's size. With the defaults, retryable failures re-drive "
            "a record for roughly 10 to 20 minutes before it is flagged exhausted (derived); a permanent "
            "error flags it at once.",
        ),
        (
            "Re-arm",
            f"room for {_n(s.ATTEMPT_HISTORY_BYTES)} bytes of history per attempt of the fresh budget; "
            f"`by` and `reason` at most {s.REARM_MAX_TEXT_CHARS} characters",
            f"The item must still fit in {_n(s.DYNAMODB_MAX_ITEM_BYTES)} bytes, else `no_room`.",
        ),
        (
            "Reconciler batch",
            f"`SendMessageBatch` groups of at most {s.SQS_MAX_BATCH_ENTRIES} entries and "
            f"{s.SQS_MAX_BATCH_BYTES // 1024} KiB",
            "SQS's limits on every queue; a message too large to share a batch goes alone.",
        ),
        (
            "Inbox transactional effect",
            f"at most {s.INBOX_MAX_EFFECT_ENTRIES} entries",
            f"DynamoDB takes {s.DYNAMODB_MAX_TRANSACTION_ITEMS} in a transaction; one is the inbox's "
            "([inbox.md](inbox.md)).",
        ),
        (
            "Inbox guarded result",
            f"at most {s.INBOX_MAX_RESULT_BYTES // 1024} KiB as JSON",
            "Kept in the inbox record, answered to every duplicate.",
        ),
        (
            "Inbox message key",
            f"1–{_n(s.INBOX_MAX_KEY_BYTES)} bytes of UTF-8",
            "A message without one that fits is not processed (`key_missing`).",
        ),
    ]


# The other limits: the runtime's timeouts and the stack's settings (adapters/runtime/clients.py,
# deploy/template.yaml), as written.
OTHER_ROWS = [
    (
        "AWS call attempt",
        "0.5 s to connect, at most 3 s to read; not started with less than 100 ms of read time left",
        "Every attempt ends before the invocation does ([library.md, Deadlines](library.md#deadlines)).",
    ),
    (
        "Lease",
        "now + the invocation's remaining time + `LeaseMarginSeconds` (30): at most 40 s for the submit "
        "function, 90 s for the reconciler",
        "The functions' timeouts: submit 10 s (under API Gateway's 30 s), reconciler 60 s "
        "([operations.md, Runtime](operations.md#runtime-architecture-memory-and-timeouts-why-these)).",
    ),
    (
        "Re-drive delay",
        "a PENDING record waits `RedriveAfterSeconds` (60), then the next pass (every minute)",
        "How long a crash takes to mend: "
        "[operations.md, Runtime](operations.md#runtime-architecture-memory-and-timeouts-why-these).",
    ),
    ("Index shards (`IndexShards`)", "1–256 (default 4)", ""),
    (
        "Accepted messages a second",
        "~500 per index shard (~2,000 with the default 4), index entries ≤ 1 KB",
        "DynamoDB's 1,000 write units a second per partition key value, on the `attention` index "
        "([operations.md, Throughput](operations.md#throughput-index-shards-and-reconciler-workers)).",
    ),
    (
        "Reconciler pass",
        "pages of 25 records per index partition; 1–10 worker threads; time budget 60 s",
        "",
    ),
    (
        "Reconciler fan-out (`ReconcilerFanout`)",
        "1–256 worker invocations a pass, at most one per index shard",
        "At most 2 × F + 2 concurrent executions of the account's 1,000 (default); drain rates and "
        "times by F: [benchmarks.md](benchmarks.md) section 7.",
    ),
    (
        "Retention (`RetentionDays`)",
        "0 (never) to 3,650 days",
        "[operations.md, Retention](operations.md#retention).",
    ),
    (
        "Queue retention",
        "`Queue` 7 days (`QueueRetentionSeconds`, at most 12); dead-letter queue 14 days, the SQS "
        "maximum, from the first enqueue",
        "Messages your consumers have not read by then are gone.",
    ),
    (
        "API throttling",
        "100 requests a second, bursts of 200 (`ApiThrottlingRateLimit`, `ApiThrottlingBurstLimit`)",
        "API Gateway answers 429 itself, without a sendguard body.",
    ),
]

_TEMPLATE = """<!-- Generated by `make docs` from statemodel/sizes.py (adapters/docgen/limits_doc.py). Do not
     edit: `make docs-check` fails when this file and the code disagree. -->
# Limits

Every limit sendguard enforces or inherits, in one table; the other pages link here. The size limits
(the first {sizes} rows) are the constants of `statemodel/sizes.py`, the one module that holds them
and the rules that apply them, each with the AWS quota it comes from; the rest are
`adapters/runtime/clients.py`'s (timeouts) and `deploy/template.yaml`'s (the stack's). A message past
a size or key limit is refused — 413 `PAYLOAD_TOO_LARGE` or 400 `VALIDATION_ERROR` from the API
([api.md](api.md#errors)), `InvalidMessage` from the library ([library.md](library.md)) — and
nothing is written. The settings' own ranges (`max_attempts` 1–20, `redrive_after_seconds`
1–86,400, …) are in [library.md, Configuration](library.md#configuration-outbox-and-outboxfrom_env).

| Limit | Value | Why, or where it comes from |
|---|---|---|
{rows}

API Gateway's own limits (a 30-second integration timeout, 10 MB requests) and Lambda's (6 MB
synchronous payloads) lie above sendguard's.
"""


def render() -> str:
    sized = size_rows()
    rows = "\n".join(
        f"| {what} | {value} |{f' {why}' if why else ''} |" for what, value, why in [*sized, *OTHER_ROWS]
    )
    return _TEMPLATE.format(sizes=len(sized), rows=rows)
