"""A reconciler pass fanned out across Lambda invocations.

With `SENDGUARD_RECONCILER_FANOUT` above 1, the scheduled invocation is a coordinator: it splits the
`attention` index's shards (every shard a pass reads, `Shards.read`) into that many groups (fewer
when there are fewer shards), shard `s` in group `s mod groups`, and invokes
`SENDGUARD_RECONCILER_WORKER_FUNCTION` once per group through Lambda's asynchronous invoke
(`InvocationType="Event"`): Lambda queues, runs and scales the workers, no scheduler of sendguard's
own. Each worker runs an ordinary pass (`reconcile_pass`) over its group's shards alone, within its
own invocation's time, with its `SENDGUARD_RECONCILER_WORKERS` threads.

Nothing here needs the workers to be alone on their shards. Every claim, rollback, re-drive and
confirm is a write conditioned on the version it read (fenced by attempt), so two workers on one
shard (a pass that overlaps the previous one, an event Lambda delivers twice, an invoke the SDK
retried after a timeout) cost only superseded writes, never a second claim of one record.

A group whose invoke fails (past the SDK's retries: throttled, no permission, the function gone) is
logged (`aws_failure`, then `fanout_invoke_failed`) and counted (`ReconcilerInvokeFailed`), and the
coordinator drains its shards itself, in its own pass after the invokes: a pass still covers every
shard, only more slowly, and what it cannot finish waits for the next pass. (An ambiguous failure,
a timeout after the request left, may have queued the worker all the same: then both drain the
shards, fenced.) The pass's id is the correlation id of the coordinator's and its workers' lines.

A worker's payload is input like any other: `worker_shards` reads it, and refuses a malformed one
(`InvalidPayload`) before anything is read or written.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from adapters.runtime.call_report import CallReport, call
from adapters.runtime.classify import Classified, classify, failed
from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.config import Config
from adapters.runtime.log_events import FANOUT_INVOKE_FAILED, RECONCILE_FANOUT, emit
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import RECONCILER_INVOKE_FAILED, RECONCILER_INVOKED, Tally
from adapters.runtime.metrics import documents as metric_documents
from adapters.runtime.metrics import publish as publish_metrics
from adapters.runtime.reconciler import PassSummary
from adapters.runtime.runner import log_failure
from statemodel.attention import Shards
from statemodel.categories import ErrorCategory

__all__ = [
    "KIND",
    "FanOutSummary",
    "InvalidPayload",
    "Invoker",
    "LambdaInvoker",
    "fan_out",
    "shard_groups",
    "worker_payload",
    "worker_shards",
]

KIND = "sendguard.reconcile-shards"  # what a worker's payload says it is
_FIELDS = frozenset({"sendguard", "shards", "shards_read", "pass_id"})
_PASS_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


class InvalidPayload(ValueError):
    """A worker invocation's payload is malformed: nothing was read or written."""


def shard_groups(read: int, fanout: int) -> list[tuple[int, ...]]:
    """The shards 0..read-1 in min(fanout, read) groups, shard `s` in group `s mod groups`: disjoint,
    together every shard, none empty, sizes differing by at most one."""
    count = max(1, min(fanout, read))
    return [tuple(range(first, read, count)) for first in range(count)]


def worker_payload(shards: tuple[int, ...], read: int, pass_id: str) -> dict[str, Any]:
    """A worker invocation's payload: its shards, the shard count they were split from, the pass."""
    return {"sendguard": KIND, "shards": list(shards), "shards_read": read, "pass_id": pass_id}


def worker_shards(event: object, shards: Shards) -> frozenset[int] | None:
    """The shards a worker's payload names; None when `event` is no worker's payload (EventBridge's
    scheduled event: a whole pass, or the coordinator's). Raises InvalidPayload, saying what is
    wrong, for anything that claims to be one (any of a payload's keys among its own) and is not:
    an unknown kind or key, shards that are not distinct whole numbers below the shards this
    function reads, none or more than that, or a split made for another shard count (a deployment
    that changed `SENDGUARD_INDEX_SHARDS_READ` between the coordinator and the worker: the next
    pass splits them again)."""
    if not isinstance(event, Mapping) or not (_FIELDS & set(event)):
        return None
    if event.get("sendguard") != KIND:
        raise InvalidPayload(f"payload: 'sendguard' must be {KIND!r}")
    unknown = sorted(str(key) for key in set(event) - _FIELDS)
    if unknown:
        raise InvalidPayload(f"payload: unknown keys {unknown}")
    read = event.get("shards_read")
    if not _whole(read) or read != shards.read:
        raise InvalidPayload(
            f"payload: shards_read {read!r} is not this function's {shards.read} "
            "(SENDGUARD_INDEX_SHARDS_READ)"
        )
    pass_id = event.get("pass_id")
    if not isinstance(pass_id, str) or not _PASS_ID.fullmatch(pass_id):
        raise InvalidPayload("payload: pass_id must be 1-64 of A-Z a-z 0-9 -")
    named = event.get("shards")
    if not isinstance(named, list) or not 1 <= len(named) <= shards.read:
        raise InvalidPayload(f"payload: shards must be a list of 1 to {shards.read} shard numbers")
    if not all(_whole(s) and 0 <= s < shards.read for s in named):
        raise InvalidPayload(f"payload: shards must be whole numbers in 0..{shards.read - 1}: {named!r}")
    if len(set(named)) != len(named):
        raise InvalidPayload(f"payload: shards named twice: {named!r}")
    return frozenset(named)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Invoker(Protocol):
    """Hands one worker's payload to Lambda's asynchronous invoke; the call's report (its error
    classified, None when Lambda queued the event). `LambdaInvoker` in production;
    `adapters.testing.fanout.InProcessInvoker` runs the workers in the test's process."""

    def invoke(self, payload: Mapping[str, Any], deadline_ms: int) -> CallReport: ...


