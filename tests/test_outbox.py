"""The library API (`adapters.Outbox`, `TableLayout`, `InvalidMessage`) on moto: send, the
transactional outbox (pending_put + dispatch), get, reconcile, FIFO groups, the team's own table and
attributes, bad input, short deadlines and a request held on the wire."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import boto3
import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from adapters import InvalidMessage, InvalidRearm, Key, Outbox, RearmOutcome, TableLayout
from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import (
    ANSWER_RESERVE_MS,
    ANSWER_RESERVE_SHARE,
    CONNECT_TIMEOUT_S,
    MIN_READ_TIMEOUT_MS,
    READ_TIMEOUT_S,
    attempt_read_timeout_ms,
    now_ms,
)
from adapters.runtime.codec import foreign_attributes, stored_from_item
from adapters.runtime.config import ConfigError
from adapters.runtime.store import DynamoStore, NotARecord
from adapters.testing import Fault, FaultInjector, Plan
from statemodel.flows import Write, start_redrive
from statemodel.invariants import foreign_changes, history_problems
from statemodel.stored import Stored
from statemodel.validation import MAX_MESSAGE_BYTES, message_problems
from tests.moto_http import FaultyMotoServer, Rule

LAYOUT = TableLayout(
    partition_key="orderId",
    sort_key="kind",
    sort_key_value="order",
    status_attribute="state",
    body_attribute="doc",
)


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def outbox(sendguard_aws: None) -> Outbox:
    return Outbox("orders", ensure_resources("orders", "events", layout=LAYOUT), layout=LAYOUT)


def raw(key: str) -> dict[str, Any]:
    item: dict[str, Any] = boto3.client("dynamodb").get_item(
        TableName="orders", Key=LAYOUT.key(key), ConsistentRead=True
    )["Item"]
    return item


def received(outbox: Outbox) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=outbox.queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        .get("Messages", [])
    )
    return found


def table_items() -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName="orders")["Items"])


def consistent(key: str) -> list[str]:
    stored = stored_from_item(raw(key), LAYOUT)
    return history_problems(stored.record, stored.history) + message_problems(stored.record.message)


# ---- send -----------------------------------------------------------------------------------------


def test_send_on_the_team_table_keeps_the_body_and_the_team_attributes(outbox: Outbox) -> None:
    body = "order 4711 <not JSON> é"
    result = outbox.send(
        "order-4711",
        body,
        attributes={"tenant": "acme"},
        item={"customer": "c-1", "amount": 12, "price": Decimal("9.95"), "tags": ["a", "b"]},
        correlation_id="req-42",
        context=Context(10_000),
    )
    assert (result.accepted, result.retryable, result.http_status, result.message_id) == (
        True,
        False,
        202,
        "order-4711",
    )
    item = raw("order-4711")
    assert item["orderId"] == {"S": "order-4711"} and item["kind"] == {"S": "order"}
    assert item["state"] == {"S": "QUEUED"} and item["doc"] == {"S": body}
    assert foreign_attributes(item, LAYOUT) == {
        "customer": {"S": "c-1"},
        "amount": {"N": "12"},
        "price": {"N": "9.95"},
        "tags": {"L": [{"S": "a"}, {"S": "b"}]},
    }
    bookkeeping = set(item) - {"orderId", "kind", "state", "doc"} - set(foreign_attributes(item, LAYOUT))
    assert bookkeeping and all(name.startswith("sg_") for name in bookkeeping)
    (message,) = received(outbox)
    assert message["Body"] == body
    assert message["MessageAttributes"]["message_id"]["StringValue"] == "order-4711"
    assert message["MessageAttributes"]["tenant"]["StringValue"] == "acme"
    assert consistent("order-4711") == []
    view = outbox.get("order-4711")
    assert view is not None and (view.status, view.delivery, view.attempts, view.correlation_id) == (
        "QUEUED",
        "confirmed",
        1,
        "req-42",
    )


def test_send_again_is_idempotent_and_another_body_conflicts(outbox: Outbox) -> None:
    assert outbox.send("k-1", "one", attributes={"a": "1"}).accepted
    again = outbox.send("k-1", "one", attributes={"a": "1"})
    assert (again.accepted, again.outcome, again.http_status) == (True, "already_queued", 202)
    for other in (
        outbox.send("k-1", "two", attributes={"a": "1"}),
        outbox.send("k-1", "one"),
        outbox.send("k-1", "one", attributes={"a": "1"}, group_id="g"),
    ):
        assert (other.accepted, other.retryable, other.http_status, other.outcome) == (
            False,
            False,
            409,
            "conflict",
        )
    assert len(received(outbox)) == 1


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda o: o.send("bad key", "x"), "key 'bad key'"),
        (lambda o: o.send("", "x"), "key ''"),
        (lambda o: o.send("k" * 129, "x"), "1 to 128"),
        (lambda o: o.send("k", b"bytes"), "body must be a str"),
        (lambda o: o.send("k", ""), "empty"),
        (lambda o: o.send("k", "a\x00b"), "index 1"),
        (lambda o: o.send("k", "\ud800"), "SQS does not accept"),
        (lambda o: o.send("k", "x", attributes={"message_id": "x"}), "reserved"),
        (lambda o: o.send("k", "x", attributes={"a b": "x"}), "A-Z a-z"),
        (lambda o: o.send("k", "x", attributes={"a": 1}), "non-empty string"),
        (lambda o: o.send("k", "x", item={"state": "new"}), "'state' is sendguard's"),
        (lambda o: o.send("k", "x", item={"sg_mine": 1}), "'sg_mine' is sendguard's"),
        (lambda o: o.send("k", "x", item={"orderId": "o"}), "'orderId' is sendguard's"),
        (lambda o: o.send("k", "x", item={"price": 9.95}), "Decimal"),
        (lambda o: o.send("k", "x", item=[1]), "mapping"),
        (lambda o: o.send("k", "x", group_id="a b"), "group_id"),
        (lambda o: o.send("k", "x", correlation_id="a b"), "correlation_id"),
        (lambda o: o.send("k", "x" * (MAX_MESSAGE_BYTES + 1)), "at most"),
        (lambda o: o.send("k", "x" * 1000, item={"blob": "y" * MAX_MESSAGE_BYTES}), "largest item.'blob'"),
        (lambda o: o.send("k", "x", item={"n" * 256: 1}), "is 256 bytes; names take 1 to 255"),
        (lambda o: o.send("k", "x", attributes={5: "x"}), "attribute name 5 must be a string, not int"),
        (lambda o: o.pending_put("k", "x", item={"doc": "y"}), "'doc' is sendguard's"),
        (lambda o: o.dispatch("no such key"), "key 'no such key'"),
    ],
)
def test_bad_input_raises_invalid_message_and_writes_nothing(outbox: Outbox, call: Any, words: str) -> None:
    with pytest.raises(InvalidMessage, match=words.replace("(", r"\(")) as raised:
        call(outbox)
    assert isinstance(raised.value, ValueError)
    assert table_items() == [] and received(outbox) == []


def test_a_key_taken_by_the_teams_own_item_is_refused_and_left_alone(outbox: Outbox) -> None:
    team = {"orderId": {"S": "o-7"}, "kind": {"S": "order"}, "total": {"N": "3"}}
    boto3.client("dynamodb").put_item(TableName="orders", Item=team)
    with pytest.raises(InvalidMessage, match="not a sendguard record"):
        outbox.send("o-7", "x")
    with pytest.raises(InvalidMessage, match="pending_put"):
        outbox.dispatch("o-7")
    with pytest.raises(InvalidMessage, match="not a sendguard record"):
        outbox.get("o-7")
    rearmed = outbox.rearm("o-7", "fixed")  # nothing to re-arm: the failure says why, nothing written
    assert rearmed.outcome is RearmOutcome.FAILED and rearmed.failure == NotARecord.failure
    assert raw("o-7") == team and received(outbox) == []


def test_a_record_replaced_by_the_teams_own_item_fails_its_next_write_and_is_left_alone(
    outbox: Outbox,
) -> None:
    """A record read, then overwritten by the team's own PutItem (its bookkeeping gone): the write
    that follows is not a create, so it is no bad input of a caller's; it fails, permanently, with
    the one failure that names the case, and the team's item is left as it is."""
    boto3.client("dynamodb").transact_write_items(TransactItems=[outbox.pending_put("o-8", "placed")])
    store = DynamoStore(boto3.client("dynamodb"), "orders", LAYOUT)
    found, _ = store.get(Key("o-8"))
    assert isinstance(found, Stored)
    team = {"orderId": {"S": "o-8"}, "kind": {"S": "order"}, "total": {"N": "3"}}
    boto3.client("dynamodb").put_item(TableName="orders", Item=team)
    with pytest.raises(NotARecord):
        store.get(Key("o-8"))
    flow = start_redrive(found.record, "a-1", _now() + 60_000, _now(), outbox.settings)
    assert isinstance(flow.effect, Write)
    outcome, call = store.perform(flow.effect, None)
    failed = (getattr(outcome, "category", None), getattr(outcome, "code", None))  # a failed outcome
    assert failed == (NotARecord.failure.category, NotARecord.failure.code)
    assert call.error is not None and call.error.code == NotARecord.failure.code
    assert raw("o-8") == team


