"""The one interpreter of the flows' effects: a step performs a flow's effect on the ports and advances
the flow with what came of it. The adapters run it on AWS (`adapters.runtime.runner`: the Lambda, the
library's `Outbox`, the reconciler), the explorer on the in-memory world (`statemodel.checker.space`),
so the loop that is model-checked is the loop that runs.

It decides nothing (`statemodel.flows.advance` does) and performs no I/O of its own: the ports do.
What the adapters log and count hooks in as an `Observer`, told of every step after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from statemodel.flows import Answer, Flow, Outcome, Send, Write, advance
from statemodel.ports import MessageQueue, RecordStore

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
R_contra = TypeVar("R_contra", contravariant=True)

Advance = Callable[[Flow, Outcome, int], Flow]  # `flows.advance`, unless the explorer runs a mutant's


class Ports(Protocol[R_co]):
    """Where the effects are performed: the record table and the queue (each call's report: `R`)."""

    @property
    def store(self) -> RecordStore[R_co]: ...

    @property
    def queue(self) -> MessageQueue[R_co]: ...


class Observer(Protocol[R_contra]):
    def stepped(self, before: Flow, outcome: Outcome, report: R_contra, after: Flow) -> None:
        """`before`'s effect came out as `outcome` (the backend's `report` of the call); the flow is
        now `after`."""
        ...


def send_deadline(deadline_ms: int | None, send: Send) -> int:
    """A send starts no later than the invocation's end nor its own deadline (the lease's less its
    margin), whichever comes first."""
    return send.deadline if deadline_ms is None else min(deadline_ms, send.deadline)


def perform(flow: Flow, ports: Ports[R], deadline_ms: int | None) -> tuple[Outcome, R]:
    """The flow's effect carried out: a write on the record table, a send on the queue."""
    effect = flow.effect
    if isinstance(effect, Write):
        return ports.store.perform(effect, deadline_ms)
    if isinstance(effect, Answer):
        raise ValueError("the flow has finished")  # pragma: no mutate (message text, not contract)
    return ports.queue.perform(effect, send_deadline(deadline_ms, effect))


def carry(
    flow: Flow,
    outcome: Outcome,
    report: R,
    now: int,
    observer: Observer[R] | None = None,
    advance: Advance = advance,
) -> Flow:
    """The flow after its effect came out as `outcome`, the observer told."""
    after = advance(flow, outcome, now)
    if observer is not None:
        observer.stepped(flow, outcome, report, after)
    return after


def step(
    flow: Flow,
    ports: Ports[R],
    deadline_ms: int | None,
    clock: Callable[[], int],
    observer: Observer[R] | None = None,
    advance: Advance = advance,
) -> tuple[Outcome, Flow]:
    """One effect performed and the flow advanced (at `clock()` once it is done); the outcome, and
    the flow after it."""
    outcome, report = perform(flow, ports, deadline_ms)
    return outcome, carry(flow, outcome, report, clock(), observer, advance)


def run(
    flow: Flow,
    ports: Ports[R],
    deadline_ms: int | None,
    clock: Callable[[], int],
    observer: Observer[R] | None = None,
) -> Flow:
    """The flow carried to its end, one `step` at a time."""
    while not flow.done:
        _, flow = step(flow, ports, deadline_ms, clock, observer)
    return flow
