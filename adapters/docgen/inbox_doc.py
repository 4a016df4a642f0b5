"""The inbox's transition table as a `transitions` state machine and as the text of
docs/inbox-transitions.md (`make docs`; `make docs-check` fails when they disagree).

Docs code, like `adapters.docgen.diagram` for the outbox: nothing on the Lambda's import path imports
it or `transitions`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

from adapters.docgen.diagram import rules_markdown
from adapters.runtime.inbox import (
    MIN_START_MS,
    PROCESS_OUTCOMES,
    REARM_OUTCOMES,
    InboxRearmOutcome,
    ProcessOutcome,
)
from statemodel.errors import ForbiddenCommand, StaleAttempt
from statemodel.inbox.flows import (
    FIRST,
    RULES,
    Came,
    CommitEffect,
    CompleteClaim,
    CountFailure,
    End,
    InboxResult,
    ReadRecord,
    ReleaseClaim,
    RunHandler,
    Step,
    TakeClaim,
)
from statemodel.inbox.records import ClaimHeld, InboxPhase
from statemodel.inbox.table import INBOX_TRANSITIONS, InboxTransition, Mode, forbidden_moves
from statemodel.sizes import INBOX_MAX_KEY_BYTES

FENCED = "own_claim"

_P, _R = ProcessOutcome, InboxRearmOutcome

# What each outcome of a delivery means for the message, in the batch response (`ok` lets SQS delete it).
PROCESS_MEANING: dict[ProcessOutcome, str] = {
    _P.DONE: "this delivery applied the effect (transactional) or completed the handler (guarded)",
    _P.DUPLICATE: "already DONE: answered from the record (guarded: its stored result); nothing ran",
    _P.BUSY: "another invocation holds the message's claim under a live lease; nothing ran",
    _P.RETRY: "not done this time (the handler or an AWS call failed); the next delivery tries",
    _P.LOST: "the handler ran, but its claim was taken over after its lease ran out: the new holder "
    "completes the message (and runs the handler again, with the same idempotency key)",
    _P.GIVEN_UP: "FAILED: receives exhausted; left to the queue's redrive policy and the operator",
    _P.NOT_STARTED: f"not started: {MIN_START_MS / 1000:g} s or less left in the invocation, or an "
    "earlier message of its FIFO group was not done; no flow ran",
    _P.KEY_MISSING: "the message has no key that fits (its attribute or body field, 1 to "
    f"{INBOX_MAX_KEY_BYTES:,} bytes of UTF-8); not processed, and the queue's redrive policy takes it",
}

# What each outcome of `Inbox.rearm` (and `inbox-failed --rearm`) means.
REARM_MEANING: dict[InboxRearmOutcome, str] = {
    _R.REARMED: "the FAILED message has a fresh receive budget: the next delivery processes it",
    _R.NOT_FAILED: "only a FAILED message is re-armed: left as it is",
    _R.NOT_FOUND: "no inbox record with this key",
    _R.CHANGED: "the record changed since it was read: left as it is",
    _R.FAILED: "an AWS failure (in `failure`, `category:code`): nothing changed, or unknown",
}


def condition_names(row: InboxTransition) -> list[str | Callable[..., bool | None]]:
    """The machine's condition callbacks for a row: fencing first, then the guard."""
    names: list[str | Callable[..., bool | None]] = [FENCED] if row.fenced else []
    if row.guard is not None:
        names.append(row.guard.name.lower())
    return names


def build_machine(model: Any, *, graph: bool = False) -> Any:
    """A `transitions` machine with one state per inbox phase and one transition per table row; the
    model answers the conditions, one method per name in `condition_names`."""
    from transitions import Machine
    from transitions.extensions import GraphMachine

    machine_class: type[Machine] = GraphMachine if graph else Machine
    options: dict[str, Any] = {"graph_engine": "mermaid", "show_conditions": True} if graph else {}
    machine = machine_class(
        model=model,
        states=[phase.value for phase in InboxPhase],
        initial=InboxPhase.ABSENT.value,
        auto_transitions=False,
        **options,
    )
    for row in INBOX_TRANSITIONS:
        machine.add_transition(
            row.command.__name__, row.source.value, row.target.value, conditions=condition_names(row)
        )
    return machine


class _Drawing:
    """A model for drawing: no condition is ever evaluated."""


