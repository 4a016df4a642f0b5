"""Where a body is kept (`adapters.runtime.bodies`), on moto: inline while that is cheapest, else
written once to a body item of its own, or to the body bucket past what an item holds; read back
by every path that needs it (a re-drive, a replay, `get`, the audit), and refused — nothing written
— when it fits nowhere."""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError

from adapters import InvalidMessage, Outbox, OutboxError
from adapters.cli.main import main
from adapters.ops.audit import audit
from adapters.ops.provision import ensure_resources, table_definition
from adapters.runtime.bodies import ITEM_PREFIX, POINTER_REFUSED, S3_PREFIX
from adapters.runtime.codec import (
    BODY,
    BODY_AT,
    created_item,
    is_body_item,
    is_record,
    lifecycle_attributes,
    serialize,
    write_history,
)
from adapters.runtime.config import Config, ConfigError
from adapters.runtime.item_size import CONFIRM_GROWTH_BYTES, Placement, item_size, placement
from adapters.runtime.layout import TableLayout
from adapters.runtime.store import BODY_MISSING, DynamoStore
from statemodel.categories import Failure
from statemodel.flows import Sent, Settings, Write, Written, advance, start_submit
from statemodel.keys import Key
from statemodel.validation import (
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES_WITH_BUCKET,
    Request,
    new_message,
    parse_message,
)

BUCKET = "bodies"
SETTINGS = dict(redrive_after_seconds=1, lease_margin_seconds=1)


class Context:
    def __init__(self, remaining_ms: int = 10_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Faults:
    """The team's boto3 session (`Outbox(session=...)`) with hooks that fail calls before they leave:
    a connect timeout on every attempt the SDK makes, so the call fails past its retries. Each hook
    is on its operation's own `before-send` event, so it runs ahead of the stand-in service's (which
    answers the generic one). While `sends_fail`, every SendMessage fails so; the next
    `batch_gets_to_fail` BatchGetItem calls too. `failed`: the operations of the calls it failed."""

    def __init__(self) -> None:
        self.session = boto3.Session()
        self.sends_fail = False
        self.batch_gets_to_fail = 0
        self.failed: list[str] = []
        for operation in ("sqs.SendMessage", "dynamodb.BatchGetItem"):
            self.session.events.register(f"before-call.{operation}", self._decide)
            self.session.events.register(f"before-send.{operation}", self._fail)

    def _decide(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name == "SendMessage":
            fail = self.sends_fail
        else:
            fail, self.batch_gets_to_fail = self.batch_gets_to_fail > 0, max(0, self.batch_gets_to_fail - 1)
        if fail:
            context["test_bodies_fails"] = True  # every attempt of this call
            self.failed.append(model.name)

    def _fail(self, request: Any, **_: Any) -> None:
        if request.context.get("test_bodies_fails"):
            raise ConnectTimeoutError(endpoint_url=request.url)

    @contextlib.contextmanager
    def sends_failing(self) -> Iterator[None]:
        self.sends_fail = True
        try:
            yield
        finally:
            self.sends_fail = False


def make(bucket: bool = False, layout: TableLayout | None = None, faults: Faults | None = None) -> Outbox:
    layout = layout or TableLayout()
    name = f"t{uuid.uuid4().hex[:10]}"
    queue = ensure_resources(name, name, layout=layout, bucket=BUCKET if bucket else None)
    session = None if faults is None else faults.session
    bucket_name = BUCKET if bucket else None
    return Outbox(name, queue, layout=layout, body_bucket=bucket_name, session=session, **SETTINGS)  # type: ignore[arg-type]


def audited(capsys: pytest.CaptureFixture[str], table: str, *flags: str) -> dict[str, Any]:
    """What `sendguard audit --json` reports of `table` (`flags`: its options, the body bucket's)."""
    capsys.readouterr()
    code = main(["audit", "--json", "--table", table, *flags])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == (0 if report["ok"] else 1), report
    return report


def items(outbox: Outbox) -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName=outbox.table, ConsistentRead=True)["Items"])


def record_item(outbox: Outbox, key: str) -> dict[str, Any]:
    (item,) = [i for i in items(outbox) if is_record(i) and i[outbox.layout.partition_key]["S"] == key]
    return item


def bodies_of(outbox: Outbox) -> list[dict[str, Any]]:
    return [i for i in items(outbox) if is_body_item(i)]


def received(outbox: Outbox) -> list[str]:
    messages = boto3.client("sqs").receive_message(QueueUrl=outbox.queue_url, MaxNumberOfMessages=10)
    return [m["Body"] for m in messages.get("Messages", [])]


def objects() -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET)
    return [o["Key"] for o in listing.get("Contents", [])]


