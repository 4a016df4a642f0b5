"""The pytest plugin (entry point `pytest11: sendguard`): the fixtures the fault-injection suite
needs. Installed with sendguard; active in any project that has it installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def sendguard_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto for every AWS call, with fake credentials and no endpoint overrides, so that
    nothing can reach a real account."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield
