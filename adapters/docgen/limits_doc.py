"""docs/limits.md: every limit sendguard enforces or inherits, in one table. The size rows are
`statemodel.sizes`'s constants, each value read from the module; the rest (timeouts, the reconciler's
bounds, the stack's settings) are read from the modules that set them and from deploy/template.yaml:
no figure the code or the template sets is written here (tests/test_sizes_surface.py checks)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from statemodel import sizes as s
from statemodel.flows import Settings

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"


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
            f"bucket a larger one goes to S3, up to SQS's {_mib(s.SQS_MAX_MESSAGE_BYTES)} less "
            f"{s.SQS_ATTRIBUTE_ROOM_BYTES} bytes for "
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
            f"{_n(s.MAX_BODY_BYTES)} bytes ({_mib(s.SQS_MAX_MESSAGE_BYTES)} + "
            f"{(s.MAX_BODY_BYTES - s.SQS_MAX_MESSAGE_BYTES) // 1024} "
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
            f"at most {s.MAX_ATTEMPTS_LIMIT} (default {Settings().max_attempts})",
            "Bounds the history, and so the item's size. With the defaults, retryable failures re-drive "
            "a record for roughly 10 to 20 minutes before it is flagged exhausted (derived); a permanent "
            "error flags it at once.",
        ),
        (
            "Re-arm",
            f"`by` and `reason` at most {s.REARM_MAX_TEXT_CHARS} characters each; room for their entry "
            f"(in UTF-8 bytes) and {_n(s.ATTEMPT_HISTORY_BYTES)} bytes of history per attempt of the fresh "
            "budget",
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
            f"1–{_n(s.INBOX_MAX_KEY_BYTES)} bytes of UTF-8; `key_prefix` at most "
            f"{_n(s.INBOX_MAX_PREFIX_BYTES)}",
            "A message without one that fits is not processed (`key_missing`). With the prefix it is "
            f"the inbox record's partition key: DynamoDB takes {_n(s.DYNAMODB_MAX_PARTITION_BYTES)} bytes.",
        ),
    ]


# AWS's published quotas the rows below derive from, written once (the size quotas are
# statemodel.sizes's): DynamoDB's write units a second per partition key value, and Lambda's default
# concurrent executions per account and Region.
DYNAMODB_PARTITION_WRITE_UNITS = 1_000
API_GATEWAY_TIMEOUT_S = 30  # an HTTP API's integration timeout, at most
LAMBDA_DEFAULT_CONCURRENCY = 1_000
DAY_S = 86_400


def _mib(size: int) -> str:
    return f"{size / 1_048_576:g} MiB"


def _s(seconds: float) -> str:
    return f"{seconds:g} s"


def _days(seconds: int) -> str:
    return f"{seconds // DAY_S:,} days" if seconds % DAY_S == 0 else f"{seconds:,} s"


def _every(rate: str) -> str:
    """A schedule's `rate(1 minute)` as "every minute", `rate(5 minutes)` as "every 5 minutes"."""
    match = re.fullmatch(r"rate\((\d+) (\w+?)s?\)", rate)
    if match is None:
        raise ValueError(f"schedule {rate!r} is not a rate(N unit)")
    count, unit = match.groups()
    return f"every {unit}" if count == "1" else f"every {count} {unit}s"


def template() -> dict[str, Any]:
    """deploy/template.yaml as data. CloudFormation's tags (`!Ref`, `!If`, …) read as None: the rows
    read only plain values (parameters' bounds, timeouts, the schedule, a retention period)."""
    import yaml  # type: ignore[import-untyped]  # PyYAML, cfn-lint's (dev extra); no stubs installed

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    decoded = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=Loader)
    if not isinstance(decoded, dict):
        raise ValueError(f"{TEMPLATE} is not a template (a mapping)")
    return decoded