# ---- the rule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inline", "apart", "body", "bucket", "where"),
    [
        (800, 780, 100, False, Placement.INLINE),  # one unit a write either way: inline, 3 requests
        (1_024, 760, 300, False, Placement.INLINE),  # 1 + 1 units against 1 + 1 + 1
        (1_100, 760, 400, False, Placement.INLINE),  # 2 + 2 against 1 + 1 + 1: one unit for a request
        (2_100, 760, 1_100, False, Placement.ITEM),  # 3 + 3 against 2 + 1 + 1: two units saved
        (3_000, 760, 2_300, False, Placement.INLINE),  # 3 + 3 against 3 + 1 + 1
        (3_100, 760, 2_300, False, Placement.ITEM),  # 4 + 4 against 3 + 1 + 1
        (300_000, 760, 300_000, False, Placement.ITEM),
        (500_000, 760, 500_000, True, Placement.S3),
        (500_000, 760, 500_000, False, None),
    ],
)
def test_a_body_goes_where_its_happy_path_costs_least(
    inline: int, apart: int, body: int, bucket: bool, where: Placement | None
) -> None:
    assert placement(inline, apart, body, bucket=bucket) is where


@pytest.mark.parametrize("retention_days", [0, 3_650])
def test_a_happy_path_grows_the_record_by_no_more_than_the_rule_allows(retention_days: int) -> None:
    """The confirm's history entry and SQS id, with ids of the longest kind (uuids, a 128-character
    correlation id), and its TTL attribute with the longest retention: what `placement` adds to the
    created record's size."""
    request = parse_message("x" * 40, {"group": "eu"})
    assert isinstance(request, Request)
    message = new_message(request, str(uuid.uuid4()), "c" * 128, 1_796_135_193_698, "k" * 128)
    flow = start_submit(message, str(uuid.uuid4()), 1_796_135_233_698, 1_796_135_193_698, Settings())
    create = flow.effect
    created = created_item(create, TableLayout())  # type: ignore[arg-type]
    flow = advance(advance(flow, Written(), 1_796_135_193_700), Sent(str(uuid.uuid4())), 1_796_135_193_800)
    confirm = flow.effect
    after = dict(created)
    for name, value in lifecycle_attributes(confirm.after, TableLayout(), retention_days).items():  # type: ignore[union-attr]
        after.pop(name, None) if value is None else after.update({name: serialize(value)})
    history = created["sg_history"]["L"] + [serialize(e) for e in write_history(confirm)]  # type: ignore[arg-type]
    after["sg_history"] = {"L": history}
    growth = item_size(after) - item_size(created)
    assert growth <= CONFIRM_GROWTH_BYTES < growth + 64  # a bound, and not a loose one


# ---- on moto --------------------------------------------------------------------------------------


def test_a_small_body_stays_in_its_record(sendguard_aws: None) -> None:
    outbox = make()
    assert outbox.send("small", '{"n":1}', context=Context()).accepted
    item = record_item(outbox, "small")
    assert item["payload"] == {"S": '{"n":1}'} and BODY_AT not in item
    assert bodies_of(outbox) == [] and received(outbox) == ['{"n":1}']


def test_a_larger_body_is_written_once_to_its_own_item_and_sent_whole(sendguard_aws: None) -> None:
    outbox = make()
    body = "é" * 1_500  # 3,000 bytes
    assert outbox.send("big", body, context=Context()).accepted
    item = record_item(outbox, "big")
    assert "payload" not in item and item[BODY_AT]["S"].startswith(ITEM_PREFIX)
    assert item_size(item) <= 1024  # the lifecycle writes stay one unit each
    (stored,) = bodies_of(outbox)
    assert stored[BODY] == {"S": body} and stored["message_id"]["S"].startswith("big#")
    assert received(outbox) == [body]
    view = outbox.get("big")
    assert view is not None and view.delivery == "confirmed"


def test_a_failed_send_of_a_large_body_is_redriven_with_the_body_read_back(sendguard_aws: None) -> None:
    faults = Faults()
    outbox = make(faults=faults)
    body = "r" * 5_000
    with faults.sends_failing():
        assert not outbox.send("redrive", body, context=Context()).accepted
    assert faults.failed == ["SendMessage"]
    summary = outbox.reconcile(deadline_ms=_later(10_000))
    assert summary.redriven == 1 and summary.failed_reads == 0
    assert received(outbox) == [body]
    assert len(bodies_of(outbox)) == 1  # written once, by the create


def test_a_replay_of_a_large_body_is_recognised_and_a_conflict_changes_no_body(sendguard_aws: None) -> None:
    outbox = make()
    body = "p" * 4_000
    assert outbox.send("replay", body, context=Context()).outcome == "sent"
    again = outbox.send("replay", body, context=Context())
    assert again.accepted and again.outcome == "already_queued"
    other = outbox.send("replay", "q" * 4_000, context=Context())
    assert other.outcome == "conflict" and other.http_status == 409
    at = record_item(outbox, "replay")[BODY_AT]["S"]
    named = [b for b in bodies_of(outbox) if b["message_id"]["S"].endswith(at.removeprefix(ITEM_PREFIX))]
    assert [b[BODY]["S"] for b in named] == [body]  # the record's body is the first request's


