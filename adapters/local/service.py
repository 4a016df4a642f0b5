"""The service assembled on this machine: AWS (an embedded moto server, an endpoint you name, or AWS
itself), the fault proxy in front of it when asked, the Lambda function's environment, and the gateway.

`sendguard demo` and `sendguard serve` both run inside a `LocalService`. The function is the real
`submit` (and `reconcile`) of an `adapters.aws_lambda.Handlers`, configured as on Lambda through its
environment variables, which this sets on entry and restores on exit; its clients reach AWS through
the proxy when there is one. Provisioning: the embedded server gets a fresh table and queue; with
`--endpoint-url` the table and queue are created if they do not exist
(`adapters.ops.provision.ensure_resources`, idempotent);
on AWS itself nothing is created — `--table` and `--queue-url` must name existing resources, and the
fault proxy is not available (it forwards plain http only).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import attrs
import boto3
from botocore.exceptions import BotoCoreError, ClientError

from adapters import aws_lambda
from adapters.local.fault_proxy import FaultProxy
from adapters.local.gateway import Gateway
from adapters.local.moto_server import EmbeddedMoto, MotoUnavailable
from adapters.local.sandbox import FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS, LambdaContext, environment
from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import aws_region, client_config
from adapters.runtime.config import Config

EMBEDDED, ENDPOINT, AWS = "embedded moto", "endpoint", "aws"
RECONCILER_TIMEOUT_MS = 12_000  # a pass needs 2 x 4 s of attempt budget left to start on a record


class ServiceError(Exception):
    """The options do not describe a service that can run (a message for the person, not a trace)."""


@attrs.frozen
class ServiceOptions:
    endpoint_url: str | None = None
    table: str | None = None
    queue_url: str | None = None
    fault_rate: float = 0.0
    seed: int = 0
    always_proxy: bool = False  # on the embedded server, proxy even at rate 0 (counts, serializes)
    lambda_timeout_ms: int = 10_000
    port: int = 0
    function_env: Mapping[str, str] = attrs.field(factory=dict)  # SENDGUARD_* settings
    name: str = "sendguard-demo"  # of the table and queue it creates

    @property
    def mode(self) -> str:
        if self.endpoint_url:
            return ENDPOINT
        if self.table or self.queue_url:
            return AWS
        return EMBEDDED


class LocalService:
    def __init__(self, options: ServiceOptions, handlers: aws_lambda.Handlers | None = None) -> None:
        """`handlers`: the function's entry points (a fresh `adapters.aws_lambda.Handlers()` when
        None, production's); the demo's tests pass broken ones (a queue that forges or doubles its
        sends, a reconciler that does nothing), so that nothing patches a module."""
        self.options = options
        self.mode = options.mode
        self.handlers = handlers or aws_lambda.Handlers()
        self.upstream: str | None = None  # the AWS endpoint (behind the proxy, if any); None: AWS's own
        self.proxy: FaultProxy | None = None
        self.gateway = Gateway(self.handlers.submit, options.lambda_timeout_ms, options.port)
        self.table = ""
        self.bucket: str | None = None  # the body bucket the service made (embedded moto only)
        self.queue_url = ""
        self._stack = contextlib.ExitStack()

    # ---- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> LocalService:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stack.close()

    def _start(self) -> None:
        options = self.options
        if self.mode == AWS and not (options.table and options.queue_url):
            raise ServiceError("on AWS, give both --table and --queue-url of existing resources")
        if self.mode == AWS and options.fault_rate > 0:
            raise ServiceError("the fault proxy forwards plain http: use it with --endpoint-url or locally")
        if self.mode == EMBEDDED:
            self._stack.enter_context(environment(FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS))
            try:
                moto = self._stack.enter_context(EmbeddedMoto())
            except MotoUnavailable as exc:
                raise ServiceError(str(exc)) from exc
            self.upstream = moto.endpoint
            suffix = uuid.uuid4().hex[:8]  # one moto holds every run of a process: fresh names each time
            self._provision(
                f"{options.name}-{suffix}", f"{options.name}-{suffix}", f"sendguard-bodies-{suffix}"
            )
        elif self.mode == ENDPOINT:
            self.upstream = options.endpoint_url
            self._stack.enter_context(
                environment(
                    _endpoint_defaults(),
                    tuple(name for name in REAL_ENDPOINT_SETTINGS if name.startswith("AWS_ENDPOINT_URL_")),
                )
            )
            queue = (options.queue_url or "").rstrip("/").rpartition("/")[2] or options.name
            self._provision(options.table or options.name, queue)
            self.queue_url = options.queue_url or self.queue_url
        else:
            self.table, self.queue_url = options.table or "", options.queue_url or ""
            self._check()
        function_env = {"SENDGUARD_TABLE": self.table, "SENDGUARD_QUEUE_URL": self.queue_url}
        if self.bucket is not None:
            function_env["SENDGUARD_BODY_BUCKET"] = self.bucket
        if self.upstream is not None and (
            options.fault_rate > 0 or (options.always_proxy and self.mode == EMBEDDED)
        ):
            try:
                self.proxy = FaultProxy(self.upstream, options.fault_rate, options.seed)
            except ValueError as exc:
                raise ServiceError(str(exc)) from exc
            self.proxy.start()
            self._stack.callback(self.proxy.stop)
        if self.upstream is not None:
            function_env["AWS_ENDPOINT_URL"] = self.proxy.endpoint if self.proxy else self.upstream
        self._stack.enter_context(environment({**function_env, **options.function_env}))
        self.handlers.reset()
        self._stack.callback(self.handlers.reset)
        try:
            self.gateway.start()
        except OSError as exc:
            raise ServiceError(f"cannot listen on 127.0.0.1:{options.port}: {exc.strerror}") from exc
        self._stack.callback(self.gateway.stop)

    def _provision(self, table: str, queue: str, bucket: str | None = None) -> None:
        """`bucket`: a body bucket too, so that the local service takes messages up to SQS's 1 MiB."""
        with environment({"AWS_ENDPOINT_URL": self.upstream or ""}):
            try:
                # The name says its kind (`.fifo`), as the queue URL does to the runtime.
                self.queue_url = ensure_resources(table, queue, fifo=queue.endswith(".fifo"), bucket=bucket)
                self.bucket = bucket
            except (BotoCoreError, ClientError) as exc:
                raise ServiceError(f"cannot create the table and queue at {self.upstream}: {exc}") from exc
        self.table = table

    def _check(self) -> None:
        """On AWS: the table and the queue exist and these credentials may read them."""
        try:
            self.observer("dynamodb").describe_table(TableName=self.table)
            self.observer("sqs").get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except (BotoCoreError, ClientError) as exc:
            raise ServiceError(f"cannot use table {self.table} and queue {self.queue_url}: {exc}") from exc

    # ---- what runs in it --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.gateway.url

    def config(self) -> Config:
        return Config.from_env()

    def reconcile(self, timeout_ms: int = RECONCILER_TIMEOUT_MS) -> dict[str, Any]:
        """One scheduled invocation of the reconciler function (raises as the function does)."""
        return self.handlers.reconcile(scheduled_event(), LambdaContext(timeout_ms, "sendguard-reconciler"))

    def new_container(self) -> None:
        """The next invocation starts a fresh container: new clients, with a full SDK retry quota.
        On AWS the reconciler is another function than submit, so it never shares submit's clients."""
        self.handlers.reset()

    def observer(self, service: str) -> Any:
        """A client that bypasses the fault proxy: how the demo reads the truth."""
        client = boto3.Session(region_name=aws_region()).client(  # type: ignore[call-overload]
            service, endpoint_url=self.upstream, config=client_config(5)
        )
        return client


def scheduled_event() -> dict[str, Any]:
    """What an EventBridge schedule hands the reconciler function."""
    now = datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": aws_region() or "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/sendguard-reconcile"],
        "detail": {},
    }


def _endpoint_defaults() -> dict[str, str]:
    """Against an endpoint (an emulator), sign with local credentials unless some are configured."""
    values: dict[str, str] = {}
    if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
        values |= {name: FAKE_CREDENTIALS[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    if aws_region() is None:
        values["AWS_DEFAULT_REGION"] = "us-east-1"
    return values
