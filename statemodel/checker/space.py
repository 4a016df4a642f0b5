"""The explorer's state space: statemodel's flows, run against statemodel's in-memory world, reduced to a
finite set of canonical states. `statemodel.checker.search` walks it breadth first; nothing here reads a
clock.

The abstraction, and why it loses no behaviour that could break a promise:

* Records. The M records never touch each other: every flow works on one record, every write and
  send concerns one message id, and every invariant is judged per record. So a state is a multiset of
  *clusters*, one per record: the stored item (projection and history), how many sends SQS accepted
  for it, whether a client was told 202 while SQS had accepted none (once one is accepted the promise
  is kept for good, and `lost` cannot tell the difference), and the invocations working on it. All
  records carry the same `Message` (one Idempotency-Key per record, each submission the same request),
  so two records in the same situation are the same cluster, and sorting the clusters is the symmetry
  reduction over records. Records share only the workers, the fault budget and the clock, and those
  are kept globally.
* Workers. K invocations run at once; each is a client's submit (first or replayed, on any record) or
  one of the reconciler's per-record flows (an expiry or a re-drive, started for a record that
  `is_due` selects and `reconcile_start` acts on). An idle worker is just a free slot, so the workers
  are symmetric too: a state counts the idle ones and keeps each running flow in its record's cluster,
  sorted. A submit's first write happens in the step that starts it (a crash before it is the request
  never arriving); a reconciler flow reads the record in one step and writes in later ones, so its
  read can go stale.
* Ids. The n-th attempt that claimed a record is `a<n>`; a flow that has not claimed yet gets the next
  free names, in a canonical order of the flows. Only equality of attempt ids matters to the model
  (fencing), so this renaming keeps every behaviour. SQS message ids are `sqs-<n>`, per record, in the
  order SQS accepted them, which is what `duplicate_problems` reads.
* Time. Integer ticks, always relative to now (now is 0). An invocation reports 0 ticks remaining, so
  a healthy invocation does all its steps in the tick it started in; its send deadline is then 0 and
  its lease 1 (`Settings.lease_margin_ms` = 1 tick). A tick while an invocation with a lease still
  runs is that invocation stalling past its deadline: the fault "lease expiry". Re-drives wait 0 ticks
  (`redrive_after_ms` = 0), which allows every schedule a longer wait allows and more. Every
  comparison the model makes is `now >= t`, `now - t >= wait` or `now > deadline`, or compares two
  stored times in the same sense, so a time in the past is replaced by now (record times) or by now - 1
  (send deadlines, the one strict comparison): the map keeps the order of every pair it is applied
  to, and every comparison with any future now. Event times thus all read 0, and only leases and
  deadlines ahead of now are distinguished. The cost: two writes that differ only in the moment they
  were computed are the same write; both are the same row of the table, so no guard tells them apart.
* Data the model writes but never reads. Why a record was claimed or exhausted (`Claimed.cause`,
  `RedriveExhausted.cause`), and a send failure's category and code once its rollback is decided
  (`SendFailed`, `last_error`), are written as one canonical value (`forget_unread`); a failure's
  code is its category's name (`_category_only`). No guard, condition, flow or invariant reads them,
  so states that differ only in them have the same futures and the same verdicts. (`RolledBack.cause`
  is kept: the history check reads it.)
* The consumer. Receiving a message changes only the queue, which no step of the model and no check
  reads ("orphan" and "lost" ask what SQS accepted, consumed or not), so a receive commutes with every
  other step. The consumer receives each message as it lands, the one order of a partial-order
  reduction; left free to interleave, it tripled the states without adding one record situation.
* Faults. Each costs one unit of the budget F: every `statemodel.checker.world.Fault` on the effect it
  applies to (the send failures of each category, the rejected or ambiguous writes, among them a
  failed rollback), a crash of an invocation between two of its steps, and a stall past the lease.
  Stale attempts are not injected: they follow from stalls, crashes and interleavings, and coverage
  asserts that they happen. The consumer, the reconciler and the passing of time cost nothing.
* The operator. An EXHAUSTED record may be re-armed (`start_rearm`: one write, back to PENDING with a
  fresh budget), at most once per record (its history counts the `Rearmed` events), so the Rearm
  row is reached and what follows a re-arm is explored while the space stays finite. Like a client's
  request, a re-arm is owed no fairness (an operator may never act), and it takes no worker: it is
  one write that ends at once, whatever it meets. It costs one unit of the budget F, as a fault
  does: F bounds the unusual events of a run, and a re-arm is one (it follows an exhaustion, which
  itself takes a fault). Free, it gave every record a second life beside every fault: K=3, M=3,
  F=3, A=1 had 14.7 million states, against 1.7 million at a cost. At a cost, a re-arm still meets
  every stale invocation an exhaustion can leave behind, with the faults left after it.
* Quiescence: no invocation runs, and for every record the reconciler would start nothing even after
  every lease and wait has run out (`is_due` and `reconcile_start` at a time past them all). Only a
  new request could change such a state; it is where "no orphan" and "nothing lost" are judged.

The rules are never restated here: steps are `statemodel.flows` (`start_submit`, `reconcile_start`,
`advance`) performed by `statemodel.checker.world.World`, whose writes go through `decide`, `evolve` and the
table; invariants are `statemodel.invariants`. A `Model` names the functions and data a run uses, so a
mutant (see `statemodel.checker.mutants`) is statemodel with one piece swapped, and is judged by the same
code.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs

from statemodel import attention, table
from statemodel.categories import ErrorCategory, Failure
from statemodel.checker.world import SEND_FAULTS, WRITE_FAULTS, Fault, World
from statemodel.events import (
    ClaimCause,
    Claimed,
    Event,
    ExhaustionCause,
    Rearmed,
    RedriveExhausted,
    SendFailed,
)
from statemodel.flows import (
    FLOWS,
    Answer,
    ConditionFailed,
    Flow,
    Flows,
    Kind,
    Outcome,
    Send,
    Sent,
    Settings,
    Stage,
    Write,
    Written,
    condition_holds,
    lease_expiry,
)
from statemodel.invariants import duplicate_problems, history_problems, lost, metadata_problems, orphans
from statemodel.records import Message, Phase, Record
from statemodel.stored import Stored
from statemodel.table import Transition
from statemodel.validation import (
    Request,
    message_id_for_key,
    message_problems,
    new_message,
    parse_submission,
)

JUDGED_TABLE = table.TRANSITIONS  # the table as written: what `HistoryChecker` judges histories by
NOW = 0  # every canonical state is seen from now
INVOCATION_TICKS = 0  # the time an invocation reports it has left: its healthy steps take no time
TICK_SETTINGS = Settings(max_attempts=2, redrive_after_ms=0, lease_margin_ms=1)  # in ticks
# Where a record may stay for good: delivered and confirmed, or flagged for an operator.
SETTLED_PHASES = frozenset({Phase.CONFIRMED, Phase.EXHAUSTED})


def _message() -> Message:
    """The request every client sends: one Idempotency-Key per record, and all records look alike."""
    request = parse_submission(json.dumps({"payload": {"order": 1, "note": "é✓"}, "attributes": {"g": "1"}}))
    assert isinstance(request, Request), request
    return new_message(request, message_id_for_key("key"), "corr", NOW, "key")


MESSAGE = _message()

LeaseFunction = Callable[[int, int, Settings], int]
DueFunction = Callable[[Record, int, Settings], bool]
ConditionFunction = Callable[[Write, Record | None], bool]


@attrs.frozen
class Model:
    """What a run executes: statemodel's own functions and data unless a mutant swaps one.

    Every piece enters the run as a parameter: `flows` starts and advances every flow (a mutant's
    holds another table, or swaps one of its methods), and each step's world is built with
    `write_condition`. Nothing in statemodel is patched, so the judge (`HistoryChecker`, behind
    `history_problems`) keeps the table as written.
    """

    name: str = "statemodel"
    summary: str = "the model as written"
    settings: Settings = TICK_SETTINGS
    lease_expiry: LeaseFunction = lease_expiry
    flows: Flows = FLOWS  # the flows over the table `decide` reads: started, reconciled, advanced
    is_due: DueFunction = attention.is_due
    write_condition: ConditionFunction = condition_holds  # what the world's writes evaluate
    caught_by: str = "safety"  # for a mutant: the check that must catch it ("safety" or "liveness")
    # For a mutant: the violation its bug makes, as a pattern (`re.search`) of the check's words. A
    # mutant caught only by another violation is not counted as caught (`statemodel.checker.mutants`).
    caught_with: str = ""


@attrs.frozen
class Cluster:
    """One record's corner of the world, with the invocations working on it."""

    stored: Stored | None
    landed: int = 0  # sends SQS accepted for it: sqs-1 .. sqs-<landed>
    promised_unsent: bool = False  # a client was answered 202 for it, and SQS has accepted nothing
    flows: tuple[Flow, ...] = ()
    error: str = ""  # the model raised while stepping (a violation in itself)

    @property
    def record(self) -> Record | None:
        return self.stored.record if self.stored else None

    def sqs_ids(self) -> list[str]:
        return [f"sqs-{n}" for n in range(1, self.landed + 1)]


class Action(enum.StrEnum):
    """Kinds of local move, for the trace."""

    STEP = "step"
    CRASH = "crash"
    SUBMIT = "submit"
    RECONCILE = "reconcile"
    REARM = "rearm"  # an operator re-arms an exhausted record


@attrs.frozen
class Move:
    """One step within a cluster: what it leads to, what it costs, and what it was (for the trace)."""

    target: int  # the cluster after it
    cost: int  # units of the budget F it spends: a fault, a re-arm (0 to 2)
    invocations: int  # +1 starts an invocation, -1 ends one
    action: Action
    flow: Flow | None = None  # the invocation that acted (as it was before)
    name: str | None = None  # its attempt's name afterwards (None: a submit that ended unnamed)
    fault: Fault | None = None
    outcome: Outcome | None = None
    after: Flow | None = None  # the invocation afterwards (its answer, if it finished)
    coverage: frozenset[str] = frozenset()


_RECORD_TIMES = frozenset({"at", "updated_at", "lease_expires_at", "created_at"})
_DEADLINES = frozenset({"send_deadline", "deadline"})
_ATOMS = (str, int, float, bool, type(None), Message, enum.Enum)
T = TypeVar("T")


def rewrite(obj: T, names: dict[str, str], shift: int) -> T:
    """`obj` with attempt ids renamed and every time moved `shift` ticks into the past, then clamped:
    record times to now at the earliest, send deadlines to one tick before now."""
    memo: dict[int, Any] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, _ATOMS):
            return value  # atoms, enums and the (constant) message
        key = id(value)
        if key in memo:
            return memo[key]
        if isinstance(value, tuple):
            result: Any = tuple(walk(item) for item in value)
            result = value if result == value else result
        else:
            changes = {}
            for field in attrs.fields(type(value)):
                old = getattr(value, field.name)
                if field.name == "attempt_id":
                    new = names.get(old, old)
                elif field.name in _RECORD_TIMES and isinstance(old, int):
                    new = max(old - shift, NOW)
                elif field.name in _DEADLINES and isinstance(old, int):
                    new = max(old - shift, NOW - 1)
                else:
                    new = walk(old)
                if new is not old and new != old:
                    changes[field.name] = new
            result = attrs.evolve(value, **changes) if changes else value
        memo[key] = result
        return result

    rewritten: T = walk(obj)
    return rewritten