def test_pending_put_writes_a_large_body_first_and_keeps_one_put(sendguard_aws: None) -> None:
    outbox = make()
    body = "t" * 3_000
    entry = outbox.pending_put("txn", body)
    assert list(entry) == ["Put"] and entry["Put"]["Item"][BODY_AT]["S"].startswith(ITEM_PREFIX)
    assert "payload" not in entry["Put"]["Item"] and len(bodies_of(outbox)) == 1
    boto3.client("dynamodb").transact_write_items(TransactItems=[entry])  # type: ignore[list-item]
    assert outbox.dispatch("txn", context=Context()).accepted
    assert received(outbox) == [body]


def test_a_body_past_an_item_goes_to_the_bucket_and_is_redriven_from_it(sendguard_aws: None) -> None:
    faults = Faults()
    outbox = make(bucket=True, faults=faults)
    body = "s" * 700_000
    with faults.sends_failing():
        assert not outbox.send("huge", body, context=Context()).accepted
    assert faults.failed == ["SendMessage"]
    item = record_item(outbox, "huge")
    assert item[BODY_AT]["S"] == f"{S3_PREFIX}{BUCKET}/{objects()[0]}"
    assert objects()[0].startswith("sendguard/bodies/huge/") and bodies_of(outbox) == []
    assert outbox.reconcile(deadline_ms=_later(10_000)).redriven == 1
    assert received(outbox) == [body]


def test_the_limits_are_the_bucket_s_or_the_item_s(sendguard_aws: None) -> None:
    without = make()
    with pytest.raises(InvalidMessage, match="PAYLOAD_TOO_LARGE"):
        without.send("k", "x" * (MAX_MESSAGE_BYTES + 1))
    assert items(without) == []  # nothing written
    with_bucket = make(bucket=True)
    assert with_bucket.send("k", "x" * MAX_MESSAGE_BYTES_WITH_BUCKET, context=Context()).accepted
    with pytest.raises(InvalidMessage, match="PAYLOAD_TOO_LARGE"):
        with_bucket.send("k2", "x" * (MAX_MESSAGE_BYTES_WITH_BUCKET + 1))


def test_a_missing_body_is_reported_never_skipped_in_silence(sendguard_aws: None) -> None:
    faults = Faults()
    outbox = make(faults=faults)
    with faults.sends_failing():
        outbox.send("lost-body", "m" * 3_000, context=Context())
    assert faults.failed == ["SendMessage"]
    (body,) = bodies_of(outbox)
    key = {"message_id": body["message_id"]}
    boto3.client("dynamodb").delete_item(TableName=outbox.table, Key=key)
    summary = outbox.reconcile(deadline_ms=_later(10_000))
    assert summary.redriven == 0 and summary.failed_reads == 1
    with pytest.raises(OutboxError) as unread:
        outbox.get("lost-body")
    assert unread.value.code == BODY_MISSING


def test_a_failed_batch_read_leaves_its_records_to_the_next_pass(sendguard_aws: None) -> None:
    faults = Faults()
    outbox = make(faults=faults)
    with faults.sends_failing():
        outbox.send("later", "{}", context=Context())
    faults.batch_gets_to_fail = 1  # the reconciler's batch read of the due records fails
    first = outbox.reconcile(deadline_ms=_later(10_000))
    assert (first.redriven, first.failed_reads) == (0, 1)
    assert faults.failed == ["SendMessage", "BatchGetItem"]
    second = outbox.reconcile(deadline_ms=_later(10_000))
    assert (second.redriven, second.failed_reads) == (1, 0)


