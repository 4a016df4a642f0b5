"""The Lambda entry points: `submit` (API Gateway, REST and HTTP APIs) and `reconcile` (a schedule).

`submit` validates (invalid input writes nothing), then runs the pure submit flow on DynamoDB and SQS,
and answers: 202 once SQS has the message; a clean SYSTEM_ERROR (503 with Retry-After when a retry may
help, 500 when it cannot) when it does not, the record left consistent for the reconciler. No exception
leaves a handler, and no answer carries an AWS code, a resource name or an exception's text.

Importing this module loads boto3, attrs, structlog and the project; nothing of the test or docs tool
chain. Clients are made at the first invocation and kept for the container's life.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import structlog

from adapters.runtime import apigw as http
from adapters.runtime.clients import ATTEMPT_BUDGET_MS, now_ms
from adapters.runtime.config import Config
from adapters.runtime.log_events import ANSWER, HANDLER_FAILED, RECONCILE_FAILED, emit
from adapters.runtime.logs import configure, get_logger
from adapters.runtime.metrics import SUBMIT_METRICS, Tally, documents, publish
from adapters.runtime.reconciler import reconcile_pass
from adapters.runtime.runner import Aws, log_failure, run_flow
from statemodel.categories import consequence
from statemodel.flows import Answer, Failed, Result, lease_expiry, start_submit
from statemodel.validation import (
    Rejection,
    Request,
    idempotency_key,
    message_id_for_key,
    new_message,
    parse_submission,
    valid_token,
)

__all__ = ["lease_expiry", "message_id_for_key", "reconcile", "reset", "run_flow", "submit"]

ANSWER_MARGIN_MS = 500  # kept back from the invocation's time to answer in
DEFAULT_REMAINING_MS = 30_000  # when the context cannot tell (not on Lambda)
RETRY_AFTER_S = 2

_state: dict[str, Any] = {}


def _logging() -> None:
    """JSON logs from the first line of the first invocation, even when the rest of the configuration
    is broken: a SYSTEM_ERROR for a bad configuration must reach the alarms like any other."""
    if "logging" not in _state:
        configure(os.environ.get("SENDGUARD_LOG_LEVEL", "INFO"))
        _state["logging"] = True


def _runtime() -> tuple[Config, Aws]:
    """The configuration and clients, made once per container."""
    _logging()
    if "aws" not in _state:
        config = Config.from_env()
        _state.update(config=config, aws=Aws.from_config(config))
    return _state["config"], _state["aws"]


def reset() -> None:
    """Forget the configuration and clients (tests change the environment between invocations)."""
    _state.clear()


def _remaining_ms(context: object) -> int:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        return int(remaining()) if callable(remaining) else DEFAULT_REMAINING_MS
    except (TypeError, ValueError):
        return DEFAULT_REMAINING_MS


# ---- submit ---------------------------------------------------------------------------------------


def submit(event: object, context: object = None) -> dict[str, Any]:
    _logging()
    structlog.contextvars.clear_contextvars()
    headers = event.get("headers") if isinstance(event, dict) else None
    given = headers.get(_header_key(headers, "x-correlation-id")) if isinstance(headers, dict) else None
    correlation_id = valid_token(given) or str(uuid.uuid4())
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    route = "unknown"
    tally = Tally()
    try:
        request = http.read_request(event)
        if isinstance(request, Rejection):
            result = http.error(request.http_status, request.code, request.message, correlation_id)
        else:
            route, result = _route(request, correlation_id, context, tally)
    except Exception:
        emit(get_logger(), HANDLER_FAILED, route=route)
        result = http.error(500, http.SYSTEM_ERROR, "the request failed; it was not accepted", correlation_id)
    _log_answer(result, route)
    config = _state.get("config")
    if tally.flows and config is not None and config.metrics:  # one EMF document per submit flow run
        publish(documents(SUBMIT_METRICS, tally, now_ms(), config.metrics_namespace))
    return result


def _header_key(headers: dict[Any, Any], name: str) -> Any:
    return next((k for k in headers if isinstance(k, str) and k.lower() == name), name)


def _route(
    request: http.HttpRequest, correlation_id: str, context: object, tally: Tally
) -> tuple[str, dict[str, Any]]:
    if not request.on_messages:
        return "unknown", http.error(404, http.NOT_FOUND, "no such route", correlation_id)
    if request.message_id is None:
        if request.method != "POST":
            allow = {"Allow": "POST"}
            return "POST /messages", http.error(
                405, http.METHOD_NOT_ALLOWED, "use POST on /messages", correlation_id, allow
            )
        return "POST /messages", _post(request, correlation_id, context, tally)
    if request.method != "GET":
        allow = {"Allow": "GET"}
        return "GET /messages/{messageId}", http.error(
            405, http.METHOD_NOT_ALLOWED, "use GET on /messages/{messageId}", correlation_id, allow
        )
    return "GET /messages/{messageId}", _get(request.message_id, correlation_id)


def _post(request: http.HttpRequest, correlation_id: str, context: object, tally: Tally) -> dict[str, Any]:
    key = idempotency_key(request.header("Idempotency-Key"))
    if isinstance(key, Rejection):
        return http.error(key.http_status, key.code, key.message, correlation_id)
    parsed = parse_submission(request.body)
    if isinstance(parsed, Rejection):
        return http.error(parsed.http_status, parsed.code, parsed.message, correlation_id)
    config, aws = _runtime()
    answer = _submit(parsed, key, correlation_id, config, aws, _remaining_ms(context), tally)
    return _answer_submit(answer, correlation_id)


def _submit(
    request: Request,
    key: str | None,
    correlation_id: str,
    config: Config,
    aws: Aws,
    remaining_ms: int,
    tally: Tally | None = None,
) -> Answer:
    now = now_ms()
    message_id = message_id_for_key(key) if key else str(uuid.uuid4())
    attempt_id = str(uuid.uuid4())
    structlog.contextvars.bind_contextvars(message_id=message_id, attempt_id=attempt_id)
    message = new_message(request, message_id, correlation_id, now, key)
    lease = lease_expiry(now, remaining_ms, config.settings)
    flow = start_submit(message, attempt_id, lease, now, config.settings)
    return run_flow(flow, aws, now + max(remaining_ms - ANSWER_MARGIN_MS, ATTEMPT_BUDGET_MS), tally=tally)


def _answer_submit(answer: Answer, correlation_id: str) -> dict[str, Any]:
    if answer.accepted:
        body = {"messageId": answer.message_id, "status": "QUEUED", "correlationId": correlation_id}
        return http.answer(202, body, correlation_id)
    if answer.result is Result.CONFLICT:
        message = "this Idempotency-Key was used for a different request"
        return http.error(409, http.IDEMPOTENCY_CONFLICT, message, correlation_id)
    assert answer.failure is not None
    outcome = consequence(answer.failure.category)
    if answer.failure.code == "InProgress":
        message = "a request with this Idempotency-Key is still in progress; retry it later"
    elif outcome.retry_after:
        message = "the message could not be queued now; retry later with the same Idempotency-Key"
    else:
        message = "the message cannot be queued; retrying the same request will not help"
    headers = {"Retry-After": str(RETRY_AFTER_S)} if outcome.retry_after else None
    return http.error(outcome.http_status, http.SYSTEM_ERROR, message, correlation_id, headers)


def _get(message_id: str, correlation_id: str) -> dict[str, Any]:
    if valid_token(message_id) is None:
        return http.error(404, http.NOT_FOUND, "no such message", correlation_id)
    structlog.contextvars.bind_contextvars(message_id=message_id)
    _, aws = _runtime()
    stored, call = aws.store.get(message_id, now_ms() + ATTEMPT_BUDGET_MS * 2)
    if isinstance(stored, Failed):
        log_failure(get_logger(), call, None)
        outcome = consequence(stored.category)
        headers = {"Retry-After": str(RETRY_AFTER_S)} if outcome.retry_after else None
        message = "the message's status cannot be read now"
        return http.error(outcome.http_status, http.SYSTEM_ERROR, message, correlation_id, headers)
    if stored is None:
        return http.error(404, http.NOT_FOUND, "no such message", correlation_id)
    record = stored.record
    body = {
        "messageId": record.message_id,
        "status": record.status.value,
        "delivery": record.phase.value.lower(),
        "attempts": record.attempts,
        "createdAt": record.message.created_at,
        "updatedAt": record.updated_at,
        "correlationId": correlation_id,
    }
    return http.answer(200, body, correlation_id)


def _log_answer(result: dict[str, Any], route: str) -> None:
    status = result["statusCode"]
    code = None
    if status >= 400:
        code = _error_code(result["body"])
    level = "warning" if code == http.SYSTEM_ERROR else "info"
    emit(get_logger(), ANSWER, level=level, status=status, code=code, route=route)


def _error_code(body: str) -> str | None:
    try:
        code: str = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code


# ---- reconcile ------------------------------------------------------------------------------------


def reconcile(event: object, context: object = None) -> dict[str, Any]:
    """One reconciler pass (an EventBridge schedule invokes it); returns what it did."""
    structlog.contextvars.clear_contextvars()
    config, aws = _runtime()
    remaining = _remaining_ms(context)
    deadline = now_ms() + max(remaining - ANSWER_MARGIN_MS, ATTEMPT_BUDGET_MS)
    try:
        return reconcile_pass(aws, config, deadline).as_dict()
    except Exception:
        emit(get_logger(), RECONCILE_FAILED)
        raise  # the invocation fails: Lambda's Errors metric and the missing pass both show it
