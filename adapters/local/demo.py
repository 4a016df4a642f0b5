"""`sendguard demo` (and `make demo`): the whole service on this machine, under real faults, and a
verdict on whether every message is accounted for.

It starts an embedded moto server on loopback, the fault proxy in front of it and the local API
gateway in front of the real submit function; sends N requests from C concurrent clients (some of them
replays of an earlier Idempotency-Key); runs the real reconciler until the table is settled; drains the
queue; and prints one screen: answers by status, faults injected by kind, SDK retries, rollbacks,
reconciler actions, final record states, and the verdict — orphans, lost messages, duplicates and why
each was allowed. Exit 1 on an orphan, a loss, an unexplained duplicate, an invariant breach or a table
that did not settle.

The consumer side runs with it (`--consumer transactional`, the default on the embedded server, or
`guarded`; `none` leaves it out): the ready consumer function (`adapters.aws_lambda_consumer.consume`,
the SAM template's ConsumerFunction) consumes the queue as Lambda's SQS event source mapping would
drive it, from the start of the load, under faults of its own (`adapters.local.consumer`: crashes
before and after its writes, throttles, duplicate and concurrent deliveries) besides the proxy's; the
verdict adds that every accepted message's effect was applied exactly once, counted in the consumer's
table (exit 1 when one is missing or applied twice).

`--endpoint-url`, or `--table` with `--queue-url` on AWS, runs the same against a deployment's
resources (no fault proxy unless `--fault-rate` is given; no consumer).

The function runs with the contract's variables set for a demo: SENDGUARD_REDRIVE_AFTER_SECONDS=1 and
SENDGUARD_LEASE_MARGIN_SECONDS=1 (so that the reconciler can settle the table in seconds, in real time),
SENDGUARD_AWS_MAX_ATTEMPTS from `--aws-max-attempts` (default 3, the contract's), and a 10 s Lambda
timeout. Its JSON logs are captured (`--log-file` keeps them, for `sendguard check-trace`).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO

import attrs

from adapters.aws_lambda import Handlers
from adapters.aws_lambda_consumer import LAYOUT as CONSUMER_LAYOUT
from adapters.aws_lambda_consumer import MODES as CONSUMER_MODES
from adapters.aws_lambda_consumer import ConsumerHandlers, Wiring
from adapters.local.consumer import (
    CallFaults,
    ConsumerRun,
    EffectsVerdict,
    EventSourceMapping,
    FaultyWiring,
    judge_effects,
)
from adapters.local.fault_proxy import Kind
from adapters.local.load import Progress, drive, make_plan
from adapters.local.sandbox import environment
from adapters.local.service import EMBEDDED, LocalService, ServiceError, ServiceOptions
from adapters.local.settle import Settling, drain, read_records, settle
from adapters.local.verdict import (
    Delivery,
    Evidence,
    Verdict,
    answers_by_status,
    aws_failures,
    invalid_ids,
    judge,
    record_states,
    rollbacks,
)
from adapters.ops.audit import audit
from adapters.ops.provision import ensure_table
from adapters.runtime.clients import now_ms
from adapters.runtime.store import DynamoStore

DEFAULT_REQUESTS = 120
DEFAULT_CONCURRENCY = 8
DEFAULT_FAULT_RATE = 0.2  # on the embedded server; against a deployment, 0 unless given
DEFAULT_SEED = 7
SETTLE_SECONDS = 45.0
SETTLE_PASSES = 40
SHOWN = 8  # lines of each list in the text report
NO_CONSUMER = "none"
CONSUMER_TIMEOUT_S = 3  # the consumer function's timeout here (the template's is 5 s) …
CONSUMER_VISIBILITY_S = 4  # … and the visibility timeout of its receives: short, so that a crashed
# batch comes back within seconds; shorter than 6 x the timeout, so a slow invocation's messages can
# come back while it still runs, which the inbox must keep safe
CONSUMER_MAX_RECEIVES = 10  # the inbox's, here: the demo's queue has no dead-letter queue
CONSUMER_SECONDS = 40.0  # to empty the queue once the table has settled
WIDTH = 110


@attrs.frozen
class DemoOptions:
    requests: int = DEFAULT_REQUESTS
    concurrency: int = DEFAULT_CONCURRENCY
    fault_rate: float | None = None  # None: the default of the mode
    seed: int = DEFAULT_SEED
    endpoint_url: str | None = None
    table: str | None = None
    queue_url: str | None = None
    aws_max_attempts: int = 3
    lambda_timeout_s: int = 10
    settle_seconds: float = SETTLE_SECONDS
    log_file: str | None = None
    progress: bool | None = None  # None: when stderr is a terminal
    consumer: str | None = None  # transactional | guarded | none; None: transactional on the embedded server
    consumer_fault_rate: float | None = None  # None: the fault rate
    consumer_wiring: Wiring | None = None  # the tests' broken wirings; None: production's
    # The producer's entry points (`adapters.aws_lambda.Handlers`): the tests' broken services (a
    # queue that forges or doubles a send, a reconciler that does nothing); None: production's.
    handlers: Handlers | None = None
    settle_passes: int = SETTLE_PASSES  # reconciler passes the settle phase runs at most
    # How the verdict reads the queue at the end (`adapters.local.settle.drain`); the tests' loses a
    # message, as a queue that dropped one would.
    drain_queue: Callable[..., tuple[list[Delivery], int]] = drain
    consumer_batch_size: int = 10  # messages per invocation, at most (the template's BatchSize)
    consumer_pollers: int = 2  # the event source mapping's pollers (batches in flight at once)
    # What times an invocation against its timeout; the tests' stands still (a loaded machine's
    # slowness is then never taken for a timeout). None: the real monotonic clock.
    consumer_clock: Callable[[], float] | None = None

    def consumer_mode(self, mode: str) -> str:
        """The consumer's mode on a service of this mode (`ServiceOptions.mode`)."""
        chosen = self.consumer or (CONSUMER_MODES[0] if mode == EMBEDDED else NO_CONSUMER)
        if chosen not in (*CONSUMER_MODES, NO_CONSUMER):
            raise ServiceError(f"--consumer {chosen}: use one of {', '.join((*CONSUMER_MODES, NO_CONSUMER))}")
        if chosen != NO_CONSUMER and mode != EMBEDDED:
            raise ServiceError("the demo's consumer runs on the embedded server only: add --consumer none")
        return chosen

    def service(self) -> ServiceOptions:
        probe = ServiceOptions(endpoint_url=self.endpoint_url, table=self.table, queue_url=self.queue_url)
        rate = self.fault_rate
        if rate is None:
            rate = DEFAULT_FAULT_RATE if probe.mode == EMBEDDED else 0.0
        return attrs.evolve(
            probe,
            fault_rate=rate,
            seed=self.seed,
            always_proxy=True,
            lambda_timeout_ms=1000 * self.lambda_timeout_s,
            function_env={
                "SENDGUARD_REDRIVE_AFTER_SECONDS": "1",
                "SENDGUARD_LEASE_MARGIN_SECONDS": "1",
                "SENDGUARD_AWS_MAX_ATTEMPTS": str(self.aws_max_attempts),
                "SENDGUARD_LOG_LEVEL": "INFO",  # the report counts the function's log lines
            },
        )