def test_a_table_whose_index_projects_everything_still_reconciles(sendguard_aws: None) -> None:
    """Tables made before the index projected keys only (a GSI's projection cannot change in place)."""
    name = f"legacy{uuid.uuid4().hex[:8]}"
    definition = table_definition()
    definition["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "ALL"}
    boto3.client("dynamodb").create_table(TableName=name, **definition)
    queue = ensure_resources(name, name)
    faults = Faults()
    outbox = Outbox(name, queue, session=faults.session, **SETTINGS)  # type: ignore[arg-type]
    with faults.sends_failing():
        outbox.send("old", "o" * 2_000, context=Context())
    assert faults.failed == ["SendMessage"]
    assert outbox.reconcile(deadline_ms=_later(10_000)).redriven == 1
    assert received(outbox) == ["o" * 2_000]


def test_the_team_s_sort_key_layout_keeps_bodies_beside_their_records(sendguard_aws: None) -> None:
    layout = TableLayout(partition_key="pk", sort_key="sk", sort_key_value="outbox", body_attribute="doc")
    outbox = make(layout=layout)
    assert outbox.send("order-1", "d" * 3_000, context=Context()).accepted
    (body,) = bodies_of(outbox)
    assert body["pk"] == {"S": "order-1"} and body["sk"]["S"].startswith("outbox#")
    assert received(outbox) == ["d" * 3_000]


def _later(ms: int) -> int:
    """A deadline `ms` from now, once these outboxes' records are due (not a timing assert: the
    pass must find the record due, and only waiting past redrive_after makes it so)."""
    time.sleep(1.1)  # the record is due once redrive_after (1 s) has passed
    return int(time.time() * 1000) + ms


def test_a_store_reads_s3_bodies_only_from_its_own_bucket_and_writes_none_without_one(
    sendguard_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A body's name is input: a store made without the body bucket (an audit not told it) refuses
    an S3 name and says why, and refuses a body too large for an item; told the bucket, it reads it."""
    outbox = make(bucket=True)
    assert outbox.send("audited", "a" * 500_000, context=Context()).accepted
    blind = DynamoStore(boto3.client("dynamodb"), outbox.table)
    report = audit(blind, int(time.time() * 1000), 120_000)
    (violation,) = report.violations
    assert not report.ok and POINTER_REFUSED in violation
    found, call = blind.get(Key("audited"))
    assert isinstance(found, Failure) and found.code == POINTER_REFUSED and call.error is not None
    seeing = audited(capsys, outbox.table, "--body-bucket", BUCKET)  # the audit told the bucket
    assert (seeing["records"], seeing["violations"], seeing["ok"]) == (1, [], True)
    too_large = parse_message("b" * 500_000, {}, max_bytes=MAX_MESSAGE_BYTES_WITH_BUCKET)
    assert isinstance(too_large, Request)
    message = new_message(too_large, "refused", "c", 1, None)
    create = start_submit(message, "a", 2, 1, Settings()).effect
    assert isinstance(create, Write)
    created = created_item(create, blind.layout)
    assert blind.bodies.placement(created, blind.bodies.body_item(message)) is None  # no bucket: nowhere


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, (None, "sendguard/bodies/")),
        (
            {"SENDGUARD_BODY_BUCKET": " my-bodies ", "SENDGUARD_BODY_PREFIX": "orders/"},
            ("my-bodies", "orders/"),
        ),
        (
            {"SENDGUARD_BODY_BUCKET": "My_Bodies"},
            "SENDGUARD_BODY_BUCKET='My_Bodies' is not an S3 bucket name",
        ),
        ({"SENDGUARD_BODY_BUCKET": "a..b"}, "SENDGUARD_BODY_BUCKET='a..b' is not an S3 bucket name"),
        ({"SENDGUARD_BODY_PREFIX": "/abs/"}, "SENDGUARD_BODY_PREFIX='/abs/'"),
        ({"SENDGUARD_BODY_PREFIX": "a b/"}, "SENDGUARD_BODY_PREFIX='a b/'"),
    ],
)
def test_the_body_bucket_and_prefix_are_checked_once(
    variables: dict[str, str], expected: tuple[str | None, str] | str
) -> None:
    env = {
        "SENDGUARD_TABLE": "t",
        "SENDGUARD_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
        **variables,
    }
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            Config.from_env(env)
    else:
        config = Config.from_env(env)
        assert (config.body_bucket, config.body_prefix) == expected
        assert config.max_message_bytes == (
            MAX_MESSAGE_BYTES if expected[0] is None else MAX_MESSAGE_BYTES_WITH_BUCKET
        )


def test_the_library_names_its_own_argument_in_a_bad_bucket(sendguard_aws: None) -> None:
    with pytest.raises(ValueError, match=re.escape("body_bucket='Bad Bucket' is not an S3 bucket name")):
        Outbox("t", "https://sqs.us-east-1.amazonaws.com/1/q", body_bucket="Bad Bucket")


@pytest.mark.parametrize(
    ("payload_bytes", "max_attempts", "room"), [(1_000, 20, True), (395_000, 20, False), (395_000, 1, True)]
)
def test_a_rearm_needs_room_for_a_fresh_budgets_worst_case_history(
    payload_bytes: int, max_attempts: int, room: bool
) -> None:
    from adapters.runtime.item_size import rearm_has_room
    from statemodel import Message, Submit, decide, replay
    from statemodel.stored import Stored

    message = Message("m-1", "x" * payload_bytes, (), "c-1", created_at=1_000, request_hash="h")
    events = tuple(decide(None, Submit(message, attempt_id="a-1", lease_expires_at=61_000), now=1_000))
    record = replay(events)
    assert record is not None
    assert rearm_has_room(Stored(record, events), max_attempts) is room
