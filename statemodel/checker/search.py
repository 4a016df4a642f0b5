"""Breadth-first search of `statemodel.checker.space` to closure, with coverage and the shortest
counterexample.

A state is `(faults used, idle workers, cluster, cluster, ...)` with the clusters (one per record,
numbered by `Space`) sorted: two states that differ only in which record or which worker is which are
one state. From a state, each distinct cluster offers its moves (cheap: `Space` remembers them), and
time offers one tick. The search checks every new state as it is found: the invariants of the cluster
that changed, and, when the state is quiescent, no orphan and nothing lost. Breadth first, the first
violation found is at the least depth there is, so its trace is a shortest counterexample. Pure: the
caller reads the clock.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Callable

import attrs

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
    installed,
    required_coverage,
)

State = tuple[int, ...]  # (faults used, idle workers, *sorted cluster numbers)
_TICK = -1  # the position of a tick in `_link`


@attrs.frozen
class Bounds:
    workers: int  # K concurrent invocations
    records: int  # M records
    faults: int  # F faults injected, at most, per run


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

    @property
    def ok(self) -> bool:
        return self.complete and not self.violations and not self.missing


def explore(model: Model, bounds: Bounds, on_level: Callable[[int, int], None] | None = None) -> Report:
    """Explores `model` within `bounds` to closure, or to its first violation."""
    with installed(model):
        return Search(Space(model), bounds, on_level).run()


class Search:
    """One breadth-first search; `run` it (with the model installed) and read the outcome."""

    def __init__(self, space: Space, bounds: Bounds, on_level: Callable[[int, int], None] | None) -> None:
        self.space = space
        self.bounds = bounds
        self.on_level = on_level
        self.initial: State = (0, bounds.workers) + (space.absent,) * bounds.records
        self.parents: dict[State, State | None] = {self.initial: None}  # each state found, and whence
        self.stalled = False  # a tick stalled an invocation at least once

    def run(self) -> Report:
        """Breadth first, level by level. The loop is the explorer's hot path: it only looks numbers
        up; everything about a cluster is computed once, by `Space.summary`."""
        space, workers, faults, records = (
            self.space,
            self.bounds.workers,
            self.bounds.faults,
            self.bounds.records,
        )
        parents, summaries, summary_of, visits = self.parents, space.summaries, space.summary, space.visits
        problems, settled, quiet_problems = space.problems, space.settled, space.quiescent_problems
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
                seen_with = 1 << (budget * width + idle)
                previous = -1
                for position in range(records):
                    number = clusters[position]
                    if number == previous:
                        continue  # an identical record: the same successors
                    previous = number
                    visits[number] |= seen_with
                    rest = clusters[:position] + clusters[position + 1 :]
                    for cost, invocations, target in (summaries[number] or summary_of(number))[0]:
                        if cost > budget:
                            break  # cheapest first
                        if invocations > idle:
                            continue
                        transitions += 1
                        at = bisect_left(rest, target)
                        successor = (spent + cost, idle - invocations, *rest[:at], target, *rest[at:])
                        size = len(parents)
                        parents.setdefault(successor, state)
                        if len(parents) == size:
                            continue
                        found.append(successor)
                        if problems[target] or (
                            idle - invocations == workers
                            and all(settled[c] for c in successor[2:])
                            and any(quiet_problems[c] for c in successor[2:])
                        ):
                            violation = successor
                            break
                    if violation is not None:
                        break
                if violation is not None:
                    break
                later: list[int] = []
                stalls = 0
                for number in clusters:
                    _, after_tick, stalled = summaries[number] or summary_of(number)
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
                size = len(parents)
                parents.setdefault(successor, state)
                if len(parents) == size:
                    continue
                found.append(successor)
                if any(problems[c] for c in later) or (
                    idle == workers
                    and all(settled[c] for c in later)
                    and any(quiet_problems[c] for c in later)
                ):
                    violation = successor
                    break
            if found:
                depth += 1
            frontier = found
            if self.on_level is not None:
                self.on_level(depth, len(parents))
        return self._outcome(violation, transitions, depth)

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
        if state[1] == self.bounds.workers and all(space.settled[c] for c in clusters):
            problems += [
                f"at quiescence: {_named(problem, label)}"
                for label, number in zip(labels, clusters, strict=True)
                for problem in space.quiescent_problems[number]
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
            for move in self.space.moves(number):
                if any(move.cost <= budget and move.invocations <= idle for budget, idle in met):
                    reached |= move.coverage
        return reached

    def _outcome(self, violation: State | None, transitions: int, depth: int) -> Report:
        reached = self._reached()
        missing = [label for label in required_coverage() if label not in reached]
        trace: list[str] = []
        final: list[str] = []
        problems: list[str] = []
        if violation is not None:
            trace, labels = self._trace(violation)
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

    def _link(self, parent: State, child: State) -> tuple[int, Move | None]:
        """How the search went from `parent` to `child`: (position of the cluster, its move), or
        (_TICK, None) for a tick."""
        spent, idle, clusters = parent[0], parent[1], parent[2:]
        for position, number in enumerate(clusters):
            rest = sorted(clusters[:position] + clusters[position + 1 :])
            for move in self.space.moves(number):
                if move.cost > self.bounds.faults - spent or move.invocations > idle:
                    continue
                if child == (spent + move.cost, idle - move.invocations, *sorted([*rest, move.target])):
                    return position, move
        return _TICK, None

    def _trace(self, violation: State) -> tuple[list[str], list[str]]:
        """The numbered steps to `violation`, naming records r1.. as they were first met; and the
        record names in the order of `violation`'s clusters."""
        labels = _labels(self.bounds.records)
        lines = []
        path = self._path(violation)
        for step, (parent, child) in enumerate(itertools.pairwise(path), start=1):
            clusters = list(parent[2:])
            position, move = self._link(parent, child)
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
            case Action.RECONCILE:
                assert move.after is not None
                return (
                    f"the reconciler reads the record and starts the {describe_flow(move.after, move.name)}"
                )
        flow, after = move.flow, move.after
        if flow is None or after is None:
            return f"{move.action.value} makes the model raise{fault}"
        who = describe_flow(flow, move.name)
        if move.action is Action.SUBMIT:
            who = f"a client sends its request ({who})"
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
