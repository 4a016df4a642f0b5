"""The ready consumer (`adapters.aws_lambda_consumer.consume`, deploy/template.yaml's ConsumerFunction)
on moto: each mode applies a message's effect once, a duplicate delivery applies nothing more, and
its configuration refuses what would break its promise."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from adapters.aws_lambda_consumer import ConsumerConfig, ConsumerHandlers, Wiring, effect_key
from adapters.cli import demo as demo_command
from adapters.local import demo
from adapters.local.consumer import (
    CRASH_AFTER,
    CRASH_BEFORE,
    THROTTLED,
    CallFaults,
    EffectOutsideTransaction,
    FaultyClient,
    InvocationCrashed,
    SwallowedFailure,
    _failures,
)
from adapters.local.sandbox import LambdaContext
from adapters.ops.provision import ensure_table
from adapters.runtime.config import ConfigError
from adapters.testing.inbox_events import sqs_event, sqs_record

TABLE = "consumer"


@pytest.fixture
def consumer(sendguard_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsumerHandlers]:
    from adapters.aws_lambda_consumer import LAYOUT

    ensure_table(TABLE, LAYOUT)
    monkeypatch.setenv("SENDGUARD_CONSUMER_TABLE", TABLE)
    yield ConsumerHandlers()


def applied(message_id: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key=effect_key(message_id)).get("Item", {})
    return {name: int(item[name]["N"]) for name in ("applied", "calls") if name in item}


@pytest.mark.parametrize("mode", ["transactional", "guarded"])
def test_each_mode_applies_an_effect_once_whatever_the_duplicates(
    consumer: ConsumerHandlers, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("SENDGUARD_CONSUMER_MODE", mode)
    event = sqs_event(
        sqs_record(json.dumps({"n": 1}), key="m-1", sqs_message_id="s-1"),
        sqs_record(json.dumps({"n": 2}), key="m-2", sqs_message_id="s-2"),
    )
    assert consumer.consume(event, LambdaContext(5_000)) == {"batchItemFailures": []}
    again = sqs_event(sqs_record(json.dumps({"n": 1}), key="m-1", sqs_message_id="s-3"))
    assert consumer.consume(again, LambdaContext(5_000)) == {"batchItemFailures": []}
    expected = {"applied": 1} if mode == "transactional" else {"applied": 1, "calls": 1}
    assert applied("m-1") == expected and applied("m-2") == expected


def test_a_message_without_its_key_is_reported_failed(consumer: ConsumerHandlers) -> None:
    event = sqs_event(sqs_record("{}", sqs_message_id="s-9"))
    assert consumer.consume(event, LambdaContext(5_000)) == {"batchItemFailures": [{"itemIdentifier": "s-9"}]}


@pytest.mark.parametrize(
    ("environment", "problem"),
    [
        ({}, "SENDGUARD_CONSUMER_TABLE is not set"),
        ({"SENDGUARD_CONSUMER_TABLE": "t", "SENDGUARD_CONSUMER_MODE": "fenced"}, "none of transactional"),
        ({"SENDGUARD_CONSUMER_TABLE": "t", "SENDGUARD_CONSUMER_MAX_RECEIVES": "0"}, "outside 1..100"),
        (
            {
                "SENDGUARD_CONSUMER_TABLE": "t",
                "SENDGUARD_CONSUMER_MAX_RECEIVES": "5",
                "SENDGUARD_CONSUMER_QUEUE_MAX_RECEIVE_COUNT": "5",
            },
            "must be below the queue's maxReceiveCount",
        ),
    ],
)
def test_the_configuration_refuses_what_breaks_the_promise(environment: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        ConsumerConfig.from_env(environment)


def test_the_template_defaults_are_accepted() -> None:
    config = ConsumerConfig.from_env(
        {
            "SENDGUARD_CONSUMER_TABLE": "t",
            "SENDGUARD_CONSUMER_MAX_RECEIVES": "3",
            "SENDGUARD_CONSUMER_QUEUE_MAX_RECEIVE_COUNT": "5",
        }
    )
    assert (config.mode, config.max_receives) == ("transactional", 3)


# ---- `sendguard demo` with the consumer: end to end, and consumers wired wrong --------------------


def run_demo(**options: Any) -> dict[str, Any]:
    report: dict[str, Any] = demo.run(demo.DemoOptions(progress=False, **options), io.StringIO())
    return report


@pytest.mark.parametrize("mode", ["transactional", "guarded"])
def test_producer_and_consumer_end_to_end_under_faults_on_both_sides(mode: str) -> None:
    report = run_demo(requests=16, concurrency=4, fault_rate=0.3, seed=3, consumer=mode)
    consumer = report["consumer"]
    assert report["ok"] and demo_command.exit_code(report) == 0, demo.render(report)
    assert consumer["mode"] == mode and consumer["finished"]
    assert consumer["missing"] == consumer["applied_twice"] == consumer["unexpected"] == []
    assert consumer["applied_once"] == consumer["expected"] == report["queue"]["records"] > 0
    assert consumer["inbox"] == {"DONE": consumer["expected"]}
    assert report["faults_injected"] > 0
    text = demo.render(report)
    assert "every accepted message's effect applied exactly once" in text
    assert text.splitlines()[-1].startswith("OK — every message accounted for, every effect applied once")


@pytest.mark.parametrize("mode", ["transactional", "guarded"])
def test_the_consumers_own_faults_are_drawn_from_the_seed(mode: str) -> None:
    """No proxy faults: the producer's run is the plan's, and the consumer's faults are the seed's."""
    report = run_demo(
        requests=16, concurrency=4, fault_rate=0.0, consumer_fault_rate=0.6, seed=11, consumer=mode
    )
    consumer, mapping = report["consumer"], report["consumer"]["mapping"]
    assert report["ok"], demo.render(report)
    # Which calls a run makes depends on timing (copies racing their originals, batches a crash fails
    # whole), so which kinds it meets does too: the draws themselves are pinned below, pure.
    assert sum(consumer["faults_by_kind"].values()) > 0
    assert set(consumer["faults_by_kind"]) <= {"crash_after", "crash_before", "throttled"}
    assert mapping["crashed"] > 0 and mapping["duplicate"] > 0 and mapping["concurrent"] > 0
    assert mapping["received"] > consumer["expected"]  # the copies and the crashed batches came back
    if mode == "guarded":  # a crash after the call: the takeover calls again, and the key drops it
        assert consumer["repeated_calls"] > 0
        assert "repeated calls dropped by their idempotency key" in " ".join(demo.render(report).split())


def test_the_consumers_call_faults_are_the_seeds_draws() -> None:
    """The same seed draws the same fault for the same call of an item (its operation and how many of
    them came before), every kind among them, and nothing past the faulted calls; another seed draws
    otherwise. Pure: no service, no threads."""
    calls = [
        (op, f"inbox#m-{i}") for i in range(16) for op in ("get_item", "update_item", "transact_write_items")
    ]

    def draws(seed: int) -> list[str | None]:
        faults = CallFaults(0.6, seed)
        return [faults.draw(op, key) for _ in range(3) for op, key in calls]

    first = draws(11)
    assert first == draws(11) and first != draws(12)
    assert set(first) == {None, CRASH_BEFORE, CRASH_AFTER, THROTTLED}
    assert first[2 * len(calls) :] == [None] * len(calls)  # a third call of an item is never faulted
    get_items = [kind for (op, _), kind in zip(calls * 2, first, strict=False) if op == "get_item"]
    assert CRASH_AFTER not in get_items  # a crash after a read is one before the next call


@pytest.mark.parametrize(
    ("mode", "wiring", "caught_by"),
    [
        ("transactional", EffectOutsideTransaction, "applied_twice"),
        ("transactional", SwallowedFailure, "missing"),
        ("guarded", SwallowedFailure, "missing"),
    ],
    ids=["effect outside the transaction", "swallowed failure", "swallowed failure, guarded"],
)
def test_a_consumer_wired_wrong_fails_the_exactly_once_check(
    mode: str, wiring: type[Wiring], caught_by: str
) -> None:
    """One message per invocation and no proxy faults: each message's path is its own seeded draws."""
    report = run_demo(
        requests=16,
        concurrency=4,
        fault_rate=0.0,
        consumer_fault_rate=0.6,
        seed=2,  # its draws throttle the first write or read of messages delivered once, in either mode
        consumer=mode,
        consumer_wiring=wiring(),
        consumer_batch_size=1,
        consumer_pollers=1,  # no second poller takes a message up while its invocation runs
        consumer_clock=lambda: 0.0,  # no invocation is ever judged timed out
    )
    consumer = report["consumer"]
    assert demo_command.exit_code(report) == 1 and report["broken"]
    assert consumer[caught_by], demo.render(report)
    other = {"applied_twice": "missing", "missing": "applied_twice"}[caught_by]
    assert consumer[other] == [] and consumer["unexpected"] == []
    assert report["orphans"] == report["lost"] == report["breaches"] == []  # the producer's side kept
    assert "FAILED" in demo.render(report).splitlines()[-1]


