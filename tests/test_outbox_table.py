"""An Outbox whose layout does not fit its table: DynamoDB refuses its keys (a ValidationException),
and the Outbox says why as a `LayoutMismatch` (a ConfigError and an OutboxError) — the table, the key
it has, the key the layout says, and what to set — instead of a FAILED result with a raw AWS code.
The check is a DescribeTable made only once DynamoDB refused a key: never at construction nor on the
happy path (a cold start pays for every request, and a sending function needs no
`dynamodb:DescribeTable`); once it answered (or was refused for good) it is not made again, and one
that did not answer (throttled, 5xx, the network, no time left) is made again at the next refusal.

AWS answers the tests need that moto does not give are made by the team's own boto3 Session, passed
to the Outbox (`session=`): a handler on its events answers a call as AWS would."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from adapters import (
    ConfigError,
    LayoutMismatch,
    Outbox,
    OutboxError,
    SendOutcome,
    TableLayout,
    ensure_resources,
)
from adapters.runtime.classify import VALIDATION_EXCEPTION
from adapters.runtime.clients import make_client, now_ms

PAYMENTS = TableLayout(partition_key="tenant", sort_key="paymentId")
THE_TABLE = "table payments has partition key 'tenant' (S) and sort key 'paymentId' (S)"
IN_CODE = (
    f"{THE_TABLE}; the layout says partition key 'message_id' and no sort key: set "
    "partition_key='tenant' and sort_key='paymentId' in the TableLayout"
)


class Answered:
    """A boto3 Session that records the operations its clients call (`calls`) and those that got an
    answer (`answered`: not refused before sending for want of time), and answers those named in
    `errors` with that AWS error — a code (HTTP 400), a (code, HTTP status) pair, or an exception
    raised as botocore would — instead of calling AWS. A call of an operation `hold` names waits,
    once made, until the test lets it go on."""

    def __init__(self, errors: Mapping[str, str | tuple[str, int] | Exception] | None = None) -> None:
        self.session = boto3.Session()
        self.calls: list[str] = []
        self.answered: list[str] = []
        self.errors = dict(errors or {})
        self._held: dict[str, threading.Event] = {}
        self.session.events.register("before-call", self._before_call)
        self.session.events.register("after-call", self._after_call)

    def hold(self, operation: str) -> threading.Event:
        """Calls of `operation` wait until the event returned is set (a safety valve lets them go on
        after HELD_AT_MOST_S, so that a test of a broken Outbox fails rather than hangs)."""
        self._held[operation] = threading.Event()
        return self._held[operation]

    def _before_call(self, model: Any, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        self.calls.append(model.name)
        held = self._held.get(model.name)
        if held is not None:
            held.wait(HELD_AT_MOST_S)
        error = self.errors.get(model.name)
        if error is None:
            return None
        if isinstance(error, Exception):
            raise error
        code, status = (error, 400) if isinstance(error, str) else error
        message = f"{code} (answered by the test)"
        return _Status(status), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    def _after_call(self, model: Any, **_: Any) -> None:
        self.answered.append(model.name)


HELD_AT_MOST_S = 60


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


def until(condition: Callable[[], bool]) -> None:
    """Waits for what another thread does (a minute at most: then the test fails)."""
    for _ in range(6000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("waited a minute")


class Explaining(threading.Thread):
    """`outbox.explain_refusal` of a ValidationException, in a thread of its own; `waits` is set
    when the thread waits on a lock of the Outbox's (seen by a profile function: the C call of a
    lock's `acquire` made from outbox.py or its RefusalCheck's table_check.py)."""

    def __init__(self, outbox: Outbox, deadline_ms: int) -> None:
        super().__init__(daemon=True)
        self.outbox, self.deadline_ms = outbox, deadline_ms
        self.waits = threading.Event()
        self.result: LayoutMismatch | None = None

    def run(self) -> None:
        sys.setprofile(self._profile)
        try:
            self.result = self.outbox.explain_refusal(VALIDATION_EXCEPTION, deadline_ms=self.deadline_ms)
        finally:
            sys.setprofile(None)

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        in_outbox = frame.f_code.co_filename.endswith(("outbox.py", "table_check.py"))
        if event == "c_call" and getattr(arg, "__name__", "") == "acquire" and in_outbox:
            self.waits.set()


@pytest.fixture
def payments(sendguard_aws: None) -> str:
    """The payments team's table, keyed (tenant, paymentId), and its queue."""
    return ensure_resources("payments", "payment-events", layout=PAYMENTS)


