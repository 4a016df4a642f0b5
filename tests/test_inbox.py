"""The consumer's library API (`adapters.Inbox`) on moto: both modes, duplicates, a concurrent delivery
(simulated deterministically: the handler delivers the same message again while it runs), a stale
invocation, receive counting to FAILED, the effect's own condition, FIFO groups in a batch, keys by
attribute or body field, the operator's list and re-arm, and sendguard's outbox feeding it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import structlog
import time_machine

from adapters import (
    ConfigError,
    Inbox,
    InboxRearmOutcome,
    InboxRearmResult,
    InvalidRearm,
    Outbox,
    ProcessOutcome,
    ProcessResult,
    TableLayout,
)
from adapters.cli import inbox_failed
from adapters.ops.provision import ensure_resources
from adapters.runtime.classify import MESSAGE_BOUND
from adapters.runtime.inbox import Delivery, InboxError, InboxLayoutMismatch
from adapters.runtime.inbox_codec import stored_from_item
from adapters.testing.inbox_events import from_received, sqs_event, sqs_record
from statemodel.inbox.flows import InboxResult
from statemodel.inbox.invariants import history_problems
from statemodel.inbox.records import InboxPhase
from tests.import_graph import import_graph, project_modules
from tests.test_outbox_table import Answered

LAYOUT = TableLayout(partition_key="pk", sort_key="sk")


@pytest.fixture
def table(sendguard_aws: None) -> str:
    ensure_resources("ledger", "events", layout=LAYOUT)
    return "ledger"


def credit(delivery: Delivery, amount: int = 10) -> list[dict[str, Any]]:
    """A transactional handler: adds `amount` to the account named in the body."""
    account = delivery.json()["account"]
    return [
        {
            "Update": {
                "TableName": "ledger",
                "Key": {"pk": {"S": f"account#{account}"}, "sk": {"S": "balance"}},
                "UpdateExpression": "ADD balance :a",
                "ExpressionAttributeValues": {":a": {"N": str(amount)}},
            }
        }
    ]


def balance(account: str = "acme") -> int:
    item = (
        boto3.client("dynamodb")
        .get_item(
            TableName="ledger",
            Key={"pk": {"S": f"account#{account}"}, "sk": {"S": "balance"}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return int(item["balance"]["N"]) if item else 0


def inbox_item(key: str, inbox: Inbox) -> dict[str, Any]:
    item: dict[str, Any] = boto3.client("dynamodb").get_item(
        TableName="ledger", Key=inbox.store.key(key), ConsistentRead=True
    )["Item"]
    return item


def record(key: str = "m-1", body: str = '{"account": "acme"}', **kwargs: Any) -> dict[str, Any]:
    return sqs_record(body, key=key, **kwargs)


def counting(handler: Callable[[Delivery], Any]) -> tuple[list[Delivery], Callable[[Delivery], Any]]:
    calls: list[Delivery] = []

    def wrapped(delivery: Delivery) -> Any:
        calls.append(delivery)
        return handler(delivery)

    return calls, wrapped


# ---- transactional -------------------------------------------------------------------------------


def test_transactional_applies_the_effect_once_and_answers_duplicates_without_running(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT)
    calls, handler = counting(credit)
    assert inbox.handle_batch(sqs_event(record()), handler) == {"batchItemFailures": []}
    again = inbox.process_batch(sqs_event(record(), record()), handler)
    assert [r.outcome for r in again.results] == ["duplicate", "duplicate"] and again.response[
        "batchItemFailures"
    ] == []
    assert balance() == 10 and len(calls) == 1
    stored = stored_from_item(inbox_item("m-1", inbox))
    assert stored.record.phase is InboxPhase.DONE and history_problems(stored.record, stored.history) == []
    view = inbox.get("m-1")
    assert view is not None and (view.status, view.receives) == ("DONE", 0)


def test_transactional_a_concurrent_delivery_cannot_apply_the_effect_twice(table: str) -> None:
    """The handler of the first delivery runs the second delivery of the same message to its end
    before it returns (a visibility timeout ran out mid-work): the second commits, the first's
    transaction is cancelled, its effect with it."""
    inbox = Inbox(table, layout=LAYOUT)
    inner: list[str] = []

    def slow(delivery: Delivery) -> list[dict[str, Any]]:
        if not inner:
            inner.append(inbox.process(record(), credit).outcome)
        return credit(delivery)

    outer = inbox.process(record(), slow)
    assert inner == ["done"]
    assert outer.outcome == "duplicate" and outer.ok and outer.ran
    assert balance() == 10


def test_transactional_failures_count_receives_until_failed_then_the_operator_rearms(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT, max_receives=2)

    def broken(delivery: Delivery) -> list[dict[str, Any]]:
        raise RuntimeError("the ledger rejects it")

    first = inbox.handle_batch(sqs_event(record(sqs_message_id="s-1")), broken)
    assert first == {"batchItemFailures": [{"itemIdentifier": "s-1"}]}
    results = [inbox.process(record(), broken) for _ in range(2)]
    assert [(r.outcome, r.ran, r.receives) for r in results] == [
        ("given_up", True, 2),
        ("given_up", False, 2),
    ]
    failed = list(inbox.failed())
    assert [(v.key, v.status, v.last_error) for v in failed] == [("m-1", "FAILED", "retryable:RuntimeError")]
    with pytest.raises(InvalidRearm):
        inbox.rearm("m-1", "")
    rearmed = inbox.rearm("m-1", "fixed the ledger", by="ops")
    assert rearmed.outcome is InboxRearmOutcome.REARMED and rearmed.receives_before == 2
    assert inbox.rearm("m-1", "again").outcome is InboxRearmOutcome.NOT_FAILED
    assert inbox.rearm("nope", "missing").outcome == "not_found"  # string-valued
    assert inbox.process(record(), credit).outcome == "done" and balance() == 10
    assert list(inbox.failed()) == []


def test_the_effects_own_condition_counts_a_failed_receive(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT)

    def overdraw(delivery: Delivery) -> list[dict[str, Any]]:
        entries = credit(delivery, -50)
        entries[0]["Update"]["ConditionExpression"] = "balance >= :min"
        entries[0]["Update"]["ExpressionAttributeValues"][":min"] = {"N": "50"}
        return entries

    result = inbox.process(record(), overdraw)
    assert (result.outcome, result.error_code, result.receives) == ("retry", "EffectConditionFailed", 1)
    assert balance() == 0


@pytest.mark.parametrize(
    ("mistake", "code"),
    [
        ({"ExpressionAttributeValues": {":amount": {"N": "10"}}}, "ValidationException"),  # `:a` undefined
        ({"TableName": "legder"}, "ResourceNotFoundException"),
    ],
)
def test_an_effect_dynamodb_refuses_as_a_whole_counts_failed_receives_until_failed(
    table: str, mistake: dict[str, Any], code: str
) -> None:
    """A malformed entry or a table that does not exist: DynamoDB refuses the whole TransactWriteItems
    request, not one entry, so every delivery fails alike; each counts a receive, and the message ends
    FAILED with the code, for the operator's list (before the issue-24 team trial, nothing was recorded:
    the message went to the DLQ unseen by `inbox-failed`)."""
    inbox = Inbox(table, layout=LAYOUT, max_receives=2)

    def mistaken(delivery: Delivery) -> list[dict[str, Any]]:
        entries = credit(delivery)
        entries[0]["Update"].update(mistake)
        return entries

    results = [inbox.process(record(), mistaken) for _ in range(3)]
    assert [(r.outcome, r.error_code, r.receives) for r in results] == [
        ("retry", code, 1),
        ("given_up", code, 2),
        ("given_up", None, 2),
    ]
    assert [(v.key, v.last_error) for v in inbox.failed()] == [("m-1", f"permanent:{code}")]
    assert balance() == 0


def test_an_effect_dynamodb_refuses_logs_dynamodbs_own_words(table: str) -> None:
    """The team trial's case: an effect named `total`, a reserved word. The result and the record keep
    the code (`ValidationException`); the `aws_failure` line says what to fix."""
    inbox = Inbox(table, layout=LAYOUT)

    def totals(delivery: Delivery) -> list[dict[str, Any]]:
        entries = credit(delivery)
        entries[0]["Update"]["UpdateExpression"] = "SET total = :a"
        return entries

    with structlog.testing.capture_logs() as logs:
        result = inbox.process(record(), totals)
    assert (result.outcome, result.error_code) == ("retry", "ValidationException")
    (line,) = [line for line in logs if line["event"] == "aws_failure"]
    assert (line["code"], line["operation"]) == ("ValidationException", "TransactWriteItems")
    assert "reserved keyword: total" in line["error_message"]
    assert len(line["error_message"]) <= MESSAGE_BOUND
    found = inbox.get("m-1")  # and the record keeps DynamoDB's words beside the code
    assert found is not None and found.last_error == "permanent:ValidationException"
    assert found.last_error_message == line["error_message"]


def test_an_invalid_effect_is_a_failed_receive(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT)
    result = inbox.process(record(), lambda d: [{"Put": {}}, {"Scan": {}}])
    assert (result.outcome, result.error_code) == ("retry", "InvalidEffect")
    assert inbox.process(record("m-2"), lambda d: "not a list").error_code == "InvalidEffect"


# ---- guarded -------------------------------------------------------------------------------------


def test_guarded_runs_once_and_answers_the_stored_result_to_duplicates(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT, mode="guarded")
    calls, handler = counting(lambda d: {"charged": d.idempotency_key})
    first = inbox.process(record(), handler)
    assert (first.outcome, first.result) == ("done", {"charged": "m-1"})
    duplicate = inbox.process(record(), handler)
    assert (duplicate.outcome, duplicate.ok, duplicate.ran, duplicate.result) == (
        "duplicate",
        True,
        False,
        {"charged": "m-1"},
    )
    assert len(calls) == 1 and calls[0].idempotency_key == "m-1" and calls[0].receive_count == 1


def test_guarded_a_concurrent_delivery_is_busy_and_runs_nothing(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT, mode="guarded")
    inner: list[Any] = []

    def charge(delivery: Delivery) -> str:
        if not inner:
            inner.append(inbox.process(record(), charge))
        return "charged"

    assert inbox.process(record(), charge).outcome == "done"
    assert [(r.outcome, r.ok, r.ran) for r in inner] == [("busy", False, False)]


def test_guarded_a_claim_taken_over_completes_nothing(table: str) -> None:
    """A redelivery on a host whose clock runs 10 s ahead finds the first claim's lease expired and
    takes it over while the first invocation still runs (what the lease margin is there to make
    impossible); the first's completion is then refused by its fence (LOST), and the result kept
    is the second's."""
    inbox = Inbox(table, layout=LAYOUT, mode="guarded", lease_margin_seconds=1)
    later: list[Any] = []
    with time_machine.travel(1_700_000_000, tick=False) as clock:

        def slow(delivery: Delivery) -> str:
            if not later:
                clock.shift(10)
                later.append(inbox.process(record(), lambda d: "second", deadline_ms=_ms() + 1_000))
                clock.shift(-10)
            return "first"

        stale = inbox.process(record(), slow, deadline_ms=_ms() + 1_000)
    assert [(r.outcome, r.result) for r in later] == [("done", "second")]
    assert (stale.outcome, stale.ok, stale.ran) == ("lost", False, True)
    stored = stored_from_item(inbox_item("m-1", inbox))
    assert (stored.record.result, stored.record.receives) == ('"second"', 2)
    assert history_problems(stored.record, stored.history) == []


