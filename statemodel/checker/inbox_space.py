"""The inbox's explorer: every interleaving of deliveries of M messages to K concurrent invocations,
with up to F faults, searched breadth first to closure; safety in every state, then liveness on the
graph found. `sendguard explore --inbox MODE` runs it; nothing here reads a clock.

What is explored, and the abstraction (the outbox's explorer, `statemodel.checker.space`, explains
the same reductions at length; they carry over):

* Messages. Each is one cluster: its inbox item (projection and history), how often its effect was
  applied (transactional), whether SQS has deleted it, and the invocations working on it. Messages
  never touch each other, so a state is a sorted multiset of clusters (symmetry over messages), with
  the idle workers counted (symmetry over workers) and the faults spent.
* Deliveries. SQS delivers a message that is on the queue and *visible* — no invocation within its
  deadline holds it — to a free worker, at no cost: that is the queue working, owed to the consumer
  for ever (fairness). Delivering it while an invocation within its deadline still works on it, or
  after it was deleted, is SQS's at-least-once duplicate, or a visibility timeout shorter than the
  work (aws/serverless-application-model#1424): a fault, one unit of the budget F. A delivery
  starts the invocation and performs its first effect at once (guarded: the claim; transactional:
  the read). An invocation answered ok has SQS delete the message; any other answer leaves it on
  the queue (a `batchItemFailure`).
* Faults, one unit each: a read that fails, a write rejected (throttled, or a transaction cancelled),
  a write that landed and then timed out, a write that landed and whose retry failed its condition;
  a crash of an invocation before any of its steps (before or after the commit, the claim, the
  handler's end, the completion or the release); a stall: time passes while an invocation runs, so
  it overruns its deadline (its lease expires under it, and its message is visible again); a
  duplicate delivery; an operator's re-arm of a FAILED message (at most once a message).
* The handler. It succeeds or fails, either at no cost: a poison message fails every time, and the
  receive budget (`max_receives`, the bound A) ends it in FAILED. A transactional commit may also be
  cancelled by the effect's own condition (the team's rule), at no cost: a failed receive too. The
  category and code of a failure are recorded and never read, so every failure is recorded as one.
* Time, in ticks relative to now (`statemodel.checker.space.rewrite`): an invocation reports 0 ticks
  left, so its healthy steps happen within the tick it started in; its deadline is now, its claim's
  lease one tick later (`lease_margin_ms` = 1 tick). A tick while an invocation runs within its
  deadline is that invocation stalling: a fault.
* Ids. Attempts are named a1, a2, ... in the order the record's history names them, then the running
  invocations' in a canonical order: only their equality matters (fencing).

The rules are never restated here: a step is `statemodel.inbox.interpreter.step` (the adapters' own
loop) performing a flow's effect (`statemodel.inbox.flows`, the model's `InboxFlows`) on the ports
of `statemodel.checker.inbox_world.InboxWorldPorts`, whose writes go through `decide`, `evolve` and
the table.

Safety, in every state (`statemodel.inbox.invariants`): allowed transitions only, the history replays
to the stored projection (a completion or release by a lost claim, or a takeover of a live lease, is
an illegal history); transactional: the effect applied at most once and a DONE record has it; guarded:
no two invocations within their deadlines inside the handler of one message; a deleted message is
DONE; and the model never raises.

Liveness, on the graph the search found: once faults stop, every fair run ends with every message
settled — DONE and deleted, or FAILED — and (transactional) its effect applied once if DONE, never
if FAILED. The fairness assumed, strong, is what production gives: invocations run to their end
(Lambda runs each until it returns or its timeout ends it, a stall or a crash: faults); time passes;
and SQS delivers a visible message again (its visibility timeout runs out, the event source mapping
polls for ever). An operator is owed nothing.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from statemodel.categories import Failure
from statemodel.checker.inbox_world import (
    EFFECT_REFUSED,
    HANDLER_FAILED,
    HANDLER_OK,
    READ_FAULTS,
    WRITE_FAULTS,
    Condition,
    EffectRule,
    InboxFault,
    InboxWorld,
    InboxWorldPorts,
    commit_effects,
)
from statemodel.checker.liveness import fair_components, fair_cycle
from statemodel.checker.search import Bounds, Kind, Liveness, Report
from statemodel.checker.space import rewrite
from statemodel.inbox import interpreter
from statemodel.inbox.commands import Release
from statemodel.inbox.events import InboxEvent, InboxStored, MessageRearmed
from statemodel.inbox.flows import (
    INBOX_FLOWS,
    Conflict,
    Found,
    Handled,
    HandlerError,
    InboxAnswer,
    InboxFlow,
    InboxFlows,
    InboxOutcome,
    InboxResult,
    InboxSettings,
    InboxWrite,
    Invoke,
    Read,
    Stage,
    Written,
    condition_holds,
)
from statemodel.inbox.invariants import (
    dropped,
    effect_problems,
    history_problems,
    holder_problems,
    rerun_problems,
    settled_effect_problems,
)
from statemodel.inbox.records import InboxMessage, InboxPhase, InboxRecord
from statemodel.inbox.table import (
    Guard,
    InboxTransition,
    Mode,
    row_writing,
    rows_of,
)

NOW = 0
TICK_SETTINGS = InboxSettings(max_receives=2, lease_margin_ms=1)  # in ticks
MESSAGE = InboxMessage("MSG", "sha256:0f1e", None)  # every message looks alike: the symmetry holds

StartFunction = Callable[[InboxMessage, str, int, int, InboxSettings], InboxFlow]


@attrs.frozen
class InboxModel:
    """What a run executes: the inbox's own functions and data, unless a mutant swaps one. Every piece
    enters as a parameter: `flows` starts and advances every flow (a mutant's swaps one of its
    methods), each step's world is built with `write_condition` and `effects_of`; the judge keeps
    the table as written."""

    mode: Mode = Mode.TRANSACTIONAL
    name: str = "inbox"
    summary: str = "the inbox as written"
    settings: InboxSettings = TICK_SETTINGS
    flows: InboxFlows = INBOX_FLOWS  # the flows over the table `decide` reads
    write_condition: Condition = condition_holds
    effects_of: EffectRule = commit_effects
    caught_by: str = "safety"  # for a mutant: the check that must catch it
    caught_with: str = ""  # for a mutant: the violation its bug makes, as a pattern (`re.search`)

    @property
    def starter(self) -> StartFunction:
        """The mode's own start (`start_guarded`, `start_transactional`), by the model's flows."""
        return functools.partial(self.flows.start, self.mode)


class Action(enum.StrEnum):
    STEP = "step"
    CRASH = "crash"
    DELIVER = "deliver"
    REARM = "rearm"


@attrs.frozen
class Move:
    target: int
    cost: int
    invocations: int  # +1 a delivery starts one, -1 one ends
    action: Action
    flow: InboxFlow | None = None  # the invocation that acted, as it was
    name: str | None = None  # its attempt's canonical name afterwards
    fault: InboxFault | None = None
    outcome: InboxOutcome | None = None
    after: InboxFlow | None = None
    duplicate: bool = False  # a delivery SQS owed nobody (a fault)
    coverage: frozenset[str] = frozenset()


@attrs.frozen
class Cluster:
    stored: InboxStored | None
    effects: int = 0
    deleted: bool = False
    flows: tuple[InboxFlow, ...] = ()
    error: str = ""

    @property
    def record(self) -> InboxRecord | None:
        return self.stored.record if self.stored else None


# ---- coverage ------------------------------------------------------------------------------------

STALL = "stall past the deadline"
DUPLICATE_DELIVERY = "duplicate delivery"
LOST_CLAIM_REFUSED = "a lost claim's completion or release refused"
ANSWERED_DUPLICATE = "a duplicate answered from the record, nothing run"
ANSWERED_BUSY = "a delivery answered busy (the claim is held)"
RACE_LOST = "a commit cancelled by another's (the record moved since the read)"
REFUSED = "a commit cancelled by the effect's own condition"


def crash_label(stage: Stage) -> str:
    return f"crash before {stage.value}"


def row_label(label: str) -> str:
    return f"row {label}"


CRASH_STAGES = {
    Mode.GUARDED: (Stage.HANDLER, Stage.COMPLETE, Stage.RELEASE, Stage.CLAIM),
    Mode.TRANSACTIONAL: (Stage.HANDLER, Stage.COMMIT, Stage.FAILURE),
}


def required_coverage(mode: Mode, max_receives: int = TICK_SETTINGS.max_receives) -> list[str]:
    """Every row of the mode that `max_receives` allows, every fault kind, every crash point and the
    mode's special moments."""
    labels = [row_label(row.label) for row in rows_of(mode) if row_reachable(row, max_receives)]
    faults = WRITE_FAULTS + (READ_FAULTS if mode is Mode.TRANSACTIONAL else ())
    labels += [fault.name for fault in faults]
    labels += [crash_label(stage) for stage in CRASH_STAGES[mode]]
    labels += [STALL, DUPLICATE_DELIVERY, ANSWERED_DUPLICATE]
    labels += [LOST_CLAIM_REFUSED, ANSWERED_BUSY] if mode is Mode.GUARDED else [RACE_LOST, REFUSED]
    return labels


