"""What the suite drives: a team's entry points and the table and queue they use, and the Lambda
context the suite hands each invocation."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import boto3
from botocore.exceptions import BotoCoreError, ClientError

from adapters.local.sandbox import LambdaContext, environment
from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import now_ms
from adapters.runtime.config import Config
from adapters.runtime.layout import TableLayout
from adapters.runtime.outbox import Outbox, SendResult
from adapters.runtime.runner import Aws
from adapters.testing.clients import client
from statemodel.flows import Settings

Handler = Callable[[Any, Any], Any]


@attrs.frozen
class Service:
    """Two Lambda entry points and the table and queue they use.

    `submit` takes the event `FaultInjectionSuite.make_event` builds (an API Gateway event by
    default) and answers what `read_reply` reads; `reconcile` is the scheduled reconciler."""

    submit: Handler
    reconcile: Handler
    table: str
    queue_url: str
    settings: Settings  # the protocol settings the handlers were configured with
    invocation_ms: int = 10_000  # the submit function's timeout (the SAM template's), counted down
    reconcile_ms: int = 30_000  # the reconciler function's timeout
    cleanup: Callable[[], None] = lambda: None
    layout: TableLayout = attrs.field(factory=TableLayout)  # how the records sit in the table
    # An operator's re-arm of one exhausted record (`sendguard redrive --exhausted`); None: sendguard's
    # own, on `table` with `layout`.
    rearm: Callable[[str], object] | None = None
    # The submit handler can write the record in the team's own transaction (`Outbox.pending_put`,
    # then `dispatch`) when a `Request` is `transactional`: the suite draws both ways, and a run must
    # then reach the transactional outbox's table row too.
    transactional: bool = False

    @property
    def longest_lease_ms(self) -> int:
        """The longest lease any invocation can hold: its whole timeout plus the margin."""
        return max(self.invocation_ms, self.reconcile_ms) + self.settings.lease_margin_ms


def context(timeout_ms: int, function_name: str) -> LambdaContext:
    """A Lambda context counting down on the (travelling) clock the suite moves."""
    return LambdaContext(timeout_ms, function_name, clock=now_ms)


def sendguard_environment(settings: Settings, table: str, queue_url: str) -> dict[str, str]:
    """sendguard's configuration variables for a table and queue and the protocol settings."""
    return {
        "SENDGUARD_TABLE": table,
        "SENDGUARD_QUEUE_URL": queue_url,
        "SENDGUARD_MAX_ATTEMPTS": str(settings.max_attempts),
        "SENDGUARD_REDRIVE_AFTER_SECONDS": str(settings.redrive_after_ms // 1000),
        "SENDGUARD_LEASE_MARGIN_SECONDS": str(settings.lease_margin_ms // 1000),
        "SENDGUARD_AWS_MAX_ATTEMPTS": "2",
        "SENDGUARD_LOG_LEVEL": "CRITICAL",
        "SENDGUARD_METRICS": "off",
    }


_POOL: dict[Any, tuple[str, str]] = {}  # (settings, layout, handlers) -> table, queue


def _pooled(pool_key: Any, layout: TableLayout, reset: Callable[[], None]) -> tuple[str, str, bool]:
    """The table and queue of `pool_key` (made on first use, and again in a new moto session): the
    table name, the queue URL, and whether they were made just now (`reset` then ran)."""
    pooled = _POOL.get(pool_key)
    if pooled is not None and _exists(*pooled):
        return (*pooled, False)
    name = f"sg-{uuid.uuid4().hex[:12]}"
    pooled = name, ensure_resources(name, name, layout=layout)
    _POOL[pool_key] = pooled
    reset()  # the handlers' clients and configuration were for another table
    return (*pooled, True)


def sendguard_service(
    settings: Settings,
    invocation_ms: int = 10_000,
    reconcile_ms: int = 30_000,
    handlers: Any = None,
) -> Service:
    """sendguard's own entry points on an empty table and queue (moto must be active), with
    sendguard's configuration variables set for them until `cleanup`. `handlers`: an object with
    `submit`, `reconcile` and `reset` (default: `adapters.aws_lambda`, the handlers the SAM template
    names).

    The table and queue are made once per process (and per moto session) and emptied after each
    example, so that the handlers keep their clients from one example to the next, as a warm Lambda
    container does: making boto3 clients anew for each example would be most of the suite's time."""
    if handlers is None:
        from adapters import aws_lambda as handlers

    table, queue_url, _ = _pooled((settings, TableLayout(), id(handlers)), TableLayout(), handlers.reset)
    cleanup = _configured(sendguard_environment(settings, table, queue_url), table, queue_url)
    return Service(
        handlers.submit,
        handlers.reconcile,
        table,
        queue_url,
        settings,
        invocation_ms,
        reconcile_ms,
        cleanup=cleanup,
    )


def _configured(variables: Mapping[str, str], table: str, queue_url: str) -> Callable[[], None]:
    """Sets `variables` for the service's handlers; the returned cleanup restores the environment
    and empties the table and queue for the next example."""
    configured = environment(variables)
    configured.__enter__()

    def cleanup() -> None:
        configured.__exit__(None, None, None)
        empty(table, queue_url)

    return cleanup


def _exists(table: str, queue_url: str) -> bool:
    try:
        client("dynamodb").describe_table(TableName=table)
        client("sqs").get_queue_attributes(QueueUrl=queue_url)
    except ClientError:
        return False
    return True


def empty(table: str, queue_url: str) -> None:
    """Deletes every item of the table and every message of the queue."""
    dynamodb = client("dynamodb")
    schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    names = [part["AttributeName"] for part in schema]
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=table, Key={name: item[name] for name in names})
    sqs = client("sqs")  # PurgeQueue may run once a minute: receive and delete instead
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def outbox_handler(outbox: Outbox) -> Handler:
    """A team's submit handler on `outbox`, taking `hooks.outbox_event`'s plain event and answering
    the `SendResult`: `Outbox.send`, or — for a transactional request — `Outbox.pending_put` in the
    team's own `transact_write_items` (its own boto3 client, on the default session), then
    `Outbox.dispatch`; a transaction refused because the record exists (a retry: `record_exists`)
    dispatches it all the same, and `dispatch` judges the retry as `send` would."""
    team: dict[str, Any] = {}

    def submit(event: Any, context: Any) -> SendResult:
        key = event["key"] or str(uuid.uuid4())
        body, attributes, item = event["body"], event["attributes"], event["item"]
        if not event.get("transactional"):
            return outbox.send(key, body, attributes=attributes, item=item, context=context)
        put = outbox.pending_put(key, body, attributes=attributes, item=item)
        if "dynamodb" not in team:
            team["dynamodb"] = boto3.client("dynamodb")
        try:
            team["dynamodb"].transact_write_items(TransactItems=[put])
        except ClientError as exc:
            if not outbox.record_exists(exc, put):
                return SendResult(False, True, 503, key, "failed", "TransactionFailed")
        except BotoCoreError:
            return SendResult(False, True, 503, key, "failed", "TransactionFailed")
        return outbox.dispatch(put, context=context)

    return submit


_QUIET = logging.getLogger("sendguard.testing.quiet")  # what the suite's own Outbox logs to: nowhere
_QUIET.setLevel(logging.CRITICAL + 1)
_QUIET.propagate = False
# What a team's handlers run with under the suite: sendguard's log lines and EMF metrics off, so that a
# run stays readable (an Outbox made without a logger logs JSON on stdout at this level).
QUIET_ENVIRONMENT = {"SENDGUARD_LOG_LEVEL": "CRITICAL", "SENDGUARD_METRICS": "off"}

# One Outbox and its handler per pooled table, kept from one example to the next like a warm container's.
_OUTBOXES: dict[Any, tuple[Outbox, Handler]] = {}


def outbox_service(
    settings: Settings,
    layout: TableLayout,
    *,
    submit: Handler | None = None,
    reconcile: Handler | None = None,
    environment_for: Callable[[str, str], Mapping[str, str]] | None = None,
    reset: Callable[[], None] = lambda: None,
    aws: Callable[[Config], Aws] = Aws.from_config,
    transactional: bool = True,
    invocation_ms: int = 10_000,
    reconcile_ms: int = 30_000,
) -> Service:
    """A team's handler built on `Outbox` with its own `layout`, on an empty table of that layout and
    a queue (moto must be active).

    Without `submit`, the handler is `outbox_handler` on an Outbox made here with `settings` (and the
    store and queue `aws` builds), and `reconcile` that Outbox's pass. A team's own handlers, which
    make their Outbox themselves, are passed as `submit` and `reconcile`, with `environment_for(table,
    queue_url)` giving the variables they read their configuration from (set until `cleanup`), and
    `reset` to make them forget clients made for another table. `settings` must be what that Outbox
    runs with."""
    own = submit is None
    pool_key = ("outbox", settings, layout, id(submit), id(aws) if own else None)
    table, queue_url, made = _pooled(pool_key, layout, reset)
    variables = {**QUIET_ENVIRONMENT, **(environment_for(table, queue_url) if environment_for else {})}
    cleanup = _configured(variables, table, queue_url)
    rearm: Callable[[str], object] | None = None
    if own:
        if made or pool_key not in _OUTBOXES:
            config = Config(table, queue_url, settings, 2, layout=layout, metrics=False)
            made_outbox = Outbox.from_config(config, aws(config), logger=_QUIET)
            _OUTBOXES[pool_key] = made_outbox, outbox_handler(made_outbox)
        outbox, submit = _OUTBOXES[pool_key]

        def reconcile_(event: Any, context: Any) -> Any:
            return outbox.reconcile(context=context).as_dict()

        def rearm_(message_id: str) -> object:
            key = layout.key_named(message_id)
            assert key is not None, f"{message_id}: a digest names no key; the suite re-arms by key"
            return outbox.rearm(key, "the suite re-arms it", by="suite").outcome

        reconcile, rearm = reconcile_, rearm_
    assert submit is not None and reconcile is not None, "a team's own submit comes with its reconcile"
    return Service(
        submit,
        reconcile,
        table,
        queue_url,
        settings,
        invocation_ms,
        reconcile_ms,
        cleanup=cleanup,
        layout=layout,
        rearm=rearm,
        transactional=transactional,
    )
