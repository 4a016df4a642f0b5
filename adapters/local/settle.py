"""The demo's end game: run the reconciler until the table is settled, then drain the queue.

Settling runs in real time, through the real reconciler entry point (`aws_lambda.reconcile`, as an
EventBridge schedule would invoke it), on the demo's short settings (re-drive after 1 s, lease margin
1 s) — no clock is faked, so what the reconciler sees is what a deployment would see, only sooner.
Between passes it reads the table directly (past the fault proxy) and sleeps until the next record is
due: a lease's expiry, or a PENDING record's re-drive time. A record is settled once it is confirmed or
flagged exhausted.

The faults stay on for the first `FAULTY_PASSES` passes or the first third of the time budget, whichever
ends first — the reconciler is shown under faults too — and then stop (`quiet`): the promise is about a
table the reconciler has run on, and at a high fault rate a pass can keep failing for as long as the
faults last. With the faults off it goes on while the passes make progress, within bounds of passes and
seconds (`settle`); a record left unsettled is reported as waiting, with why (`Waiting`), and never
judged orphaned or lost.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Collection
from typing import Any

import attrs

from adapters.local.verdict import Delivery
from adapters.runtime.clients import now_ms
from adapters.runtime.store import DynamoStore
from statemodel.flows import Settings
from statemodel.records import Phase, Record
from statemodel.stored import Stored
from statemodel.validation import RESERVED_ATTRIBUTE

FAILED_PASS_PAUSE_S = 1.0
FAULTY_PASSES = 5  # settle passes under faults, at most, before `quiet` …
FAULTY_SHARE = 1 / 3  # … and at most this share of the settle phase's time budget
STUCK_PASSES = 3  # passes in a row that move nothing, with the faults off: the reconciler is stuck


@attrs.frozen
class Waiting:
    """A record the settle phase left unsettled, and why (never an orphan or a loss: the next pass
    can still settle it)."""

    message_id: str
    phase: str
    why: str


@attrs.define
class Settling:
    passes: int = 0
    failed_passes: int = 0  # invocations that raised (an index query that failed past its retries)
    faulty_passes: int = 0  # passes run with the faults on
    settled: bool = False
    seconds: float = 0.0
    actions: dict[str, int] = attrs.field(factory=dict)  # the passes' summaries, added up
    unsettled: list[str] = attrs.field(factory=list)
    waiting: list[Waiting] = attrs.field(factory=list)  # the unsettled, each with why


def read_records(store: DynamoStore, ids: Collection[str] | None) -> tuple[dict[str, Stored], list[str]]:
    """This run's records (all when `ids` is None), and the ids of the others."""
    mine: dict[str, Stored] = {}
    others: list[str] = []
    for item, decoded in store.scan():
        message_id = item.get("message_id", {}).get("S", "?")
        if ids is not None and message_id not in ids:
            others.append(message_id)
        elif isinstance(decoded, Stored):
            mine[message_id] = decoded
    return mine, others


def _why(record: Record, settings: Settings, now: int, bound: str, faults_on: bool) -> Waiting:
    due_in = _due_at(record, settings) - now
    if record.phase is Phase.IN_FLIGHT and due_in > 0:
        why = f"in flight, its lease not yet expired ({due_in / 1000:.1f} s left)"
    elif due_in > 0:
        why = f"pending, its re-drive due in {due_in / 1000:.1f} s"
    else:
        why = f"due, and {bound} was reached" + (" with the faults still on" if faults_on else "")
    return Waiting(record.message_id, record.phase.value, why)


def _due_at(record: Record, settings: Settings) -> int:
    if record.phase is Phase.IN_FLIGHT:
        return record.lease_expires_at or 0
    return record.updated_at + settings.redrive_after_ms


