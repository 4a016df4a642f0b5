"""An Outbox whose layout does not fit its table: DynamoDB refuses its keys (a ValidationException),
and the Outbox says why as a `ConfigError` — the table, the key it has, the key the layout says, and
what to set — instead of a FAILED result with a raw AWS code. The check costs one DescribeTable per
Outbox, made only once DynamoDB refused a key: never at construction nor on the happy path (a cold
start pays for every request, and a sending function needs no `dynamodb:DescribeTable`).

AWS answers the tests need that moto does not give are made by the team's own boto3 Session, passed
to the Outbox (`session=`): a handler on its events answers a call as AWS would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from adapters import (
    ConfigError,
    LayoutMismatch,
    Outbox,
    OutboxError,
    SendOutcome,
    TableLayout,
    ensure_resources,
)
from adapters.runtime.clients import make_client

PAYMENTS = TableLayout(partition_key="tenant", sort_key="paymentId")
THE_TABLE = "table payments has partition key 'tenant' (S) and sort key 'paymentId' (S)"
IN_CODE = (
    f"{THE_TABLE}; the layout says partition key 'message_id' and no sort key: set "
    "partition_key='tenant' and sort_key='paymentId' in the TableLayout"
)


class Answered:
    """A boto3 Session that records the operations its clients call, and answers those named in
    `errors` with that AWS error instead of calling AWS."""

    def __init__(self, errors: dict[str, str] | None = None) -> None:
        self.session = boto3.Session()
        self.calls: list[str] = []
        self.errors = errors or {}
        self.session.events.register("before-call", self._before_call)

    def _before_call(self, model: Any, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        self.calls.append(model.name)
        code = self.errors.get(model.name)
        if code is None:
            return None
        return _Status(400), {"Error": {"Code": code, "Message": f"{code} (answered by the test)"}}


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


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