def test_guarded_an_invocation_past_its_end_writes_nothing_more(table: str) -> None:
    """The first invocation's handler overruns the invocation's end: its completion is not sent (the
    deadline guard), the redelivery after its lease takes over and completes."""
    inbox = Inbox(table, layout=LAYOUT, mode="guarded", lease_margin_seconds=1)
    later: list[Any] = []
    with time_machine.travel(1_700_000_000, tick=False) as clock:

        def slow(delivery: Delivery) -> str:
            if not later:
                clock.shift(10)
                later.append(inbox.process(record(), lambda d: "second", deadline_ms=_ms() + 1_000))
            return "first"

        stale = inbox.process(record(), slow, deadline_ms=_ms() + 1_000)
    assert [r.outcome for r in later] == ["done"]
    assert (stale.outcome, stale.error_code) == ("retry", "DeadlineExceeded")
    stored = stored_from_item(inbox_item("m-1", inbox))
    assert stored.record.result == '"second"' and history_problems(stored.record, stored.history) == []


def test_guarded_a_failing_handler_releases_until_failed(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT, mode="guarded", max_receives=2)

    def broken(delivery: Delivery) -> str:
        raise TimeoutError("the payment service")

    assert [inbox.process(record(), broken).outcome for _ in range(3)] == ["retry", "given_up", "given_up"]
    assert [v.last_error for v in inbox.failed()] == ["retryable:TimeoutError"]


