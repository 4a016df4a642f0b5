"""boto3 clients with explicit retry and timeout settings, and a per-call deadline.

botocore's default retry mode has changed between versions, so every client names its mode
(`standard`) and its total attempts. A Lambda must also never outlive its own end: each call runs
under a `deadline` (epoch ms), and a `before-send` hook refuses to put an attempt on the wire when
what is left could not cover one more attempt's connect and read timeouts. The refused attempt never
left, so it is a retryable failure, never an ambiguous one. The same hook counts the attempts of the
current call, for the logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
from botocore.config import Config as BotoConfig

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 3.0
ATTEMPT_BUDGET_MS = int(1000 * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S))


class DeadlineExceeded(Exception):
    """An attempt would have started too late to finish before the invocation's deadline."""


@attrs.define
class CallState:
    deadline_ms: int | None
    attempts: int = 0


_call: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("sendguard_call", default=None)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextlib.contextmanager
def aws_call(deadline_ms: int | None) -> Iterator[CallState]:
    """One AWS call (with the SDK's retries) under a deadline; yields its attempt count."""
    state = CallState(deadline_ms)
    token = _call.set(state)
    try:
        yield state
    finally:
        _call.reset(token)


def _before_send(**_: Any) -> None:
    state = _call.get()
    if state is None:
        return None
    if state.deadline_ms is not None and now_ms() + ATTEMPT_BUDGET_MS > state.deadline_ms:
        raise DeadlineExceeded(f"attempt {state.attempts + 1} would end past the deadline")
    state.attempts += 1
    return None


def client_config(
    total_max_attempts: int, connect_timeout: float = CONNECT_TIMEOUT_S, read_timeout: float = READ_TIMEOUT_S
) -> BotoConfig:
    return BotoConfig(
        retries={"mode": "standard", "total_max_attempts": total_max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )


def make_client(service: str, total_max_attempts: int, read_timeout: float = READ_TIMEOUT_S) -> Any:
    """A client of the default session (region, credentials and `AWS_ENDPOINT_URL*` from the
    environment, as on Lambda), with the deadline hook registered first."""
    config = client_config(total_max_attempts, read_timeout=read_timeout)
    client = boto3.Session().client(service, config=config)  # type: ignore[call-overload]
    client.meta.events.register_first("before-send", _before_send)
    return client
