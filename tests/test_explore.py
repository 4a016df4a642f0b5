"""`sendguard explore`: the exhaustive search of the pure model, at a small bound, and its mutants.

The full bound (K=3, M=3, F=3) is `make check-model`; here K=2, M=2, F=2 must come out complete, clean
and fully covered, and every mutant must be caught with a short counterexample.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.cli import explore
from statemodel import attention, decider, flows, table
from statemodel.attention import is_due
from statemodel.checker import world
from statemodel.checker.mutants import MUTANTS
from statemodel.checker.search import Bounds, Search
from statemodel.checker.search import explore as search
from statemodel.checker.space import (
    INVOCATION_TICKS,
    MESSAGE,
    NOW,
    TICK_SETTINGS,
    Model,
    Space,
    installed,
    required_coverage,
)
from statemodel.checker.world import SEND_FAULTS, WRITE_FAULTS, Fault, World
from statemodel.events import Claimed
from statemodel.flows import Flow, Send, advance, lease_expiry, reconcile_start, start_submit
from statemodel.stored import Stored
from statemodel.validation import Request, message_id_for_key, new_message

SMALL = ["--workers", "2", "--records", "2", "--faults", "2"]
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
    assert report["bounds"] == {"workers": 1, "records": 1, "faults": 1}


def test_the_text_report_gives_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, *SMALL)
    assert code == 0
    assert re.search(
        r"explored to closure: [\d,]+ states, [\d,]+ transitions, max depth \d+, [\d.]+ s, ", out
    )
    assert "no violations" in out


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


@pytest.mark.parametrize("name", list(MUTANTS))
def test_each_mutant_is_caught_with_a_short_counterexample(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, report = run_json(capsys, *SMALL, "--mutant", name)
    assert code == 1
    assert report["complete"] is False and report["violations"]
    steps = report["counterexample"]
    assert isinstance(steps, list) and 1 <= len(steps) <= 12, steps
    numbers = [match.group(1) for step in steps if (match := STEP.match(step))]
    assert numbers == [str(n) for n in range(1, len(steps) + 1)]


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
    assert model.advance is flows.advance and model.start_submit is flows.start_submit
    assert model.reconcile_start is flows.reconcile_start and model.is_due is attention.is_due
    assert model.lease_expiry is flows.lease_expiry and model.write_condition is flows.condition_holds
    assert model.table is table.TRANSITIONS


def test_a_mutant_leaves_statemodel_as_it_was() -> None:
    for name in ("rollback-confirmed", "unfenced-rollback"):
        search(MUTANTS[name], Bounds(1, 1, 1))
    assert table.TRANSITIONS is vars(decider)["TRANSITIONS"]
    assert vars(world)["condition_holds"] is flows.condition_holds


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
    model = Model()
    with installed(model):
        explorer = Search(Space(model), bounds, None)
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
