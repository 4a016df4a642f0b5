"""The adapters on moto: each transition's conditional write, classification of every known error,
the false condition failure after a landed retry, metadata kept through rollbacks, fencing, the
reconciler (leases, re-drives, exhaustion, flat reads) and the audit — in-process (`mock_aws`) and
over real HTTP (`ThreadedMotoServer` with a fault middleware)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from moto import mock_aws

from adapters.cli import audit as audit_command
from adapters.ops import audit as audit_module
from adapters.ops.provision import ensure_resources
from adapters.runtime.classify import MESSAGE_BOUND, classify
from adapters.runtime.clients import READ_TIMEOUT_S, make_client, now_ms
from adapters.runtime.codec import (
    ATTENTION,
    ATTENTION_AT,
    MESSAGE,
    body_at,
    created_item,
    message_attributes,
    stored_from_item,
)
from adapters.runtime.config import Config
from adapters.runtime.layout import TableLayout
from adapters.runtime.reconciler import reconcile_pass
from adapters.runtime.runner import Aws, run_flow
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.sqs_batch import entry_failure
from adapters.runtime.store import DynamoStore
from statemodel import ErrorCategory, Phase
from statemodel.categories import Failure
from statemodel.flows import (
    Answer,
    ConditionFailed,
    Result,
    Settings,
    Write,
    Written,
    advance,
    lease_expiry,
    start_expire,
    start_submit,
)
from statemodel.invariants import history_problems
from statemodel.stored import Stored
from statemodel.validation import MAX_ATTEMPTS_LIMIT, MAX_MESSAGE_BYTES, new_message, parse_submission
from tests.moto_http import FaultyMotoServer, Rule, dynamodb_error, sqs_error

SETTINGS = Settings(max_attempts=3, redrive_after_ms=60_000, lease_margin_ms=30_000)
INVOCATION_MS = 10_000
STALL_S = READ_TIMEOUT_S + 0.5  # a stalled answer comes after the client gave up on it


def stored_of(aws: Aws, message_id: str) -> Stored | None:
    """The record as the table holds it; a read that fails here fails the test."""
    found, call = aws.store.get(message_id)
    assert not isinstance(found, Failure), call
    return found


def build(fifo: bool = False, read_timeout: float = 3.0, aws_attempts: int = 3) -> tuple[Config, Aws]:
    name = f"t{uuid.uuid4().hex[:12]}"
    queue_url = ensure_resources(name, name + ".fifo" if fifo else name, fifo=fifo)
    config = Config(name, queue_url, SETTINGS, aws_max_attempts=aws_attempts)
    aws = Aws(
        DynamoStore(make_client("dynamodb", aws_attempts, read_timeout), name),
        SqsQueue(make_client("sqs", aws_attempts, read_timeout), queue_url),
    )
    return config, aws


@pytest.fixture
def local(aws_env: None) -> Iterator[tuple[Config, Aws]]:
    with mock_aws():
        yield build()


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyMotoServer]:
    moto = FaultyMotoServer()
    moto.start()
    yield moto
    moto.stop()


@pytest.fixture
def remote(
    aws_env: None, server: FaultyMotoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Config, Aws]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    server.faults.rules.clear()
    # The client's own read timeout: an answer of the in-process server, slowed by a loaded machine,
    # must not pass for a fault. The stall rules below outlast it.
    built = build(aws_attempts=2)
    server.faults.requests.clear()
    yield built
    server.faults.rules.clear()


def submit(
    aws: Aws, payload: Any = None, attributes: dict[str, str] | None = None, key: str | None = None
) -> Answer:
    request = parse_submission(json.dumps({"payload": payload or {"n": 1}, "attributes": attributes or {}}))
    assert not hasattr(request, "code"), request
    now = now_ms()
    message = new_message(request, key or str(uuid.uuid4()), "corr-1", now, key)  # type: ignore[arg-type]
    flow = start_submit(message, str(uuid.uuid4()), lease_expiry(now, INVOCATION_MS, SETTINGS), now, SETTINGS)
    return run_flow(flow, aws, now + INVOCATION_MS)


def raw_item(aws: Aws, message_id: str) -> dict[str, Any]:
    item: dict[str, Any] = aws.dynamodb.client.get_item(
        TableName=aws.dynamodb.table, Key={"message_id": {"S": message_id}}
    )["Item"]
    return item


def receive_all(aws: Aws) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = aws.sqs.client.receive_message(
            QueueUrl=aws.sqs.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages += batch


# ---- the happy path -------------------------------------------------------------------------------


def test_happy_path_is_three_aws_requests_and_the_message_is_whole(local: tuple[Config, Aws]) -> None:
    _, aws = local
    sent: list[str] = []
    for client in (aws.dynamodb.client, aws.sqs.client):
        client.meta.events.register("before-send", lambda model=None, **kw: sent.append(kw["request"].url))
    answer = submit(aws, {"order": 7, "note": "é"}, {"group": "g1", "kind": "x"})
    assert answer.result is Result.SENT and answer.http_status == 202
    assert len(sent) == 3
    stored = stored_of(aws, answer.message_id)
    assert stored is not None and stored.record.phase is Phase.CONFIRMED
    assert history_problems(stored.record, stored.history) == []
    item = raw_item(aws, answer.message_id)
    assert ATTENTION not in item and ATTENTION_AT not in item  # confirmed: out of the sparse index
    (message,) = receive_all(aws)
    assert message["Body"] == '{"order":7,"note":"é"}'
    assert message["MessageAttributes"]["message_id"]["StringValue"] == answer.message_id
    assert message["MessageAttributes"]["group"]["StringValue"] == "g1"
    assert message["MessageId"] == stored.record.sqs_message_id


def test_fifo_queue_uses_group_and_deduplication_id(aws_env: None) -> None:
    with mock_aws():
        _, aws = build(fifo=True)
        assert aws.sqs.queue_url.endswith(".fifo")
        answer = submit(aws, {"n": 1}, {"group": "orders"})
        assert answer.result is Result.SENT
        (message,) = aws.sqs.client.receive_message(
            QueueUrl=aws.sqs.queue_url, AttributeNames=["All"], MaxNumberOfMessages=10
        )["Messages"]
        assert message["Attributes"]["MessageGroupId"] == "orders"
        assert message["Attributes"]["MessageDeduplicationId"] == answer.message_id


# ---- conditional writes, fencing, metadata --------------------------------------------------------


def perform_write(aws: Aws, write: Write) -> Any:
    outcome, _ = aws.store.perform(write, now_ms() + INVOCATION_MS)
    return outcome


def test_rollback_keeps_the_message_byte_for_byte(local: tuple[Config, Aws]) -> None:
    _, table = local
    payload = {"text": "zażółć \u2028 ✓", "n": [1, 2.5, None]}
    timing_out = _FailingSqs(table.sqs.client, ReadTimeoutError(endpoint_url="x"))
    aws = Aws(table.dynamodb, SqsQueue(timing_out, table.sqs.queue_url))  # its sends time out
    answer = submit(aws, payload, {"group": "g", "a": "b"}, key="k-rollback")
    assert answer.result is Result.FAILED and answer.failure.category is ErrorCategory.AMBIGUOUS  # type: ignore[union-attr]
    item = raw_item(aws, answer.message_id)
    stored = stored_from_item(item)
    assert stored.record.phase is Phase.PENDING
    created = message_attributes(stored.history[0].message, TableLayout())  # type: ignore[attr-defined]
    assert set(created) == {"payload", MESSAGE}  # the message's fields, packed into one
    for name, value in created.items():
        if value is not None:
            assert item[name] == TypeSerializer().serialize(value), name
    assert item["payload"]["S"] == json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


class _FailingSqs:
    """An SQS client whose SendMessage raises `error` (a botocore exception) and otherwise delegates."""

    def __init__(self, client: Any, error: Exception) -> None:
        self._client, self._error = client, error

    def send_message(self, **_: Any) -> Any:
        raise self._error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_fencing_refuses_a_stale_attempt(local: tuple[Config, Aws]) -> None:
    _, aws = local
    now = now_ms()
    request = parse_submission('{"payload": 1}')
    message = new_message(request, "m-fence", "c", now)  # type: ignore[arg-type]
    flow = start_submit(message, "a-1", now + 1, now, SETTINGS)
    assert perform_write(aws, flow.effect) == Written()  # type: ignore[arg-type]
    claimed = advance(flow, Written(), now)
    stale_record = claimed.record
    assert stale_record is not None
    expire = start_expire(stale_record, now + 1)
    assert perform_write(aws, expire.effect) == Written()  # type: ignore[arg-type]
    # attempt a-1 comes back and tries to confirm: its condition names an attempt that no longer owns it
    from statemodel.flows import Sent

    confirm = advance(claimed, Sent("sqs-late"), now + 2)
    before = raw_item(aws, "m-fence")
    outcome = perform_write(aws, confirm.effect)  # type: ignore[arg-type]
    assert isinstance(outcome, ConditionFailed) and outcome.current is not None
    assert outcome.current.phase is Phase.PENDING
    assert raw_item(aws, "m-fence") == before
    assert advance(confirm, outcome, now + 2).answer.unconfirmed


def test_every_transition_is_one_conditional_write_and_replays(local: tuple[Config, Aws]) -> None:
    config, aws = local
    answers = [
        submit(aws),  # ABSENT -> IN_FLIGHT -> CONFIRMED
    ]
    aws_failing = Aws(
        aws.dynamodb, SqsQueue(_FailingSqs(aws.sqs.client, ConnectTimeoutError(endpoint_url="x")), "u")
    )
    answers.append(submit(aws_failing))  # IN_FLIGHT -> PENDING (retryable)
    aws_denied = Aws(
        aws.dynamodb, SqsQueue(_FailingSqs(aws.sqs.client, _client_error("AccessDenied", 403)), "u")
    )
    answers.append(submit(aws_denied))  # IN_FLIGHT -> EXHAUSTED (permanent)
    later = now_ms() + SETTINGS.redrive_after_ms
    summary = reconcile_pass(aws, config, later + INVOCATION_MS, clock=lambda: later)
    assert summary.redriven == 1  # PENDING -> IN_FLIGHT -> CONFIRMED
    phases = sorted(stored_of(aws, a.message_id).record.phase.value for a in answers)  # type: ignore[union-attr]
    assert phases == ["CONFIRMED", "CONFIRMED", "EXHAUSTED"]
    for _, stored in aws.dynamodb.scan():
        assert not isinstance(stored, Exception)
        assert history_problems(stored.record, stored.history) == []


def _client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SendMessage",
    )


# ---- classification, end to end ------------------------------------------------------------------

SQS_ERRORS = [
    ("RequestThrottled", "RequestThrottled", 403, ErrorCategory.RETRYABLE),
    ("KMS.ThrottlingException", "KmsThrottled", 400, ErrorCategory.RETRYABLE),
    ("KMS.DisabledException", "KmsDisabled", 400, ErrorCategory.PERMANENT),
    ("KMS.NotFoundException", "KmsNotFound", 400, ErrorCategory.PERMANENT),
    ("KMS.AccessDeniedException", "KmsAccessDenied", 400, ErrorCategory.PERMANENT),
    ("KMS.InvalidStateException", "KmsInvalidState", 400, ErrorCategory.PERMANENT),
    ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", 400, ErrorCategory.PERMANENT),
    ("AWS.SimpleQueueService.UnsupportedOperation", "UnsupportedOperation", 400, ErrorCategory.PERMANENT),
    ("InvalidMessageContents", "InvalidMessageContents", 400, ErrorCategory.PERMANENT),
    ("InvalidSecurity", "InvalidSecurity", 403, ErrorCategory.PERMANENT),
    ("AccessDenied", "AccessDenied", 403, ErrorCategory.PERMANENT),
    ("InternalError", "InternalError", 500, ErrorCategory.AMBIGUOUS),
    ("ServiceUnavailable", "ServiceUnavailable", 503, ErrorCategory.AMBIGUOUS),
]


@pytest.mark.parametrize(
    ("code", "query_code", "status", "category"), SQS_ERRORS, ids=[e[0] for e in SQS_ERRORS]
)
def test_sqs_error_answers_over_http(
    remote: tuple[Config, Aws],
    server: FaultyMotoServer,
    code: str,
    query_code: str,
    status: int,
    category: ErrorCategory,
) -> None:
    _, aws = remote
    server.faults.rules.append(sqs_error(code, query_code, status, times=5))
    answer = submit(aws)
    assert answer.result is Result.FAILED
    assert answer.failure is not None and answer.failure.category is category, answer.failure
    assert answer.failure.code == code
    stored = stored_of(aws, answer.message_id)
    assert (
        stored is not None and stored.record.status.value == "PENDING"
    )  # rolled back, whatever the category
    expected_phase = Phase.EXHAUSTED if category is ErrorCategory.PERMANENT else Phase.PENDING
    assert stored.record.phase is expected_phase


def test_throttling_after_the_sdk_gave_up(
    remote: tuple[Config, Aws], server: FaultyMotoServer, capsys: Any
) -> None:
    _, aws = remote
    server.faults.rules.append(sqs_error("RequestThrottled", "RequestThrottled", times=2))
    _, call = aws.queue.perform(_a_send(aws), now_ms() + INVOCATION_MS)
    assert call.error is not None and call.error.max_attempts_reached and call.error.throttling
    assert call.attempts == 2 and call.error.category is ErrorCategory.RETRYABLE
    assert server.faults.requests.count("SendMessage") == 2


def _a_send(aws: Aws) -> Any:
    from statemodel.flows import Send

    request = parse_submission('{"payload": 1}')
    return Send(new_message(request, str(uuid.uuid4()), "c", now_ms()), "a-1", now_ms() + INVOCATION_MS)  # type: ignore[arg-type]


DYNAMODB_ERRORS = [
    ("ProvisionedThroughputExceededException", 400, ErrorCategory.RETRYABLE),
    ("ThrottlingException", 400, ErrorCategory.RETRYABLE),
    ("RequestLimitExceeded", 400, ErrorCategory.RETRYABLE),
    ("TransactionConflictException", 400, ErrorCategory.RETRYABLE),
    ("InternalServerError", 500, ErrorCategory.AMBIGUOUS),
    ("ResourceNotFoundException", 400, ErrorCategory.PERMANENT),
]


@pytest.mark.parametrize(("code", "status", "category"), DYNAMODB_ERRORS, ids=[e[0] for e in DYNAMODB_ERRORS])
def test_dynamodb_error_answers_over_http(
    remote: tuple[Config, Aws], server: FaultyMotoServer, code: str, status: int, category: ErrorCategory
) -> None:
    _, aws = remote
    server.faults.rules.append(dynamodb_error(code, status, times=5))
    answer = submit(aws)
    assert answer.result is Result.FAILED and answer.failure is not None
    assert (answer.failure.category, answer.failure.code) == (category, code)
    assert stored_of(aws, answer.message_id) is None  # the create never landed


def test_the_aws_failure_line_carries_the_services_message_within_its_bound(
    remote: tuple[Config, Aws], server: FaultyMotoServer
) -> None:
    """A team trial: DynamoDB's words ("... reserved keyword: total") reached no log line, only the
    code did. The `aws_failure` line carries them (`error_message`), cut to MESSAGE_BOUND characters;
    the answer's failure stays the (category, code) it was."""
    _, aws = remote
    said = "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: total"
    body = {
        "__type": "com.amazonaws.dynamodb.v20120810#ValidationException",
        "message": f"{said} {'x' * 900}",
    }
    server.faults.rules.append(Rule("UpdateItem", "answer", times=5, status=400, body=body))
    with structlog.testing.capture_logs() as logs:
        answer = submit(aws)
    assert answer.failure == Failure(ErrorCategory.PERMANENT, "ValidationException")
    (line,) = [line for line in logs if line["event"] == "aws_failure"]
    assert (line["code"], line["operation"]) == ("ValidationException", "UpdateItem")
    assert line["error_message"].startswith(said)
    assert len(line["error_message"]) == MESSAGE_BOUND and line["error_message"].endswith("\u2026")