# ---- the event source mapping and the consumer's faults, on their own -----------------------------


def test_the_partial_batch_response_is_read_as_lambda_reads_it() -> None:
    assert _failures({"batchItemFailures": []}, {"a"}) == set()
    assert _failures(None, {"a"}) == set()  # a function that returns nothing: the batch succeeded
    assert _failures({"batchItemFailures": [{"itemIdentifier": "a"}]}, {"a", "b"}) == {"a"}
    assert _failures({"batchItemFailures": [{"itemIdentifier": "z"}]}, {"a"}) is None  # not in the batch
    assert _failures({"batchItemFailures": "a"}, {"a"}) is None
    assert _failures("ok", {"a"}) is None


def test_the_call_faults_hit_only_the_first_calls_of_each_item() -> None:
    faults = CallFaults(1.0, 7)
    kinds = [faults.draw("update_item", "inbox#k") for _ in range(4)]
    assert None not in kinds[:2] and kinds[2:] == [None, None]  # every message ends
    assert {faults.draw("get_item", f"inbox#{n}") for n in range(60)} == {"crash_before", "throttled"}
    faults.quiet()
    assert faults.draw("update_item", "inbox#other") is None


class Scripted(CallFaults):
    def __init__(self, kind: str | None) -> None:
        super().__init__(0.0, 0)
        self.kind = kind

    def draw(self, operation: str, key: str) -> str | None:
        return self.kind


