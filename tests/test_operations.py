"""Operations on moto: exhausted records re-armed by `sendguard redrive --exhausted` and delivered by the
next reconciler pass, `sendguard status` before and after; re-arms that find the record changed, or
not exhausted, or get bad input; what a client's replay of an exhausted record is answered; and the
EMF metrics, summed over a faulted sequence, against what happened."""

from __future__ import annotations

import collections
import datetime
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from moto import mock_aws

from adapters import aws_lambda
from adapters.cli import redrive as redrive_cli
from adapters.cli import status as status_cli
from adapters.local.sandbox import LambdaContext
from adapters.ops.backlog import exhausted
from adapters.ops.provision import ensure_resources
from adapters.runtime import metrics
from adapters.runtime.codec import stored_from_item
from adapters.runtime.config import Config, ConfigError
from adapters.runtime.rearm import CHANGED, NOT_EXHAUSTED, NOT_FOUND, REARMED, InvalidRearm, rearm
from adapters.runtime.runner import Aws
from adapters.testing.clients import client
from statemodel.categories import Failure
from statemodel.decider import segment
from statemodel.events import Rearmed, RedriveExhausted, SendFailed
from statemodel.records import Phase
from tests.test_lambda import Faulty, on_calls, raising

TABLE, QUEUE = "sendguard-ops-test", "sendguard-ops-test"
REDRIVE_AFTER_S = 5


def context() -> LambdaContext:
    return LambdaContext(10_000)