def row_reachable(row: InboxTransition, max_receives: int) -> bool:
    """Whether a row can be taken with this `max_receives` and a budget that never changes. With one
    receive, a claim's takeover or release leaves none, and a failed receive is the last; with more,
    the first failed receive is not. A WAITING record with no receive left is only met when the
    budget is lowered between deliveries (a release that leaves none gives up at once), so its
    claim's row is a guard's other half, checked in tests/test_inbox_model.py, not by the search."""
    if row.source is InboxPhase.WAITING and row.guard is Guard.NO_RECEIVE_LEFT:
        return False
    if max_receives == 1:
        one_left = (Guard.EXPIRED_RECEIVE_LEFT, Guard.ANOTHER_RECEIVE)
        return row.guard not in one_left and not (row.command is Release and row.guard is Guard.RECEIVE_LEFT)
    return not (row.source is InboxPhase.ABSENT and row.guard is Guard.LAST_RECEIVE)


def _reference_row(write: InboxWrite) -> str:
    source = write.before.phase if write.before else InboxPhase.ABSENT
    row = row_writing(source, tuple(type(e) for e in write.events))
    if row is None:
        return "a write no row allows"
    return row_label(row.label)


# ---- the space -----------------------------------------------------------------------------------


class _Numbering:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self._numbers: dict[Any, int] = {}

    def number(self, item: Any) -> int:
        found = self._numbers.get(item)
        if found is None:
            found = self._numbers[item] = len(self.items)
            self.items.append(item)
        return found


