"""The compact record (`adapters.runtime.compact`, `adapters.runtime.codec`): what it costs, that it
reads back to exactly what was written, that what is malformed is refused, and that records written
in the format before it (tests/fixtures/records_74812ab.json, written by the code at 74812ab) are
still read, audited, re-driven and re-armed."""

from __future__ import annotations

import json
import string
import uuid
from pathlib import Path
from typing import Any

import attrs
import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.ops.audit import audit
from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import now_ms
from adapters.runtime.codec import (
    HISTORY,
    MESSAGE,
    UPDATED_AT,
    created_item,
    lifecycle_attributes,
    serialize,
    stored_from_item,
    write_history,
)
from adapters.runtime.compact import (
    MalformedRecord,
    history_entries,
    long_id,
    pack_message,
    read_entries,
    short_id,
    unpack_message,
)
from adapters.runtime.config import Config
from adapters.runtime.item_size import item_size
from adapters.runtime.layout import TableLayout
from adapters.runtime.rearm import REARMED, rearm
from adapters.runtime.reconciler import reconcile_pass
from adapters.runtime.runner import Aws
from adapters.runtime.sqs import SqsQueue
from statemodel.categories import ErrorCategory
from statemodel.decider import evolve_all
from statemodel.events import (
    Accepted,
    ClaimCause,
    Claimed,
    Event,
    ExhaustionCause,
    Rearmed,
    RedriveExhausted,
    RollbackCause,
    RolledBack,
    SendConfirmed,
    SendFailed,
    event_from_dict,
)
from statemodel.flows import Sent, Settings, Written, advance, start_submit
from statemodel.invariants import history_problems
from statemodel.keys import Key
from statemodel.records import Message, Phase
from statemodel.validation import new_message, parse_submission

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "records_74812ab.json").read_text(encoding="utf-8")
)
SETTINGS = Settings(max_attempts=3, redrive_after_ms=60_000, lease_margin_ms=30_000)
OWN_BUDGET_BYTES = 400  # sendguard's own attributes on a happy-path record (issue 26, item 2)


def own_bytes(item: dict[str, Any]) -> int:
    """The size of sendguard's own attributes: all but the key, the body and the team's."""
    mine = {k: v for k, v in item.items() if k.startswith("sg_") or k == TableLayout().status_attribute}
    return item_size(mine)


# ---- the size ---------------------------------------------------------------------------------------


def happy_path_item(correlation_id: str, key: str, caller: str | None) -> dict[str, Any]:
    """A confirmed record as the create and the confirm leave it, with the ids sendguard makes."""
    request = parse_submission(json.dumps({"payload": {"order": 1}, "attributes": {"group": "eu"}}))
    now = 1_796_135_193_698
    queue = "https://sqs.eu-central-1.amazonaws.com/123456789012/sendguard-orders-events"
    message = new_message(request, str(uuid.uuid4()), correlation_id, now, key, queue=queue, caller=caller)  # type: ignore[arg-type]
    flow = start_submit(message, str(uuid.uuid4()), now + 40_000, now, Settings())
    created = created_item(flow.effect, TableLayout())  # type: ignore[arg-type]
    flow = advance(advance(flow, Written(), now + 2), Sent(str(uuid.uuid4())), now + 40)
    confirm = flow.effect
    stored = stored_from_item(created)
    after = evolve_all(stored.record, confirm.events)  # type: ignore[union-attr]
    assert after is not None and after.phase is Phase.CONFIRMED
    item = dict(created)
    for name, value in lifecycle_attributes(after, TableLayout()).items():
        item.pop(name, None) if value is None else item.update({name: serialize(value)})
    item[HISTORY] = {"L": created[HISTORY]["L"] + [{"S": e} for e in write_history(confirm)]}  # type: ignore[arg-type]
    return item


@pytest.mark.parametrize(
    ("correlation_id", "key", "caller"),
    [
        (str(uuid.uuid4()), None, None),  # the API's request id, no key
        (str(uuid.uuid4()), "bench-0123456789ab", None),  # as `make bench` sends
        (str(uuid.uuid4()), "order-4711-created", "arn:aws:iam::123456789012:role/orders"),
    ],
)
def test_a_happy_path_record_keeps_at_most_400_bytes_of_its_own(
    correlation_id: str, key: str | None, caller: str | None
) -> None:
    """With a 49-character queue name and the demo's attribute. What a caller chooses — its own
    correlation id, key, caller name, attributes, queue name — counts at its length."""
    item = happy_path_item(correlation_id, key, caller)  # type: ignore[arg-type]
    stored = stored_from_item(item)
    assert stored.record.phase is Phase.CONFIRMED and history_problems(stored.record, stored.history) == []
    assert own_bytes(item) <= OWN_BUDGET_BYTES, own_bytes(item)


