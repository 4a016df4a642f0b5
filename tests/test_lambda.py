"""The Lambda entry points on moto: the API contract on real-shaped v1 and v2 events, every event shape
AWS sends a function behind HTTP, SYSTEM_ERROR answers, hostile input (fuzzed), structured logs, a
failing log sink, and what importing costs."""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import structlog
from aws_lambda_powertools.utilities.data_classes import (
    ALBEvent,
    APIGatewayProxyEvent,
    APIGatewayProxyEventV2,
    LambdaFunctionUrlEvent,
)
from botocore.exceptions import ClientError, ConnectTimeoutError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from adapters import aws_lambda
from adapters.local.sandbox import LambdaContext
from adapters.ops.provision import ensure_resources
from adapters.runtime import apigw, log_events
from adapters.runtime.config import Config
from adapters.runtime.logs import SafeSink, configure
from adapters.runtime.reconciler import PassSummary
from adapters.runtime.runner import Aws
from adapters.testing.clients import client
from statemodel.validation import MAX_BODY_BYTES, MAX_MESSAGE_BYTES, message_id_for_key

FIXTURES = Path(__file__).parent / "fixtures"
TABLE, QUEUE = "sendguard-api-test", "sendguard-api-test"


def context(timeout_ms: int = 10_000) -> LambdaContext:
    return LambdaContext(timeout_ms)


@pytest.fixture
def service(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with mock_aws():
        queue_url = ensure_resources(TABLE, QUEUE)
        monkeypatch.setenv("SENDGUARD_TABLE", TABLE)
        monkeypatch.setenv("SENDGUARD_QUEUE_URL", queue_url)
        aws_lambda.reset()
        yield queue_url
        aws_lambda.reset()


def event(name: str, message_id: str = "") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text().replace("MESSAGE_ID", message_id))
    return data


def call(evt: object) -> tuple[int, dict[str, Any], dict[str, str]]:
    return answer(aws_lambda.submit(evt, context()))


