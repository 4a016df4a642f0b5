"""Breadth-first search of `statemodel.checker.space` to closure, with coverage, the shortest
counterexample, and then the liveness check on the graph it found.

A state is `(faults used, idle workers, cluster, cluster, ...)` with the clusters (one per record,
numbered by `Space`) sorted: two states that differ only in which record or which worker is which are
one state. From a state, each distinct cluster offers its moves (cheap: `Space` remembers them), and
time offers one tick. Breadth first, the first violation found is at the least depth there is, so its
trace is a shortest counterexample. Pure: the caller reads the clock.

Safety: every new state is checked as it is found, by the invariants of the cluster that changed.

The reduction across records (`reduce`, on unless turned off): where an invocation runs, only the
first record (in the state's order) with one running moves, and time; the others wait until it has
none. It keeps every verdict, because records share only the workers, the fault budget and the clock,
and the first two only restrict:

* Project a run onto one record: drop the other records' moves, keep each tick that changes it
  (costing only its own stalls). What is left is a run of that record alone (the others absent, as
  in the initial state) that is no longer and has, at every step, at least the idle workers and the
  budget the full run had. Alone, a record is the only one with an invocation, so the reduction keeps
  its whole run. Hence every cluster the unreduced search meets, the reduced one meets too, at no
  greater depth, with a budget and idle workers at least as large: the same safety verdict with a
  counterexample as short (its projection is one), the same coverage (a move counts as reached where
  it was affordable), the same clusters for the cycle analysis below.
* Dead ends and broken promises are judged where no invocation runs: projected onto the record at
  fault, such a state is one of the record alone, kept at no greater depth; the reduced graph being
  part of the full one, the verdict and the depth of the shallowest are the same.
* Cycles (the proviso liveness needs; TLC warns that a symmetry reduction can hide a liveness
  violation, and a partial-order reduction hides cycles unless a cycle proviso holds): every cycle of
  states needs a cluster on a fault-free cycle (below), and the reduced search meets the same
  clusters. Where there is none (the model as written), no fair cycle exists to be missed; where there
  is one, the search runs again unreduced and liveness is checked on the whole graph. (The symmetry
  of states is sound for liveness too: fairness labels name flows and items by content, the same
  under any renaming of records, and a cycle of sorted states, repeated until the renaming it makes
  comes back to the identity, is a cycle of the full graph taking the same labels.)

Liveness: from every reachable state, once faults stop, every fair continuation reaches a settled
state (no invocation runs; every record is absent, CONFIRMED or EXHAUSTED), and where it settles no
record is orphaned and nothing is lost. The continuations are the fault-free moves (an invocation's
step without a fault, a client's request, the reconciler starting a flow, and a tick that overruns no
invocation). The fairness, strong, is what production gives:

* invocations run to their end: Lambda runs each invocation until it returns, or its timeout ends it,
  and an invocation ended by its timeout is a stall or a crash, which are faults;
* time passes: the only tick a fault-free continuation cannot take is one that would overrun a live
  invocation, which then finishes first (its healthy steps take no time);
* the reconciler keeps running: EventBridge invokes it on a schedule (deploy/template.yaml: every
  minute, with its own reserved concurrency), and each pass queries every record the index shows due,
  so a record that is due again and again is acted on again and again.

Clients need no fairness: they may stop, or send any request again at any time; nor does the operator,
who may re-arm an exhausted record (once, in the explorer) or never. No fair continuation
settles from a state exactly when the fault-free graph has, among unsettled states, a dead end (a
state where nothing fair is enabled: no invocation runs, the reconciler starts nothing, and a tick
changes nothing) or a fair cycle (a strongly connected set in which every fair action enabled
somewhere is taken somewhere; `statemodel.checker.liveness`). Dead ends are found during the search.
Cycles need no second search: a write or a send makes a record's state new for good (its history and
its sends only grow), so a cycle can only move through clusters whose item and sends stay the same;
the clusters that lie on such a cycle are found first, and only the states that hold one are examined.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections.abc import Callable

import attrs

from statemodel.checker.liveness import Edges, components, fair_components, fair_cycle
from statemodel.checker.space import (
    MESSAGE,
    NOW,
    STALL,
    Action,
    Model,
    Move,
    Space,
    describe_answer,
    describe_effect,
    describe_flow,
    describe_outcome,
    describe_record,
    required_coverage,
)

State = tuple[int, ...]  # (faults used, idle workers, *sorted cluster numbers)
_TICK = -1  # the position of a tick in `_link`
_TIME = ("tick",)  # the fairness label of time passing
_ANY = ("any",)  # `_link`: any move the search could have taken


@attrs.frozen
class Bounds:
    workers: int  # K concurrent invocations
    records: int  # M records
    faults: int  # F faults injected, at most, per run
    max_attempts: int = 2  # A: the claims a record may have (the protocol's `max_attempts`)


class Kind(enum.StrEnum):
    """How a liveness violation ends."""

    CYCLE = "cycle"  # a fair run goes round it for ever, never settling
    DEAD_END = "dead end"  # nothing fair can happen any more, and a record has not settled
    BROKEN_PROMISE = "settled with a broken promise"  # settled, but orphaned or lost


@attrs.frozen
class Liveness:
    """What the liveness check found (on the graph of a complete search with no safety violation)."""

    checked: bool  # False when the search stopped at a safety violation first
    kind: Kind | None = None  # None: every fair continuation settles
    violations: list[str] = attrs.field(factory=list)
    path: list[str] = attrs.field(factory=list)  # numbered steps to the state where it starts
    loop: list[str] = attrs.field(factory=list)  # the cycle's steps, numbered on from the path
    final_state: list[str] = attrs.field(factory=list)  # the records where it starts
    cyclic_states: int = 0  # unsettled states examined for fair cycles
    fair_components: int = 0  # of them, sets in which a fair run can stay for ever

    @property
    def ok(self) -> bool:
        return self.checked and self.kind is None


@attrs.frozen
class Report:
    """What a search found."""

    model: str
    bounds: Bounds
    complete: bool  # explored to closure (no violation stopped it)
    states: int
    transitions: int
    max_depth: int
    violations: list[str]
    counterexample: list[str]  # numbered steps, from the initial state to the violation
    final_state: list[str]  # the records at the end of the counterexample
    reached: list[str]  # coverage labels reached
    missing: list[str]  # coverage labels required and never reached
    liveness: Liveness = Liveness(checked=False)
    reduced: bool = False  # explored with the reduction across records (`explore`'s `reduce`)

    @property
    def ok(self) -> bool:
        return self.complete and not self.violations and not self.missing and self.liveness.ok


def explore(
    model: Model,
    bounds: Bounds,
    on_level: Callable[[int, int], None] | None = None,
    on_liveness: Callable[[], None] | None = None,
    reduce: bool = True,
) -> Report:
    """Explores `model` within `bounds` to closure, or to its first safety violation, then checks
    liveness on what it found. `on_level` hears each depth; `on_liveness`, when liveness starts.
    `reduce`: with the reduction across records (the module's comment), which keeps every verdict."""
    search = Search(Space(model, bounds.max_attempts), bounds, on_level, reduce)
    search.on_liveness = on_liveness
    return search.run()


class Search:
    """One breadth-first search; `run` it and read the outcome."""

    def __init__(
        self,
        space: Space,
        bounds: Bounds,
        on_level: Callable[[int, int], None] | None,
        reduce: bool = True,
    ) -> None:
        self.space = space
        self.reduce = reduce
        self.bounds = bounds
        self.on_level = on_level
        self.on_liveness: Callable[[], None] | None = None
        self.initial: State = (0, bounds.workers) + (space.absent,) * bounds.records
        self.parents: dict[State, State | None] = {self.initial: None}  # each state found, and whence
        self.stalled = False  # a tick stalled an invocation at least once
        # The shallowest state found where a run stops unsettled, or settles with a broken promise.
        self.stuck: tuple[State, Kind] | None = None

    def run(self) -> Report:
        """Breadth first, level by level. The loop is the explorer's hot path: it only looks numbers
        up; everything about a cluster is computed once, by `Space.summary`."""
        space, workers, faults, records = (
            self.space,
            self.bounds.workers,
            self.bounds.faults,
            self.bounds.records,
        )
        parents, full, free, summary_of, visits = (
            self.parents,
            space.summaries,
            space.free_summaries,
            space.summary,
            space.visits,
        )
        busy, reduce = space.busy, self.reduce
        problems, at_rest = space.problems, self._at_rest
        width = workers + 1
        transitions = depth = 0
        violation: State | None = self.initial if self._problems(self.initial) else None
        frontier = [self.initial]
        while frontier and violation is None:
            found: list[State] = []
            for state in frontier:
                spent, idle = state[0], state[1]
                clusters = state[2:]
                budget = faults - spent
                summaries = full if budget else free  # with the budget spent, no fault can be taken
                seen_with = 1 << (budget * width + idle)
                previous = -1
                chosen = -1  # the reduction: the first record with an invocation, if any, moves alone
                if reduce and idle < workers:
                    for number in clusters:
                        if busy[number]:
                            chosen = number
                            break
                for position in range(records):
                    number = clusters[position]
                    if number == previous or (chosen >= 0 and number != chosen):
                        continue  # an identical record (the same successors), or one that waits
                    previous = number
                    visits[number] |= seen_with
                    rest = clusters[:position] + clusters[position + 1 :]
                    for cost, invocations, target in (summaries[number] or summary_of(number, budget > 0))[0]:
                        if cost > budget:
                            break  # cheapest first
                        if invocations > idle:
                            continue
                        transitions += 1
                        at = bisect_left(rest, target)
                        successor = (spent + cost, idle - invocations, *rest[:at], target, *rest[at:])
                        if successor in parents:
                            continue
                        parents[successor] = state
                        found.append(successor)
                        if problems[target]:
                            violation = successor
                            break
                        if idle - invocations == workers:  # no invocation runs: it may settle here
                            at_rest(successor)
                    if violation is not None:
                        break
                if violation is not None:
                    break
                later: list[int] = []
                stalls = 0
                for number in clusters:
                    _, after_tick, stalled = summaries[number] or summary_of(number, budget > 0)
                    later.append(after_tick)
                    stalls += stalled
                if stalls > budget:
                    continue
                later.sort()
                successor = (spent + stalls, idle, *later)
                if successor == state:
                    continue
                transitions += 1
                self.stalled = self.stalled or stalls > 0
                if successor in parents:
                    continue
                parents[successor] = state
                found.append(successor)
                if any(problems[c] for c in later):
                    violation = successor
                    break
                if idle == workers:
                    at_rest(successor)
            if found:
                depth += 1
            frontier = found
            if self.on_level is not None:
                self.on_level(depth, len(parents))
        report = self._outcome(violation, transitions, depth)
        if violation is not None:
            return report
        if self.reduce and self._cyclic_clusters():
            # A cluster on a fault-free cycle: a fair cycle may pass through interleavings the
            # reduction left out, so the graph liveness needs is found again, unreduced.
            self.parents = {}  # not needed any more: let it go before the larger search
            unreduced = Search(self.space, self.bounds, self.on_level, reduce=False)
            unreduced.on_liveness = self.on_liveness
            return unreduced.run()
        if self.on_liveness is not None:
            self.on_liveness()
        return attrs.evolve(report, liveness=self._liveness())

    def _at_rest(self, state: State) -> None:
        """A state with no invocation running: remember it if it settles with a broken promise, or if
        it is a dead end (nothing fair can happen) with a record unsettled. Breadth first, the first
        one remembered is a shallowest."""
        if self.stuck is not None:
            return
        space, clusters = self.space, state[2:]
        if all(space.settled[c] for c in clusters):
            if any(space.settle_problems[c] for c in clusters):
                self.stuck = (state, Kind.BROKEN_PROMISE)
        elif all(space.calm[c] and space.tick(c) == (c, 0) for c in clusters):
            self.stuck = (state, Kind.DEAD_END)

    # ---- liveness --------------------------------------------------------------------------------

    def _liveness(self) -> Liveness:
        """Dead ends were found during the search; here, the fair cycles. Reports the violation whose
        start is nearest the initial state."""
        cyclic = self._cyclic_clusters()
        settled = self.space.settled
        order = {
            state: n
            for n, state in enumerate(self.parents if cyclic else ())
            if any(c in cyclic for c in state[2:]) and not all(settled[c] for c in state[2:])
        }
        nodes = list(order)
        index = {state: n for n, state in enumerate(nodes)}
        edges, enabled = self._fault_free_graph(nodes, index)
        fair = fair_components(range(len(nodes)), edges, enabled)
        # (depth, where it starts, how it ends, the loop's states and the fairness label of each step)
        starts: list[tuple[int, State, Kind, list[State], list[object]]] = []
        for component in fair:
            entry = min(component, key=lambda n: order[nodes[n]])
            walk = fair_cycle(entry, set(component), edges, enabled) if len(component) > 1 else []
            kind = Kind.CYCLE if walk else Kind.DEAD_END
            loop = [nodes[entry]] + [nodes[target] for target, _ in walk]
            starts.append((len(self._path(nodes[entry])), nodes[entry], kind, loop, [lb for _, lb in walk]))
        if self.stuck is not None:
            state, kind = self.stuck
            starts.append((len(self._path(state)), state, kind, [state], []))
        if not starts:
            return Liveness(checked=True, cyclic_states=len(nodes), fair_components=len(fair))
        _, start, kind, loop, steps_labels = min(starts, key=lambda found: found[0])
        path, labels = self._trace(self._path(start))
        steps, _ = self._trace(loop, labels, first=len(path) + 1, fairness=steps_labels)
        return Liveness(
            checked=True,
            kind=kind,
            violations=self._unsettled(start, labels, kind),
            path=path,
            loop=steps,
            final_state=self._describe_state(start, labels),
            cyclic_states=len(nodes),
            fair_components=len(fair),
        )

    def _cyclic_clusters(self) -> set[int]:
        """The clusters on a cycle of fault-free moves that keep the record's item and sends as they
        are (only such moves can come back to where they started). A cycle of states needs one."""
        space = self.space
        met = [number for number, seen in enumerate(space.visits) if seen]

        def successors(number: int) -> list[int]:
            targets = [m.target for m in space.moves(number, faults=False)]
            later, stalls = space.tick(number)
            if not stalls:
                targets.append(later)
            return [t for t in targets if t != number and space.same_item(number, t)]

        return {c for component in components(set(met), successors) if len(component) > 1 for c in component}

    def _fault_free_graph(
        self, nodes: list[State], index: dict[State, int]
    ) -> tuple[Edges, dict[int, frozenset[object]]]:
        """The fault-free moves between `nodes`, labelled with the fairness they are owed, and the
        fair moves enabled in each node (wherever they lead): an invocation's step (its flow), the
        reconciler's start on a record (its item), a tick. A client's request, and an operator's re-arm,
        are owed nothing."""
        space = self.space
        edges: dict[int, list[tuple[int, object]]] = {}
        enabled: dict[int, frozenset[object]] = {}
        for n, state in enumerate(nodes):
            spent, idle, clusters = state[0], state[1], state[2:]
            out: list[tuple[int, object]] = []
            fair: set[object] = set()
            for position, number in enumerate(clusters):
                rest = clusters[:position] + clusters[position + 1 :]
                for move in space.moves(number, faults=False):
                    if move.invocations > idle:
                        continue
                    label = self._fairness(number, move)
                    if label is not None:
                        fair.add(label)
                    successor = (spent, idle - move.invocations, *sorted((*rest, move.target)))
                    if successor in index:
                        out.append((index[successor], label))
            later, stalls = zip(*(space.tick(number) for number in clusters), strict=True)
            if not sum(stalls):
                fair.add(_TIME)
                successor = (spent, idle, *sorted(later))
                if successor in index:
                    out.append((index[successor], _TIME))
            edges[n] = out
            enabled[n] = frozenset(fair)
        return edges, enabled

    def _fairness(self, cluster: int, move: Move) -> object:
        """The fairness a fault-free move of `cluster` is owed: an invocation's step, by its flow; the
        reconciler's start, by the record's item; a client's request or an operator's re-arm, none."""
        if move.action is Action.STEP:
            assert move.flow is not None
            return ("step", self.space.flow_number(move.flow))
        if move.action is Action.RECONCILE:
            return ("reconcile", self.space.item_number(cluster))
        return None

    def _unsettled(self, state: State, labels: list[str], kind: Kind) -> list[str]:
        """Why `state` is a violation: the records that never settle, or the broken promises."""
        space, clusters = self.space, state[2:]
        named = list(zip(labels, clusters, strict=True))
        if kind is Kind.BROKEN_PROMISE:
            return [
                f"settled: {_named(p, label)}" for label, c in sorted(named) for p in space.settle_problems[c]
            ]
        never = "goes round the cycle for ever" if kind is Kind.CYCLE else "stays so for ever"
        attempts = self.space.settings.max_attempts
        lines = []
        for label, number in sorted(named):
            record = space.clusters[number].record
            if space.settled[number] or record is None:
                continue
            lines.append(
                f"{label} never settles: {describe_record(record)}, {record.attempts} of {attempts} "
                f"attempts used; {never}"
            )
        return lines or [f"an invocation never ends; {never}"]

    def reachable_clusters(self) -> set[int]:
        """The clusters of every state found: each record's situations, as far as the search went."""
        return {number for state in self.parents for number in state[2:]}

    def _problems(self, state: State, labels: list[str] | None = None) -> list[str]:
        """What is wrong in `state`, naming its records by `labels` (in the order of its clusters)."""
        space, clusters = self.space, state[2:]
        labels = labels or _labels(len(clusters))
        problems = [
            _named(problem, label)
            for label, number in zip(labels, clusters, strict=True)
            for problem in space.problems[number]
        ]
        return problems

    # ---- the report ------------------------------------------------------------------------------

    def _reached(self) -> set[str]:
        """The coverage labels of every move taken: a cluster met with budget b and i idle workers
        took each of its moves that costs at most b and starts at most i invocations."""
        width = self.bounds.workers + 1
        reached: set[str] = {STALL} if self.stalled else set()
        for number, seen_with in enumerate(self.space.visits):
            if not seen_with:
                continue
            met = [
                (bit // width, bit % width) for bit in range(seen_with.bit_length()) if seen_with >> bit & 1
            ]
            for move in self.space.moves(number, faults=seen_with >= 1 << width):  # a budget left
                if any(move.cost <= budget and move.invocations <= idle for budget, idle in met):
                    reached |= move.coverage
        return reached

    def _outcome(self, violation: State | None, transitions: int, depth: int) -> Report:
        reached = self._reached()
        missing = [label for label in required_coverage(self.bounds.max_attempts) if label not in reached]
        trace: list[str] = []
        final: list[str] = []
        problems: list[str] = []
        if violation is not None:
            trace, labels = self._trace(self._path(violation))
            problems = self._problems(violation, labels)
            final = self._describe_state(violation, labels)
        return Report(
            model=self.space.model.name,
            bounds=self.bounds,
            complete=violation is None,
            states=len(self.parents),
            transitions=transitions,
            max_depth=depth,
            violations=problems,
            counterexample=trace,
            final_state=final,
            reached=sorted(reached),
            missing=missing if violation is None else [],
            reduced=self.reduce,
        )

    def _path(self, state: State) -> list[State]:
        """The states from the initial one to `state`, in order."""
        path = [state]
        parent = self.parents[state]
        while parent is not None:
            path.append(parent)
            parent = self.parents[parent]
        path.reverse()
        return path

    def _link(self, parent: State, child: State, fairness: object = _ANY) -> tuple[int, Move | None]:
        """How the search went from `parent` to `child`: (position of the cluster, its move), or
        (_TICK, None) for a tick. With a `fairness` label (a step of the liveness loop): by a
        fault-free move of that kind."""
        spent, idle, clusters = parent[0], parent[1], parent[2:]
        if fairness == _TIME:
            return _TICK, None
        budget = self.bounds.faults - spent if fairness is _ANY else 0
        for position, number in enumerate(clusters):
            rest = sorted(clusters[:position] + clusters[position + 1 :])
            for move in self.space.moves(number):
                if move.cost > budget or move.invocations > idle:
                    continue
                if fairness is not _ANY and self._fairness(number, move) != fairness:
                    continue
                if child == (spent + move.cost, idle - move.invocations, *sorted([*rest, move.target])):
                    return position, move
        return _TICK, None

    def _trace(
        self,
        path: list[State],
        labels: list[str] | None = None,
        first: int = 1,
        fairness: list[object] | None = None,
    ) -> tuple[list[str], list[str]]:
        """The numbered steps (from `first`) along `path`, naming records r1.. as they were first met
        (or by `labels`, in the order of the first state's clusters); and the record names in the
        order of the last state's clusters. `fairness`: the label of each step (a liveness loop)."""
        labels = labels or _labels(self.bounds.records)
        lines = []
        kinds = fairness if fairness is not None else [_ANY] * (len(path) - 1)
        for step, (parent, child, kind) in enumerate(
            zip(path[:-1], path[1:], kinds, strict=True), start=first
        ):
            clusters = list(parent[2:])
            position, move = self._link(parent, child, kind)
            if move is None:
                text = self._describe_tick(clusters, labels)
                clusters = [self.space.tick(number)[0] for number in clusters]
            else:
                text = f"{labels[position]}: {self._describe_move(move)}"
                clusters[position] = move.target
                text += f"  [{labels[position]}: {self._describe_cluster(move.target)}]"
            order = sorted(range(len(clusters)), key=lambda i: clusters[i])  # stable, as the search sorts
            labels = [labels[i] for i in order]
            lines.append(f"{step:>3}. {text}")
        return lines, labels

    def _describe_move(self, move: Move) -> str:
        fault = f" [fault: {move.fault.name}]" if move.fault else ""
        match move.action:
            case Action.CRASH:
                assert move.flow is not None
                who = describe_flow(move.flow, move.name)
                return f"{who} crashes before its {move.flow.stage.value} [fault: crash]"
            case Action.RECONCILE if move.after is not None:
                return (
                    f"the reconciler reads the record and starts the {describe_flow(move.after, move.name)}"
                )
        flow, after = move.flow, move.after
        if flow is None or after is None:
            return f"{move.action.value} makes the model raise{fault}"
        who = describe_flow(flow, move.name)
        if move.action is Action.SUBMIT:
            who = f"a client sends its request ({who})"
        elif move.action is Action.REARM:
            who = f"an operator re-arms the exhausted record ({who})"
        text = f"{who}: {describe_effect(flow.effect)}{fault} -> {describe_outcome(move.outcome)}"
        if after.done:
            return f"{text}; answers {describe_answer(after.answer)}"
        return f"{text}; next: {describe_effect(after.effect)}"

    def _describe_tick(self, clusters: list[int], labels: list[str]) -> str:
        stalled = []
        expired = []
        for label, number in zip(labels, clusters, strict=True):
            cluster = self.space.clusters[number]
            stalled += [
                f"{label}'s {describe_flow(flow, flow.attempt_id)}"
                for flow in cluster.flows
                if flow.lease_expires_at is not None and flow.send_deadline == NOW
            ]
            record = cluster.record
            if record and record.lease_expires_at is not None and record.lease_expires_at == NOW + 1:
                expired.append(f"{label}'s lease of {record.attempt_id}")
        text = "time passes one tick"
        if stalled:
            text += f"; stalls past its deadline: {', '.join(stalled)} [fault: lease expiry x{len(stalled)}]"
        if expired:
            text += f"; expires: {', '.join(expired)}"
        return text

    def _describe_cluster(self, number: int) -> str:
        cluster = self.space.clusters[number]
        text = describe_record(cluster.record)
        if cluster.landed:
            text += f"; SQS has accepted {cluster.landed} send(s)"
        if cluster.promised_unsent:
            text += "; a client was told 202"
        return text

    def _describe_state(self, state: State, labels: list[str]) -> list[str]:
        lines = []
        for label, number in sorted(zip(labels, state[2:], strict=True)):
            cluster = self.space.clusters[number]
            lines.append(f"{label}: {self._describe_cluster(number)}")
            if cluster.stored:
                history = ", ".join(_event_text(event) for event in cluster.stored.history)
                lines.append(f"    history: {history}")
            lines += [
                f"    running: {describe_flow(f, f.attempt_id)}, next {describe_effect(f.effect)}"
                for f in cluster.flows
            ]
        return lines


def _labels(records: int) -> list[str]:
    return [f"r{n}" for n in range(1, records + 1)]


def _named(problem: str, label: str) -> str:
    return problem.replace(MESSAGE.message_id, label)


def _event_text(event: object) -> str:
    attempt = getattr(event, "attempt_id", None)
    return type(event).__name__ + (f"({attempt})" if attempt else "")
