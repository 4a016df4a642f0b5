"""Retention (`SENDGUARD_RETENTION_DAYS`, `Outbox(retention_days=…)`): the table's TTL attribute
`sg_expires_at`, epoch seconds, is the message's acceptance plus the retention; a record carries it
only once confirmed, a body item from its creation; with no retention (the default) nothing carries
it. Past it, a record reads as gone. Why that is safe: docs/verification.md, Retention."""

from __future__ import annotations

import re
import uuid
from typing import Any

import boto3
import pytest
import time_machine

from adapters import Outbox
from adapters.ops.audit import record_problems
from adapters.ops.provision import ensure_resources
from adapters.runtime.codec import (
    DAY_SECONDS,
    EXPIRES_AT,
    expires_at,
    is_body_item,
    is_record,
    item_text,
    lifecycle_attributes,
    stored_from_item,
    update_request,
)
from adapters.runtime.config import MAX_RETENTION_DAYS, Config, ConfigError
from adapters.runtime.layout import TableLayout
from statemodel.categories import ErrorCategory, Failure
from statemodel.events import Accepted
from statemodel.flows import Sent, Settings, Written, advance, start_submit
from statemodel.records import Message, Phase, Record, Status
from statemodel.stored import Stored
from statemodel.table import TRANSITIONS
from statemodel.validation import Request, new_message, parse_message
from tests.test_bodies import audited

CREATED_MS = 1_796_135_193_698
MESSAGE = Message("m-1", '{"n":1}', (), "c-1", CREATED_MS, "h" * 64)


def record_in(phase: Phase) -> Record:
    status = Status.QUEUED if phase in (Phase.IN_FLIGHT, Phase.CONFIRMED) else Status.PENDING
    return Record(
        MESSAGE,
        status,
        version=3,
        updated_at=CREATED_MS + 5_000,
        attempts=1,
        attempt_id="a-1" if phase is Phase.IN_FLIGHT else None,
        lease_expires_at=CREATED_MS + 40_000 if phase is Phase.IN_FLIGHT else None,
        sqs_message_id="s-1" if phase is Phase.CONFIRMED else None,
        last_error=Failure(ErrorCategory.RETRYABLE, "Throttling") if phase is Phase.EXHAUSTED else None,
        exhausted=phase is Phase.EXHAUSTED,
    )


# ---- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.EXHAUSTED, Phase.IN_FLIGHT, Phase.CONFIRMED])
def test_only_a_confirmed_record_carries_the_ttl(phase: Phase) -> None:
    record = record_in(phase)
    assert record.phase is phase
    with_retention = lifecycle_attributes(record, TableLayout(), 30)
    expected = CREATED_MS // 1000 + 30 * DAY_SECONDS if phase is Phase.CONFIRMED else None
    assert EXPIRES_AT in with_retention and with_retention[EXPIRES_AT] == expected  # None: REMOVE
    assert EXPIRES_AT not in lifecycle_attributes(record, TableLayout())  # no retention: never named


