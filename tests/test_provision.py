"""`ensure_resources` as a team's tests and local runs call it: it creates what is missing, and
refuses — in one line, before anything is created or changed — a FIFO queue's name without `.fifo`
(SQS's rule: no silent renaming) and an existing table that does not fit the layout asked for."""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from adapters import ConfigError, Inbox, Outbox, TableLayout, ensure_resources
from adapters.cli import main as cli
from adapters.ops.provision import table_definition, table_problem
from adapters.runtime.clients import make_client

PAYMENTS = TableLayout(partition_key="tenant", sort_key="paymentId")


def queue_names() -> list[str]:
    urls = make_client("sqs", 1).list_queues().get("QueueUrls", [])
    return [url.rsplit("/", 1)[1] for url in urls]


def table_names() -> list[str]:
    return list(make_client("dynamodb", 1).list_tables()["TableNames"])


# ---- the queue -----------------------------------------------------------------------------------


def test_a_fifo_queue_keeps_the_name_given(sendguard_aws: None) -> None:
    url = ensure_resources("orders", "order-events.fifo", fifo=True)
    assert url.endswith("/order-events.fifo")
    attributes = make_client("sqs", 1).get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue"])
    assert attributes["Attributes"]["FifoQueue"] == "true"


def test_a_fifo_queue_name_without_the_suffix_is_refused_and_nothing_is_created(
    sendguard_aws: None,
) -> None:
    with pytest.raises(ConfigError) as raised:
        ensure_resources("orders", "order-events", fifo=True)
    assert str(raised.value) == (
        "queue 'order-events': a FIFO queue's name must end in '.fifo' (SQS refuses any other); "
        "name it 'order-events.fifo'"
    )
    assert queue_names() == [] and table_names() == []


def test_a_standard_queue_name_with_the_suffix_is_refused(sendguard_aws: None) -> None:
    with pytest.raises(ConfigError, match=r"^queue 'order-events.fifo': only a FIFO queue's name"):
        ensure_resources("orders", "order-events.fifo")
    assert queue_names() == [] and table_names() == []


@pytest.mark.parametrize(
    ("queue", "fifo"),
    [("order events", False), ("", False), ("q" * 81, False), ("q" * 76 + ".fifo", True), ("ö.fifo", True)],
    ids=["space", "empty", "81-chars", "fifo-81-chars", "not-ascii"],
)
def test_a_queue_name_sqs_refuses_is_refused_before_anything_is_created(
    sendguard_aws: None, queue: str, fifo: bool
) -> None:
    """SQS's rule (1 to 80 letters, digits, hyphens, underscores; `.fifo` counted), checked before the
    table is made: SQS's own refusal came after it, leaving the table behind."""
    with pytest.raises(ConfigError) as raised:
        ensure_resources("orders", queue, fifo=fifo, bucket="order-bodies")
    assert str(raised.value) == (
        f"queue {queue!r}: a queue's name is 1 to 80 letters, digits, hyphens and underscores (a FIFO "
        "queue's ends in '.fifo', counted in the 80): SQS refuses any other"
    )
    assert queue_names() == [] and table_names() == []
    assert make_client("s3", 1).list_buckets()["Buckets"] == []


def test_the_longest_queue_names_sqs_takes_are_taken(sendguard_aws: None) -> None:
    assert ensure_resources("orders", "q" * 80).endswith("/" + "q" * 80)
    assert ensure_resources("orders", "Q_-9" * 18 + "abc.fifo", fifo=True).endswith(".fifo")


def test_a_bucket_name_s3_refuses_is_refused_before_anything_is_created(sendguard_aws: None) -> None:
    with pytest.raises(ConfigError, match=r"^bucket='Order_Bodies' is not an S3 bucket name"):
        ensure_resources("orders", "order-events", bucket="Order_Bodies")
    assert queue_names() == [] and table_names() == []
    assert make_client("s3", 1).list_buckets()["Buckets"] == []


# ---- the team's session --------------------------------------------------------------------------


