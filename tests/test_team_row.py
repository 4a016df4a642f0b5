"""The team's own row is the record (issue: your keys, your queues), on moto: a composite key
(tenant, paymentId); the team's writes to its own attributes between every sendguard write; a
standard and a FIFO queue on one table; one idempotency contract on `send` and on the transactional
path; the team's boto3 Session."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
import time_machine
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from hypothesis import given

from adapters import InvalidMessage, Outbox, TableLayout
from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import make_client
from adapters.runtime.config import Config
from adapters.runtime.runner import Aws
from adapters.runtime.sqs import SqsQueue
from adapters.runtime.store import DynamoStore
from adapters.testing import Fault, FaultInjector, Plan
from statemodel.flows import ConditionFailed, Outcome, Settings, Write
from statemodel.invariants import history_problems
from statemodel.keys import Key
from statemodel.stored import Stored
from statemodel.validation import message_problems
from tests.test_keys import keys

LAYOUT = TableLayout(
    partition_key="tenant", sort_key="paymentId", status_attribute="state", body_attribute="doc"
)
TABLE = "payments"


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _now() -> int:
    return int(time.time() * 1000)


def raw(key: tuple[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key=LAYOUT.key(Key(*key)), ConsistentRead=True
    )["Item"]
    return item


def received(queue_url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        boto3.client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        .get("Messages", [])
    )
    return found


def consistent(outbox: Outbox, key: tuple[str, str]) -> list[str]:
    """What is wrong with the record as read back whole (its body from wherever it is kept)."""
    stored, _ = DynamoStore(boto3.client("dynamodb"), outbox.table, outbox.layout).get(Key(*key))
    assert isinstance(stored, Stored), stored
    return history_problems(stored.record, stored.history) + message_problems(stored.record.message)


@pytest.fixture
def queues(sendguard_aws: None) -> tuple[str, str]:
    standard = ensure_resources(TABLE, "payment-events", layout=LAYOUT)
    fifo = ensure_resources(TABLE, "payment-events.fifo", fifo=True, layout=LAYOUT)
    return standard, fifo


@pytest.fixture
def outbox(queues: tuple[str, str]) -> Outbox:
    return Outbox(TABLE, queues[0], layout=LAYOUT)


# ---- the row is the record ----------------------------------------------------------------------


def test_the_teams_row_is_the_record_under_its_own_key(outbox: Outbox, queues: tuple[str, str]) -> None:
    result = outbox.send(("acme", "p-1"), '{"amount": 10}', item={"amount": 10, "currency": "EUR"})
    assert (result.accepted, result.message_id) == (True, "acme/p-1")
    found = boto3.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="tenant = :t",
        ExpressionAttributeValues={":t": {"S": "acme"}},
    )["Items"]
    (row,) = found  # the tenant's own query finds its payment, and the payment is the record
    assert (
        row["paymentId"] == {"S": "p-1"} and row["amount"] == {"N": "10"} and row["state"] == {"S": "QUEUED"}
    )
    (message,) = received(queues[0])
    message_id = message["MessageAttributes"]["message_id"]["StringValue"]
    assert Key.from_message_id(message_id) == Key("acme", "p-1")  # how a consumer gets the key back
    view = outbox.get(("acme", "p-1"))
    assert view is not None and (view.message_id, view.delivery) == ("acme/p-1", "confirmed")
    assert outbox.get(Key("acme", "p-2")) is None
    assert consistent(outbox, ("acme", "p-1")) == []


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("acme/p-1", "may not hold '/'"),
        (("acme", ""), "takes 0 bytes"),
        (42, "string or a (partition value, sort value) pair"),
    ],
)
def test_a_key_the_layout_cannot_take_is_refused_and_nothing_is_written(
    outbox: Outbox, key: Any, words: str
) -> None:
    with pytest.raises(InvalidMessage, match=words.replace("(", r"\(").replace(")", r"\)")):
        outbox.send(key, "x")
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == []


def test_a_long_key_is_sent_under_a_digest_sqs_takes(outbox: Outbox, queues: tuple[str, str]) -> None:
    key = ("t-" + "ż" * 600, "p-" + "x" * 900)
    result = outbox.send(key, "x")
    assert result.accepted and len(result.message_id) <= 128 and "sha256:" in result.message_id
    (message,) = received(queues[0])
    assert message["MessageAttributes"]["message_id"]["StringValue"] == result.message_id


def test_a_body_kept_apart_sits_beside_its_row(outbox: Outbox) -> None:
    body = "b" * 3000  # past what stays in the record: a body item of its own
    assert outbox.send(("acme", "p-9"), body).accepted
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert sorted(i["paymentId"]["S"].split("#")[0] for i in items) == ["p-9", "p-9"]
    assert "doc" not in raw(("acme", "p-9")) and consistent(outbox, ("acme", "p-9")) == []


# ---- the team writes its own attributes while sendguard works the record ------------------------


class TeamWritesBetween(DynamoStore):
    """A store that lets the team update its own attributes of the record before and after every
    write of sendguard's, as a team's own handler may at any moment; it keeps what it wrote and
    every sendguard write it saw (in lists: a create writing the team's item runs on
    `with_item`'s copy of the store, which shares them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []
        self.writes: list[Write] = []

    @property
    def team_writes(self) -> int:
        return len(self.notes)

    def team_write(self, write: Write) -> None:
        key = self.layout.key(write.after.message.record_key)
        self.client.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression="SET touched = if_not_exists(touched, :zero) + :one, note = :note",
            ExpressionAttributeValues={
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":note": {"S": f"n{self.team_writes}"},
            },
        )
        self.notes.append(f"n{self.team_writes}")

    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, Any]:
        if write.before is not None:
            self.team_write(write)
        outcome, call = super().perform(write, deadline_ms)
        self.writes.append(write)
        self.team_write(write)
        return outcome, call