@pytest.fixture
def service(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with mock_aws():
        queue_url = ensure_resources(TABLE, QUEUE)
        monkeypatch.setenv("SENDGUARD_TABLE", TABLE)
        monkeypatch.setenv("SENDGUARD_QUEUE_URL", queue_url)
        monkeypatch.setenv("SENDGUARD_REDRIVE_AFTER_SECONDS", str(REDRIVE_AFTER_S))
        monkeypatch.setenv("SENDGUARD_METRICS_NAMESPACE", "sendguard/test")
        aws_lambda.reset()
        yield queue_url
        aws_lambda.reset()


def post(payload: object, key: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json"} | ({"idempotency-key": key} if key else {})
    return {
        "version": "2.0",
        "rawPath": "/messages",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/messages"}},
        "body": json.dumps({"payload": payload}),
        "isBase64Encoded": False,
    }


def submit(
    payload: object, key: str | None = None, container: Faulty | None = None
) -> tuple[int, dict[str, Any]]:
    """A POST to the module's handler, or to the test's own `container`."""
    evt = post(payload, key)
    result = container.submit(evt) if container else aws_lambda.submit(evt, context())
    return result["statusCode"], json.loads(result["body"])


def denied() -> None:
    """A fault: SQS refuses the send for good."""
    raise ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "x")  # type: ignore[arg-type]


def operator() -> Aws:
    """The store and queue an operator's tool makes from the environment (as `sendguard redrive`)."""
    return Aws.from_config(Config.from_env())


def stored(message_id: str) -> Any:
    found, _ = operator().store.get(message_id)
    assert found is not None and not isinstance(found, Failure)
    return found


def queued(queue_url: str) -> list[str]:
    """The queue's messages, received and deleted with the test's own client."""
    sqs = client("sqs")
    bodies = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [m["Body"] for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def cli_json(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if not line.startswith('{"_aws"')]
    return code, json.loads(line)


def exhaust(payloads: list[object]) -> list[str]:
    """Submits each payload to a container of its own while SQS refuses with AccessDenied: each
    record is flagged exhausted. The ids of the exhausted records, as an operator lists them."""
    container = Faulty()
    with container.failing(SendMessage=denied):
        for n, payload in enumerate(payloads):
            status, body = submit(payload, key=f"denied-{n}", container=container)
            assert status == 500, body
    return [s.record.message_id for s in exhausted(operator().store)]


# ---- the "done when" ---------------------------------------------------------------------


def test_exhausted_records_are_rearmed_by_redrive_and_delivered_by_the_next_pass(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = exhaust([{"order": n} for n in range(3)])
    assert len(ids) == 3 and all(stored(i).record.phase is Phase.EXHAUSTED for i in ids)
    assert submit({"order": "fine"})[0] == 202
    assert len(queued(service)) == 1
    capsys.readouterr()

    _, before = cli_json(status_cli.main, ["--table", TABLE], capsys)
    assert before["kinds"]["exhausted"]["waiting"] == 3 and before["kinds"]["exhausted"]["due"] == 3
    assert before["kinds"]["pending"]["waiting"] == 0 and before["kinds"]["in_flight"]["waiting"] == 0

    code, report = cli_json(
        redrive_cli.main, ["--exhausted", "--table", TABLE, "--reason", "policy fixed"], capsys
    )
    assert code == 0 and sorted(r["message_id"] for r in report["rearmed"]) == sorted(ids)
    assert report["skipped"] == [] and report["failed"] == []

    _, rearmed = cli_json(status_cli.main, ["--table", TABLE], capsys)
    assert rearmed["kinds"]["exhausted"]["waiting"] == 0
    assert rearmed["kinds"]["pending"]["waiting"] == 3 and rearmed["kinds"]["pending"]["due"] == 0

    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=REDRIVE_AFTER_S + 1)
    with time_machine.travel(later, tick=True):
        summary = aws_lambda.reconcile({"source": "aws.events"}, context())
        _, after = cli_json(status_cli.main, ["--table", TABLE], capsys)
    assert summary["redriven"] == 3 and summary["failed"] == 0
    assert all(row["waiting"] == 0 for row in after["kinds"].values())
    assert sorted(json.loads(body)["order"] for body in queued(service)) == [0, 1, 2]
    for message_id in ids:
        history = stored(message_id).history
        kinds = [type(e) for e in history]
        assert kinds.index(RedriveExhausted) < kinds.index(Rearmed)
        (event,) = [e for e in history if isinstance(e, Rearmed)]
        assert event.reason == "policy fixed" and "@" in event.by
        assert stored(message_id).record.phase is Phase.CONFIRMED
        assert stored(message_id).record.attempts == 1  # the fresh budget's first claim


# ---- what redrive selects and skips --------------------------------------------------------------


def test_redrive_filters_by_code_since_and_limit_and_a_dry_run_writes_nothing(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = exhaust([1, 2, 3])
    versions = {i: stored(i).record.version for i in ids}
    capsys.readouterr()
    _, dry = cli_json(redrive_cli.main, ["--exhausted", "--table", TABLE, "--dry-run"], capsys)
    assert len(dry["would_rearm"]) == 3 and {i: stored(i).record.version for i in ids} == versions
    _, other = cli_json(redrive_cli.main, ["--exhausted", "--table", TABLE, "--code", "KMS.Disabled"], capsys)
    assert other["rearmed"] == []
    future = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    _, none = cli_json(redrive_cli.main, ["--exhausted", "--table", TABLE, "--since", future], capsys)
    assert none["rearmed"] == []
    args = ["--exhausted", "--table", TABLE, "--code", "AccessDenied", "--limit", "2"]
    _, two = cli_json(redrive_cli.main, args, capsys)
    assert len(two["rearmed"]) == 2
    assert sum(stored(i).record.phase is Phase.EXHAUSTED for i in ids) == 1


def test_redrive_needs_exhausted_and_refuses_bad_arguments(service: str) -> None:
    base = ["--exhausted", "--table", TABLE]
    for argv in (
        ["--table", TABLE],
        [*base, "--since", "yesterday"],
        [*base, "--limit", "0"],
        [*base, "--reason", " "],
    ):
        with pytest.raises(SystemExit) as exit_:
            redrive_cli.main(argv)
        assert exit_.value.code == 2


def test_a_record_that_changed_under_the_redrive_is_skipped_not_overwritten(service: str) -> None:
    (message_id,) = exhaust([1])
    aws = operator()
    (as_read,) = list(exhausted(aws.store))
    first = rearm(aws, message_id, reason="first", by="ops-a", max_attempts=10)
    assert first.outcome == REARMED
    second = rearm(aws, message_id, reason="second", by="ops-b", max_attempts=10, found=as_read)
    assert second.outcome == CHANGED
    history = stored(message_id).history
    assert [e.by for e in history if isinstance(e, Rearmed)] == ["ops-a"]


def test_the_library_rearm_refuses_what_is_not_exhausted_and_bad_input(service: str) -> None:
    aws = operator()
    status, body = submit({"ok": 1}, key="fine")
    assert status == 202
    confirmed = stored(body["messageId"])
    assert rearm(aws, body["messageId"], reason="x", by="ops", max_attempts=10).outcome == NOT_EXHAUSTED
    assert rearm(aws, "no-such-record", reason="x", by="ops", max_attempts=10).outcome == NOT_FOUND
    for by, reason in (("", "why"), ("ops", ""), ("ops", "x" * 513), ("ops\n", "why")):
        with pytest.raises(InvalidRearm):
            rearm(aws, body["messageId"], reason=reason, by=by, max_attempts=10)
    assert stored(body["messageId"]) == confirmed


# ---- a client's replay of an exhausted record ----------------------------------------------------


def test_a_replay_of_an_exhausted_record_is_500_until_an_operator_rearms_it(service: str) -> None:
    (message_id,) = exhaust([{"order": 7}])
    before = stored(message_id)
    status, body = submit({"order": 7}, key="denied-0")
    assert status == 500 and body["error"]["code"] == "SYSTEM_ERROR"
    assert stored(message_id) == before  # nothing written: no re-arm by a client
    assert rearm(operator(), message_id, reason="fixed", by="ops", max_attempts=10).outcome == REARMED
    status, body = submit({"order": 7}, key="denied-0")
    assert status == 202 and body["messageId"] == message_id
    assert [json.loads(body) for body in queued(service)] == [{"order": 7}]


# ---- metrics ---------------------------------------------------------------------------------------


def emf_documents(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def test_emf_metrics_summed_over_a_faulted_sequence_equal_what_happened(
    service: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDGUARD_LOG_LEVEL", "ERROR")  # metrics are written whatever the level
    aws_lambda.reset()
    container = Faulty()
    answers: collections.Counter[int] = collections.Counter()
    read_timeout = raising(ReadTimeoutError(endpoint_url="x"))  # the send may have landed: ambiguous

    def second_update_fails() -> Callable[[], None]:
        return on_calls(lambda n: n == 2, ConnectTimeoutError(endpoint_url="x"))

    for n in range(3):
        answers[submit({"n": n}, key=f"ok-{n}", container=container)[0]] += 1
    answers[submit({"n": 0}, key="ok-0", container=container)[0]] += 1  # a replay of a queued one: 202
    with container.failing(SendMessage=denied):
        answers[submit({"n": "denied"}, key="denied", container=container)[0]] += 1  # permanent: exhausted
    with container.failing(SendMessage=read_timeout):
        # ambiguous: rolled back, re-driven later
        answers[submit({"n": "lost"}, key="lost", container=container)[0]] += 1
        with container.failing(UpdateItem=second_update_fails()):
            answers[submit({"n": "stuck"}, key="stuck", container=container)[0]] += (
                1  # the rollback fails too
            )
    with container.failing(UpdateItem=second_update_fails()):
        # sent, confirm fails
        answers[submit({"n": "unconfirmed"}, key="unconfirmed", container=container)[0]] += 1
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    with time_machine.travel(later, tick=True):
        passes = [container.handlers.reconcile({}, context())]  # expires two leases, re-drives "lost"
        assert redrive_cli.main(["--exhausted", "--table", TABLE]) == 0  # re-arms "denied"
    with time_machine.travel(later + datetime.timedelta(seconds=REDRIVE_AFTER_S + 60), tick=True):
        passes.append(container.handlers.reconcile({}, context()))  # re-drives the other three
    captured = capsys.readouterr()
    docs = emf_documents(captured.out + "\n" + captured.err)
    total = metrics.values(docs)

    rows: collections.Counter[str] = collections.Counter()
    send_failed: collections.Counter[str] = collections.Counter()
    for item in client("dynamodb").scan(TableName=TABLE)["Items"]:
        history = stored_from_item(item).history
        rows.update(f"{r.source.value} {r.command.__name__} -> {r.target.value}" for r in segment(history))
        send_failed.update(e.category for e in history if isinstance(e, SendFailed))
    assert answers == {202: 5, 500: 1, 503: 2}
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "sendguard/test" for d in docs)
    assert total["Accepted"] == answers[202]
    assert total["SendFailed{Category=permanent}"] == send_failed["permanent"] == 1
    # the rolled-back ambiguous send is in its history; the one whose rollback failed is not
    assert total["SendFailed{Category=ambiguous}"] == send_failed["ambiguous"] + total["RollbackFailed"] == 2
    assert total["RollbackFailed"] == 1 and total["Unconfirmed"] == 1
    assert total["Exhausted"] == rows["IN_FLIGHT ReportSendFailure -> EXHAUSTED"] == 1
    assert total["LeaseExpired"] == rows["IN_FLIGHT ExpireLease -> PENDING"] == 2
    assert total["Rearmed"] == rows["EXHAUSTED Rearm -> PENDING"] == 1
    assert (
        total["Redriven"] == rows["PENDING Redrive -> IN_FLIGHT"] == sum(p["redriven"] for p in passes) == 4
    )
    assert total["ReconcilerDue"] == sum(p["records_read"] for p in passes)
    assert total["ReconcilerStoppedEarly"] == 0
    assert len([d for d in docs if "ReconcilerDue" in d]) == len(passes)


def test_metrics_can_be_switched_off_and_the_switch_is_checked(
    service: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDGUARD_METRICS", "off")
    aws_lambda.reset()
    assert submit({"quiet": 1})[0] == 202
    aws_lambda.reconcile({}, context())
    assert emf_documents(capsys.readouterr().out) == []
    monkeypatch.setenv("SENDGUARD_METRICS", "maybe")
    with pytest.raises(ConfigError, match="SENDGUARD_METRICS"):
        Config.from_env()
