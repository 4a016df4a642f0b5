"""The pytest plugin (entry point `pytest11: sendguard`): the fixtures the fault-injection suite
needs. pytest loads it in every project that has sendguard installed, so it imports nothing beyond
pytest and the standard library at load time: without the `testing` extra, a team's other tests run
as before, and only a test that asks for `sendguard_aws` is told what to install."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.local.sandbox import fake_aws_environment


@pytest.fixture
def sendguard_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto for every AWS call, in a fake AWS environment."""
    try:
        from moto import mock_aws
    except ModuleNotFoundError:
        from adapters.testing import EXTRA

        pytest.fail(EXTRA, pytrace=False)
    fake_aws_environment(monkeypatch.setenv, lambda name: monkeypatch.delenv(name, raising=False))
    with mock_aws():
        yield