def test_a_failing_handlers_message_is_logged_within_its_bound(table: str) -> None:
    """`inbox-failed` says `retryable:RuntimeError` (the documented "category:code"); what the handler
    said is on its `inbox_handler_failed` line, cut to MESSAGE_BOUND characters."""
    inbox = Inbox(table, layout=LAYOUT, mode="guarded")
    said = ["schema changed", "z" * (MESSAGE_BOUND + 50)]

    def broken(delivery: Delivery) -> str:
        raise RuntimeError(said[delivery.receive_count - 1])

    with structlog.testing.capture_logs() as logs:
        results = [inbox.process(record(receive_count=n), broken) for n in (1, 2)]
    assert [r.error_code for r in results] == ["RuntimeError", "RuntimeError"]
    lines = [line for line in logs if line["event"] == "inbox_handler_failed"]
    assert [(line["code"], line["message_id"]) for line in lines] == [("RuntimeError", "m-1")] * 2
    assert lines[0]["error_message"] == "schema changed"
    assert lines[1]["error_message"] == "z" * (MESSAGE_BOUND - 1) + "\u2026"
    found = inbox.get("m-1")  # the record keeps the last failure's words, not the first's
    assert found is not None and found.last_error_message == lines[1]["error_message"]


# ---- the batch -----------------------------------------------------------------------------------


