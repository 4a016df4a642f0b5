"""Section 8 of docs/benchmarks.md: what one consumed message costs (`bench/consumer.py`)."""

from __future__ import annotations

from typing import Any

from bench.consumer import FLOWS
from bench.markdown import number, para, table


def render(section: dict[str, Any]) -> list[str]:
    out = ["## 8. What a consumed message costs: the inbox beside Powertools' batch + idempotency", ""]
    measured = section.get("measured")
    out += para(
        [
            "Code: `bench/consumer.py`. Each consumer adds the message's amount to its customer's balance",
            "(an `ADD`), once: sendguard's `Inbox` in transactional mode (the handler returns the update;",
            "the inbox reads its record and commits the update with its own in one `TransactWriteItems`),",
            "in guarded mode (the handler makes the update itself, between the inbox's claim and its",
            "completion), and Powertools' `process_partial_response` with a `BatchProcessor`, each record",
            "through an `@idempotent_function` keyed on the `message_id` attribute (its persistence layer",
            "on a table of its own). One invocation per scenario, one SQS event, on in-process moto, metered",
            "by `bench/meter.py`: requests, write units (a transaction's items at two per KB, as DynamoDB",
            "bills them) and strongly consistent read units, per message.",
            f"Measured by `{measured['command']}` on {measured['date']} at commit `{measured['commit']}`"
            + (", merged into this page's run." if measured.get("merged") else ".")
            if measured
            else "",
        ]
    )
    rows = []
    for row in section["rows"]:
        count = row["messages"]
        for name in FLOWS:
            flow = row["flows"][name]
            calls = ", ".join(f"{op} {n / count:g}" for op, n in flow["calls_by_operation"].items()) or "none"
            rows.append(
                (
                    row["scenario"],
                    name,
                    number(flow["api_calls"] / count),
                    calls,
                    number(flow["wru"] / count),
                    number(flow["rru"] / count),
                    flow["failures"],
                )
            )
    out += table(
        ("Scenario", "Consumer", "Requests", "by operation", "Write units", "Read units", "Failed"), rows
    )
    out += para(
        [
            "What the columns do not say: Powertools' completion and its delete-on-error are",
            "unconditional (a stale invocation can overwrite or delete a record a newer one holds), and",
            "its duplicate is answered by the failed conditional put; the guarded inbox's completion and",
            "release are fenced by the claiming attempt. The transactional inbox pays a read and twice the",
            "write units of its transaction for an effect that commits with its record, or not at all",
            "(docs/inbox.md).",
        ]
    )
    return out
