"""The one interpreter of the inbox's flows: a step performs a flow's effect on the inbox's ports and
advances the flow with what came of it. `adapters.runtime.inbox` runs it on DynamoDB and the team's
handler (a Lambda's batch, the library's `Inbox`, an operator's re-arm), the explorer on its
in-memory world (`statemodel.checker.inbox_space`), so the loop that is model-checked is the loop
that runs. The outbox's is `statemodel.interpreter`; this one is its sibling over the inbox's own
effects and ports (a read, a write that may carry the team's effect, the team's handler), which the
outbox's loop has no place for.

It decides nothing (`statemodel.inbox.flows.advance` does) and performs no I/O of its own: the ports
do. What the adapters log hooks in as an `InboxObserver`, told of every step after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from statemodel.inbox.flows import InboxAnswer, InboxFlow, InboxOutcome, InboxWrite, Invoke, Read, advance

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
R_contra = TypeVar("R_contra", contravariant=True)

InboxAdvance = Callable[[InboxFlow, InboxOutcome, int], InboxFlow]  # `flows.advance`, or a mutant's


class InboxPorts(Protocol[R_co]):
    """Where the inbox's effects are performed: the record table and the team's handler (each call's
    report: `R`). Implemented on AWS by `adapters.runtime.inbox` and in memory by
    `statemodel.checker.inbox_world.InboxWorldPorts`."""

    def read(self, read: Read, deadline_ms: int | None) -> tuple[InboxOutcome, R_co]:
        """The record, strongly consistent: `Found` (its record, or None), or its `Failure`."""
        ...

    def write(self, write: InboxWrite, deadline_ms: int | None) -> tuple[InboxOutcome, R_co]:
        """One conditional write: `Written`, `Conflict` with the item as it is, or its `Failure`; a
        commit (`write.commit`, with the handler's effect beside it) also `HandlerError` when the
        effect's own part refused it."""
        ...

    def invoke(self, invoke: Invoke) -> tuple[InboxOutcome, R_co]:
        """The team's handler run: `Handled`, or `HandlerError`."""
        ...


class InboxObserver(Protocol[R_contra]):
    def stepped(self, before: InboxFlow, outcome: InboxOutcome, report: R_contra, after: InboxFlow) -> None:
        """`before`'s effect came out as `outcome` (the port's `report` of the call); the flow is now
        `after`."""
        ...


def perform(flow: InboxFlow, ports: InboxPorts[R], deadline_ms: int | None) -> tuple[InboxOutcome, R]:
    """The flow's effect carried out: a read or a write on the record table, a run of the handler."""
    effect = flow.effect
    if isinstance(effect, InboxAnswer):
        raise ValueError("the flow has finished")
    if isinstance(effect, Read):
        return ports.read(effect, deadline_ms)
    if isinstance(effect, InboxWrite):
        return ports.write(effect, deadline_ms)
    return ports.invoke(effect)


def carry(
    flow: InboxFlow,
    outcome: InboxOutcome,
    report: R,
    now: int,
    observer: InboxObserver[R] | None = None,
    advance: InboxAdvance = advance,
) -> InboxFlow:
    """The flow after its effect came out as `outcome`, the observer told."""
    after = advance(flow, outcome, now)
    if observer is not None:
        observer.stepped(flow, outcome, report, after)
    return after


def step(
    flow: InboxFlow,
    ports: InboxPorts[R],
    deadline_ms: int | None,
    clock: Callable[[], int],
    observer: InboxObserver[R] | None = None,
    advance: InboxAdvance = advance,
) -> tuple[InboxOutcome, InboxFlow]:
    """One effect performed and the flow advanced (at `clock()` once it is done); the outcome, and the
    flow after it."""
    outcome, report = perform(flow, ports, deadline_ms)
    return outcome, carry(flow, outcome, report, clock(), observer, advance)


def run(
    flow: InboxFlow,
    ports: InboxPorts[R],
    deadline_ms: int | None,
    clock: Callable[[], int],
    observer: InboxObserver[R] | None = None,
    advance: InboxAdvance = advance,
) -> InboxFlow:
    """The flow carried to its end, one `step` at a time."""
    while not flow.done:
        _, flow = step(flow, ports, deadline_ms, clock, observer, advance)
    return flow
