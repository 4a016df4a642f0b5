"""docs/benchmarks.md, section 7: draining a backlog — the measured pass against the submit path, and
what the measured requests per record mean for a million records on AWS (derived, with the limits
named)."""

from __future__ import annotations

import math
from typing import Any

from bench.markdown import para, table

AWS_LATENCY_MS = 10  # a DynamoDB or SQS request from a Lambda in the same region (the figure)
PASS_SECONDS = 55  # the reconciler's 60 s timeout less the pass's stopping margin (one attempt's 4 s)
PASSES_PER_MINUTE = 1  # the template's schedule, reserved concurrency 1
PARTITION_WRU_PER_S = 1_000  # DynamoDB's limit per partition key value, on an index as on a table
INDEX_SHARDS = 4  # the default `SENDGUARD_INDEX_SHARDS`
BACKLOG = 1_000_000
MAX_WORKERS = 10
OLD_REQUESTS = 3  # claim, SendMessage, confirm: the one-record-at-a-time pass

METHOD = """\
Code: `bench/drain.py`. In one run on in-process moto, each on fresh resources: the **submit rate** is
{records} happy-path submissions through `adapters.aws_lambda.submit`, one after another (one client,
as one Lambda container serves them); the **re-drive rate** is one reconciler pass over {records}
PENDING records on a clock past the re-drive delay, with 1, 2 and 4 workers
(`SENDGUARD_RECONCILER_WORKERS`); the pass must re-drive every record (checked). The backlog is one
real submission whose send met a throttled SQS that the SDK gave up on, copied under new message ids
(BatchWriteItem, each copy in its id's index shard), so that building it does not cost a submission
a record. Requests are API calls counted on every thread. Each is measured on moto as it answers and
with every HTTP attempt held {latency} ms more before it leaves (a `before-send` sleep ahead of moto's
handler, which releases the interpreter lock), about what a request waits on AWS. moto applies one
request at a time (`adapters.testing.serial_moto`: its requests are not atomic, as DynamoDB's and
SQS's are), EMF metrics are off on both sides."""


def render(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    out = ["## 7. Draining a backlog", ""]
    for latency in sorted({r["latency_ms"] for r in rows}):
        these = [r for r in rows if r["latency_ms"] == latency]
        if latency == 0:
            out += para([METHOD.format(records=these[0]["records"], latency=section["latency_ms"])])
        label = f"+{latency} ms a request" if latency else "moto as it answers"
        out += [f"**{label}**", ""]
        out += table(
            (
                "Workers",
                "Records",
                "Pass s",
                "Re-drive records/s",
                "Submit records/s",
                "Ratio",
                "Requests a record",
                "Calls",
            ),
            [
                (
                    r["workers"],
                    r["records"],
                    r["pass_s"],
                    r["redrive_per_s"],
                    r["submit_per_s"],
                    f"{r['ratio']}×",
                    r["requests_per_record"],
                    ", ".join(f"{op} {n}" for op, n in r["calls"].items()),
                )
                for r in these
            ],
        )
    out += _on_moto(rows)
    out += _derivation(rows)
    return out


def _on_moto(rows: list[dict[str, Any]]) -> list[str]:
    """What the ratio measured on moto means: moto's CPU time per request, not the network."""
    row = next(r for r in rows if r["latency_ms"] == 0 and r["workers"] == 1)
    per_request_pass = 1000 * row["pass_s"] / (row["records"] * row["requests_per_record"])
    per_request_submit = 1000 / (row["submit_per_s"] * 3)
    return para(
        [
            "**What the ratio on moto means.** In-process moto spends CPU on every request (it parses",
            "each UpdateItem's expressions and keeps the index by scanning), and the pass and the",
            "submissions run in one Python process, one request at a time: here a pass's request took",
            f"about {per_request_pass:.0f} ms and a submission's about {per_request_submit:.0f} ms,",
            "whatever the workers. A pass's requests cost moto more: nearly all are the claims and",
            "confirms of records that already carry a failed attempt's history (moto copies the whole",
            "item on every write, and a batch read copies every item it returns), where a submission's",
            "create writes a fresh one. So on moto the ratio is at most the submit path's 3 requests a",
            f"message over the pass's {row['requests_per_record']} a record, less that, and workers cannot",
            "raise it: their threads wait on one lock for moto's CPU, not on a network. With the added",
            "latency the threads overlap only that wait. The figure that matters on AWS is requests per",
            "record, where each request is a network wait of ~10 ms that W workers wait out together",
            "(below).",
        ]
    )


def _derivation(rows: list[dict[str, Any]]) -> list[str]:
    largest = max(rows, key=lambda r: (r["records"], -r["latency_ms"], -r["workers"]))
    per_record = largest["requests_per_record"]
    worker_rate = 1000 / (per_record * AWS_LATENCY_MS)
    # Index writes a re-driven record costs on its shard's partitions (entries of at most 1 KB): the
    # claim moves it from PENDING#k to INFLIGHT#k (a delete and a put), the confirm takes it out of
    # INFLIGHT#k; INFLIGHT#k takes two of the three.
    index_ceiling = INDEX_SHARDS * PARTITION_WRU_PER_S / 2
    lines = [
        f"**A million records on AWS (derived, not measured).** A pass makes {per_record} requests a",
        "record (measured above: two conditional UpdateItems, a tenth of a SendMessageBatch and of an",
        f"index Query). At ~{AWS_LATENCY_MS} ms a request one worker re-drives about",
        f"{worker_rate:.0f} records a second; the workers wait on the network, so W workers re-drive",
        f"W times that until a limit. The limits: the index, {PARTITION_WRU_PER_S:,} write units a second",
        "per partition key value, and each re-driven record writes its in-flight shard's entry twice",
        f"(in, out), so {INDEX_SHARDS} shards allow about {index_ceiling:,.0f} records a second",
        "(`SENDGUARD_INDEX_SHARDS` raises it, docs/operations.md); the table's writes are spread over",
        "every message id; a standard SQS queue has no practical limit, a FIFO queue 300 requests a",
        "second (3,000 messages with batches of ten) without high-throughput mode. One pass has the",
        f"reconciler's 60 s less its margin, about {PASS_SECONDS} s, once a minute (reserved concurrency 1).",
        "",
    ]
    rows_out = []
    for workers in (1, 4, MAX_WORKERS):
        rate = min(workers * worker_rate, index_ceiling)
        per_pass = rate * PASS_SECONDS
        passes = math.ceil(BACKLOG / per_pass)
        rows_out.append(
            (
                workers,
                f"{rate:,.0f}",
                f"{per_pass:,.0f}",
                passes,
                f"{passes / PASSES_PER_MINUTE:,.0f} min",
            )
        )
    before = 1000 / (OLD_REQUESTS * AWS_LATENCY_MS) * PASS_SECONDS
    return [
        *para(lines),
        *table(("Workers", "Records/s", "Records a pass", "Passes for 1,000,000", "Drained in"), rows_out),
        *para(
            [
                f"Before batches and workers a pass re-drove one record at a time with {OLD_REQUESTS}",
                f"requests: about {before:,.0f} records a pass at these latencies,",
                f"{BACKLOG / before / 60:.1f} hours for a million.",
            ]
        ),
    ]