def test_fifo_a_failure_fails_the_rest_of_its_group_in_the_batch(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT)
    calls: list[str] = []

    def apply(delivery: Delivery) -> list[dict[str, Any]]:
        calls.append(delivery.key)
        if delivery.key == "a-1":
            raise ValueError("poison")
        return credit(delivery)

    event = sqs_event(
        record("a-1", group_id="A", sqs_message_id="s-a1"),
        record("b-1", group_id="B", sqs_message_id="s-b1"),
        record("a-2", group_id="A", sqs_message_id="s-a2"),
        record("b-2", group_id="B", sqs_message_id="s-b2"),
    )
    batch = inbox.process_batch(event, apply)
    assert [(r.sqs_message_id, r.outcome) for r in batch.results] == [
        ("s-a1", "retry"),
        ("s-b1", "done"),
        ("s-a2", "not_started"),
        ("s-b2", "done"),
    ]
    assert batch.results[2].outcome is ProcessOutcome.NOT_STARTED
    assert batch.response == {"batchItemFailures": [{"itemIdentifier": "s-a1"}, {"itemIdentifier": "s-a2"}]}
    assert calls == ["a-1", "b-1", "b-2"] and balance() == 20


def test_no_message_is_started_without_time_left(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT)
    calls, handler = counting(credit)
    batch = inbox.process_batch(sqs_event(record(sqs_message_id="s-1")), handler, deadline_ms=_ms() + 500)
    assert batch.response == {"batchItemFailures": [{"itemIdentifier": "s-1"}]} and calls == []


