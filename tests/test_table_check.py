"""The layout against the table: a payments team's table keyed (tenant, paymentId), met by the command
line and the Lambda handlers with and without the layout. Without it, every command and the
reconciler refuse in one line that names the variable and the flag to set — never a KeyError, a
traceback or an audit's VIOLATION — and the submit function pays no request for the check on its
happy path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.handlers import BUILTIN_HANDLERS
from moto import mock_aws

from adapters import aws_lambda
from adapters.cli import main as cli
from adapters.local.sandbox import LambdaContext
from adapters.ops.provision import ensure_resources, table_definition
from adapters.runtime.classify import VALIDATION_EXCEPTION
from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.config import ConfigError
from adapters.runtime.layout import TableLayout
from adapters.runtime.outbox import Outbox
from adapters.runtime.runner import Aws
from adapters.runtime.snapstart import Restore
from adapters.runtime.table_check import (
    NO_SUCH_INDEX,
    RefusalCheck,
    check_table,
    layout_problem,
    record_problem,
)

TABLE = "payments"
PAYMENTS = TableLayout(partition_key="tenant", sort_key="paymentId")
LAYOUT_FLAGS = ["--partition-key", "tenant", "--sort-key", "paymentId"]
WHAT_TO_SET = (
    "set SENDGUARD_PARTITION_KEY=tenant (--partition-key) and SENDGUARD_SORT_KEY=paymentId (--sort-key)"
)
TABLE_COMMANDS = ["status", "audit", "redrive", "reconcile", "provision"]


@pytest.fixture
def payments(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The team's table and a queue; the environment names them and no layout."""
    with mock_aws():
        queue_url = ensure_resources(TABLE, "payment-events", layout=PAYMENTS)
        monkeypatch.setenv("SENDGUARD_TABLE", TABLE)
        monkeypatch.setenv("SENDGUARD_QUEUE_URL", queue_url)
        monkeypatch.setenv("SENDGUARD_METRICS", "off")
        aws_lambda.reset()
        yield queue_url
        aws_lambda.reset()


@pytest.fixture
def calls() -> Iterator[list[str]]:
    """The AWS operations called by clients made from now on (a Session copies botocore's built-in
    handlers when it is made, and the runtime's makes a new one when they change)."""
    seen: list[str] = []

    def count(model: Any, **_: Any) -> None:
        seen.append(model.name)

    handler = ("before-call", count)
    BUILTIN_HANDLERS.append(handler)
    aws_lambda.reset()
    try:
        yield seen
    finally:
        BUILTIN_HANDLERS.remove(handler)
        aws_lambda.reset()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def command(name: str, queue_url: str) -> list[str]:
    """`name` on the payments table, with what else it needs."""
    extra = {
        "redrive": ["--exhausted"],
        "reconcile": ["--queue-url", queue_url],
        "provision": ["--queue", "q"],
    }
    return [name, "--table", TABLE, *extra.get(name, [])]


# ---- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", TABLE_COMMANDS)
def test_without_the_layout_every_command_says_what_to_set_in_one_line(
    payments: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(command(name, payments), capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"sendguard {name}: table payments has partition key 'tenant' (S)")
    assert err.rstrip().endswith(WHAT_TO_SET)


@pytest.mark.parametrize("name", TABLE_COMMANDS)
def test_every_table_command_takes_the_layout_as_flags(
    payments: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*command(name, payments), *LAYOUT_FLAGS], capsys)
    assert code == 0, err
    assert "Traceback" not in err and "VIOLATION" not in out


def test_status_works_with_the_flags(payments: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["status", "--table", TABLE, *LAYOUT_FLAGS], capsys)
    assert code == 0 and out.startswith("backlog of payments")


