"""What running a Lambda handler off Lambda needs, in one place: a Lambda context, fake credentials
that can reach no real account, and environment changes that are put back.

The local service, the fault-injection suite, the benchmarks and the tests all use these; none of it
is on the Lambda's path.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping

ACCOUNT = "123456789012"

# Fake credentials and one region: nothing signed with these can reach a real account.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# What a developer's shell may hold that would send calls somewhere real: unset beside the fakes.
REAL_ENDPOINT_SETTINGS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_PROFILE",
)


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class LambdaContext:
    """What a Lambda handler reads of its context. The remaining time counts down from `timeout_ms`
    on `clock` (milliseconds): the monotonic clock by default, or a clock a test moves."""

    def __init__(
        self,
        timeout_ms: int,
        function_name: str = "sendguard-submit",
        clock: Callable[[], int] = monotonic_ms,
    ) -> None:
        self._clock = clock
        self._ends = clock() + timeout_ms
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._ends - self._clock())


def fake_aws_environment(setenv: Callable[[str, str], object], delenv: Callable[[str], object]) -> None:
    """Fake credentials, one region, and no profile or endpoint overrides, through the setters given
    (pytest's monkeypatch, or `os.environ`'s)."""
    for name, value in FAKE_CREDENTIALS.items():
        setenv(name, value)
    for name in REAL_ENDPOINT_SETTINGS:
        delenv(name)


@contextlib.contextmanager
def environment(values: Mapping[str, str], unset: tuple[str, ...] = ()) -> Iterator[None]:
    """Sets (and unsets) environment variables; puts every one back as it was on exit."""
    names = set(values) | set(unset)
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in unset:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
