"""Carries several flows to their ends at once, their `Send` effects interpreted together as
SendMessageBatch requests (`sqs_batch`).

Like `runner.run_flow`, it decides nothing: each flow is advanced by the interpreter
(`statemodel.interpreter`: `step` for a write, `carry` with its own entry's outcome for a send).
Writes stay one conditional UpdateItem each — DynamoDB has no
conditional batch write short of a transaction, which would fail every claim for one superseded
record — so every claim, confirm and rollback keeps its own fence. Only the sends are shared: the
flows that reached their send by the same round go out in batches of up to ten, each flow then
advanced with its own entry's outcome. A batch starts no later than the earliest deadline among its
sends (the invocation's end or a lease's), as each send would alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import structlog

from adapters.runtime.clients import now_ms
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import Tally
from adapters.runtime.runner import Aws, Logged, finish
from adapters.runtime.sqs_batch import batches, send_batch
from statemodel.flows import Answer, Flow, Send, Write
from statemodel.interpreter import carry, send_deadline, step


def run_flows(
    flows: Sequence[Flow],
    aws: Aws,
    deadline_ms: int,
    clock: Callable[[], int] = now_ms,
    tally: Tally | None = None,
) -> list[Answer]:
    """Every flow carried to its end; the answers in the flows' order. `tally` counts what
    happened, as `run_flow`'s does."""
    log = get_logger()
    observer = Logged(log, tally)
    current = list(flows)
    while True:
        for index, flow in enumerate(current):  # each flow's writes up to its send or its end
            current[index] = _writes(flow, aws, deadline_ms, clock, observer)
        sending = [index for index, flow in enumerate(current) if isinstance(flow.effect, Send)]
        if not sending:
            return [_finish(log, flow, tally) for flow in current]
        sends = [_send(current[index]) for index in sending]
        for group in batches(sends, aws.sqs.destination):
            batch = [sends[i] for i in group]
            deadline = min(send_deadline(deadline_ms, send) for send in batch)
            for i, (outcome, call) in zip(group, send_batch(aws.sqs, batch, deadline), strict=True):
                index = sending[i]
                with _bound(current[index]):
                    current[index] = carry(current[index], outcome, call, clock(), observer)


def _writes(flow: Flow, aws: Aws, deadline_ms: int, clock: Callable[[], int], observer: Logged) -> Flow:
    """The flow's writes, each one interpreter step, up to its send or its end."""
    with _bound(flow):
        while not flow.done and isinstance(flow.effect, Write):
            _, flow = step(flow, aws, deadline_ms, clock, observer)
    return flow


def _finish(log: object, flow: Flow, tally: Tally | None) -> Answer:
    with _bound(flow):
        return finish(log, flow, tally)


def _send(flow: Flow) -> Send:
    assert isinstance(flow.effect, Send)
    return flow.effect


def _bound(flow: Flow) -> AbstractContextManager[None]:
    """The flow's record on every line logged for it (as the reconciler binds it for one flow)."""
    record = flow.record
    if record is None:
        return structlog.contextvars.bound_contextvars()
    return structlog.contextvars.bound_contextvars(
        message_id=record.message_id, correlation_id=record.message.correlation_id
    )