def test_the_fixture_s_records_were_heavier() -> None:
    """The same happy path in the format before: more than twice the budget."""
    confirmed = next(i for i in FIXTURE["items"] if i["message_id"]["S"] == "confirmed-small")
    assert own_bytes(confirmed) > 2 * OWN_BUDGET_BYTES


# ---- round trips ------------------------------------------------------------------------------------

B64 = string.ascii_letters + string.digits + "-_"
ids = st.one_of(
    st.uuids().map(str),
    st.text(B64, min_size=22, max_size=22),  # reads like a compact uuid: kept behind the escape
    st.text(B64, min_size=43, max_size=43),
    st.text(min_size=1, max_size=40).map(lambda t: "=" + t),
    st.text(min_size=1, max_size=40),
)


@given(ids)
def test_an_id_reads_back_as_written(value: str) -> None:
    assert long_id(short_id(value)) == value
    assert long_id(short_id(value, 32), 32) == value


def test_canonical_ids_take_their_bytes_only() -> None:
    attempt = str(uuid.uuid4())
    assert len(short_id(attempt)) == 22 and long_id(short_id(attempt)) == attempt
    assert short_id(attempt.upper()) == attempt.upper()  # not canonical: kept as it is
    digest = "ab" * 32
    assert len(short_id(digest, 32)) == 43


queues = st.one_of(
    st.builds(
        "https://sqs.{}.amazonaws.com/{}/{}".format,
        st.sampled_from(["us-east-1", "eu-central-1", "ap-southeast-2"]),
        st.text(string.digits, min_size=12, max_size=12),
        st.text(B64, min_size=1, max_size=80),
    ),
    st.sampled_from(["http://localhost:4566/000000000000/q", "=x://y", "=q", "us-east-1/123456789012/q"]),
    st.text(min_size=1, max_size=60),
)


@given(
    correlation=ids,
    created_at=st.integers(0, 2**53),
    request_hash=st.one_of(
        st.binary(min_size=32, max_size=32).map(bytes.hex),
        st.binary(min_size=32, max_size=32).map(lambda b: "body:" + b.hex()),
        st.text(max_size=70),
    ),
    attributes=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
    queue=st.none() | queues,
    idempotency_key=st.none() | st.text(max_size=20),
    group_id=st.none() | st.text(max_size=20),
    caller=st.none() | st.text(max_size=20),
)
def test_a_message_reads_back_as_written(
    correlation: str,
    created_at: int,
    request_hash: str,
    attributes: dict[str, str],
    queue: str | None,
    idempotency_key: str | None,
    group_id: str | None,
    caller: str | None,
) -> None:
    message = Message(
        "m-1",
        "{}",
        tuple(sorted(attributes.items())),
        correlation,
        created_at,
        request_hash,
        idempotency_key,
        group_id,
        None,
        queue,
        caller,
    )
    assert unpack_message(pack_message(message), Key("m-1"), "{}") == message


MESSAGE_1 = Message("m-1", '{"a":1}', (("group", "g"),), "c-1", 1_000, "hash", "key-1")
causes = st.sampled_from(list(ClaimCause))


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[Event, ...]]:
    """A history cut into writes, each event of a kind the decider makes; times anywhere around
    the acceptance (a clock may be behind)."""
    at = st.integers(-(10**6), 10**10)
    writes: list[tuple[Event, ...]] = [(Accepted(MESSAGE_1, MESSAGE_1.created_at),)]
    for _ in range(draw(st.integers(0, 6))):
        attempt = draw(ids)
        write: list[Event] = [Claimed(attempt, draw(at), draw(causes), draw(at))]
        follow = draw(st.sampled_from(["confirm", "fail", "other"]))
        fenced = attempt if draw(st.booleans()) else draw(ids)  # another attempt's event: said in full
        if follow == "confirm":
            write.append(SendConfirmed(fenced, draw(ids), draw(at)))
        elif follow == "fail":
            category = draw(st.sampled_from(list(ErrorCategory))).value
            write.append(SendFailed(fenced, category, draw(st.text(max_size=20)), draw(at)))
            write.append(RolledBack(fenced, draw(st.sampled_from(list(RollbackCause))), draw(at)))
            write.append(RedriveExhausted(draw(st.sampled_from(list(ExhaustionCause))), draw(at)))
            write.append(Rearmed(draw(st.text(max_size=20)), draw(st.text(max_size=40)), draw(at)))
        writes.append(tuple(write[:1]))
        writes.append(tuple(write[1:]))
    return writes


