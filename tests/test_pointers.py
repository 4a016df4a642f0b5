"""What a record names is input (on moto): a rewritten `sg_body_at` cannot steer what is read or
sent — another bucket, another prefix, another record's object or body item — and a body read back
that no longer hashes to what was accepted is never sent nor answered for. Each read path: the
reconciler's pass, `get`, a replay of `send`, `dispatch`, and the audit."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
import time_machine

from adapters import Outbox, OutboxError
from adapters.ops.provision import ensure_resources
from adapters.runtime.bodies import POINTER_REFUSED
from adapters.runtime.codec import BODY, BODY_AT, body_item
from adapters.runtime.layout import TableLayout
from adapters.runtime.store import BODY_MISMATCH
from statemodel.keys import Key
from tests.test_bodies import audited

BUCKET = "bodies"
VICTIM = "victim-secrets"
LARGE = "x" * 500_000  # kept in S3
MEDIUM = "m" * 3_000  # kept in a body item


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 20_000


def _now() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def outbox(sendguard_aws: None) -> Outbox:
    name = f"t{uuid.uuid4().hex[:10]}"
    queue = ensure_resources(name, name, bucket=BUCKET)
    boto3.client("s3").create_bucket(Bucket=VICTIM)
    boto3.client("s3").put_object(Bucket=VICTIM, Key="hr/salaries.csv", Body=b"alice,100000\n")
    return Outbox(name, queue, body_bucket=BUCKET)


def _pending(outbox: Outbox, key: str, body: str) -> None:
    """A record written by the team's transaction and never dispatched: the reconciler's to send."""
    boto3.client("dynamodb").transact_write_items(TransactItems=[outbox.pending_put(key, body)])


def _set(outbox: Outbox, key: str, **values: Any) -> None:
    names = {f"#n{i}": name for i, name in enumerate(values)}
    sets = ", ".join(f"#n{i} = :v{i}" for i in range(len(values)))
    boto3.client("dynamodb").update_item(
        TableName=outbox.table,
        Key=TableLayout().key(key),
        UpdateExpression=f"SET {sets}",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":v{i}": value for i, value in enumerate(values.values())},
    )


def _pass_leaves_it(outbox: Outbox, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A pass reads the record, refuses it with `code`, counts and logs it, and sends nothing."""
    capsys.readouterr()
    with time_machine.travel(_now() / 1000 + 61, tick=True):
        summary = outbox.reconcile(context=Context())
    assert (summary.redriven, summary.failed_reads) == (0, 1)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["code"] for line in lines if line["event"] == "aws_failure"] == [code]
    sqs = boto3.client("sqs")
    assert sqs.receive_message(QueueUrl=outbox.queue_url).get("Messages") is None


def _s3_name(outbox: Outbox, key: str) -> str:
    item = boto3.client("dynamodb").get_item(TableName=outbox.table, Key=TableLayout().key(key))
    at = str(item["Item"][BODY_AT]["S"])
    assert at.startswith(f"s3://{BUCKET}/sendguard/bodies/{key}/")
    return at


@pytest.mark.parametrize(
    "steered",
    [
        f"s3://{VICTIM}/hr/salaries.csv",  # another bucket
        f"s3://{BUCKET}/hr/salaries.csv",  # the bucket, outside the prefix
        "OTHER",  # the prefix, another record's object
        "s3://bodies/sendguard/bodies/k-1/../../../hr/x",  # a nonce of another form
        "item:nonce#sk",
        "https://example.com/x",
    ],
)
def test_a_steered_pointer_is_refused_on_every_read_path(
    outbox: Outbox, steered: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _pending(outbox, "k-1", LARGE)
    if steered == "OTHER":
        _pending(outbox, "k-2", LARGE.replace("x", "y"))
        steered = _s3_name(outbox, "k-2")
        assert outbox.dispatch("k-2").accepted  # sent and confirmed: only k-1 is due
        sqs = boto3.client("sqs")
        (sent,) = sqs.receive_message(QueueUrl=outbox.queue_url)["Messages"]
        sqs.delete_message(QueueUrl=outbox.queue_url, ReceiptHandle=sent["ReceiptHandle"])
    _set(outbox, "k-1", **{BODY_AT: {"S": steered}})
    _pass_leaves_it(outbox, POINTER_REFUSED, capsys)
    with pytest.raises(OutboxError) as refused:
        outbox.get("k-1")
    assert (refused.value.code, refused.value.retryable) == (POINTER_REFUSED, False)
    replay = outbox.send("k-1", LARGE)
    assert (replay.accepted, replay.http_status, replay.error_code) == (False, 500, POINTER_REFUSED)
    assert outbox.dispatch("k-1").error_code == POINTER_REFUSED
    report = audited(capsys, outbox.table, "--body-bucket", BUCKET)
    assert not report["ok"] and any(POINTER_REFUSED in v for v in report["violations"])
    assert boto3.client("sqs").receive_message(QueueUrl=outbox.queue_url).get("Messages") is None


def test_without_a_body_bucket_no_s3_name_is_read(outbox: Outbox, capsys: pytest.CaptureFixture[str]) -> None:
    """The review's case: no bucket configured, and a record pointed at another bucket's object."""
    blind = Outbox(outbox.table, outbox.queue_url)
    _pending(blind, "k-1", "small")
    _set(blind, "k-1", **{BODY_AT: {"S": f"s3://{VICTIM}/hr/salaries.csv"}})
    _pass_leaves_it(blind, POINTER_REFUSED, capsys)


def test_another_body_under_the_records_own_key_is_read_and_refused_by_its_hash(
    outbox: Outbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A body item of the same key (a conflicting request's, or one planted) passes the pointer
    check, and fails the hash: never sent, never answered for."""
    _pending(outbox, "k-1", MEDIUM)
    table = outbox.table
    planted = body_item(TableLayout(), Key("k-1"), "Planted1", "evil body")
    boto3.client("dynamodb").put_item(TableName=table, Item=planted)
    _set(outbox, "k-1", **{BODY_AT: {"S": "item:Planted1"}})
    _pass_leaves_it(outbox, BODY_MISMATCH, capsys)
    with pytest.raises(OutboxError) as refused:
        outbox.get("k-1")
    assert refused.value.code == BODY_MISMATCH
    assert outbox.send("k-1", MEDIUM).error_code == BODY_MISMATCH
    assert outbox.send("k-1", "evil body").error_code == BODY_MISMATCH  # nor as a conflict's proof
    report = audited(capsys, outbox.table, "--body-bucket", BUCKET)
    assert not report["ok"]


@pytest.mark.parametrize("where", ["inline", "item", "s3"])
def test_a_body_rewritten_in_place_is_never_sent(
    outbox: Outbox, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"inline": "small", "item": MEDIUM, "s3": LARGE}[where]
    _pending(outbox, "k-1", body)
    table = outbox.table
    if where == "inline":
        _set(outbox, "k-1", payload={"S": "evil"})
    elif where == "item":
        item = boto3.client("dynamodb").get_item(TableName=table, Key=TableLayout().key("k-1"))["Item"]
        nonce = item[BODY_AT]["S"].removeprefix("item:")
        planted = body_item(TableLayout(), Key("k-1"), nonce, "evil")
        assert BODY in planted
        boto3.client("dynamodb").put_item(TableName=table, Item=planted)
    else:
        at = _s3_name(outbox, "k-1")
        boto3.client("s3").put_object(Bucket=BUCKET, Key=at.split("/", 3)[3], Body=b"evil")
    _pass_leaves_it(outbox, BODY_MISMATCH, capsys)
    assert outbox.dispatch("k-1").error_code == BODY_MISMATCH