def reference_row(write: Write) -> str:
    """The row of the table as written that a landed write is, for coverage."""
    source = write.before.phase if write.before else Phase.ABSENT
    events = tuple(type(e) for e in write.events)
    row = table.row_writing(source, events, JUDGED_TABLE)
    if row is None:
        return f"a write no row allows: {source.value} {'+'.join(e.__name__ for e in events)}"
    return row_label(row)


def row_label(row: Transition) -> str:
    return f"row {row.label}"


def crash_label(stage: Stage) -> str:
    return f"crash before {stage.value}"


STALL = "stall past the deadline (lease expiry)"
STALE = "stale attempt refused (another attempt moved the record)"
FAILED_ROLLBACK = "failed rollback write"
LATE_SEND = "send refused past its deadline"
CRASH_STAGES = (Stage.CLAIM, Stage.SEND, Stage.CONFIRM, Stage.ROLLBACK, Stage.EXPIRE)
_FENCED_STAGES = frozenset({Stage.CONFIRM, Stage.ROLLBACK, Stage.EXPIRE})


def required_coverage(max_attempts: int = TICK_SETTINGS.max_attempts) -> list[str]:
    """Every row of the table, every fault kind and every crash point: each must happen at least once.
    Even with one attempt every row can happen: a record the transactional outbox prepared has used
    none when a re-drive claims it."""
    labels = [row_label(row) for row in JUDGED_TABLE]
    labels += [fault.name for fault in Fault]
    labels += [crash_label(stage) for stage in CRASH_STAGES]
    labels += [STALL, STALE, FAILED_ROLLBACK, LATE_SEND]
    return labels


Summary = tuple[tuple[tuple[int, int, int], ...], int, int]


@attrs.frozen
class _StepResult:
    """A flow's effect performed against one stored item, and the flow advanced."""

    stored: int  # the stored item afterwards
    sent: int  # sends SQS accepted in this step
    outcome: Outcome
    after: Flow
    coverage: frozenset[str]