def test_a_message_without_its_key_is_not_processed(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT)
    calls, handler = counting(credit)
    event = sqs_event(sqs_record('{"account": "acme"}', sqs_message_id="s-1"))
    assert inbox.handle_batch(event, handler) == {"batchItemFailures": [{"itemIdentifier": "s-1"}]}
    assert calls == []


def test_a_key_from_a_body_field(table: str) -> None:
    inbox = Inbox(table, layout=LAYOUT, key_attribute=None, key_field="order.id")
    body = json.dumps({"account": "acme", "order": {"id": 4711}})
    assert inbox.process(sqs_record(body), credit).key == "4711"
    assert inbox.process(sqs_record(body), credit).outcome == "duplicate"
    assert inbox.key_of(sqs_record("not json")) is None
    with pytest.raises(ValueError, match="one of key_attribute and key_field"):
        Inbox(table, key_attribute=None)


def test_the_team_rows_and_outbox_records_are_apart_from_the_inbox(table: str) -> None:
    """An inbox record's key is the prefix and the message's key (and the layout's sort value)."""
    inbox = Inbox(table, layout=LAYOUT)
    inbox.process(record("acme"), credit)
    assert set(inbox.store.key("acme")) == {"pk", "sk"}
    assert inbox.store.key("acme") == {"pk": {"S": "inbox#acme"}, "sk": {"S": "sendguard"}}
    items = boto3.client("dynamodb").scan(TableName="ledger")["Items"]
    assert sorted(i["pk"]["S"] for i in items) == ["account#acme", "inbox#acme"]


def test_failed_messages_are_found_by_a_scan_on_a_table_without_the_index(sendguard_aws: None) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="plain",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    inbox = Inbox("plain", layout=TableLayout(partition_key="id"), max_receives=1)
    inbox.process(record(), lambda d: 1 / 0)
    assert [(v.key, v.last_error) for v in inbox.failed()] == [("m-1", "retryable:ZeroDivisionError")]


def test_messages_from_sendguards_outbox_are_keyed_by_their_message_id(table: str) -> None:
    queue_url = ensure_resources("orders", "order-events")
    outbox = Outbox("orders", queue_url)
    assert outbox.send("order-1", '{"account": "acme"}').accepted
    sqs = boto3.client("sqs")
    received = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"], MessageAttributeNames=["All"])
    (message,) = received["Messages"]
    inbox = Inbox(table, layout=LAYOUT)
    results = [inbox.process(from_received(message), credit) for _ in range(2)]
    assert [(r.key, r.outcome) for r in results] == [("order-1", "done"), ("order-1", "duplicate")]
    assert balance() == 10


def test_the_lambda_handler_answers_the_partial_batch_response(table: str) -> None:
    function = Inbox(table, layout=LAYOUT).lambda_handler(credit)
    assert function(sqs_event(record()), None) == {"batchItemFailures": []}


# ---- a layout that does not fit the table --------------------------------------------------------

LEDGER_MISMATCH = (
    "table ledger has partition key 'pk' (S) and sort key 'sk' (S); the layout says partition key "
    "'message_id' and no sort key: set partition_key='pk' and sort_key='sk' in the TableLayout"
)


