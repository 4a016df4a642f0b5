"""The orders example on moto: both routes, idempotent retries, a crash between the transaction and
`dispatch`, a failing send, and the team's attributes byte for byte after every step."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import time_machine
from botocore.exceptions import ClientError

from adapters import ensure_resources
from adapters.testing import Fault, FaultInjector, Plan
from examples.orders import handler as orders

TABLE, QUEUE = "orders", "order-events"


class Context:
    def __init__(self, remaining_ms: int = 3_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def service(sendguard_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    queue_url = ensure_resources(TABLE, QUEUE, layout=orders.LAYOUT)
    monkeypatch.setenv("ORDERS_TABLE", TABLE)
    monkeypatch.setenv("ORDERS_QUEUE_URL", queue_url)
    orders.reset()
    yield queue_url
    orders.reset()


def call(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    event = {
        "version": "2.0",
        "rawPath": path,
        "headers": {"x-correlation-id": "req-1"},
        "requestContext": {"http": {"method": method, "path": path}},
        "body": None if body is None else json.dumps(body),
    }
    answer = orders.handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])


def team_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """The order's own attributes of an item: what sendguard's layout does not own."""
    return {name: value for name, value in item.items() if not orders.LAYOUT.owns(name)}


def dynamodb() -> Any:
    return boto3.client("dynamodb")


def items() -> dict[tuple[str, str], dict[str, Any]]:
    found = dynamodb().scan(TableName=TABLE)["Items"]
    return {(i["orderId"]["S"], i["kind"]["S"]): i for i in found}


def messages(queue_url: str) -> list[dict[str, Any]]:
    sqs: Any = boto3.client("sqs")
    answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    got: list[dict[str, Any]] = answer.get("Messages", [])
    return got


ORDER = {"orderId": "o-4711", "customer": "c-1", "amount": 12}


def test_send_creates_the_order_item_and_sends_its_event(service: str) -> None:
    assert call("POST", "/orders", ORDER) == (202, {"orderId": "o-4711", "messageId": "o-4711"})
    item = items()[("o-4711", "order")]
    assert item["customer"] == {"S": "c-1"} and item["amount"] == {"N": "12"}
    assert item["outboxStatus"] == {"S": "QUEUED"}
    (message,) = messages(service)
    assert json.loads(message["Body"]) == {"type": "OrderPlaced", **ORDER}
    assert message["MessageAttributes"]["message_id"]["StringValue"] == "o-4711"
    assert call("GET", "/orders/o-4711") == (
        200,
        {"orderId": "o-4711", "status": "QUEUED", "delivery": "confirmed"},
    )


def test_a_retry_sends_nothing_and_another_order_with_the_same_id_conflicts(service: str) -> None:
    assert call("POST", "/orders", ORDER)[0] == 202
    assert call("POST", "/orders", ORDER)[0] == 202
    assert call("POST", "/orders", {**ORDER, "amount": 13})[0] == 409
    assert len(messages(service)) == 1


def test_the_invoiced_route_commits_order_and_invoice_together(service: str) -> None:
    assert call("POST", "/orders/invoiced", ORDER) == (202, {"orderId": "o-4711", "messageId": "o-4711"})
    stored = items()
    assert stored[("o-4711", "invoice")]["amount"] == {"N": "12"}
    assert stored[("o-4711", "order")]["outboxStatus"] == {"S": "QUEUED"}
    (message,) = messages(service)
    assert json.loads(message["Body"])["type"] == "OrderPlaced"
    assert call("POST", "/orders/invoiced", ORDER)[0] == 202  # the retry: already sent
    assert messages(service) == []
    assert call("POST", "/orders/invoiced", {**ORDER, "amount": 13})[0] == 409  # as on /orders
    assert messages(service) == [] and items()[("o-4711", "invoice")]["amount"] == {"N": "12"}


def test_a_failed_transaction_writes_and_sends_nothing(service: str) -> None:
    dynamodb().put_item(
        TableName=TABLE, Item={"orderId": {"S": "o-4711"}, "kind": {"S": "invoice"}, "amount": {"N": "1"}}
    )
    box = orders.outbox()
    put = box.pending_put("o-4711", "{}", item={"customer": "c-1"})
    invoice = {
        "Put": {
            "TableName": TABLE,
            "Item": {"orderId": {"S": "o-4711"}, "kind": {"S": "invoice"}},
            "ConditionExpression": "attribute_not_exists(orderId)",
        }
    }
    with pytest.raises(ClientError, match="TransactionCanceled") as cancelled:
        dynamodb().transact_write_items(TransactItems=[put, invoice])
    assert not box.record_exists(cancelled.value, put)  # the invoice's condition, not the order's
    assert set(items()) == {("o-4711", "invoice")} and messages(service) == []
    assert box.get("o-4711") is None


def test_a_crash_before_dispatch_is_sent_by_the_reconciler(service: str) -> None:
    box = orders.outbox()
    put = box.pending_put("o-1", '{"type": "OrderPlaced"}', item={"customer": "c-9", "amount": 3})
    dynamodb().transact_write_items(TransactItems=[put])  # then the function dies
    before = team_attributes(items()[("o-1", "order")])
    assert before == {"customer": {"S": "c-9"}, "amount": {"N": "3"}}
    view = box.get("o-1")
    assert view is not None and (view.status, view.delivery, view.attempts) == ("PENDING", "pending", 0)
    assert box.reconcile(deadline_ms=_now() + 10_000).redriven == 0  # not due yet
    with time_machine.travel(_now() / 1000 + 61, tick=True):
        summary = orders.reconcile({}, Context(30_000))
    assert summary["redriven"] == 1
    (message,) = messages(service)
    assert message["Body"] == '{"type": "OrderPlaced"}'
    after = team_attributes(items()[("o-1", "order")])
    assert after == before


def test_a_failing_send_leaves_the_order_pending_for_the_reconciler(service: str) -> None:
    # sendguard's fault injector (docs/fault-injection.md) throttles the handler's first SendMessage,
    # past the SDK's retries, as SQS would: no client of the handler's is touched.
    injector = FaultInjector()
    with injector.installed(), injector.armed(Plan(Fault.SQS_THROTTLED_SDK_GAVE_UP)):
        status, _ = call("POST", "/orders", ORDER)
    assert status == 503
    assert [fired.fault for fired in injector.fired] == [Fault.SQS_THROTTLED_SDK_GAVE_UP]
    item = items()[("o-4711", "order")]
    assert item["outboxStatus"] == {"S": "PENDING"}
    assert team_attributes(item) == {"customer": {"S": "c-1"}, "amount": {"N": "12"}}
    assert call("POST", "/orders", ORDER)[0] == 202  # the retry sends it
    assert len(messages(service)) == 1


@pytest.mark.parametrize("path", ["/orders", "/orders/o-4711"])
def test_a_table_the_layout_does_not_fit_is_a_500_not_a_crash(
    service: str, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """The Outbox raises a LayoutMismatch, an OutboxError the handler answers: nothing written. (The
    invoiced route's own transaction is refused by DynamoDB first: the team's 503.)"""
    ensure_resources("sendguard", QUEUE)  # sendguard's own layout: key message_id, no sort key
    monkeypatch.setenv("ORDERS_TABLE", "sendguard")
    orders.reset()
    status, body = call("GET" if path.startswith("/orders/o") else "POST", path, ORDER)
    assert status == 500 and "error" in body
    assert dynamodb().scan(TableName="sendguard")["Items"] == [] and messages(service) == []


def test_bad_input_is_a_400_and_writes_nothing(service: str) -> None:
    assert call("POST", "/orders", {"orderId": "bad id", "customer": "c", "amount": 1})[0] == 400
    assert call("POST", "/orders", {"orderId": "o", "customer": "c"})[0] == 400
    assert items() == {}


def _now() -> int:
    return time.time_ns() // 1_000_000
