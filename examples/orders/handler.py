"""The orders service: a team's own Lambda handler that keeps `orders` items and sends order events
through sendguard's `Outbox` — sendguard embedded, not sendguard's handler.

The table is the team's: key `orderId`, sort key `kind` (the order itself is `kind = "order"`, its
invoice `kind = "invoice"`), the outbox status in `outboxStatus`, the event as sent in `event`, and the
order's own attributes (`customer`, `amount`) beside sendguard's `sg_` bookkeeping.

Routes (API Gateway HTTP API, payload format 2.0):

* `POST /orders` — `{"orderId", "customer", "amount"}`: `Outbox.send` creates the order item and
  sends `OrderPlaced` in one go.
* `POST /orders/invoiced` — the same body: the order (`Outbox.pending_put`) and its invoice item are
  written in one DynamoDB transaction, then `Outbox.dispatch` sends `OrderPlaced`. If the function
  dies between the two, the reconciler sends it.
* `GET /orders/{orderId}` — the order's delivery state (`Outbox.get`).

The answers follow sendguard's results: 202 once SQS has the event, 409 for an order id reused with
other contents, 503 with Retry-After when a retry may help, 500 when it cannot, 400 for bad input.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from adapters import InvalidMessage, Outbox, OutboxError, SendOutcome, SendResult, TableLayout

LAYOUT = TableLayout(
    partition_key="orderId",
    sort_key="kind",
    sort_key_value="order",
    status_attribute="outboxStatus",
    body_attribute="event",
)

_state: dict[str, Any] = {}


def outbox() -> Outbox:
    """One Outbox per container (it holds sendguard's boto3 clients)."""
    if "outbox" not in _state:
        _state["outbox"] = Outbox(os.environ["ORDERS_TABLE"], os.environ["ORDERS_QUEUE_URL"], layout=LAYOUT)
    found: Outbox = _state["outbox"]
    return found


def dynamodb() -> Any:
    """The team's own DynamoDB client, for its own writes (the transaction)."""
    if "dynamodb" not in _state:
        _state["dynamodb"] = boto3.client("dynamodb")
    return _state["dynamodb"]


def reset() -> None:
    """Forget the Outbox and clients (the tests change the environment between runs)."""
    _state.clear()


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    http = (event.get("requestContext") or {}).get("http") or {}
    method, path = http.get("method", ""), event.get("rawPath", "")
    correlation_id = (event.get("headers") or {}).get("x-correlation-id")
    try:
        if method == "POST" and path in ("/orders", "/orders/invoiced"):
            order = _order(event.get("body"))
            place = _place if path == "/orders" else _place_invoiced
            try:
                result = place(order, correlation_id, context)
            except OutboxError as exc:  # a large body's write failed, or the layout does not fit the table
                result = _failed(exc, order["orderId"])
            return _answer(result, order["orderId"])
        if method == "GET" and path.startswith("/orders/"):
            return _status(path.removeprefix("/orders/"))
    except InvalidMessage as exc:
        return _json(400, {"error": str(exc)})
    return _json(404, {"error": "no such route"})


def reconcile(event: object, context: object = None) -> dict[str, Any]:
    """The scheduled reconciler of the orders table (what sendguard needs to find lost sends)."""
    return outbox().reconcile(context=context).as_dict()


def _order(body: object) -> dict[str, Any]:
    try:
        order = json.loads(body if isinstance(body, str) else "", parse_float=Decimal)
    except ValueError:
        raise InvalidMessage("the body must be JSON") from None
    if not isinstance(order, dict) or set(order) != {"orderId", "customer", "amount"}:
        raise InvalidMessage("the body must be {'orderId', 'customer', 'amount'}")
    if not isinstance(order["amount"], int | Decimal) or not isinstance(order["customer"], str):
        raise InvalidMessage("'customer' must be a string and 'amount' a number")
    return order


def _event(order: dict[str, Any]) -> str:
    """The team's own serialization: the same order always gives the same event text."""
    return json.dumps({"type": "OrderPlaced", **order}, sort_keys=True, default=str)


def _place(order: dict[str, Any], correlation_id: str | None, context: object) -> SendResult:
    return outbox().send(
        order["orderId"],
        _event(order),
        attributes={"type": "OrderPlaced"},
        item={"customer": order["customer"], "amount": order["amount"]},
        correlation_id=correlation_id,
        context=context,
    )


def _place_invoiced(order: dict[str, Any], correlation_id: str | None, context: object) -> SendResult:
    box = outbox()
    record = box.pending_put(
        order["orderId"],
        _event(order),
        attributes={"type": "OrderPlaced"},
        item={"customer": order["customer"], "amount": order["amount"]},
        correlation_id=correlation_id,
    )
    invoice = {
        "Put": {
            "TableName": os.environ["ORDERS_TABLE"],
            "Item": {
                "orderId": {"S": order["orderId"]},
                "kind": {"S": "invoice"},
                "amount": {"N": str(order["amount"])},
            },
            "ConditionExpression": "attribute_not_exists(orderId)",
        }
    }
    try:
        dynamodb().transact_write_items(TransactItems=[record, invoice])
    except ClientError as exc:
        if not box.record_exists(exc, record):
            return _unavailable(order["orderId"])
        # The order exists already (a retry of this order id): dispatch judges it as `send` would —
        # the same order is sent if still pending and answered 202 at once if SQS has it; another
        # order under this id is a conflict (409).
    except BotoCoreError:
        return _unavailable(order["orderId"])
    return box.dispatch(record, context=context)


def _failed(exc: OutboxError, order_id: str) -> SendResult:
    """What `pending_put` raises when the body it writes apart cannot be written, and every call when
    the layout does not fit the table (a LayoutMismatch: permanent, 500), answered as a failed send."""
    return SendResult(False, exc.retryable, exc.http_status, order_id, SendOutcome.FAILED, exc.code)


def _unavailable(order_id: str) -> SendResult:
    return SendResult(False, True, 503, order_id, SendOutcome.FAILED, "TransactionFailed")


def _status(order_id: str) -> dict[str, Any]:
    try:
        view = outbox().get(order_id)
    except OutboxError as exc:
        return _json(exc.http_status, {"error": "the order cannot be read now"})
    if view is None:
        return _json(404, {"error": "no such order"})
    return _json(200, {"orderId": order_id, "status": view.status, "delivery": view.delivery})


def _answer(result: SendResult, order_id: str) -> dict[str, Any]:
    if result.accepted:
        return _json(202, {"orderId": order_id, "messageId": result.message_id})
    if result.outcome is SendOutcome.CONFLICT:
        return _json(409, {"error": "this order id was used for another order"})
    headers = {"Retry-After": "2"} if result.retryable else {}
    return _json(result.http_status, {"error": "the order could not be placed now"}, headers)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body),
    }


__all__ = ["LAYOUT", "handler", "outbox", "reconcile", "reset"]