class LogCollector(io.TextIOBase):
    """Where the function's stdout goes during a run: its JSON log lines, kept in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *complete, self._partial = (self._partial + text).split("\n")
            self.lines += complete
        return len(text)

    def records(self) -> list[dict[str, Any]]:
        parsed = []
        for line in self.lines:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                parsed.append(data)
        return parsed


def run(options: DemoOptions, status: TextIO | None = None) -> dict[str, Any]:
    """One demo run; returns the report (its `ok` says whether the verdict passed)."""
    say = status or sys.stderr
    service_options = options.service()
    started = time.monotonic()
    nonce = "" if service_options.mode == EMBEDDED else f"-{uuid.uuid4().hex[:6]}"
    plan = make_plan(options.requests, options.seed, nonce)
    ids_by_kind: dict[str, set[str]] = {}
    for item in plan:
        ids_by_kind.setdefault(item.kind, set()).add(item.message_id)
    planned = frozenset().union(*ids_by_kind.values())
    logs = LogCollector()
    consumer_mode = options.consumer_mode(service_options.mode)
    with LocalService(service_options, options.handlers) as service, contextlib.ExitStack() as stack:
        strict = service.mode == EMBEDDED
        run_consumer = None
        if consumer_mode != NO_CONSUMER:
            run_consumer = start_consumer(options, service, consumer_mode, stack)
        _say(say, f"sendguard demo: {service.mode}" + (f" at {service.upstream}" if service.upstream else ""))
        _say(say, f"  table {service.table}, queue {service.queue_url}")
        if service.proxy:
            _say(
                say,
                f"  fault proxy at {service.proxy.endpoint}: "
                f"rate {service.proxy.rate:.2f}, seed {options.seed}",
            )
        _say(
            say, f"  gateway at {service.url}: {options.requests} requests from {options.concurrency} clients"
        )
        store = DynamoStore(service.observer("dynamodb"), service.table)
        with contextlib.redirect_stdout(logs):
            progress = Progress(options.requests, say, options.progress)
            answers = drive(service.url, plan, options.concurrency, progress)
            loaded = time.monotonic()
            _say(say, f"  load done in {loaded - started:.1f} s; settling with the reconciler")
            service.new_container()  # the reconciler function's own container, as on AWS
            quiet = _quiet(service, run_consumer)
            settling = settle(
                store,
                None if strict else planned,
                service.reconcile,
                service.config().settings,
                options.settle_seconds,
                options.settle_passes,
                lambda result, waiting: _say(say, f"    pass {result.passes + 1}: {waiting} to settle"),
                quiet=quiet,
            )
            consumed, settled_at = None, time.monotonic()
            if run_consumer is not None:
                _say(say, "  table settled; the consumer empties the queue")
                run_consumer.quiet()
                consumed = run_consumer.mapping.finish(CONSUMER_SECONDS)
            deliveries, others = options.drain_queue(
                service.observer("sqs"),
                service.queue_url,
                (lambda _: True) if strict else (lambda message_id: message_id in planned),
                consistent=strict,
            )
            if run_consumer is not None:  # what the consumer received was on the queue as well
                deliveries = list(
                    {d.sqs_id: d for d in [*run_consumer.mapping.seen.values(), *deliveries]}.values()
                )
            report_audit = audit(store, now_ms(), 0)
            stored, foreign = read_records(store, None if strict else planned)
        evidence = Evidence(
            answers=answers,
            planned_ids=planned,
            invalid_ids=invalid_ids(ids_by_kind),
            stored=stored,
            foreign=foreign if strict else [],
            deliveries=deliveries,
            foreign_deliveries=others,
            ledger=service.proxy.ledger if service.proxy else None,
            logs=logs.records(),
            audit=report_audit,
            now=now_ms(),
            strict=strict,
            settled=settling.settled,
            function_raised=service.gateway.stats.raised,
            waiting=frozenset(w.message_id for w in settling.waiting),
        )
        verdict = judge(evidence)
        effects = None
        if run_consumer is not None:
            accepted = {
                a.message_id for a in answers if a.method == "POST" and a.status == 202 and a.message_id
            }
            on_queue = {d.message_id for d in deliveries if d.message_id}
            effects = judge_effects(
                service.observer("dynamodb"), run_consumer.table, accepted | on_queue, bool(consumed)
            )
        report = build_report(options, service, evidence, verdict, settling)
        if run_consumer is not None and effects is not None:
            report["consumer"] = consumer_report(run_consumer, effects)
            report["ok"] = report["ok"] and effects.ok
            report["broken"] = report["broken"] or effects.broken
    report["seconds"] = {
        "load": round(loaded - started, 1),
        "settle": settling.seconds,
        "consume": round(time.monotonic() - settled_at, 1),
        "total": round(time.monotonic() - started, 1),
    }
    if options.log_file:
        with open(options.log_file, "w", encoding="utf-8") as stream:
            stream.writelines(line + "\n" for line in logs.lines)
    return report


def start_consumer(
    options: DemoOptions, service: LocalService, mode: str, stack: contextlib.ExitStack
) -> ConsumerRun:
    """The consumer table, the function's environment, and the event source mapping, polling."""
    table = f"{service.table}-consumer"
    with environment({"AWS_ENDPOINT_URL": service.upstream or ""}):
        ensure_table(table, CONSUMER_LAYOUT)
    stack.enter_context(
        environment(
            {
                "SENDGUARD_CONSUMER_TABLE": table,
                "SENDGUARD_CONSUMER_MODE": mode,
                "SENDGUARD_CONSUMER_MAX_RECEIVES": str(CONSUMER_MAX_RECEIVES),
            }
        )
    )
    rate = options.consumer_fault_rate
    if rate is None:
        rate = service.proxy.rate if service.proxy else 0.0
    faults = CallFaults(rate / 2, options.seed)
    handlers = ConsumerHandlers(FaultyWiring(faults, options.consumer_wiring))
    handlers.setup()  # the container's first invocation would: configuration and clients, once
    mapping = EventSourceMapping(
        service.observer("sqs"),
        service.queue_url,
        handlers.consume,
        timeout_ms=1000 * CONSUMER_TIMEOUT_S,
        visibility_s=CONSUMER_VISIBILITY_S,
        fault_rate=rate,
        seed=options.seed,
        batch_size=options.consumer_batch_size,
        pollers=options.consumer_pollers,
        clock=options.consumer_clock or time.monotonic,
    )
    mapping.start()
    stack.callback(mapping.finish, 0)  # stops the pollers, whatever happened
    return ConsumerRun(mode, table, handlers, faults, mapping)


