"""Random fault sequences against the pure model: several concurrent submitters, the reconciler and a
consumer interleave their steps over the in-memory world while faults are drawn per step. Each step is
`statemodel.interpreter.step` on the world's ports: the loop the Lambda, the library and the
reconciler run.

After every step: allowed transitions only, history replays to projection, metadata intact, no send
after a confirmed one. At quiescence (faults off, every lease expired, the reconciler settled): no
orphan and nothing lost. Across the whole run every fault kind and every table row must have happened,
or the test fails: a suite that never injects a fault proves nothing.
"""

from __future__ import annotations

import collections
import json

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.testing import profiles
from statemodel import interpreter
from statemodel.checker.world import (
    SEND_FAULTS,
    WRITE_FAULTS,
    Fault,
    World,
    WorldDue,
    WorldPorts,
    WorldQueue,
    WorldStore,
)
from statemodel.flows import (
    Answer,
    Flow,
    Outcome,
    Result,
    Send,
    Settings,
    Write,
    lease_expiry,
    reconcile_start,
    start_outbox,
    start_rearm,
    start_submit,
)
from statemodel.invariants import (
    duplicate_problems,
    history_problems,
    lost,
    metadata_problems,
    orphans,
)
from statemodel.records import Message, Phase, Record
from statemodel.table import TRANSITIONS, row_writing
from statemodel.validation import message_id_for_key, message_problems, new_message, parse_submission

SETTINGS = Settings(max_attempts=2, redrive_after_ms=60_000, lease_margin_ms=30_000)
INVOCATION_MS = 20_000  # the remaining time each invocation reports
# `ci`: 200 examples of 50 steps, derandomized (its coverage check cannot fail by chance).
PROFILES = profiles.for_size(200, 50)
PAYLOADS = [{"order": n, "note": "é\u2028✓"} for n in range(3)] + [None, [1, [2, [3]]], "x" * 50]

# Filled across every example of a run: what happened at least once.
COVERAGE: collections.Counter[str] = collections.Counter()


def row_of(write: Write) -> str:
    source = write.before.phase if write.before else Phase.ABSENT
    row = row_writing(source, tuple(type(e) for e in write.events))
    assert row is not None, f"a write that matches no row: {write}"
    return f"row {row.label}"


class PureModelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.now = 1_000_000
        self.flows: list[Flow] = []
        self.serial = 0
        self.requests: list[tuple[str | None, str]] = []  # (Idempotency-Key, body) sent so far
        self.submitted: dict[str, list[Message]] = collections.defaultdict(list)
        self.accepted: set[str] = set()

    # ---- actors ----------------------------------------------------------------------------------

    def _start(self, key: str | None, body: str, outbox: bool = False) -> None:
        request = parse_submission(body)
        assert not hasattr(request, "code"), request
        self.serial += 1
        message_id = message_id_for_key(key) if key else f"m-{self.serial}"
        message = new_message(request, message_id, f"corr-{self.serial}", self.now, key)
        self.submitted[message_id].append(message)
        lease = lease_expiry(self.now, INVOCATION_MS, SETTINGS)
        start = start_outbox if outbox else start_submit  # the transactional outbox: Prepare, then dispatch
        self.flows.append(start(message, f"a-{self.serial}", lease, self.now, SETTINGS))
        self.requests.append((key, body))

    @rule(payload=st.sampled_from(PAYLOADS), keyed=st.booleans(), group=st.booleans())
    def submit(self, payload: object, keyed: bool, group: bool) -> None:
        document = {"payload": payload, "attributes": {"group": "g1"} if group else {}}
        self._start(f"key-{self.serial}" if keyed else None, json.dumps(document))

    @rule(payload=st.sampled_from(PAYLOADS))
    def pending_put_then_dispatch(self, payload: object) -> None:
        self._start(f"key-{self.serial}", json.dumps({"payload": payload}), outbox=True)

    @precondition(lambda self: any(key for key, _ in self.requests))
    @rule(data=st.data(), conflicting=st.booleans())
    def replay(self, data: st.DataObject, conflicting: bool) -> None:
        key, body = data.draw(st.sampled_from([r for r in self.requests if r[0]]))
        if conflicting:
            body = json.dumps({"payload": "something else"})
        self._start(key, body)

    @precondition(lambda self: self.flows)
    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        self._step(data.draw(st.integers(0, len(self.flows) - 1)), None)

    def _waiting_on(self, effect_type: type) -> list[int]:
        return [i for i, flow in enumerate(self.flows) if isinstance(flow.effect, effect_type)]

    @precondition(lambda self: self._waiting_on(Send))
    @rule(data=st.data(), fault=st.sampled_from(SEND_FAULTS))
    def fail_send(self, data: st.DataObject, fault: Fault) -> None:
        self._step(data.draw(st.sampled_from(self._waiting_on(Send))), fault)

    @precondition(lambda self: self._waiting_on(Write))
    @rule(data=st.data(), fault=st.sampled_from(WRITE_FAULTS))
    def fail_write(self, data: st.DataObject, fault: Fault) -> None:
        self._step(data.draw(st.sampled_from(self._waiting_on(Write))), fault)

    @precondition(lambda self: self.flows)
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """The Lambda is killed between two steps: nothing of it runs any more."""
        flow = self.flows.pop(data.draw(st.integers(0, len(self.flows) - 1)))
        COVERAGE[f"crash before {flow.stage.value}"] += 1

    @rule()
    def reconcile(self) -> None:
        """One reconciler pass, reading the due records through the world's `DueIndex` as the
        reconciler reads the table's: its flows join the others and interleave with them."""
        for page in WorldDue(self.world).due(self.now, SETTINGS):
            for record in page.records:
                self.serial += 1
                lease = lease_expiry(self.now, INVOCATION_MS, SETTINGS)
                flow = reconcile_start(record, self.now, SETTINGS, f"r-{self.serial}", lease)
                if flow is not None:
                    self.flows.append(flow)

    def _exhausted(self) -> list[Record]:
        return [s.record for s in self.world.items.values() if s.record.phase is Phase.EXHAUSTED]

    @precondition(lambda self: self._exhausted())
    @rule(data=st.data())
    def rearm(self, data: st.DataObject) -> None:
        """An operator re-arms an exhausted record as read now; the write interleaves with the other
        flows, so it may find the record changed by then (another re-arm) and be superseded."""
        record = data.draw(st.sampled_from(self._exhausted()))
        self.flows.append(start_rearm(record, "operator", "the queue policy is fixed", self.now))

    @precondition(lambda self: self.world.queue)
    @rule(data=st.data())
    def consume(self, data: st.DataObject) -> None:
        self.world.consume(data.draw(st.integers(0, len(self.world.queue) - 1)))

    @rule(ms=st.sampled_from([1_000, 5_000, 15_000, 45_000, 70_000]))
    def tick(self, ms: int) -> None:
        """Time passes; a flow still running after its lease has stalled past it."""
        self.now += ms

    # ---- bookkeeping -----------------------------------------------------------------------------

    def _step(self, index: int, fault: Fault | None) -> None:
        """One step of the flow, by `statemodel.interpreter.step` (the loop the adapters run) on the
        world's ports, its effect meeting `fault`."""
        flow = self.flows[index]
        effect = flow.effect
        assert not isinstance(effect, Answer)
        if isinstance(effect, Send) and self.now > effect.deadline:
            COVERAGE["send refused past its deadline"] += 1
        elif fault is not None:
            COVERAGE[fault.name] += 1
        if flow.lease_expires_at is not None and self.now >= flow.lease_expires_at:
            COVERAGE["stall past the lease"] += 1
        ports = WorldPorts(WorldStore(self.world, fault), WorldQueue(self.world, self.clock, fault))
        _, flow = interpreter.step(flow, ports, None, self.clock, observer=self)
        if flow.done:
            self.flows.pop(index)
            self._answered(flow.answer)
        else:
            self.flows[index] = flow

    def clock(self) -> int:
        """The machine's time: it moves only by the `tick` rule and as the teardown settles."""
        return self.now

    def stepped(self, before: Flow, outcome: Outcome, report: None, after: Flow) -> None:
        """What the interpreter tells of each step (its `Observer`): the table row a write landed."""
        effect = before.effect
        if isinstance(effect, Write) and self.world.record(effect.message_id) == effect.after:
            COVERAGE[row_of(effect)] += 1
        note(f"{after.kind.value} {after.stage.value} after {type(effect).__name__}: {outcome}")

    def _answered(self, answer: Answer) -> None:
        COVERAGE[f"result {answer.result.value}"] += 1
        if answer.accepted:
            self.accepted.add(answer.message_id)

    # ---- invariants ------------------------------------------------------------------------------

    @invariant()
    def every_record_is_consistent(self) -> None:
        for message_id, stored in self.world.items.items():
            record, history = stored.record, stored.history
            problems = history_problems(record, history)
            problems += metadata_problems(record, history)
            problems += message_problems(record.message)
            problems += duplicate_problems(record, history, self.world.landed.get(message_id, []))
            if record.message not in self.submitted[message_id]:
                problems.append(f"{message_id}: the stored message is not one that was submitted")
            assert not problems, problems

    @invariant()
    def queue_holds_payloads_intact(self) -> None:
        for queued in self.world.queue:
            record = self.world.record(queued.message_id)
            assert record is not None and queued.body == record.message.payload

    def teardown(self) -> None:
        """Quiescence: faults off, live invocations finish, every lease expires, the reconciler
        settles. Then nothing may be orphaned or lost. Then an operator re-arms every record left
        exhausted, and once the reconciler settles again each of them is delivered."""
        self._settle()
        self._quiescent()
        exhausted = self._exhausted()
        for record in exhausted:
            self.flows.append(start_rearm(record, "operator", "the cause is fixed", self.now))
        if exhausted:
            self._settle()
            self._quiescent()
            delivered = self.world.delivered()
            assert all(r.message_id in delivered for r in exhausted), "a re-armed record was not delivered"
            COVERAGE["re-armed and delivered"] += 1

    def _settle(self) -> None:
        while self.flows:
            self._step(0, None)
        for _ in range(3 * SETTINGS.max_attempts + 2):
            self.now += SETTINGS.lease_margin_ms + INVOCATION_MS + SETTINGS.redrive_after_ms
            self.reconcile()
            if not self.flows:
                break
            while self.flows:
                self._step(0, None)
        assert not self.flows, "the reconciler did not settle"

    def _quiescent(self) -> None:
        records = {m: s.record for m, s in self.world.items.items()}
        delivered = self.world.delivered()
        problems = orphans(records.values(), delivered, self.now)
        problems += lost(records, self.accepted, delivered)
        self.every_record_is_consistent()
        assert not problems, problems
        COVERAGE["quiescent"] += 1


def test_pure_model_under_random_faults() -> None:
    COVERAGE.clear()
    run_state_machine_as_test(PureModelMachine, settings=PROFILES[profiles.selected()])
    expected = {fault.name for fault in Fault} | {"stall past the lease", "send refused past its deadline"}
    expected |= {"re-armed and delivered"}
    expected |= {f"row {row.label}" for row in TRANSITIONS}
    expected |= {f"result {r.value}" for r in Result}
    missing = sorted(expected - set(COVERAGE))
    assert not missing, f"never happened in this run: {missing}"
