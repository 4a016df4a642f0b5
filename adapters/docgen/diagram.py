"""The transition table as a `transitions` state machine and as the text of docs/transitions.md.

Docs code: the only module of statemodel that imports `transitions`, and nothing on the Lambda's
import path imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from statemodel.categories import CONSEQUENCES
from statemodel.errors import ForbiddenCommand, LeaseStillLive, StaleAttempt
from statemodel.flows import RULES, Claim, Confirm, End, RollBack, SendMessage, Step, Whose
from statemodel.records import Phase
from statemodel.table import TRANSITIONS, Transition, forbidden_moves

FENCED = "own_attempt"


def condition_names(row: Transition) -> list[str | Callable[..., bool | None]]:
    """The machine's condition callbacks for a row: fencing first, then the guard."""
    names: list[str | Callable[..., bool | None]] = [FENCED] if row.fenced else []
    if row.guard is not None:
        names.append(row.guard.name.lower())
    return names


def build_machine(model: Any, *, graph: bool = False) -> Any:
    """A `transitions` machine with one state per phase and one transition per table row. The
    model answers the conditions: a method per name in `condition_names`."""
    from transitions import Machine
    from transitions.extensions import GraphMachine

    machine_class: type[Machine] = GraphMachine if graph else Machine

    options: dict[str, Any] = {"graph_engine": "mermaid", "show_conditions": True} if graph else {}
    machine = machine_class(
        model=model,
        states=[phase.value for phase in Phase],
        initial=Phase.ABSENT.value,
        auto_transitions=False,
        **options,
    )
    for row in TRANSITIONS:
        machine.add_transition(
            row.command.__name__,
            row.source.value,
            row.target.value,
            conditions=condition_names(row),
        )
    return machine


class _Drawing:
    """A model for drawing: no condition is ever evaluated."""


def mermaid() -> str:
    """The machine's Mermaid stateDiagram-v2, as transitions' mermaid engine draws it."""
    drawing = _Drawing()
    build_machine(drawing, graph=True)
    text: str = drawing.get_graph().draw(None)  # type: ignore[attr-defined]
    # The engine marks the model's current state as active; a document has no current state.
    return text.replace(f"Class {Phase.ABSENT.value} s_active", f"Class {Phase.ABSENT.value} s_default")


def transitions_markdown() -> str:
    rows = "\n".join(
        f"| {row.source.value} | `{row.command.__name__}` | {_guard_text(row)} | {row.condition} "
        f"| {', '.join(f'`{e.__name__}`' for e in row.events)} | {row.target.value} |"
        for row in TRANSITIONS
    )
    forbidden = "\n".join(f"| {phase.value} | `{command.__name__}` |" for phase, command in forbidden_moves())
    consequences = "\n".join(
        f"| {category.value} | {_yes(c.roll_back)} | {_yes(c.redrive)} | {_yes(c.may_have_sent)} "
        f"| {c.http_status}{' + Retry-After' if c.retry_after else ''} |"
        for category, c in CONSEQUENCES.items()
    )
    return _TEMPLATE.format(
        mermaid=mermaid().strip(),
        rows=rows,
        next_steps=next_steps_markdown(),
        forbidden=forbidden,
        consequences=consequences,
        forbidden_error=ForbiddenCommand.__name__,
        stale_error=StaleAttempt.__name__,
        lease_error=LeaseStillLive.__name__,
        fenced=FENCED,
    )


def next_steps_markdown() -> str:
    """`statemodel.flows.RULES`, one row each: what a flow does after its effect came out."""
    return rules_markdown(RULES, _step_text)


def rules_markdown(rules: Iterable[tuple[Any, Any, Any, Any, Any]], step_text: Callable[[Any], str]) -> str:
    """A flows' table of rules (the outbox's or the inbox's: who, stage, what came, the record as
    seen, the step), one markdown row each, the step in `step_text`'s words."""
    rows = (
        (_values(who), _values(stages), _values(cames, "name").lower(), _values(seen), step_text(step))
        for who, stages, cames, seen, step in rules
    )
    return "\n".join(f"| {' | '.join(row)} |" for row in rows)


def _values(values: Any, attribute: str = "value") -> str:
    """One value, several, or "any" for every member of their enum."""
    values = values if isinstance(values, tuple) else (values,)
    if len(values) > 1 and values == tuple(type(values[0]).__members__.values()):
        return "any"
    return ", ".join(str(getattr(value, attribute)) for value in values)


def _step_text(step: Step) -> str:
    match step:
        case Claim(cause=cause):
            return f"claim the record (`Claimed`, cause {cause.value})"
        case SendMessage():
            return "send the message"
        case Confirm():
            return "write `SendConfirmed`"
        case RollBack():
            return "write `SendFailed` and roll back"
    assert isinstance(step, End)
    failure = step.failure
    why = (
        ""
        if failure is None
        else " (the send's failure)"
        if failure is Whose.SEND
        else " (the request's failure)"
        if failure is Whose.OUTCOME
        else f" ({failure.code})"
    )
    flags = (
        ", confirm not written"
        if step.unconfirmed
        else ", rollback not written"
        if step.rollback_failed
        else ""
    )
    held = ", with the record the flow held" if step.held else ""
    return f"answer {step.result.value.upper()}{why}{flags}{held}"


def _guard_text(row: Transition) -> str:
    parts = ["the command names the attempt that owns the record"] if row.fenced else []
    if row.guard is not None:
        parts.append(row.guard.value)
    return "; ".join(parts) or "—"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