def _quiet(service: LocalService, consumer: ConsumerRun | None) -> Any:
    """What turns every fault off: the proxy's, and the consumer's own."""
    if service.proxy is None and consumer is None:
        return None

    def quiet() -> None:
        if service.proxy is not None:
            service.proxy.stop_faults()
        if consumer is not None:
            consumer.quiet()

    return quiet


def consumer_report(run: ConsumerRun, effects: EffectsVerdict) -> dict[str, Any]:
    return {
        "mode": run.mode,
        "table": run.table,
        "mapping": attrs.asdict(run.mapping.stats),
        "faults_by_kind": dict(sorted(run.faults.injected.items())),
        "finished": effects.finished,
        "expected": effects.expected,
        "applied_once": effects.once,
        "missing": effects.missing,
        "applied_twice": effects.twice,
        "unexpected": effects.unexpected,
        "inbox": effects.inbox,
        "repeated_calls": effects.repeats,
    }


def build_report(
    options: DemoOptions, service: LocalService, evidence: Evidence, verdict: Verdict, settling: Settling
) -> dict[str, Any]:
    ledger = evidence.ledger
    by_kind = ledger.by_kind() if ledger else {kind.value: 0 for kind in Kind}
    stats = service.gateway.stats
    return {
        "ok": verdict.ok,
        "broken": verdict.broken,
        "mode": service.mode,
        "endpoint": service.upstream,
        "table": service.table,
        "queue_url": service.queue_url,
        "seed": options.seed,
        "fault_rate": service.proxy.rate if service.proxy else 0.0,
        "concurrency": options.concurrency,
        "requests": options.requests,
        "answers": answers_by_status(evidence.answers),
        "faults_injected": sum(by_kind.values()),
        "faults_by_kind": by_kind,
        "aws_requests": sum(ledger.requests.values()) if ledger else None,
        "sdk_retries": ledger.retries if ledger else None,
        "late_answers": ledger.late if ledger else None,
        "aws_failures": aws_failures(evidence.logs),
        "rollbacks": rollbacks(evidence.stored, evidence.logs),
        "invocations": attrs.asdict(stats),
        "reconciler": {
            "passes": settling.passes,
            "failed_passes": settling.failed_passes,
            "faulty_passes": settling.faulty_passes,
            "settled": settling.settled,
            "seconds": settling.seconds,
            "unsettled": settling.unsettled,
            "waiting": [attrs.asdict(w) for w in settling.waiting],
            **{
                k: settling.actions.get(k, 0)
                for k in ("expired", "redriven", "exhausted", "superseded", "failed")
            },
        },
        "records": record_states(evidence.stored),
        "queue": {
            "messages": len(evidence.deliveries),
            "records": len({d.message_id for d in evidence.deliveries}),
        },
        "orphans": verdict.orphans,
        "lost": verdict.lost,
        "duplicates": [attrs.asdict(d) for d in verdict.duplicates],
        "unexpected_duplicates": [attrs.asdict(d) for d in verdict.unexpected_duplicates],
        "breaches": verdict.breaches,
        "settings": {
            "redrive_after_s": 1,
            "lease_margin_s": 1,
            "aws_max_attempts": options.aws_max_attempts,
            "lambda_timeout_s": options.lambda_timeout_s,
        },
    }