def test_table_layout_refuses_names_it_cannot_use() -> None:
    for bad in (
        {"partition_key": "sg_key"},
        {"status_attribute": "a b"},
        {"partition_key": "k", "body_attribute": "k"},
        {"sort_key": "sk", "sort_key_value": ""},
    ):
        with pytest.raises(ValueError, match="TableLayout"):
            TableLayout(**bad)  # type: ignore[arg-type]


def test_fifo_group_id_and_deduplication_id(sendguard_aws: None) -> None:
    url = ensure_resources("fifo", "events.fifo", fifo=True)
    outbox = Outbox("fifo", url)
    assert outbox.send("k-1", "hello", group_id="customer-1").accepted
    assert outbox.send("k-2", "hello").accepted
    messages = received(outbox)
    groups = {m["Attributes"]["MessageDeduplicationId"]: m["Attributes"]["MessageGroupId"] for m in messages}
    assert groups == {"k-1": "customer-1", "k-2": "k-2"}


def test_from_env_reads_the_layout(sendguard_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    url = ensure_resources("orders", "events", layout=LAYOUT)
    env = {
        "SENDGUARD_TABLE": "orders",
        "SENDGUARD_QUEUE_URL": url,
        "SENDGUARD_PARTITION_KEY": "orderId",
        "SENDGUARD_SORT_KEY": "kind",
        "SENDGUARD_SORT_KEY_VALUE": "order",
        "SENDGUARD_STATUS_ATTRIBUTE": "state",
        "SENDGUARD_BODY_ATTRIBUTE": "doc",
    }
    outbox = Outbox.from_env(env)
    assert outbox.layout == LAYOUT and outbox.send("o-1", "x").accepted and raw("o-1")["doc"] == {"S": "x"}
    with pytest.raises(ConfigError, match="sg_"):
        Outbox.from_env({**env, "SENDGUARD_STATUS_ATTRIBUTE": "sg_state"})


# ---- the transactional outbox ---------------------------------------------------------------------


def test_pending_put_commits_with_the_teams_write_and_dispatch_sends_it(outbox: Outbox) -> None:
    put = outbox.pending_put(
        "o-1", "placed", attributes={"t": "x"}, item={"customer": "c-1"}, correlation_id="c-9"
    )
    ledger = {"Put": {"TableName": "orders", "Item": {"orderId": {"S": "ledger"}, "kind": {"S": "entry"}}}}
    boto3.client("dynamodb").transact_write_items(TransactItems=[put, ledger])
    before = foreign_attributes(raw("o-1"), LAYOUT)
    view = outbox.get("o-1")
    assert view is not None and (view.status, view.delivery, view.attempts) == ("PENDING", "pending", 0)
    assert consistent("o-1") == []
    result = outbox.dispatch("o-1", context=Context(3_000))
    assert (result.accepted, result.outcome, result.correlation_id) == (True, "sent", "c-9")
    (message,) = received(outbox)
    assert message["Body"] == "placed" and message["MessageAttributes"]["t"]["StringValue"] == "x"
    assert foreign_changes(before, foreign_attributes(raw("o-1"), LAYOUT)) == [] and before
    assert consistent("o-1") == []
    again = outbox.dispatch("o-1")
    assert (again.accepted, again.outcome) == (True, "already_queued") and received(outbox) == []
    with pytest.raises(InvalidMessage, match="did the transaction commit"):
        outbox.dispatch("o-2")


def test_a_second_pending_put_for_the_key_cancels_the_transaction(outbox: Outbox) -> None:
    client = boto3.client("dynamodb")
    client.transact_write_items(TransactItems=[outbox.pending_put("o-1", "first")])
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=[outbox.pending_put("o-1", "second")])
    assert raw("o-1")["doc"] == {"S": "first"}