def other_rows(stack: Mapping[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(limit, value, why) for the runtime's timeouts (adapters/runtime/clients.py), the reconciler's
    and the settings' bounds (adapters/runtime/config.py, due_index.py, statemodel) and the stack's
    (`stack`: deploy/template.yaml, decoded): each figure read from where it is set."""
    from adapters.runtime.clients import CONNECT_TIMEOUT_S, MIN_READ_TIMEOUT_MS, READ_TIMEOUT_S
    from adapters.runtime.config import MAX_RETENTION_DAYS, MAX_WORKERS
    from adapters.runtime.due_index import PAGE
    from statemodel.attention import DEFAULT_SHARDS, MAX_SHARDS

    stack = template() if stack is None else stack
    parameters, resources = stack["Parameters"], stack["Resources"]
    margin = int(parameters["LeaseMarginSeconds"]["Default"])
    redrive = int(parameters["RedriveAfterSeconds"]["Default"])
    submit = int(resources["SubmitFunction"]["Properties"]["Timeout"])
    reconciler = int(resources["ReconcilerFunction"]["Properties"]["Timeout"])
    events = resources["ReconcilerFunction"]["Properties"]["Events"].values()
    schedule = _every(next(e["Properties"]["Schedule"] for e in events if e["Type"] == "Schedule"))
    per_shard = DYNAMODB_PARTITION_WRITE_UNITS // 2  # each accepted message writes its index entry twice
    queue = parameters["QueueRetentionSeconds"]
    dead_letters = int(resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"])
    rate, burst = parameters["ApiThrottlingRateLimit"], parameters["ApiThrottlingBurstLimit"]
    return [
        (
            "AWS call attempt",
            f"{_s(CONNECT_TIMEOUT_S)} to connect, at most {_s(READ_TIMEOUT_S)} to read; not started with "
            f"less than {MIN_READ_TIMEOUT_MS} ms of read time left",
            "Every attempt ends before the invocation does ([library.md, Deadlines](library.md#deadlines)).",
        ),
        (
            "Lease",
            f"now + the invocation's remaining time + `LeaseMarginSeconds` ({margin}): at most "
            f"{_s(submit + margin)} for the submit function, {_s(reconciler + margin)} for the reconciler",
            f"The functions' timeouts: submit {_s(submit)} (under API Gateway's "
            f"{_s(API_GATEWAY_TIMEOUT_S)}), reconciler {_s(reconciler)} "
            "([operations.md, Runtime](operations.md#runtime-architecture-memory-and-"
            "timeouts-why-these)).",
        ),
        (
            "Re-drive delay",
            f"a PENDING record waits `RedriveAfterSeconds` ({redrive}), then the next pass ({schedule})",
            "How long a crash takes to mend: "
            "[operations.md, Runtime](operations.md#runtime-architecture-memory-and-timeouts-why-these).",
        ),
        ("Index shards (`IndexShards`)", f"1–{MAX_SHARDS} (default {DEFAULT_SHARDS})", ""),
        (
            "Accepted messages a second",
            f"~{per_shard:,} per index shard (~{per_shard * DEFAULT_SHARDS:,} with the default "
            f"{DEFAULT_SHARDS}), index entries ≤ {s.DYNAMODB_WRITE_UNIT_BYTES // 1024} KB",
            f"DynamoDB's {DYNAMODB_PARTITION_WRITE_UNITS:,} write units a second per partition key value, "
            "on the `attention` index "
            "([operations.md, Throughput](operations.md#throughput-index-shards-and-reconciler-workers)).",
        ),
        (
            "Reconciler pass",
            f"pages of {PAGE} records per index partition; 1–{MAX_WORKERS} worker threads; time budget "
            f"{_s(reconciler)}",
            "",
        ),
        (
            "Reconciler fan-out (`ReconcilerFanout`)",
            f"1–{MAX_SHARDS} worker invocations a pass, at most one per index shard",
            f"At most 2 × F + 2 concurrent executions of the account's {LAMBDA_DEFAULT_CONCURRENCY:,} "
            "(default); drain rates and times by F: [benchmarks.md](benchmarks.md) section 7.",
        ),
        (
            "Retention (`RetentionDays`)",
            f"0 (never) to {MAX_RETENTION_DAYS:,} days",
            "[operations.md, Retention](operations.md#retention).",
        ),
        (
            "Queue retention",
            f"`Queue` {_days(int(queue['Default']))} (`QueueRetentionSeconds`, at most "
            f"{_days(int(queue['MaxValue']))}); dead-letter queue {_days(dead_letters)}, the SQS maximum, "
            "from the first enqueue",
            "Messages your consumers have not read by then are gone.",
        ),
        (
            "API throttling",
            f"{int(rate['Default'])} requests a second, bursts of {int(burst['Default'])} "
            "(`ApiThrottlingRateLimit`, `ApiThrottlingBurstLimit`)",
            "API Gateway answers 429 itself, without a sendguard body.",
        ),
    ]


_TEMPLATE = """<!-- Generated by `make docs` (adapters/docgen/limits_doc.py) from statemodel/sizes.py, the
     runtime's constants and deploy/template.yaml. Do not edit: `make docs-check` fails when this
     file and they disagree. -->
# Limits

Every limit sendguard enforces or inherits, in one table; the other pages link here. The size limits
(the first {sizes} rows) are the constants of `statemodel/sizes.py`, the one module that holds them
and the rules that apply them, each with the AWS quota it comes from; the rest are read from
`adapters/runtime/clients.py` (timeouts), `config.py` and `due_index.py` (the reconciler's bounds)
and `deploy/template.yaml` (the stack's), each figure from where it is set. A message past a size or
key limit is refused — 413 `PAYLOAD_TOO_LARGE` or 400 `VALIDATION_ERROR` from the API
([api.md](api.md#errors)), `InvalidMessage` from the library ([library.md](library.md)) — and
nothing is written. The settings' own ranges (`max_attempts` 1–{max_attempts}, `redrive_after_seconds`
1–{redrive_max}, …) are in [library.md, Configuration](library.md#configuration-outbox-and-outboxfrom_env).

| Limit | Value | Why, or where it comes from |
|---|---|---|
{rows}

API Gateway's own limits (a {api_timeout}-second integration timeout, 10 MB requests) and Lambda's (6 MB
synchronous payloads) lie above sendguard's: AWS's published quotas, as this page states them.
"""


def render() -> str:
    stack = template()
    sized = size_rows()
    rows = "\n".join(
        f"| {what} | {value} |{f' {why}' if why else ''} |"
        for what, value, why in [*sized, *other_rows(stack)]
    )
    redrive_max = int(stack["Parameters"]["RedriveAfterSeconds"]["MaxValue"])
    return _TEMPLATE.format(
        sizes=len(sized),
        rows=rows,
        max_attempts=s.MAX_ATTEMPTS_LIMIT,
        redrive_max=f"{redrive_max:,}",
        api_timeout=API_GATEWAY_TIMEOUT_S,
    )
