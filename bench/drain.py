"""Section 6: how fast one reconciler pass drains a backlog, against how fast the submit path accepts.

In one run on in-process moto, on fresh resources for each measurement:

* **submit rate**: `backlog` happy-path submissions through `adapters.aws_lambda.submit`, one after
  another (one client, as one Lambda container serves them), timed from the first to the last answer;
* **re-drive rate**: `backlog` PENDING records, then one reconciler pass on a clock past the re-drive
  delay, timed, with 1, 2 and 4 workers (`SENDGUARD_RECONCILER_WORKERS`); the pass must re-drive
  every record (checked). Its AWS requests are counted by operation, per record. The backlog is one
  real submission whose send met a throttled SQS that the SDK gave up on (it rolls back to PENDING),
  copied under new message ids with BatchWriteItem, each copy's index partition recomputed for its
  id (`statemodel.attention`), so that building it does not cost the run a submission a record.

* **fan-out**: a backlog of `latency_backlog` records on 8 index shards, drained by one scheduled
  invocation through the Lambda handler with `SENDGUARD_RECONCILER_FANOUT` F = 1, 2, 4 and 8
  (`adapters.runtime.fanout`): for F above 1 the coordinator invokes F workers, which run at once on F
  threads, each its own handler (as each is its own Lambda container) with one worker thread; timed
  from the scheduled invocation to the last worker's end, with the process's CPU time beside it, in
  `rounds` interleaved rounds (each width once a round, so that the machine's load drifts over all
  alike), the median reported. Lambda's asynchronous invoke is
  `adapters.testing.fanout.InProcessInvoker` (moto's runs functions in Docker).

moto applies one request at a time (`adapters.testing.serial_moto`: its requests are not atomic, as
DynamoDB's and SQS's are). Each is measured twice: on moto as it answers (CPU-bound: moto and the SDK
in one Python process, so threads share one interpreter lock and cannot run together), and with
every HTTP attempt held `latency_ms` more before it leaves (`time.sleep` in a `before-send` handler,
which releases the lock), about what a request waits on AWS from a Lambda in the same region. The
second says what the workers do on AWS, where a pass waits on the network, not on Python.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.handlers import BUILTIN_HANDLERS

from adapters.runtime.clients import now_ms
from adapters.runtime.codec import ATTENTION
from adapters.runtime.config import Config
from adapters.runtime.reconciler import reconcile_pass
from adapters.runtime.runner import Aws
from adapters.testing.fanout import InProcessInvoker
from adapters.testing.injector import Crashed, Fault, FaultInjector, Plan
from adapters.testing.serial_moto import one_request_at_a_time
from bench import flows as bench_flows
from bench.moto_env import Resources, environment, in_process_aws, provision

WORKERS = (1, 2, 4)
FANOUT = (1, 2, 4, 8)  # worker invocations of a fanned-out pass
FANOUT_SHARDS = 8
BATCH = 25  # BatchWriteItem's limit
LATENCY_MS = 10


def run(
    backlog: int = 400,
    latency_backlog: int = 200,
    say: Callable[[str], None] = lambda _: None,
    rounds: int = 3,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    fanned: list[dict[str, Any]] = []
    with in_process_aws(), one_request_at_a_time():  # the workers' threads: moto's requests one at a time
        calls, injector = _Calls(), FaultInjector()
        with calls.installed(), injector.installed():
            for latency, size in ((0, backlog), (LATENCY_MS, latency_backlog)):
                with _latency(latency):
                    say(f"drain: submit rate, {size} messages, +{latency} ms a request")
                    submit = _submit_rate(size)
                    for workers in WORKERS:
                        say(f"drain: one pass over {size} pending records, {workers} worker(s)")
                        rows.append(_drain(size, workers, latency, submit, calls, injector))
                    fanned += _fan_outs(latency_backlog, latency, rounds, calls, injector, say)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "latency_ms": LATENCY_MS,
        "rows": rows,
        "fanout": fanned,
        "fanout_shards": FANOUT_SHARDS,
        "cores": cores,
    }


@contextlib.contextmanager
def _latency(ms: int) -> Iterator[None]:
    """Every HTTP attempt of clients made inside waits `ms` before it leaves."""

    def wait(**_: Any) -> None:
        time.sleep(ms / 1000)

    if not ms:
        yield
        return
    entry = ("before-send", wait)
    BUILTIN_HANDLERS.insert(0, entry)  # before moto's own before-send handler, which answers
    try:
        yield
    finally:
        BUILTIN_HANDLERS.remove(entry)


def _env(resources: Resources) -> dict[str, str]:
    """The functions' environment, EMF metrics off on both sides (this section measures rates)."""
    return bench_flows.sendguard_env(resources) | {"SENDGUARD_METRICS": "off"}