def answer(result: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    return result["statusCode"], json.loads(result["body"]), result["headers"]


def items() -> list[dict[str, Any]]:
    """The table's items, read with the test's own client."""
    return list(client("dynamodb").scan(TableName=TABLE)["Items"])


def queued(queue_url: str) -> list[dict[str, Any]]:
    """What is on the queue, received with the test's own client."""
    messages: list[dict[str, Any]] = (
        client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        .get("Messages", [])
    )
    return messages


class Faulty:
    """A container of the test's own, `aws_lambda.Handlers(aws=...)`: production's store and queue,
    whose clients meet the failures the test sets. Before each call of an operation (botocore's
    name: `SendMessage`, `UpdateItem`, …) a `before-call` hook runs what `failing` set for it, which
    raises or lets the call go on to the service."""

    def __init__(self) -> None:
        self._faults: dict[str, Callable[[], None]] = {}
        self.handlers = aws_lambda.Handlers(aws=self._aws)

    def _aws(self, config: Config) -> Aws:
        aws = Aws.from_config(config)
        for made in (aws.dynamodb.client, aws.sqs.client):
            made.meta.events.register("before-call", self._before_call)
        return aws

    def _before_call(self, model: Any, **_: Any) -> None:
        fault = self._faults.get(model.name)
        if fault is not None:
            fault()

    @contextlib.contextmanager
    def failing(self, **faults: Callable[[], None]) -> Iterator[None]:
        """Within the block, each call of an operation named here runs its fault first."""
        self._faults.update(faults)
        try:
            yield
        finally:
            for name in faults:
                del self._faults[name]

    def submit(self, evt: object) -> dict[str, Any]:
        return self.handlers.submit(evt, context())


def warm(submit: Callable[[object, object], dict[str, Any]] = aws_lambda.submit) -> None:
    """An invocation of `submit` (a read of no message), so that its container is warm: logging
    configured by its first invocation, before a test captures or redirects it."""
    assert submit(event("apigw_v2_get.json", "warm-up"), context())["statusCode"] == 404


def raising(error: BaseException) -> Callable[[], None]:
    """A fault: the call raises `error`."""

    def fail() -> None:
        raise error

    return fail


def on_calls(which: Callable[[int], bool], error: BaseException) -> Callable[[], None]:
    """A fault: the calls whose number (counting from 1) `which` picks raise `error`; the others go
    on to the service."""
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        if which(len(calls)):
            raise error

    return fail


def post(body: object, **headers: str) -> dict[str, Any]:
    evt = event("apigw_v2_post.json")
    evt["headers"] = {k.replace("_", "-"): v for k, v in headers.items()}
    evt["body"] = body if isinstance(body, str) else json.dumps(body)
    return evt


# ---- the contract --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_post_then_get(service: str, version: str) -> None:
    status, body, headers = call(event(f"apigw_{version}_post.json"))
    correlation = "req-7f3a.checkout:42" if version == "v2" else "req-8b4c"
    assert status == 202
    assert body == {"messageId": body["messageId"], "status": "QUEUED", "correlationId": correlation}
    assert headers["X-Correlation-Id"] == correlation
    (message,) = queued(service)
    expected = {"order": 4711, "total": "19.90"} if version == "v2" else {"order": 4712}
    assert json.loads(message["Body"]) == expected
    status, got, headers = call(event(f"apigw_{version}_get.json", body["messageId"]))
    assert status == 200
    assert got["messageId"] == body["messageId"] and got["status"] == "QUEUED" and got["attempts"] == 1
    assert got["delivery"] == "confirmed"


def test_a_replay_answers_the_same_message_and_sends_nothing(service: str) -> None:
    first = call(post({"payload": {"n": 1}}, Idempotency_Key="k-1"))
    again = call(post({"payload": {"n": 1}}, Idempotency_Key="k-1"))
    assert first[0] == again[0] == 202 and first[1]["messageId"] == again[1]["messageId"]
    assert len(queued(service)) == 1
    status, body, _ = call(post({"payload": {"n": 2}}, Idempotency_Key="k-1"))
    assert status == 409 and body["error"]["code"] == "IDEMPOTENCY_CONFLICT"


def test_a_replay_of_a_pending_message_redrives_it(service: str) -> None:
    container = Faulty()
    with container.failing(SendMessage=raising(_throttled())):
        status, body, headers = answer(container.submit(post({"payload": 1}, Idempotency_Key="k-2")))
    assert status == 503 and headers["Retry-After"] == "2" and body["error"]["code"] == "SYSTEM_ERROR"
    status, body, _ = answer(container.submit(post({"payload": 1}, Idempotency_Key="k-2")))
    assert status == 202 and len(queued(service)) == 1


def test_routes_and_methods(service: str) -> None:
    evt = event("apigw_v2_post.json")
    evt["requestContext"]["http"]["method"] = "DELETE"
    status, body, headers = call(evt)
    assert (status, body["error"]["code"], headers["Allow"]) == (405, "METHOD_NOT_ALLOWED", "POST")
    evt = event("apigw_v1_get.json", "abc")
    evt["httpMethod"] = "PUT"
    assert call(evt)[0] == 405
    evt = event("apigw_v2_get.json", "no-such-message")
    status, body, _ = call(evt)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    evt["rawPath"] = "/elsewhere"
    assert call(evt)[0] == 404
    assert call(event("apigw_v2_get.json", "bad id <x>"))[0] == 404


def test_a_key_that_names_an_item_of_the_teams_own_is_409_and_reads_as_no_message(service: str) -> None:
    """A table the team shares with its own rows: an Idempotency-Key whose item is no sendguard record
    is refused as a conflict, and nothing is written or sent; a GET of that id finds no message."""
    evt = event("apigw_v2_post.json")
    message_id = message_id_for_key(SHAPES["http_api"].key)
    row = {"message_id": {"S": message_id}, "owner": {"S": "the team"}, "total": {"N": "7"}}
    client("dynamodb").put_item(TableName=TABLE, Item=row)
    status, body, headers = call(evt)
    assert (status, body["error"]["code"]) == (409, "IDEMPOTENCY_CONFLICT") and "Retry-After" not in headers
    assert items() == [row] and queued(service) == []
    status, body, _ = call(event("apigw_v2_get.json", message_id))
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    "evt", [None, [], "GET /", 42, {}, {"foo": 1}, {"httpMethod": 5, "path": "/messages"}]
)
def test_anything_that_is_not_a_proxy_event_gets_a_400(service: str, evt: object) -> None:
    status, body, headers = call(evt)
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR"
    assert body["error"]["correlationId"] == headers["X-Correlation-Id"]


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        ("{not json", "VALIDATION_ERROR", 400),
        (json.dumps({"payload": "x" * (MAX_MESSAGE_BYTES + 1)}), "PAYLOAD_TOO_LARGE", 413),
        (json.dumps({"nope": 1}), "VALIDATION_ERROR", 400),
    ],
)
def test_invalid_input_writes_nothing(service: str, body: str, code: str, status: int) -> None:
    got, answer, _ = call(post(body))
    assert (got, answer["error"]["code"]) == (status, code)
    assert items() == [] and queued(service) == []


