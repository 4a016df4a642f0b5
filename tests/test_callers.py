"""Callers kept apart (`SENDGUARD_KEY_SCOPE=caller`), on moto: the ready API scopes each caller's
Idempotency-Keys and the messages it may read by the IAM principal that signed the request, so one
caller can neither read another's message nor probe its keys (a 409 would tell a key is taken); an
unsigned request is refused. With the default scope (`shared`) every caller shares one key space."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, APIGatewayProxyEventV2
from moto import mock_aws

from adapters import aws_lambda
from adapters.local.sandbox import LambdaContext
from adapters.ops.provision import ensure_resources
from adapters.runtime import apigw

FIXTURES = Path(__file__).parent / "fixtures"
TABLE = "callers"
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/orders/bob"


@pytest.fixture
def scoped(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with mock_aws():
        queue_url = ensure_resources(TABLE, TABLE)
        monkeypatch.setenv("SENDGUARD_TABLE", TABLE)
        monkeypatch.setenv("SENDGUARD_QUEUE_URL", queue_url)
        monkeypatch.setenv("SENDGUARD_KEY_SCOPE", "caller")
        monkeypatch.setenv("SENDGUARD_METRICS", "off")
        aws_lambda.reset()
        yield queue_url
        aws_lambda.reset()


def signed(name: str, caller: str | None, message_id: str = "") -> dict[str, Any]:
    """A fixture event, signed by `caller` as API Gateway's IAM authorization says who signed."""
    evt: dict[str, Any] = json.loads((FIXTURES / name).read_text().replace("MESSAGE_ID", message_id))
    if caller is not None and evt.get("version") == "2.0":
        evt["requestContext"]["authorizer"] = {"iam": {"userArn": caller, "accountId": "123456789012"}}
    elif caller is not None:
        evt["requestContext"].setdefault("identity", {})["userArn"] = caller
    return evt


def post(caller: str | None, key: str, body: object, version: str = "v2") -> tuple[int, dict[str, Any]]:
    evt = signed(f"apigw_{version}_post.json", caller)
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    evt["headers"] = headers
    if "multiValueHeaders" in evt:
        evt["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    evt["body"], evt["isBase64Encoded"] = json.dumps({"payload": body}), False
    result = aws_lambda.submit(evt, LambdaContext(10_000))
    return result["statusCode"], json.loads(result["body"])


def get(caller: str | None, message_id: str) -> int:
    result = aws_lambda.submit(signed("apigw_v2_get.json", caller, message_id), LambdaContext(10_000))
    status: int = result["statusCode"]
    return status


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_caller_is_read_where_powertools_reads_it(version: str) -> None:
    evt = signed(f"apigw_{version}_post.json", ALICE)
    if version == "v2":
        assert APIGatewayProxyEventV2(evt).request_context.authorizer.iam.user_arn == ALICE
    else:
        assert APIGatewayProxyEvent(evt).request_context.identity.user_arn == ALICE
    assert apigw.caller(evt) == ALICE
    assert apigw.caller(signed(f"apigw_{version}_post.json", None)) is None


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_one_caller_can_neither_read_nor_probe_anothers_messages(scoped: str, version: str) -> None:
    status, alices = post(ALICE, "order-1", {"n": 1}, version)
    assert status == 202
    status, bobs = post(BOB, "order-1", {"n": 2}, version)  # the same key, another body: no 409
    assert status == 202 and bobs["messageId"] != alices["messageId"]
    assert post(ALICE, "order-1", {"n": 1}, version)[1]["messageId"] == alices["messageId"]  # a replay
    assert post(ALICE, "order-1", {"n": 9}, version)[0] == 409  # her own key: a conflict, as ever
    assert get(ALICE, alices["messageId"]) == 200 and get(BOB, bobs["messageId"]) == 200
    assert get(BOB, alices["messageId"]) == 404 and get(ALICE, bobs["messageId"]) == 404


def test_an_unsigned_request_is_refused_and_writes_nothing(scoped: str) -> None:
    status, body = post(None, "order-1", {"n": 1})
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    assert get(None, "6c980eb8-88fb-59b3-a560-4c36f062299b") == 403
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == []


def test_the_shared_scope_is_one_key_space(scoped: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGUARD_KEY_SCOPE", "shared")
    aws_lambda.reset()
    status, alices = post(ALICE, "order-1", {"n": 1})
    assert status == 202
    assert post(BOB, "order-1", {"n": 2})[0] == 409
    assert get(BOB, alices["messageId"]) == 200
