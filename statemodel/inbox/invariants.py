"""The inbox's promises, as pure functions that return what is wrong (an empty list: nothing).

The explorer (`statemodel.checker.inbox_space`) and the consumer suite (`adapters.testing.inbox_suite`)
judge with these same functions:

* only allowed transitions, and the history replays to the stored projection (fencing included: a
  claim that was lost completes and releases nothing, and a claim is taken over only once expired);
* transactional: the effect is applied at most once, ever, and exactly when the record is DONE;
* guarded: no two invocations within their deadlines run the handler of one message at once;
* nothing dropped: a message taken off the queue (deleted) is DONE.
"""

from __future__ import annotations

from collections.abc import Sequence

from statemodel.errors import IllegalTransition
from statemodel.inbox.decider import replay
from statemodel.inbox.events import InboxEvent
from statemodel.inbox.records import InboxPhase, InboxRecord


def history_problems(record: InboxRecord, history: Sequence[InboxEvent]) -> list[str]:
    try:
        replayed = replay(history)
    except IllegalTransition as exc:
        return [f"{record.message_id}: illegal history: {exc}"]
    if replayed != record:
        return [f"{record.message_id}: history replays to {replayed!r}, stored {record!r}"]
    return []


def effect_problems(message_id: str, record: InboxRecord | None, effects: int) -> list[str]:
    """Transactional, in every state: the effect is applied at most once, and a DONE record has it
    (the commit wrote both or neither)."""
    problems = []
    if effects > 1:
        problems.append(f"{message_id}: effect applied {effects} times")
    if record is not None and record.phase is InboxPhase.DONE and effects == 0:
        problems.append(f"{message_id}: DONE, but its effect was never applied")
    return problems


def settled_effect_problems(message_id: str, record: InboxRecord | None, effects: int) -> list[str]:
    """Transactional, where the message has settled: applied exactly once if DONE, never if not."""
    done = record is not None and record.phase is InboxPhase.DONE
    if done and effects != 1:
        return [f"{message_id}: DONE with its effect applied {effects} times, not once"]
    if not done and effects:
        phase = record.phase.value if record else "no record"
        return [f"{message_id}: {phase}, yet its effect was applied {effects} time(s)"]
    return []


def holder_problems(message_id: str, holders: Sequence[str]) -> list[str]:
    """Guarded: `holders` are the attempts running the handler of the message right now, within
    their invocations' deadlines. More than one is the failure the claim exists to prevent."""
    if len(holders) > 1:
        return [f"{message_id}: held by {len(holders)} invocations at once ({', '.join(sorted(holders))})"]
    return []


def dropped(message_id: str, record: InboxRecord | None, deleted: bool) -> list[str]:
    """A message deleted from the queue (a delivery answered it ok) must be DONE: else its effect is
    lost for good."""
    if deleted and (record is None or record.phase is not InboxPhase.DONE):
        phase = record.phase.value if record else "no record"
        return [f"{message_id}: deleted from the queue but never done ({phase})"]
    return []


def rerun_problems(message_id: str, record: InboxRecord | None, running: Sequence[str]) -> list[str]:
    """Guarded: once a message is DONE, no invocation within its deadline runs its handler again (a
    duplicate is answered from the record). `running`: the attempts inside its handler now."""
    if record is not None and record.phase is InboxPhase.DONE and running:
        return [f"{message_id}: {', '.join(sorted(running))} runs its handler again after it was done"]
    return []
