import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, settings

from adapters.testing.plugin import fake_aws_environment

# `ci` runs inside `make test`; `long` is `make fuzz`, for nightly runs. Both print the seed and the
# reproduction blob of a failing example; Hypothesis' database (.hypothesis/) replays it too.
settings.register_profile(
    "ci",
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=5_000,
    stateful_step_count=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _fresh_log_configuration() -> Iterator[None]:
    """A test that configures structlog does not leak its configuration into the next."""
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_aws_environment(monkeypatch.setenv, lambda name: monkeypatch.delenv(name, raising=False))
