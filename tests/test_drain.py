"""The reconciler that drains a backlog: configurable index shards that a change cannot strand,
SendMessageBatch with each entry classified on its own, groups on worker threads, and partitions that
take turns (issue 15)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.codec import ATTENTION
from adapters.runtime.config import Config, ConfigError
from adapters.runtime.due_index import PAGE
from adapters.runtime.layout import TableLayout
from adapters.runtime.reconciler import reconcile_pass
from adapters.runtime.runner import Aws, run_flow
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.sqs_batch import MAX_BATCH_BYTES, batches, entry_failure
from adapters.testing.serial_moto import one_request_at_a_time
from statemodel.attention import DEFAULT_SHARDING, MAX_SHARDS, Shards, attention_key
from statemodel.categories import ErrorCategory
from statemodel.flows import Send, Settings, lease_expiry, start_submit
from statemodel.records import Phase, Record
from statemodel.stored import Stored
from statemodel.validation import new_message, parse_submission

SETTINGS = Settings(max_attempts=3, redrive_after_ms=60_000, lease_margin_ms=30_000)
INVOCATION_MS = 10_000


# ---- configuration (the pure rules of `Shards` are in tests/test_flows.py, in `make mutation`'s run) --


def test_config_reads_the_shard_and_worker_variables() -> None:
    base = {"SENDGUARD_TABLE": "t", "SENDGUARD_QUEUE_URL": "q"}
    assert Config.from_env(base).shards == Shards(4, 4)
    assert Config.from_env(base).reconciler_workers == 1
    config = Config.from_env(
        base
        | {
            "SENDGUARD_INDEX_SHARDS": "16",
            "SENDGUARD_INDEX_SHARDS_READ": "32",
            "SENDGUARD_RECONCILER_WORKERS": "4",
        }
    )
    assert config.shards == Shards(16, 32) and config.reconciler_workers == 4
    assert Config.from_env(
        base | {"SENDGUARD_INDEX_SHARDS": "8", "SENDGUARD_INDEX_SHARDS_READ": "4"}
    ).shards == (Shards(8, 8))
    for name, value in (
        ("SENDGUARD_INDEX_SHARDS", "0"),
        ("SENDGUARD_INDEX_SHARDS", str(MAX_SHARDS + 1)),
        ("SENDGUARD_RECONCILER_WORKERS", "0"),
        ("SENDGUARD_RECONCILER_WORKERS", "many"),
    ):
        with pytest.raises(ConfigError, match=name):
            Config.from_env(base | {name: value})


@pytest.mark.parametrize(
    ("entry", "category"),
    [
        ({"Code": "InvalidParameterValue", "SenderFault": True}, ErrorCategory.PERMANENT),
        ({"Code": "KMS.DisabledException", "SenderFault": True}, ErrorCategory.PERMANENT),
        ({"Code": "KMS.ThrottlingException", "SenderFault": True}, ErrorCategory.PERMANENT),
        ({"Code": "KMS.ThrottlingException", "SenderFault": False}, ErrorCategory.RETRYABLE),
        ({"Code": "RequestThrottled", "SenderFault": False}, ErrorCategory.RETRYABLE),
        ({"Code": "InternalError", "SenderFault": False}, ErrorCategory.RETRYABLE),
        ({"Code": "ServiceUnavailable", "SenderFault": False}, ErrorCategory.RETRYABLE),
        ({"Code": "AccessDenied", "SenderFault": False}, ErrorCategory.RETRYABLE),
    ],
)
def test_each_failed_entry_is_classified_on_its_own(entry: dict[str, Any], category: ErrorCategory) -> None:
    classified = entry_failure({"Id": "0", "Message": "m", **entry})
    assert classified.category is category and classified.code == entry["Code"]


def _send(n: int, size: int = 10) -> Send:
    request = parse_submission(json.dumps({"payload": "x" * size, "attributes": {}}))
    message = new_message(request, f"id-{n}", "corr", 0, None)  # type: ignore[arg-type]
    return Send(message, "a", 0)


def test_batches_hold_ten_entries_and_at_most_256_kib() -> None:
    assert batches([_send(n) for n in range(23)]) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    big = MAX_BATCH_BYTES // 2
    groups = batches([_send(0, big), _send(1, 10), _send(2, big), _send(3, MAX_BATCH_BYTES)])
    assert groups == [[0, 1], [2], [3]]


# ---- on moto -------------------------------------------------------------------------------------


def _build(
    shards: Shards = DEFAULT_SHARDING, workers: int = 1, layout: TableLayout | None = None
) -> tuple[Config, Aws]:
    name = f"t{uuid.uuid4().hex[:12]}"
    layout = attrs.evolve(layout or TableLayout(), shards=shards)
    queue_url = ensure_resources(name, name, layout=layout)
    config = Config(name, queue_url, SETTINGS, layout=layout, reconciler_workers=workers)
    return config, Aws.from_config(config)


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    with mock_aws(), one_request_at_a_time():  # worker threads: moto's requests are not atomic
        yield


class _Refusing:
    """An SQS client whose sends fail retryably: the submission rolls back to PENDING."""

    def __init__(self, real: Any) -> None:
        self.meta = real.meta

    def send_message(self, **_: Any) -> Any:
        raise _throttled()


def _throttled() -> Exception:
    from botocore.exceptions import ClientError

    error = {"Code": "RequestThrottled", "QueryErrorCode": "RequestThrottled"}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}, "SendMessage")


def _pending(aws: Aws, count: int, now: int) -> list[str]:
    """`count` records left PENDING by submissions whose send was throttled. Their ids are the same
    in every run (so is how they spread over the index's shards): no test depends on a draw."""
    refusing = Aws(aws.dynamodb, SqsQueue(_Refusing(aws.sqs.client), aws.sqs.queue_url))
    ids = []
    for n in range(count):
        request = parse_submission(json.dumps({"payload": {"n": n}, "attributes": {"group": "g"}}))
        message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sendguard-test-pending-{n}"))
        message = new_message(request, message_id, f"corr-{n}", now, None)  # type: ignore[arg-type]
        flow = start_submit(
            message, str(uuid.uuid4()), lease_expiry(now, INVOCATION_MS, SETTINGS), now, SETTINGS
        )
        # The deadline guard reads the real clock: each submission gets its own invocation's time.
        answer = run_flow(flow, refusing, now_ms() + INVOCATION_MS, clock=lambda: now)
        assert answer.failure is not None and answer.failure.code == "RequestThrottled", answer
        ids.append(answer.message_id)
    return ids


def _record(aws: Aws, message_id: str) -> Record:
    found, call = aws.store.get(message_id)
    assert isinstance(found, Stored), call
    return found.record


def _calls(aws: Aws) -> list[str]:
    seen: list[str] = []
    for client in (aws.dynamodb.client, aws.sqs.client):
        client.meta.events.register("before-call", lambda model, **_: seen.append(model.name))
    return seen


def _queued(aws: Aws) -> list[str]:
    ids = []
    while True:
        got = aws.sqs.client.receive_message(
            QueueUrl=aws.sqs.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return ids
        ids += [m["MessageAttributes"]["message_id"]["StringValue"] for m in got]


TEAM = TableLayout(
    partition_key="pk", sort_key="sk", sort_key_value="outbox", status_attribute="state", body_attribute="doc"
)


@pytest.mark.parametrize(("workers", "layout"), [(1, None), (4, None), (4, TEAM)])
def test_a_pass_redrives_a_backlog_in_batches_of_ten(
    moto: None, workers: int, layout: TableLayout | None
) -> None:
    config, aws = _build(workers=workers, layout=layout)
    now = now_ms()
    ids = _pending(aws, 25, now)
    calls = _calls(aws)
    later = now + SETTINGS.redrive_after_ms
    summary = reconcile_pass(aws, config, later + INVOCATION_MS, clock=lambda: later)
    assert (summary.redriven, summary.records_read, summary.groups, summary.workers) == (25, 25, 3, workers)
    assert calls.count("SendMessageBatch") == 3 and "SendMessage" not in calls
    assert calls.count("UpdateItem") == 50  # every claim and every confirm its own conditional write
    assert sorted(_queued(aws)) == sorted(ids)  # each record's message once
    for message_id in ids:
        assert _record(aws, message_id).phase is Phase.CONFIRMED
    again = reconcile_pass(aws, config, later + INVOCATION_MS, clock=lambda: later)
    assert again.records_read == 0 and again.queries == 2 * config.shards.read


def test_failed_entries_roll_back_each_by_its_own_category(moto: None) -> None:
    config, aws = _build()
    now = now_ms()
    ids = _pending(aws, 4, now)

    asked: list[dict[str, Any]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        asked.append(params)

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        entries = asked[-1]["Entries"]
        by_id = {e["MessageAttributes"]["message_id"]["StringValue"]: e["Id"] for e in entries}
        failed = [
            {"Id": by_id[ids[0]], "SenderFault": True, "Code": "InvalidParameterValue", "Message": "m"},
            {"Id": by_id[ids[1]], "SenderFault": False, "Code": "InternalError", "Message": "m"},
        ]
        ok = [{"Id": by_id[i], "MessageId": f"sqs-{i}", "MD5OfMessageBody": "x"} for i in ids[2:]]
        return AWSResponse("https://sqs", 200, {}, None), {"Successful": ok, "Failed": failed}

    aws.sqs.client.meta.events.register("provide-client-params.sqs.SendMessageBatch", remember)
    aws.sqs.client.meta.events.register("before-call.sqs.SendMessageBatch", answer)
    later = now + SETTINGS.redrive_after_ms
    summary = reconcile_pass(aws, config, later + INVOCATION_MS, clock=lambda: later)
    assert (summary.redriven, summary.exhausted, summary.failed) == (2, 0, 2)
    records = {i: _record(aws, i) for i in ids}
    assert records[ids[0]].phase is Phase.EXHAUSTED  # SenderFault: permanent, flagged at once
    assert (
        records[ids[0]].last_error is not None and records[ids[0]].last_error.code == "InvalidParameterValue"
    )
    assert (
        records[ids[1]].phase is Phase.PENDING and records[ids[1]].attempts == 2
    )  # retryable: re-driven later
    assert records[ids[1]].last_error is not None and records[ids[1]].last_error.category == "retryable"
    for i in ids[2:]:
        assert records[i].phase is Phase.CONFIRMED and records[i].sqs_message_id == f"sqs-{i}"


def test_a_failed_batch_request_fails_every_entry_and_keeps_every_record(moto: None) -> None:
    config, aws = _build()
    now = now_ms()
    ids = _pending(aws, 3, now)

    def refuse(**_: Any) -> None:
        raise _throttled()

    aws.sqs.client.meta.events.register("before-call.sqs.SendMessageBatch", refuse)
    later = now + SETTINGS.redrive_after_ms
    summary = reconcile_pass(aws, config, later + INVOCATION_MS, clock=lambda: later)
    assert (summary.redriven, summary.failed) == (0, 3)
    for i in ids:
        record = _record(aws, i)
        assert record.phase is Phase.PENDING and record.attempts == 2 and record.last_error is not None
        assert record.last_error.code == "RequestThrottled"


def test_a_shard_count_change_strands_no_entry(moto: None) -> None:
    config, aws = _build(Shards(8, 8))
    now = now_ms()
    ids = _pending(aws, 24, now)
    shards = {attention_key(_record(aws, i), Shards(8, 8))[0] for i in ids}  # type: ignore[index]
    assert any(int(p.split("#")[1]) >= 4 for p in shards)  # some entries live above the new count
    later = now + SETTINGS.redrive_after_ms
    lowered = Config(
        config.table, config.queue_url, SETTINGS, layout=TableLayout(shards=Shards.configured(4, 8))
    )
    summary = reconcile_pass(Aws.from_config(lowered), lowered, later + INVOCATION_MS, clock=lambda: later)
    assert summary.redriven == 24 and summary.queries == 16


def test_partitions_take_turns_page_by_page(moto: None) -> None:
    """A pass that cannot finish still reaches every shard: the first pages come one from each."""
    _, aws = _build(Shards(2, 2))
    now = now_ms()
    ids = _pending(aws, 2 * PAGE + 30, now)
    later = now + SETTINGS.redrive_after_ms
    seen = []
    for page in aws.due_index.due(later, SETTINGS):
        seen += [aws.store.layout.shards.of(record.message_id) for record in page.records]
        if len(seen) >= 2 * PAGE:
            break
    assert sorted(set(seen)) == [0, 1] and seen.count(0) == seen.count(1) == PAGE
    assert len(ids) == len(set(ids))


def test_the_store_writes_entries_to_its_configured_shards(moto: None) -> None:
    config, aws = _build(Shards(16, 16))
    ids = _pending(aws, 40, now_ms())
    raw = aws.dynamodb.client
    partitions = {
        raw.get_item(TableName=config.table, Key={"message_id": {"S": i}})["Item"][ATTENTION]["S"]
        for i in ids
    }
    assert all(re.fullmatch(r"PENDING#\d+", p) for p in partitions)
    assert max(int(p.split("#")[1]) for p in partitions) >= 4  # beyond the default 4


def test_the_session_is_shared_and_follows_the_environment(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.runtime import clients

    first = make_client("sqs", 3)
    second = make_client("dynamodb", 3)
    assert clients._session_kept and first.meta.region_name == second.meta.region_name
    kept = clients._session_kept[0][1]
    make_client("sqs", 3)
    assert clients._session_kept[0][1] is kept  # one Session for the container's clients
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert make_client("sqs", 3).meta.region_name == "eu-west-3"  # a changed environment, a new Session
    assert clients._session_kept[0][1] is not kept


def test_outbox_reconcile_drains_a_team_table_with_workers_and_shards(moto: None) -> None:
    """The library's entry: `Outbox.reconcile` on a team's layout, its shards raised, four workers."""
    from adapters.runtime.outbox import Outbox

    layout = attrs.evolve(TEAM, shards=Shards.configured(8))
    config, aws = _build(layout.shards, 4, layout)
    long_ago = now_ms() - 10 * SETTINGS.redrive_after_ms  # rolled back long enough ago to be due now
    ids = _pending(aws, 23, long_ago)
    outbox = Outbox(
        config.table,
        config.queue_url,
        layout=layout,
        redrive_after_seconds=SETTINGS.redrive_after_ms // 1000,
        reconciler_workers=4,
    )
    summary = outbox.reconcile(deadline_ms=now_ms() + INVOCATION_MS)
    assert (summary.redriven, summary.workers, summary.groups) == (23, 4, 3)
    assert sorted(_queued(aws)) == sorted(ids)
    assert all(_record(aws, i).phase is Phase.CONFIRMED for i in ids)
    with pytest.raises(ValueError, match="reconciler_workers"):
        Outbox(config.table, config.queue_url, reconciler_workers=0)


def fanout_row(fanout: int, records_per_s: float, cpu_s: float, seconds: float) -> dict[str, Any]:
    return {
        "latency_ms": 0,
        "fanout": fanout,
        "records_per_s": records_per_s,
        "cpu_ms_per_record": 35.0,
        "cpu_s": cpu_s,
        "seconds": seconds,
    }


def test_the_fanout_prose_says_when_no_wider_fanout_was_faster() -> None:
    from bench.report_drain import _fanout_on_moto

    text = " ".join(
        " ".join(_fanout_on_moto([fanout_row(1, 30.0, 2.0, 2.0), fanout_row(4, 26.1, 2.3, 2.3)], 2)).split()
    )
    assert "F = 1 drained 30.0 records a second and was the fastest (F = 4: 26.1)" in text
    assert "the fastest, F = 1" not in text  # the page once said so, with "(1.00×)"
    assert "running 100% of the time" in text and "100% to 100%" not in text
    text = " ".join(
        " ".join(_fanout_on_moto([fanout_row(1, 15.6, 2.3, 3.8), fanout_row(4, 27.0, 2.1, 2.2)], 2)).split()
    )
    assert "the fastest, F = 4, 27.0 (1.73×)" in text and "61% to 95%" in text
