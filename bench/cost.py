"""Section 1: what one message costs — AWS requests and DynamoDB write units — on the happy path and
under each fault kind, for sendguard, the plain flow and the plain flow under Powertools' idempotency.

Each scenario gets fresh clients (a fresh SDK retry quota), then one submission per flow with the same
request, on in-process moto, with `adapters.testing.FaultInjector` arming one fault for that one
invocation. `bench.meter` counts the invocation's API calls and attempts and computes its write
units (the index's at its entries' size, by the key schema and projection that describe_table reports
for sendguard's table, recorded beside the rows). sendguard's reconciler then runs on a shifted clock
until it has nothing left to do (its own container: its own clients, kept across scenarios), metered
apart: the work it does for the message is part of the message's cost. Every scenario leaves nothing
for the reconciler to do, so the tables and queues are shared. The baselines have no reconciler: what
the invocation left is their end state.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import boto3

from adapters.runtime.bodies import S3Bodies
from adapters.runtime.clients import now_ms
from adapters.runtime.codec import ITEM_PREFIX, body_at, is_record, named_body_key
from adapters.runtime.config import Config
from adapters.runtime.layout import TableLayout
from adapters.runtime.reconciler import reconcile_pass
from adapters.runtime.runner import Aws
from adapters.runtime.store import DynamoStore
from adapters.testing.injector import Crashed, Fault, FaultInjector, Plan
from bench import capacity
from bench.flows import (
    INVOCATION_MS,
    NAMES,
    POWERTOOLS,
    SENDGUARD,
    Flow,
    body,
    context,
    flows,
    post_event,
    sendguard_env,
    sendguard_message_id,
)
from bench.meter import Meter, Tally
from bench.moto_env import Resources, environment, in_process_aws, provision
from statemodel.keys import Key
from statemodel.records import Phase
from statemodel.stored import Stored

STALLS = (Fault.STALL_PAST_LEASE, Fault.DELAYED_ON_THE_WIRE)
WORK = ("expired", "redriven", "exhausted", "superseded", "failed")
MAX_PASSES = 8
DEFAULT_LAYOUT = TableLayout()
SMALL = 0  # payload padding of the first happy path: the demo's small order, a 90-byte request
# The larger payloads: around the record's inline threshold (issue 26), and issue 15's write-unit goal;
# 900 KB goes to the body bucket (past DynamoDB's 400 KB item).
SIZES = (512, 2_000, 64_000, 256_000, 900_000)


@attrs.frozen
class Scenario:
    label: str
    fault: Fault | None = None
    skip: int = 0  # the fault fires on the (skip+1)-th UpdateItem or SendMessage it can hit
    payload_bytes: int = SMALL
    replay: bool = False  # the measured request replays one already accepted (same Idempotency-Key)

    @property
    def plan(self) -> Plan | None:
        return Plan(self.fault, self.skip) if self.fault else None


def scenarios(quick: bool = False) -> list[Scenario]:
    out = [
        Scenario("happy path"),
        *(Scenario(f"happy path, {_size(size)} payload", payload_bytes=size) for size in SIZES),
        Scenario("replay of an accepted request", replay=True),
    ]
    for fault in Fault:
        if fault in STALLS:
            out.append(Scenario(f"{fault.value.name} (at the send)", fault, skip=1))
        elif fault.value.target is None:
            out.append(Scenario(f"{fault.value.name} (1st hittable call)", fault, skip=0))
            out.append(Scenario(f"{fault.value.name} (2nd hittable call)", fault, skip=1))
        else:
            out.append(Scenario(fault.value.name, fault))
    if quick:
        keep = {None, Fault.STALL_PAST_LEASE}
        out = [s for s in out if s.fault in keep and s.payload_bytes == SMALL and not s.replay]
    return out


def _size(payload_bytes: int) -> str:
    return f"{payload_bytes} B" if payload_bytes < 1_000 else f"{payload_bytes // 1000} KB"


def run(quick: bool = False, say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    rows = []
    with in_process_aws():
        meter, injector = Meter(), FaultInjector()
        with meter.installed():
            boto3.DEFAULT_SESSION = None  # the injector's own client (its replayed retry) is metered too
            try:
                with injector.installed():
                    meter.count_as_retries(injector.raw_dynamodb)
                    meter.to_front()  # counts an attempt before the injector fails it
                    resources = provision(body_bucket=True)
                    table = meter.describe(resources.sendguard_table)  # as the write units size it
                    with environment(sendguard_env(resources)):
                        reconciler = Reconciler.make()
                    for scenario in scenarios(quick):
                        say(f"cost: {scenario.label}")
                        rows.append(_measure(scenario, resources, reconciler, meter, injector))
            finally:
                boto3.DEFAULT_SESSION = None
    return {"rows": rows, "sendguard_table": table, "by_size": by_size(rows), "before": _before()}


# What the happy path cost at each payload size before the compact record (issue 26): this section's
# own code run on the tree of 74812ab (the command is in the file).
BEFORE = Path(__file__).with_name("cost_74812ab.json")


def by_size(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """sendguard's happy path at each payload size: requests, units, bytes, where the body went."""
    out = []
    for row in rows:
        if not row["scenario"].startswith("happy path"):
            continue
        flow = row["flows"][SENDGUARD]
        used = flow["invocation"]
        out.append(
            {
                "payload_bytes": row["payload_bytes"],
                "api_calls": used["api_calls"],
                "attempts": used["attempts"],
                "wru": used["wru"],
                "rru": used["rru"],
                "own_bytes": flow.get("own_bytes"),
                "record_bytes": flow.get("record_bytes"),
                "stored_bytes": flow["item_bytes"],
                "body_at": flow.get("body_at"),
                "end_state": flow["end_state"],
            }
        )
    return out


