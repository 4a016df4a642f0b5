"""boto3 clients with explicit retry and timeout settings, and a per-call deadline.

botocore's default retry mode has changed between versions, so every client names its mode
(`standard`) and its total attempts. A Lambda must also never outlive its own end: each call runs
under a `deadline` (epoch ms), and a `before-send` hook fits every attempt into what is left. It gives
the attempt a read timeout of what is left less the connect timeout (at most the client's own read
timeout; botocore takes a per-request read timeout from the request's context), and refuses to put
the attempt on the wire when not even `MIN_READ_TIMEOUT_MS` of read time would be left. So every
attempt is abandoned, at the latest, when its connect and read timeouts run out: by the deadline. A
short invocation (3 s, 1 s) still sends: it gets shorter timeouts, not a refusal. A refused first
attempt never left, so it is retryable; a refused retry follows an attempt that may have landed, so
it is ambiguous. The same hook counts the attempts of the current call, for the logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import boto3
from botocore.config import Config as BotoConfig
from botocore.handlers import BUILTIN_HANDLERS
from botocore.httpsession import URLLib3Session

from adapters.runtime.snapstart import RESTORE, Restore

CONNECT_TIMEOUT_S = 0.5  # in-region connects and TLS handshakes take milliseconds
READ_TIMEOUT_S = 3.0  # the longest an attempt waits for its answer, when there is time for it
LAMBDA_MAX_TIMEOUT_S = 900  # a Lambda function's longest timeout (AWS Lambda quotas)
MIN_READ_TIMEOUT_MS = 100  # an attempt that cannot wait this long for its answer is not started
ATTEMPT_BUDGET_MS = int(1000 * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S))  # the longest attempt
MIN_ATTEMPT_MS = int(1000 * CONNECT_TIMEOUT_S) + MIN_READ_TIMEOUT_MS  # the shortest attempt started
# botocore (since 1.40-ish; checked, not assumed) reads a per-request `read_timeout` from the request's
# context; without that, an attempt keeps the client's read timeout and needs all of it to be left.
PER_REQUEST_READ_TIMEOUT = hasattr(URLLib3Session, "_get_request_timeout")


class DeadlineExceeded(Exception):
    """An attempt would have started too late to finish before the invocation's deadline."""

    def __init__(self, message: str, sent_before: int = 0) -> None:
        super().__init__(message)
        self.sent_before = sent_before  # attempts of this call already on the wire: they may have landed


def attempt_read_timeout_ms(
    left_ms: int,
    connect_ms: int = int(1000 * CONNECT_TIMEOUT_S),
    read_ms: int = int(1000 * READ_TIMEOUT_S),
    adjustable: bool = PER_REQUEST_READ_TIMEOUT,
) -> int | None:
    """The read timeout an attempt gets with `left_ms` to its deadline, or None: not started. An
    attempt given it ends (connect + read) by the deadline."""
    if not adjustable:
        return read_ms if connect_ms + read_ms <= left_ms else None
    read = min(read_ms, left_ms - connect_ms)
    return read if read >= MIN_READ_TIMEOUT_MS else None


@attrs.define
class CallState:
    deadline_ms: int | None
    attempts: int = 0
    read_timeouts_ms: list[int] = attrs.field(factory=list)  # what each attempt was given


_call: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("sendguard_call", default=None)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


DEFAULT_REMAINING_MS = 30_000  # when neither a context nor a deadline says (a container, a script)
ANSWER_RESERVE_MS = 500  # kept back from an invocation's time for the caller to answer in …
ANSWER_RESERVE_SHARE = 10  # … or a tenth of it, when that is less: a 1 s invocation keeps 100 ms