def _answer(code: str, message: str | None) -> ClientError:
    error = {"Code": code} if message is None else {"Code": code, "Message": message}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "UpdateItem")  # type: ignore[typeddict-item]


def test_an_errors_message_is_kept_whole_up_to_its_bound_and_cut_beyond() -> None:
    assert classify(_answer("ValidationException", "reserved keyword: total")).message == (
        "reserved keyword: total"
    )
    assert classify(_answer("ValidationException", "y" * MESSAGE_BOUND)).message == "y" * MESSAGE_BOUND
    cut = classify(_answer("ValidationException", "y" * (MESSAGE_BOUND + 1))).message
    assert cut == "y" * (MESSAGE_BOUND - 1) + "\u2026"
    assert classify(_answer("ValidationException", None)).message is None
    assert classify(_answer("ValidationException", "")).message is None
    timeout = ConnectTimeoutError(endpoint_url="https://dynamodb.example")
    assert classify(timeout).message == str(timeout) and "dynamodb.example" in str(timeout)
    said = {"Id": "0", "Code": "InvalidParameterValue", "SenderFault": True, "Message": "too long"}
    assert entry_failure(said).message == "too long"  # a SendMessageBatch entry's own words
    # The message is for the logs: the failure, and so the model's equality, never sees it.
    assert (
        classify(_answer("ValidationException", "a")).failure
        == classify(_answer("ValidationException", "b")).failure
    )


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (ConnectTimeoutError(endpoint_url="x"), ErrorCategory.RETRYABLE),
        (EndpointConnectionError(endpoint_url="x"), ErrorCategory.RETRYABLE),
        (ReadTimeoutError(endpoint_url="x"), ErrorCategory.AMBIGUOUS),
        (ConnectionClosedError(endpoint_url="x"), ErrorCategory.AMBIGUOUS),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_network_failures_are_retried_by_the_sdk_then_classified(
    local: tuple[Config, Aws], error: Exception, category: ErrorCategory
) -> None:
    _, aws = local
    attempts: list[int] = []

    def fail(**_: Any) -> None:
        attempts.append(1)
        raise error

    aws.sqs.client.meta.events.register_first("before-send.sqs.SendMessage", fail)
    answer = submit(aws)
    assert answer.failure is not None and answer.failure.category is category
    assert len(attempts) == 3  # botocore's standard mode retried it, total_max_attempts=3