def _submit_rate(size: int) -> float:
    resources = provision("drain")
    with environment(_env(resources)):
        from adapters import aws_lambda

        aws_lambda.reset()
        _accept(
            aws_lambda.submit, f"drain-warm-up-{time.time_ns()}"
        )  # the clients are made at the first invocation
        started = time.perf_counter()
        for n in range(size):
            answer = _accept(aws_lambda.submit, f"drain-submit-{n}-{time.time_ns()}")
            assert answer["statusCode"] == 202, answer
        seconds = time.perf_counter() - started
        aws_lambda.reset()
    return size / seconds


def _drain(
    size: int, workers: int, latency: int, submit_rate: float, calls: _Calls, injector: FaultInjector
) -> dict[str, Any]:
    resources = provision("drain")
    env = _env(resources) | {"SENDGUARD_RECONCILER_WORKERS": str(workers)}
    with environment(env):
        from adapters import aws_lambda

        aws_lambda.reset()
        with injector.armed(Plan(Fault.SQS_THROTTLED_SDK_GAVE_UP)), contextlib.suppress(Crashed):
            key = f"drain-pending-{time.time_ns()}"
            _accept(aws_lambda.submit, key)
        aws_lambda.reset()
        config = Config.from_env()
        _copy(config, bench_flows.sendguard_message_id(key), size - 1)
        aws = Aws.from_config(config)
        shift = config.settings.redrive_after_ms + 1_000

        def clock() -> int:
            return now_ms() + shift

        calls.counted.clear()
        started = time.perf_counter()
        summary = reconcile_pass(aws, config, clock() + 600_000, clock=clock)
        seconds = time.perf_counter() - started
        counted = dict(sorted(calls.counted.items()))
    assert summary.redriven == size, summary
    rate = size / seconds
    return {
        "latency_ms": latency,
        "workers": workers,
        "records": size,
        "redriven": summary.redriven,
        "pass_s": round(seconds, 2),
        "redrive_per_s": round(rate, 1),
        "submit_per_s": round(submit_rate, 1),
        "ratio": round(rate / submit_rate, 2),
        "queries": summary.queries,
        "groups": summary.groups,
        "calls": counted,
        "requests_per_record": round(sum(counted.values()) / size, 3),
    }