def nothing_written(queue_url: str) -> bool:
    items = make_client("dynamodb", 1).scan(TableName="payments")["Count"]
    messages = make_client("sqs", 1).receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    return items == 0 and not messages.get("Messages")


def test_a_layout_that_does_not_fit_is_a_config_error_at_the_first_send(payments: str) -> None:
    answered = Answered()
    outbox = Outbox("payments", payments, session=answered.session)  # the default layout
    assert answered.calls == []  # construction asks AWS nothing
    with pytest.raises(ConfigError) as raised:
        outbox.send("p-1", '{"amount": 10}')
    assert str(raised.value) == IN_CODE
    with pytest.raises(ConfigError, match=r"^table payments has partition key 'tenant'"):
        outbox.send("p-2", '{"amount": 20}')
    assert answered.calls.count("DescribeTable") == 1  # once per Outbox
    assert nothing_written(payments)


@pytest.mark.parametrize(
    "call",
    [lambda outbox: outbox.get("p-1"), lambda outbox: outbox.dispatch("p-1")],
    ids=["get", "dispatch"],
)
def test_get_and_dispatch_say_the_same(payments: str, call: Callable[[Outbox], object]) -> None:
    with pytest.raises(ConfigError) as raised:
        call(Outbox("payments", payments))
    assert str(raised.value) == IN_CODE


@pytest.mark.parametrize(
    "call",
    [
        lambda outbox: outbox.send("p-1", "{}"),
        lambda outbox: outbox.get("p-1"),
        lambda outbox: outbox.dispatch("p-1"),
        lambda outbox: outbox.pending_put("p-1", "x" * 400_000),  # a large body: written apart, first
    ],
    ids=["send", "get", "dispatch", "pending_put"],
)
def test_a_layout_mismatch_is_caught_by_a_callers_except_outbox_error(
    payments: str, call: Callable[[Outbox], object]
) -> None:
    """Callers written before the check (`get` and `pending_put` raised OutboxError, `send` and
    `dispatch` returned a FAILED result) catch OutboxError: the mismatch is one too, permanent (500),
    its code the refusal's, and a ConfigError (what to set)."""
    outbox = Outbox("payments", payments)
    with pytest.raises(OutboxError) as raised:
        call(outbox)
    error = raised.value
    assert isinstance(error, LayoutMismatch) and isinstance(error, ConfigError) and str(error) == IN_CODE
    assert (error.category, error.code, error.http_status, error.retryable) == (
        "permanent",
        "ValidationException",
        500,
        False,
    )
    assert nothing_written(payments)


def test_the_mismatch_is_logged_once_per_outbox(payments: str, capsys: pytest.CaptureFixture[str]) -> None:
    outbox = Outbox("payments", payments)
    for call in (lambda: outbox.send("p-1", "{}"), lambda: outbox.get("p-1"), lambda: outbox.dispatch("p-1")):
        with pytest.raises(LayoutMismatch):
            call()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    problems = [line for line in lines if line["event"] == "config_invalid"]
    assert len(problems) == 1 and (problems[0]["level"], problems[0]["problem"]) == ("error", IN_CODE)


def test_from_the_variables_it_names_the_variables_and_flags(payments: str) -> None:
    env = {"SENDGUARD_TABLE": "payments", "SENDGUARD_QUEUE_URL": payments, "SENDGUARD_METRICS": "off"}
    with pytest.raises(ConfigError) as raised:
        Outbox.from_env(env).send("p-1", "{}")
    assert str(raised.value).endswith(
        "set SENDGUARD_PARTITION_KEY=tenant (--partition-key) and SENDGUARD_SORT_KEY=paymentId (--sort-key)"
    )


def test_a_layout_that_fits_never_asks_for_the_table(payments: str) -> None:
    answered = Answered()
    outbox = Outbox("payments", payments, layout=PAYMENTS, session=answered.session)
    assert outbox.send(("acme", "p-1"), "{}").accepted
    assert outbox.get(("acme", "p-1")) is not None
    assert "DescribeTable" not in answered.calls and "UpdateItem" in answered.calls