def _outbox_with(
    store_class: type[DynamoStore], queue_url: str, max_attempts: int = 10
) -> tuple[Outbox, Any]:
    """An Outbox as `Outbox(TABLE, queue_url, layout=LAYOUT, max_attempts=..., aws_max_attempts=1)`,
    its records in a `store_class` (`Outbox.from_config`: the configuration, and the ports)."""
    config = Config(TABLE, queue_url, Settings(max_attempts=max_attempts), 1, layout=LAYOUT)
    store = store_class(make_client("dynamodb", 1), TABLE, LAYOUT, queue_url=queue_url)
    aws = Aws(store, SqsQueue(make_client("sqs", 1), queue_url))
    return Outbox.from_config(config, aws), store


def test_team_writes_between_every_sendguard_write_lose_nothing_and_fence_nothing(
    queues: tuple[str, str],
) -> None:
    outbox, store = _outbox_with(TeamWritesBetween, queues[0], max_attempts=2)
    key = ("acme", "p-1")
    injector = FaultInjector()  # the fault-injection suite's injector: SQS refuses the sends armed
    # 1. a send that fails (SQS answers 500, the message never lands): create+claim, rollback
    with injector.installed(), injector.armed(Plan(Fault.SQS_INTERNAL_ERROR)):
        failed = outbox.send(key, "pay", item={"amount": 5})
    assert not failed.accepted and failed.retryable
    # 2. the reconciler re-drives it, and its send fails permanently: exhausted
    denied = injector.armed(Plan(Fault.SQS_ACCESS_DENIED))
    with time_machine.travel(_now() / 1000 + 61, tick=True), injector.installed(), denied:
        assert outbox.reconcile(context=Context(20_000)).failed == 1
    assert [fired.fault for fired in injector.fired] == [Fault.SQS_INTERNAL_ERROR, Fault.SQS_ACCESS_DENIED]
    view = outbox.get(key)
    assert view is not None and view.delivery == "exhausted"
    # 3. an operator re-arms it, and 4. the reconciler sends it (happy path: claim, confirm)
    assert outbox.rearm(key, "queue policy fixed", by="ops").rearmed
    with time_machine.travel(_now() / 1000 + 122, tick=True):
        assert outbox.reconcile(context=Context(20_000)).redriven == 1
    (message,) = received(queues[0])
    assert message["Body"] == "pay"
    row = raw(key)
    kinds = [type(event).__name__ for write in store.writes for event in write.events]
    assert {
        "Accepted",
        "Claimed",
        "SendFailed",
        "RolledBack",
        "RedriveExhausted",
        "Rearmed",
        "SendConfirmed",
    } <= set(kinds)
    # Nothing of the team's is lost: every one of its writes counted, its last note, its amount.
    assert row["touched"] == {"N": str(store.team_writes)} and store.team_writes >= 2 * len(store.writes) - 1
    assert row["note"] == {"S": f"n{store.team_writes - 1}"} and row["amount"] == {"N": "5"}
    # Nothing of sendguard's is lost: the history replays to the record, the message is as accepted.
    assert consistent(outbox, key) == []
    # And every sendguard write still fences: each earlier write, replayed now, fails its condition.
    for write in store.writes:
        outcome, _ = DynamoStore(store.client, TABLE, LAYOUT, queue_url=queues[0]).perform(write, None)
        assert isinstance(outcome, ConditionFailed), write.events
    assert raw(key) == row


