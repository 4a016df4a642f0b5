"""The billing consumer under sendguard's consumer suite, in both modes and on a FIFO queue — the
complete example of docs/inbox.md's "Testing your consumer" — and end to end behind the orders
service's outbox."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from adapters import Inbox, Outbox
from adapters.ops.provision import ensure_resources
from adapters.testing.inbox_events import from_received
from adapters.testing.inbox_suite import Consumer, InboxSuite, run_inbox_suite
from examples.orders import consumer
from examples.orders.consumer import LAYOUT, PaymentService, apply_order, charge_order, order_body


def orders_applied(key: str) -> int:
    """How many times the order with this key was applied: the `orders` count of its customer (each
    suite message is its own customer)."""
    item = (
        boto3.client("dynamodb")
        .get_item(
            TableName="billing",
            Key={"pk": {"S": f"customer#{key}"}, "sk": {"S": "balance"}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return int(item["orders"]["N"]) if item else 0


class BillingSuite(InboxSuite):
    """The transactional consumer: the balance and the ledger line commit with the inbox's record."""

    def make_consumer(self) -> Consumer:
        ensure_resources("billing", "billing-events", layout=LAYOUT)
        inbox = Inbox("billing", layout=LAYOUT, max_receives=3)
        return Consumer(inbox, apply_order, orders_applied)

    def message_body(self, key: str) -> str:
        return order_body(key, customer=key, amount=5)


class BillingFifoSuite(BillingSuite):
    fifo = True


class PaymentsSuite(InboxSuite):
    """The guarded consumer: a charge through a service outside DynamoDB."""

    def make_consumer(self) -> Consumer:
        ensure_resources("billing", "billing-events", layout=LAYOUT)
        self.service = PaymentService()
        inbox = Inbox("billing", mode="guarded", layout=LAYOUT, max_receives=3)

        def charges(key: str) -> int:
            return sum(1 for asked, _ in self.service.charges if asked == key)

        return Consumer(inbox, charge_order(self.service), charges)

    def message_body(self, key: str) -> str:
        return order_body(key, customer=key, amount=5)


@pytest.mark.parametrize("suite", [BillingSuite, BillingFifoSuite, PaymentsSuite], ids=lambda s: s.__name__)
def test_the_consumer_suite_passes(sendguard_aws: None, suite: type[InboxSuite]) -> None:
    run_inbox_suite(suite)


def test_orders_sent_by_the_outbox_are_billed_once(sendguard_aws: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("BILLING_TABLE", "billing")
    consumer.reset()
    ensure_resources("billing", "billing-events", layout=LAYOUT)
    queue_url = ensure_resources("orders", "order-events")
    outbox = Outbox("orders", queue_url)
    for order in ("o-1", "o-2"):
        assert outbox.send(order, order_body(order, amount=7)).accepted
    assert outbox.send("o-1", order_body("o-1", amount=7)).outcome == "already_queued"
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    event = {"Records": [from_received(m) for m in messages] * 2}  # every message delivered twice
    assert consumer.billing_function(event, None) == {"batchItemFailures": []}
    assert consumer.payments_function(event, None) == {"batchItemFailures": []}
    balance = boto3.client("dynamodb").get_item(
        TableName="billing", Key={"pk": {"S": "customer#c-1"}, "sk": {"S": "balance"}}
    )["Item"]
    assert (balance["balance"]["N"], balance["orders"]["N"]) == ("14", "2")
    assert [key for key, _ in consumer.payment_service().charges] == ["o-1", "o-2"]