class Space:
    """The canonical clusters met so far, their moves, and what the invariants say about each.

    Stored items and flows are numbered once (`_Numbering`), a cluster is a tuple of such numbers, and
    every function of one — its moves, its tick, its problems — is computed once and remembered: the
    search's states are tuples of cluster numbers, and stepping one is looking its moves up.
    """

    def __init__(self, model: Model, max_attempts: int | None = None) -> None:
        self.model = model
        # The model's settings, with the bound's `max_attempts` (the explorer's bound A) if given.
        self.settings = (
            model.settings
            if max_attempts is None
            else attrs.evolve(model.settings, max_attempts=max_attempts)
        )
        self.clusters: list[Cluster] = []  # by number
        self.problems: list[list[str]] = []  # invariants broken in the cluster (safety)
        # For liveness, by cluster number:
        self.settled: list[bool] = []  # no invocation on it, and no record, or CONFIRMED, or EXHAUSTED
        self.settle_problems: list[list[str]] = []  # orphans and losses, judged where settled
        self.calm: list[bool] = []  # no invocation on it, and the reconciler starts nothing now
        self._numbers: dict[tuple[int, ...], int] = {}
        self._keys: list[tuple[int, ...]] = []
        self._stored = _Numbering[Stored | None]()
        self._flows = _Numbering[Flow]()
        self._claims: list[tuple[str, ...]] = []  # per stored item: attempt ids in the order they claimed
        self._attempts: list[str | None] = []  # per flow
        self._errors: list[str] = [""]
        self._canonicals: dict[tuple[int, int, int, int, tuple[int, ...]], tuple[int, dict[str, str]]] = {}
        self._rewritten: dict[tuple[str, int, tuple[tuple[str, str], ...], int], int] = {}
        self._steps: dict[tuple[int, int, int, Fault | None], _StepResult | str] = {}
        self._moves: dict[int, list[Move]] = {}
        self._free_moves: dict[int, list[Move]] = {}
        self._starts: list[int | Exception] | None = None
        self._reconciler_flows: dict[int, Flow | Exception | None] = {}  # by stored item
        self._ticks: dict[int, tuple[int, int]] = {}
        self._record_problems: dict[tuple[int, int], list[str]] = {}
        # For the search, by cluster number: its successors in brief (`summary`), filled when first
        # needed, and the (fault budget, idle workers) pairs it was met with, as bits.
        self.summaries: list[Summary | None] = []
        self.free_summaries: list[Summary | None] = []  # the same, of the fault-free moves only
        self.visits: list[int] = []
        self.busy: list[bool] = []  # an invocation works on it
        self._lease = model.lease_expiry(NOW, INVOCATION_TICKS, self.settings)  # of a claim made now
        self.absent = self._cluster(self._stored_number(None), 0, False, 0, ())

    # ---- numbering and canonical form ------------------------------------------------------------

    def item_number(self, cluster: int) -> int:
        """The number of the cluster's stored item (records with equal items are interchangeable)."""
        return self._keys[cluster][0]

    def flow_number(self, flow: Flow) -> int:
        """The number of a flow met before."""
        return self._flows.number(flow)[0]

    def same_item(self, cluster: int, other: int) -> bool:
        """Whether two clusters hold the same stored item, sends and promise (only their invocations
        differ): a move between them wrote nothing and sent nothing."""
        return self._keys[cluster][:3] == self._keys[other][:3]

    def _stored_number(self, stored: Stored | None) -> int:
        number, new = self._stored.number(stored)
        if new:
            history = stored.history if stored else ()
            claims = dict.fromkeys(e.attempt_id for e in history if isinstance(e, Claimed))
            self._claims.append(tuple(claims))
        return number

    def _flow_number(self, flow: Flow) -> int:
        number, new = self._flows.number(flow)
        if new:
            self._attempts.append(flow.attempt_id)
        return number

    def _cluster(
        self, stored: int, landed: int, promised_unsent: bool, error: int, flows: tuple[int, ...]
    ) -> int:
        """The number of the canonical cluster with these parts, made if new."""
        return self._canonical(stored, landed, promised_unsent, error, flows)[0]

    def _canonical(
        self, stored: int, landed: int, promised_unsent: bool, error: int, flows: tuple[int, ...]
    ) -> tuple[int, dict[str, str]]:
        """`_cluster`, and the canonical name of each attempt id in it (remembered: many moves of
        different clusters lead to the same parts)."""
        parts = (stored, landed, int(promised_unsent), error, flows)
        known = self._canonicals.get(parts)
        if known is None:
            known = self._canonicals[parts] = self._make_canonical(
                stored, landed, promised_unsent, error, flows
            )
        return known

    def _make_canonical(
        self, stored: int, landed: int, promised_unsent: bool, error: int, flows: tuple[int, ...]
    ) -> tuple[int, dict[str, str]]:
        names = {attempt: f"a{n}" for n, attempt in enumerate(self._claims[stored], start=1)}
        unclaimed = [f for f in flows if self._attempts[f] is not None and self._attempts[f] not in names]
        if len(unclaimed) > 1:  # name them in an order that does not depend on their names
            unclaimed.sort(key=lambda f: self._rewrite("flow", f, {self._attempts[f] or "": "?"} | names, 0))
        for f in unclaimed:
            names[self._attempts[f] or ""] = f"a{len(names) + 1}"
        renames = {old: new for old, new in names.items() if old != new}
        if renames:
            stored = self._rewrite("stored", stored, renames, 0)
            flows = tuple(self._rewrite("flow", f, renames, 0) for f in flows)
        key = (stored, landed, int(promised_unsent), error, *sorted(flows))
        number = self._numbers.get(key)
        if number is None:
            number = self._numbers[key] = len(self._keys)
            self._keys.append(key)
            cluster = Cluster(
                self._stored.items[stored],
                landed,
                promised_unsent,
                tuple(self._flows.items[f] for f in sorted(flows)),
                self._errors[error],
            )
            self.clusters.append(cluster)
            self.summaries.append(None)
            self.free_summaries.append(None)
            self.visits.append(0)
            self.busy.append(bool(flows))
            self._judge(number, cluster)
        return number, names

    def _rewrite(self, kind: str, number: int, names: dict[str, str], shift: int) -> int:
        """The number of stored item or flow `number` rewritten by `rewrite`."""
        key = (kind, number, tuple(sorted(names.items())), shift)
        found = self._rewritten.get(key)
        if found is None:
            if kind == "stored":
                found = self._stored_number(rewrite(self._stored.items[number], names, shift))
            else:
                found = self._flow_number(rewrite(self._flows.items[number], names, shift))
            self._rewritten[key] = found
        return found

    def _error_number(self, error: str) -> int:
        if error not in self._errors:
            self._errors.append(error)
        return self._errors.index(error)

    # ---- invariants ------------------------------------------------------------------------------

    def _judge(self, number: int, cluster: Cluster) -> None:
        stored, landed = self._keys[number][:2]
        if cluster.error:
            problems = [cluster.error]
        else:
            problems = self._record_problems.get((stored, landed)) or []
            if (stored, landed) not in self._record_problems:
                problems = self._record_problems[(stored, landed)] = self._problems(cluster)
        self.problems.append(problems)
        idle = not cluster.flows and not cluster.error
        record = cluster.record
        settled = idle and (record is None or record.phase in SETTLED_PHASES)
        self.settled.append(settled)
        self.settle_problems.append(self._settle_problems(cluster) if settled else [])
        self.calm.append(idle and not self._reconciler_acts(cluster))

    def _problems(self, cluster: Cluster) -> list[str]:
        if cluster.stored is None:
            return []
        record, history = cluster.stored.record, cluster.stored.history
        problems = history_problems(record, history)
        problems += metadata_problems(record, history)
        problems += message_problems(record.message)
        problems += duplicate_problems(record, history, cluster.sqs_ids())
        if record.message != MESSAGE:
            problems.append(f"{record.message_id}: the stored message is not the one submitted")
        return problems

    def _reconciler_acts(self, cluster: Cluster) -> bool:
        """Whether the reconciler, passing now, starts a flow on the record."""
        record = cluster.record
        if record is None:
            return False
        settings = self.settings
        try:
            return self.model.is_due(record, NOW, settings) and bool(
                self.model.flows.reconcile_start(record, NOW, settings, "probe", self._lease)
            )
        except Exception:
            return True  # starting it raises: the move that tries reports it

    def _settle_problems(self, cluster: Cluster) -> list[str]:
        """Where the record has settled: no orphan and nothing lost (a 202 kept, or the message sent
        unless the record is flagged exhausted)."""
        delivered = {MESSAGE.message_id} if cluster.landed else set()
        promised = [MESSAGE.message_id] if cluster.promised_unsent else []
        records = {MESSAGE.message_id: cluster.record} if cluster.record else {}
        problems = orphans(records.values(), delivered, NOW)
        problems += lost(records, promised, delivered)
        return problems

    # ---- moves -----------------------------------------------------------------------------------

    def summary(self, number: int, faults: bool = True) -> Summary:
        """What the search needs of a cluster: its distinct (cost, invocations, target) moves, cheapest
        first (only the fault-free ones unless `faults`), and the cluster one tick later with the stalls
        that tick costs."""
        table = self.summaries if faults else self.free_summaries
        found = table[number]
        if found is None:
            moves = sorted({(m.cost, m.invocations, m.target) for m in self.moves(number, faults)})
            later, stalls = self.tick(number)
            found = table[number] = (tuple(moves), later, stalls)
        return found

    def moves(self, number: int, faults: bool = True) -> list[Move]:
        """Everything that can happen to the record of cluster `number`, faults included unless told
        otherwise: then only its fault-free moves (cost 0), computed apart, for a cluster met only once
        the budget is spent (most are), whose faults would never be taken."""
        table = self._moves if faults else self._free_moves
        found = table.get(number)
        if found is None:
            full = self._moves.get(number)
            if full is not None:
                found = [move for move in full if not move.cost]
            else:
                found = self._find_moves(number, faults)
            table[number] = found
        return found

    def _find_moves(self, number: int, faults: bool) -> list[Move]:
        stored, landed, promised_unsent, error, *flows = self._keys[number]
        if error:
            return []
        cluster = self.clusters[number]
        moves: list[Move] = []
        for index, flow in enumerate(flows):
            if flow in flows[:index]:
                continue  # the same invocation twice: the same moves
            rest = tuple(flows[:index] + flows[index + 1 :])
            injected = SEND_FAULTS if isinstance(self._flows.items[flow].effect, Send) else WRITE_FAULTS
            for fault in (None, *injected) if faults else (None,):
                moves.append(self._step_move(cluster, rest, flow, fault, Action.STEP))
            if not faults:
                continue
            target = self._cluster(stored, landed, bool(promised_unsent), 0, rest)
            crashed = self._flows.items[flow]
            coverage = frozenset({crash_label(crashed.stage)})
            moves.append(Move(target, 1, -1, Action.CRASH, crashed, crashed.attempt_id, coverage=coverage))
        moves += self._submits(cluster, tuple(flows), faults)
        moves += self._reconciler_starts(cluster, tuple(flows))
        moves += self._rearms(cluster, tuple(flows), faults)
        return moves

    def _started(self) -> list[int | Exception]:
        """The invocation each way in starts for a client's request (the same request every time), or
        what starting it raised: computed once."""
        if self._starts is None:
            model = self.model
            self._starts = []
            for start in (model.flows.start_submit, model.flows.start_outbox):
                try:
                    flow = forget_unread(start(MESSAGE, "new", self._lease, NOW, self.settings))
                except Exception as exc:
                    self._starts.append(exc)
                    continue
                self._starts.append(self._flow_number(flow))
        return self._starts

    def _submits(self, cluster: Cluster, flows: tuple[int, ...], faults: bool) -> list[Move]:
        """A client's request for this record, by `send` or by the transactional outbox (`pending_put`
        in a transaction, then `dispatch`): it starts and makes its first write at once."""
        moves: list[Move] = []
        for started in self._started():
            if isinstance(started, Exception):
                moves.append(self._raised(cluster, flows, Action.SUBMIT, None, None, started))
                continue
            moves += [
                self._step_move(cluster, flows, started, fault, Action.SUBMIT)
                for fault in ((None, *WRITE_FAULTS) if faults else (None,))
            ]
        return moves

    def _rearms(self, cluster: Cluster, flows: tuple[int, ...], faults: bool) -> list[Move]:
        """An operator re-arms the record, as read now, if it is EXHAUSTED and was never re-armed
        (once per record keeps the space finite). The write may meet a fault like any other."""
        stored = cluster.stored
        if stored is None or stored.record.phase is not Phase.EXHAUSTED:
            return []
        if any(isinstance(event, Rearmed) for event in stored.history):
            return []
        model = self.model
        try:
            flow = forget_unread(model.flows.start_rearm(stored.record, "operator", "fixed", NOW))
        except Exception as exc:
            return [self._raised(cluster, flows, Action.REARM, None, None, exc)]
        if not faults:
            return []  # a re-arm costs a unit of the budget, as a fault does
        started = self._flow_number(flow)
        return [
            self._step_move(cluster, flows, started, fault, Action.REARM) for fault in (None, *WRITE_FAULTS)
        ]

    def _reconciler_flow(self, record: Record) -> Flow | Exception | None:
        """The flow the reconciler starts on `record` now, if it is due and acted on, or what trying
        raised: a function of the stored item alone, so computed once for each."""
        model = self.model
        try:
            if not model.is_due(record, NOW, self.settings):
                return None
            flow = model.flows.reconcile_start(record, NOW, self.settings, "new", self._lease)
        except Exception as exc:
            return exc
        return None if flow is None else forget_unread(flow)

    def _reconciler_starts(self, cluster: Cluster, flows: tuple[int, ...]) -> list[Move]:
        if cluster.stored is None:
            return []
        stored = self._stored_number(cluster.stored)
        if stored not in self._reconciler_flows:
            self._reconciler_flows[stored] = self._reconciler_flow(cluster.stored.record)
        started = self._reconciler_flows[stored]
        if started is None:
            return []
        if isinstance(started, Exception):
            return [self._raised(cluster, flows, Action.RECONCILE, None, None, started)]
        flow = started
        target, names = self._canonical(
            stored, cluster.landed, cluster.promised_unsent, 0, (*flows, self._flow_number(flow))
        )
        return [Move(target, 0, 1, Action.RECONCILE, name=names.get(flow.attempt_id or ""), after=flow)]

    def _step_move(
        self, cluster: Cluster, others: tuple[int, ...], flow: int, fault: Fault | None, action: Action
    ) -> Move:
        """Flow `flow` (with `others` beside it) performs its effect, meeting `fault`, and advances."""
        stored = self._stored_number(cluster.stored)
        key = (flow, stored, cluster.landed, fault)
        result = self._steps.get(key)
        if result is None:
            result = self._steps[key] = self._step(self._flows.items[flow], cluster, fault)
        started = int(action in (Action.SUBMIT, Action.REARM))  # both start as they write
        before = self._flows.items[flow]
        if isinstance(result, str):
            return self._raised(cluster, others, action, before, fault, result)
        after = result.after
        flows = others if after.done else (*others, self._flow_number(after))
        landed = cluster.landed + result.sent
        promised = cluster.promised_unsent or (after.done and after.answer.accepted)
        target, names = self._canonical(result.stored, landed, promised and not landed, 0, flows)
        invocations = started - int(after.done)
        cost = int(fault is not None) + int(action is Action.REARM)  # a re-arm is budgeted too
        attempt = before.attempt_id or ""
        name = names.get(attempt, None if action in (Action.SUBMIT, Action.REARM) else attempt)
        return Move(
            target, cost, invocations, action, before, name, fault, result.outcome, after, result.coverage
        )

    def _step(self, flow: Flow, cluster: Cluster, fault: Fault | None) -> _StepResult | str:
        effect = flow.effect
        assert not isinstance(effect, Answer)
        scratch = World(self.model.write_condition)
        if cluster.stored:
            scratch.items[MESSAGE.message_id] = cluster.stored
        try:
            outcome = scratch.perform(effect, NOW, fault)
            sent = len(scratch.landed.get(MESSAGE.message_id, []))
            if isinstance(outcome, Sent):  # the scratch world numbers from 1; ids are per record
                outcome = Sent(f"sqs-{cluster.landed + sent}")
            after = forget_unread(self.model.flows.advance(flow, _category_only(outcome), NOW))
        except Exception as exc:
            return f"the model raised {type(exc).__name__}: {exc}"
        stored = scratch.items.get(MESSAGE.message_id)
        coverage = _coverage(flow, effect, fault, outcome, after, stored is not cluster.stored)
        return _StepResult(self._stored_number(stored), sent, outcome, after, coverage)

    def _raised(
        self,
        cluster: Cluster,
        flows: tuple[int, ...],
        action: Action,
        flow: Flow | None,
        fault: Fault | None,
        exc: Exception | str,
    ) -> Move:
        error = exc if isinstance(exc, str) else f"the model raised {type(exc).__name__}: {exc}"
        stored = self._stored_number(cluster.stored)
        target = self._cluster(
            stored, cluster.landed, cluster.promised_unsent, self._error_number(error), flows
        )
        name = flow.attempt_id if flow else None
        return Move(target, int(fault is not None), 0, action, flow, name, fault)

    # ---- time ------------------------------------------------------------------------------------

    def tick(self, number: int) -> tuple[int, int]:
        """The cluster one tick later, and how many of its invocations that tick stalls past their
        deadline (each is one fault)."""
        found = self._ticks.get(number)
        if found is None:
            stored, landed, promised_unsent, error, *flows = self._keys[number]
            stalled = sum(1 for f in flows if _stalls(self._flows.items[f]))
            later = self._cluster(
                self._rewrite("stored", stored, {}, 1),
                landed,
                bool(promised_unsent),
                error,
                tuple(self._rewrite("flow", f, {}, 1) for f in flows),
            )
            found = self._ticks[number] = (later, stalled)
        return found