@attrs.frozen
class _Step:
    stored: int
    effects: int
    outcome: InboxOutcome
    after: InboxFlow
    coverage: frozenset[str]


class InboxSpace:
    """The canonical clusters met so far, their moves, and what the invariants say of each."""

    def __init__(self, model: InboxModel, max_receives: int) -> None:
        self.model = model
        self.mode = model.mode
        self.settings = attrs.evolve(model.settings, max_receives=max_receives)
        self._stored = _Numbering()
        self._flows = _Numbering()
        self._errors: list[str] = [""]
        self._numbers: dict[tuple[int, ...], int] = {}
        self.keys: list[tuple[int, ...]] = []
        self.clusters: list[Cluster] = []
        self.problems: list[list[str]] = []
        self.settled: list[bool] = []
        self.settle_problems: list[list[str]] = []
        self._moves: dict[int, list[Move]] = {}
        self._ticks: dict[int, tuple[int, int]] = {}
        self._steps: dict[tuple[int, int, InboxFault | None, InboxOutcome | None], _Step | str] = {}
        self._rewritten: dict[tuple[str, int, tuple[tuple[str, str], ...], int], int] = {}
        self.absent = self._cluster(self._stored.number(None), 0, False, 0, ())

    # ---- canonical clusters

    def _cluster(self, stored: int, effects: int, deleted: bool, error: int, flows: tuple[int, ...]) -> int:
        return self._canonical(stored, effects, deleted, error, flows)[0]

    def _canonical(
        self, stored: int, effects: int, deleted: bool, error: int, flows: tuple[int, ...]
    ) -> tuple[int, dict[str, str]]:
        item: InboxStored | None = self._stored.items[stored]
        named = _attempts_in(item.history if item else ())
        names = {attempt: f"a{n}" for n, attempt in enumerate(named, start=1)}
        unnamed = [f for f in flows if self._attempt(f) is not None and self._attempt(f) not in names]
        if len(unnamed) > 1:
            unnamed.sort(
                key=lambda f: repr(
                    self._flows.items[self._rewrite("flow", f, {self._attempt(f) or "": "?"} | names, 0)]
                )
            )
        for f in unnamed:
            names.setdefault(self._attempt(f) or "", f"a{len(names) + 1}")
        renames = {old: new for old, new in names.items() if old != new}
        if renames:
            stored = self._rewrite("stored", stored, renames, 0)
            flows = tuple(self._rewrite("flow", f, renames, 0) for f in flows)
        key = (stored, effects, int(deleted), error, *sorted(flows))
        number = self._numbers.get(key)
        if number is None:
            number = self._numbers[key] = len(self.keys)
            self.keys.append(key)
            cluster = Cluster(
                self._stored.items[stored],
                effects,
                deleted,
                tuple(self._flows.items[f] for f in sorted(flows)),
                self._errors[error],
            )
            self.clusters.append(cluster)
            self._judge(cluster)
        return number, names

    def _attempt(self, flow: int) -> str | None:
        attempt: str | None = self._flows.items[flow].attempt_id
        return attempt

    def _rewrite(self, kind: str, number: int, names: dict[str, str], shift: int) -> int:
        key = (kind, number, tuple(sorted(names.items())), shift)
        found = self._rewritten.get(key)
        if found is None:
            numbering = self._stored if kind == "stored" else self._flows
            found = self._rewritten[key] = numbering.number(rewrite(numbering.items[number], names, shift))
        return found

    def _error(self, text: str) -> int:
        if text not in self._errors:
            self._errors.append(text)
        return self._errors.index(text)

    # ---- invariants

    def _judge(self, cluster: Cluster) -> None:
        problems: list[str] = [cluster.error] if cluster.error else []
        record = cluster.record
        if cluster.stored is not None:
            problems += history_problems(cluster.stored.record, cluster.stored.history)
            if cluster.stored.record.message != MESSAGE:
                problems.append(f"{MESSAGE.message_id}: the stored message is not the one delivered")
        if self.mode is Mode.TRANSACTIONAL:
            problems += effect_problems(MESSAGE.message_id, record, cluster.effects)
        else:
            holders = [
                f.attempt_id or "?" for f in cluster.flows if f.stage is Stage.HANDLER and f.deadline >= NOW
            ]
            problems += holder_problems(MESSAGE.message_id, holders)
            problems += rerun_problems(MESSAGE.message_id, record, holders)
        problems += dropped(MESSAGE.message_id, record, cluster.deleted)
        self.problems.append(problems)
        settled = (
            not cluster.flows
            and not cluster.error
            and record is not None
            and (record.phase is InboxPhase.FAILED or (record.phase is InboxPhase.DONE and cluster.deleted))
        )
        self.settled.append(settled)
        settle: list[str] = []
        if settled and self.mode is Mode.TRANSACTIONAL:
            settle = settled_effect_problems(MESSAGE.message_id, record, cluster.effects)
        self.settle_problems.append(settle)

    # ---- moves

    def moves(self, number: int) -> list[Move]:
        found = self._moves.get(number)
        if found is None:
            found = self._moves[number] = self._find_moves(number)
        return found

    def _find_moves(self, number: int) -> list[Move]:
        stored, effects, deleted, error, *flows = self.keys[number]
        if error:
            return []
        moves: list[Move] = []
        for index, flow in enumerate(flows):
            if flow in flows[:index]:
                continue
            rest = tuple(flows[:index] + flows[index + 1 :])
            effect = self._flows.items[flow].effect
            if isinstance(effect, Invoke):
                for handler in (HANDLER_OK, HANDLER_FAILED):
                    moves.append(self._step_move(number, rest, flow, None, handler, Action.STEP))
            else:
                faults = READ_FAULTS if isinstance(effect, Read) else WRITE_FAULTS
                for fault in (None, *faults):
                    moves.append(self._step_move(number, rest, flow, fault, None, Action.STEP))
                if isinstance(effect, InboxWrite) and effect.commit:
                    moves.append(self._step_move(number, rest, flow, None, EFFECT_REFUSED, Action.STEP))
            crashed: InboxFlow = self._flows.items[flow]
            target = self._cluster(stored, effects, bool(deleted), 0, rest)
            coverage = frozenset({crash_label(crashed.stage)})
            moves.append(Move(target, 1, -1, Action.CRASH, crashed, crashed.attempt_id, coverage=coverage))
        moves += self._deliveries(number, tuple(flows))
        moves += self._rearms(number, tuple(flows))
        return moves

    def _deliveries(self, number: int, flows: tuple[int, ...]) -> list[Move]:
        cluster = self.clusters[number]
        held = any(f.deadline >= NOW for f in cluster.flows)
        duplicate = cluster.deleted or held
        model = self.model
        try:
            flow = model.starter(MESSAGE, "new", NOW, NOW, self.settings)
        except Exception as exc:
            return [self._raised(number, flows, Action.DELIVER, None, None, exc)]
        started = self._flows.number(flow)
        faults = READ_FAULTS if isinstance(flow.effect, Read) else WRITE_FAULTS
        moves = []
        for fault in (None, *faults):
            move = self._step_move(number, flows, started, fault, None, Action.DELIVER)
            if duplicate:
                move = attrs.evolve(
                    move, cost=move.cost + 1, duplicate=True, coverage=move.coverage | {DUPLICATE_DELIVERY}
                )
            moves.append(move)
        return moves

    def _rearms(self, number: int, flows: tuple[int, ...]) -> list[Move]:
        cluster = self.clusters[number]
        stored = cluster.stored
        if stored is None or stored.record.phase is not InboxPhase.FAILED:
            return []
        if any(isinstance(event, MessageRearmed) for event in stored.history):
            return []
        model = self.model
        try:
            flow = model.flows.start_rearm(stored.record, "operator", "fixed", NOW)
        except Exception as exc:
            return [self._raised(number, flows, Action.REARM, None, None, exc)]
        started = self._flows.number(flow)
        return [
            self._step_move(number, flows, started, fault, None, Action.REARM)
            for fault in (None, *WRITE_FAULTS)
        ]

    def _step_move(
        self,
        number: int,
        others: tuple[int, ...],
        flow: int,
        fault: InboxFault | None,
        handler: InboxOutcome | None,
        action: Action,
    ) -> Move:
        stored, effects, deleted = self.keys[number][:3]
        key = (flow, stored, fault, handler)
        result = self._steps.get(key)
        if result is None:
            result = self._steps[key] = self._step(self._flows.items[flow], stored, fault, handler)
        before: InboxFlow = self._flows.items[flow]
        if isinstance(result, str):
            return self._raised(number, others, action, before, fault, result)
        after = result.after
        remaining = others if after.done else (*others, self._flows.number(after))
        gone = bool(deleted) or (after.done and after.answer.ok)
        target, names = self._canonical(result.stored, effects + result.effects, gone, 0, remaining)
        started = int(action in (Action.DELIVER, Action.REARM))
        cost = int(fault is not None) + int(action is Action.REARM)
        name = names.get(before.attempt_id or "", None)
        return Move(
            target,
            cost,
            started - int(after.done),
            action,
            before,
            name,
            fault,
            result.outcome,
            after,
            coverage=result.coverage,
        )

    def _step(
        self, flow: InboxFlow, stored: int, fault: InboxFault | None, handler: InboxOutcome | None
    ) -> _Step | str:
        world = InboxWorld(self.model.write_condition, self.model.effects_of)
        world.stored = self._stored.items[stored]
        ports = InboxWorldPorts(world, fault, handler or HANDLER_OK)
        model_advance = self.model.flows.advance

        def advance(flow: InboxFlow, outcome: InboxOutcome, now: int) -> InboxFlow:
            # A failure's category and code are recorded (`ReceiveFailed`, `Released`, `last_error`)
            # and never read by a guard, a condition, a flow or an invariant: one canonical failure.
            return model_advance(flow, HANDLER_FAILED if isinstance(outcome, HandlerError) else outcome, now)

        try:
            outcome, after = interpreter.step(flow, ports, NOW, _now, advance=advance)
        except Exception as exc:
            return f"the model raised {type(exc).__name__}: {exc}"
        wrote = world.stored is not self._stored.items[stored]
        coverage = _coverage(flow, fault, outcome, after, wrote)
        return _Step(self._stored.number(world.stored), world.effects, outcome, after, coverage)

    def _raised(
        self,
        number: int,
        flows: tuple[int, ...],
        action: Action,
        flow: InboxFlow | None,
        fault: InboxFault | None,
        exc: Exception | str,
    ) -> Move:
        error = exc if isinstance(exc, str) else f"the model raised {type(exc).__name__}: {exc}"
        stored, effects, deleted = self.keys[number][:3]
        target = self._cluster(stored, effects, bool(deleted), self._error(error), flows)
        return Move(target, int(fault is not None), 0, action, flow, None, fault)

    def tick(self, number: int) -> tuple[int, int]:
        """The cluster one tick later, and how many of its invocations overrun their deadline in it."""
        found = self._ticks.get(number)
        if found is None:
            stored, effects, deleted, error, *flows = self.keys[number]
            stalled = sum(1 for f in flows if self._flows.items[f].deadline >= NOW)
            later = self._cluster(
                self._rewrite("stored", stored, {}, 1),
                effects,
                bool(deleted),
                error,
                tuple(self._rewrite("flow", f, {}, 1) for f in flows),
            )
            found = self._ticks[number] = (later, stalled)
        return found

    def item_key(self, number: int) -> tuple[int, ...]:
        return self.keys[number][:3]


