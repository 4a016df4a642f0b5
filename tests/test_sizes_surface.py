"""The names that long held a size limit or rule are statemodel.sizes's own objects, re-exported, and
docs/limits.md shows the module's values."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

import adapters.runtime.item_size as item_size_module
import statemodel.validation as validation
from adapters.docgen import limits_doc
from adapters.docgen.limits_doc import render as limits_page
from adapters.docgen.limits_doc import size_rows
from adapters.runtime import batch_get, sqs_batch
from adapters.runtime.clients import CONNECT_TIMEOUT_S, MIN_READ_TIMEOUT_MS, READ_TIMEOUT_S
from adapters.runtime.config import MAX_RETENTION_DAYS, MAX_WORKERS
from adapters.runtime.due_index import PAGE
from adapters.runtime.inbox import Inbox
from adapters.runtime.rearm import NO_ROOM, WOULD_REARM, RearmOutcome, rearm
from statemodel import ErrorCategory, Message, ReportSendFailure, Submit, decide, keys, replay, sizes
from statemodel.attention import DEFAULT_SHARDS, MAX_SHARDS
from statemodel.flows import Settings
from statemodel.records import Phase
from statemodel.stored import Stored


@pytest.mark.parametrize(
    ("module", "name", "own"),
    [
        (validation, "MAX_MESSAGE_BYTES", "MAX_MESSAGE_BYTES"),
        (validation, "MAX_MESSAGE_BYTES_WITH_BUCKET", "MAX_MESSAGE_BYTES_WITH_BUCKET"),
        (validation, "MAX_RECORD_EXTRA_BYTES", "MAX_RECORD_EXTRA_BYTES"),
        (validation, "MAX_ATTRIBUTES", "MAX_ATTRIBUTES"),
        (validation, "MAX_ATTEMPTS_LIMIT", "MAX_ATTEMPTS_LIMIT"),
        (validation, "DYNAMODB_MAX_ITEM_BYTES", "DYNAMODB_MAX_ITEM_BYTES"),
        (validation, "message_limit", "message_limit"),
        (item_size_module, "item_size", "item_size"),
        (item_size_module, "value_size", "value_size"),
        (item_size_module, "write_units", "write_units"),
        (item_size_module, "placement", "placement"),
        (item_size_module, "Placement", "Placement"),
        (item_size_module, "CONFIRM_GROWTH_BYTES", "CONFIRM_GROWTH_BYTES"),
        (sqs_batch, "MAX_ENTRIES", "SQS_MAX_BATCH_ENTRIES"),
        (sqs_batch, "MAX_BATCH_BYTES", "SQS_MAX_BATCH_BYTES"),
        (keys, "MAX_MESSAGE_ID", "SQS_MAX_ID_CHARS"),
        (batch_get, "MAX_KEYS", "DYNAMODB_MAX_BATCH_GET_KEYS"),
    ],
)
def test_the_old_names_are_the_module_s_own(module: object, name: str, own: str) -> None:
    assert getattr(module, name) is getattr(sizes, own)


def test_the_limits_page_shows_the_module_s_values() -> None:
    page = limits_page()
    for what, value, _ in size_rows():
        assert f"| {what} | {value} |" in page
    for number in ("400,000", "1,048,320", "385,024", "1,114,112", "at most 9", "at most 99 entries"):
        assert number in page, number


def _literals(module: ModuleType) -> list[str]:
    """The text `module` writes by hand: its string literals, the fixed parts of f-strings included
    (what a placeholder fills in is not among them)."""
    tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


# Each figure the page shows that code or the template sets, as the page shows it.
FIGURES = [
    f"{CONNECT_TIMEOUT_S:g} s to connect",
    f"at most {READ_TIMEOUT_S:g} s to read",
    f"less than {MIN_READ_TIMEOUT_MS} ms",
    f"pages of {PAGE} records",
    f"1–{MAX_WORKERS} worker threads",
    f"1–{MAX_SHARDS} (default {DEFAULT_SHARDS})",
    f"1–{MAX_SHARDS} worker invocations",
    f"to {MAX_RETENTION_DAYS:,} days",
    f"at most {sizes.MAX_ATTEMPTS_LIMIT} (default {Settings().max_attempts})",
    f"(default {Settings().max_attempts})",
    f"`max_attempts` 1–{sizes.MAX_ATTEMPTS_LIMIT}",
    "`redrive_after_seconds`\n1–86,400",
    "`LeaseMarginSeconds` (30)",
    "`RedriveAfterSeconds` (60)",
    "at most 40 s for the submit function, 90 s for the reconciler",
    "submit 10 s",
    "reconciler 60 s",
    "time budget 60 s",
    "(every minute)",
    "`Queue` 7 days",
    "at most 12 days",
    "dead-letter queue 14 days",
    "100 requests a second, bursts of 200",
    "~500 per index shard (~2,000 with the default 4)",
]


@pytest.mark.parametrize("figure", FIGURES)
def test_the_limits_page_reads_each_figure_from_where_it_is_set(figure: str) -> None:
    """The page shows the figure, and the generator does not hold it as text: it is built from the
    constant (or the template), so `make docs-check` fails when they move apart."""
    assert figure in limits_page()
    written = [text for text in _literals(limits_doc) if figure in text]
    assert written == []


def _stack() -> dict[str, Any]:
    return copy.deepcopy(limits_doc.template())


def test_the_stack_s_rows_follow_the_template() -> None:
    stack = _stack()
    resources, parameters = stack["Resources"], stack["Parameters"]
    resources["SubmitFunction"]["Properties"]["Timeout"] = 12
    resources["ReconcilerFunction"]["Properties"]["Timeout"] = 50
    parameters["LeaseMarginSeconds"]["Default"] = 20
    parameters["RedriveAfterSeconds"]["Default"] = 90
    parameters["QueueRetentionSeconds"]["Default"] = 4 * 86_400
    parameters["ApiThrottlingRateLimit"]["Default"] = 300
    schedule = resources["ReconcilerFunction"]["Properties"]["Events"]["EveryMinute"]["Properties"]
    schedule["Schedule"] = "rate(5 minutes)"
    rows = " ".join(value + why for _, value, why in limits_doc.other_rows(stack))
    for figure in (
        "`LeaseMarginSeconds` (20): at most 32 s for the submit function, 70 s for the reconciler",
        "submit 12 s",
        "reconciler 50 s",
        "time budget 50 s",
        "`RedriveAfterSeconds` (90), then the next pass (every 5 minutes)",
        "`Queue` 4 days",
        "300 requests a second",
    ):
        assert figure in rows, figure


def test_a_schedule_that_is_not_a_rate_is_refused() -> None:
    stack = _stack()
    schedule = stack["Resources"]["ReconcilerFunction"]["Properties"]["Events"]["EveryMinute"]["Properties"]
    schedule["Schedule"] = "cron(0 * * * ? *)"
    with pytest.raises(ValueError, match=r"schedule 'cron\(0 \* \* \* \? \*\)' is not a rate"):
        limits_doc.other_rows(stack)


def test_the_inbox_takes_a_key_by_its_bytes(aws_env: None) -> None:
    """A key of 256 clefs (1,024 bytes) is taken; one more character (1,025 bytes, 257 characters) is
    missing a key that fits, not a partition key DynamoDB refuses."""
    inbox = Inbox("ledger", key_attribute=None, key_field="id", client=boto3.client("dynamodb"))
    taken = inbox.key_of({"messageId": "s-1", "body": json.dumps({"id": "𝄞" * 256})})
    assert taken == "𝄞" * 256
    assert inbox.key_of({"messageId": "s-2", "body": json.dumps({"id": "𝄞" * 256 + "k"})}) is None
    client = boto3.client("dynamodb")
    assert Inbox("ledger", key_prefix="𝄞" * 256, client=client).key_prefix == "𝄞" * 256
    with pytest.raises(ValueError, match=r"takes 1025 bytes; at most 1024 \(with a key of up to 1024 bytes"):
        Inbox("ledger", key_prefix="𝄞" * 256 + "#", client=client)


def _exhausted(payload_bytes: int) -> Stored:
    """An exhausted record (its one attempt failed for good) of a payload of `payload_bytes`."""
    message = Message("m-1", "x" * payload_bytes, (), "c-1", created_at=1_000, request_hash="h")
    events = decide(None, Submit(message, attempt_id="a-1", lease_expires_at=61_000), now=1_000)
    events += decide(replay(events), ReportSendFailure("a-1", ErrorCategory.PERMANENT, "AccessDenied"), 2_000)
    record = replay(events)
    assert record is not None and record.phase is Phase.EXHAUSTED
    return Stored(record, tuple(events))


def _dry_run(stored: Stored, reason: str) -> RearmOutcome:
    """`rearm`'s dry run on the record as read (`found`): it decides the room, reads and writes nothing."""
    aws: Any = None  # never called: the record is given, and a dry run writes nothing
    return rearm(aws, "m-1", reason=reason, by="ops", max_attempts=1, found=stored, dry_run=True).outcome


def test_a_re_arm_s_room_counts_its_by_and_reason_as_bytes() -> None:
    """The largest payload with room for the re-arm of a one-word reason has none for a reason of
    512 clefs (512 characters, the most allowed, and 2,048 bytes) in the entry the re-arm adds."""
    low, high = 0, sizes.DYNAMODB_MAX_ITEM_BYTES
    while low < high:  # the largest payload with room, found by halving: no figure copied from the rule
        middle = (low + high + 1) // 2
        low, high = (middle, high) if _dry_run(_exhausted(middle), "r") is WOULD_REARM else (low, middle - 1)
    clefs = "𝄞" * sizes.REARM_MAX_TEXT_CHARS
    assert low > 300_000 and _dry_run(_exhausted(low), "r") is WOULD_REARM
    assert _dry_run(_exhausted(low), clefs) is NO_ROOM
    assert _dry_run(_exhausted(low + 1 - len(clefs.encode())), clefs) is WOULD_REARM
