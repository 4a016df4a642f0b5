"""Section 5: what one reconciler pass reads with 1k and with 10k confirmed records beside the same
in-flight set — flat, if the sparse index does its job.

For each size, on fresh resources on in-process moto: the in-flight set is made by real submissions
(`IN_FLIGHT` of them crash right after their create landed, so they stay in flight under a lease;
`PENDING` of them meet a throttled send that the SDK gave up on, so they are rolled back to PENDING);
the confirmed records are one real confirmed item (a real submission) copied under new message ids
with BatchWriteItem — the same item shape `adapters.runtime.store` writes, without running the full handler
thousands of times. The in-flight set has the same Idempotency-Keys, so the same message ids and index
shards, at every size. Then one metered pass runs on a clock past every lease and re-drive delay:
queries and items read (the pass's own figures, checked against the meter), read units computed from
the returned items' sizes, and the pass's time, split into its Query calls and the rest. moto answers
an index query by scanning the whole table, so on moto the Query time grows with the table; DynamoDB
reads only the index partition. For scale, what a reconciler without the index would read: a Scan of
every item, its read units computed from the items' sizes.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3

from adapters.runtime.clients import now_ms
from adapters.runtime.config import Config
from adapters.runtime.reconciler import reconcile_pass
from adapters.runtime.runner import Aws
from adapters.testing.injector import Crashed, Fault, FaultInjector, Plan
from bench import awstime, capacity
from bench import flows as bench_flows
from bench.meter import Meter
from bench.moto_env import environment, in_process_aws, provision

IN_FLIGHT = 10
PENDING = 10
BATCH = 25  # BatchWriteItem's limit


def run(
    sizes: tuple[int, ...] = (1_000, 10_000),
    say: Callable[[str], None] = lambda _: None,
    in_flight: int = IN_FLIGHT,
    pending: int = PENDING,
) -> dict[str, Any]:
    rows = []
    with in_process_aws():
        meter, injector = Meter(write_units=False), FaultInjector()
        with meter.installed(), injector.installed(), awstime.installed():
            meter.to_front()
            for size in sizes:
                say(f"reconciler: {size:,} confirmed records + {in_flight} in flight + {pending} pending")
                rows.append(_one(size, in_flight, pending, meter, injector))
    return {"in_flight": in_flight, "pending": pending, "rows": rows}


def _one(
    confirmed: int, in_flight: int, pending: int, meter: Meter, injector: FaultInjector
) -> dict[str, Any]:
    resources = provision("reconcile")
    with environment(bench_flows.sendguard_env(resources)):
        from adapters import aws_lambda

        aws_lambda.reset()
        template = _submit(aws_lambda.submit, "template", None, injector)
        for n in range(in_flight):
            _submit(aws_lambda.submit, f"in-flight-{n}", Plan(Fault.CRASH_AFTER_CALL), injector)
        for n in range(pending):
            _submit(aws_lambda.submit, f"pending-{n}", Plan(Fault.SQS_THROTTLED_SDK_GAVE_UP), injector)
        aws_lambda.reset()
        item_bytes, scan_bytes = _copy(resources.sendguard_table, template, confirmed - 1)
        config = Config.from_env()
        aws = Aws.from_config(config)
        shift = config.settings.lease_margin_ms + bench_flows.INVOCATION_MS + config.settings.redrive_after_ms

        def clock() -> int:
            return now_ms() + shift + 1_000

        with meter.counting() as tally, awstime.timing() as inside:
            started = time.perf_counter()
            summary = reconcile_pass(aws, config, clock() + bench_flows.INVOCATION_MS, clock=clock)
            seconds = time.perf_counter() - started
        items = confirmed + in_flight + pending
        scan_bytes += (in_flight + pending) * item_bytes  # their items are about the confirmed one's size
    query_seconds = inside.by_operation.get("Query", 0.0)
    return {
        "confirmed": confirmed,
        "items_in_table": items,
        "queries": summary.queries,
        "records_read": summary.records_read,
        "query_calls_metered": tally.calls.get("Query", 0),
        "items_read_metered": tally.items_read_by_operation.get("Query", 0),  # index entries
        "records_fetched_metered": tally.items_read_by_operation.get("BatchGetItem", 0),
        "rru": tally.rru,
        "expired": summary.expired,
        "redriven": summary.redriven,
        "pass_ms": round(seconds * 1000, 1),
        "query_ms": round(query_seconds * 1000, 1),
        "rest_ms": round((seconds - query_seconds) * 1000, 1),
        "scan_items": items,
        "scan_rru": capacity.read_units_of_bytes(scan_bytes, consistent=False),
    }


def _submit(
    handler: Callable[..., dict[str, Any]], name: str, plan: Plan | None, injector: FaultInjector
) -> str:
    key = f"reconcile-{name}"
    with injector.armed(plan), contextlib.suppress(Crashed):
        handler(bench_flows.post_event(bench_flows.body(0), key), bench_flows.context())
    return bench_flows.sendguard_message_id(key)


def _copy(table: str, message_id: str, copies: int) -> tuple[int, int]:
    """`copies` copies of a confirmed item, each under a new message id, with BatchWriteItem; returns
    the item's size and the size of all the confirmed items."""
    client: Any = boto3.client("dynamodb")
    key = {"message_id": {"S": message_id}}
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    size = capacity.item_size(item)
    written = 0
    while written < copies:
        batch = min(BATCH, copies - written)
        items = [{**item, "message_id": {"S": str(uuid.uuid4())}} for _ in range(batch)]
        requests = [{"PutRequest": {"Item": copy}} for copy in items]
        pending: dict[str, Any] = {table: requests}
        for _ in range(10):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems", {})
            if not pending:
                break
        written += batch
    return size, size * (copies + 1)
