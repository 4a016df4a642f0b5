"""The names that long held a size limit or rule are statemodel.sizes's own objects, re-exported, and
docs/limits.md shows the module's values."""

from __future__ import annotations

import json

import boto3
import pytest

import adapters.runtime.item_size as item_size_module
import statemodel.validation as validation
from adapters.docgen.limits_doc import render as limits_page
from adapters.docgen.limits_doc import size_rows
from adapters.runtime import batch_get, sqs_batch
from adapters.runtime.inbox import Inbox
from statemodel import keys, sizes


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


def test_the_inbox_takes_a_key_by_its_bytes(aws_env: None) -> None:
    """A key of 256 clefs (1,024 bytes) is taken; one more character (1,025 bytes, 257 characters) is
    missing a key that fits, not a partition key DynamoDB refuses."""
    inbox = Inbox("ledger", key_attribute=None, key_field="id", client=boto3.client("dynamodb"))
    taken = inbox.key_of({"messageId": "s-1", "body": json.dumps({"id": "𝄞" * 256})})
    assert taken == "𝄞" * 256
    assert inbox.key_of({"messageId": "s-2", "body": json.dumps({"id": "𝄞" * 256 + "k"})}) is None