_TEMPLATE = """<!-- Generated by `make docs` from statemodel/table.py. Do not edit: `make docs-check` fails
     when this file and the table disagree. -->
# Allowed transitions

The record's phases refine its persisted `status`: `PENDING` is PENDING or EXHAUSTED, `QUEUED` is
IN_FLIGHT (claimed by one attempt, under a lease) or CONFIRMED (SQS accepted the message). Every
arrow is one conditional DynamoDB write that appends the listed events to the record's history.
Conditions in brackets: `{fenced}` — the command names the attempt that owns the record; the others are
the guards in the table below.

```mermaid
{mermaid}
```

## Every allowed transition

| From | Command | Guard | Write condition | Events appended | To |
|---|---|---|---|---|---|
{rows}

When several rows share a phase and a command, the guard picks one. A fenced command that names
another attempt raises `{stale_error}`; `ExpireLease` before the lease has run out raises
`{lease_error}`; both are kinds of `{forbidden_error}`.

## What a flow does next

Each flow (`statemodel.flows`: a client's `send`, the outbox's `pending_put` then `dispatch`, the
reconciler's re-drive and expiry, an operator's re-arm) performs one write or send at a time; what it
does after one is `statemodel.flows.RULES` (why: the comment above it), by the flow's kind, its stage,
what came of the effect (written; its condition failed on a record of the same request, of another,
or on none; SQS accepted it; it failed outright) and the phase of the record as the flow now knows
it. Where two rules fit, the first holds; an outcome no rule fits raises.

| Flow | Stage | What came | Record | Next |
|---|---|---|---|---|
{next_steps}

## Forbidden moves

Every other (phase, command) pair raises `{forbidden_error}`; nothing is ignored silently.

| Phase | Command |
|---|---|
{forbidden}

## What a failed send leads to

| Category | Rolled back | Re-driven later | May be on the queue already | Client answer (SYSTEM_ERROR) |
|---|---|---|---|---|
{consequences}

A permanent failure is rolled back and flagged EXHAUSTED at once: re-sending cannot help until an
operator acts. Once the cause is fixed, the operator re-arms the record (`Rearm`, with who and why:
`sendguard redrive --exhausted`, docs/operations.md): it goes back to PENDING with a fresh attempt
budget, its history keeping the exhaustion and the re-arm, and the reconciler re-drives it. Which AWS
errors fall in which category: [errors.md](errors.md).

## Examples

These run as doctests (`make test`).

>>> from statemodel import decide, replay, Submit, ConfirmSend, ExpireLease, Message
>>> message = Message("m-1", '{{"order":42}}', (), "corr-1", created_at=1_000, request_hash="h")
>>> events = decide(None, Submit(message, attempt_id="a-1", lease_expires_at=61_000), now=1_000)
>>> [type(e).__name__ for e in events]
['Accepted', 'Claimed']
>>> record = replay(events)
>>> record.status.value, record.phase.value, record.version
('QUEUED', 'IN_FLIGHT', 2)
>>> decide(record, ConfirmSend(attempt_id="a-2", sqs_message_id="s-1"), now=2_000)
Traceback (most recent call last):
  ...
statemodel.errors.StaleAttempt: ConfirmSend names attempt 'a-2', but m-1 is owned by attempt 'a-1'
>>> decide(record, ExpireLease(attempt_id="a-1"), now=2_000)
Traceback (most recent call last):
  ...
statemodel.errors.LeaseStillLive: ExpireLease on IN_FLIGHT record: guard failed (now >= lease_expires_at)
>>> confirmed = replay([*events, *decide(record, ConfirmSend("a-1", "s-1"), now=2_000)])
>>> confirmed.phase.value, confirmed.sqs_message_id
('CONFIRMED', 's-1')
>>> decide(confirmed, ExpireLease(attempt_id="a-1"), now=99_000)
Traceback (most recent call last):
  ...
statemodel.errors.ForbiddenCommand: ExpireLease is forbidden: a confirmed record is never rolled back

A flow is driven by hand as the adapters drive it (`statemodel.interpreter`): carry out its `effect`
(a `Write` or a `Send`), give `advance` what came of it (`Written`, `ConditionFailed` with the record
found, `Sent` with SQS's message id, or a `Failure`), until the effect is the `Answer`:

>>> from statemodel import ErrorCategory, Failure, Sent, Settings, Written, advance, start_submit
>>> flow = start_submit(message, "a-1", lease_expires_at=61_000, now=1_000, settings=Settings())
>>> type(flow.effect).__name__
'Write'
>>> flow = advance(flow, Written(), 1_010)
>>> type(flow.effect).__name__
'Send'
>>> sent = advance(advance(flow, Sent("sqs-1"), 1_020), Written(), 1_030)
>>> sent.answer.result.value, sent.answer.http_status, sent.record.phase.value
('sent', 202, 'CONFIRMED')
>>> throttled = Failure(ErrorCategory.RETRYABLE, "ThrottlingException")
>>> failed = advance(advance(flow, throttled, 1_020), Written(), 1_030)
>>> failed.answer.result.value, failed.answer.http_status, failed.answer.retryable
('failed', 503, True)
>>> failed.record.phase.value
'PENDING'
"""

__all__ = ["build_machine", "condition_names", "mermaid", "transitions_markdown"]