def mermaid() -> str:
    drawing = _Drawing()
    build_machine(drawing, graph=True)
    text: str = drawing.get_graph().draw(None)  # type: ignore[attr-defined]
    absent = InboxPhase.ABSENT.value
    return text.replace(f"Class {absent} s_active", f"Class {absent} s_default")


def inbox_markdown() -> str:
    rows = "\n".join(
        f"| {_modes(row)} | {row.source.value} | `{row.command.__name__}` | {_guard_text(row)} "
        f"| {row.condition} | {', '.join(f'`{e.__name__}`' for e in row.events)} | {row.target.value} |"
        for row in INBOX_TRANSITIONS
    )
    forbidden = "\n".join(f"| {phase.value} | `{command.__name__}` |" for phase, command in forbidden_moves())
    outcomes = "\n".join(
        f"| `{outcome.value}` | {'deleted' if outcome.value in _OK else 'batchItemFailure'} "
        f"| {PROCESS_MEANING[outcome]} |"
        for outcome in ProcessOutcome
    )
    rearms = "\n".join(f"| `{outcome.value}` | {REARM_MEANING[outcome]} |" for outcome in InboxRearmOutcome)
    return _TEMPLATE.format(
        mermaid=mermaid().strip(),
        rows=rows,
        forbidden=forbidden,
        next_steps=next_steps_markdown(),
        came="\n".join(f"* *{came.name.lower()}*: {came.value}" for came in Came),
        first="\n".join(f"* {mode.value}: {_step_text(step)}" for mode, step in FIRST.items()),
        outcomes=outcomes,
        rearms=rearms,
        flow_results=_listed(PROCESS_OUTCOMES),
        before_flows=_listed(set(ProcessOutcome) - set(PROCESS_OUTCOMES.values())),
        rearm_results=_listed(REARM_OUTCOMES),
        rearm_outcomes=_listed(REARM_OUTCOMES.values()),
        forbidden_error=ForbiddenCommand.__name__,
        stale_error=StaleAttempt.__name__,
        held_error=ClaimHeld.__name__,
        fenced=FENCED,
    )


_OK = (InboxResult.DONE.value, InboxResult.DUPLICATE.value)


def _listed(values: Iterable[enum.Enum]) -> str:
    """Enum members as `value`s, in their enum's order, joined with commas and a final "and"."""
    ordered = sorted(values, key=lambda v: list(type(v).__members__.values()).index(v))
    names = [f"`{v.value}`" for v in ordered]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def next_steps_markdown() -> str:
    """`statemodel.inbox.flows.RULES`, one row each: what a flow does after its effect came out."""
    return rules_markdown(RULES, _step_text)


def _step_text(step: Step) -> str:
    match step:
        case ReadRecord():
            return "read the record"
        case TakeClaim(again=again):
            return f"write `Claim` under the flow's lease (twice at most: a third time, {_step_text(again)})"
        case RunHandler(late=late):
            return f"run the handler (past the invocation's deadline, {_step_text(late)})"
        case CommitEffect():
            return "write `Commit` in the team's transaction, beside the handler's effect"
        case CountFailure():
            return "write `RecordFailure` (a failed receive, with the flow's failure)"
        case CompleteClaim():
            return "write `Complete` with the handler's result"
        case ReleaseClaim():
            return "write `Release` with the handler's failure"
    assert isinstance(step, End)
    why = f" ({step.failure.code})" if step.failure is not None else ""
    flags = ", its commit or completion not landed" if step.uncompleted else ""
    return f"answer {step.result.value.upper()}{why}{flags}"


def _modes(row: InboxTransition) -> str:
    return "both" if row.modes == frozenset(Mode) else ", ".join(sorted(m.value for m in row.modes))


def _guard_text(row: InboxTransition) -> str:
    parts = ["the command names the attempt that holds the claim"] if row.fenced else []
    if row.guard is not None:
        parts.append(row.guard.value)
    return "; ".join(parts) or "—"