def _now() -> int:
    return NOW


def _attempts_in(history: Iterable[InboxEvent]) -> list[str]:
    return list(dict.fromkeys(a for e in history if (a := getattr(e, "attempt_id", None)) is not None))


def _coverage(
    flow: InboxFlow, fault: InboxFault | None, outcome: InboxOutcome, after: InboxFlow, wrote: bool
) -> frozenset[str]:
    labels: set[str] = set()
    if fault is not None:
        labels.add(fault.name)
    if outcome == EFFECT_REFUSED:
        labels.add(REFUSED)
    effect = flow.effect
    if isinstance(effect, InboxWrite):
        if wrote:
            labels.add(_reference_row(effect))
        if isinstance(outcome, Conflict) and outcome.current != effect.after:
            if flow.stage in (Stage.COMPLETE, Stage.RELEASE):
                labels.add(LOST_CLAIM_REFUSED)
            if flow.stage is Stage.COMMIT:
                labels.add(RACE_LOST)
    if after.done:
        labels.add(f"result {after.answer.result.value}")
        if after.answer.result is InboxResult.DUPLICATE:
            labels.add(ANSWERED_DUPLICATE)
        if after.answer.result is InboxResult.BUSY:
            labels.add(ANSWERED_BUSY)
    return frozenset(labels)


