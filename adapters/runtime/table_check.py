"""Does the table fit the layout? One DescribeTable, before anything trusts the layout.

A layout that does not fit its table fails late and obscurely: DynamoDB refuses every write with a
`ValidationException`, a read finds nothing, the audit finds no record it can decode. So the command
line checks the table once at its start, the reconciler function at its first invocation, and an
`Outbox` (the submit function's among them) or an `Inbox` when DynamoDB refuses a key, and
`Outbox.reconcile` when it refuses the index's query (`RefusalCheck`; never on the happy path: a cold
start pays for every request). What is checked is what
DescribeTable can tell: the key attributes' names and types, and, for whatever queries the
`attention` index (the reconciler, `sendguard status`, `sendguard redrive`), that index's keys. What
DescribeTable cannot tell — which attribute holds the status and which the body — is read off one
record the index names, when there is one (`record_problem`): a status attribute set wrong would
otherwise make every due record unreadable to the reconciler, in silence. A mismatch is a
`ConfigError` (the Outbox's: a `LayoutMismatch`) that says what to set: the variable and the
command-line flag of the same name (`adapters.runtime.config.option`), or, for a layout given in
code, the `TableLayout` argument. `ensure_resources` words an existing table's key the same way
(`table_keys`, `layout_keys`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from adapters.runtime.classify import VALIDATION_EXCEPTION, classify
from adapters.runtime.clients import DeadlineExceeded, aws_call, now_ms
from adapters.runtime.codec import ATTENTION, ATTENTION_AT, INDEX, body_at, is_record
from adapters.runtime.config import LAYOUT_NAMES, ConfigError, option
from adapters.runtime.layout import TableLayout
from adapters.runtime.log_events import CONFIG_INVALID, emit
from adapters.runtime.logs import get_logger, logging_to
from statemodel.attention import due_queries, exhausted_partitions
from statemodel.categories import consequence
from statemodel.flows import Settings
from statemodel.records import Status

TABLE = "SENDGUARD_TABLE"
NO_SUCH_INDEX = frozenset({VALIDATION_EXCEPTION, "ResourceNotFoundException"})  # a query of a missing index
# The `attention` index's key schema: (attribute, type, key type).
INDEX_KEYS = ((ATTENTION, "S", "HASH"), (ATTENTION_AT, "N", "RANGE"))


class NoSuchTable(ConfigError):
    """The table does not exist (in the client's region): what `check_table` raises for it."""


def check_table(
    client: Any,
    table: str,
    layout: TableLayout,
    *,
    index: bool,
    deadline_ms: int | None = None,
    in_code: bool = False,
) -> None:
    """Raises ConfigError when `table` does not exist, or does not fit `layout` (with `index`: or has
    no `attention` index with sendguard's keys). Other AWS failures raise as they come. `client`: a
    DynamoDB client; `deadline_ms`: when the call must be done (a Lambda's end); `in_code`: the
    layout was given as a `TableLayout` in code (the fix names its arguments), not by the variables
    and flags."""
    try:
        with aws_call(deadline_ms):
            description = client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        region = client.meta.region_name
        where = (
            "the table's name and the region"
            if in_code
            else f"{_named(TABLE)} and the region (AWS_REGION, --region)"
        )
        raise NoSuchTable(f"table {table} does not exist in {region}: check {where}") from None
    problem = layout_problem(table, description, layout, index=index, in_code=in_code)
    if problem is None and _index_problem(table, description, _types(description)) is None:
        problem = records_problem(client, table, layout, deadline_ms=deadline_ms, in_code=in_code)
    if problem is not None:
        raise ConfigError(problem)


def records_problem(
    client: Any, table: str, layout: TableLayout, *, deadline_ms: int | None = None, in_code: bool = False
) -> str | None:
    """What one record the `attention` index names says is wrong with `layout`'s status and body
    attributes (`record_problem`), for a table whose key and index fit. A record that cannot be read
    now tells nothing: None (the reconciler's own reads report their failures, pass by pass)."""
    with contextlib.suppress(ClientError, BotoCoreError, DeadlineExceeded), aws_call(deadline_ms):
        return record_problem(table, _one_record(client, table, layout), layout, in_code=in_code)
    return None


class RefusalCheck:
    """Why DynamoDB refused a request of an Outbox or an Inbox, when the table says: what
    `check_table` finds wrong with the layout (with `index`: or with the `attention` index), asked
    only once DynamoDB refused with one of `codes` (a ValidationException; for a query of the index
    also ResourceNotFoundException: DynamoDB answers a missing index with the first, moto with the
    second) — never on the happy path, so that a sending or consuming role needs no
    `dynamodb:DescribeTable`.

    A definitive answer is kept: the table described, or DescribeTable refused for good (AccessDenied:
    the optional permission is missing; then it cannot tell, and never asks again). A passing failure
    (throttled, 5xx, the network) or no time left is not kept: the next refusal asks. One thread asks
    at a time; another waits for its answer until its own deadline, no longer. The check that finds a
    problem logs it (`config_invalid`, to `logger` when given), once."""

    def __init__(
        self,
        client: Any,
        table: str,
        layout: TableLayout,
        *,
        index: bool = False,
        in_code: bool = False,
        logger: Any = None,
        codes: frozenset[str] = frozenset({VALIDATION_EXCEPTION}),
    ) -> None:
        self._client, self._table, self._layout = client, table, layout
        self._index, self._in_code, self._logger, self._codes = index, in_code, logger, codes
        self._answer: _Answer | None = None
        self._lock = threading.Lock()

    def explain(self, code: str | None, *, deadline_ms: int) -> str | None:
        """What does not fit, as a ConfigError says it, when DynamoDB's refusal (`code`, one of the
        check's `codes`) is one the table explains; None when it fits, for any other `code`, or when
        that cannot be told by `deadline_ms` (the refusal is then answered as it came)."""
        if code not in self._codes:
            return None
        found = self._answer or self._ask_once(deadline_ms)
        return None if found is None else found.problem

    def _ask_once(self, deadline_ms: int) -> _Answer | None:
        """The kept answer, or this thread's own DescribeTable's; None when there was no time to ask,
        or to wait for the thread asking, or DescribeTable failed in passing."""
        if not self._lock.acquire(timeout=max(deadline_ms - now_ms(), 0) / 1000):
            return None  # another thread is still asking: this call's time is up
        try:
            if self._answer is None:  # not answered while this thread waited
                self._answer = self._ask(deadline_ms)
            return self._answer
        finally:
            self._lock.release()

    def _ask(self, deadline_ms: int) -> _Answer | None:
        client = self._client
        try:
            check_table(
                client,
                self._table,
                self._layout,
                index=self._index,
                deadline_ms=deadline_ms,
                in_code=self._in_code,
            )
        except ConfigError as exc:
            with logging_to(self._logger):
                emit(get_logger(), CONFIG_INVALID, problem=str(exc))
            return _Answer(str(exc))
        except (ClientError, BotoCoreError, DeadlineExceeded) as exc:
            failed = classify(exc, client.meta.service_model.operation_model("DescribeTable"))
            if consequence(failed.category).retry_after:
                return None  # in passing (throttled, 5xx, the network, no time left): asked again
            # refused for good (AccessDenied): it cannot tell, and is not asked again
        return _Answer(None)


@attrs.frozen
class _Answer:
    problem: str | None  # what does not fit, as ConfigError says it; None: it fits, or cannot tell


def _types(description: Mapping[str, Any]) -> dict[str, str]:
    return {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])}