def _fan_outs(
    size: int, latency: int, rounds: int, calls: _Calls, injector: FaultInjector, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Each width `rounds` times, interleaved; a row a width: the median run, and every run's rate."""
    runs: dict[int, list[dict[str, Any]]] = {width: [] for width in FANOUT}
    for round_ in range(rounds):
        for width in FANOUT:
            say(f"drain: {size} pending records fanned out to {width} (round {round_ + 1} of {rounds})")
            runs[width].append(_fan_out(size, width, latency, calls, injector))
    rows = []
    for measured in runs.values():
        ordered = sorted(measured, key=lambda r: r["seconds"])
        median = ordered[len(ordered) // 2]
        rows.append(median | {"rounds": len(measured), "runs_per_s": [r["records_per_s"] for r in measured]})
    return rows


SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


class _Context:
    """A Lambda context with ten minutes left: the pass, not its deadline, decides how long it runs."""

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


def _fan_out(size: int, width: int, latency: int, calls: _Calls, injector: FaultInjector) -> dict[str, Any]:
    resources = provision("drain")
    env = _env(resources) | {
        "SENDGUARD_INDEX_SHARDS": str(FANOUT_SHARDS),
        "SENDGUARD_RECONCILER_WORKERS": "1",
        "SENDGUARD_RECONCILER_FANOUT": str(width),
        "SENDGUARD_RECONCILER_WORKER_FUNCTION": "bench-reconciler-worker",
        "SENDGUARD_REDRIVE_AFTER_SECONDS": "1",
    }
    with environment(env):
        from adapters import aws_lambda

        aws_lambda.reset()
        with injector.armed(Plan(Fault.SQS_THROTTLED_SDK_GAVE_UP)), contextlib.suppress(Crashed):
            key = f"drain-fanout-{time.time_ns()}"
            _accept(aws_lambda.submit, key)
        submitted = time.monotonic()
        aws_lambda.reset()
        _copy(Config.from_env(), bench_flows.sendguard_message_id(key), size - 1)
        time.sleep(max(0.0, submitted + 1.1 - time.monotonic()))  # past the re-drive delay: all due
        invoker = InProcessInvoker()
        coordinator = aws_lambda.Handlers(invoker=lambda _: invoker)
        workers = [aws_lambda.Handlers() for _ in range(width)]  # a container each
        for handlers in (coordinator, *workers):
            handlers.outbox()  # the containers' clients, made before the clock starts (their init)

        def worker(payload: Any, context: Any) -> Any:
            return workers[payload["shards"][0]].reconcile(payload, context)  # group g starts at shard g

        calls.counted.clear()
        started, cpu = time.perf_counter(), time.process_time()
        answer = coordinator.reconcile(SCHEDULED, _Context())
        answers = invoker.run(worker, _Context(), threads=width)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        counted = dict(sorted(calls.counted.items()))
    passes = answers if width > 1 else [answer]
    redriven = sum(p["redriven"] for p in passes)
    assert redriven == size and len(passes) == min(width, FANOUT_SHARDS), (answer, answers)
    return {
        "latency_ms": latency,
        "fanout": width,
        "records": size,
        "redriven": redriven,
        "invoked": answer.get("invoked", 0),
        "seconds": round(seconds, 2),
        "records_per_s": round(size / seconds, 1),
        "cpu_s": round(cpu_s, 2),
        "cpu_ms_per_record": round(1000 * cpu_s / size, 1),
        "calls": counted,
        "requests_per_record": round(sum(counted.values()) / size, 3),
    }


class _Calls:
    """API calls by operation, from every thread (the pass's workers too)."""

    def __init__(self) -> None:
        self.counted: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.counted[model.name] += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        entry = ("before-call", self._count)
        BUILTIN_HANDLERS.append(entry)
        try:
            yield
        finally:
            BUILTIN_HANDLERS.remove(entry)


def _accept(handler: Callable[..., dict[str, Any]], key: str) -> dict[str, Any]:
    event = bench_flows.post_event(bench_flows.body(0), key)
    return handler(event, bench_flows.context())


def _copy(config: Config, message_id: str, copies: int) -> None:
    """`copies` copies of a PENDING item under new message ids (the layout's key), each in its id's
    index shard."""
    client: Any = boto3.client("dynamodb")
    layout = config.layout
    found = client.get_item(TableName=config.table, Key=layout.key(message_id), ConsistentRead=True)
    item = found["Item"]
    assert item[layout.status_attribute]["S"] == "PENDING", item[layout.status_attribute]
    kind = item[ATTENTION]["S"].split("#")[0]
    written = 0
    while written < copies:
        batch = []
        for _ in range(min(BATCH, copies - written)):
            new_id = str(uuid.uuid4())
            partition = {"S": f"{kind}#{layout.shards.of(new_id)}"}
            copy = {**item, **layout.key(new_id), ATTENTION: partition}
            batch.append({"PutRequest": {"Item": copy}})
        pending: dict[str, Any] = {config.table: batch}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems", {})
        written += len(batch)
