"""The Lambda entry points: `submit` (HTTP: API Gateway, a function URL or an ALB) and `reconcile`.

Both are thin users of `adapters.Outbox` with the default table layout. `submit` reads the HTTP
request (docs/api.md: the JSON envelope, `Idempotency-Key`, `X-Correlation-Id`), validates it (invalid
input writes nothing), hands it to `Outbox.submit` and answers what came of it: 202 once SQS has the
message; a clean SYSTEM_ERROR (503 with Retry-After when a retry may help, 500 when it cannot) when it
does not, the record left consistent for the reconciler. No exception leaves a handler, and no answer
carries an AWS code, a resource name or an exception's text.

Importing this module loads boto3, attrs, structlog and what a submit runs; nothing of the test or docs
tool chain, and the reconciler pass, the re-arm and the table check only when called. The Outbox (and
its clients) is made at the first invocation, or before a SnapStart snapshot, and kept for the
container's life; after a restore it is made again (`adapters.runtime.snapstart`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from adapters.runtime import apigw as http
from adapters.runtime.clients import now_ms, remaining_ms
from adapters.runtime.config import Config, ConfigError
from adapters.runtime.log_events import (
    ANSWER,
    CONFIG_INVALID,
    HANDLER_FAILED,
    PAYLOAD_INVALID,
    RECONCILE_FAILED,
    emit,
)
from adapters.runtime.logs import configure, get_logger
from adapters.runtime.metrics import SUBMIT_METRICS, Tally, documents, publish
from adapters.runtime.outbox import InvalidMessage, Outbox, OutboxError
from adapters.runtime.runner import Aws
from adapters.runtime.snapstart import RESTORE, Restore
from statemodel.categories import consequence
from statemodel.flows import IN_PROGRESS, Answer, Result
from statemodel.validation import (
    Rejection,
    idempotency_key,
    message_id_for_key,
    parse_submission,
    valid_token,
)

if TYPE_CHECKING:
    from adapters.runtime.fanout import Invoker

__all__ = ["Handlers", "reconcile", "reset", "submit"]

RETRY_AFTER_S = 2
CALLER = "caller"  # SENDGUARD_KEY_SCOPE's value that keeps callers apart (adapters.runtime.config)

_state: dict[str, Any] = {}


def _logging() -> None:
    """JSON logs from the first line of the first invocation, even when the rest of the configuration
    is broken: a SYSTEM_ERROR for a bad configuration must reach the alarms like any other."""
    if "logging" not in _state:
        configure(os.environ.get("SENDGUARD_LOG_LEVEL", "INFO"))
        _state["logging"] = True


@attrs.frozen(eq=False, repr=False)  # never compared nor shown: attrs generates less at import
class _Made:
    """What a container makes once: its configuration, clients and Outbox."""

    config: Config
    aws: Aws
    outbox: Outbox


class Handlers:
    """A `submit` and a `reconcile` entry point on one Outbox, made at the first invocation from the
    `SENDGUARD_*` configuration and kept for the container's life. This module's `submit`,
    `reconcile` and `reset` are those of `Handlers()`.

    `aws` builds the store and the queue from the configuration (`Aws.from_config` in production):
    the fault-injection suite's mutants pass broken ones here (`adapters.testing.mutants`), so that
    nothing patches this module. After each restore of `restore` (a SnapStart restore, or a fork:
    `adapters.runtime.snapstart`) the Outbox is made again, with new clients and connections.
    `invoker` makes what a fanned-out pass invokes its workers through (`LambdaInvoker.from_config`
    when None; the tests run the workers in their own process)."""

    def __init__(
        self,
        aws: Callable[[Config], Aws] = Aws.from_config,
        restore: Restore = RESTORE,
        invoker: Callable[[Config], Invoker] | None = None,
    ) -> None:
        self._aws = aws
        self._invoker = invoker
        self._state: dict[str, _Made] = {}
        self._invokers: dict[str, Invoker] = {}
        # The reconciler's check of the table passed in this container (`check_table`). The submit
        # function's is the Outbox's own (`Outbox.explain_refusal`).
        self._reconciler_checked = False
        restore.on_snapshot(self.prime)
        restore.on_restore(self.restored)

    def prime(self) -> None:
        """Before a SnapStart snapshot: the configuration and clients, made without a request, so
        that the snapshot holds botocore's loaded service data. A configuration error waits for the
        first invocation, which logs it and answers SYSTEM_ERROR."""
        try:
            self.outbox()
        except ConfigError:
            pass  # the first invocation logs it (config_invalid) and answers SYSTEM_ERROR
        except Exception:  # a failed hook must not fail the version's publication
            emit(get_logger(), HANDLER_FAILED, route="before snapshot")

    def restored(self) -> None:
        """This execution environment was resumed from a snapshot (or forked): its clients, and the
        connections they hold, are another environment's; the next invocation makes new ones."""
        self._state.clear()
        self._invokers.clear()

    def outbox(self) -> Outbox:
        """The Outbox of this container: configuration and clients, made once."""
        return self._made().outbox

    def config(self) -> Config:
        """This container's configuration (`SENDGUARD_*`), read once."""
        return self._made().config

    def aws(self) -> Aws:
        """This container's store and queue, the Outbox's own."""
        return self._made().aws

    def _made(self) -> _Made:
        _logging()
        made = self._state.get("made")
        if made is None:
            config = Config.from_env()
            aws = self._aws(config)
            made = self._state["made"] = _Made(config, aws, Outbox.from_config(config, aws))
        return made

    def reset(self) -> None:
        """Forget the configuration and clients (tests change the environment between invocations)."""
        self._state.clear()
        self._invokers.clear()
        self._reconciler_checked = False
        _state.clear()

    def check_table(self, context: object, *, index: bool) -> None:
        """Raises ConfigError when the table does not fit the configured layout
        (`adapters.runtime.table_check`); half of the invocation's time left is the call's deadline,
        so that the invocation still has time to answer after it."""
        from adapters.runtime.table_check import check_table  # never on the happy path

        made = self._made()
        deadline = now_ms() + remaining_ms(context) // 2
        check_table(
            made.aws.dynamodb.client, made.config.table, made.config.layout, index=index, deadline_ms=deadline
        )

    def submit(self, event: object, context: object = None) -> dict[str, Any]:
        return _submit(self, event, context)

    def reconcile(self, event: object, context: object = None) -> dict[str, Any]:
        """One reconciler pass (an EventBridge schedule invokes it); returns what it did. With
        `SENDGUARD_RECONCILER_FANOUT` above 1 the scheduled invocation fans the pass out, and a
        worker's payload (`adapters.runtime.fanout`) names the shards its pass reads."""
        structlog.contextvars.clear_contextvars()
        from adapters.runtime.fanout import InvalidPayload, fan_out, worker_shards

        try:
            outbox, config = self.outbox(), self.config()
            shards = worker_shards(event, config.shards)  # before anything is read or written
            if not self._reconciler_checked:  # once it passed: a failed check runs again next time
                self.check_table(context, index=True)
                self._reconciler_checked = True
            if isinstance(event, Mapping) and shards is not None:  # a worker: its lines carry the pass's id
                structlog.contextvars.bind_contextvars(correlation_id=event["pass_id"])
            if shards is not None or config.reconciler_fanout <= 1:
                return outbox.reconcile(context=context, shards=shards).as_dict()
            pass_id = str(uuid.uuid4())  # the correlation id of the coordinator's and its workers' lines
            structlog.contextvars.bind_contextvars(correlation_id=pass_id)
            # The invokes may take half the invocation's time: the rest drains the groups that failed.
            invokes_by = now_ms() + remaining_ms(context) // 2
            return fan_out(
                config,
                self.invoker(),
                lambda failed: outbox.reconcile(context=context, shards=failed),
                invokes_by,
                new_pass_id=lambda: pass_id,
            ).as_dict()
        except InvalidPayload as exc:
            emit(get_logger(), PAYLOAD_INVALID, problem=str(exc))
            raise  # nothing was read or written; the invocation fails (no retry: the same payload)
        except ConfigError as exc:
            emit(get_logger(), CONFIG_INVALID, problem=str(exc))  # what to set, without a traceback
            raise  # nothing was written; the invocation fails, as below
        except Exception:
            emit(get_logger(), RECONCILE_FAILED)
            raise  # the invocation fails: Lambda's Errors metric and the missing pass both show it

    def invoker(self) -> Invoker:
        """What this container invokes fanned-out workers through, made once."""
        if "invoker" not in self._invokers:
            from adapters.runtime.fanout import LambdaInvoker

            make = self._invoker or LambdaInvoker.from_config
            self._invokers["invoker"] = make(self.config())
        return self._invokers["invoker"]


