"""Section 8: what one consumed message costs — AWS requests, read and write units — for sendguard's
`Inbox` in both modes, beside Powertools' batch utility with its idempotency utility doing the same
work: each message adds its amount to its customer's balance (an `ADD`), once.

* inbox, transactional: the handler returns the `Update`; the inbox reads its record and commits the
  update in one `TransactWriteItems` with its own record;
* inbox, guarded: the handler makes the update itself (an effect the inbox does not commit), between
  the inbox's claim and completion;
* Powertools: `process_partial_response` with a `BatchProcessor`, each record through an
  `@idempotent_function` keyed on the message's `message_id` attribute (its DynamoDB persistence
  layer on a table of its own, keyed `id`), which makes the same update.

Each scenario is one invocation with one SQS event, on in-process moto, metered by `bench.meter`
(requests by operation, attempts, write units — a transaction's at two per KB — and strongly
consistent read units), on fresh messages: a new message; the same message delivered again once it
is done (a duplicate); a batch of ten new messages (per message).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import make_client
from adapters.runtime.inbox import Delivery, Inbox
from adapters.runtime.layout import TableLayout
from adapters.testing.inbox_events import sqs_event, sqs_record
from bench.flows import context
from bench.meter import Meter
from bench.moto_env import in_process_aws

TRANSACTIONAL, GUARDED, POWERTOOLS = "inbox transactional", "inbox guarded", "powertools batch+idempotency"
FLOWS = (TRANSACTIONAL, GUARDED, POWERTOOLS)
LAYOUT = TableLayout(partition_key="pk", sort_key="sk")
BATCH = 10
Function = Callable[[Mapping[str, Any], Any], Any]


def _update(table: str, customer: str, amount: int) -> dict[str, Any]:
    return {
        "TableName": table,
        "Key": {"pk": {"S": f"customer#{customer}"}, "sk": {"S": "balance"}},
        "UpdateExpression": "ADD balance :amount",
        "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
    }


def functions(table: str, idempotency_table: str) -> dict[str, Function]:
    """The three consumers' Lambda functions, with fresh clients (made after the meter is in)."""
    client = make_client("dynamodb", 3)

    def bill(delivery: Delivery) -> list[dict[str, Any]]:
        order = delivery.json()
        return [{"Update": _update(table, order["customer"], order["amount"])}]

    def charge(delivery: Delivery) -> str:
        order = delivery.json()
        client.update_item(**_update(table, order["customer"], order["amount"]))
        return "ok"

    transactional = Inbox(table, layout=LAYOUT, key_prefix="billing#")
    guarded = Inbox(table, mode="guarded", layout=LAYOUT, key_prefix="charges#")
    return {
        TRANSACTIONAL: transactional.lambda_handler(bill),
        GUARDED: guarded.lambda_handler(charge),
        POWERTOOLS: _powertools(table, idempotency_table, client),
    }


def _powertools(table: str, idempotency_table: str, client: Any) -> Function:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    store = DynamoDBPersistenceLayer(table_name=idempotency_table, boto3_client=make_client("dynamodb", 3))
    config = IdempotencyConfig(event_key_jmespath="messageAttributes.message_id.stringValue")
    processor = BatchProcessor(event_type=EventType.SQS)

    @idempotent_function(data_keyword_argument="record", persistence_store=store, config=config)  # type: ignore[untyped-decorator]
    def apply(record: dict[str, Any]) -> dict[str, bool]:
        order = json.loads(record["body"])
        client.update_item(**_update(table, order["customer"], order["amount"]))
        return {"ok": True}

    def record_handler(record: SQSRecord) -> Any:
        return apply(record=record.raw_event)

    def function(event: Mapping[str, Any], lambda_context: Any) -> Any:
        config.register_lambda_context(lambda_context)
        return process_partial_response(
            event=dict(event), record_handler=record_handler, processor=processor, context=lambda_context
        )

    return function


def _records(count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        key = f"order-{uuid.uuid4().hex[:12]}"
        body = json.dumps({"type": "OrderPlaced", "customer": key, "amount": 12})
        out.append(sqs_record(body, key=key))
    return out


def run(quick: bool = False, say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with in_process_aws():
        meter = Meter()
        with meter.installed():
            boto3.DEFAULT_SESSION = None
            try:
                suffix = uuid.uuid4().hex[:8]
                table, idempotency = f"bench-billing-{suffix}", f"bench-idem-{suffix}"
                ensure_resources(table, f"bench-billing-{suffix}", layout=LAYOUT)
                boto3.client("dynamodb").create_table(
                    TableName=idempotency,
                    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
                by_name = functions(table, idempotency)
                for label, count, again in (
                    ("a new message", 1, False),
                    ("the same message again, once done", 1, True),
                    (f"a batch of {BATCH} new messages (per message)", 1 if quick else BATCH, False),
                ):
                    say(f"consumer: {label}")
                    row: dict[str, Any] = {"scenario": label, "messages": count, "flows": {}}
                    for name in FLOWS:
                        records = _records(count)
                        if again:
                            by_name[name](sqs_event(*records), context())
                        with meter.counting() as tally:
                            answer = by_name[name](sqs_event(*records), context())
                        failures = len((answer or {}).get("batchItemFailures", []))
                        row["flows"][name] = {"failures": failures, **tally.as_dict()}
                    rows.append(row)
            finally:
                boto3.DEFAULT_SESSION = None
    return {"rows": rows, "batch": BATCH}
