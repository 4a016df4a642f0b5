from collections.abc import Iterator

import pytest
import structlog

from adapters.local.sandbox import fake_aws_environment
from adapters.testing import profiles

# The profiles of adapters.testing.profiles (`ci` derandomized in `make test`, `long` in `make fuzz`),
# at this size for every `@given` test that names none of its own.
profiles.register_and_load(examples=100, steps=50)


@pytest.fixture(autouse=True)
def _fresh_log_configuration() -> Iterator[None]:
    """A test that configures structlog does not leak its configuration into the next."""
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_aws_environment(monkeypatch.setenv, lambda name: monkeypatch.delenv(name, raising=False))