def test_a_pending_put_never_dispatched_is_sent_by_the_reconciler(outbox: Outbox) -> None:
    boto3.client("dynamodb").transact_write_items(TransactItems=[outbox.pending_put("o-1", "placed")])
    assert outbox.reconcile(deadline_ms=_now() + 20_000).redriven == 0  # not due yet: dispatch may come
    with time_machine.travel(_now() / 1000 + 61, tick=True):
        summary = outbox.reconcile(context=Context(20_000))
    assert summary.as_dict()["redriven"] == 1
    (message,) = received(outbox)
    assert message["Body"] == "placed" and consistent("o-1") == []


def test_rearm_gives_an_exhausted_record_on_the_team_table_a_fresh_budget(outbox: Outbox) -> None:
    injector = FaultInjector()  # the fault-injection suite's injector: SQS denies the one send
    with injector.installed(), injector.armed(Plan(Fault.SQS_ACCESS_DENIED)):
        assert not outbox.send("o-1", "placed", item={"total": 7}).accepted
    assert [fired.fault for fired in injector.fired] == [Fault.SQS_ACCESS_DENIED]
    before = outbox.get("o-1")
    assert before is not None and before.delivery == "exhausted"
    exhausted = raw("o-1")
    with pytest.raises(InvalidRearm):
        outbox.rearm("o-1", "")
    assert raw("o-1") == exhausted  # bad input: nothing written
    result = outbox.rearm("o-1", "queue policy restored", by="ops@test")
    assert result.rearmed and result.record is not None and result.record.phase.value == "PENDING"
    item = raw("o-1")
    assert item["state"] == {"S": "PENDING"} and item["sg_attention"]["S"].startswith("PENDING")
    assert item["total"] == {"N": "7"} and consistent("o-1") == []
    assert outbox.rearm("o-1", "again").outcome == "not_exhausted"  # left as it is
    with time_machine.travel(_now() / 1000 + 61, tick=True):
        assert outbox.reconcile(context=Context(20_000)).redriven == 1
    (message,) = received(outbox)
    assert message["Body"] == "placed" and consistent("o-1") == []
    after = outbox.get("o-1")
    assert after is not None and after.delivery == "confirmed"


