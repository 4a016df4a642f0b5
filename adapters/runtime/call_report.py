"""One AWS call as the logs and the flow runner tell it: what was called, how many attempts, how long,
and what failed (classified); and `call`, the one place a request is made, classified and reported."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from adapters.runtime.classify import Classified, Classifier
from adapters.runtime.clients import DeadlineExceeded, aws_call
from statemodel.categories import Failure
from statemodel.flows import Outcome

T = TypeVar("T")
A = TypeVar("A", bound=Outcome)


@attrs.frozen
class CallReport:
    """One AWS call as the logs tell it: what was called, how many attempts, how long, what failed."""

    service: str
    operation: str
    attempts: int
    latency_ms: int
    error: Classified | None = None


def report(
    service: str, operation: str, attempts: int, started: float, error: Classified | None
) -> CallReport:
    """`started`: time.perf_counter() when the call began."""
    latency = int((time.perf_counter() - started) * 1000)
    if error is not None and error.attempts is not None:
        attempts = max(attempts, error.attempts)
    return CallReport(service, operation, attempts, latency, error)


def refused(service: str, operation: str, error: Classified) -> CallReport:
    """The report of a call not made: refused before it left, for `error`."""
    return report(service, operation, 0, time.perf_counter(), error)


def call(
    client: Any,
    service: str,
    operation: str,
    request: Callable[[], Any],
    deadline_ms: int | None,
    classify: Classifier,
    *,
    answered: Callable[[Any], T | Classified] = lambda response: response,
    refusal: Callable[[ClientError], T | Classified | None] = lambda _: None,
) -> tuple[T | Classified, CallReport]:
    """Makes one AWS request (`request()`, with the SDK's retries, under `deadline_ms`), and reports
    it: what `answered` reads from its response, or why it failed, classified by `classify` against
    the operation's model. `refusal` reads an error answer the caller expects (a failed condition):
    what it means, or None to classify it. `answered` and `refusal` run within the call's time."""
    started = time.perf_counter()
    error: Classified | None = None
    result: T | Classified
    with aws_call(deadline_ms) as state:
        try:
            result = answered(request())
        except ClientError as exc:
            read = refusal(exc)
            result = classify(exc, _model(client, operation)) if read is None else read
        except (BotoCoreError, DeadlineExceeded) as exc:
            result = classify(exc, _model(client, operation))
        if isinstance(result, Classified):
            error = result
    return result, report(service, operation, state.attempts, started, error)


def outcome_of(result: A | Classified) -> A | Failure:
    """A flow's outcome of a call: what it answered, or its classified failure."""
    if isinstance(result, Classified):
        return result.failure
    return result


def _model(client: Any, operation: str) -> Any:
    """The operation's model, for botocore's checks of its modeled errors (cached by botocore)."""
    return client.meta.service_model.operation_model(operation)
