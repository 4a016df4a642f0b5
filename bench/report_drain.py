"""docs/benchmarks.md, section 7: draining a backlog — the measured pass against the submit path, the
pass fanned out across invocations, and what the measured requests per record mean for a million
and ten million records on AWS (derived, with the published limits named)."""

from __future__ import annotations

import math
from typing import Any

from bench.markdown import para, table

AWS_LATENCY_MS = 10  # a DynamoDB or SQS request from a Lambda in the same region (the figure)
PASS_SECONDS = 55  # the reconciler's 60 s timeout less the pass's stopping margin (one attempt's 4 s)
PASSES_PER_MINUTE = 1  # the template's schedule, reserved concurrency 1
PARTITION_WRU_PER_S = 1_000  # DynamoDB's limit per partition key value, on an index as on a table
PARTITION_RRU_PER_S = 3_000  # and its read limit (strongly consistent 4 KB reads)
TABLE_WRU_PER_S = 40_000  # an on-demand table's default table-level quota (write request units/s)
TABLE_RRU_PER_S = 40_000  # … and read request units/s
RECORD_WRU = 2  # a re-drive's claim and confirm on a record of up to 1 KB, 1 unit each
INDEX_SHARDS = 4  # the default `SENDGUARD_INDEX_SHARDS`
MAX_INDEX_SHARDS = 256  # statemodel.attention.MAX_SHARDS: the widest fan-out, a shard a worker
LAMBDA_CONCURRENCY = 1_000  # an account's default concurrent executions per region
SQS_BATCH = 10  # SendMessageBatch's entries a call (a standard queue: nearly unlimited calls a second)
TEMPLATE_WORKERS = 4  # the template's ReconcilerWorkers: each invocation's threads
BACKLOGS = (1_000_000, 10_000_000)
WIDTHS = (1, 10, 100, MAX_INDEX_SHARDS)
OLD_REQUESTS = 3  # claim, SendMessage, confirm: the one-record-at-a-time pass
FANOUT_HEADERS: tuple[str, ...] = ("F", "Invoked", "Records", "Wall s", "Records/s", "vs F=1", "CPU s")
FANOUT_HEADERS += ("CPU ms a record", "Requests a record", "Every round's records/s")

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
SQS's are), EMF metrics are off on both sides.

The **fan-out** rows drain the same kind of backlog ({fanout_records} records) on {shards} index
shards through the Lambda handler, one scheduled invocation with `SENDGUARD_RECONCILER_FANOUT` F (1:
today's single pass): for F above 1 it invokes F workers (`adapters.runtime.fanout`), which run at
once on F threads, each its own handler (its own container's clients) with one worker thread,
through `adapters.testing.fanout.InProcessInvoker`, the `Invoker` production's `LambdaInvoker`
implements (moto's `lambda:Invoke` runs functions in Docker). Timed from the scheduled invocation to
the last worker's end; CPU is the process's (every thread, moto's included), with
`time.process_time`. Each width runs {rounds} times, in rounds that take the widths in turn (so the
shared machine's load drifts over all alike); the row is the median run."""


def render(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    out = ["## 7. Draining a backlog", ""]
    for latency in sorted({r["latency_ms"] for r in rows}):
        these = [r for r in rows if r["latency_ms"] == latency]
        if latency == 0:
            method = METHOD.format(
                records=these[0]["records"],
                latency=section["latency_ms"],
                shards=section.get("fanout_shards", 8),
                fanout_records=(section.get("fanout") or [{"records": "?"}])[0]["records"],
                rounds=(section.get("fanout") or [{}])[0].get("rounds", 1),
            )
            out += [*para([method.split("\n\n")[0]]), *para([method.split("\n\n")[1]])]
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
        fanned = [r for r in section.get("fanout", []) if r["latency_ms"] == latency]
        if fanned:
            out += [f"**Fanned out, {label}**", ""]
            out += table(
                FANOUT_HEADERS,
                [
                    (
                        r["fanout"],
                        r["invoked"],
                        r["records"],
                        r["seconds"],
                        r["records_per_s"],
                        f"{r['records_per_s'] / fanned[0]['records_per_s']:.2f}×",
                        r["cpu_s"],
                        r["cpu_ms_per_record"],
                        r["requests_per_record"],
                        ", ".join(str(x) for x in r.get("runs_per_s", [r["records_per_s"]])),
                    )
                    for r in fanned
                ],
            )
    out += _on_moto(rows)
    if section.get("fanout"):
        out += _fanout_on_moto(section["fanout"], section.get("cores"))
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


def _fanout_on_moto(rows: list[dict[str, Any]], cores: int | None) -> list[str]:
    """What the fan-out rows say: the rate against F, and moto's CPU a record as the ceiling here."""
    out = []
    for latency in sorted({r["latency_ms"] for r in rows}):
        these = sorted((r for r in rows if r["latency_ms"] == latency), key=lambda r: r["fanout"])
        first, best = these[0], max(these, key=lambda r: r["records_per_s"])
        cpu = [r["cpu_ms_per_record"] for r in these]
        label = f"with +{latency} ms a request" if latency else "on moto as it answers"
        if best is first:  # no wider fan-out was faster: say how the others did
            others = ", ".join(f"F = {r['fanout']}: {r['records_per_s']}" for r in these[1:])
            fastest = f" and was the fastest ({others or 'no other width'})"
        else:
            fastest = (
                f" and the fastest, F = {best['fanout']}, {best['records_per_s']}"
                f" ({best['records_per_s'] / first['records_per_s']:.2f}×)"
            )
        out.append(
            f"{label.capitalize()}, F = {first['fanout']} drained {first['records_per_s']} records a second"
            f"{fastest}, at {_span(cpu, '{:g}')} ms of"
            f" CPU a record (a ceiling of {1000 / min(cpu):.0f} records a second for one core; each worker"
            " also checks the table once, as a new container does), the process running"
            f" {_share(these)} of the time (CPU s over wall s: the rest it waited, on the added latency"
            " or for a core)."
        )
    where = f"{cores} cores" if cores else "this machine"
    return para(
        [
            "**What the fan-out on moto shows.**",
            *out,
            f"On {where}, moto answers in the same Python process, one request at a time",
            "(`serial_moto`), so the workers' requests queue for one interpreter lock: the CPU a record",
            "costs here is moto's parsing and copying, not sendguard's, and it bounds the rate whatever",
            "F. As moto answers, the workers add only contention; with the added latency they overlap",
            "their waits, which is all the fan-out can show on this machine before moto's CPU is the",
            "limit. On AWS each worker is its own execution environment and waits on the network, and",
            "the services' limits, not one interpreter, bound the sum (below).",
        ]
    )


def _share(rows: list[dict[str, Any]]) -> str:
    shares = [r["cpu_s"] / r["seconds"] for r in rows if r["seconds"]]
    return _span(shares, "{:.0%}") if shares else "?"


def _span(values: list[float], form: str) -> str:
    """`values` from least to most (`form` formats each), or one figure when both read alike."""
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low} to {high}"


def _derivation(rows: list[dict[str, Any]]) -> list[str]:
    largest = max(rows, key=lambda r: (r["records"], -r["latency_ms"], -r["workers"]))
    per_record = largest["requests_per_record"]
    thread_rate = 1000 / (per_record * AWS_LATENCY_MS)
    worker_rate = TEMPLATE_WORKERS * thread_rate
    per_shard = PARTITION_WRU_PER_S / 2
    table_ceiling = TABLE_WRU_PER_S / RECORD_WRU
    lines = [
        "**A million and ten million records on AWS (derived, not measured).** A pass makes",
        f"{per_record} requests a record (measured above: two conditional UpdateItems, a tenth of a",
        "SendMessageBatch and of an index Query, a share of a BatchGetItem). At",
        f"~{AWS_LATENCY_MS} ms a request one thread re-drives about {thread_rate:.0f} records a second, and",
        f"one invocation with the template's {TEMPLATE_WORKERS} threads about {worker_rate:.0f}; the threads",
        "and the fanned-out invocations wait on the network, so F invocations re-drive F times that",
        "until the first of the published limits:",
        f"**the index**, {PARTITION_WRU_PER_S:,} write units a second per partition key value (and",
        f"{PARTITION_RRU_PER_S:,} read units); a re-driven record writes its in-flight shard's entry",
        f"twice (in, out), so about {per_shard:,.0f} records a second a shard, and F workers need",
        "`IndexShards` ≥ F, a shard each at least (the default is 4, the most 256);",
        f"**the table**, on demand: {TABLE_WRU_PER_S:,} write and {TABLE_RRU_PER_S:,} read request",
        "units a second by default (a quota AWS raises on request), a re-drive's claim and confirm",
        f"{RECORD_WRU} write units for a record up to 1 KB and its BatchGetItem read 1 read unit: at most",
        f"{table_ceiling:,.0f} records a second; an on-demand table serves at once up to twice its",
        "previous peak, so a table that never saw the rate throttles (retried by the SDK) until",
        "DynamoDB adapts, or is pre-warmed (warm throughput);",
        f"**SQS**, a standard queue's calls a second nearly unlimited, {SQS_BATCH} messages a",
        "SendMessageBatch (a tenth of a call a record; a FIFO queue 300 calls a second, 3,000 messages,",
        "without high-throughput mode);",
        f"**Lambda**, {LAMBDA_CONCURRENCY:,} concurrent executions an account by default: a pass takes",
        "F + 1 and overlaps the previous one's for at most a minute, 2 F + 2, so F up to 256 fits.",
        f"A pass has the reconciler's 60 s less its margin, about {PASS_SECONDS} s, once a minute.",
    ]
    rows_out = [
        (
            d["fanout"],
            d["shards"],
            f"{d['records_per_s']:,.0f}",
            d["bound_by"],
            f"{d['records_per_pass']:,.0f}",
            *(_minutes(m) for m in d["minutes"]),
        )
        for d in derived(per_record)
    ]
    before = 1000 / (OLD_REQUESTS * AWS_LATENCY_MS) * PASS_SECONDS
    return [
        *para(lines),
        *table(
            (
                "Fan-out F",
                "IndexShards",
                "Records/s",
                "Bound by",
                "Records a pass",
                "1,000,000 drained in",
                "10,000,000 drained in",
            ),
            rows_out,
        ),
        *para(
            [
                f"F = 1 is the pass without fan-out (one invocation, {TEMPLATE_WORKERS} threads). Before",
                f"batches and threads a pass re-drove one record at a time with {OLD_REQUESTS} requests:",
                f"about {before:,.0f} records a pass at these latencies,",
                f"{BACKLOGS[0] / before / 60:.1f} hours for a million.",
            ]
        ),
    ]


def derived(per_record: float) -> list[dict[str, Any]]:
    """The drain rate on AWS for each fan-out width in WIDTHS (IndexShards at least F), bound by the
    first of: the invocations' threads waiting on the network, the index's partitions, the table's
    quota; and the minutes to drain each of BACKLOGS, a pass a minute."""
    worker_rate = TEMPLATE_WORKERS * 1000 / (per_record * AWS_LATENCY_MS)
    # Index writes a re-driven record costs on its shard's partitions (entries of at most 1 KB): the
    # claim moves it from PENDING#k to INFLIGHT#k (a delete and a put), the confirm takes it out of
    # INFLIGHT#k; INFLIGHT#k takes two of the three.
    per_shard = PARTITION_WRU_PER_S / 2
    out = []
    for width in WIDTHS:
        shards = max(width, INDEX_SHARDS)
        limits = {
            f"{width} × {TEMPLATE_WORKERS} threads": width * worker_rate,
            f"index, {shards} shards": shards * per_shard,
            "table quota": TABLE_WRU_PER_S / RECORD_WRU,
        }
        bound_by = min(limits, key=lambda name: limits[name])
        per_pass = limits[bound_by] * PASS_SECONDS
        minutes = [math.ceil(backlog / per_pass) / PASSES_PER_MINUTE for backlog in BACKLOGS]
        out.append(
            {
                "fanout": width,
                "shards": shards,
                "records_per_s": limits[bound_by],
                "bound_by": bound_by,
                "records_per_pass": per_pass,
                "minutes": minutes,
            }
        )
    return out


def _minutes(minutes: float) -> str:
    return f"{minutes:,.0f} min" if minutes < 120 else f"{minutes / 60:,.1f} h ({minutes:,.0f} min)"