def test_a_session_of_another_region_provisions_everything_in_that_region(sendguard_aws: None) -> None:
    """The team's Session (its region, credentials, endpoints) makes every client: the table, the
    queue and the bucket land in its region, none in the environment's."""
    home = make_client("dynamodb", 1).meta.region_name
    region = "eu-west-1" if home != "eu-west-1" else "us-west-2"
    session = boto3.Session(region_name=region)
    url = ensure_resources("payments", "payment-events", layout=PAYMENTS, bucket="bodies", session=session)
    assert url.startswith(f"https://sqs.{region}.amazonaws.com/")
    theirs = make_client("dynamodb", 1, session=session)
    assert theirs.list_tables()["TableNames"] == ["payments"]
    assert table_names() == [] and queue_names() == []
    assert [
        u.rsplit("/", 1)[1] for u in make_client("sqs", 1, session=session).list_queues()["QueueUrls"]
    ] == ["payment-events"]
    s3 = make_client("s3", 1, session=session)
    assert s3.get_bucket_location(Bucket="bodies")["LocationConstraint"] == region
    # Again with the session: its table is found, fits, and is kept; nothing lands at home.
    assert ensure_resources("payments", "payment-events", layout=PAYMENTS, session=session) == url
    assert table_names() == [] and queue_names() == []


def test_a_session_s_table_is_checked_against_the_layout(sendguard_aws: None) -> None:
    session = boto3.Session(region_name="eu-west-1")
    ensure_resources("payments", "payment-events", layout=PAYMENTS, session=session)
    ensure_resources("payments", "payment-events")  # the environment's region has no such table yet
    with pytest.raises(ConfigError, match=r"^table payments exists with partition key 'tenant'"):
        ensure_resources("payments", "payment-events", session=session)


# ---- an existing table ---------------------------------------------------------------------------


def test_an_existing_table_that_fits_is_used_as_it_is(sendguard_aws: None) -> None:
    first = ensure_resources("payments", "payment-events", layout=PAYMENTS)
    assert ensure_resources("payments", "payment-events", layout=PAYMENTS) == first


@pytest.mark.parametrize(
    ("asked", "says"),
    [
        (TableLayout(), "partition key 'message_id' and no sort key"),
        (TableLayout(partition_key="tenant"), "partition key 'tenant' and no sort key"),
        (
            TableLayout(partition_key="tenant", sort_key="createdAt"),
            "partition key 'tenant' and sort key 'createdAt'",
        ),
    ],
)
def test_an_existing_table_with_another_key_is_refused_in_one_line(
    sendguard_aws: None, asked: TableLayout, says: str
) -> None:
    ensure_resources("payments", "payment-events", layout=PAYMENTS)
    with pytest.raises(ConfigError) as raised:
        ensure_resources("payments", "payment-events", layout=asked)
    assert str(raised.value) == (
        "table payments exists with partition key 'tenant' (S) and sort key 'paymentId' (S), but the "
        f"layout asks for {says}: pass the TableLayout the table was made for, or another table name "
        "(an existing table is never changed)"
    )


def test_an_existing_table_that_does_not_fit_is_refused_before_the_bucket_or_queue_is_made(
    sendguard_aws: None,
) -> None:
    make_client("dynamodb", 1).create_table(TableName="payments", **table_definition(PAYMENTS))
    with pytest.raises(ConfigError, match=r"^table payments exists with partition key 'tenant'"):
        ensure_resources("payments", "payment-events", bucket="payment-bodies")
    assert make_client("s3", 1).list_buckets()["Buckets"] == [] and queue_names() == []


def test_an_existing_table_without_a_sort_key_is_refused_a_layout_with_one(sendguard_aws: None) -> None:
    ensure_resources("orders", "order-events", layout=TableLayout(partition_key="orderId"))
    with pytest.raises(ConfigError) as raised:
        ensure_resources("orders", "order-events", layout=TableLayout("orderId", sort_key="kind"))
    assert "exists with partition key 'orderId' (S) and no sort key" in str(raised.value)
    assert "asks for partition key 'orderId' and sort key 'kind'" in str(raised.value)
    assert "\n" not in str(raised.value)


def without_index(layout: TableLayout) -> dict[str, Any]:
    definition = table_definition(layout)
    del definition["GlobalSecondaryIndexes"]
    definition["AttributeDefinitions"] = [
        d for d in definition["AttributeDefinitions"] if not d["AttributeName"].startswith("sg_")
    ]
    return definition


def test_an_existing_table_without_the_index_is_refused(sendguard_aws: None) -> None:
    make_client("dynamodb", 1).create_table(TableName="payments", **without_index(PAYMENTS))
    with pytest.raises(ConfigError) as raised:
        ensure_resources("payments", "payment-events", layout=PAYMENTS)
    message = str(raised.value)
    assert message.startswith("table payments has no index 'attention'") and "\n" not in message
    assert message.endswith("(an existing table is never changed)")