_HANDLERS = Handlers()
submit = _HANDLERS.submit
reconcile = _HANDLERS.reconcile
reset = _HANDLERS.reset


# ---- submit ---------------------------------------------------------------------------------------


def _submit(handlers: Handlers, event: object, context: object) -> dict[str, Any]:
    _logging()
    structlog.contextvars.clear_contextvars()
    correlation_id = valid_token(http.header(event, "X-Correlation-Id")) or str(uuid.uuid4())
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    route = "unknown"
    tally = Tally()
    try:
        request = http.read_request(event)
        if isinstance(request, Rejection):
            reply = http.error(request.http_status, request.code, request.message, correlation_id)
        else:
            route, reply = _route(handlers, request, correlation_id, context, tally)
    except Exception:
        emit(get_logger(), HANDLER_FAILED, route=route)
        reply = http.error(500, http.SYSTEM_ERROR, "the request failed; it was not accepted", correlation_id)
    _log_answer(reply, route)
    made = handlers._state.get("made")
    config = made.config if made is not None else None
    if tally.flows and config is not None and config.metrics:  # one EMF document per submit flow run
        publish(documents(SUBMIT_METRICS, tally, now_ms(), config.metrics_namespace))
    return http.for_event(event, reply)


def _route(
    handlers: Handlers, request: http.HttpRequest, correlation_id: str, context: object, tally: Tally
) -> tuple[str, http.Reply]:
    if not request.on_messages:
        return "unknown", http.error(404, http.NOT_FOUND, "no such route", correlation_id)
    if handlers.config().key_scope == CALLER and request.caller is None:
        message = "this API keeps callers apart: sign the request (IAM authorization)"
        return "unknown", http.error(403, http.FORBIDDEN, message, correlation_id)
    if request.message_id is None:
        if request.method != "POST":
            allow = {"Allow": "POST"}
            return "POST /messages", http.error(
                405, http.METHOD_NOT_ALLOWED, "use POST on /messages", correlation_id, allow
            )
        return "POST /messages", _post(handlers, request, correlation_id, context, tally)
    if request.method != "GET":
        allow = {"Allow": "GET"}
        return "GET /messages/{messageId}", http.error(
            405, http.METHOD_NOT_ALLOWED, "use GET on /messages/{messageId}", correlation_id, allow
        )
    return "GET /messages/{messageId}", _get(handlers, request, correlation_id, context)