@given(histories())
def test_a_history_reads_back_as_written(writes: list[tuple[Event, ...]]) -> None:
    entries: list[Any] = []
    fenced: str | None = None
    for write in writes:
        entries += history_entries(write, MESSAGE_1.created_at, fenced)
        fenced = next((e.attempt_id for e in write if isinstance(e, Claimed)), fenced)
    events = [e for write in writes for e in write]
    assert read_entries(entries, MESSAGE_1, pack_message(MESSAGE_1), _refuse_legacy) == tuple(events)


def _refuse_legacy(entry: dict[str, Any]) -> Event:
    raise AssertionError(f"a compact history read a map: {entry}")


def test_a_history_mixes_the_entries_of_both_formats() -> None:
    legacy = {"type": "Accepted", "at": 1_000, "correlation_id": "c-1", "created_at": 1_000}
    legacy |= {"request_hash": "hash", "idempotency_key": "key-1"}
    claim = {
        "type": "Claimed",
        "attempt_id": "a-1",
        "lease_expires_at": 9_000,
        "cause": "submit",
        "at": 1_000,
    }
    confirm = history_entries([SendConfirmed("a-1", "s-1", 1_050)], 1_000, "a-1")
    events = read_entries([legacy, claim, *confirm], MESSAGE_1, None, lambda e: event_from_dict(e, MESSAGE_1))
    assert events == (
        Accepted(MESSAGE_1, 1_000),
        Claimed("a-1", 9_000, ClaimCause.SUBMIT, 1_000),
        SendConfirmed("a-1", "s-1", 1_050),
    )
    assert confirm == ['["S",50,"s-1"]']  # the attempt the write was fenced on is not said again


# ---- what is malformed is refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        (['["S",50,"s-1"]'], "no attempt was claimed before"),
        (['["C",0,"s","a-1",100]', '["S",50]'], "S takes 3 to 4 fields"),
        (['["C",0,"s","a-1",100]', '["S",50,null]'], "sqs_message_id is None"),
        (['["Q",0]'], "not an event"),
        (['["A",0]'], "takes 3 to 3 fields"),
        (['["A","0","d"]'], "at is '0'"),
        (['["A",true,"d"]'], "at is True"),
        (['["A",NaN,"d"]'], "NaN"),
        (['["A",0,"AAAAAAAA"]'], "Accepted disagrees with the record's message"),
        (['["C",0,"z","a-1",100]'], "not a ClaimCause code"),
        (['["C",0,"s",7,100]'], "id is 7"),
        (['["R",0,"f","a-1",null]'], "takes 3 to 4 fields"),
        (['{"type":"Accepted"}'], "is a JSON array"),
        (["not json"], "is not JSON"),
        (["[" * 5_000], "is not JSON"),  # deeper than the parser goes
        ([7], "neither a map nor a string"),
    ],
)
def test_a_malformed_history_entry_is_refused(entries: list[Any], why: str) -> None:
    with pytest.raises(MalformedRecord, match=why):
        read_entries(entries, MESSAGE_1, pack_message(MESSAGE_1), _refuse_legacy)


@pytest.mark.parametrize(
    ("packed", "why"),
    [
        ('[1000,"c"]', "3 to 8 fields"),
        ('["1000","c","h"]', "created_at is '1000'"),
        ('[1000,"c","h",{}]', "non-empty object of strings"),
        ('[1000,"c","h",{"a":1}]', "non-empty object of strings"),
        ('[1000,"c","h",null,"nowhere"]', "not a queue"),
        ('[1000,"c","h",null,null,7]', "idempotency_key is 7"),
        ("[1000,", "is not JSON"),
        ("[" * 5_000, "is not JSON"),
    ],
)
def test_a_malformed_packed_message_is_refused(packed: str, why: str) -> None:
    with pytest.raises(MalformedRecord, match=why):
        unpack_message(packed, Key("m-1"), "{}")