# ---- a record knows its queue -------------------------------------------------------------------


def _crashed(outbox: Outbox, keys: list[tuple[str, str]]) -> None:
    """Records written by the team's transaction, never dispatched (the Lambda died after commit)."""
    client = boto3.client("dynamodb")
    for key in keys:
        client.transact_write_items(
            TransactItems=[outbox.pending_put(key, f"body of {key[1]}", group_id="g")]
        )


def _bodies(queue_url: str) -> list[str]:
    found: list[str] = []
    while batch := received(queue_url):
        found += [m["Body"] for m in batch]
        boto3.client("sqs").delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return sorted(found)


@pytest.mark.parametrize("order", ["standard first", "fifo first", "one serves both"])
def test_every_redriven_message_goes_to_its_own_queue(
    queues: tuple[str, str], order: str, capsys: pytest.CaptureFixture[str]
) -> None:
    standard_url, fifo_url = queues
    standard = Outbox(TABLE, standard_url, layout=LAYOUT)
    fifo = Outbox(TABLE, fifo_url, layout=LAYOUT)
    _crashed(standard, [("acme", "s-1"), ("acme", "s-2")])
    _crashed(fifo, [("acme", "f-1"), ("beta", "f-2"), ("beta", "f-3")])
    with time_machine.travel(_now() / 1000 + 61, tick=True):
        if order == "one serves both":
            both = Outbox(TABLE, standard_url, layout=LAYOUT, reconcile_queues=[fifo_url])
            summary = both.reconcile(context=Context(20_000))
            assert (summary.redriven, summary.left_to_other_queues) == (5, 0)
        else:
            first, second = (standard, fifo) if order == "standard first" else (fifo, standard)
            summary = first.reconcile(context=Context(20_000))
            left = 3 if first is standard else 2
            assert (summary.redriven, summary.left_to_other_queues) == (5 - left, left)
            logged = [
                json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
            ]
            (line,) = [entry for entry in logged if entry["event"] == "records_left"]
            assert line["queues"] == {(fifo_url if first is standard else standard_url): left}
            assert second.reconcile(context=Context(20_000)).redriven == left
    assert _bodies(standard_url) == ["body of s-1", "body of s-2"]
    assert _bodies(fifo_url) == ["body of f-1", "body of f-2", "body of f-3"]


def test_the_same_key_through_another_queue_is_a_conflict(queues: tuple[str, str]) -> None:
    standard = Outbox(TABLE, queues[0], layout=LAYOUT)
    fifo = Outbox(TABLE, queues[1], layout=LAYOUT)
    assert standard.send(("acme", "p-1"), "x").accepted
    other = fifo.send(("acme", "p-1"), "x")
    assert (other.http_status, other.outcome, other.retryable) == (409, "conflict", False)
    assert received(queues[1]) == []


# ---- one idempotency contract on every path -----------------------------------------------------