# ---- the search ----------------------------------------------------------------------------------

State = tuple[int, ...]  # (faults spent, idle workers, *sorted cluster numbers)
_TIME = ("tick",)


def explore_inbox(
    model: InboxModel,
    bounds: Bounds,
    on_level: Callable[[int, int], None] | None = None,
    on_liveness: Callable[[], None] | None = None,
) -> Report:
    """Explores `model` within `bounds` (`max_attempts` is `max_receives`) to closure, or to its first
    safety violation, then checks liveness on what it found. `on_level` hears each depth;
    `on_liveness`, when liveness starts."""
    search = InboxSearch(InboxSpace(model, bounds.max_attempts), bounds, on_level)
    search.on_liveness = on_liveness
    return search.run()


class InboxSearch:
    def __init__(
        self, space: InboxSpace, bounds: Bounds, on_level: Callable[[int, int], None] | None
    ) -> None:
        self.space = space
        self.bounds = bounds
        self.on_level = on_level
        self.initial: State = (0, bounds.workers) + (space.absent,) * bounds.records
        self.parents: dict[State, State | None] = {self.initial: None}
        self.stuck: State | None = None  # the shallowest settled state with a broken promise
        self.reached: set[str] = set()
        self.on_liveness: Callable[[], None] | None = None

    def run(self) -> Report:
        space, parents = self.space, self.parents
        faults = self.bounds.faults
        covered: set[tuple[int, int]] = set()
        transitions = depth = 0
        violation: State | None = None
        frontier = [self.initial]
        while frontier and violation is None:
            found: list[State] = []
            for state in frontier:
                spent, idle, clusters = state[0], state[1], state[2:]
                budget = faults - spent
                previous = -1
                for position, number in enumerate(clusters):
                    if number == previous:
                        continue
                    previous = number
                    rest = clusters[:position] + clusters[position + 1 :]
                    for index, move in enumerate(space.moves(number)):
                        if move.cost > budget or move.invocations > idle:
                            continue
                        transitions += 1
                        if move.coverage:
                            covered.add((number, index))
                        successor = (
                            spent + move.cost,
                            idle - move.invocations,
                            *sorted((*rest, move.target)),
                        )
                        if successor in parents:
                            continue
                        parents[successor] = state
                        found.append(successor)
                        if space.problems[move.target]:
                            violation = successor
                            break
                        self._at_rest(successor)
                    if violation is not None:
                        break
                if violation is not None:
                    break
                later, stalls = self._tick(clusters)
                if stalls > budget:
                    continue
                successor = (spent + stalls, idle, *later)
                if successor == state:
                    continue
                transitions += 1
                if stalls:
                    self.reached.add(STALL)
                if successor in parents:
                    continue
                parents[successor] = state
                found.append(successor)
                if any(space.problems[c] for c in later):
                    violation = successor
                    break
                self._at_rest(successor)
            if found:
                depth += 1
            frontier = found
            if self.on_level is not None:
                self.on_level(depth, len(parents))
        for number, index in covered:
            self.reached |= space.moves(number)[index].coverage
        missing = [
            label
            for label in required_coverage(space.mode, space.settings.max_receives)
            if label not in self.reached
        ]
        trace: list[str] = []
        problems: list[str] = []
        final: list[str] = []
        if violation is not None:
            trace, labels = self._trace(self._path(violation))
            problems, final = self._problems(violation, labels), self._describe_state(violation, labels)
        report = Report(
            model=space.model.name,
            bounds=self.bounds,
            complete=violation is None,
            states=len(parents),
            transitions=transitions,
            max_depth=depth,
            violations=problems,
            counterexample=trace,
            final_state=final,
            reached=sorted(self.reached),
            missing=missing if violation is None else [],
        )
        if violation is not None:
            return report
        if self.on_liveness is not None:
            self.on_liveness()
        return attrs.evolve(report, liveness=self._liveness())

    def _tick(self, clusters: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
        later: list[int] = []
        stalls = 0
        for number in clusters:
            after, stalled = self.space.tick(number)
            later.append(after)
            stalls += stalled
        return tuple(sorted(later)), stalls

    def _at_rest(self, state: State) -> None:
        settled = self.stuck is None and self._settled(state)
        if settled and any(self.space.settle_problems[c] for c in state[2:]):
            self.stuck = state

    def _settled(self, state: State) -> bool:
        return all(self.space.settled[c] for c in state[2:])

    # ---- liveness

    def _liveness(self) -> Liveness:
        nodes = [state for state in self.parents if not self._settled(state)]
        index = {state: n for n, state in enumerate(nodes)}
        edges, enabled = self._fault_free_graph(nodes, index)
        fair = fair_components(range(len(nodes)), edges, enabled)
        order = {state: n for n, state in enumerate(self.parents)}
        starts: list[tuple[int, State, Kind, list[State], list[object]]] = []
        for component in fair:
            entry = min(component, key=lambda n: order[nodes[n]])
            walk = fair_cycle(entry, set(component), edges, enabled) if len(component) > 1 else []
            if len(component) == 1 and any(target == entry for target, _ in edges.get(entry, ())):
                walk = [(entry, label) for target, label in edges[entry] if target == entry][:1]
            kind = Kind.CYCLE if walk else Kind.DEAD_END
            loop = [nodes[entry]] + [nodes[target] for target, _ in walk]
            starts.append((len(self._path(nodes[entry])), nodes[entry], kind, loop, [lb for _, lb in walk]))
        if self.stuck is not None:
            starts.append((len(self._path(self.stuck)), self.stuck, Kind.BROKEN_PROMISE, [self.stuck], []))
        if not starts:
            return Liveness(checked=True, cyclic_states=len(nodes), fair_components=len(fair))
        _, start, kind, loop, labels = min(starts, key=lambda found: found[0])
        path, names = self._trace(self._path(start))
        steps, _ = self._trace(loop, names, first=len(path) + 1, fairness=labels)
        return Liveness(
            checked=True,
            kind=kind,
            violations=self._unsettled(start, kind, names),
            path=path,
            loop=steps,
            final_state=self._describe_state(start, names),
            cyclic_states=len(nodes),
            fair_components=len(fair),
        )

    def _fault_free_graph(
        self, nodes: list[State], index: dict[State, int]
    ) -> tuple[dict[int, list[tuple[int, object]]], dict[int, frozenset[object]]]:
        space = self.space
        edges: dict[int, list[tuple[int, object]]] = {}
        enabled: dict[int, frozenset[object]] = {}
        for n, state in enumerate(nodes):
            idle, clusters = state[1], state[2:]
            out: list[tuple[int, object]] = []
            fair: set[object] = set()
            for position, number in enumerate(clusters):
                rest = clusters[:position] + clusters[position + 1 :]
                for move in space.moves(number):
                    if move.cost or move.invocations > idle or move.action in (Action.CRASH, Action.REARM):
                        continue
                    label = self._fairness(number, move)
                    fair.add(label)
                    successor = (state[0], idle - move.invocations, *sorted((*rest, move.target)))
                    if successor in index:
                        out.append((index[successor], label))
            later, stalls = self._tick(clusters)
            successor = (state[0], idle, *later)
            if not stalls and successor != state:
                fair.add(_TIME)
                if successor in index:
                    out.append((index[successor], _TIME))
            edges[n] = out
            enabled[n] = frozenset(fair)
        return edges, enabled

    def _fairness(self, number: int, move: Move) -> object:
        if move.action is Action.STEP:
            assert move.flow is not None
            return ("step", self.space._flows.number(move.flow))
        return ("deliver", self.space.item_key(number))

    def _unsettled(self, state: State, kind: Kind, labels: list[str]) -> list[str]:
        space = self.space
        if kind is Kind.BROKEN_PROMISE:
            return [
                f"settled: {problem.replace(MESSAGE.message_id, label)}"
                for label, number in zip(labels, state[2:], strict=True)
                for problem in space.settle_problems[number]
            ]
        never = "goes round the cycle for ever" if kind is Kind.CYCLE else "stays so for ever"
        lines = []
        for label, number in zip(labels, state[2:], strict=True):
            if space.settled[number]:
                continue
            lines.append(f"{label} never settles: {self._describe_cluster(number)}; {never}")
        return lines or [f"an invocation never ends; {never}"]

    # ---- traces

    def _problems(self, state: State, labels: list[str]) -> list[str]:
        return [
            problem.replace(MESSAGE.message_id, label)
            for label, number in zip(labels, state[2:], strict=True)
            for problem in self.space.problems[number]
        ]

    def _path(self, state: State) -> list[State]:
        path = [state]
        parent = self.parents[state]
        while parent is not None:
            path.append(parent)
            parent = self.parents[parent]
        path.reverse()
        return path

    def _link(self, parent: State, child: State, fairness: object = None) -> tuple[int, Move | None]:
        spent, idle, clusters = parent[0], parent[1], parent[2:]
        if fairness == _TIME:
            return -1, None
        budget = self.bounds.faults - spent if fairness is None else 0
        for position, number in enumerate(clusters):
            rest = clusters[:position] + clusters[position + 1 :]
            for move in self.space.moves(number):
                if move.cost > budget or move.invocations > idle:
                    continue
                if fairness is not None and self._fairness(number, move) != fairness:
                    continue
                if child == (spent + move.cost, idle - move.invocations, *sorted((*rest, move.target))):
                    return position, move
        return -1, None

    def _trace(
        self,
        path: list[State],
        labels: list[str] | None = None,
        first: int = 1,
        fairness: list[object] | None = None,
    ) -> tuple[list[str], list[str]]:
        """The numbered steps (from `first`) along `path`, naming messages m1.. in the order of the
        first state's clusters (or by `labels`); and the names in the order of the last state's."""
        labels = labels or _labels(len(path[0]) - 2)
        lines = []
        kinds: list[object] = fairness if fairness is not None else [None] * (len(path) - 1)
        for step, (parent, child, kind) in enumerate(
            zip(path[:-1], path[1:], kinds, strict=True), start=first
        ):
            clusters = list(parent[2:])
            position, move = self._link(parent, child, kind)
            if move is None:
                text = self._describe_tick(clusters, labels)
                clusters = [self.space.tick(number)[0] for number in clusters]
            else:
                text = f"{labels[position]}: {_describe_move(move)}"
                clusters[position] = move.target
                text += f"  [{labels[position]}: {self._describe_cluster(move.target)}]"
            order = sorted(range(len(clusters)), key=lambda i: clusters[i])
            labels = [labels[i] for i in order]
            lines.append(f"{step:>3}. {text}")
        return lines, labels

    def _describe_tick(self, clusters: list[int], labels: list[str]) -> str:
        stalled = [
            f"{label}'s {_describe_flow(flow, flow.attempt_id)}"
            for label, number in zip(labels, clusters, strict=True)
            for flow in self.space.clusters[number].flows
            if flow.deadline >= NOW
        ]
        text = "time passes one tick"
        if stalled:
            text += f"; overruns its deadline: {', '.join(stalled)} [fault: stall x{len(stalled)}]"
        return text

    def _describe_cluster(self, number: int) -> str:
        cluster = self.space.clusters[number]
        text = describe_record(cluster.record)
        if self.space.mode is Mode.TRANSACTIONAL:
            text += f"; effect applied {cluster.effects}x"
        if cluster.deleted:
            text += "; deleted from the queue"
        running = [f"{_describe_flow(f, f.attempt_id)} at {f.stage.value}" for f in cluster.flows]
        if running:
            text += "; running: " + ", ".join(running)
        return text

    def _describe_state(self, state: State, labels: list[str]) -> list[str]:
        lines = []
        for label, number in sorted(zip(labels, state[2:], strict=True)):
            cluster = self.space.clusters[number]
            lines.append(f"{label}: {self._describe_cluster(number)}")
            if cluster.stored:
                history = ", ".join(_event_text(e) for e in cluster.stored.history)
                lines.append(f"    history: {history}")
        return lines


def _labels(count: int) -> list[str]:
    return [f"m{n}" for n in range(1, count + 1)]


def _event_text(event: object) -> str:
    attempt = getattr(event, "attempt_id", None)
    return type(event).__name__ + (f"({attempt})" if attempt else "")


def describe_record(record: InboxRecord | None) -> str:
    if record is None:
        return "no record"
    text = f"{record.phase.value} v{record.version}, {record.receives} receive(s)"
    if record.attempt_id is not None and record.phase is InboxPhase.PROCESSING:
        text += f", held by {record.attempt_id}"
        assert record.lease_expires_at is not None
        text += ", lease live" if record.lease_expires_at > NOW else ", lease expired"
    return text


def _describe_flow(flow: InboxFlow, name: str | None) -> str:
    if flow.stage is Stage.REARM or (flow.done and flow.attempt_id is None):
        return "an operator's re-arm"
    return f"{flow.mode.value} delivery" + (f" {name}" if name else "")


def _describe_effect(effect: object) -> str:
    match effect:
        case InboxWrite(events=events, commit=commit):
            what = "+".join(type(e).__name__ for e in events)
            return f"{'commit' if commit else 'write'} {what}"
        case Read():
            return "read the record"
        case Invoke():
            return "the handler"
    return "answer"


def _describe_outcome(outcome: InboxOutcome | None) -> str:
    match outcome:
        case Written():
            return "written"
        case Conflict(current=current):
            return f"condition failed (found {describe_record(current)})"
        case Found(record=record):
            return f"found {describe_record(record)}"
        case Failure(category=category, code=code):
            return f"failed: {category.value} {code}"
        case Handled():
            return "returned"
        case HandlerError(failure=Failure(code=code)):
            return f"raised ({code})"
    return ""


def _describe_move(move: Move) -> str:
    fault = f" [fault: {move.fault.name}]" if move.fault else ""
    if move.action is Action.CRASH:
        assert move.flow is not None
        who = _describe_flow(move.flow, move.name)
        return f"{who} crashes before its {move.flow.stage.value} [fault: crash]"
    flow, after = move.flow, move.after
    if flow is None or after is None:
        return f"{move.action.value} makes the model raise{fault}"
    who = _describe_flow(flow, move.name)
    if move.action is Action.DELIVER:
        who = f"SQS delivers it ({who}){' [fault: duplicate delivery]' if move.duplicate else ''}"
    elif move.action is Action.REARM:
        who = "an operator re-arms the FAILED message"
    text = f"{who}: {_describe_effect(flow.effect)}{fault} -> {_describe_outcome(move.outcome)}"
    if after.done:
        answer: InboxAnswer = after.answer
        return f"{text}; answers {answer.result.value.upper()}{' (ok: deleted)' if answer.ok else ''}"
    return f"{text}; next: {_describe_effect(after.effect)}"
