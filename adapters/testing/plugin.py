"""The pytest plugin (entry point `pytest11: sendguard`): the fixtures the fault-injection suite
needs. Installed with sendguard; active in any project that has it installed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
REAL_ENDPOINT_SETTINGS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_PROFILE",
)


def fake_aws_environment(setenv: Callable[[str, str], object], delenv: Callable[[str], object]) -> None:
    """Fake credentials, one region, and no profile or endpoint overrides: nothing can reach a real
    account, whatever the developer's shell holds."""
    for name, value in FAKE_CREDENTIALS.items():
        setenv(name, value)
    for name in REAL_ENDPOINT_SETTINGS:
        delenv(name)


@pytest.fixture
def sendguard_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto for every AWS call, in a fake AWS environment."""
    from moto import mock_aws

    fake_aws_environment(monkeypatch.setenv, lambda name: monkeypatch.delenv(name, raising=False))
    with mock_aws():
        yield