SHORT_NAMES = {
    Kind.RESET_BEFORE: "reset before moto",
    Kind.RESET_AFTER: "reset after moto applied",
    Kind.DELAY: "held past the read timeout",
    Kind.ERROR_500: "500",
    Kind.ERROR_503: "503",
    Kind.THROTTLE: "throttled",
}


def render(report: dict[str, Any]) -> str:
    """The report on one screen."""
    out: list[str] = []
    where = report["mode"] + (f" at {report['endpoint']}" if report["endpoint"] else "")
    out.append(
        f"sendguard demo — {report['requests']} requests, {report['concurrency']} clients, "
        f"fault rate {report['fault_rate']:.2f}, seed {report['seed']}, on {where}"
    )
    out.append("")
    overran = report["invocations"]["past_timeout"]
    note = f" ({overran} invocations overran their timeout: 503 from the gateway)" if overran else ""
    out += _field("answers", _counts(report["answers"]) + note)
    if report["aws_requests"] is not None:
        kinds = ", ".join(f"{SHORT_NAMES[Kind(k)]} ×{n}" for k, n in report["faults_by_kind"].items())
        out += _field(
            "faults", f"{report['faults_injected']} in {report['aws_requests']} AWS requests: {kinds}"
        )
        late = f"; {report['late_answers']} answers late on their own" if report["late_answers"] else ""
        failures = _counts(report["aws_failures"]) or "none"
        out += _field("SDK", f"{report['sdk_retries']} retries; calls failed past them: {failures}{late}")
    else:
        out += _field("faults", "none injected (no fault proxy)")
    rb = report["rollbacks"]
    out += _field(
        "rollbacks",
        f"{rb['by_sender']} by the sender (send failed), {rb['by_reconciler']} by the reconciler "
        f"(lease expired); {rb['failed']} rollback writes failed",
    )
    rc = report["reconciler"]
    state = "settled" if rc["settled"] else f"NOT settled, {len(rc['unsettled'])} records waiting"
    failed = f", {rc['failed_passes']} of them failed" if rc["failed_passes"] else ""
    faulty = f" ({rc['faulty_passes']} under faults)" if rc["faulty_passes"] else ""
    out += _field(
        "reconciler",
        f"ran {rc['passes']} passes{faulty}{failed} in {rc['seconds']} s of real time, {state}: "
        f"expired leases rolled back {rc['expired']}, re-driven {rc['redriven']}, "
        f"exhausted {rc['exhausted']}, superseded {rc['superseded']}",
    )
    out += _field("records", _counts(report["records"]) or "none")
    queue = report["queue"]
    out += _field("queue", f"{queue['messages']} messages for {queue['records']} records")
    if report.get("consumer") is not None:
        out += _field("consumer", _consumer_line(report["consumer"]))
    out += ["", "  verdict"]
    out += _field("orphans", str(len(report["orphans"])), 4)
    out += [f"      {line}" for line in report["orphans"][:SHOWN]]
    out += _field("lost", str(len(report["lost"])), 4)
    out += [f"      {line}" for line in report["lost"][:SHOWN]]
    duplicates = report["duplicates"]
    unexplained = len(report["unexpected_duplicates"])
    summary = "each explained" if not unexplained else f"{unexplained} UNEXPLAINED"
    out += _field("duplicates", f"{len(duplicates)} messages on the queue more than once, {summary}:", 4)
    shown = sorted(duplicates, key=lambda d: d["explained"])[:SHOWN]
    for duplicate in shown:
        mark = "" if duplicate["explained"] else "UNEXPLAINED "
        text = (
            f"{mark}{duplicate['message_id'][:8]}… ×{duplicate['copies']}: {'; '.join(duplicate['reasons'])}"
        )
        out += textwrap.wrap(text, WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 8)
    if len(duplicates) > len(shown):
        out.append(f"      … and {len(duplicates) - len(shown)} more (--json lists them all)")
    out += _field("breaches", str(len(report["breaches"])), 4)
    out += [f"      {line}" for line in report["breaches"][:SHOWN]]
    consumer = report.get("consumer")
    if consumer is not None:
        problems = consumer["missing"] + consumer["applied_twice"] + consumer["unexpected"]
        if not problems and consumer["finished"]:
            repeats = consumer["repeated_calls"]
            dropped = f"; {repeats} repeated calls dropped by their idempotency key" if repeats else ""
            text = (
                f"every accepted message's effect applied exactly once ({consumer['applied_once']} "
                f"messages{dropped})"
            )
        else:
            text = (
                f"{consumer['applied_once']} of {consumer['expected']} applied once; "
                f"{len(consumer['missing'])} missing, {len(consumer['applied_twice'])} applied twice, "
                f"{len(consumer['unexpected'])} unexpected"
                + ("" if consumer["finished"] else "; the queue was not emptied in time")
            )
        out += _field("effects", text, 4)
        out += [f"      {line}" for line in problems[:SHOWN]]
    waiting = rc["waiting"]
    if waiting:
        out += _field("waiting", f"{len(waiting)} records not settled yet (neither orphaned nor lost):", 4)
        out += [f"      {w['message_id'][:8]}… {w['phase']}: {w['why']}" for w in waiting[:SHOWN]]
    out.append("")
    seconds = report.get("seconds", {})
    timing = (
        f"({seconds.get('total', 0)} s: load {seconds.get('load', 0)} s, "
        f"settling {seconds.get('settle', 0)} s"
        + (f", emptying the queue {seconds.get('consume', 0)} s)" if consumer is not None else ")")
    )
    if report["ok"]:
        applied = ", every effect applied once" if consumer is not None else ""
        out.append(f"OK — every message accounted for{applied} {timing}")
    elif report["broken"]:
        out.append(f"FAILED — see the verdict above {timing}")
    elif waiting:
        out.append(f"NOT SETTLED — no promise broken, {len(waiting)} records still waiting {timing}")
    else:
        unreached = len(consumer["missing"]) if consumer is not None else 0
        out.append(
            f"NOT SETTLED — no promise broken, {unreached} messages the consumer did not reach {timing}"
        )
    return "\n".join(out)


def _consumer_line(consumer: dict[str, Any]) -> str:
    m = consumer["mapping"]
    faults = _counts(consumer["faults_by_kind"]) or "none"
    whole = m["crashed"] + m["raised"] + m["timed_out"] + m["unreadable"]
    return (
        f"{consumer['mode']}: {m['invocations']} invocations for {m['received']} receives; injected "
        f"{faults}, {m['duplicate']} duplicate and {m['concurrent']} concurrent deliveries; {whole} batches "
        f"failed whole ({m['crashed']} crashed), {m['item_failures']} messages reported failed and "
        f"delivered again; inbox records {_counts(consumer['inbox']) or 'none'}"
    )


def _field(label: str, text: str, indent: int = 2) -> list[str]:
    head = " " * indent + f"{label:<10}  "
    return textwrap.wrap(text, WIDTH, initial_indent=head, subsequent_indent=" " * len(head))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} ×{n}" for name, n in counts.items())


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()