def test_a_refusal_the_table_does_not_explain_is_answered_as_it_came(payments: str) -> None:
    """The layout fits: the ValidationException has another cause, and stays a FAILED result."""
    answered = Answered({"UpdateItem": "ValidationException"})
    outbox = Outbox("payments", payments, layout=PAYMENTS, session=answered.session)
    for n in (1, 2):
        result = outbox.send(("acme", f"p-{n}"), "{}")
        assert (result.outcome, result.error_code) == (SendOutcome.FAILED, "ValidationException")
    assert answered.calls.count("DescribeTable") == 1  # it fits: not asked again


def test_a_table_that_cannot_be_described_leaves_the_refusal_as_it_came(payments: str) -> None:
    """A sending role without dynamodb:DescribeTable: the refusal is answered as before, and the
    check is not tried again."""
    answered = Answered({"DescribeTable": "AccessDeniedException"})
    outbox = Outbox("payments", payments, session=answered.session)
    for key in ("p-1", "p-2"):
        result = outbox.send(key, "{}")
        assert (result.outcome, result.error_code) == (SendOutcome.FAILED, "ValidationException")
    assert answered.calls.count("DescribeTable") == 1


def test_get_on_a_missing_table_names_the_table_and_the_aws_error(sendguard_aws: None) -> None:
    queue_url = ensure_resources("orders", "order-events")
    with pytest.raises(OutboxError) as raised:
        Outbox("ordres", queue_url).get("o-1")
    message = str(raised.value)
    assert message == "record 'o-1' cannot be read from table ordres: ResourceNotFoundException (permanent)"
    assert (raised.value.code, raised.value.retryable) == ("ResourceNotFoundException", False)


# ---- threads and deadlines -----------------------------------------------------------------------


def test_threads_sharing_an_outbox_describe_the_table_once(payments: str) -> None:
    """The second thread comes while the first is describing the table: it waits for that answer
    (its deadline is far) instead of asking again."""
    answered = Answered()
    release = answered.hold("DescribeTable")
    outbox = Outbox("payments", payments, session=answered.session)
    first, second = Explaining(outbox, now_ms() + 60_000), Explaining(outbox, now_ms() + 60_000)
    first.start()
    until(lambda: answered.calls.count("DescribeTable") == 1)
    second.start()
    until(lambda: second.waits.is_set() or answered.calls.count("DescribeTable") == 2)
    release.set()
    first.join()
    second.join()
    assert answered.calls.count("DescribeTable") == 1
    assert str(first.result) == str(second.result) == IN_CODE


def test_a_call_waits_for_another_threads_check_no_longer_than_its_own_deadline(payments: str) -> None:
    """While one thread describes the table (and DescribeTable stalls), a call whose deadline comes
    first answers the refusal as it came, at its deadline; the other thread's answer, once it has
    one, is every later call's."""
    answered = Answered()
    release = answered.hold("DescribeTable")
    outbox = Outbox("payments", payments, session=answered.session)
    first = Explaining(outbox, now_ms() + 60_000)
    first.start()
    until(lambda: answered.calls.count("DescribeTable") == 1)
    assert outbox.explain_refusal(VALIDATION_EXCEPTION, deadline_ms=now_ms() + 200) is None
    assert first.is_alive()  # still describing the table: the call above did not wait for it
    release.set()
    first.join()
    assert str(first.result) == IN_CODE
    later = outbox.explain_refusal(VALIDATION_EXCEPTION, deadline_ms=now_ms() + 60_000)
    assert str(later) == IN_CODE and answered.calls.count("DescribeTable") == 1


def test_a_check_with_no_time_left_asks_nothing_and_the_next_refusal_asks(payments: str) -> None:
    answered = Answered()
    outbox = Outbox("payments", payments, session=answered.session)
    assert outbox.explain_refusal(VALIDATION_EXCEPTION, deadline_ms=now_ms() - 1) is None
    assert answered.answered.count("DescribeTable") == 0
    mismatch = outbox.explain_refusal(VALIDATION_EXCEPTION, deadline_ms=now_ms() + 60_000)
    assert str(mismatch) == IN_CODE and answered.answered.count("DescribeTable") == 1