def test_key_attributes_that_are_not_strings_are_named() -> None:
    definition = table_definition(PAYMENTS)
    definition["AttributeDefinitions"] = [
        {**d, "AttributeType": "N"} if d["AttributeName"] == "paymentId" else d
        for d in definition["AttributeDefinitions"]
    ]
    problem = table_problem("payments", definition, PAYMENTS)
    assert problem is not None and "'paymentId' (N): sendguard's keys are strings" in problem
    assert table_problem("payments", table_definition(PAYMENTS), PAYMENTS) is None


def test_sendguard_provision_says_it_in_one_line(
    sendguard_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # said before any AWS call
    assert cli.main(["provision", "--table", "orders", "--queue", "order-events", "--fifo"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "sendguard provision: queue 'order-events': a FIFO queue's name must end in '.fifo' (SQS refuses "
        "any other); name it 'order-events.fifo'\n"
    )
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert queue_names() == [] and table_names() == []


def test_sendguard_provision_makes_the_body_bucket_it_is_given(
    sendguard_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--body-bucket` (SENDGUARD_BODY_BUCKET) is one of the table options provision takes: the
    bucket is made with the table and the queue, as `ensure_resources(bucket=...)` makes it."""
    assert cli.main(["provision", "--table", "orders", "--queue", "q", "--body-bucket", "order-bodies"]) == 0
    assert [b["Name"] for b in make_client("s3", 1).list_buckets()["Buckets"]] == ["order-bodies"]
    assert cli.main(["provision", "--table", "orders", "--queue", "q", "--body-bucket", "order-bodies"]) == 0
    capsys.readouterr()


def test_sendguard_provision_refuses_records_of_another_status_attribute_before_making_anything(
    sendguard_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """What DescribeTable cannot tell (the records' status attribute) is read off a record: on an
    existing table, before the queue or the bucket is made, not after."""
    written = TableLayout(partition_key="tenant", sort_key="paymentId", status_attribute="state")
    first = ensure_resources("payments", "payment-events", layout=written)
    outbox = Outbox("payments", first, layout=written)  # a record in the index: prepared, not sent
    make_client("dynamodb", 1).transact_write_items(TransactItems=[outbox.pending_put(("acme", "p-1"), "x")])
    make_client("sqs", 1).delete_queue(QueueUrl=first)
    code = cli.main(
        [
            "provision",
            *("--table", "payments", "--queue", "payment-events", "--body-bucket", "payment-bodies"),
            *("--partition-key", "tenant", "--sort-key", "paymentId"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "set SENDGUARD_STATUS_ATTRIBUTE=state (--status-attribute)" in err
    assert queue_names() == [] and make_client("s3", 1).list_buckets()["Buckets"] == []


# ---- the documented signatures -------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def documented(name: str, call: Callable[..., Any], leave_out: tuple[str, ...] = ()) -> str:
    """How the docs write `call`'s signature: `name(a, b, *, c=None, d="x")`, the code's defaults."""
    parts: list[str] = []
    star = False
    for parameter in inspect.signature(call).parameters.values():
        if parameter.name in {"self", "cls", *leave_out}:
            continue
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        default = parameter.default
        if default is inspect.Parameter.empty:
            parts.append(parameter.name)
            continue
        value = default.value if isinstance(default, enum.Enum) else default
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        parts.append(f"{parameter.name}={shown}")
    return f"{name}({', '.join(parts)})"


def one_line(page: str) -> str:
    return re.sub(r"\s+", " ", (DOCS / page).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("page", "name", "call", "leave_out"),
    [
        ("library.md", "adapters.ops.provision.ensure_resources", ensure_resources, ()),
        ("library.md", "Outbox", Outbox, ()),
        ("library.md", "Outbox.from_env", Outbox.from_env, ()),
        ("inbox.md", "Inbox", Inbox, ("client",)),  # `client` is sendguard's own (its docstring)
    ],
)
def test_the_documented_signatures_are_the_code_s(
    page: str, name: str, call: Callable[..., Any], leave_out: tuple[str, ...]
) -> None:
    """The docs' signature line, a team's only guide, names every argument and default the code has."""
    assert f"`{documented(name, call, leave_out)}`" in one_line(page)