# ---- deadlines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("remaining_ms", [3_000, 1_000])
def test_a_fault_free_send_succeeds_in_a_short_invocation(outbox: Outbox, remaining_ms: int) -> None:
    # The clock stands still: what is judged is the deadlines' arithmetic, not this machine's load.
    with time_machine.travel(time.time(), tick=False):
        assert outbox.send("k", "x", context=Context(remaining_ms)).accepted
        assert outbox.send("k-d", "x", deadline_ms=_now() + remaining_ms).accepted


def test_no_time_left_sends_nothing_and_writes_nothing(outbox: Outbox) -> None:
    result = outbox.send("k", "x", context=Context(200))
    assert (result.accepted, result.retryable, result.error_code) == (False, True, "DeadlineExceeded")
    assert table_items() == []


@given(left=st.integers(-1_000, 10_000), connect=st.integers(1, 2_000), read=st.integers(1, 5_000))
def test_an_attempt_started_ends_by_its_deadline(left: int, connect: int, read: int) -> None:
    for adjustable in (True, False):
        given_read = attempt_read_timeout_ms(left, connect, read, adjustable)
        if given_read is not None:
            assert connect + given_read <= left and given_read <= read
            assert given_read >= MIN_READ_TIMEOUT_MS or not adjustable
        elif adjustable:
            assert min(read, left - connect) < MIN_READ_TIMEOUT_MS
        else:
            assert connect + read > left


