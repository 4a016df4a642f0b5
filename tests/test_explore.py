"""`sendguard explore`: the exhaustive search of the pure model, at a small bound, and its mutants.

The full bound (K=3, M=3, F=3, each max_attempts) is `make check-model`; here K=2, M=2, F=2 must come
out complete, clean (safety and liveness) and fully covered, and every mutant must be caught with a
short counterexample by the check it is written for.
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.cli import explore
from statemodel import attention, decider, flows, table
from statemodel.attention import is_due
from statemodel.checker.liveness import components, fair_components, fair_cycle
from statemodel.checker.mutants import MUTANTS, caught_as_named
from statemodel.checker.search import Bounds, Kind, Report, Search
from statemodel.checker.search import explore as search
from statemodel.checker.space import (
    INVOCATION_TICKS,
    MESSAGE,
    NOW,
    TICK_SETTINGS,
    Model,
    Space,
    required_coverage,
)
from statemodel.checker.world import SEND_FAULTS, WRITE_FAULTS, Fault, World
from statemodel.events import Claimed
from statemodel.flows import Flow, Send, advance, lease_expiry, reconcile_start, start_submit
from statemodel.stored import Stored
from statemodel.validation import Request, message_id_for_key, new_message

SMALL = ["--workers", "2", "--records", "2", "--faults", "2"]
STATEMODEL = Path(__file__).resolve().parent.parent / "statemodel"
STEP = re.compile(r"^ {0,2}(\d+)\. ")
MESSAGE_REQUEST = Request(MESSAGE.payload, MESSAGE.attributes, MESSAGE.request_hash)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = explore.main(list(argv))
    return code, capsys.readouterr().out


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out = run(capsys, *argv, "--json")
    return code, json.loads(out)


def test_the_small_bound_is_explored_to_closure_clean_and_covered(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, *SMALL)
    assert code == 0, report
    assert report["complete"] is True
    assert report["violations"] == []
    coverage = report["coverage"]
    assert coverage["missing"] == [] and coverage["required"] == len(required_coverage())
    assert set(required_coverage()) <= set(coverage["reached"])
    assert report["states"] > 1_000 and report["transitions"] > report["states"]


def test_the_json_report_has_the_promised_shape(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = run_json(capsys, "--workers", "1", "--records", "1", "--faults", "1")
    assert {"complete", "states", "transitions", "max_depth", "seconds", "violations"} <= set(report)
    assert isinstance(report["states"], int) and isinstance(report["max_depth"], int)
    assert isinstance(report["seconds"], float) and isinstance(report["violations"], list)
    assert report["bounds"] == {"workers": 1, "records": 1, "faults": 1, "max_attempts": 2}


def test_the_text_report_gives_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, *SMALL)
    assert code == 0
    assert re.search(
        r"explored to closure: [\d,]+ states, [\d,]+ transitions, max depth \d+, [\d.]+ s, ", out
    )
    assert "safety: no violations" in out
    assert re.search(r"liveness: every fair continuation settles \([\d,]+ states on fault-free cycles", out)


def test_a_liveness_counterexample_shows_the_cycle(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, *SMALL, "--mutant", "stale-redrive-claim")
    assert code == 1
    assert "safety: no violations" in out and "LIVENESS VIOLATION (cycle)" in out
    loop = out[out.index("then, with no more faults, for ever") :]
    assert "the reconciler reads the record and starts the re-drive" in loop
    assert "write Claimed -> condition failed" in loop and "answers SUPERSEDED" in loop
    assert "r1 never settles: PENDING" in out


def test_a_liveness_dead_end_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, *SMALL, "--mutant", "expired-never-redriven")
    assert code == 1
    assert "LIVENESS VIOLATION (dead end)" in out and "(a dead end)" in out
    assert "expiry of a1: write RolledBack -> written; answers EXPIRED" in out
    assert "r1 never settles: PENDING v3, 1 of 2 attempts used" in out


def test_missing_coverage_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Without faults nothing fails, so most rows and every fault kind go unreached: exit 1."""
    code, report = run_json(capsys, "--workers", "1", "--records", "1", "--faults", "0")
    assert code == 1
    assert report["complete"] is True and report["violations"] == []
    missing = report["coverage"]["missing"]
    assert "SEND_RETRYABLE" in missing and "row IN_FLIGHT ExpireLease -> PENDING" in missing


def test_at_least_eight_mutants_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--list-mutants")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == list(MUTANTS) and len(names) >= 8