def test_a_malformed_idempotency_key_is_refused(service: str) -> None:
    status, body, _ = call(post({"payload": 1}, Idempotency_Key="has spaces"))
    assert status == 400 and "Idempotency-Key" in body["error"]["message"]
    assert items() == []


def test_base64_bodies_are_decoded_and_bad_base64_refused(service: str) -> None:
    evt = post("")
    evt["body"], evt["isBase64Encoded"] = base64.b64encode(b'{"payload": "\xc3\xa9"}').decode(), True
    assert call(evt)[0] == 202
    evt["body"] = "%%%not base64"
    assert call(evt)[0] == 400


@pytest.mark.parametrize("given", ["<script>alert(1)</script>", "x" * 129, "a\nb", "é", ""])
def test_a_hostile_correlation_id_is_never_echoed(service: str, given: str) -> None:
    result = aws_lambda.submit(post({"payload": 1}, X_Correlation_Id=given), context())
    generated = result["headers"]["X-Correlation-Id"]
    assert generated != given and len(generated) == 36
    assert json.loads(result["body"])["correlationId"] == generated
    if given:  # the raw value appears nowhere in what the client gets back
        assert given not in result["body"] and given not in result["headers"].values()


# ---- every event shape ----------------------------------------------------------------------------


@attrs.frozen
class Shape:
    """One shape of event AWS sends a function behind HTTP: its fixture (a POST /messages as AWS
    documents the event), the Powertools class that reads it, the Idempotency-Key and X-Correlation-Id
    the fixture carries, and the field that carries the answer's headers."""

    fixture: str
    powertools: type[APIGatewayProxyEvent | APIGatewayProxyEventV2 | ALBEvent]
    key: str
    correlation: str
    alb: bool = False
    headers_field: str = "headers"


SHAPES = {
    "rest_api": Shape("apigw_v1_post.json", APIGatewayProxyEvent, "order-4712-v1", "req-8b4c"),
    "http_api": Shape("apigw_v2_post.json", APIGatewayProxyEventV2, "order-4711-v1", "req-7f3a.checkout:42"),
    "function_url": Shape("function_url_post.json", LambdaFunctionUrlEvent, "order-4713-v1", "req-9c5e"),
    "alb": Shape("alb_post.json", ALBEvent, "order-4714-v1", "req-ad6f", alb=True),
    "alb_multi_value": Shape(
        "alb_multi_value_post.json",
        ALBEvent,
        "order-4715-v1",
        "req-be70",
        alb=True,
        headers_field="multiValueHeaders",
    ),
}


def answer_headers(result: dict[str, Any]) -> dict[str, str]:
    """The answer's headers, from whichever field carries them; one value a name."""
    if "multiValueHeaders" in result:
        assert all(len(values) == 1 for values in result["multiValueHeaders"].values()), result
        return {name: values[0] for name, values in result["multiValueHeaders"].items()}
    headers: dict[str, str] = result["headers"]
    return headers


def answer_keys(shape: Shape) -> set[str]:
    """The fields of an answer in `shape`: an ALB needs statusDescription, and with multi-value headers
    on reads only multiValueHeaders."""
    keys = {"statusCode", "body", "isBase64Encoded", shape.headers_field}
    return (keys | {"statusDescription"}) if shape.alb else keys