UNREAD = "*"  # what the explorer writes in fields the model records but never reads
# A failure recorded but never read: its code says so; its category must be one (`evolve` reads it).
UNREAD_FAILURE = Failure(ErrorCategory.RETRYABLE, UNREAD)


def forget_unread(flow: Flow) -> Flow:
    """`flow` with the data its pending write records but the model never reads made canonical: why a
    record was claimed or exhausted (`Claimed.cause`, `RedriveExhausted.cause`) and the category and
    code of a send failure once its rollback is decided (`SendFailed`, hence `last_error`). No guard,
    condition, flow or invariant reads them (`RolledBack.cause`, which the history check reads, is
    kept), so states that differ only in them have the same futures and the same verdicts. Writes
    are the only way into the stored item, so stored items hold canonical values too."""
    write = flow.effect
    if not isinstance(write, Write):
        return flow
    events = tuple(_forget_unread_event(event) for event in write.events)
    if events == write.events:
        return flow
    after = write.after
    if after.last_error is not None:
        after = attrs.evolve(after, last_error=UNREAD_FAILURE)
    return attrs.evolve(flow, effect=Write(write.before, events, after))


def _forget_unread_event(event: Event) -> Event:
    match event:
        case Claimed():
            return attrs.evolve(event, cause=ClaimCause.SUBMIT)
        case RedriveExhausted():
            return attrs.evolve(event, cause=ExhaustionCause.MAX_ATTEMPTS)
        case SendFailed():
            return attrs.evolve(event, category=UNREAD_FAILURE.category.value, code=UNREAD)
    return event


def _category_only(outcome: Outcome) -> Outcome:
    """A failure as the model sees it in the explorer: its category, with the category as its code.
    The model branches on the category and never on the code, which it only records and reports; two
    failures of one category lead to the same states."""
    if isinstance(outcome, Failure):
        return Failure(outcome.category, outcome.category.value)
    return outcome


def _stalls(flow: Flow) -> bool:
    """Whether one tick from now takes this invocation past its deadline while it holds a lease."""
    return flow.lease_expires_at is not None and flow.send_deadline >= NOW > flow.send_deadline - 1


def _coverage(
    flow: Flow, effect: Write | Send, fault: Fault | None, outcome: Outcome, after: Flow, wrote: bool
) -> frozenset[str]:
    labels = set()
    if fault is not None:
        labels.add(fault.name)
    if isinstance(effect, Send) and effect.deadline < NOW:
        labels.add(LATE_SEND)
    if isinstance(effect, Write):
        if wrote:
            labels.add(reference_row(effect))
        if (
            flow.stage in _FENCED_STAGES
            and isinstance(outcome, ConditionFailed)
            and outcome.current != effect.after
        ):
            labels.add(STALE)
    if after.done:
        labels.add(f"result {after.answer.result.value}")
        if after.answer.rollback_failed:
            labels.add(FAILED_ROLLBACK)
    return frozenset(labels)