def _one_record(client: Any, table: str, layout: TableLayout) -> Mapping[str, Any] | None:
    """One record the `attention` index names (the first partition that has one), read whole; None
    when the index is empty. At most one Limit-1 query a partition, and one GetItem."""
    shards = layout.shards
    partitions = [p for p, _ in due_queries(0, Settings(), shards)] + exhausted_partitions(shards)
    for partition in partitions:
        page = client.query(
            TableName=table,
            IndexName=INDEX,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": ATTENTION},
            ExpressionAttributeValues={":p": {"S": partition}},
            Limit=1,
        )
        for entry in page.get("Items", []):
            key = {name: entry[name] for name in layout.key_names if name in entry}
            item: Mapping[str, Any] | None = client.get_item(
                TableName=table, Key=key, ConsistentRead=True
            ).get("Item")
            return item
    return None


def record_problem(
    table: str, item: Mapping[str, Any] | None, layout: TableLayout, *, in_code: bool = False
) -> str | None:
    """What a record of the table says is wrong with `layout`'s status and body attributes (their
    values are sendguard's alone); None when it fits, or when there is no record to tell."""
    if item is None or not is_record(item):
        return None
    if layout.status_attribute not in item:
        named = [n for n, v in item.items() if v.get("S") in {s.value for s in Status} and not layout.owns(n)]
        fix = (
            _setting("status_attribute", named[0], in_code)
            if named
            else f"{_setting('status_attribute', None, in_code)} to the status attribute"
        )
        missing = f"no {layout.status_attribute!r} attribute for their status"
        return f"table {table}'s records hold {missing}: set {fix}{_where(in_code)}"
    if layout.body_attribute not in item and body_at(item) is None:
        return (
            f"table {table}'s records hold no {layout.body_attribute!r} attribute for their body: set "
            f"{_setting('body_attribute', None, in_code)} to the attribute that holds it{_where(in_code)}"
        )
    return None


