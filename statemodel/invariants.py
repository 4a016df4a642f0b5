"""The promises, as pure functions that return what is wrong (an empty list: nothing).

The same functions judge the pure-model tests, the explorer, the adapters' fault-injection suite, the
audit command and the trace checker, so each promise is defined exactly once:

* only allowed transitions, and the history replays to the stored projection;
* a rollback keeps every non-lifecycle field (the `Message`) byte for byte;
* no orphan: nothing is QUEUED without a message SQS accepted, unless a live lease still covers it;
* nothing lost: every message a client was told is accepted, and every record not flagged exhausted,
  ends with its message accepted by SQS;
* duplicates only where the sender could not know its send landed: never a send after a confirmed one;
* the team's own attributes of an item are never changed by sendguard.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import attrs

from statemodel.decider import replay
from statemodel.errors import IllegalTransition
from statemodel.events import Accepted, Event, SendConfirmed
from statemodel.records import Message, Phase, Record, Status


def history_problems(record: Record, history: Sequence[Event]) -> list[str]:
    """Allowed transitions only, and `replay(history)` equals the stored projection."""
    try:
        replayed = replay(history)
    except IllegalTransition as exc:
        return [f"{record.message_id}: illegal history: {exc}"]
    if replayed != record:
        return [f"{record.message_id}: history replays to {replayed!r}, stored {record!r}"]
    return []


def metadata_problems(record: Record, history: Sequence[Event]) -> list[str]:
    """Every field of the message is what `Accepted` wrote, byte for byte."""
    accepted = next((e for e in history if isinstance(e, Accepted)), None)
    if accepted is None:
        return [f"{record.message_id}: no Accepted event"]
    return metadata_changes(accepted.message, record.message)


def metadata_changes(original: Message, now: Message) -> list[str]:
    return [
        f"{original.message_id}: {field.name} changed from {before!r} to {after!r}"
        for field in attrs.fields(Message)
        if (before := getattr(original, field.name)) != (after := getattr(now, field.name))
    ]


def is_orphan(record: Record, delivered: Collection[str], now: int) -> bool:
    """QUEUED, no message SQS accepted for it (whether consumed yet or not), and no live lease."""
    if record.status is not Status.QUEUED or record.message_id in delivered:
        return False
    return record.lease_expires_at is None or record.lease_expires_at <= now


def orphans(records: Iterable[Record], delivered: Collection[str], now: int) -> list[str]:
    return [
        f"{r.message_id}: orphaned QUEUED record (attempt {r.attempt_id}, no message on the queue)"
        for r in records
        if is_orphan(r, delivered, now)
    ]


def lost(
    records: Mapping[str, Record], answered_accepted: Iterable[str], delivered: Collection[str]
) -> list[str]:
    """At quiescence: what a client was promised, or what was accepted and not given up on, but
    never reached SQS."""
    problems = [
        f"{message_id}: the client was answered 202 but no message was ever sent"
        for message_id in sorted(set(answered_accepted))
        if message_id not in delivered
    ]
    problems += [
        f"{r.message_id}: {r.phase.value} and never sent: lost"
        for r in records.values()
        if r.phase is not Phase.EXHAUSTED and r.message_id not in delivered
    ]
    return problems


def duplicate_problems(record: Record, history: Sequence[Event], landed: Sequence[str]) -> list[str]:
    """`landed`: the SQS message ids of every send of this record that SQS accepted, in order.

    Sending again is allowed only while no send is confirmed: a send whose confirm was lost (an
    ambiguous answer, a crash, a failed write, a stall past the lease) may be repeated by a re-drive.
    A send after a confirmed one, or a confirm of a send that never landed, is a bug.
    """
    confirmed = [e.sqs_message_id for e in history if isinstance(e, SendConfirmed)]
    problems = [
        f"{record.message_id}: confirmed {sqs_id}, which SQS never accepted"
        for sqs_id in confirmed
        if sqs_id not in landed
    ]
    problems += [
        f"{record.message_id}: sent again after SQS message {sqs_id} was confirmed"
        for sqs_id in landed[:-1]
        if sqs_id in confirmed
    ]
    return problems


def foreign_changes(before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    """The team's own attributes of an item (what sendguard does not own), before and after a step of
    sendguard's: every one must be there, byte for byte, and none added."""
    names = sorted(set(before) | set(after))
    return [
        f"team attribute {name!r} changed from {before.get(name)!r} to {after.get(name)!r}"
        for name in names
        if before.get(name) != after.get(name)
    ]
