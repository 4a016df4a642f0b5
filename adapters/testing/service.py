"""What the suite drives: a team's entry points and the table and queue they use, and the Lambda
context the suite hands each invocation."""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import boto3
from botocore.exceptions import BotoCoreError, ClientError

from adapters.local.sandbox import LambdaContext, environment
from adapters.ops.provision import ensure_queue, ensure_table
from adapters.runtime.clients import now_ms
from adapters.runtime.config import Config, layout_from_env, settings_from_env
from adapters.runtime.layout import TableLayout
from adapters.runtime.outbox import Outbox, OutboxError, SendResult
from adapters.runtime.runner import Aws
from adapters.testing.clients import client, table_items
from statemodel.flows import Settings

Handler = Callable[[Any, Any], Any]


@attrs.frozen
class Service:
    """Two Lambda entry points and the table and queues they use.

    `submit` takes the event `FaultInjectionSuite.make_event` builds (an API Gateway event by
    default) and answers what `read_reply` reads; `reconcile` is the scheduled reconciler."""

    submit: Handler
    reconcile: Handler
    table: str
    queue_url: str  # the (first) queue
    settings: Settings  # the protocol settings the handlers run with
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
    # The team's queues by the names it gave them (`outbox_service(queues=...)`), `queue_url` first;
    # empty: `queue_url` alone. Every check holds per queue.
    queues: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def longest_lease_ms(self) -> int:
        """The longest lease any invocation can hold: its whole timeout plus the margin."""
        return max(self.invocation_ms, self.reconcile_ms) + self.settings.lease_margin_ms

    @property
    def queue_urls(self) -> tuple[str, ...]:
        return tuple(self.queues.values()) or (self.queue_url,)

    @property
    def fifo(self) -> bool:
        """Whether the queues are FIFO queues (the suite then draws group ids)."""
        return self.queue_url.endswith(".fifo")


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


@attrs.frozen
class _Pooled:
    table: str
    queues: dict[str, str]  # name -> URL, the first one's name is the table's
    layout: TableLayout


_POOL: dict[Any, _Pooled] = {}
_SERVING: list[Any] = []  # the pool key whose table the handlers were last configured for


def _pooled(
    pool_key: Any,
    queue_names: Sequence[str],
    fifo: bool,
    reset: Callable[[], None],
    layout_for: Callable[[str, dict[str, str]], TableLayout],
) -> _Pooled:
    """The table and queues of `pool_key`: made on first use (and again in a new moto session), the
    queues first, then the table with the layout `layout_for(table, queue URLs)` gives. `reset` runs
    whenever the handlers are to serve another table than the one they served last: they forget
    clients and configuration made for that one."""
    pooled = _POOL.get(pool_key)
    if pooled is None or not _exists(pooled.table, tuple(pooled.queues.values())):
        name = f"sg-{uuid.uuid4().hex[:12]}"
        queues = {
            queue: ensure_queue(
                (name if index == 0 else f"{name}-{queue}") + (".fifo" if fifo else ""), fifo=fifo
            )
            for index, queue in enumerate(queue_names)
        }
        reset()
        layout = layout_for(name, queues)
        ensure_table(name, layout)
        pooled = _POOL[pool_key] = _Pooled(name, queues, layout)
    elif [pool_key] != _SERVING:
        reset()
    _SERVING[:] = [pool_key]
    return pooled


def sendguard_service(
    settings: Settings,
    invocation_ms: int = 10_000,
    reconcile_ms: int = 30_000,
    handlers: Any = None,
    *,
    fifo: bool = False,
) -> Service:
    """sendguard's own entry points on an empty table and queue (moto must be active), with
    sendguard's configuration variables set for them until `cleanup`. `handlers`: an object with
    `submit`, `reconcile` and `reset` (default: `adapters.aws_lambda`, the handlers the SAM template
    names). `fifo`: the queue is a FIFO queue (the group is the `group` attribute's).

    The table and queue are made once per process (and per moto session) and emptied after each
    example, so that the handlers keep their clients from one example to the next, as a warm Lambda
    container does: making boto3 clients anew for each example would be most of the suite's time."""
    if handlers is None:
        from adapters import aws_lambda as handlers

    pool_key = ("sendguard", settings, id(handlers), fifo)
    pooled = _pooled(pool_key, ("messages",), fifo, handlers.reset, lambda *_: TableLayout())
    (queue_url,) = pooled.queues.values()
    cleanup = _configured(sendguard_environment(settings, pooled.table, queue_url), pooled)
    return Service(
        handlers.submit,
        handlers.reconcile,
        pooled.table,
        queue_url,
        settings,
        invocation_ms,
        reconcile_ms,
        cleanup=cleanup,
    )