@pytest.mark.parametrize("mode", ["transactional", "guarded"])
def test_a_layout_that_does_not_fit_fails_the_batch_with_a_config_error_naming_what_to_set(
    table: str, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """DynamoDB refuses the record's key (a ValidationException): not a `retry` of every message
    until the DLQ, but a ConfigError naming the table, its key, the layout's and what to set, raised
    from the batch (the invocation fails, the function's errors alarm); nothing runs or is written,
    and DescribeTable is asked once per Inbox, not once per message."""
    answered = Answered()
    inbox = Inbox(table, mode=mode, session=answered.session)  # the default layout: message_id alone
    calls, handler = counting(credit)
    for batch in (sqs_event(record("m-1"), record("m-2")), sqs_event(record("m-3"))):
        with pytest.raises(ConfigError) as raised:
            inbox.lambda_handler(handler)(batch, None)
        error = raised.value
        assert isinstance(error, InboxLayoutMismatch) and isinstance(error, InboxError)
        assert str(error) == LEDGER_MISMATCH
        assert (error.category, error.code) == ("permanent", "ValidationException")
    assert calls == [] and boto3.client("dynamodb").scan(TableName="ledger")["Count"] == 0
    # one refused request a batch (its first message's first: GetItem, or the guarded claim), and one check
    assert answered.calls.count("DescribeTable") == 1 and len(answered.calls) == 3
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["problem"] for line in lines if line["event"] == "config_invalid"] == [LEDGER_MISMATCH]


def test_get_on_a_layout_that_does_not_fit_says_what_to_set(table: str) -> None:
    with pytest.raises(InboxLayoutMismatch) as raised:
        Inbox(table).get("m-1")
    assert str(raised.value) == LEDGER_MISMATCH


def test_a_layout_that_fits_never_asks_for_the_table(table: str) -> None:
    answered = Answered()
    inbox = Inbox(table, layout=LAYOUT, session=answered.session)
    assert inbox.handle_batch(sqs_event(record("m-1")), credit) == {"batchItemFailures": []}
    assert inbox.get("m-1") is not None and balance() == 10
    assert "DescribeTable" not in answered.calls and "TransactWriteItems" in answered.calls


def test_a_refusal_the_table_does_not_explain_is_answered_as_it_came(table: str) -> None:
    """A consuming role without dynamodb:DescribeTable (AccessDenied: asked once, never again), or
    a ValidationException of another cause: the message answers `retry` with the refusal's code."""
    answered = Answered({"DescribeTable": "AccessDeniedException"})
    inbox = Inbox(table, session=answered.session)
    for key in ("m-1", "m-2"):
        result = inbox.process(record(key), credit)
        assert (result.outcome, result.error_code, result.ok) == (
            ProcessOutcome.RETRY,
            "ValidationException",
            False,
        )
    assert answered.calls.count("DescribeTable") == 1


def test_bad_settings_are_refused(table: str) -> None:
    for kwargs, says in (
        ({"max_receives": 0}, "max_receives=0"),
        ({"lease_margin_seconds": 0}, "lease_margin_seconds=0"),
        ({"key_prefix": ""}, "key_prefix=''"),
        ({"mode": "eventual"}, "mode='eventual': give 'transactional' or 'guarded'"),
        ({"key_attribute": None}, "name the message's key"),
        # a natural first try: key_attribute keeps its default beside the field
        ({"key_field": "detail.orderId"}, "pass key_attribute=None with key_field"),
    ):
        with pytest.raises(ValueError, match=re.escape(says)):
            Inbox(table, **kwargs)  # type: ignore[arg-type]


def test_a_layout_that_is_not_a_table_layout_is_refused_when_made_as_outbox_refuses_it() -> None:
    """Not an AttributeError at the first delivery ('str' object has no attribute 'key')."""
    with pytest.raises(TypeError, match=r"^layout='tenant' is not a TableLayout: pass TableLayout\("):
        Inbox("billing", layout="tenant")  # type: ignore[arg-type]


