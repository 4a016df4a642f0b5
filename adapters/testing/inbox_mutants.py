"""Consumers wired wrong, to prove the consumer suite can fail (`make mutants`, after the outbox's).

Each mutant is a small ledger consumer on sendguard's `Inbox` with one team-wiring mistake, built
from explicit parameters — the handler or the Lambda function the suite is given — never by patching
a module:

* `effect-outside-transaction`: the transactional handler writes its effect itself and returns
  nothing for the inbox's transaction;
* `swallowed-failure`: the Lambda function reports every message processed, whatever the inbox said;
* `handler-swallows-errors`: the handler catches its own failure and returns no effect: the message
  is recorded DONE with nothing applied;
* `guarded-short-deadline`: the function gives the guarded inbox a deadline shorter than the
  invocation's, so a claim's lease runs out while its handler still runs;
* `fifo-per-record`: a FIFO consumer processes each record on its own, so a group's later message
  runs after an earlier one failed.

`main` runs the consumer suite (its coverage phase, then Hypothesis' sequences) against each and
prints `caught` or `MISSED` with the time it took; exit 1 if any is missed. The correct consumer is
run first, and must pass.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import boto3

from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import now_ms
from adapters.runtime.inbox import Delivery, Inbox
from adapters.runtime.layout import TableLayout
from adapters.testing.inbox_suite import (
    Consumer,
    Handler,
    InboxSuite,
    LambdaFunction,
    default_wire,
    run_inbox_suite,
)
from adapters.testing.service import QUIET_LOGGER

TABLE = "inbox-ledger"
LAYOUT = TableLayout(partition_key="pk", sort_key="sk")


def _counter_key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"effect#{key}"}, "sk": {"S": "count"}}


def ledger_effect(delivery: Delivery) -> list[dict[str, Any]]:
    """The reference transactional handler: count the message's application on an item of its own."""
    return [
        {
            "Update": {
                "TableName": TABLE,
                "Key": _counter_key(delivery.key),
                "UpdateExpression": "ADD applied :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
    ]


def applied(key: str) -> int:
    item = (
        boto3.client("dynamodb")
        .get_item(TableName=TABLE, Key=_counter_key(key), ConsistentRead=True)
        .get("Item")
    )
    return int(item["applied"]["N"]) if item else 0


def writes_its_own_effect(delivery: Delivery) -> list[dict[str, Any]]:
    """Wrong: the effect written by the handler itself, outside the inbox's transaction."""
    (entry,) = ledger_effect(delivery)
    boto3.client("dynamodb").update_item(**entry["Update"])
    return []


def reports_everything_processed(inbox: Inbox, handler: Handler) -> LambdaFunction:
    """Wrong: the function swallows the inbox's verdict and reports the whole batch processed."""

    def function(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        inbox.handle_batch(event, handler, context=context)
        return {"batchItemFailures": []}

    return function


def catches_its_errors(inbox: Inbox, handler: Handler) -> LambdaFunction:
    """Wrong: the handler's failure is caught and answered with no effect."""

    def forgiving(delivery: Delivery) -> Any:
        try:
            return handler(delivery)
        except Exception:
            return []

    return inbox.lambda_handler(forgiving)


def with_a_short_deadline(inbox: Inbox, handler: Handler) -> LambdaFunction:
    """Wrong: the function tells the inbox its invocation ends in 10 s (a hard-coded deadline), not
    what the context says: the claim's lease runs out while the handler still runs."""

    def function(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        return inbox.handle_batch(event, handler, deadline_ms=now_ms() + 10_000)

    return function


def record_by_record(inbox: Inbox, handler: Handler) -> LambdaFunction:
    """Wrong for FIFO: each record processed on its own, its group's order forgotten."""

    def function(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        results = [inbox.process(record, handler, context=context) for record in event.get("Records", [])]
        return {"batchItemFailures": [{"itemIdentifier": r.sqs_message_id} for r in results if not r.ok]}

    return function


@attrs.define
class _Calls:
    """The guarded reference consumer's outside service: it counts the calls for each key."""

    calls: dict[str, int] = attrs.field(factory=dict)

    def handler(self, delivery: Delivery) -> str:
        self.calls[delivery.key] = self.calls.get(delivery.key, 0) + 1
        return "called"


def suite(
    name: str,
    mode: str = "transactional",
    handler: Handler | None = None,
    wire: Callable[[Inbox, Handler], LambdaFunction] = default_wire,
    fifo: bool = False,
) -> type[InboxSuite]:
    """A consumer suite over the reference ledger consumer, with the handler and the wiring given."""

    def make_consumer(self: InboxSuite) -> Consumer:
        ensure_resources(TABLE, f"{TABLE}-events", layout=LAYOUT)
        inbox = Inbox(
            TABLE, mode=mode, layout=LAYOUT, max_receives=3, key_prefix=f"{mode}#", logger=QUIET_LOGGER
        )
        if mode == "guarded":
            calls = _Calls()
            return Consumer(inbox, handler or calls.handler, lambda key: calls.calls.get(key, 0), wire)
        return Consumer(inbox, handler or ledger_effect, applied, wire)

    return type(name, (InboxSuite,), {"make_consumer": make_consumer, "fifo": fifo})


@attrs.frozen
class Mutant:
    about: str
    suite: type[InboxSuite]
    caught_with: str  # the words of the check its mistake must fail


CORRECT = {
    "transactional": suite("Transactional"),
    "guarded": suite("Guarded", mode="guarded"),
    "fifo": suite("Fifo", fifo=True),
}

MUTANTS: dict[str, Mutant] = {
    "effect-outside-transaction": Mutant(
        "the handler writes its effect itself, outside the inbox's transaction",
        suite("EffectOutside", handler=writes_its_own_effect),
        "effect applied 2 times",
    ),
    "swallowed-failure": Mutant(
        "the function reports every message processed, whatever the inbox said",
        suite("Swallowed", wire=reports_everything_processed),
        "deleted from the queue but never done",
    ),
    "handler-swallows-errors": Mutant(
        "the handler catches its own failure and returns no effect",
        suite("Forgiving", wire=catches_its_errors),
        "DONE, but its effect was never applied",
    ),
    "guarded-short-deadline": Mutant(
        "the function gives the guarded inbox a deadline shorter than the invocation's",
        suite("ShortDeadline", mode="guarded", wire=with_a_short_deadline),
        "the handler started while",
    ),
    "fifo-per-record": Mutant(
        "a FIFO consumer processes each record on its own",
        suite("PerRecord", wire=record_by_record, fifo=True),
        "ran in a batch after an earlier message of",
    ),
}


def caught(mutant: Mutant, profile: str | None = None) -> tuple[bool, str]:
    """Whether the suite fails against the mutant, with the check its mistake must fail."""
    try:
        run_inbox_suite(mutant.suite, profile)
    except AssertionError as error:
        said = str(error).splitlines()[0] if str(error) else type(error).__name__
        return mutant.caught_with in str(error), said
    return False, "the suite passed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.testing.inbox_mutants", description=__doc__)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="name the mutants and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, mutant in MUTANTS.items():
            print(f"{name:34} {mutant.about}")
        return 0
    import os

    from moto import mock_aws

    from adapters.local.sandbox import fake_aws_environment

    fake_aws_environment(os.environ.__setitem__, lambda name: os.environ.pop(name, None))
    failed = 0
    with mock_aws():
        for name, correct in CORRECT.items():
            started = time.monotonic()
            try:
                run_inbox_suite(correct)
                verdict, said = "passes", "the correct consumer"
            except AssertionError as error:
                failed += 1
                verdict, said = "FAILS", str(error).splitlines()[0]
            print(
                f"{verdict:7} {'correct ' + name:34} {time.monotonic() - started:5.1f}s  {said}", flush=True
            )
        for name in args.names or list(MUTANTS):
            started = time.monotonic()
            was_caught, said = caught(MUTANTS[name])
            failed += not was_caught
            verdict = "caught" if was_caught else "MISSED"
            print(f"{verdict:7} {name:34} {time.monotonic() - started:5.1f}s  {said}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
