"""Deliberately broken adapters, to prove the fault-injection suite can fail (`make mutants`).

Each mutant patches the real adapter code at run time into a mistake a real implementation makes;
`main` runs the suite against each and prints `caught` or `MISSED`, exiting 1 if any is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import attrs
from hypothesis import Phase, settings

from adapters import aws_lambda
from adapters.runtime import classify, reconciler, runner, store
from adapters.runtime import sqs as queue
from adapters.runtime.call_report import CallReport
from statemodel.categories import ErrorCategory
from statemodel.events import RolledBack, SendConfirmed
from statemodel.flows import Answer, Send, Write
from statemodel.records import Phase as RecordPhase

Patcher = Callable[[], contextlib.AbstractContextManager[Any]]


def _unconditional(when: Callable[[Write], bool]) -> Patcher:
    """Writes that `when` picks lose their condition (and the values only the condition used)."""
    original = store.update_request

    def update_request(write: Write) -> dict[str, Any]:
        request = original(write)
        if when(write):
            request.pop("ConditionExpression", None)
            request["ExpressionAttributeValues"] = {
                k: v for k, v in request["ExpressionAttributeValues"].items() if not k.startswith(":x_")
            }
            used = request["UpdateExpression"]
            request["ExpressionAttributeNames"] = {
                k: v for k, v in request["ExpressionAttributeNames"].items() if k in used
            }
        return request

    return lambda: mock.patch.object(store, "update_request", update_request)


def _has(event_type: type) -> Callable[[Write], bool]:
    return lambda write: any(isinstance(e, event_type) for e in write.events)


def _rollback_rewrites_metadata() -> contextlib.AbstractContextManager[Any]:
    original = store.update_request

    def update_request(write: Write) -> dict[str, Any]:
        request = original(write)
        if _has(RolledBack)(write):  # "refresh" the correlation id on the way back to PENDING
            request["UpdateExpression"] = request["UpdateExpression"].replace("SET ", "SET #cid = :cid, ", 1)
            request["ExpressionAttributeNames"]["#cid"] = "correlation_id"
            request["ExpressionAttributeValues"][":cid"] = {"S": str(uuid.uuid4())}
        return request

    return mock.patch.object(store, "update_request", update_request)


@contextlib.contextmanager
def _reconciler_resends_confirmed() -> Iterator[None]:
    """A reconciler that "makes sure" confirmed records were sent by sending them again."""
    original_due = store.DynamoStore.due

    def due(self: store.DynamoStore, now: int, settings_: Any) -> Iterator[Any]:
        yield from original_due(self, now, settings_)
        confirmed = tuple(
            stored.record
            for _, stored in self.scan()
            if not isinstance(stored, Exception) and stored.record.phase is RecordPhase.CONFIRMED
        )
        yield store.DuePage(confirmed, CallReport("dynamodb", "Scan", 1, 0))

    original_start = reconciler.reconcile_start

    def reconcile_start(record: Any, now: int, settings_: Any, attempt_id: str, lease: int) -> Any:
        if record.phase is RecordPhase.CONFIRMED:
            aws_lambda._runtime()[1].queue.perform(Send(record.message, attempt_id, lease), None)
            return None
        return original_start(record, now, settings_, attempt_id, lease)

    with (
        mock.patch.object(store.DynamoStore, "due", due),
        mock.patch.object(reconciler, "reconcile_start", reconcile_start),
    ):
        yield


@contextlib.contextmanager
def _lease_shorter_than_invocation() -> Iterator[None]:
    """The lease leaves out the invocation's remaining time, and a send is bounded by the
    invocation's deadline instead of its lease's (the runner's `min(invocation, send)` shadowed)."""

    def lease(now: int, remaining_ms: int, settings_: Any) -> int:
        return int(now + settings_.lease_margin_ms)

    with (
        mock.patch.object(aws_lambda, "lease_expiry", lease),
        mock.patch.object(runner, "min", lambda invocation, send: invocation, create=True),
    ):
        yield


def _permanent_errors_retried() -> contextlib.AbstractContextManager[Any]:
    original = classify.classify

    def classify_(error: BaseException, operation_model: Any = None) -> classify.Classified:
        result = original(error, operation_model)
        if result.category is ErrorCategory.PERMANENT:
            return attrs.evolve(result, category=ErrorCategory.RETRYABLE)
        return result

    return _patch_all("classify", classify_, [store, queue])


def _patch_all(name: str, value: Any, modules: list[Any]) -> contextlib.AbstractContextManager[Any]:
    stack = contextlib.ExitStack()
    for module in modules:
        stack.enter_context(mock.patch.object(module, name, value))
    return stack


def _idempotency_key_ignored() -> contextlib.AbstractContextManager[Any]:
    return mock.patch.object(aws_lambda, "message_id_for_key", lambda key: str(uuid.uuid4()))


@contextlib.contextmanager
def _reconciler_ignores_lease() -> Iterator[None]:
    """A reconciler that rolls back every in-flight claim it can see, live or not (a clock ahead)."""
    original_due = store.DynamoStore.due
    original_start = reconciler.reconcile_start
    ahead = 10 * 60 * 1000

    def due(self: store.DynamoStore, now: int, settings_: Any) -> Iterator[Any]:
        return original_due(self, now + ahead, settings_)

    def reconcile_start(record: Any, now: int, settings_: Any, attempt_id: str, lease: int) -> Any:
        return original_start(record, now + ahead, settings_, attempt_id, lease + ahead)

    with (
        mock.patch.object(store.DynamoStore, "due", due),
        mock.patch.object(reconciler, "reconcile_start", reconcile_start),
    ):
        yield


@contextlib.contextmanager
def _drops_records_on_permanent_error() -> Iterator[None]:
    original = aws_lambda.run_flow

    def run_flow(flow: Any, aws: Any, deadline_ms: int, clock: Any = None, tally: Any = None) -> Answer:
        answer = (
            original(flow, aws, deadline_ms, tally=tally)
            if clock is None
            else original(flow, aws, deadline_ms, clock, tally=tally)
        )
        if answer.failure is not None and answer.failure.category is ErrorCategory.PERMANENT:
            aws.store.client.delete_item(
                TableName=aws.store.table, Key={"message_id": {"S": answer.message_id}}
            )
        return answer

    with mock.patch.object(aws_lambda, "run_flow", run_flow):
        yield


MUTANTS: dict[str, tuple[str, Patcher]] = {
    "rollback_without_fencing": (
        "a rollback write without its status/version/attempt condition",
        _unconditional(_has(RolledBack)),
    ),
    "unconditional_confirm": ("a confirm write without its condition", _unconditional(_has(SendConfirmed))),
    "reconciler_resends_confirmed": (
        "the reconciler sends confirmed records again",
        _reconciler_resends_confirmed,
    ),
    "lease_shorter_than_invocation": (
        "the lease leaves out the invocation's time; sends not bounded by the lease",
        _lease_shorter_than_invocation,
    ),
    "permanent_errors_retried": (
        "permanent errors filed as retryable and re-driven",
        _permanent_errors_retried,
    ),
    "idempotency_key_ignored": (
        "a replay with the same Idempotency-Key makes a new message",
        _idempotency_key_ignored,
    ),
    "rollback_rewrites_metadata": ("a rollback rewrites the correlation id", _rollback_rewrites_metadata),
    "reconciler_ignores_lease": ("the reconciler rolls back live claims", _reconciler_ignores_lease),
    "drops_records_on_permanent_error": (
        "a permanent failure deletes the record instead of flagging it",
        _drops_records_on_permanent_error,
    ),
}

# A mutant is caught when the suite fails within this budget; no shrinking (the verdict is all we need).
BUDGET = settings(
    max_examples=60, stateful_step_count=30, derandomize=True, phases=[Phase.generate], deadline=None
)


def caught(name: str, machine: Any = None) -> tuple[bool, str]:
    """Runs the suite against one mutant: (caught, what the suite said)."""
    from hypothesis import HealthCheck
    from hypothesis.stateful import run_state_machine_as_test
    from moto import mock_aws

    from adapters.testing.suite import FaultInjectionSuite

    _, patch = MUTANTS[name]
    chosen = settings(BUDGET, suppress_health_check=list(HealthCheck), print_blob=False)
    with mock_aws(), patch():
        try:
            run_state_machine_as_test(machine or FaultInjectionSuite, settings=chosen)
        except Exception as exc:
            return True, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    return False, "the suite passed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.testing.mutants", description=__doc__)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="name the mutants and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, (what, _) in MUTANTS.items():
            print(f"{name:34} {what}")
        return 0
    _fake_credentials()
    missed = 0
    for name in args.names or list(MUTANTS):
        started = time.monotonic()
        was_caught, said = caught(name)
        missed += not was_caught
        verdict = "caught" if was_caught else "MISSED"
        print(f"{verdict:7} {name:34} {time.monotonic() - started:5.1f}s  {said}", flush=True)
    return 1 if missed else 0


def _fake_credentials() -> None:
    import os

    from adapters.local.sandbox import fake_aws_environment

    fake_aws_environment(os.environ.__setitem__, lambda name: os.environ.pop(name, None))


if __name__ == "__main__":
    sys.exit(main())