def _ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def test_the_operator_lists_and_rearms_failed_messages(
    table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = Inbox(table, layout=LAYOUT, max_receives=1)
    for key in ("m-1", "m-2"):
        inbox.process(record(key), lambda d: 1 / 0)
    inbox.process(record("m-3"), credit)
    capsys.readouterr()
    flags = ["--table", table, "--partition-key", "pk", "--sort-key", "sk"]
    assert inbox_failed.main([*flags, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(f["key"], f["receives"], f["last_error"]) for f in listed["failed"]] == [
        ("m-1", 1, "retryable:ZeroDivisionError"),
        ("m-2", 1, "retryable:ZeroDivisionError"),
    ]
    assert listed["rearmed"] == []
    assert inbox_failed.main([*flags, "--rearm", "--limit", "1", "--reason", "fixed the division"]) == 0
    out = capsys.readouterr().out
    assert "FAILED   m-1" in out and "REARMED  m-1" in out and "start-message-move-task" in out
    assert [v.key for v in inbox.failed()] == ["m-2"]
    history = stored_from_item(inbox_item("m-1", inbox)).history
    assert any(getattr(e, "reason", None) == "fixed the division" for e in history)
    with pytest.raises(SystemExit):
        inbox_failed.main([*flags, "--rearm", "--reason", ""])


def test_the_operators_list_shows_what_the_handler_said(
    table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A team trial: `inbox-failed` printed `last error retryable:RuntimeError`, not the handler's
    "schema changed". `last_error` keeps its "category:code"; the words are beside it, in an attribute
    of their own, which a record written before lacks and still reads without."""
    inbox = Inbox(table, layout=LAYOUT, mode="guarded", max_receives=2)

    def broken(delivery: Delivery) -> str:
        raise RuntimeError("schema changed")

    assert [inbox.process(record(), broken).outcome for _ in range(2)] == ["retry", "given_up"]
    (failed,) = inbox.failed()
    assert (failed.last_error, failed.last_error_message) == ("retryable:RuntimeError", "schema changed")
    flags = ["--table", table, "--partition-key", "pk", "--sort-key", "sk"]
    capsys.readouterr()
    assert inbox_failed.main(flags) == 0
    out = capsys.readouterr().out
    assert "last error retryable:RuntimeError" in out and "said: schema changed" in out
    assert inbox_failed.main([*flags, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["failed"]
    assert (listed["last_error"], listed["last_error_message"]) == (
        "retryable:RuntimeError",
        "schema changed",
    )
    boto3.client("dynamodb").update_item(  # as a record written before the attribute was
        TableName=table, Key=inbox.store.key("m-1"), UpdateExpression="REMOVE sg_inbox_last_error_message"
    )
    (failed,) = inbox.failed()
    assert (failed.last_error, failed.last_error_message) == ("retryable:RuntimeError", None)
    assert inbox_failed.main(flags) == 0
    assert "said:" not in capsys.readouterr().out


def test_outcomes_are_enums_that_still_equal_their_strings() -> None:
    # Every way a delivery's flow ends is an outcome of the same name and value; the re-arm's own
    # results (REARMED, SUPERSEDED) are InboxRearmOutcome's business, not a delivery's.
    delivery_results = set(InboxResult) - {InboxResult.REARMED, InboxResult.SUPERSEDED}
    assert {r.value for r in delivery_results} <= {o.value for o in ProcessOutcome}
    made = ProcessResult("s-1", "k", "duplicate", True)  # as a team's own code may build one
    assert made.outcome is ProcessOutcome.DUPLICATE and made.outcome == "duplicate"
    assert json.dumps({"outcome": made.outcome}) == '{"outcome": "duplicate"}'
    again = InboxRearmResult("k", "changed")
    assert again.outcome is InboxRearmOutcome.CHANGED and again.outcome == "changed"
    with pytest.raises(ValueError, match="'rearmed'"):
        ProcessResult("s-1", "k", "rearmed", True)


def test_the_runtime_and_the_explorer_run_the_one_inbox_loop() -> None:
    """The inbox's interpreter imports its flows alone (no outbox, no I/O); the adapters' inbox and
    the explorer step flows through it, and neither drives one by `advance` itself."""
    graph = import_graph()
    assert graph["statemodel.inbox.interpreter"] == {"statemodel.inbox.flows"}
    for module in ("adapters.runtime.inbox", "statemodel.checker.inbox_space"):
        assert "statemodel.inbox.interpreter" in graph[module], module
        source = project_modules()[module].read_text()
        assert "flows.advance(" not in source and ".perform(flow.effect" not in source, module