def test_a_read_timeout_after_the_send_landed_is_ambiguous(
    remote: tuple[Config, Aws], server: FaultyMotoServer
) -> None:
    _, aws = remote
    server.faults.rules.append(Rule("SendMessage", "apply_then_stall", times=2, stall_s=STALL_S))
    answer = submit(aws)
    assert answer.failure is not None and answer.failure.category is ErrorCategory.AMBIGUOUS
    assert answer.failure.code == "ReadTimeoutError"
    assert len(receive_all(aws)) == 2  # both tries landed: the duplicate an ambiguous send allows
    assert stored_of(aws, answer.message_id).record.phase is Phase.PENDING  # type: ignore[union-attr]


def test_a_landed_write_whose_retry_fails_its_condition_counts_as_written(
    remote: tuple[Config, Aws], server: FaultyMotoServer
) -> None:
    _, aws = remote
    server.faults.rules.append(Rule("UpdateItem", "apply_then_stall", times=1, stall_s=STALL_S))
    answer = submit(aws)
    assert server.faults.requests.count("UpdateItem") == 3  # create, its retry, confirm
    assert answer.result is Result.SENT and not answer.unconfirmed
    stored = stored_of(aws, answer.message_id)
    assert stored is not None and stored.record.phase is Phase.CONFIRMED
    assert history_problems(stored.record, stored.history) == []  # no event written twice