@pytest.mark.parametrize(("kind", "applied"), [("crash_before", False), ("crash_after", True)])
def test_a_crash_ends_the_invocation_before_or_after_the_call_landed(kind: str, applied: bool) -> None:
    made: list[dict[str, Any]] = []

    class Client:
        def update_item(self, **request: Any) -> dict[str, Any]:
            made.append(request)
            return {}

    client = FaultyClient(Client(), Scripted(kind))
    with pytest.raises(InvocationCrashed):
        client.update_item(TableName="t", Key={"pk": {"S": "inbox#k"}})
    assert bool(made) is applied


def test_a_throttle_is_refused_as_dynamodb_refuses_it_past_the_sdks_retries() -> None:
    from botocore.exceptions import ClientError

    class Client:
        def transact_write_items(self, **request: Any) -> dict[str, Any]:
            raise AssertionError("a refused call never reaches DynamoDB")

    client = FaultyClient(Client(), Scripted("throttled"))
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=[{"Update": {"Key": {"pk": {"S": "inbox#k"}}}}])
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    assert refused.value.operation_name == "TransactWriteItems"


def test_the_consumer_runs_on_the_embedded_server_only(capsys: pytest.CaptureFixture[str]) -> None:
    code = demo_command.main(["--endpoint-url", "http://127.0.0.1:9", "--consumer", "guarded"])
    assert code == 2
    assert "the demo's consumer runs on the embedded server only" in capsys.readouterr().err


def test_make_demo_runs_the_consumer_by_default_and_passes_its_mode() -> None:
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^CONSUMER \?= transactional$", makefile, re.MULTILINE)
    assert re.search(
        r"^demo: .*\n\t\$\(BIN\)/sendguard demo --consumer \$\(CONSUMER\)$", makefile, re.MULTILINE
    )
