"""sendguard's fault-injection suite, shipped for service teams (docs/fault-injection.md).

Subclass `FaultInjectionSuite`, override `make_service` with your handler, table and queue, and run
it with `run_suite` inside the `sendguard_aws` fixture of the pytest plugin. Test tooling: importing
it loads Hypothesis, moto and time-machine; nothing on the Lambda's import path imports it.
"""

from adapters.testing.injector import Crashed, Fault, FaultInjector, Plan
from adapters.testing.suite import (
    COVERAGE,
    PROFILES,
    Context,
    FaultInjectionSuite,
    Service,
    run_suite,
    sendguard_service,
)

__all__ = [
    "COVERAGE",
    "PROFILES",
    "Context",
    "Crashed",
    "Fault",
    "FaultInjectionSuite",
    "FaultInjector",
    "Plan",
    "Service",
    "run_suite",
    "sendguard_service",
]