@pytest.mark.parametrize("name", SHAPES)
def test_each_fixture_is_the_event_powertools_reads_and_read_request_reads_the_same(name: str) -> None:
    shape = SHAPES[name]
    evt = event(shape.fixture)
    parsed = shape.powertools(evt)
    assert (parsed.http_method, parsed.path) == ("POST", "/messages")
    multi_value = name in ("rest_api", "alb_multi_value")
    if multi_value:
        assert parsed.multi_value_headers["Idempotency-Key"] == [shape.key]
    if name == "alb_multi_value":  # no `headers` at all: where the key went unread
        assert parsed.headers == {}
    else:
        assert parsed.headers["Idempotency-Key"] == shape.key
    if shape.alb:  # the answer's header field Powertools writes for this event is the one ours must use
        assert parsed.request_context.elb_target_group_arn.startswith("arn:aws:elasticloadbalancing:")
        assert set(parsed.header_serializer().serialize({"X-Correlation-Id": "c"}, [])) == {
            shape.headers_field
        }
    assert parsed.decoded_body is not None and "payload" in json.loads(parsed.decoded_body)

    request = apigw.read_request(evt)
    assert isinstance(request, apigw.HttpRequest)
    assert (request.method, request.path) == (parsed.http_method, parsed.path)
    assert request.body == parsed.decoded_body.encode()
    seen = parsed.multi_value_headers if multi_value else parsed.headers
    assert request.headers == {k.lower(): ",".join(v) if multi_value else v for k, v in seen.items()}
    assert request.header("Idempotency-Key") == shape.key
    assert apigw.header(evt, "x-correlation-id") == shape.correlation
    assert (request.on_messages, request.message_id) == (True, None)


@pytest.mark.parametrize("name", SHAPES)
def test_a_replay_in_every_shape_is_one_message_answered_in_that_shape(service: str, name: str) -> None:
    shape = SHAPES[name]
    evt = event(shape.fixture)
    results = [aws_lambda.submit(copy.deepcopy(evt), context()) for _ in range(2)]
    for result in results:
        assert result["statusCode"] == 202 and set(result) == answer_keys(shape), result
        assert answer_headers(result)["X-Correlation-Id"] == shape.correlation
        body = json.loads(result["body"])
        assert body == {
            "messageId": message_id_for_key(shape.key),
            "status": "QUEUED",
            "correlationId": shape.correlation,
        }
        if shape.alb:
            assert result["statusDescription"] == "202 Accepted"
    (message,) = queued(service)
    request = apigw.read_request(evt)
    assert isinstance(request, apigw.HttpRequest) and request.body is not None
    assert json.loads(message["Body"]) == json.loads(request.body)["payload"]


def _repeat_the_key(name: str, evt: dict[str, Any]) -> None:
    """`evt` as AWS shows a request that sends Idempotency-Key twice (k-a, then k-b)."""
    if name == "rest_api":  # every value in multiValueHeaders, the last in headers
        evt["multiValueHeaders"]["Idempotency-Key"] = ["k-a", "k-b"]
        evt["headers"]["Idempotency-Key"] = "k-b"
    elif name == "alb_multi_value":
        evt["multiValueHeaders"]["idempotency-key"] = ["k-a", "k-b"]
    else:  # HTTP API and function URLs join the values with commas
        evt["headers"]["idempotency-key"] = "k-a,k-b"


@pytest.mark.parametrize("name", ["rest_api", "http_api", "function_url", "alb_multi_value"])
def test_a_repeated_idempotency_key_is_refused_never_one_of_its_values_picked(
    service: str, name: str
) -> None:
    """An ALB without multi-value headers passes the last value only: nothing there to see."""
    shape = SHAPES[name]
    evt = event(shape.fixture)
    _repeat_the_key(name, evt)
    result = aws_lambda.submit(evt, context())
    assert result["statusCode"] == 400 and set(result) == answer_keys(shape), result
    error = json.loads(result["body"])["error"]
    assert error["code"] == "VALIDATION_ERROR" and "Idempotency-Key" in error["message"]
    assert error["correlationId"] == answer_headers(result)["X-Correlation-Id"] == shape.correlation
    if shape.alb:
        assert result["statusDescription"] == "400 Bad Request"
    assert items() == [] and queued(service) == []