@pytest.mark.parametrize(
    "failure",
    [
        ("ThrottlingException", 400),
        ("InternalServerError", 500),
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
    ids=["throttled", "500", "network"],
)
def test_a_passing_failure_of_describe_table_is_not_kept_the_next_refusal_asks(
    payments: str, failure: tuple[str, int] | Exception
) -> None:
    """A throttled, failed (5xx) or unreachable DescribeTable says nothing of the layout: that
    refusal is answered as it came, and the next one asks again."""
    answered = Answered({"DescribeTable": failure})
    outbox = Outbox("payments", payments, session=answered.session)
    result = outbox.send("p-1", "{}")
    assert (result.outcome, result.error_code) == (SendOutcome.FAILED, "ValidationException")
    del answered.errors["DescribeTable"]  # AWS answers again
    with pytest.raises(LayoutMismatch, match=r"^table payments has partition key 'tenant'"):
        outbox.send("p-2", "{}")
    assert answered.calls.count("DescribeTable") == 2
    assert nothing_written(payments)


# ---- reconcile on a table without the index ------------------------------------------------------

NO_INDEX = (
    "table plain has no index 'attention', which the reconciler, status and redrive query: add it, keys "
    'sg_attention (S, HASH) and sg_attention_at (N, RANGE) (docs/library.md, "What the reconciler needs '
    'on an existing table"); ensure_resources and `sendguard provision` create a table with it'
)


@pytest.fixture
def plain(sendguard_aws: None) -> str:
    """A table keyed as sendguard's (message_id) but made without the `attention` index, and a queue."""
    make_client("dynamodb", 1).create_table(
        TableName="plain",
        KeySchema=[{"AttributeName": "message_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "message_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return str(make_client("sqs", 1).create_queue(QueueName="plain-events")["QueueUrl"])


def test_reconcile_on_a_table_without_the_index_is_a_config_error_saying_how_to_add_it(plain: str) -> None:
    """DynamoDB refuses the due index's query (a ValidationException: no such index): the pass
    raises what is missing and how to add it, rather than a summary of failed queries that reads
    like a quiet table; the Outbox's sends still work, and the check is asked once."""
    answered = Answered()
    outbox = Outbox("plain", plain, session=answered.session)
    assert outbox.send("o-1", "{}").accepted  # the layout fits the table's key
    assert "DescribeTable" not in answered.calls
    for _ in (1, 2):
        with pytest.raises(ConfigError) as raised:
            outbox.reconcile(deadline_ms=now_ms() + 60_000)
        assert str(raised.value) == NO_INDEX
        assert isinstance(raised.value, LayoutMismatch)  # an OutboxError too, for a caller's except
    assert answered.calls.count("DescribeTable") == 1 and answered.calls.count("Query") == 2


def test_reconcile_on_a_table_with_the_index_asks_nothing_of_the_table(payments: str) -> None:
    answered = Answered()
    outbox = Outbox("payments", payments, layout=PAYMENTS, session=answered.session)
    summary = outbox.reconcile(deadline_ms=now_ms() + 60_000)
    assert summary.failed_queries == 0 and summary.queries == 8
    assert "DescribeTable" not in answered.calls


def test_a_refused_due_query_the_table_does_not_explain_stays_a_failed_query(payments: str) -> None:
    """The index is there and fits: the ValidationException has another cause; the pass counts its
    failed queries as before (and its metric tells), and the check is asked once."""
    answered = Answered({"Query": "ValidationException"})
    outbox = Outbox("payments", payments, layout=PAYMENTS, session=answered.session)
    summary = outbox.reconcile(deadline_ms=now_ms() + 60_000)
    assert summary.failed_queries == 8 and summary.queries == 0
    assert answered.calls.count("DescribeTable") == 1


def test_reconcile_on_a_missing_table_names_the_table_and_the_region(plain: str) -> None:
    """A table that does not exist refuses the index's query too (ResourceNotFoundException): the
    same check says so, rather than a pass that read nothing."""
    with pytest.raises(ConfigError) as raised:
        Outbox("plian", plain).reconcile(deadline_ms=now_ms() + 60_000)
    assert (
        str(raised.value) == "table plian does not exist in us-east-1: check the table's name and the region"
    )
