"""The billing consumer: a team's own Lambda function that consumes the orders service's
`OrderPlaced` events (sent by sendguard's `Outbox`, so each carries its `message_id` attribute) and
applies each one exactly once with sendguard's `Inbox` — in either mode:

* transactional (`billing_function`): each event adds the order's amount to the customer's balance
  and writes a ledger line; both writes are returned to the inbox, which commits them in one
  transaction with its record. A duplicate or concurrent delivery commits nothing more.
* guarded (`payments_function`): each event charges the customer through a payment service outside
  DynamoDB (`PaymentService`, a fake here), with the inbox's idempotency key; the claim keeps two
  invocations from charging at once, the key lets the service drop a repeat after a crash.

The table is the team's `billing`: key `pk`, sort key `sk`; each consumer's inbox records sit beside
the balances under its own prefix, `billing#<message id>` and `payments#<message id>` (docs/inbox.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from adapters import Delivery, Inbox, TableLayout

LAYOUT = TableLayout(partition_key="pk", sort_key="sk")
_state: dict[str, Any] = {}


def apply_order(delivery: Delivery) -> list[dict[str, Any]]:
    """Transactional: the order's effect as TransactWriteItems entries (the handler writes nothing)."""
    order = delivery.json()
    table = os.environ.get("BILLING_TABLE", "billing")
    return [
        {
            "Update": {
                "TableName": table,
                "Key": {"pk": {"S": f"customer#{order['customer']}"}, "sk": {"S": "balance"}},
                "UpdateExpression": "ADD balance :amount, orders :one",
                "ExpressionAttributeValues": {":amount": {"N": str(order["amount"])}, ":one": {"N": "1"}},
            }
        },
        {
            "Put": {
                "TableName": table,
                "Item": {
                    "pk": {"S": f"customer#{order['customer']}"},
                    "sk": {"S": f"ledger#{delivery.key}"},
                    "amount": {"N": str(order["amount"])},
                },
            }
        },
    ]


@attrs.define
class PaymentService:
    """A payment service outside DynamoDB (a fake): it records every charge it is asked for, and,
    like a real one, drops a second charge with an idempotency key it has seen."""

    charges: list[tuple[str, int]] = attrs.field(factory=list)  # (idempotency key, amount), all asked
    seen: dict[str, str] = attrs.field(factory=dict)

    def charge(self, idempotency_key: str, amount: int) -> str:
        self.charges.append((idempotency_key, amount))
        return self.seen.setdefault(idempotency_key, f"ch_{len(self.seen) + 1}")


def charge_order(service: PaymentService) -> Any:
    """Guarded: the handler charges through the service with the inbox's idempotency key and returns
    the charge's id, which the inbox keeps and answers to duplicates."""

    def handler(delivery: Delivery) -> dict[str, str]:
        order = delivery.json()
        return {"charge": service.charge(delivery.idempotency_key, int(order["amount"]))}

    return handler


def inbox(mode: str) -> Inbox:
    """One Inbox per consumer and container. Two consumers of one table keep their records apart by
    their key prefixes: each applies every message once for itself."""
    key = f"inbox-{mode}"
    if key not in _state:
        prefix = "billing#" if mode == "transactional" else "payments#"
        table = os.environ.get("BILLING_TABLE", "billing")
        receives = int(os.environ.get("BILLING_MAX_RECEIVES", "3"))  # below the queue's maxReceiveCount
        _state[key] = Inbox(table, mode=mode, layout=LAYOUT, max_receives=receives, key_prefix=prefix)
    found: Inbox = _state[key]
    return found


def billing_function(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The transactional consumer's Lambda function (ReportBatchItemFailures on its mapping)."""
    return inbox("transactional").handle_batch(event, apply_order, context=context)


def payment_service() -> PaymentService:
    """The payment service the guarded consumer charges through: one per container."""
    service: PaymentService = _state.setdefault("payments", PaymentService())
    return service


def payments_function(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The guarded consumer's Lambda function."""
    return inbox("guarded").handle_batch(event, charge_order(payment_service()), context=context)


def order_body(order_id: str, customer: str = "c-1", amount: int = 12) -> str:
    return json.dumps({"type": "OrderPlaced", "orderId": order_id, "customer": customer, "amount": amount})


def reset() -> None:
    _state.clear()
