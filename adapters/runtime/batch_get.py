"""BatchGetItem for a list of keys: up to 100 keys a request, strongly consistent, and the keys
DynamoDB leaves unprocessed (throttling, or a response past 16 MB) asked again a bounded number of
times with a growing pause — botocore retries a failed request, not the unprocessed part of a
successful one. Keys still unprocessed after that are reported as a retryable failure, never
dropped in silence: the caller leaves their records to a later pass."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs

from adapters.runtime.call_report import CallReport, call
from adapters.runtime.classify import Classified, Classifier, failed
from adapters.runtime.clients import now_ms
from statemodel.categories import ErrorCategory
from statemodel.sizes import DYNAMODB_MAX_BATCH_GET_KEYS

MAX_KEYS = DYNAMODB_MAX_BATCH_GET_KEYS
UNPROCESSED_ROUNDS = 4  # requests for what a batch left unprocessed, at most, per batch
UNPROCESSED_PAUSE_S = 0.05  # before the first of them; doubled each round


def batch_get(
    client: Any,
    table: str,
    keys: Sequence[dict[str, Any]],
    deadline_ms: int | None,
    classify: Classifier,
    attributes: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], list[CallReport]]:
    """The items of `keys` that exist, whole or only their `attributes` when named (in no particular
    order), and one report per request made. A key not read for a failure is missing from the items,
    and the failure is in its request's report."""
    shape: dict[str, Any] = {"ConsistentRead": True}
    if attributes:
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        shape |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    items: list[dict[str, Any]] = []
    reports: list[CallReport] = []
    for start in range(0, len(keys), MAX_KEYS):
        pending: list[dict[str, Any]] = list(keys[start : start + MAX_KEYS])
        for round_ in range(UNPROCESSED_ROUNDS + 1):
            if round_:
                pause = UNPROCESSED_PAUSE_S * 2 ** (round_ - 1)
                if deadline_ms is not None and now_ms() + 1000 * pause >= deadline_ms:
                    break
                time.sleep(pause)
            request = {table: {"Keys": pending, **shape}}
            answer, done = call(
                client,
                "dynamodb",
                "BatchGetItem",
                lambda: client.batch_get_item(RequestItems=request),  # noqa: B023 (called at once)
                deadline_ms,
                classify,
            )
            reports.append(done)
            if isinstance(answer, Classified):
                pending = []  # reported: these keys are left to a later pass
                break
            items.extend(answer.get("Responses", {}).get(table, []))
            pending = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not pending:
                break
        if pending:  # still unprocessed after the last round: the last request's report says so
            last = reports.pop()
            left = failed(ErrorCategory.RETRYABLE, "UnprocessedKeys", throttling=True)
            reports.append(attrs.evolve(last, error=left))
    return items, reports