def _configured(variables: Mapping[str, str], pooled: _Pooled) -> Callable[[], None]:
    """Sets `variables` for the service's handlers; the returned cleanup restores the environment
    and empties the table and queues for the next example."""
    configured = environment(variables)
    configured.__enter__()

    def cleanup() -> None:
        configured.__exit__(None, None, None)
        empty(pooled.table, tuple(pooled.queues.values()))

    return cleanup


def _exists(table: str, queue_urls: Sequence[str]) -> bool:
    try:
        client("dynamodb").describe_table(TableName=table)
        for queue_url in queue_urls:
            client("sqs").get_queue_attributes(QueueUrl=queue_url)
    except ClientError:
        return False
    return True


def empty(table: str, queue_urls: Sequence[str]) -> None:
    """Deletes every item of the table and every message of the queues."""
    dynamodb = client("dynamodb")
    schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    names = [part["AttributeName"] for part in schema]
    for item in table_items(table):
        dynamodb.delete_item(TableName=table, Key={name: item[name] for name in names})
    sqs = client("sqs")  # PurgeQueue may run once a minute: receive and delete instead
    for queue_url in queue_urls:
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def outbox_handler(outboxes: Mapping[str, Outbox]) -> Handler:
    """A team's submit handler on one Outbox per queue (by the queues' names), taking
    `hooks.outbox_event`'s plain event and answering the `SendResult`: `Outbox.send` on the queue
    the event names (None: the first), or — for a transactional request — `Outbox.pending_put` in the
    team's own `transact_write_items` (its own boto3 client, on the default session), then
    `Outbox.dispatch`; a transaction refused because the record exists (a retry: `record_exists`)
    dispatches it all the same, and `dispatch` judges the retry as `send` would."""
    team: dict[str, Any] = {}
    first = next(iter(outboxes.values()))

    def submit(event: Any, context: Any) -> SendResult:
        outbox = outboxes[event["queue"]] if event.get("queue") else first
        key = event["key"] or str(uuid.uuid4())
        body, attributes, item = event["body"], event["attributes"], event["item"]
        group_id = event.get("group_id")
        if not event.get("transactional"):
            return outbox.send(
                key, body, attributes=attributes, item=item, group_id=group_id, context=context
            )
        try:  # a large body is written first, apart
            put = outbox.pending_put(key, body, attributes=attributes, item=item, group_id=group_id)
        except OutboxError as exc:
            return SendResult(False, exc.retryable, exc.http_status, key, "failed", exc.code)
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


QUIET_LOGGER = logging.getLogger("sendguard.testing.quiet")  # what the suite's Outboxes log to: nowhere
QUIET_LOGGER.setLevel(logging.CRITICAL + 1)
QUIET_LOGGER.propagate = False
# What a team's handlers run with under the suite: sendguard's log lines and EMF metrics off, so that a
# run stays readable (an Outbox made without a logger logs JSON on stdout at this level).
QUIET_ENVIRONMENT = {"SENDGUARD_LOG_LEVEL": "CRITICAL", "SENDGUARD_METRICS": "off"}

# The suite's own Outboxes and their handler per pooled table, kept from one example to the next like
# a warm container's.
_OUTBOXES: dict[Any, tuple[dict[str, Outbox], Handler]] = {}

SETTINGS_TOLD_TWICE = (
    "outbox_service(settings, ...) with your own handler is deprecated: pass outbox= (a function "
    "that returns your handler's Outbox) and the suite reads the settings from it, in its own units"
)