# ---- records written before: read, audited, re-driven, re-armed (on moto) --------------------------------


@pytest.fixture
def table(sendguard_aws: None) -> tuple[Config, Aws]:
    queue_url = ensure_resources("records", "events")
    assert queue_url == FIXTURE["queue_url"]  # the queue the fixture's records name
    client = boto3.client("dynamodb")
    for item in FIXTURE["items"]:
        client.put_item(TableName="records", Item=item)
    config = Config("records", queue_url, SETTINGS, metrics=False)
    return config, Aws.from_config(config)


EXPECTED = {
    "confirmed-small": Phase.CONFIRMED,
    "confirmed-apart": Phase.CONFIRMED,  # its body in a body item
    "exhausted": Phase.EXHAUSTED,
    "in-flight": Phase.IN_FLIGHT,
    "pending-put": Phase.PENDING,  # its body in a body item
    "pending-rolled-back": Phase.PENDING,
}


def read_all(aws: Aws) -> dict[str, Any]:
    found = {}
    for message_id in EXPECTED:
        stored, _ = aws.store.get(message_id)
        found[message_id] = stored
    return found


def test_records_written_before_read_as_they_were(table: tuple[Config, Aws]) -> None:
    _, aws = table
    found = read_all(aws)
    assert {k: v.record.phase for k, v in found.items()} == EXPECTED
    small = found["confirmed-small"].record.message
    assert (small.idempotency_key, small.caller, small.correlation_id) == (
        "key-1",
        "caller-a",
        "req-confirmed-small",
    )
    assert small.queue == FIXTURE["queue_url"]
    assert json.loads(found["confirmed-apart"].record.message.payload)["note"] == "x" * 2000


def test_records_written_before_are_audited(table: tuple[Config, Aws]) -> None:
    _, aws = table
    report = audit(aws.store, now_ms(), grace_ms=0)
    assert report.records == len(EXPECTED) and report.violations == []
    assert [o["message_id"] for o in report.orphans] == ["in-flight"]  # its lease ran out long ago
    assert [e["message_id"] for e in report.exhausted] == ["exhausted"]