def _transact(outbox: Outbox, entry: dict[str, Any]) -> bool:
    """The team's transaction with its ledger line; False when it was cancelled because the record
    exists already (a retry), which `record_exists` recognises."""
    ledger = {
        "Update": {
            "TableName": TABLE,
            "Key": {"tenant": {"S": "acme"}, "paymentId": {"S": "ledger"}},
            "UpdateExpression": "ADD entries :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    try:
        boto3.client("dynamodb").transact_write_items(TransactItems=[ledger, entry])
    except ClientError as exc:
        if not outbox.record_exists(exc, entry):
            raise
        return False
    return True


def test_the_transactional_path_judges_a_retry_like_send(outbox: Outbox, queues: tuple[str, str]) -> None:
    key = ("acme", "p-1")
    first = outbox.pending_put(key, '{"amount": 10}', item={"amount": 10})
    assert _transact(outbox, first)
    assert (outbox.dispatch(first).outcome, len(_bodies(queues[0]))) == ("sent", 1)
    same = outbox.pending_put(key, '{"amount": 10}', item={"amount": 10})
    assert not _transact(outbox, same)  # the record is there: the transaction is cancelled
    again = outbox.dispatch(same)
    assert (again.http_status, again.outcome) == (202, "already_queued") and _bodies(queues[0]) == []
    other = outbox.pending_put(key, '{"amount": 99}', item={"amount": 99})
    assert not _transact(outbox, other)
    conflict = outbox.dispatch(other)
    assert (conflict.http_status, conflict.outcome, conflict.retryable) == (409, "conflict", False)
    assert _bodies(queues[0]) == [] and raw(key)["amount"] == {"N": "10"}
    ledger = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"tenant": {"S": "acme"}, "paymentId": {"S": "ledger"}}
    )
    assert ledger["Item"]["entries"] == {"N": "1"}  # the team's other writes went in once
    # send answers the same retries alike
    assert outbox.send(key, '{"amount": 10}').outcome == "already_queued"
    assert outbox.send(key, '{"amount": 99}').http_status == 409


def test_a_retry_of_a_record_in_flight_or_exhausted_is_answered_alike_on_both_paths(
    outbox: Outbox, queues: tuple[str, str]
) -> None:
    key = ("acme", "p-7")
    injector = FaultInjector()  # SQS denies the one send: a permanent failure, exhausted
    with injector.installed(), injector.armed(Plan(Fault.SQS_ACCESS_DENIED)):
        assert outbox.send(key, "x").error_code == "AccessDenied"
    assert [fired.fault for fired in injector.fired] == [Fault.SQS_ACCESS_DENIED]
    entry = outbox.pending_put(key, "x")
    assert not _transact(outbox, entry)
    by_send, by_dispatch = outbox.send(key, "x"), outbox.dispatch(entry)
    assert (by_send.http_status, by_send.error_code) == (by_dispatch.http_status, by_dispatch.error_code)
    assert (by_send.http_status, by_send.error_code) == (500, "RedriveExhausted")


def test_record_exists_is_false_for_any_other_failure(outbox: Outbox) -> None:
    entry = outbox.pending_put(("acme", "p-1"), "x")
    guarded = {
        "ConditionCheck": {
            "TableName": TABLE,
            "Key": {"tenant": {"S": "acme"}, "paymentId": {"S": "limit"}},
            "ConditionExpression": "attribute_exists(tenant)",
        }
    }
    with pytest.raises(ClientError) as caught:
        boto3.client("dynamodb").transact_write_items(TransactItems=[guarded, entry])
    assert not outbox.record_exists(caught.value, entry)
    assert not outbox.record_exists(ValueError("no"), entry)


def test_dispatch_by_key_still_answers_for_the_record(outbox: Outbox, queues: tuple[str, str]) -> None:
    entry = outbox.pending_put(("acme", "p-3"), "x")
    assert _transact(outbox, entry)
    assert outbox.dispatch(("acme", "p-3")).outcome == "sent"
    with pytest.raises(InvalidMessage, match="dispatch takes the entry"):
        outbox.dispatch({"Put": {"Item": {}}})


# ---- the layout's key rules (no AWS) -----------------------------------------------------------

COMPOSITE = TableLayout(partition_key="tenant", sort_key="paymentId")
STATIC = TableLayout(partition_key="pk", sort_key="sk", sort_key_value="outbox")
PLAIN = TableLayout(partition_key="orderId")