def remaining_ms(context: object) -> int:
    """What a Lambda context says is left; DEFAULT_REMAINING_MS without one."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        return int(remaining()) if callable(remaining) else DEFAULT_REMAINING_MS
    except (TypeError, ValueError):
        return DEFAULT_REMAINING_MS


@contextlib.contextmanager
def aws_call(deadline_ms: int | None) -> Iterator[CallState]:
    """One AWS call (with the SDK's retries) under a deadline; yields its attempt count."""
    state = CallState(deadline_ms)
    token = _call.set(state)
    try:
        yield state
    finally:
        _call.reset(token)


def _before_send(request: Any = None, **_: Any) -> None:
    state = _call.get()
    if state is None:
        return None
    if state.deadline_ms is not None:
        context = getattr(request, "context", None)
        config = context.get("client_config") if isinstance(context, dict) else None
        connect_ms = int(1000 * (getattr(config, "connect_timeout", None) or CONNECT_TIMEOUT_S))
        read_ms = int(1000 * (getattr(config, "read_timeout", None) or READ_TIMEOUT_S))
        adjustable = PER_REQUEST_READ_TIMEOUT and isinstance(context, dict)
        left = state.deadline_ms - now_ms()
        read = attempt_read_timeout_ms(left, connect_ms, read_ms, adjustable)
        if read is None:
            raise DeadlineExceeded(
                f"attempt {state.attempts + 1} would end past the deadline ({left} ms left)", state.attempts
            )
        if adjustable:
            assert isinstance(context, dict)
            context["read_timeout"] = read / 1000  # the context is the call's: every attempt sets it
        state.read_timeouts_ms.append(read)
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


_session_kept: list[tuple[tuple[object, ...], boto3.Session]] = []  # the last one made, with its key
_sessions_lock = threading.Lock()
# What a Session reads when it is made: the environment's AWS settings and botocore's built-in
# handlers (a Session copies those once; moto and the fault injector add theirs there).
_SESSION_ENV = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3",
)


def aws_region(environ: Mapping[str, str] = os.environ) -> str | None:
    """The region the environment names: `AWS_DEFAULT_REGION`, else `AWS_REGION` (None: botocore's
    own choice, the profile's). botocore reads only the first; Lambda sets both, but a shell or a CI
    job often sets only `AWS_REGION`, as the other SDKs and the AWS CLI read it."""
    return environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION") or None


def _session() -> boto3.Session:
    """One boto3 Session per container. Each new Session loads botocore's data again (its loader, the
    endpoint and partition data): about 20 ms a client on a cold start. The Session is keyed on what
    it read when it was made, so a process that changes its AWS environment or botocore's built-in
    handlers (the tests, the local service) gets one that sees the change; on Lambda neither changes."""
    key = (
        *(os.environ.get(name, "") for name in _SESSION_ENV),
        *(id(entry[1]) for entry in BUILTIN_HANDLERS),
    )
    if not _session_kept or _session_kept[0][0] != key:
        _session_kept[:] = [(key, boto3.Session(region_name=aws_region()))]
    return _session_kept[0][1]


def make_client(
    service: str,
    total_max_attempts: int,
    read_timeout: float = READ_TIMEOUT_S,
    *,
    session: boto3.Session | None = None,
    botocore_config: BotoConfig | None = None,
) -> Any:
    """A client of `session` (the team's: its credentials, region and endpoints), else of the
    container's (region, credentials and `AWS_ENDPOINT_URL*` from the environment, as on Lambda),
    with the deadline hook registered first. `botocore_config`, the team's, is merged under
    sendguard's own: its settings stay (proxies, user agent, pool size, …) but for the retry mode
    and attempts, the timeouts and keep-alive, which the deadlines are computed from."""
    config = client_config(total_max_attempts, read_timeout=read_timeout)
    if botocore_config is not None:
        config = botocore_config.merge(config)  # the argument's values win
    with _sessions_lock:  # neither making a Session nor making a client from one is thread safe
        client = (session or _session()).client(service, config=config)  # type: ignore[call-overload]
    client.meta.events.register_first("before-send", _before_send)
    _MADE.add(client)
    return client


# Every client `make_client` made: the fault-injection suite tells sendguard's calls from the team's
# by them, so that it can break the team's own writes on purpose (`adapters.testing.injector`).
_MADE: weakref.WeakSet[Any] = weakref.WeakSet()


def is_sendguard_client(client: Any) -> bool:
    """Whether `make_client` made `client` (else it is the team's own, or a tool's)."""
    return client in _MADE


def close_connections() -> None:
    """Closes the connections of every client `make_client` made. The clients stay, and open new
    connections at their next request: after a SnapStart restore (or in a forked child) the pooled
    ones are the snapshot's, one TCP and TLS session resumed in many environments at once."""
    for client in list(_MADE):
        client.close()  # botocore: clears its connection pools; the client works on


def renew_connections_on(restore: Restore) -> None:
    """Has `restore` close the clients' connections after each restore (`close_connections`). At
    import, on `adapters.runtime.snapstart.RESTORE`: so every Outbox and Inbox, a team's made in its
    own handler before the snapshot too, sends over connections of its own after a restore, and
    importing sendguard's clients installs the restore hooks (which reseed `random`) for any handler."""
    restore.on_restore(close_connections)


renew_connections_on(RESTORE)
