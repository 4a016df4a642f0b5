"""The ready consumer's Lambda entry point, `consume`: sendguard's `Inbox` on the stack's queue (an SQS
event source mapping with `ReportBatchItemFailures`), applying a small demonstration effect to each
message exactly once, in the mode `SENDGUARD_CONSUMER_MODE` names (docs/inbox.md, "The ready
consumer"):

* `transactional` (the default): the effect — add 1 to `applied` on the message's effect item,
  `effect#<message_id>` in the consumer table — is returned to the inbox as a TransactWriteItems
  entry and committed in one transaction with the inbox's record: a duplicate, a concurrent delivery
  or a stale invocation commits nothing more.
* `guarded`: the effect stands for a call to a service outside DynamoDB that drops a second request
  with an idempotency key it has seen (as payment APIs do): the handler, under the inbox's fenced
  claim, makes that call itself — one UpdateItem that adds 1 to `applied` only if no call with the
  message's idempotency key applied before — and records every call in `calls`.

`applied` is the count a verdict reads (`sendguard demo` checks it is 1 for every accepted message);
it is an ADD, never a blind overwrite, so an effect applied twice shows as 2.

Configuration, from the environment (made once per container): `SENDGUARD_CONSUMER_TABLE` (required;
key `pk`, a string), `SENDGUARD_CONSUMER_MODE`, `SENDGUARD_CONSUMER_MAX_RECEIVES` (the receives a
message gets before the inbox gives it up; default 3), `SENDGUARD_CONSUMER_QUEUE_MAX_RECEIVE_COUNT`
(the queue's redrive `maxReceiveCount`, when known: it must exceed the inbox's receives, so that the
inbox records why before SQS moves a message to the dead-letter queue), and the shared
`SENDGUARD_LEASE_MARGIN_SECONDS`, `SENDGUARD_AWS_MAX_ATTEMPTS` and `SENDGUARD_LOG_LEVEL`.

`ConsumerHandlers` takes a `Wiring`: how the effect is made, the DynamoDB client, and the batch
response. The local demo passes one whose client injects crashes, and the demo's tests pass broken
ones (an effect written outside the transaction, a swallowed failure); nothing patches this module.
Importing it loads boto3, attrs, structlog and the project's runtime, as `adapters.aws_lambda` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import structlog
from botocore.exceptions import ClientError

from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.config import ConfigError, int_setting
from adapters.runtime.inbox import BatchResult, Delivery, Inbox
from adapters.runtime.layout import TableLayout
from adapters.runtime.log_events import CONFIG_INVALID, emit
from adapters.runtime.logs import configure, get_logger

__all__ = ["ConsumerConfig", "ConsumerHandlers", "Wiring", "consume", "effect_key", "reset"]

MODES = ("transactional", "guarded")  # the first is the default
LAYOUT = TableLayout(partition_key="pk")
EFFECT_PREFIX = "effect#"
APPLIED, CALLS = "applied", "calls"
Handler = Callable[[Delivery], Any]


def effect_key(message_id: str) -> dict[str, Any]:
    """The key of a message's effect item in the consumer table."""
    return {LAYOUT.partition_key: {"S": EFFECT_PREFIX + message_id}}


@attrs.frozen
class ConsumerConfig:
    table: str
    mode: str = "transactional"
    max_receives: int = 3
    lease_margin_seconds: int = 30
    aws_max_attempts: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsumerConfig:
        env = os.environ if environ is None else environ
        table = env.get("SENDGUARD_CONSUMER_TABLE", "").strip()
        if not table:
            raise ConfigError("SENDGUARD_CONSUMER_TABLE is not set")
        mode = env.get("SENDGUARD_CONSUMER_MODE", "").strip().lower() or MODES[0]
        if mode not in MODES:
            raise ConfigError(f"SENDGUARD_CONSUMER_MODE={mode!r} is none of {', '.join(MODES)}")
        receives = int_setting(env, "SENDGUARD_CONSUMER_MAX_RECEIVES", 3, 1, 100)
        queue_count = env.get("SENDGUARD_CONSUMER_QUEUE_MAX_RECEIVE_COUNT", "").strip()
        if queue_count:
            count = int_setting(env, "SENDGUARD_CONSUMER_QUEUE_MAX_RECEIVE_COUNT", 0, 1, 1000)
            if count <= receives:
                raise ConfigError(
                    f"SENDGUARD_CONSUMER_MAX_RECEIVES={receives} must be below the queue's maxReceiveCount "
                    f"({count}): SQS would move a message to the dead-letter queue before the inbox gives "
                    "it up and records why"
                )
        return cls(
            table=table,
            mode=mode,
            max_receives=receives,
            lease_margin_seconds=int_setting(env, "SENDGUARD_LEASE_MARGIN_SECONDS", 30, 1, 3_600),
            aws_max_attempts=int_setting(env, "SENDGUARD_AWS_MAX_ATTEMPTS", 3, 1, 10),
        )