def test_status_works_with_the_variables(
    payments: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDGUARD_PARTITION_KEY", "tenant")
    monkeypatch.setenv("SENDGUARD_SORT_KEY", "paymentId")
    code, out, _ = run(["status"], capsys)  # the table from SENDGUARD_TABLE too
    assert code == 0 and out.startswith("backlog of payments")


def test_a_flag_wins_over_its_variable(
    payments: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDGUARD_PARTITION_KEY", "orderId")
    monkeypatch.setenv("SENDGUARD_SORT_KEY", "paymentId")
    code, _, err = run(["status", "--table", TABLE], capsys)
    assert code == 2 and "set SENDGUARD_PARTITION_KEY=tenant (--partition-key)" in err
    assert "SENDGUARD_SORT_KEY=" not in err  # the sort key fits
    code, out, _ = run(["status", "--table", TABLE, "--partition-key", "tenant"], capsys)
    assert code == 0 and out.startswith("backlog of payments")


def test_audit_on_a_mismatched_layout_never_judges_a_record(
    payments: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert Outbox(TABLE, payments, layout=PAYMENTS).send("payment-1", '{"amount": 5}').accepted
    code, out, err = run(["audit", "--table", TABLE], capsys)
    assert code == 2 and "VIOLATION" not in out + err and WHAT_TO_SET in err
    code, out, _ = run(["audit", "--table", TABLE, *LAYOUT_FLAGS], capsys)
    assert code == 0 and "VIOLATION" not in out and out.startswith("records: 1")


@pytest.mark.parametrize("name", TABLE_COMMANDS)
def test_help_shows_every_layout_flag(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    out = capsys.readouterr().out
    flags = ["--table", "--partition-key", "--sort-key", "--sort-key-value", "--status-attribute"]
    flags += ["--body-attribute", "--index-shards", "--index-shards-read", "--region", "--endpoint-url"]
    assert [flag for flag in flags if f"{flag} " not in out] == []


# ---- the check itself ----------------------------------------------------------------------------


def described(layout: TableLayout, **changes: Any) -> dict[str, Any]:
    """What DescribeTable says of a table made for `layout` (CreateTable's parameters, as moto and
    DynamoDB echo them), with `changes`."""
    return {**table_definition(layout), **changes}


def test_a_table_that_fits_passes() -> None:
    assert layout_problem(TABLE, described(PAYMENTS), PAYMENTS, index=True) is None


def test_a_sort_key_the_table_does_not_have_is_to_be_left_unset() -> None:
    problem = layout_problem(TABLE, described(TableLayout("tenant")), PAYMENTS, index=True)
    assert problem == (
        "table payments has partition key 'tenant' (S) and no sort key; the layout says partition key "
        "'tenant' and sort key 'paymentId': leave SENDGUARD_SORT_KEY (--sort-key) unset"
    )


def test_key_attributes_must_be_strings() -> None:
    table = described(PAYMENTS)
    table["AttributeDefinitions"] = [
        {**d, "AttributeType": "N"} if d["AttributeName"] == "paymentId" else d
        for d in table["AttributeDefinitions"]
    ]
    problem = layout_problem(TABLE, table, PAYMENTS, index=False)
    assert problem is not None and "'paymentId' (N)" in problem and "of type S" in problem


def test_the_index_is_required_only_where_it_is_read() -> None:
    table = described(PAYMENTS, GlobalSecondaryIndexes=[])
    assert layout_problem(TABLE, table, PAYMENTS, index=False) is None
    problem = layout_problem(TABLE, table, PAYMENTS, index=True)
    assert problem is not None and problem.startswith("table payments has no index 'attention'")
    assert "sg_attention (S, HASH) and sg_attention_at (N, RANGE)" in problem
    assert problem.endswith("; ensure_resources and `sendguard provision` create a table with it")


def test_an_index_with_other_keys_is_refused() -> None:
    table = described(PAYMENTS)
    (index,) = table["GlobalSecondaryIndexes"]
    swapped = [
        {**key, "KeyType": "RANGE" if key["KeyType"] == "HASH" else "HASH"} for key in index["KeySchema"]
    ]
    table["GlobalSecondaryIndexes"] = [{**index, "KeySchema": swapped[::-1]}]
    problem = layout_problem(TABLE, table, PAYMENTS, index=True)
    assert problem is not None and "index 'attention' has keys sg_attention_at (N, HASH)" in problem


def test_a_missing_table_is_named_with_its_region(aws_env: None) -> None:
    with mock_aws(), pytest.raises(ConfigError) as raised:
        check_table(make_client("dynamodb", 1), "nope", PAYMENTS, index=False)
    assert str(raised.value).startswith(
        "table nope does not exist in us-east-1: check SENDGUARD_TABLE (--table)"
    )


def test_the_check_reads_the_live_table(payments: str) -> None:
    check_table(make_client("dynamodb", 1), TABLE, PAYMENTS, index=True)
    with pytest.raises(ConfigError, match=r"SENDGUARD_PARTITION_KEY=tenant \(--partition-key\)"):
        check_table(make_client("dynamodb", 1), TABLE, TableLayout(), index=True)


# ---- the Lambda handlers -------------------------------------------------------------------------


def post(key: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "headers": {"idempotency-key": key},
        "requestContext": {"http": {"method": "POST", "path": "/messages"}},
        "body": json.dumps({"payload": {"amount": 5}}),
        "isBase64Encoded": False,
    }


def get(message_id: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": f"/messages/{message_id}"}},
        "isBase64Encoded": False,
    }


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON lines the handlers wrote (they configure their logs to stdout)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_the_reconciler_on_a_mismatched_layout_fails_naming_the_variable_and_writes_nothing(
    payments: str, calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        aws_lambda.reconcile({}, LambdaContext(30_000))
    assert WHAT_TO_SET in str(raised.value)
    (line,) = log_lines(capsys)  # one line, and no traceback in it
    assert (line["event"], line["level"], line["problem"]) == ("config_invalid", "error", str(raised.value))
    assert calls == ["DescribeTable"]  # no query, no write


def test_the_reconciler_checks_once_per_container(
    payments: str, monkeypatch: pytest.MonkeyPatch, calls: list[str]
) -> None:
    monkeypatch.setenv("SENDGUARD_PARTITION_KEY", "tenant")
    monkeypatch.setenv("SENDGUARD_SORT_KEY", "paymentId")
    aws_lambda.reconcile({}, LambdaContext(30_000))
    aws_lambda.reconcile({}, LambdaContext(30_000))
    assert calls.count("DescribeTable") == 1 and "Query" in calls


def test_the_submit_happy_path_makes_no_describe_table_call(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        monkeypatch.setenv("SENDGUARD_TABLE", "sendguard")
        monkeypatch.setenv("SENDGUARD_QUEUE_URL", ensure_resources("sendguard", "sendguard"))
        seen: list[str] = []
        handler = ("before-call", lambda model, **_: seen.append(model.name))
        BUILTIN_HANDLERS.append(handler)
        aws_lambda.reset()  # a cold start: clients made with the counter in
        try:
            result = aws_lambda.submit(post("k-1"), LambdaContext(10_000))
        finally:
            BUILTIN_HANDLERS.remove(handler)
            aws_lambda.reset()
    assert result["statusCode"] == 202
    assert "UpdateItem" in seen and "SendMessage" in seen and "DescribeTable" not in seen


def test_a_refused_key_at_submit_logs_what_to_set_once(
    payments: str, calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    first = aws_lambda.submit(post("k-1"), LambdaContext(10_000))
    second = aws_lambda.submit(post("k-2"), LambdaContext(10_000))
    assert first["statusCode"] == second["statusCode"] == 500
    problems = [line for line in log_lines(capsys) if line["event"] == "config_invalid"]
    assert len(problems) == 1 and WHAT_TO_SET in problems[0]["problem"]
    assert calls.count("DescribeTable") == 1
    assert make_client("dynamodb", 1).scan(TableName=TABLE)["Count"] == 0


@pytest.mark.parametrize("attribute", ["status", "body"])
def test_a_status_or_body_attribute_the_records_do_not_hold_is_named_at_start(
    payments: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], attribute: str
) -> None:
    """DescribeTable cannot tell these; a record the index names can. Without the check every due
    record would be unreadable to the reconciler, and it would send nothing, in silence."""
    written = TableLayout(
        partition_key="tenant", sort_key="paymentId", status_attribute="state", body_attribute="doc"
    )
    boto3_client = make_client("dynamodb", 2)
    outbox = Outbox(TABLE, payments, layout=written)
    boto3_client.transact_write_items(TransactItems=[outbox.pending_put(("acme", "p-1"), "x")])
    flags = [*LAYOUT_FLAGS, "--status-attribute", "state"] if attribute == "body" else LAYOUT_FLAGS
    code, out, err = run(["status", "--table", TABLE, *flags], capsys)
    expected = {
        "status": "hold no 'status' attribute for their status: set SENDGUARD_STATUS_ATTRIBUTE=state "
        "(--status-attribute)",
        "body": "hold no 'payload' attribute for their body: set SENDGUARD_BODY_ATTRIBUTE (--body-attribute)",
    }[attribute]
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and out == ""
    monkeypatch.setenv("SENDGUARD_PARTITION_KEY", "tenant")
    monkeypatch.setenv("SENDGUARD_SORT_KEY", "paymentId")
    if attribute == "body":
        monkeypatch.setenv("SENDGUARD_STATUS_ATTRIBUTE", "state")
    with pytest.raises(ConfigError, match=expected.split(":")[0]):
        aws_lambda.reconcile({}, LambdaContext(30_000))
    monkeypatch.setenv("SENDGUARD_STATUS_ATTRIBUTE", "state")
    monkeypatch.setenv("SENDGUARD_BODY_ATTRIBUTE", "doc")
    assert run(["status", "--table", TABLE], capsys)[0] == 0  # told both, it works


def test_a_refused_key_at_get_logs_what_to_set_and_answers_system_error(
    payments: str, calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    event = {
        "version": "2.0",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": "/messages/k-1"}},
        "isBase64Encoded": False,
    }
    answers = [aws_lambda.submit(event, LambdaContext(10_000)) for _ in range(2)]
    assert [answer["statusCode"] for answer in answers] == [500, 500]
    assert all(json.loads(answer["body"])["error"]["code"] == "SYSTEM_ERROR" for answer in answers)
    lines = log_lines(capsys)
    assert "handler_failed" not in [line["event"] for line in lines]  # no traceback: what to set
    problems = [line for line in lines if line["event"] == "config_invalid"]
    assert len(problems) == 1 and WHAT_TO_SET in problems[0]["problem"]  # once a container, as at POST
    assert calls.count("DescribeTable") == 1


def test_for_a_layout_given_in_code_the_fix_names_the_table_layout_s_arguments() -> None:
    problem = layout_problem(TABLE, described(PAYMENTS), TableLayout("paymentId"), index=False, in_code=True)
    assert problem == (
        "table payments has partition key 'tenant' (S) and sort key 'paymentId' (S); the layout says "
        "partition key 'paymentId' and no sort key: set partition_key='tenant' and sort_key='paymentId' "
        "in the TableLayout"
    )
    problem = layout_problem(TABLE, described(TableLayout("tenant")), PAYMENTS, index=False, in_code=True)
    assert problem is not None and problem.endswith(": leave sort_key unset in the TableLayout")
    record = {
        "tenant": {"S": "acme"},
        "paymentId": {"S": "p-1"},
        "state": {"S": "QUEUED"},
        "sg_version": {"N": "1"},
    }
    problem = record_problem(TABLE, record, PAYMENTS, in_code=True)
    assert problem is not None and problem.endswith("set status_attribute='state' in the TableLayout")


def test_a_container_asks_for_the_table_once_whichever_route_was_refused_first(
    payments: str, calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    get = {
        "version": "2.0",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": "/messages/k-1"}},
        "isBase64Encoded": False,
    }
    for event in (post("k-1"), get, post("k-2"), get):
        assert aws_lambda.submit(event, LambdaContext(10_000))["statusCode"] == 500
    assert calls.count("DescribeTable") == 1
    problems = [line["problem"] for line in log_lines(capsys) if line["event"] == "config_invalid"]
    assert len(problems) == 1 and WHAT_TO_SET in problems[0]


@pytest.mark.parametrize("route", ["POST", "GET"])
def test_a_throttled_describe_table_is_asked_again_at_the_next_refused_request(
    payments: str, capsys: pytest.CaptureFixture[str], route: str
) -> None:
    """The container's check is the Outbox's: a DescribeTable that failed in passing told nothing,
    and the next refused request asks again (and logs what to set, once)."""
    describes: list[str] = []
    throttled = [True]

    def describe(model: Any, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if model.name != "DescribeTable":
            return None
        describes.append(model.name)
        if not throttled[0]:
            return None
        error = {"Code": "ThrottlingException", "Message": "Rate exceeded (answered by the test)"}
        return _Status(400), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    session = boto3.Session()
    session.events.register("before-call", describe)
    handlers = aws_lambda.Handlers(aws=lambda config: Aws.from_config(config, session), restore=Restore())
    event = post if route == "POST" else get
    assert handlers.submit(event("k-1"), LambdaContext(10_000))["statusCode"] == 500
    assert [line for line in log_lines(capsys) if line["event"] == "config_invalid"] == []
    throttled[0] = False
    for key in ("k-2", "k-3"):
        assert handlers.submit(event(key), LambdaContext(10_000))["statusCode"] == 500
    assert len(describes) == 2  # the throttled one, then one that answered: kept
    problems = [line["problem"] for line in log_lines(capsys) if line["event"] == "config_invalid"]
    assert len(problems) == 1 and WHAT_TO_SET in problems[0]
    assert make_client("dynamodb", 1).scan(TableName=TABLE)["Count"] == 0


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


# ---- the check of a refusal (Outbox, Inbox) ------------------------------------------------------


class Describing:
    """A DynamoDB client whose DescribeTable answers `table` (counted in `described`); the index
    holds no record."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table, self.described = table, 0
        self.meta = make_client("dynamodb", 1).meta

    def describe_table(self, TableName: str) -> dict[str, Any]:
        self.described += 1
        return {"Table": {"TableName": TableName, **self.table}}

    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}


def test_a_refusal_check_asks_for_its_codes_alone_and_keeps_its_answer(aws_env: None) -> None:
    client = Describing(described(TableLayout()))  # a table keyed message_id alone
    check = RefusalCheck(client, TABLE, PAYMENTS, in_code=True)
    later = now_ms() + 60_000
    for code in (None, "ConditionalCheckFailedException", "ResourceNotFoundException"):
        assert check.explain(code, deadline_ms=later) is None
    assert client.described == 0  # nothing it explains: not asked
    for _ in (1, 2):
        problem = check.explain(VALIDATION_EXCEPTION, deadline_ms=later)
        assert problem is not None and problem.startswith("table payments has partition key 'message_id' (S)")
    assert client.described == 1


def test_a_refusal_check_of_the_index_explains_a_query_of_a_missing_index(aws_env: None) -> None:
    """DynamoDB refuses a query of a missing index with ValidationException, moto with
    ResourceNotFoundException: the index's check takes both."""
    client = Describing(described(PAYMENTS, GlobalSecondaryIndexes=[]))
    for code in sorted(NO_SUCH_INDEX):
        check = RefusalCheck(client, TABLE, PAYMENTS, index=True, codes=NO_SUCH_INDEX)
        problem = check.explain(code, deadline_ms=now_ms() + 60_000)
        assert problem is not None and problem.startswith("table payments has no index 'attention'")
    assert (
        RefusalCheck(client, TABLE, PAYMENTS).explain(VALIDATION_EXCEPTION, deadline_ms=now_ms() + 60_000)
        is None
    )