# ---- the reconciler -------------------------------------------------------------------------------


def _in_flight(aws: Aws, lease_ms: int) -> str:
    """A record whose sender crashed after its claim: in flight under a lease of `lease_ms`."""
    now = now_ms()
    request = parse_submission('{"payload": {"x": 1}}')
    message = new_message(request, str(uuid.uuid4()), "c", now)  # type: ignore[arg-type]
    flow = start_submit(message, str(uuid.uuid4()), now + lease_ms, now, SETTINGS)
    assert perform_write(aws, flow.effect) == Written()  # type: ignore[arg-type]
    return message.message_id


def test_reconciler_rolls_back_expired_leases_only_then_redrives(local: tuple[Config, Aws]) -> None:
    config, aws = local
    expired, live = _in_flight(aws, 1_000), _in_flight(aws, 600_000)
    now = now_ms() + 5_000
    summary = reconcile_pass(aws, config, now + INVOCATION_MS, clock=lambda: now)
    assert (summary.expired, summary.overdue_in_flight, summary.redriven) == (1, 1, 0)
    assert stored_of(aws, expired).record.phase is Phase.PENDING  # type: ignore[union-attr]
    assert stored_of(aws, live).record.phase is Phase.IN_FLIGHT  # type: ignore[union-attr]
    later = now + SETTINGS.redrive_after_ms
    summary = reconcile_pass(aws, config, later + INVOCATION_MS, clock=lambda: later)
    assert summary.redriven == 1
    assert stored_of(aws, expired).record.phase is Phase.CONFIRMED  # type: ignore[union-attr]
    assert len(receive_all(aws)) == 1