def test_every_attempt_gets_a_read_timeout_that_ends_by_the_deadline(sendguard_aws: None) -> None:
    # The team's session (`Outbox(session=...)`) carries a hook that sees each attempt as it goes on
    # the wire, after sendguard's own deadline hook gave it its read timeout.
    session = boto3.Session()
    attempts: list[tuple[str, int, float | None]] = []

    def attempt(request: Any, event_name: str, **_: Any) -> None:
        attempts.append((event_name.rpartition(".")[2], now_ms(), request.context.get("read_timeout")))

    session.events.register("before-send", attempt)
    url = ensure_resources("orders", "events", layout=LAYOUT)
    outbox = Outbox("orders", url, layout=LAYOUT, session=session)
    with time_machine.travel(time.time(), tick=False):  # the arithmetic, not this machine's load
        started = now_ms()
        assert outbox.send("k", "x", context=Context(1_000)).accepted
    assert [operation for operation, _, _ in attempts] == ["UpdateItem", "SendMessage", "UpdateItem"]
    connect_ms = int(1000 * CONNECT_TIMEOUT_S)
    deadline = started + 1_000 - min(ANSWER_RESERVE_MS, 1_000 // ANSWER_RESERVE_SHARE)  # the answer's reserve
    for _, at, read_s in attempts:
        assert read_s is not None
        read = int(1000 * read_s)
        assert MIN_READ_TIMEOUT_MS <= read < 1000 * READ_TIMEOUT_S  # shrunk to fit, not refused
        assert at + connect_ms + read <= deadline


INVOCATION_HELD_MS = 4_000
HELD_S = 6.0  # longer than the whole invocation: no read timeout it gives can wait for the answer


def test_a_send_held_on_the_wire_lands_before_its_records_lease_ends(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invocation has 4 s (room for the create on a loaded machine). SQS's answer never comes in
    time: the request is held on the wire for longer than any read timeout the invocation can give,
    the client gives up at its (shrunk) read timeout, the record is rolled back — and then the held
    request reaches SQS after all. It lands inside the lease that the invocation's claim took, which
    is what keeps the reconciler from re-driving the record while the request can still land."""
    moto = FaultyMotoServer()
    moto.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
        url = ensure_resources("held", "held", layout=LAYOUT)
        attempts: list[int] = []  # when each send attempt must be over: its start, connect and read timeouts

        def attempt_ends(request: Any, **_: Any) -> None:
            # The read timeout the deadline hook set for this attempt, else the client's own (an
            # attempt is then started only if that fits: adapters.runtime.clients).
            read_s = request.context.get("read_timeout", READ_TIMEOUT_S)
            attempts.append(_now() + int(1000 * (CONNECT_TIMEOUT_S + read_s)))

        session = boto3.Session()  # the team's session: its clients carry the hook (`Outbox(session=...)`)
        session.events.register("before-send.sqs.SendMessage", attempt_ends)
        outbox = Outbox("held", url, layout=LAYOUT, aws_max_attempts=1, session=session)
        hold = Rule("SendMessage", "hold_then_apply", stall_s=HELD_S)
        moto.faults.rules.append(hold)
        started = _now()
        result = outbox.send("held-1", "x", context=Context(INVOCATION_HELD_MS))
        assert (result.accepted, result.retryable) == (False, True)
        # The client did not wait for the held request: every attempt was bounded to end by the
        # invocation's end, which comes before the held request can be answered.
        assert attempts and max(attempts) <= started + INVOCATION_HELD_MS < started + 1000 * HELD_S
        deadline = time.monotonic() + HELD_S + 10
        while not hold.applied_at_ms and time.monotonic() < deadline:
            time.sleep(0.05)
        (landed,) = hold.applied_at_ms
        item = boto3.client("dynamodb").get_item(TableName="held", Key=LAYOUT.key("held-1"))["Item"]
        stored = stored_from_item(item, LAYOUT)
        (lease,) = [e.lease_expires_at for e in stored.history if hasattr(e, "lease_expires_at")]
        assert started < landed < lease
        assert lease >= started + INVOCATION_HELD_MS + outbox.settings.lease_margin_ms
    finally:
        moto.stop()


# ---- logging when embedded ------------------------------------------------------------------------


def _trace_problems(path: Any) -> tuple[int, list[str]]:
    from adapters.ops.trace_check import check, read_lines

    lines, _, unreadable = read_lines([str(path)])
    report = check(lines)
    return report.transitions, unreadable + report.problems


def _send_and_dispatch(outbox: Outbox) -> None:
    assert outbox.send("log-1", "x", correlation_id="corr-log").accepted
    boto3.client("dynamodb").transact_write_items(TransactItems=[outbox.pending_put("log-2", "y")])
    assert outbox.dispatch("log-2").accepted


def test_without_configuration_the_lines_are_json_and_nothing_is_configured(
    outbox: Outbox, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    import structlog

    assert not structlog.is_configured()
    _send_and_dispatch(outbox)
    assert not structlog.is_configured()
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert any(line["event"] == "transition" and line["correlation_id"] == "corr-log" for line in lines)
    (tmp_path / "log").write_text(out)
    assert _trace_problems(tmp_path / "log") == (6, [])


def test_lines_reach_the_standard_librarys_logging_as_json(outbox: Outbox, tmp_path: Any) -> None:
    import logging

    class Json(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            plain = vars(logging.makeLogRecord({}))
            extra = {k: v for k, v in vars(record).items() if k not in plain}
            return json.dumps({"message": record.getMessage(), "level": record.levelname, **extra})

    team = logging.getLogger("orders-team")
    handler = logging.FileHandler(tmp_path / "log")
    handler.setFormatter(Json())
    team.addHandler(handler)
    team.setLevel(logging.INFO)
    root_handlers = list(logging.getLogger().handlers)
    try:
        box = Outbox(outbox.table, outbox.queue_url, layout=LAYOUT, logger=team)
        _send_and_dispatch(box)
    finally:
        team.removeHandler(handler)
        handler.close()
    assert logging.getLogger().handlers == root_handlers and team.handlers == []
    lines = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    transition = next(line for line in lines if line["message"] == "transition")
    assert {"message_id", "from", "to", "version", "attempt_id", "correlation_id", "cause"} <= set(transition)
    assert _trace_problems(tmp_path / "log") == (6, [])


def test_lines_reach_powertools_logger(
    outbox: Outbox, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    from aws_lambda_powertools import Logger

    team = Logger(service="orders")
    box = Outbox(outbox.table, outbox.queue_url, layout=LAYOUT, logger=team)
    _send_and_dispatch(box)
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    transition = next(line for line in lines if line.get("event") == "transition")
    assert transition["service"] == "orders" and transition["message"] == "transition"
    assert transition["correlation_id"] == "corr-log"
    (tmp_path / "log").write_text(out)
    assert _trace_problems(tmp_path / "log") == (6, [])


def test_lines_reach_the_teams_structlog_configuration_unchanged(outbox: Outbox, tmp_path: Any) -> None:
    import structlog

    lines: list[str] = []

    class Sink:
        def msg(self, message: str) -> None:
            lines.append(message)

        info = warning = error = msg

    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=lambda *_: Sink(),
    )
    config = structlog.get_config()
    structlog.contextvars.bind_contextvars(request="team-bound")
    _send_and_dispatch(outbox)
    assert structlog.get_config() == config
    assert structlog.contextvars.get_contextvars() == {"request": "team-bound"}
    (tmp_path / "log").write_text("\n".join(lines))
    assert _trace_problems(tmp_path / "log") == (6, [])
    # and a structlog logger given to the Outbox gets the same lines
    lines.clear()
    box = Outbox(outbox.table, outbox.queue_url, layout=LAYOUT, logger=structlog.get_logger())
    assert box.send("log-3", "z").accepted
    assert sum(json.loads(line)["event"] == "transition" for line in lines) == 3


def _now() -> int:
    return time.time_ns() // 1_000_000


def test_importing_adapters_loads_nothing_until_a_name_is_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, adapters; before = sorted(m for m in sys.modules if m.startswith('adapters.')); "
        "from adapters import Outbox, TableLayout, InvalidMessage; "
        "after = sorted(m for m in sys.modules if m.startswith('adapters.')); "
        "print(before, 'adapters.runtime.outbox' in after); sys.exit(0 if before == [] else 1)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "[] True", result.stdout + result.stderr


def test_a_send_outcome_is_an_enum_that_still_equals_its_string() -> None:
    from adapters import SendOutcome, SendResult

    made = SendResult(False, True, 503, "m-1", "failed", "TransactionFailed")  # as a team's handler does
    assert made.outcome is SendOutcome.FAILED and made.outcome == "failed"
    with pytest.raises(ValueError, match="'lost'"):
        SendResult(False, True, 503, "m-1", "lost")


@pytest.mark.parametrize(
    ("category", "status", "retryable"),
    [("retryable", 503, True), ("ambiguous", 503, True), ("permanent", 500, False)],
)
def test_an_outbox_error_is_retryable_as_its_category_decides(
    category: str, status: int, retryable: bool
) -> None:
    from adapters import OutboxError

    assert OutboxError("x", category=category, code="C", http_status=status).retryable is retryable