SAFETY_MUTANTS = [name for name, mutant in MUTANTS.items() if mutant.caught_by == "safety"]
LIVENESS_MUTANTS = [name for name, mutant in MUTANTS.items() if mutant.caught_by == "liveness"]


def numbered(steps: list[str], first: int = 1) -> bool:
    numbers = [match.group(1) for step in steps if (match := STEP.match(step))]
    return numbers == [str(n) for n in range(first, first + len(steps))]


@pytest.mark.parametrize("name", SAFETY_MUTANTS)
def test_each_safety_mutant_is_caught_with_a_short_counterexample(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, report = run_json(capsys, *SMALL, "--mutant", name)
    assert code == 1
    assert report["mutant"] == {"caught_with": MUTANTS[name].caught_with, "as_named": True}
    assert report["complete"] is False and report["violations"]
    assert report["liveness"]["checked"] is False
    steps = report["counterexample"]
    assert isinstance(steps, list) and 1 <= len(steps) <= 12, steps
    assert numbered(steps)


def test_a_mutant_caught_by_another_violation_is_not_counted_caught() -> None:
    """Each mutant names the violation its bug makes; one found only by another check (here: the
    unfenced rollback's own violation, asked of a mutant that names another) is not caught."""
    outcome = search(MUTANTS["key-ignored"], Bounds(2, 2, 2))
    assert caught_as_named(MUTANTS["key-ignored"], outcome.violations)
    mislabelled = attrs.evolve(MUTANTS["key-ignored"], caught_with=MUTANTS["unfenced-rollback"].caught_with)
    assert not caught_as_named(mislabelled, outcome.violations)
    assert not caught_as_named(attrs.evolve(MUTANTS["key-ignored"], caught_with=""), outcome.violations)
    for name, mutant in MUTANTS.items():
        assert mutant.caught_with, f"{name} names no violation"


def test_at_least_four_mutants_need_the_liveness_check() -> None:
    new = [name for name in LIVENESS_MUTANTS if name != "in-flight-replay-accepted"]
    assert len(new) >= 4


@pytest.mark.parametrize("name", LIVENESS_MUTANTS)
def test_each_liveness_mutant_passes_safety_and_fails_liveness(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Safety alone (every reachable state checked by the invariants) finds nothing; liveness finds a
    record that never settles, or settles with a broken promise, with a path and its cycle or dead end."""
    code, report = run_json(capsys, *SMALL, "--mutant", name)
    assert code == 1
    assert report["mutant"] == {"caught_with": MUTANTS[name].caught_with, "as_named": True}
    assert report["complete"] is True and report["violations"] == [] and report["counterexample"] == []
    live = report["liveness"]
    assert live["checked"] is True and live["ok"] is False and live["violations"]
    path, loop = live["path"], live["loop"]
    assert 1 <= len(path) <= 12 and numbered(path), path
    assert live["kind"] in {kind.value for kind in Kind}
    if live["kind"] == Kind.CYCLE.value:
        assert loop and numbered(loop, first=len(path) + 1), loop
    else:
        assert loop == []
    assert live["final_state"]


def test_a_counterexample_reads_as_a_numbered_story(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, *SMALL, "--mutant", "unconditional-confirm")
    assert code == 1
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("VIOLATION after"))
    steps = [line for line in lines[start + 1 :] if STEP.match(line)]
    assert len(steps) == int(lines[start].split()[2])
    story = "\n".join(steps)
    # Who did what to which record, the fault injected, and what the record became.
    assert "r1: a client sends its request (submit a1): write Accepted+Claimed -> written" in story
    assert "[fault: lease expiry x1]" in story
    assert "expiry of a1: write RolledBack -> written; answers EXPIRED" in story
    assert "submit a1: write SendConfirmed -> written" in story
    assert "- r1: illegal history: SendConfirmed is not allowed for r1 in phase PENDING" in out
    assert "history: Accepted, Claimed(a1), RolledBack(a1), SendConfirmed(a1)" in out


def test_the_shortest_counterexample_is_found() -> None:
    """Breadth first: a second create that ignores the key's record is wrong at once, in two steps."""
    outcome = search(MUTANTS["key-ignored"], Bounds(2, 2, 2))
    assert len(outcome.counterexample) == 2
    assert outcome.violations == ["r1: illegal history: Accepted is not allowed for r1 in phase IN_FLIGHT"]


def test_the_explorer_runs_statemodel_itself() -> None:
    """The model the explorer runs by default is statemodel's own functions and table, no copy."""
    model = Model()
    assert model.flows is flows.FLOWS and model.flows.table is table.TRANSITIONS
    assert model.is_due is attention.is_due
    assert model.lease_expiry is flows.lease_expiry and model.write_condition is flows.condition_holds


def test_a_mutant_leaves_statemodel_as_it_was() -> None:
    """A mutant enters through parameters (the `Flows` every flow is started and advanced by, the
    condition the world is built with): after running some, statemodel's own table and world are as
    written."""
    rows = table.TRANSITIONS
    for name in ("rollback-confirmed", "unfenced-rollback", "lease-ignored"):
        search(MUTANTS[name], Bounds(1, 1, 1))
    assert table.TRANSITIONS is rows and vars(decider)["TRANSITIONS"] is rows
    assert World().condition is flows.condition_holds
    assert all(row.command.__name__ != "ExpireLease" or row.guard for row in table.TRANSITIONS)


def test_statemodel_patches_no_module_global() -> None:
    """Nothing under statemodel/ rebinds another module's names (no setattr, no global, no
    assignment to an attribute of an imported module)."""
    found = []
    for path in sorted(STATEMODEL.rglob("*.py")):
        tree = ast.parse(path.read_text())
        modules = {
            alias.asname or alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                found.append(f"{path.name}:{node.lineno}: global")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                found.append(f"{path.name}:{node.lineno}: setattr")
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
                    continue
                if target.value.id in modules:
                    found.append(
                        f"{path.name}:{getattr(node, 'lineno', 0)}: assigns {target.value.id}.{target.attr}"
                    )
    assert found == []


def test_the_max_attempts_bound_is_explored(capsys: pytest.CaptureFixture[str]) -> None:
    """A=1: the first failure exhausts the record at its next re-drive; the re-drive claim still happens,
    to a record the transactional outbox prepared (no attempt used yet). A=3 needs three faults to
    exhaust by attempts."""
    code, report = run_json(capsys, *SMALL, "--max-attempts", "1")
    assert code == 0, report["coverage"]["missing"]
    assert report["bounds"]["max_attempts"] == 1 and report["liveness"]["ok"] is True
    assert "row PENDING Redrive -> IN_FLIGHT" in report["coverage"]["reached"]
    assert "row PENDING Redrive -> EXHAUSTED" in report["coverage"]["reached"]
    _, report = run_json(capsys, "-K", "1", "-M", "1", "-F", "3", "-A", "3")
    assert report["complete"] is True and report["violations"] == [] and report["liveness"]["ok"] is True
    assert "row PENDING Redrive -> EXHAUSTED" in report["coverage"]["reached"]
    _, fewer = run_json(capsys, "-K", "1", "-M", "1", "-F", "2", "-A", "3")
    assert (
        "row PENDING Redrive -> EXHAUSTED" in fewer["coverage"]["missing"]
    )  # three failed claims need three faults
    with pytest.raises(SystemExit):
        explore.parser().parse_args(["--max-attempts", "4"])


def test_fair_components_refine_by_fairness() -> None:
    """Strong fairness, as the liveness check applies it to the explored graph."""
    # 0 <-> 1 by the reconciler and a step; 1 -> 2 by time. A run may go round 0-1 for ever only
    # if time never passes, which fairness forbids; 2 is a dead end (nothing enabled).
    edges = {0: [(1, "reconcile")], 1: [(0, "step"), (2, "tick")], 2: []}
    enabled = {0: frozenset({"reconcile"}), 1: frozenset({"step", "tick"}), 2: frozenset()}
    assert sorted(map(sorted, components({0, 1, 2}, lambda n: [t for t, _ in edges[n]]))) == [[0, 1], [2]]
    assert fair_components({0, 1, 2}, edges, enabled) == [[2]]
    # Time passing at 0 changes nothing (a self-loop): now the cycle is fair, and its walk takes it.
    edges[0].append((0, "tick"))
    enabled[0] = frozenset({"reconcile", "tick"})
    del edges[1][1]
    enabled[1] = frozenset({"step"})
    assert sorted(fair_components({0, 1}, edges, enabled)) == [[0, 1]]
    walk = fair_cycle(0, {0, 1}, edges, enabled)
    assert walk[-1][0] == 0 and {label for _, label in walk} == {"reconcile", "step", "tick"}
    # A client's request (label None) is owed no fairness: it keeps nobody in or out.
    edges2: dict[int, list[tuple[int, str | None]]] = {0: [(1, None)], 1: [(0, "step")]}
    assert fair_components({0, 1}, edges2, {1: frozenset({"step"})}) == [[0, 1]]


# ---- the abstraction against concrete runs --------------------------------------------------------


Signature = tuple[object, ...]


def signature(stored: Stored, landed: int, running: list[Flow], now: int) -> Signature:
    """What a record's situation is, in terms both worlds share: its history (attempts named in the
    order they claimed), the sends SQS accepted, whether its lease is live, and its invocations."""
    names: dict[str, str] = {}
    for event in stored.history:
        if isinstance(event, Claimed):
            names.setdefault(event.attempt_id, f"a{len(names) + 1}")
    history = tuple(
        (type(e).__name__, names.get(getattr(e, "attempt_id", None) or "")) for e in stored.history
    )
    lease = stored.record.lease_expires_at
    flows_ = sorted(
        (f.kind.value, f.stage.value, f.lease_expires_at is not None and f.send_deadline < now)
        for f in running
    )
    return (history, landed, lease is not None and lease > now, tuple(flows_))


def explored_signatures(bounds: Bounds) -> set[Signature]:
    explorer = Search(Space(Model(), bounds.max_attempts), bounds, None)
    assert explorer.run().ok
    clusters = [explorer.space.clusters[n] for n in explorer.reachable_clusters()]
    return {signature(c.stored, c.landed, list(c.flows), NOW) for c in clusters if c.stored}


def concrete_run(rng: random.Random, bounds: Bounds, steps: int) -> Iterator[Signature]:
    """Random steps of statemodel's flows against one real `World` of M records, with absolute times,
    unique attempt ids, real error codes and a queue nobody reads; the same bounds and fault accounting
    as the explorer. Yields every record's signature after every step."""
    settings = TICK_SETTINGS
    world, now, spent = World(), 1_000, 0
    messages = [
        new_message(MESSAGE_REQUEST, message_id_for_key(f"key-{r}"), f"corr-{r}", now, f"key-{r}")
        for r in range(bounds.records)
    ]
    running: list[tuple[int, Flow]] = []

    def perform(index: int, fault: Fault | None) -> None:
        record, flow = running[index]
        after = advance(flow, world.perform(flow.effect, now, fault), now)
        running[index : index + 1] = [] if after.done else [(record, after)]

    for serial in range(steps):
        idle = bounds.workers - len(running)
        lease = lease_expiry(now, INVOCATION_TICKS, settings)
        options: list[tuple[str, int, Fault | None]] = []
        for r, message in enumerate(messages):
            stored = world.items.get(message.message_id)
            if idle:
                options.append(("submit", r, None))
            due = idle and stored and is_due(stored.record, now, settings)
            if due and stored and reconcile_start(stored.record, now, settings, "probe", lease):
                options.append(("reconcile", r, None))
        for i, (_, flow) in enumerate(running):
            options.append(("step", i, None))
            if spent < bounds.faults:
                faults = SEND_FAULTS if isinstance(flow.effect, Send) else WRITE_FAULTS
                options += [("step", i, fault) for fault in faults] + [("crash", i, None)]
        stalls = sum(1 for _, f in running if f.lease_expires_at is not None and f.send_deadline == now)
        if spent + stalls <= bounds.faults:
            options.append(("tick", 0, None))
        action, n, fault = rng.choice(options)
        if action == "submit":
            running.append((n, start_submit(messages[n], f"w-{serial}", lease, now, settings)))
            perform(len(running) - 1, fault)
        elif action == "reconcile":
            stored = world.items[messages[n].message_id]
            started = reconcile_start(stored.record, now, settings, f"r-{serial}", lease)
            assert started is not None
            running.append((n, started))
        elif action == "step":
            spent += fault is not None
            perform(n, fault)
        elif action == "crash":
            spent += 1
            running.pop(n)
        else:
            spent += stalls
            now += 1
        for r, message in enumerate(messages):
            stored = world.items.get(message.message_id)
            if stored:
                landed = len(world.landed.get(message.message_id, []))
                yield signature(stored, landed, [f for record, f in running if record == r], now)


def test_every_record_state_of_a_concrete_run_was_explored() -> None:
    """The explorer's reductions (canonical names, time relative to now, forgotten unread data, the
    consumer taken at once, symmetry) lose nothing a concrete run can do, within the same bounds."""
    bounds = Bounds(2, 2, 2)
    explored = explored_signatures(bounds)
    rng = random.Random(20_240_601)
    met: set[Signature] = set()
    for _ in range(400):
        for found in concrete_run(rng, bounds, steps=30):
            assert found in explored, found
            met.add(found)
    assert len(met) > 150  # of the 720 explored: random runs rarely go deep, but far enough to mean something


# ---- the reduction across records -----------------------------------------------------------------


def verdict(report: Report) -> tuple[object, ...]:
    """What a search concluded, apart from how many states it took: safety (with the counterexample's
    length), coverage, and liveness (how it fails, what never settles, and the path's length)."""
    live = report.liveness
    return (
        report.complete,
        report.violations,
        len(report.counterexample),
        report.reached,
        report.missing,
        live.checked,
        live.kind,
        live.violations,
        len(live.path),
        live.cyclic_states,
    )


@pytest.mark.parametrize("name", ["statemodel", *MUTANTS])
def test_the_reduction_keeps_every_verdict_in_fewer_states(name: str) -> None:
    """With and without the reduction across records, the model and each mutant get the same verdict
    (the same violations, counterexamples as short, the same coverage, the same liveness finding) at
    two bounds; where it applies (no cluster on a fault-free cycle), in fewer states."""
    model = MUTANTS.get(name, Model())
    for bounds in (Bounds(2, 2, 2), Bounds(2, 3, 2, 1)):
        reduced = search(model, bounds)
        unreduced = search(model, bounds, reduce=False)
        assert verdict(reduced) == verdict(unreduced), (name, bounds)
        assert not unreduced.reduced
        if reduced.reduced:
            assert reduced.states < unreduced.states, (name, bounds)
        else:  # a cluster on a fault-free cycle: the whole graph, for liveness
            assert reduced.liveness.cyclic_states > 0 and reduced.states == unreduced.states
    if name == "statemodel":
        assert reduced.reduced and reduced.ok


def test_the_reduction_meets_every_cluster_the_full_search_meets() -> None:
    """The argument for the reduction: every record's situation (cluster) the unreduced search meets,
    the reduced one meets too, each time with at least as large a budget and as many idle workers."""
    bounds = Bounds(2, 3, 2)
    width = bounds.workers + 1
    met: list[dict[Any, list[tuple[int, int]]]] = []
    for reduce in (True, False):
        explorer = Search(Space(Model(), bounds.max_attempts), bounds, None, reduce)
        assert explorer.run().ok
        met.append(
            {
                explorer.space.clusters[n]: [
                    divmod(bit, width) for bit in range(seen.bit_length()) if seen >> bit & 1
                ]
                for n, seen in enumerate(explorer.space.visits)
                if seen
            }
        )
    reduced, full = met
    assert reduced.keys() == full.keys()
    for cluster, pairs in full.items():
        for budget, idle in pairs:
            assert any(b >= budget and i >= idle for b, i in reduced[cluster]), cluster
    assert sum(map(len, reduced.values())) < sum(map(len, full.values()))


def test_the_fault_free_moves_are_the_moves_that_cost_nothing() -> None:
    """Once the budget is spent the search reads a cluster's fault-free moves, computed apart (most
    clusters are met only then): they are exactly its moves of cost 0, in the same order."""
    bounds = Bounds(2, 2, 2)
    explorer = Search(Space(Model(), bounds.max_attempts), bounds, None)
    assert explorer.run().ok
    space = explorer.space
    apart = [n for n in explorer.reachable_clusters() if n in space._free_moves and n not in space._moves]
    assert len(apart) > 100
    for number in apart:
        assert space.moves(number, faults=False) == [m for m in space._find_moves(number, True) if not m.cost]


def test_unreduced_turns_the_reduction_off(capsys: pytest.CaptureFixture[str]) -> None:
    """`--unreduced` explores every interleaving across records: the same verdict in more states; the
    inbox's explorer has no such reduction, and says so in one line."""
    _, reduced = run_json(capsys, *SMALL)
    code, unreduced = run_json(capsys, *SMALL, "--unreduced")
    assert code == 0 and reduced["reduced"] is True and unreduced["reduced"] is False
    assert unreduced["states"] > reduced["states"] and unreduced["coverage"] == reduced["coverage"]
    _, out = run(capsys, *SMALL)
    assert out.splitlines()[0].endswith(", reduced across records")
    with pytest.raises(SystemExit):
        explore.main(["--inbox", "guarded", "--unreduced"])
    assert "--unreduced applies to the outbox's explorer" in capsys.readouterr().err
