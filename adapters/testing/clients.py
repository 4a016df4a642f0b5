"""The suite's own AWS clients: one session, one client per service and region, kept for the
process (making a client costs tens of milliseconds, most of an example's time if made for each).
The fault injector never touches them. And the suite's read of a whole table (`table_items`)."""

from __future__ import annotations

from typing import Any

import boto3

from adapters.runtime.clients import aws_region

_CLIENTS: dict[tuple[str, str | None], Any] = {}


def client(service: str) -> Any:
    """The suite's client of `service` in the current region."""
    region = aws_region()
    if (service, region) not in _CLIENTS:
        if "session" not in _SESSION:
            _SESSION["session"] = boto3.Session()
        session: Any = _SESSION["session"]
        _CLIENTS[(service, region)] = session.client(service, region_name=region)
    return _CLIENTS[(service, region)]


_SESSION: dict[str, boto3.Session] = {}


def is_own(candidate: Any) -> bool:
    """Whether a client is one of the suite's own."""
    return any(candidate is own for own in _CLIENTS.values())


def table_items(table: str) -> list[dict[str, Any]]:
    """Every item of `table`, as a strongly consistent Scan gives them (low-level values).

    The suite reads the whole table after every step. On in-process moto — where the suite runs — a
    Scan serializes every item to JSON and botocore parses it back, which was most of a run's time;
    so there the items are read from moto's store itself, in the same shape. Anywhere else (a moto
    server, an endpoint of another kind), a Scan."""
    stored = _in_process_moto_table(table)
    if stored is None:
        pages = client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        return [item for page in pages for item in page["Items"]]
    return [
        {name: value.to_regular_json() for name, value in item.attrs.items()} for item in stored.all_items()
    ]


def _in_process_moto_table(table: str) -> Any:
    """moto's own table `table` in the current region, if in-process moto is on and holds exactly
    one such table; else None."""
    try:
        from moto.core.models import botocore_stubber
        from moto.dynamodb.models import dynamodb_backends
    except ImportError:  # pragma: no cover - moto comes with the `testing` extra
        return None
    if not botocore_stubber.enabled:
        return None
    region = aws_region()
    if region is None:
        return None
    found = [
        backends[region].tables[table]
        for account in list(dynamodb_backends.keys())
        if region in (backends := dynamodb_backends[account]) and table in backends[region].tables
    ]
    return found[0] if len(found) == 1 else None
