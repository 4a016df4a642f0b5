"""One AWS call as the logs and the flow runner tell it: what was called, how many attempts, how long,
and what failed (classified)."""

from __future__ import annotations

import time

import attrs

from adapters.runtime.classify import Classified


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