_TEMPLATE = """<!-- Generated by `make docs` from statemodel/inbox/table.py. Do not edit: `make docs-check`
     fails when this file and the table disagree. -->
# The inbox's transitions

One inbox record per consumed message (docs/inbox.md). Its phase is its persisted status
(`sg_inbox_status`): PROCESSING (guarded mode: claimed by one attempt, under a lease), WAITING (not
done; the next delivery tries again), DONE (for good) and FAILED (given up after `max_receives`
receives; only an operator re-arms it). Every arrow is one conditional DynamoDB write that appends
the listed events to the record's history; the transactional `Commit` is that write inside the
team's own transaction, beside the handler's effect. Conditions in brackets: `{fenced}` — the
command names the attempt that holds the claim; the others are the guards in the table below.

```mermaid
{mermaid}
```

## Every allowed transition

| Mode | From | Command | Guard | Write condition | Events appended | To |
|---|---|---|---|---|---|---|
{rows}

When several rows share a phase and a command, the guard picks one. A fenced command that names
another attempt raises `{stale_error}`; a claim of a claim whose lease is live raises `{held_error}`;
both are kinds of `{forbidden_error}`. A WAITING record with no receive left is met only when
`max_receives` is lowered between deliveries (a release that leaves none gives up at once): its
claim's row is the other half of a guard.

## Forbidden moves

Every other (phase, command) pair raises `{forbidden_error}`; nothing is ignored silently.

| Phase | Command |
|---|---|
{forbidden}

## What a flow does next

Each delivery (`statemodel.inbox.flows`) performs one read, write or run of the handler at a time;
an operator's re-arm is one write. A delivery's first step is its mode's:

{first}

What a flow does after each step is `statemodel.inbox.flows.RULES` (why: the comment above it), by
the flow's mode, its stage, what came of the effect, and the record as the flow now knows it (its
phase; a claim's lease, live or run out, as of now). What came is one of:

{came}

Where two rules fit, the first holds; an outcome no rule fits raises.

| Mode | Stage | What came | Record | Next |
|---|---|---|---|---|
{next_steps}

## What a delivery answers

`process` and `process_batch` answer each message with an `adapters.ProcessOutcome`. A delivery's
flow ends in {flow_results} (`InboxAnswer.result`), given as the outcome of the same value;
{before_flows} are answered before any flow starts. `ProcessOutcome` holds exactly these:

| Outcome | In the batch response | Meaning |
|---|---|---|
{outcomes}

The batch response lists every message not deleted in `batchItemFailures`, so SQS delivers it again
after its visibility timeout.

## What a re-arm answers

`Inbox.rearm` (and `sendguard inbox-failed --rearm`) answers an `adapters.InboxRearmOutcome`. Its
flow ends in {rearm_results} (`InboxAnswer.result`, never a delivery's), given as {rearm_outcomes};
a failed request is `failed`, and the rest are answered before the flow starts.
`InboxRearmOutcome` holds exactly these:

| Outcome | Meaning |
|---|---|
{rearms}

## Examples

These run as doctests (`make test`).

>>> from statemodel.inbox import decide, evolve_all, Claim, Complete, InboxMessage
>>> message = InboxMessage("order-42", "sha256:9f86d0")
>>> events = decide(None, Claim(message, "a-1", lease_expires_at=61_000, max_receives=5), now=1_000)
>>> [type(e).__name__ for e in events]
['Received', 'ClaimTaken']
>>> record = evolve_all(None, events)
>>> record.phase.value, record.receives, record.attempt_id
('PROCESSING', 1, 'a-1')
>>> decide(record, Claim(message, "a-2", 62_000, 5), now=2_000)
Traceback (most recent call last):
  ...
statemodel.inbox.records.ClaimHeld: Claim: order-42 is held by 'a-1' until 61000, when its lease expires
>>> decide(record, Complete("a-2", "ok"), now=2_000)
Traceback (most recent call last):
  ...
statemodel.errors.StaleAttempt: Complete names attempt 'a-2', but order-42 is held by 'a-1'
>>> taken = evolve_all(record, decide(record, Claim(message, "a-2", 122_000, 5), now=61_000))
>>> taken.attempt_id, taken.receives
('a-2', 2)
>>> done = evolve_all(taken, decide(taken, Complete("a-2", '{{"charged": true}}'), now=62_000))
>>> done.phase.value, done.result
('DONE', '{{"charged": true}}')
>>> decide(done, Claim(message, "a-3", 200_000, 5), now=130_000)
Traceback (most recent call last):
  ...
statemodel.errors.ForbiddenCommand: Claim is forbidden: a DONE message is never applied again
"""

__all__ = ["build_machine", "condition_names", "inbox_markdown", "mermaid", "next_steps_markdown"]
