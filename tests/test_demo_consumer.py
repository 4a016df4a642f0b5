"""The ready consumer (`adapters.aws_lambda_consumer.consume`, deploy/template.yaml's ConsumerFunction)
on moto: each mode applies a message's effect once, a duplicate delivery applies nothing more, and
its configuration refuses what would break its promise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from adapters.aws_lambda_consumer import ConsumerConfig, ConsumerHandlers, effect_key
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