def outbox_service(
    settings: Settings | None = None,
    layout: TableLayout | None = None,
    *,
    outbox: Callable[[], Outbox] | None = None,
    submit: Handler | None = None,
    reconcile: Handler | None = None,
    environment_for: Callable[..., Mapping[str, str]] | None = None,
    reset: Callable[[], None] = lambda: None,
    aws: Callable[[Config], Aws] = Aws.from_config,
    transactional: bool = True,
    fifo: bool = False,
    queues: Sequence[str] = ("events",),
    invocation_ms: int = 10_000,
    reconcile_ms: int = 30_000,
) -> Service:
    """A team's handler built on `Outbox`, on an empty table of its layout and its queues (moto must
    be active).

    A team's own handlers, which make their Outbox themselves, are passed as `submit` and
    `reconcile`, with `environment_for(table, *queue_urls)` giving the variables they read their
    configuration from (set until `cleanup`; one URL for each of `queues`, in order), and `reset` to
    make them forget clients made for another table. `outbox` returns the Outbox the handlers use
    (called with those variables set): the suite reads the layout and the protocol settings from
    it, so they are told once. Without `outbox`, they are read from those variables as
    `Outbox.from_env` reads them (the defaults of `Outbox`'s arguments where unset); `layout` or
    `settings` given too must agree with it (`settings` without `outbox` is deprecated).

    Without `submit`, the handler is `outbox_handler` on Outboxes made here with `settings` and
    `layout` (and the store and queue `aws` builds), one per queue, and `reconcile` the first one's
    pass over all of them.

    `fifo`: the queues are FIFO queues (`.fifo` is added to their names); the suite draws group ids.
    `queues`: the names of the team's queues, when its handlers send to more than one."""
    own = submit is None
    names = tuple(queues)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"queues={queues!r}: name one queue or more, each once")
    if own and outbox is not None:
        raise ValueError("outbox= names the Outbox of your own handlers: pass submit= and reconcile= too")
    if not own and settings is not None and outbox is None:
        warnings.warn(SETTINGS_TOLD_TWICE, DeprecationWarning, stacklevel=2)
    pool_key = ("outbox", settings, layout, id(submit), id(outbox), id(aws) if own else None, fifo, names)

    def variables_for(table: str, urls: Mapping[str, str]) -> dict[str, str]:
        team = environment_for(table, *urls.values()) if environment_for else {}
        return {**QUIET_ENVIRONMENT, **team}

    def team_configuration(table: str, urls: Mapping[str, str]) -> tuple[Settings, TableLayout]:
        """The settings and layout the team's handlers run with (the environment set for them)."""
        variables = variables_for(table, urls)
        if outbox is not None:
            with environment(variables):
                made = outbox()
            found = made.settings, made.layout
        else:
            found = settings or settings_from_env(variables), layout or layout_from_env(variables)
        for given, name, value in ((settings, "settings", found[0]), (layout, "layout", found[1])):
            if given is not None and given != value:
                raise ValueError(
                    f"outbox_service({name}={given!r}) differs from what the Outbox runs with: {value!r}"
                )
        return found

    def layout_for(table: str, urls: dict[str, str]) -> TableLayout:
        return (layout or TableLayout()) if own else team_configuration(table, urls)[1]

    pooled = _pooled(pool_key, names, fifo, reset, layout_for)
    urls = pooled.queues
    cleanup = _configured(variables_for(pooled.table, urls), pooled)
    rearm: Callable[[str], object] | None = None
    if own:
        protocol = settings or Settings()
        if pool_key not in _OUTBOXES:
            outboxes: dict[str, Outbox] = {}
            for name, url in urls.items():
                others = tuple(u for u in urls.values() if u != url) if not outboxes else ()
                config = Config(
                    pooled.table, url, protocol, 2, layout=pooled.layout, metrics=False, other_queues=others
                )
                outboxes[name] = Outbox.from_config(config, aws(config), logger=QUIET_LOGGER)
            _OUTBOXES[pool_key] = outboxes, outbox_handler(outboxes)
        made_outboxes, submit = _OUTBOXES[pool_key]
        first = next(iter(made_outboxes.values()))

        def reconcile_(event: Any, context: Any) -> Any:
            return first.reconcile(context=context).as_dict()

        def rearm_(message_id: str) -> object:
            key = pooled.layout.key_named(message_id)
            assert key is not None, f"{message_id}: a digest names no key; the suite re-arms by key"
            return first.rearm(key, "the suite re-arms it", by="suite").outcome

        reconcile, rearm = reconcile_, rearm_
    else:
        protocol = team_configuration(pooled.table, urls)[0]
    assert submit is not None and reconcile is not None, "a team's own submit comes with its reconcile"
    return Service(
        submit,
        reconcile,
        pooled.table,
        next(iter(urls.values())),
        protocol,
        invocation_ms,
        reconcile_ms,
        cleanup=cleanup,
        layout=pooled.layout,
        rearm=rearm,
        transactional=transactional,
        queues=dict(urls),
    )