def test_reconciler_exhausts_after_max_attempts_and_logs_an_error(
    local: tuple[Config, Aws], capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.runtime.logs import configure

    configure("INFO")
    config, aws = local
    failing = Aws(
        aws.dynamodb, SqsQueue(_FailingSqs(aws.sqs.client, ConnectTimeoutError(endpoint_url="x")), "u")
    )
    answer = submit(failing)
    now = now_ms()
    results = []
    for _ in range(SETTINGS.max_attempts + 2):
        now += SETTINGS.redrive_after_ms
        results.append(reconcile_pass(failing, config, now + INVOCATION_MS, clock=lambda n=now: n))
    record = stored_of(aws, answer.message_id).record  # type: ignore[union-attr]
    assert record.phase is Phase.EXHAUSTED and record.attempts == SETTINGS.max_attempts
    assert [r.exhausted for r in results].count(1) == 1
    assert sum(r.failed for r in results) == SETTINGS.max_attempts - 1
    assert results[-1].records_read == 0  # exhausted: out of the reconciler's partitions, never looped on
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (exhausted,) = [line for line in lines if line["event"] == "redrive_exhausted"]
    assert exhausted["level"] == "error" and exhausted["message_id"] == answer.message_id


def test_reconciler_reads_do_not_grow_with_confirmed_records(local: tuple[Config, Aws]) -> None:
    config, aws = local
    for _ in range(2):
        _in_flight(aws, 1)
    reads = []
    for confirmed in (10, 90):  # 10, then 100 confirmed records
        for _ in range(confirmed):
            assert submit(aws).result is Result.SENT
        consumed: list[int] = []

        def counting(parsed: Any, consumed: list[int] = consumed, **_: Any) -> None:
            consumed.append(len(parsed.get("Items", [])))  # each Query's page, as botocore parsed it

        events = aws.dynamodb.client.meta.events
        events.register("after-call.dynamodb.Query", counting)
        now = now_ms() + 1_000
        summary = reconcile_pass(aws, config, now + INVOCATION_MS, clock=lambda n=now: n)
        events.unregister("after-call.dynamodb.Query", counting)
        reads.append((summary.queries, sum(consumed)))
        _in_flight(aws, 1)  # the pass mended both; put the same in-flight set back
        _in_flight(aws, 1)
    assert reads[0] == reads[1], reads
    assert reads[0][1] == 2  # the two expired claims (the rolled-back ones wait redrive_after)


# ---- limits, provisioning, audit ------------------------------------------------------------------


def test_a_record_at_the_size_limit_survives_max_attempts(local: tuple[Config, Aws]) -> None:
    config, aws = local
    big = "x" * (MAX_MESSAGE_BYTES - 2 - 64)
    attributes = {f"a{i}": "v" * 3 for i in range(9)}
    request = parse_submission(json.dumps({"payload": big, "attributes": attributes}))
    assert not hasattr(request, "code")
    settings = Settings(max_attempts=MAX_ATTEMPTS_LIMIT, redrive_after_ms=1, lease_margin_ms=1)
    config = Config(config.table, config.queue_url, settings)
    failing = Aws(
        aws.dynamodb, SqsQueue(_FailingSqs(aws.sqs.client, ConnectTimeoutError(endpoint_url="x")), "u")
    )
    now = now_ms()
    message = new_message(request, str(uuid.uuid4()), "c" * 128, now, "k" * 128)  # type: ignore[arg-type]
    flow = start_submit(message, str(uuid.uuid4()), now + INVOCATION_MS, now, settings)
    assert run_flow(flow, failing, now + INVOCATION_MS).result is Result.FAILED
    for step in range(1, MAX_ATTEMPTS_LIMIT + 1):
        t = now_ms() + step * 1_000  # each pass a second on from the last, and ahead of the real clock
        reconcile_pass(failing, config, t + INVOCATION_MS, clock=lambda t=t: t)
    stored = stored_of(aws, message.message_id)
    assert stored is not None and stored.record.phase is Phase.EXHAUSTED
    assert stored.record.attempts == MAX_ATTEMPTS_LIMIT  # every write fit in the item


def test_provisioning_is_idempotent(aws_env: None) -> None:
    with mock_aws():
        first = ensure_resources("t-prov", "q-prov")
        assert ensure_resources("t-prov", "q-prov") == first
        table = make_client("dynamodb", 1).describe_table(TableName="t-prov")["Table"]
        (index,) = table["GlobalSecondaryIndexes"]
        assert index["IndexName"] == "attention" and index["Projection"]["ProjectionType"] == "KEYS_ONLY"


def test_audit_finds_orphans_tampering_and_exhausted(local: tuple[Config, Aws], capsys: Any) -> None:
    config, aws = local
    submit(aws)
    report = audit_module.audit(aws.dynamodb, now_ms(), 0)
    assert report.ok and report.records == 1
    orphan = _in_flight(aws, 1)
    tampered = submit(aws, {"amount": 10}).message_id
    aws.dynamodb.client.update_item(
        TableName=config.table,
        Key={"message_id": {"S": tampered}},
        UpdateExpression="SET payload = :p",
        ExpressionAttributeValues={":p": {"S": '{"amount":1000}'}},
    )
    report = audit_module.audit(aws.dynamodb, now_ms() + 10, 0)
    assert [o["message_id"] for o in report.orphans] == [orphan]
    assert any(tampered in v and "differ" in v for v in report.violations)
    assert not report.ok
    assert audit_command.main(["--table", config.table, "--grace-seconds", "0", "--json"]) == 1
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert printed["ok"] is False and printed["records"] == 3


def test_the_command_line_provisions_and_reconciles_over_http(
    aws_env: None,
    server: FaultyMotoServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from adapters.cli.main import main as cli

    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    assert cli(["provision", "--table", "cli-table", "--queue", "cli-queue"]) == 0
    queue_url = capsys.readouterr().out.strip()
    assert queue_url.endswith("/cli-queue")
    assert cli(["reconcile", "--table", "cli-table", "--queue-url", queue_url, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["queries"] == 8 and summary["records_read"] == 0
    assert cli(["audit", "--table", "cli-table"]) == 0
    assert cli(["no-such-command"]) == 2


def test_a_failed_index_query_skips_its_partition_not_the_pass(local: tuple[Config, Aws]) -> None:
    config, aws = local
    records = [_in_flight(aws, 1) for _ in range(6)]
    calls: list[int] = []

    def first_partition_fails(request: Any, **_: Any) -> None:
        if b'"INFLIGHT#0"' in request.body:  # every attempt of that partition's query, wherever it comes
            calls.append(1)
            raise EndpointConnectionError(endpoint_url="x")

    aws.dynamodb.client.meta.events.register_first("before-send.dynamodb.Query", first_partition_fails)
    now = now_ms() + 1_000
    summary = reconcile_pass(aws, config, now + INVOCATION_MS, clock=lambda: now)
    assert summary.failed_queries == 1 and summary.queries == 7 and len(calls) == 3  # total_max_attempts
    from statemodel.attention import attention_key

    in_first_partition = {
        m
        for m in records
        if attention_key(stored_of(aws, m).record)[0] == "INFLIGHT#0"  # type: ignore[union-attr, index]
    }
    rolled_back = {m for m in records if stored_of(aws, m).record.phase is Phase.PENDING}  # type: ignore[union-attr]
    assert rolled_back == set(records) - in_first_partition and summary.expired == len(rolled_back)


@pytest.mark.parametrize("payload", [{"n": 1}, {"note": "b" * 3_000}], ids=["inline", "body-item"])
def test_a_create_writes_the_very_item_it_measured(aws_env: None, payload: Any) -> None:
    """The created item is built once (`created_item`), measured for its body's placement, and
    written as it is (`create_request`): the team's own attributes, the body in it or named where
    it was placed."""
    with mock_aws():
        ensure_resources("made-once", "made-once")
        table = "made-once"
        store = DynamoStore(make_client("dynamodb", 1), table)
        request = parse_submission(json.dumps({"payload": payload, "attributes": {"kind": "x"}}))
        message = new_message(request, str(uuid.uuid4()), "corr", now_ms(), None)  # type: ignore[arg-type]
        flow = start_submit(message, "attempt-1", now_ms() + 40_000, now_ms(), Settings())
        create = flow.effect
        assert isinstance(create, Write)
        team = {"total": {"N": "3"}, "note": {"S": "é"}}
        assert store.with_item(team).perform(create, None)[0] == Written()
        raw = store.client.get_item(TableName=table, Key=store.layout.key(message.record_key))["Item"]
    at = body_at(raw)
    assert (at is None) == (payload == {"n": 1})
    assert raw == store.apart(created_item(create, store.layout, team), at)