def _post(
    handlers: Handlers,
    request: http.HttpRequest,
    correlation_id: str,
    context: object,
    tally: Tally,
) -> http.Reply:
    key = idempotency_key(request.header("Idempotency-Key"))
    if isinstance(key, Rejection):
        return http.error(key.http_status, key.code, key.message, correlation_id)
    outbox, config = handlers.outbox(), handlers.config()
    parsed = parse_submission(request.body, config.max_message_bytes)
    if isinstance(parsed, Rejection):
        return http.error(parsed.http_status, parsed.code, parsed.message, correlation_id)
    caller = request.caller if config.key_scope == CALLER else None
    message_id = message_id_for_key(key, caller) if key else str(uuid.uuid4())
    structlog.contextvars.bind_contextvars(message_id=message_id)
    try:
        answer = outbox._submit(
            parsed,
            message_id,
            correlation_id=correlation_id,
            idempotency_key=key,
            context=context,
            tally=tally,
            caller=caller,
        )
    except InvalidMessage:  # the key names an item of the team's own, not a message: nothing written
        message = "this Idempotency-Key names an item that is not a message; use another key"
        return http.error(409, http.IDEMPOTENCY_CONFLICT, message, correlation_id)
    if answer.failure is not None:  # a refused key: the Outbox's check logs a mismatch it finds, once
        outbox.explain_refusal(answer.failure.code, deadline_ms=now_ms() + remaining_ms(context) // 2)
    return _answer_submit(answer, correlation_id)


def _answer_submit(answer: Answer, correlation_id: str) -> http.Reply:
    if answer.accepted:
        body = {"messageId": answer.message_id, "status": "QUEUED", "correlationId": correlation_id}
        return http.answer(202, body, correlation_id)
    if answer.result is Result.CONFLICT:
        message = "this Idempotency-Key was used for a different request"
        return http.error(409, http.IDEMPOTENCY_CONFLICT, message, correlation_id)
    if answer.failure == IN_PROGRESS:
        message = "a request with this Idempotency-Key is still in progress; retry it later"
    elif answer.retryable:
        message = "the message could not be queued now; retry later with the same Idempotency-Key"
    else:
        message = "the message cannot be queued; retrying the same request will not help"
    headers = {"Retry-After": str(RETRY_AFTER_S)} if answer.retryable else None
    return http.error(answer.http_status, http.SYSTEM_ERROR, message, correlation_id, headers)


def _get(handlers: Handlers, request: http.HttpRequest, correlation_id: str, context: object) -> http.Reply:
    message_id = request.message_id
    if message_id is None or valid_token(message_id) is None:
        return http.error(404, http.NOT_FOUND, "no such message", correlation_id)
    structlog.contextvars.bind_contextvars(message_id=message_id)
    try:
        view = handlers.outbox().get(message_id)
    except InvalidMessage:  # an item of the team's own under this id: no message
        return http.error(404, http.NOT_FOUND, "no such message", correlation_id)
    except OutboxError as exc:  # a LayoutMismatch too: the Outbox's check logged it, once
        headers = {"Retry-After": str(RETRY_AFTER_S)} if consequence(exc.category).retry_after else None
        message = "the message's status cannot be read now"
        return http.error(exc.http_status, http.SYSTEM_ERROR, message, correlation_id, headers)
    scoped = handlers.config().key_scope == CALLER
    if view is None or (scoped and view.caller != request.caller):  # another's: as if there were none
        return http.error(404, http.NOT_FOUND, "no such message", correlation_id)
    body = {
        "messageId": view.message_id,
        "status": view.status,
        "delivery": view.delivery,
        "attempts": view.attempts,
        "createdAt": view.created_at,
        "updatedAt": view.updated_at,
        "correlationId": correlation_id,
    }
    return http.answer(200, body, correlation_id)


def _log_answer(reply: http.Reply, route: str) -> None:
    level = "warning" if reply.code == http.SYSTEM_ERROR else "info"
    emit(get_logger(), ANSWER, level=level, status=reply.status, code=reply.code, route=route)