Item = TypeVar("Item")


class _Numbering(Generic[Item]):
    """Numbers distinct objects in the order they are met. An object met again by identity is found
    without hashing it (attrs hashes a nested object afresh each time); those are kept alive here."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self._numbers: dict[Item, int] = {}
        self._by_identity: dict[int, tuple[Item, int]] = {}

    def number(self, item: Item) -> tuple[int, bool]:
        known = self._by_identity.get(id(item))
        if known is not None and known[0] is item:
            return known[1], False
        number = self._numbers.get(item)
        new = number is None
        if number is None:
            number = self._numbers[item] = len(self.items)
            self.items.append(item)
        self._by_identity[id(item)] = (item, number)
        return number, new


def describe_outcome(outcome: Outcome | None) -> str:
    match outcome:
        case Written():
            return "written"
        case ConditionFailed(current=current):
            return f"condition failed (found {describe_record(current)})"
        case Sent(sqs_message_id=sqs_id):
            return f"SQS accepted it as {sqs_id}"
        case Failure(category=category, code=code):
            return f"failed: {category.value} {code}"
    return ""


def describe_record(record: Record | None) -> str:
    if record is None:
        return "no record"
    text = f"{record.phase.value} v{record.version}"
    if record.attempt_id is not None:
        text += f" owned by {record.attempt_id}"
    if record.lease_expires_at is not None:
        live = record.lease_expires_at > NOW
        text += ", lease live" if live else ", lease expired"
    if record.sqs_message_id is not None:
        text += f", confirmed {record.sqs_message_id}"
    return text


def describe_flow(flow: Flow, name: str | None) -> str:
    """The invocation, by its attempt's name: "submit a1", "re-drive a2", "expiry of a1"."""
    if flow.kind is Kind.EXPIRE:
        return f"expiry of {name}"
    if flow.kind is Kind.REARM:
        return "a re-arm"
    kind = "re-drive" if flow.kind is Kind.REDRIVE else "submit"
    return f"{kind} {name}" if name else f"a {kind}"


def describe_effect(effect: Write | Send | Answer) -> str:
    if isinstance(effect, Write):
        return "write " + "+".join(type(e).__name__ for e in effect.events)
    if isinstance(effect, Send):
        return "send"
    return "answer"


def describe_answer(answer: Answer) -> str:
    text = answer.result.value.upper()
    if answer.result.value in ("sent", "already_queued", "failed", "conflict"):
        code = answer.failure.code if answer.failure else ""
        text += (
            f" ({answer.http_status} {code})"
            if code not in (*ErrorCategory, "")
            else f" ({answer.http_status})"
        )
    if answer.unconfirmed:
        text += ", confirm not written"
    if answer.rollback_failed:
        text += ", rollback not written"
    return text