def layout_problem(
    table: str, description: Mapping[str, Any], layout: TableLayout, *, index: bool, in_code: bool = False
) -> str | None:
    """What is wrong with `layout` on the table DescribeTable described (its `Table`), as the fix to
    make; None when it fits."""
    types = _types(description)
    partition, sort = _keys(description)
    settings = []
    if partition != layout.partition_key:
        settings.append(_setting("partition_key", partition, in_code))
    if sort is not None and sort != layout.sort_key:
        settings.append(_setting("sort_key", sort, in_code))
    fixes = [f"set {' and '.join(settings)}"] if settings else []
    if sort is None and layout.sort_key is not None:
        fixes.append(f"leave {_setting('sort_key', None, in_code)} unset")
    if fixes:
        has, says = table_keys(description), layout_keys(layout)
        return f"table {table} has {has}; the layout says {says}: {', and '.join(fixes)}{_where(in_code)}"
    not_strings = key_types_problem(table, description, layout)
    if not_strings is not None:
        return f"{not_strings}; use a table whose key attributes are of type S"
    return _index_problem(table, description, types) if index else None


def _keys(description: Mapping[str, Any]) -> tuple[str, str | None]:
    """The table's (partition key, sort key or None), as DescribeTable says."""
    keys = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
    return keys.get("HASH", "?"), keys.get("RANGE")


def keys_differ(description: Mapping[str, Any], layout: TableLayout) -> bool:
    """Whether the table's key attributes are other than the layout's (names, or a sort key more or less)."""
    return _keys(description) != (layout.partition_key, layout.sort_key)


def table_keys(description: Mapping[str, Any]) -> str:
    """The table's key, in words: `partition key 'tenant' (S) and sort key 'paymentId' (S)`."""
    types = _types(description)
    partition, sort = _keys(description)
    return f"partition key {partition!r} ({types.get(partition, '?')}) and " + (
        "no sort key" if sort is None else f"sort key {sort!r} ({types.get(sort, '?')})"
    )


def layout_keys(layout: TableLayout) -> str:
    """The layout's key, in words: `partition key 'tenant' and sort key 'paymentId'`."""
    return f"partition key {layout.partition_key!r} and " + (
        "no sort key" if layout.sort_key is None else f"sort key {layout.sort_key!r}"
    )


def key_types_problem(table: str, description: Mapping[str, Any], layout: TableLayout) -> str | None:
    """The layout's key attributes the table types other than as strings, in words; None when all are S."""
    types = _types(description)
    not_strings = [f"{n!r} ({types.get(n, '?')})" for n in layout.key_names if types.get(n) != "S"]
    if not not_strings:
        return None
    return f"table {table} has key attribute {' and '.join(not_strings)}: sendguard's keys are strings"


def index_problem(table: str, description: Mapping[str, Any]) -> str | None:
    """What is wrong with the table's `attention` index (missing, other keys); None when it fits."""
    return _index_problem(table, description, _types(description))


def _index_problem(table: str, description: Mapping[str, Any], types: Mapping[str, str]) -> str | None:
    wanted = " and ".join(f"{name} ({kind}, {key_type})" for name, kind, key_type in INDEX_KEYS)
    fix = f'keys {wanted} (docs/library.md, "What the reconciler needs on an existing table")'
    found = next((i for i in description.get("GlobalSecondaryIndexes", []) if i["IndexName"] == INDEX), None)
    if found is None:
        users = "the reconciler, status and redrive query"
        new = "ensure_resources and `sendguard provision` create a table with it"
        return f"table {table} has no index {INDEX!r}, which {users}: add it, {fix}; {new}"
    schema = tuple(
        (k["AttributeName"], types.get(k["AttributeName"], "?"), k["KeyType"]) for k in found["KeySchema"]
    )
    if schema != INDEX_KEYS:
        has = " and ".join(f"{name} ({kind}, {key_type})" for name, kind, key_type in schema)
        return f"table {table}'s index {INDEX!r} has keys {has}: sendguard's index needs {fix}"
    return None


def _named(variable: str) -> str:
    return f"{variable} ({option(variable)})"


def _setting(field: str, value: str | None, in_code: bool) -> str:
    """A layout field as its reader sets it: the variable and its flag (`SENDGUARD_SORT_KEY=kind
    (--sort-key)`), or in code the `TableLayout` argument (`sort_key='kind'`); without a value, its name."""
    if in_code:
        return field if value is None else f"{field}={value!r}"
    variable = LAYOUT_NAMES[field]
    return _named(variable) if value is None else f"{variable}={value} ({option(variable)})"


def _where(in_code: bool) -> str:
    return " in the TableLayout" if in_code else ""
