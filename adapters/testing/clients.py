"""The suite's own AWS clients: one session, one client per service and region, kept for the
process (making a client costs tens of milliseconds, most of an example's time if made for each).
The fault injector never touches them."""

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