def test_the_confirm_write_sets_it_and_every_other_write_removes_it() -> None:
    request = parse_message('{"n":1}', {})
    assert isinstance(request, Request)
    message = new_message(request, "m-2", "c-2", CREATED_MS, "k-2")
    flow = start_submit(message, "a-2", CREATED_MS + 40_000, CREATED_MS, Settings())
    create = flow.effect
    flow = advance(advance(flow, Written(), CREATED_MS + 2), Sent("s-2"), CREATED_MS + 100)
    confirm = flow.effect
    created = update_request(create, retention_days=7)  # type: ignore[arg-type]
    confirmed = update_request(confirm, retention_days=7)  # type: ignore[arg-type]
    assert EXPIRES_AT not in created["ExpressionAttributeNames"].values()  # a create is never confirmed
    names = {v: k for k, v in confirmed["ExpressionAttributeNames"].items()}
    placeholder = re.search(rf"{names[EXPIRES_AT]} = (:v\d+)", confirmed["UpdateExpression"])
    assert placeholder is not None
    value = confirmed["ExpressionAttributeValues"][placeholder[1]]
    assert value == {"N": str(CREATED_MS // 1000 + 7 * DAY_SECONDS)}
    assert EXPIRES_AT not in update_request(confirm)["ExpressionAttributeNames"].values()  # type: ignore[arg-type]


def test_no_write_follows_a_confirm() -> None:
    """So the confirm's `sg_expires_at` is the record's last word: no row of the table leaves CONFIRMED."""
    assert [t for t in TRANSITIONS if t.source is Phase.CONFIRMED] == []


def test_no_retention_is_the_default_and_the_variable_is_bounded() -> None:
    base = {"SENDGUARD_TABLE": "t", "SENDGUARD_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/q"}
    assert Config.from_env(base).retention_days == 0 and expires_at(MESSAGE, 0) is None
    assert Config.from_env({**base, "SENDGUARD_RETENTION_DAYS": "30"}).retention_days == 30
    for bad in ("-1", str(MAX_RETENTION_DAYS + 1), "30d"):
        with pytest.raises(ConfigError, match="SENDGUARD_RETENTION_DAYS"):
            Config.from_env({**base, "SENDGUARD_RETENTION_DAYS": bad})
    with pytest.raises(ValueError, match="retention_days=-1"):
        Outbox("t", "https://sqs.eu-west-1.amazonaws.com/1/q", retention_days=-1)


def test_the_audit_flags_a_ttl_on_a_record_that_is_not_settled() -> None:
    pending = Record(MESSAGE, Status.PENDING, 1, CREATED_MS)
    stored = Stored(pending, (Accepted(MESSAGE, CREATED_MS),))
    planted = {EXPIRES_AT: {"N": str(CREATED_MS // 1000)}}
    added = [p for p in record_problems(planted, stored) if p not in record_problems({}, stored)]
    assert added == [
        f"m-1: {EXPIRES_AT} on a PENDING record: the table's TTL would delete a record that is not settled"
    ]


# ---- on moto ---------------------------------------------------------------------------------------


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def make(retention_days: int) -> Outbox:
    name = f"t{uuid.uuid4().hex[:10]}"
    queue = ensure_resources(name, name)
    return Outbox(name, queue, retention_days=retention_days, redrive_after_seconds=1, lease_margin_seconds=1)


def items(outbox: Outbox) -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName=outbox.table, ConsistentRead=True)["Items"])


def ttl_of(item: dict[str, Any]) -> int | None:
    return int(item[EXPIRES_AT]["N"]) if EXPIRES_AT in item else None


def test_a_sent_message_and_its_body_item_expire_together(sendguard_aws: None) -> None:
    outbox = make(retention_days=30)
    assert outbox.send("big", "b" * 3_000, context=Context()).accepted  # a body item of its own
    (record,) = [i for i in items(outbox) if is_record(i)]
    (body,) = [i for i in items(outbox) if is_body_item(i)]
    created_at = stored_from_item(record, body=item_text(body)).record.message.created_at
    expected = created_at // 1000 + 30 * DAY_SECONDS
    assert ttl_of(record) == expected and ttl_of(body) == expected


def test_a_pending_record_carries_none_until_it_is_confirmed(sendguard_aws: None) -> None:
    outbox = make(retention_days=30)
    client = boto3.client("dynamodb")
    entry = outbox.pending_put("later", "p" * 3_000)
    client.transact_write_items(TransactItems=[entry])  # type: ignore[list-item]
    (record,) = [i for i in items(outbox) if is_record(i)]
    (body,) = [i for i in items(outbox) if is_body_item(i)]
    assert ttl_of(record) is None and ttl_of(body) is not None  # the body item's is set at its creation
    assert outbox.dispatch(entry, context=Context()).accepted
    (record,) = [i for i in items(outbox) if is_record(i)]
    assert ttl_of(record) == ttl_of(body)


def test_without_a_retention_nothing_carries_a_ttl(sendguard_aws: None) -> None:
    outbox = make(retention_days=0)
    assert outbox.send("small", '{"n":1}', context=Context()).accepted
    assert outbox.send("big", "b" * 3_000, context=Context()).accepted
    assert len(items(outbox)) == 3 and all(EXPIRES_AT not in i for i in items(outbox))


def test_past_its_retention_a_record_reads_as_gone(
    sendguard_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = make(retention_days=1)
    assert outbox.send("old", "o" * 3_000, context=Context()).accepted
    (record,) = [i for i in items(outbox) if is_record(i)]
    expiry = ttl_of(record)
    assert expiry is not None
    assert outbox.get("old") is not None
    assert audited(capsys, outbox.table, "--grace-seconds", "0")["records"] == 1
    with time_machine.travel(expiry + 1, tick=False):
        assert outbox.get("old") is None  # DynamoDB deletes it within days; reads do not wait
        assert audited(capsys, outbox.table, "--grace-seconds", "0")["records"] == 0