class Wiring:
    """How the consumer is put together. Production uses this class as it is; the demo's crash
    injection and its broken consumers are subclasses (adapters.local.consumer)."""

    def client(self, config: ConsumerConfig) -> Any:
        """The DynamoDB client of the inbox and of the effect."""
        return make_client("dynamodb", config.aws_max_attempts)

    def transactional(self, config: ConsumerConfig, client: Any) -> Handler:
        """The effect as the inbox's transaction entries: the handler writes nothing itself."""

        def effect(delivery: Delivery) -> list[dict[str, Any]]:
            return [{"Update": {"TableName": config.table, **_add_applied(delivery)}}]

        return effect

    def guarded(self, config: ConsumerConfig, client: Any) -> Handler:
        """The effect as a call that an idempotency key makes safe to repeat (under the inbox's claim)."""

        def effect(delivery: Delivery) -> dict[str, str]:
            request = _add_applied(delivery)
            try:
                client.update_item(
                    TableName=config.table,
                    Key=request["Key"],
                    UpdateExpression="ADD #applied :one, #calls :one SET idempotency_key = :key, "
                    "applied_at = :now",
                    ConditionExpression="attribute_not_exists(idempotency_key)",
                    ExpressionAttributeNames={"#applied": APPLIED, "#calls": CALLS},
                    ExpressionAttributeValues={
                        ":one": {"N": "1"},
                        ":key": {"S": delivery.idempotency_key},
                        ":now": {"N": str(now_ms())},
                    },
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise  # the inbox counts a failed receive; SQS delivers the message again
                # A repeat of a call that applied (after a crash past it): dropped by its key.
                client.update_item(
                    TableName=config.table,
                    Key=request["Key"],
                    UpdateExpression="ADD #calls :one",
                    ExpressionAttributeNames={"#calls": CALLS},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
                return {"effect": "applied before"}
            return {"effect": "applied"}

        return effect

    def response(self, result: BatchResult) -> dict[str, Any]:
        """The partial batch response Lambda reads (ReportBatchItemFailures)."""
        return result.response


def _add_applied(delivery: Delivery) -> dict[str, Any]:
    return {
        "Key": effect_key(delivery.key),
        "UpdateExpression": "ADD #applied :one SET applied_at = if_not_exists(applied_at, :now)",
        "ExpressionAttributeNames": {"#applied": APPLIED},
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":now": {"N": str(now_ms())}},
    }


class ConsumerHandlers:
    """The `consume` entry point on one Inbox, made at the first invocation from the environment and
    kept for the container's life. This module's `consume` and `reset` are those of
    `ConsumerHandlers()`."""

    def __init__(self, wiring: Wiring | None = None) -> None:
        self.wiring = wiring or Wiring()
        self._state: dict[str, Any] = {}

    def setup(self) -> tuple[Inbox, Handler]:
        if "inbox" not in self._state:
            if "logging" not in self._state:
                configure(os.environ.get("SENDGUARD_LOG_LEVEL", "INFO"))
                self._state["logging"] = True
            config = ConsumerConfig.from_env()
            client = self.wiring.client(config)
            inbox = Inbox(
                config.table,
                mode=config.mode,
                layout=LAYOUT,
                max_receives=config.max_receives,
                lease_margin_seconds=config.lease_margin_seconds,
                client=client,
            )
            make = self.wiring.guarded if config.mode == "guarded" else self.wiring.transactional
            self._state["inbox"] = (inbox, make(config, client))
        found: tuple[Inbox, Handler] = self._state["inbox"]
        return found

    def consume(self, event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
        """One SQS batch: `{"batchItemFailures": [...]}` lists every message not done, for SQS to
        deliver again after its visibility timeout."""
        structlog.contextvars.clear_contextvars()
        try:
            inbox, handler = self.setup()
        except ConfigError as exc:
            emit(get_logger(), CONFIG_INVALID, problem=str(exc))
            raise  # nothing was processed: the invocation fails, and the batch comes back
        return self.wiring.response(inbox.process_batch(event, handler, context=context))

    def reset(self) -> None:
        """Forget the configuration and clients (the environment changed)."""
        self._state.clear()


_HANDLERS = ConsumerHandlers()
consume = _HANDLERS.consume
reset = _HANDLERS.reset