def test_other_repeated_headers_are_harmless_and_a_repeated_correlation_id_is_not_echoed(
    service: str,
) -> None:
    evt = event("alb_multi_value_post.json")
    evt["multiValueHeaders"]["accept"] = ["application/json", "*/*"]
    evt["multiValueHeaders"]["x-correlation-id"] = ["c-1", "c-2"]
    result = aws_lambda.submit(evt, context())
    assert result["statusCode"] == 202
    generated = answer_headers(result)["X-Correlation-Id"]
    assert len(generated) == 36 and json.loads(result["body"])["correlationId"] == generated
    assert len(queued(service)) == 1


def test_every_alb_answer_carries_its_status_line_and_its_headers_where_alb_reads_them(service: str) -> None:
    evt = event("alb_multi_value_post.json")
    evt["httpMethod"] = "PUT"
    result = aws_lambda.submit(evt, context())
    assert (result["statusCode"], result["statusDescription"]) == (405, "405 Method Not Allowed")
    assert result["multiValueHeaders"]["Allow"] == ["POST"] and "headers" not in result
    evt = event("alb_post.json")
    evt["path"] = "/elsewhere"
    result = aws_lambda.submit(evt, context())
    assert (result["statusCode"], result["statusDescription"]) == (404, "404 Not Found")
    assert result["headers"]["X-Correlation-Id"] == "req-ad6f" and "multiValueHeaders" not in result
    # a code without a registered reason phrase still makes a status line
    assert apigw.for_event(evt, apigw.answer(299, {}, "c"))["statusDescription"] == "299"


# ---- SYSTEM_ERROR ---------------------------------------------------------------------------------