def settle(
    store: DynamoStore,
    ids: Collection[str] | None,
    reconcile: Callable[[], dict[str, Any]],
    settings: Settings,
    budget_s: float,
    max_passes: int,
    tick: Callable[[Settling, int], None] = lambda *_: None,
    quiet: Callable[[], None] | None = None,
    faulty_passes: int = FAULTY_PASSES,
) -> Settling:
    """Passes until every record is confirmed or exhausted. `quiet` turns the faults off (None:
    there are none to turn off), after `faulty_passes` passes or `FAULTY_SHARE` of `budget_s`. With
    the faults off, passes go on for as long as they make progress — a record settled, or a lease
    rolled back, a record re-driven or flagged — up to `max_passes`; `STUCK_PASSES` passes in a row
    without progress, or `budget_s` spent with the faults off, end it."""
    started = time.monotonic()
    result = Settling()
    actions: collections.Counter[str] = collections.Counter()
    faults_on = quiet is not None
    quiet_since = None if faults_on else started
    stuck = 0
    before: int | None = None
    last: dict[str, Any] = {}  # the latest pass's summary
    while True:
        stored, _ = read_records(store, ids)
        waiting = [s.record for s in stored.values() if s.record.phase in (Phase.IN_FLIGHT, Phase.PENDING)]
        result.unsettled = sorted(r.message_id for r in waiting)
        if not waiting:
            result.settled = True
            break
        if before is not None and not faults_on:
            stuck = 0 if len(waiting) < before or _acted(last) else stuck + 1
        before = len(waiting)
        tick(result, len(waiting))
        wait_s = max(0.0, (min(_due_at(r, settings) for r in waiting) - now_ms()) / 1000) + 0.05
        now = time.monotonic()
        bound = (
            "the pass bound"
            if result.passes >= max_passes
            else f"{STUCK_PASSES} passes without progress"
            if stuck >= STUCK_PASSES
            else "the time bound"
            if quiet_since is not None and now - quiet_since + wait_s > budget_s
            else None
        )
        if bound is not None:
            result.waiting = [_why(r, settings, now_ms(), bound, faults_on) for r in waiting]
            break
        if faults_on and (result.passes >= faulty_passes or now - started >= FAULTY_SHARE * budget_s):
            assert quiet is not None
            quiet()
            faults_on, quiet_since = False, now
        result.faulty_passes += faults_on
        time.sleep(wait_s)
        last = {}
        try:
            last = reconcile()
        except Exception:
            result.failed_passes += 1
            time.sleep(FAILED_PASS_PAUSE_S)  # as a schedule would, rather than hammering
        else:
            actions.update({k: int(v) for k, v in last.items() if isinstance(v, int | bool)})
        result.passes += 1
    result.seconds = round(time.monotonic() - started, 1)
    result.actions = dict(actions)
    return result


def _acted(summary: dict[str, Any]) -> bool:
    """Whether a pass moved a record (its summary's counts)."""
    return any(int(summary.get(name, 0) or 0) for name in ("expired", "redriven", "exhausted", "superseded"))


def drain(
    sqs: Any, queue_url: str, ours: Callable[[str | None], bool], *, consistent: bool, budget_s: float = 60.0
) -> tuple[list[Delivery], int]:
    """Receives every message and deletes this run's (`ours`); returns them, and how many others were
    seen (those are left alone: they come back after their visibility timeout). moto is consistent,
    so one empty receive ends it; real SQS samples its servers, so three long-polled ones in a row."""
    deliveries: dict[str, Delivery] = {}
    others: set[str] = set()
    empties, needed = 0, 1 if consistent else 3
    deadline = time.monotonic() + budget_s
    while empties < needed and time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=120,
            WaitTimeSeconds=0 if consistent else 1,
            MessageAttributeNames=["All"],
            AttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        empties = 0 if batch else empties + 1
        mine = []
        for message in batch:
            attribute = message.get("MessageAttributes", {}).get(RESERVED_ATTRIBUTE, {}).get("StringValue")
            if not ours(attribute):
                others.add(message["MessageId"])
                continue
            mine.append(message)
            deliveries[message["MessageId"]] = Delivery(
                sqs_id=message["MessageId"],
                message_id=attribute,
                body=message.get("Body", ""),
                sent_at=int(message.get("Attributes", {}).get("SentTimestamp", 0)),
            )
        if mine:
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(mine)]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    return list(deliveries.values()), len(others)
