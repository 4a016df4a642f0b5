"""sendguard's fault-injection suite, shipped for service teams (docs/fault-injection.md).

Subclass `FaultInjectionSuite` (sendguard's own handler, or one in front of it) or `OutboxSuite` (a
handler built on `adapters.Outbox` with your own table layout), override `make_service` with your
handler, table and queue (and the other hooks your handler needs), and run it with `run_suite`
inside the `sendguard_aws` fixture of the pytest plugin. It needs the `testing` extra
(`pip install 'sendguard[testing]'`: Hypothesis, moto, time-machine, pytest). The names below are
imported on first use, so that the pytest plugin, which pytest loads in every project that has
sendguard installed, costs nothing and needs nothing of that extra until a suite runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.local.sandbox import LambdaContext as LambdaContext
    from adapters.testing.hooks import Expected as Expected
    from adapters.testing.hooks import Promise as Promise
    from adapters.testing.hooks import Reply as Reply
    from adapters.testing.hooks import Request as Request
    from adapters.testing.hooks import TableRecord as TableRecord
    from adapters.testing.hooks import alb_event as alb_event
    from adapters.testing.hooks import api_gateway_event as api_gateway_event
    from adapters.testing.hooks import function_url_event as function_url_event
    from adapters.testing.hooks import rest_api_event as rest_api_event
    from adapters.testing.inbox_suite import Consumer as Consumer
    from adapters.testing.inbox_suite import InboxSuite as InboxSuite
    from adapters.testing.inbox_suite import run_inbox_suite as run_inbox_suite
    from adapters.testing.injector import Crashed as Crashed
    from adapters.testing.injector import Fault as Fault
    from adapters.testing.injector import FaultInjector as FaultInjector
    from adapters.testing.injector import Plan as Plan
    from adapters.testing.run import PROFILES as PROFILES
    from adapters.testing.run import run_suite as run_suite
    from adapters.testing.service import Service as Service
    from adapters.testing.service import outbox_service as outbox_service
    from adapters.testing.service import sendguard_service as sendguard_service
    from adapters.testing.suite import COVERAGE as COVERAGE
    from adapters.testing.suite import FaultInjectionSuite as FaultInjectionSuite
    from adapters.testing.suite import OutboxSuite as OutboxSuite

_PUBLIC = {
    "COVERAGE": "adapters.testing.suite",
    **dict.fromkeys(("Consumer", "InboxSuite", "run_inbox_suite"), "adapters.testing.inbox_suite"),
    "Crashed": "adapters.testing.injector",
    "Expected": "adapters.testing.hooks",
    "Fault": "adapters.testing.injector",
    "FaultInjectionSuite": "adapters.testing.suite",
    "FaultInjector": "adapters.testing.injector",
    "LambdaContext": "adapters.local.sandbox",
    "OutboxSuite": "adapters.testing.suite",
    "PROFILES": "adapters.testing.run",
    "Plan": "adapters.testing.injector",
    "Promise": "adapters.testing.hooks",
    "Reply": "adapters.testing.hooks",
    "Request": "adapters.testing.hooks",
    "Service": "adapters.testing.service",
    "TableRecord": "adapters.testing.hooks",
    "alb_event": "adapters.testing.hooks",
    "api_gateway_event": "adapters.testing.hooks",
    "function_url_event": "adapters.testing.hooks",
    "outbox_service": "adapters.testing.service",
    "rest_api_event": "adapters.testing.hooks",
    "run_suite": "adapters.testing.run",
    "sendguard_service": "adapters.testing.service",
}
__all__ = sorted(_PUBLIC)

EXTRA = "the fault-injection suite needs the `testing` extra: pip install 'sendguard[testing]'"


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'adapters.testing' has no attribute {name!r}")
    try:
        module = importlib.import_module(_PUBLIC[name])
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {"hypothesis", "moto", "time_machine"}:
            raise ModuleNotFoundError(f"{EXTRA} ({exc.name} is missing)", name=exc.name) from exc
        raise
    return getattr(module, name)