def _before() -> dict[str, Any] | None:
    if not BEFORE.exists():
        return None
    before: dict[str, Any] = json.loads(BEFORE.read_text(encoding="utf-8"))
    return before


@attrs.frozen
class Reconciler:
    """The reconciler function's container: its configuration and clients."""

    config: Config
    aws: Aws

    @classmethod
    def make(cls) -> Reconciler:
        config = Config.from_env()
        return cls(config, Aws.from_config(config))


def _measure(
    scenario: Scenario, resources: Resources, reconciler: Reconciler, meter: Meter, injector: FaultInjector
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scenario": scenario.label,
        "fault": scenario.fault.name if scenario.fault else None,
        "payload_bytes": len(body(0, scenario.payload_bytes)),
        "flows": {},
    }
    with flows(resources) as by_name:
        for name in NAMES:
            reason = _not_applicable(scenario.fault, name)
            if reason:
                row["flows"][name] = {"not_applicable": reason}
            else:
                row["flows"][name] = _one(
                    by_name[name], scenario, reconciler, meter, injector, resources.body_bucket
                )
    return row


def _not_applicable(fault: Fault | None, flow: str) -> str | None:
    if flow == SENDGUARD:
        return None
    if fault in STALLS:
        return "no lease and no reconciler: a stall only delays the answer"
    if fault is Fault.WRITE_LANDED_RETRY_FAILS_CONDITION:
        return "its writes carry no condition: the SDK's retry of a landed write lands again"
    return None


def _one(
    flow: Flow,
    scenario: Scenario,
    reconciler: Reconciler,
    meter: Meter,
    injector: FaultInjector,
    bucket: str | None = None,
) -> dict[str, Any]:
    key = f"bench-{uuid.uuid4().hex[:12]}"
    event = post_event(body(1, scenario.payload_bytes), key)
    earlier = Tally()
    if scenario.replay:
        with meter.counting() as earlier:
            flow.handler(event, context())
    follow = Tally()
    if scenario.fault in STALLS:
        answer, tally = _stalled(flow, event, scenario.plan, reconciler, meter, injector, follow)
    else:
        with meter.counting() as tally, injector.armed(scenario.plan):
            answer = _invoke(flow, event)
    if flow.name == SENDGUARD:
        follow.add(settle(reconciler, meter))
    ids = _message_ids(flow, earlier, tally, key)
    sends = sum(1 for landed in injector.landed if landed.message_id in ids)
    items = [_item(flow.table, i) for i in ids]
    result: dict[str, Any] = {
        "answer": answer,
        "invocation": tally.as_dict(),
        "end_state": _end_state(flow.name, flow.table, [i for i in items if i], sends, len(ids), bucket),
        "sends": sends,
        "item_bytes": max((_stored_bytes(flow.table, i) for i in items if i), default=0),
        "record_bytes": max((capacity.item_size(i) for i in items if i), default=0),
    }
    if flow.name == SENDGUARD:
        result["reconciler"] = follow.as_dict()
        result["own_bytes"] = max((own_bytes(i) for i in items if i), default=0)
        result["body_at"] = next((_where(i) for i in items if i), None)
    if flow.name == POWERTOOLS:
        result["idempotency_item_bytes"] = _idempotency_item_bytes(tally)
    return result


def _invoke(flow: Flow, event: dict[str, Any]) -> int | str:
    try:
        status: int = flow.handler(event, context())["statusCode"]
        return status
    except Crashed:
        return "crashed"


def _stalled(
    flow: Flow,
    event: dict[str, Any],
    plan: Plan | None,
    reconciler: Reconciler,
    meter: Meter,
    injector: FaultInjector,
    follow: Tally,
) -> tuple[int | str, Tally]:
    """The invocation stalls (or its request waits on the wire) on its own thread; meanwhile its lease
    expires and the reconciler runs; then it goes on."""
    out: dict[str, Any] = {}

    def invocation() -> None:
        with meter.counting() as tally, injector.armed(plan):
            out["tally"] = tally
            out["answer"] = _invoke(flow, event)

    injector.reset_stall()
    worker = threading.Thread(target=invocation, daemon=True)
    worker.start()
    try:
        if injector.stall_reached.wait(timeout=20):
            follow.add(settle(reconciler, meter))
    finally:
        injector.resume_all()
        worker.join(timeout=60)
    if worker.is_alive():
        raise RuntimeError("a stalled invocation did not finish")
    return out["answer"], out["tally"]


def settle(reconciler: Reconciler, meter: Meter) -> Tally:
    """Reconciler passes, each on a clock moved past every lease and re-drive delay, until one finds
    nothing to do."""
    config, aws = reconciler.config, reconciler.aws
    settings = config.settings
    step = settings.lease_margin_ms + INVOCATION_MS + settings.redrive_after_ms + 1_000
    total = Tally()
    offset = 0
    for _ in range(MAX_PASSES):
        offset += step
        shifted = offset

        def clock(shift: int = shifted) -> int:
            return now_ms() + shift

        with meter.counting() as tally:
            summary = reconcile_pass(aws, config, clock() + INVOCATION_MS, clock=clock)
        total.add(tally)
        if not any(getattr(summary, name) for name in WORK):
            break
    return total


def _message_ids(flow: Flow, earlier: Tally, tally: Tally, key: str) -> list[str]:
    if flow.name == SENDGUARD:
        return [sendguard_message_id(key)]
    seen = [k for t, k in earlier.written + tally.written if t == flow.table]
    return list(dict.fromkeys(seen))


def _item(table: str, message_id: str) -> dict[str, Any] | None:
    client: Any = boto3.client("dynamodb")
    item: dict[str, Any] | None = client.get_item(
        TableName=table, Key={"message_id": {"S": message_id}}, ConsistentRead=True
    ).get("Item")
    return item


def own_bytes(item: dict[str, Any], layout: TableLayout = DEFAULT_LAYOUT) -> int:
    """sendguard's own attributes of a record: all but its key, its body and the team's."""
    theirs = {*layout.key_names, layout.body_attribute}
    own = {name: value for name, value in item.items() if layout.owns(name) and name not in theirs}
    return capacity.item_size(own)


def _where(item: dict[str, Any]) -> str:
    """Where a record's body is: in it, in a body item, or in S3."""
    at = body_at(item) if is_record(item) else None
    return "record" if at is None else "body item" if at.startswith(ITEM_PREFIX) else "S3"


def _stored_bytes(table: str, item: dict[str, Any]) -> int:
    """What a message keeps in the table: its item, and its body item when the body is apart."""
    size = capacity.item_size(item)
    at = body_at(item) if is_record(item) else None
    if at is not None and at.startswith(ITEM_PREFIX):
        key = named_body_key(DEFAULT_LAYOUT, Key(item["message_id"]["S"]), at)
        client: Any = boto3.client("dynamodb")
        size += capacity.item_size(client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item"))
    return size


def _idempotency_item_bytes(tally: Tally) -> int:
    client: Any = boto3.client("dynamodb")
    sizes = []
    for table, key in tally.written:
        if table.endswith("-idem"):
            item = client.get_item(TableName=table, Key={"id": {"S": key}}).get("Item")
            sizes.append(capacity.item_size(item))
    return max(sizes, default=0)


def _end_state(
    flow: str, table: str, items: list[dict[str, Any]], sends: int, records: int, bucket: str | None = None
) -> str:
    if records > 1:
        return f"DUPLICATE: {records} records and {sends} messages for one request"
    if not items:
        return "nothing stored, nothing sent" if sends == 0 else f"SENT {sends}× WITHOUT A RECORD"
    item = items[0]
    if flow == SENDGUARD:
        s3 = None if bucket is None else S3Bodies(bucket, client=boto3.client("s3"))
        found, _ = DynamoStore(boto3.client("dynamodb"), table, s3=s3).get(item["message_id"]["S"])
        assert isinstance(found, Stored), found  # the record and its body, read back whole
        phase = found.record.phase
        if phase is Phase.CONFIRMED:
            if sends == 1:
                return "delivered once"
            return "ORPHAN: confirmed, never sent" if sends == 0 else f"delivered {sends}× (explained)"
        if phase is Phase.EXHAUSTED:
            return f"exhausted, flagged for an operator; sent {sends}×"
        return f"{phase.value} after the reconciler settled; sent {sends}×"
    status = item.get("status", {}).get("S")
    if status == "QUEUED":
        return "ORPHAN: QUEUED, never sent" if sends == 0 else _times("delivered", sends)
    if sends == 0:
        return "PENDING, never sent (no reconciler)"
    return f"INCONSISTENT: sent {sends}×, record PENDING"


def _times(text: str, n: int) -> str:
    return f"{text} once" if n == 1 else f"{text} {n}×"