@attrs.define
class LambdaInvoker:
    """`lambda:Invoke` with `InvocationType="Event"` on one function: Lambda answers 202 once it has
    queued the event, and runs it (retrying a failed run as the function's EventInvokeConfig says)."""

    client: Any
    function: str

    @classmethod
    def from_config(cls, config: Config) -> LambdaInvoker:
        if config.reconciler_worker_function is None:
            raise ValueError("no worker function configured (SENDGUARD_RECONCILER_WORKER_FUNCTION)")
        return cls(make_client("lambda", config.aws_max_attempts), config.reconciler_worker_function)

    def invoke(self, payload: Mapping[str, Any], deadline_ms: int) -> CallReport:
        def queued(answer: Mapping[str, Any]) -> bool | Classified:
            status = answer.get("StatusCode")
            if status != 202:  # Event invokes answer 202: anything else did not queue it as asked
                return failed(ErrorCategory.AMBIGUOUS, f"StatusCode{status}", status=status)
            return True

        _, done = call(
            self.client,
            "lambda",
            "Invoke",
            lambda: self.client.invoke(
                FunctionName=self.function, InvocationType="Event", Payload=json.dumps(payload).encode()
            ),
            deadline_ms,
            classify,
            answered=queued,
        )
        return done


@attrs.define
class FanOutSummary:
    pass_id: str
    function: str
    groups: int = 0  # groups of shards, one worker invocation each
    invoked: int = 0  # worker invocations Lambda queued
    failed_invokes: int = 0  # worker invocations that failed: their shards drained here
    drained_here: list[int] = attrs.field(factory=list)  # those shards
    own_pass: PassSummary | None = None  # this invocation's pass over them, if any

    def as_dict(self) -> dict[str, Any]:
        own = None if self.own_pass is None else self.own_pass.as_dict()
        return attrs.asdict(self, recurse=False) | {"own_pass": own}


def fan_out(
    config: Config,
    invoker: Invoker,
    drain: Callable[[frozenset[int]], PassSummary],
    deadline_ms: int,
    clock: Callable[[], int] = now_ms,
    new_pass_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    groups: Callable[[int, int], list[tuple[int, ...]]] = shard_groups,
) -> FanOutSummary:
    """The coordinator: one worker invocation per group of shards, then `drain` (a pass over the
    given shards, within this invocation's time) over the shards of the groups whose invoke failed.
    `groups` splits the shards (`shard_groups`; the tests' mutants split them wrongly)."""
    log = get_logger()
    read = config.shards.read
    function = config.reconciler_worker_function or ""
    summary = FanOutSummary(pass_id=new_pass_id(), function=function)
    failed: set[int] = set()
    split = groups(read, config.reconciler_fanout)
    payloads = [worker_payload(group, read, summary.pass_id) for group in split]
    for group, done in zip(split, _invoke_all(invoker, payloads, deadline_ms, config), strict=True):
        summary.groups += 1
        if done.error is None:
            summary.invoked += 1
            continue
        summary.failed_invokes += 1
        failed.update(group)
        log_failure(log, done, None)
        emit(
            log,
            FANOUT_INVOKE_FAILED,
            pass_id=summary.pass_id,
            function=function,
            shards=list(group),
            category=done.error.category.value,
            code=done.error.code,
        )
    summary.drained_here = sorted(failed)
    if failed:
        summary.own_pass = drain(frozenset(failed))  # it publishes its own pass's metrics
    emit(log, RECONCILE_FANOUT, **summary.as_dict())
    if config.metrics:
        extra = {RECONCILER_INVOKED: summary.invoked, RECONCILER_INVOKE_FAILED: summary.failed_invokes}
        publish_metrics(metric_documents((), Tally(), clock(), config.metrics_namespace, extra))
    return summary


def _invoke_all(
    invoker: Invoker, payloads: list[dict[str, Any]], deadline_ms: int, config: Config
) -> list[CallReport]:
    """Every payload's invoke, in order: on this thread with one reconciler worker (a fixed order, as
    a pass's), else `SENDGUARD_RECONCILER_WORKERS` at a time (a wide fan-out's invokes, ~20 ms
    each, would otherwise delay its last workers by seconds)."""
    threads = min(config.reconciler_workers, len(payloads))
    if threads <= 1:
        return [invoker.invoke(payload, deadline_ms) for payload in payloads]
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sendguard-fan-out") as pool:
        # Each invoke in a copy of this thread's context: its log lines keep the pass's correlation id.
        running = [
            pool.submit(contextvars.copy_context().run, invoker.invoke, payload, deadline_ms)
            for payload in payloads
        ]
        return [invoke.result() for invoke in running]