def _throttled() -> ClientError:
    response = {"Error": {"Code": "RequestThrottled"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
    return ClientError(response, "SendMessage")  # type: ignore[arg-type]


def test_a_retryable_send_failure_is_503_with_retry_after_and_rolled_back(service: str) -> None:
    container = Faulty()
    with container.failing(SendMessage=raising(_throttled())):
        result = container.submit(post({"payload": {"secret": "s3cr3t"}}, X_Correlation_Id="c-503"))
    assert result["statusCode"] == 503 and result["headers"]["Retry-After"] == "2"
    assert json.loads(result["body"])["error"] == {
        "code": "SYSTEM_ERROR",
        "message": "the message could not be queued now; retry later with the same Idempotency-Key",
        "correlationId": "c-503",
    }
    (item,) = items()
    assert item["status"]["S"] == "PENDING"


def test_a_permanent_failure_is_500_without_retry_after(service: str) -> None:
    container = Faulty()
    denied = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "x"
    )  # type: ignore[arg-type]
    with container.failing(SendMessage=raising(denied)):
        result = container.submit(post({"payload": 1}))
    assert result["statusCode"] == 500 and "Retry-After" not in result["headers"]
    assert "AccessDenied" not in result["body"]


def test_a_failed_rollback_is_still_system_error_and_logged_for_operators(service: str) -> None:
    container = Faulty()
    warm(container.handlers.submit)
    timeout = ConnectTimeoutError(endpoint_url="x")
    with (
        container.failing(SendMessage=raising(timeout), UpdateItem=on_calls(lambda n: n > 1, timeout)),
        structlog.testing.capture_logs() as logs,
    ):
        result = container.submit(post({"payload": 1}))
    assert result["statusCode"] == 503
    (failed,) = [line for line in logs if line["event"] == "rollback_failed"]
    assert failed["log_level"] == "error"
    assert {"message_id", "attempt_id", "lease_expires_at"} <= set(failed)
    (item,) = items()
    assert item["status"]["S"] == "QUEUED" and "sg_lease_expires_at" in item  # in flight, for the reconciler


def test_an_aws_failure_on_get_is_a_clean_system_error(service: str) -> None:
    container = Faulty()
    with container.failing(GetItem=raising(ConnectTimeoutError(endpoint_url="http://x"))):
        status, body, headers = answer(container.submit(event("apigw_v2_get.json", "abc")))
    assert status == 503 and headers["Retry-After"] == "2" and body["error"]["code"] == "SYSTEM_ERROR"


def test_missing_configuration_is_a_clean_500_logged_as_json(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SENDGUARD_TABLE", raising=False)
    aws_lambda.reset()
    status, body, _ = call(post({"payload": 1}))
    assert status == 500 and body["error"]["code"] == "SYSTEM_ERROR"
    assert "SENDGUARD" not in body["error"]["message"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    answer = next(line for line in lines if line["event"] == "answer")
    assert (answer["status"], answer["code"]) == (500, "SYSTEM_ERROR")  # what the alarm's filter counts
    assert any(line["event"] == "handler_failed" and line["level"] == "error" for line in lines)
    aws_lambda.reset()


# ---- hostile input, fuzzed ------------------------------------------------------------------------

INTERNALS = ("arn:", "amazonaws.com", TABLE, "Traceback", "botocore", "Exception", "123456789012", "http")

methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "", "post", "G\x00T"])
paths = st.sampled_from(
    ["/messages", "/messages/", "/messages/abc", "/prod/messages", "/", "/messages/a/b", "", "x"]
)
texts = st.text(max_size=40)
header_values = st.one_of(texts, st.sampled_from(["<b>", "x" * 200, "k-1", "\ud800", "a\r\nInjected: 1"]))
bodies = st.one_of(
    st.none(),
    texts,
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.recursive(
        st.none() | st.booleans() | st.integers() | texts,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(texts, c, max_size=3),
        max_leaves=8,
    ).map(lambda p: json.dumps({"payload": p})),
    st.sampled_from(
        [
            '{"payload": 1, "payload": 2}',
            '{"payload": "\\ud800"}',
            '{"payload": "\\u0000 nul"}',
            '{"payload": ' + "[" * 2000 + "]" * 2000 + "}",
            json.dumps({"payload": "x" * (MAX_MESSAGE_BYTES - 2)}),
            json.dumps({"payload": "x" * (MAX_MESSAGE_BYTES + 1)}),
            " " * (MAX_BODY_BYTES + 1),
            '{"payload": 1, "attributes": {"AWS.x": "y"}}',
        ]
    ),
)


@st.composite
def proxy_events(draw: st.DrawFn) -> object:
    names = st.sampled_from(["Idempotency-Key", "x-correlation-id", "X-Other"])
    headers = draw(st.dictionaries(names, header_values))
    body = draw(bodies)
    base64_flag = draw(st.booleans())
    if base64_flag and body is not None and draw(st.booleans()):
        body = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode()
    shape = draw(st.sampled_from(["2.0", "1.0", "alb_multi_value"]))
    if shape == "2.0":
        evt: dict[str, Any] = {
            "version": "2.0",
            "rawPath": draw(paths),
            "headers": headers,
            "requestContext": {"http": {"method": draw(methods)}},
            "body": body,
            "isBase64Encoded": base64_flag,
        }
    else:
        evt = {"httpMethod": draw(methods), "path": draw(paths), "headers": headers, "body": body}
        evt["isBase64Encoded"] = base64_flag
    if shape == "alb_multi_value":  # every value of a name in a list, names repeated or not
        del evt["headers"]
        evt["requestContext"] = {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:x"}}
        evt["multiValueHeaders"] = draw(st.dictionaries(names, st.lists(header_values, max_size=3)))
    return draw(st.one_of(st.just(evt), st.sampled_from([None, [], "x", 0, {"headers": None}])))


def test_fuzzed_events_never_raise_never_5xx_never_leak_and_invalid_input_writes_nothing(
    service: str,
) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(evt=proxy_events())
    def run(evt: object) -> None:
        before = len(items())
        result = aws_lambda.submit(copy.deepcopy(evt), context())
        status = result["statusCode"]
        assert isinstance(status, int) and status < 500, result
        assert answer_headers(result)["X-Correlation-Id"]
        text = json.dumps(result)
        for internal in INTERNALS:
            assert internal not in result["body"], (internal, text[:300])
        if status >= 400:
            body = json.loads(result["body"])
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "correlationId"}
            assert len(items()) == before

    run()


# ---- logs -----------------------------------------------------------------------------------------


def test_transition_lines_carry_the_contract_fields(service: str) -> None:
    warm()
    with structlog.testing.capture_logs() as logs:
        status, body, _ = call(post({"payload": {"card": "4111-secret"}}, X_Correlation_Id="corr-logs"))
    assert status == 202
    transitions = [line for line in logs if line["event"] == "transition"]
    assert [(t["from"], t["to"]) for t in transitions] == [
        ("ABSENT", "PENDING"),
        ("PENDING", "IN_FLIGHT"),
        ("IN_FLIGHT", "CONFIRMED"),
    ]
    for line in transitions:
        assert {"message_id", "from", "to", "version", "attempt_id", "correlation_id", "cause"} <= set(line)
        assert line["message_id"] == body["messageId"] and line["correlation_id"] == "corr-logs"
    (answer,) = [line for line in logs if line["event"] == "answer"]
    assert answer["status"] == 202 and answer["route"] == "POST /messages"
    assert "4111-secret" not in repr(logs)


def test_every_line_is_an_event_of_the_log_vocabulary_with_only_its_fields(service: str) -> None:
    """A faulted sequence — a failed send whose rollback fails, a failed read, a failing index query,
    a reconciler pass — writes only events `log_events` defines, each with only its own fields."""
    container = Faulty()
    timeout = ConnectTimeoutError(endpoint_url="x")
    container.handlers.reconcile({}, context())  # the container's table check (it reads the index) passes
    with (
        structlog.testing.capture_logs() as logs,
        container.failing(UpdateItem=on_calls(lambda n: n == 2, timeout)),
    ):
        with container.failing(SendMessage=raising(_throttled())):
            container.submit(post({"payload": 1}))
        with container.failing(GetItem=raising(timeout)):
            container.submit(event("apigw_v2_get.json", "abc"))
            with container.failing(Query=raising(timeout)):
                container.handlers.reconcile({}, context())
    seen = {line["event"] for line in logs}
    assert {"answer", "aws_failure", "transition", "rollback_failed", "reconcile_pass"} <= seen
    for line in logs:
        event_ = log_events.EVENTS[line["event"]]
        extra = set(line) - event_.fields - log_events.CONTEXT_FIELDS - log_events.LINE_FIELDS - {"log_level"}
        assert extra == set(), line


def test_the_pass_summary_is_the_reconcile_pass_line() -> None:
    assert {f.name for f in attrs.fields(PassSummary)} == log_events.RECONCILE_PASS.fields


def test_logs_are_json_lines_with_bound_ids_cleared_per_invocation(service: str) -> None:
    stream = io.StringIO()
    warm()
    configure("INFO", stream)
    call(post({"payload": {"pan": "4111-secret"}}, X_Correlation_Id="first"))
    call(event("apigw_v2_get.json", "nothing-here"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert all({"event", "level", "timestamp"} <= set(line) for line in lines)
    first, second = [line for line in lines if line["event"] == "answer"]
    assert first["correlation_id"] == "first" and second["correlation_id"] != "first"
    assert "message_id" not in second or second["message_id"] == "nothing-here"
    assert "4111-secret" not in stream.getvalue()


def test_a_failing_log_sink_never_changes_an_answer(service: str) -> None:
    class Broken(io.StringIO):
        def write(self, _: str) -> int:
            raise OSError("disk full")

    warm()
    configure("INFO", Broken())
    dropped = SafeSink.dropped
    status, _, _ = call(post({"payload": 1}))
    assert status == 202 and SafeSink.dropped > dropped


def test_reconcile_handler_returns_a_json_summary(service: str) -> None:
    summary = aws_lambda.reconcile({"source": "aws.events"}, LambdaContext(30_000))
    assert json.loads(json.dumps(summary))["queries"] == 8


# ---- cold start -----------------------------------------------------------------------------------


def test_importing_the_handler_loads_no_test_or_docs_tooling() -> None:
    code = (
        "import sys, adapters.aws_lambda; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'hypothesis', 'moto', 'transitions', 'pytest', 'werkzeug', 'flask', 'cfnlint', 'responses'}); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