def test_records_written_before_are_redriven_and_rearmed(table: tuple[Config, Aws]) -> None:
    config, aws = table
    ahead = [10 * 60 * 1000]  # past every lease and re-drive delay

    def later() -> int:
        return now_ms() + ahead[0]

    summary = reconcile_pass(aws, config, later() + 20_000, clock=later)
    assert (summary.expired, summary.redriven) == (1, 2), summary  # the lease that ran out, the pending
    result = rearm(aws, "exhausted", reason="access granted", by="ops", max_attempts=3, clock=later)
    assert result.outcome == REARMED
    ahead[0] *= 2  # past the re-drive delay of the rolled-back claim and of the re-armed record
    summary = reconcile_pass(aws, config, later() + 20_000, clock=later)
    assert (summary.expired, summary.redriven) == (0, 2), summary
    found = read_all(aws)
    assert {k: v.record.phase for k, v in found.items()} == dict.fromkeys(EXPECTED, Phase.CONFIRMED)
    report = audit(aws.store, later(), grace_ms=0)
    assert (report.violations, report.orphans, report.exhausted) == ([], [], [])
    sent = SqsQueue(boto3.client("sqs"), config.queue_url).client.receive_message(
        QueueUrl=config.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    ids = sorted(m["MessageAttributes"]["message_id"]["StringValue"] for m in sent)
    assert ids == ["exhausted", "in-flight", "pending-put", "pending-rolled-back"]
    raw = boto3.client("dynamodb").get_item(TableName="records", Key={"message_id": {"S": "exhausted"}})[
        "Item"
    ]
    kinds = [next(iter(entry)) for entry in raw[HISTORY]["L"]]
    assert "M" in kinds and "S" in kinds  # the old entries kept, the new ones compact
    assert UPDATED_AT not in raw and MESSAGE not in raw  # the message stays as it was written


def test_a_malformed_record_is_refused_by_the_read_and_named_by_the_audit(table: tuple[Config, Aws]) -> None:
    _, aws = table
    client = boto3.client("dynamodb")
    client.update_item(
        TableName="records",
        Key={"message_id": {"S": "confirmed-small"}},
        UpdateExpression="SET #h = list_append(#h, :bad)",
        ExpressionAttributeNames={"#h": HISTORY},
        ExpressionAttributeValues={":bad": {"L": [{"S": '["S",1,"s-1",null,"extra"]'}]}},
    )
    _, call = aws.store.get("confirmed-small")
    assert call.error is not None and call.error.code == "UnreadableItem"
    report = audit(aws.store, now_ms(), grace_ms=0)
    (violation,) = report.violations
    assert violation.startswith("confirmed-small: unreadable item: history entry 4: S takes 3 to 4 fields")


def test_the_decider_s_own_history_is_what_the_store_reads(table: tuple[Config, Aws]) -> None:
    """A record written now and sent: read back, the history is the flow's, event for event (the
    compact entries leave nothing out)."""
    _, aws = table
    request = parse_submission('{"payload": {"n": 1}}')
    now = now_ms()
    message = new_message(request, "fresh", "c-1", now, "k-1", queue=FIXTURE["queue_url"])  # type: ignore[arg-type]
    flow = start_submit(message, str(uuid.uuid4()), now + 40_000, now, SETTINGS)
    create = flow.effect
    assert aws.store.perform(create, None)[0] == Written()  # type: ignore[arg-type]
    flow = advance(advance(flow, Written(), now + 1), Sent(str(uuid.uuid4())), now + 5)
    confirm = flow.effect
    assert aws.store.perform(confirm, None)[0] == Written()  # type: ignore[arg-type]
    stored, _ = aws.store.get("fresh")
    assert stored.history == (*create.events, *confirm.events)  # type: ignore[union-attr]
    assert history_problems(stored.record, stored.history) == []  # type: ignore[union-attr]


def test_a_message_rewritten_after_its_acceptance_is_named_by_the_audit(table: tuple[Config, Aws]) -> None:
    """The history does not repeat the message, but its Accepted pins it: a rewritten correlation id
    reads as a history that disagrees with its message."""
    config, aws = table
    request = parse_submission('{"payload": {"n": 2}}')
    now = now_ms()
    message = new_message(request, "pinned", "c-1", now, "k-2", queue=config.queue_url)  # type: ignore[arg-type]
    create = start_submit(message, str(uuid.uuid4()), now + 40_000, now, SETTINGS).effect
    assert aws.store.perform(create, None)[0] == Written()  # type: ignore[arg-type]
    rewritten = pack_message(attrs.evolve(message, correlation_id="c-2"))
    boto3.client("dynamodb").update_item(
        TableName="records",
        Key={"message_id": {"S": "pinned"}},
        UpdateExpression="SET #m = :m",
        ExpressionAttributeNames={"#m": MESSAGE},
        ExpressionAttributeValues={":m": {"S": rewritten}},
    )
    _, call = aws.store.get("pinned")
    assert call.error is not None and call.error.code == "UnreadableItem"
    report = audit(aws.store, now_ms(), grace_ms=0)
    assert [v.split(":")[0] for v in report.violations] == ["pinned"]
    assert "Accepted disagrees with the record's message" in report.violations[0]


@pytest.mark.parametrize("stored", [{"N": "7"}, {"BOOL": True}])
def test_an_attempt_id_that_is_not_a_string_is_refused(stored: dict[str, Any]) -> None:
    item = happy_path_item(str(uuid.uuid4()), "order-1", None)
    item["sg_attempt_id"] = stored
    with pytest.raises(MalformedRecord, match="an id is a string"):
        stored_from_item(item)


@pytest.mark.parametrize(
    "message", [{"N": "7"}, {"S": "[" * 5_000}, {"S": "not json"}, {"SS": ["a"]}], ids=str
)
def test_the_backlog_counts_a_record_with_a_malformed_message_as_unreadable(message: dict[str, Any]) -> None:
    from adapters.ops.backlog import UNREADABLE, queue_of

    assert queue_of({"sg_message": message}) == UNREADABLE
    item = happy_path_item(str(uuid.uuid4()), "order-1", None)
    assert queue_of(item) == "https://sqs.eu-central-1.amazonaws.com/123456789012/sendguard-orders-events"