def test_the_layout_says_which_keys_name_its_records() -> None:
    assert PLAIN.key_problem(Key("acme", "p-1")) is not None  # no sort key: one string
    assert PLAIN.key_problem(Key("a/b")) is None  # a plain table takes any plain key
    assert COMPOSITE.key_problem(Key("acme", "p-1")) is None
    slash = COMPOSITE.key_problem(Key("acme/p-1"))
    assert slash is not None and "'/'" in slash  # it would be ('acme', 'p-1')'s message id
    assert STATIC.normal(Key("x", "outbox")) == Key("x")  # the fixed sort value is the plain key


@pytest.mark.parametrize("layout", [COMPOSITE, STATIC, PLAIN])
@given(key=keys)
def test_an_items_key_reads_back_as_the_key_it_was_written_with(layout: TableLayout, key: Key) -> None:
    if layout.key_problem(key) is not None:
        return
    key = layout.normal(key)
    assert layout.key_of(layout.key(key)) == key


# ---- the team's session -------------------------------------------------------------------------


class _Recording(boto3.Session):
    """The team's session, keeping the clients made from it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made: list[Any] = []

    def client(self, *args: Any, **kwargs: Any) -> Any:
        made = super().client(*args, **kwargs)
        self.made.append(made)
        return made


def test_the_teams_session_and_botocore_config_make_the_clients(
    queues: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")  # the environment names another region
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    session = _Recording(aws_access_key_id="team", aws_secret_access_key="team", region_name="us-east-1")
    outbox = Outbox(
        TABLE,
        queues[0],
        layout=LAYOUT,
        session=session,
        botocore_config=BotoConfig(
            user_agent_extra="payments/1.0", read_timeout=60, retries={"max_attempts": 9}
        ),
    )
    made = {client.meta.service_model.service_name: client for client in session.made}
    assert sorted(made) == ["dynamodb", "sqs"] and len(session.made) == 2  # the Outbox's clients: its own
    for client in made.values():
        assert client.meta.region_name == "us-east-1"
        assert client._request_signer._credentials.access_key == "team"
        config = client.meta.config
        assert "payments/1.0" in config.user_agent_extra  # the team's setting stays …
        assert config.read_timeout != 60 and config.retries["mode"] == "standard"  # … sendguard's win
    assert outbox.send(("acme", "p-1"), "x").accepted  # the tables of the session's region


def test_status_shows_the_waiting_records_by_the_queue_each_names(
    queues: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.cli.main import main

    standard_url, fifo_url = queues
    _crashed(Outbox(TABLE, standard_url, layout=LAYOUT), [("acme", "s-1"), ("acme", "s-2")])
    _crashed(Outbox(TABLE, fifo_url, layout=LAYOUT), [("acme", "f-1"), ("beta", "f-2"), ("beta", "f-3")])
    for name, value in {
        "PARTITION_KEY": "tenant",
        "SORT_KEY": "paymentId",
        "STATUS_ATTRIBUTE": "state",
    }.items():
        monkeypatch.setenv(f"SENDGUARD_{name}", value)
    monkeypatch.setenv("SENDGUARD_BODY_ATTRIBUTE", "doc")
    capsys.readouterr()
    assert main(["status", "--table", TABLE, "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["queues"] == {
        "counts": {standard_url: 2, fifo_url: 3},
        "read": 5,
        "complete": True,
        "failed_reads": 0,
    }
    assert main(["status", "--table", TABLE]) == 0
    printed = capsys.readouterr().out
    assert f"       2  {standard_url}" in printed and f"       3  {fifo_url}" in printed


def test_record_exists_is_false_for_the_teams_own_row_under_the_key(outbox: Outbox) -> None:
    """A row written without sendguard holds the key: the transaction is cancelled, but no record
    exists that `dispatch` could send, so it is the team's failure to handle."""
    boto3.client("dynamodb").put_item(
        TableName=TABLE, Item={"tenant": {"S": "acme"}, "paymentId": {"S": "p-1"}, "amount": {"N": "1"}}
    )
    entry = outbox.pending_put(("acme", "p-1"), "x")
    with pytest.raises(ClientError) as caught:
        boto3.client("dynamodb").transact_write_items(TransactItems=[entry])
    assert not outbox.record_exists(caught.value, entry)
