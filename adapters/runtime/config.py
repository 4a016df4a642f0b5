"""Configuration from the environment: the contract's variables, checked once, with clear errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from adapters.runtime.layout import TableLayout
from statemodel.attention import DEFAULT_SHARDS, MAX_SHARDS, Shards
from statemodel.flows import Settings
from statemodel.sizes import MAX_ATTEMPTS_LIMIT, message_limit

DEFAULT_BODY_PREFIX = "sendguard/bodies/"


class ConfigError(ValueError):
    """A configuration variable is missing or malformed, or the layout does not fit the table (its
    subclasses `adapters.ops.provision.TableMismatch` and `adapters.LayoutMismatch`); the message says
    what to set."""


@attrs.frozen
class Config:
    table: str
    queue_url: str
    settings: Settings = attrs.field(factory=Settings)
    aws_max_attempts: int = 3  # botocore standard mode's total_max_attempts, per AWS call
    log_level: str = "INFO"
    layout: TableLayout = attrs.field(factory=TableLayout)
    metrics_namespace: str = "sendguard"  # of the EMF metrics (adapters.runtime.metrics)
    metrics: bool = True  # SENDGUARD_METRICS=off: no EMF documents (test runs, local tools)
    # Threads a reconciler pass re-drives with. 1 keeps a pass on the invoking thread, in a fixed
    # order (what the fault-injection suite's per-thread faults and derandomized runs need); the
    # template sets 4.
    reconciler_workers: int = 1
    # Worker invocations a scheduled pass fans out to, one per group of the index's shards
    # (`adapters.runtime.fanout`); 0 or 1: the pass runs in the scheduled invocation, as before.
    # `reconciler_worker_function`: the function they are invoked on (asynchronously).
    reconciler_fanout: int = 1
    reconciler_worker_function: str | None = None
    # The S3 bucket for bodies too large for a DynamoDB item (None: such messages are refused), and
    # the prefix of their object keys (`adapters.runtime.bodies`).
    body_bucket: str | None = None
    body_prefix: str = DEFAULT_BODY_PREFIX
    # The queues whose records a reconciler pass re-drives, besides `queue_url` (a record names its
    # queue; those of other queues are left to their own reconcilers).
    other_queues: tuple[str, ...] = ()
    # The ready API's keys: one key space for every caller (SHARED), or one per caller (CALLER: the
    # caller's IAM principal scopes its Idempotency-Keys and the messages it may read).
    key_scope: str = "shared"
    # Days after a message's acceptance when the table's TTL may delete its record, once confirmed,
    # and its body item (0: never, the default; `adapters.runtime.codec`, docs/operations.md).
    retention_days: int = 0

    @property
    def max_message_bytes(self) -> int:
        """The most bytes of payload and attributes a message may take here."""
        return message_limit(self.body_bucket is not None)

    @property
    def shards(self) -> Shards:
        """The `attention` index's shards (the layout's)."""
        return self.layout.shards

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        return cls(
            table=_required(env, "SENDGUARD_TABLE"),
            queue_url=_required(env, "SENDGUARD_QUEUE_URL"),
            settings=settings_from_env(env),
            aws_max_attempts=int_setting(env, "SENDGUARD_AWS_MAX_ATTEMPTS", 3, 1, 10),
            log_level=env.get("SENDGUARD_LOG_LEVEL", "INFO").upper(),
            layout=layout_from_env(env),
            metrics_namespace=_namespace(env, "SENDGUARD_METRICS_NAMESPACE", "sendguard"),
            metrics=_switch(env, "SENDGUARD_METRICS", True),
            reconciler_workers=int_setting(env, "SENDGUARD_RECONCILER_WORKERS", 1, 1, MAX_WORKERS),
            body_bucket=body_bucket(env.get("SENDGUARD_BODY_BUCKET", "")),
            body_prefix=body_prefix(env.get("SENDGUARD_BODY_PREFIX", "")),
            key_scope=_choice(env, "SENDGUARD_KEY_SCOPE", KEY_SCOPES),
            other_queues=queue_urls(
                env.get("SENDGUARD_RECONCILER_QUEUES", ""), "SENDGUARD_RECONCILER_QUEUES"
            ),
            retention_days=int_setting(env, "SENDGUARD_RETENTION_DAYS", 0, 0, MAX_RETENTION_DAYS),
            reconciler_fanout=int_setting(env, FANOUT, 1, 0, MAX_SHARDS),
            reconciler_worker_function=worker_function(env),
        )


FANOUT, WORKER_FUNCTION = "SENDGUARD_RECONCILER_FANOUT", "SENDGUARD_RECONCILER_WORKER_FUNCTION"
# Lambda's FunctionName: a name, a partial ARN (ACCOUNT:function:NAME) or an ARN, with a qualifier.
# The patterns of this module are compiled when first used (`re` caches them), not at import: a cold
# start pays only for the variables that are set.
_FUNCTION = (
    r"(arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:)?(\d{12}:)?(function:)?[a-zA-Z0-9_-]{1,64}"
    r"(:(\$LATEST|[a-zA-Z0-9_-]{1,128}))?"
)


def worker_function(env: Mapping[str, str]) -> str | None:
    """`SENDGUARD_RECONCILER_WORKER_FUNCTION`: required when `SENDGUARD_RECONCILER_FANOUT` is above 1."""
    value = env.get(WORKER_FUNCTION, "").strip()
    if value and not re.fullmatch(_FUNCTION, value):
        raise ConfigError(f"{WORKER_FUNCTION}={value!r} is not a Lambda function name or ARN")
    if not value and int_setting(env, FANOUT, 1, 0, MAX_SHARDS) > 1:
        raise ConfigError(f"{FANOUT} is above 1: set {WORKER_FUNCTION} to the function to fan out to")
    return value or None


MAX_WORKERS = 10  # a pass's threads: botocore keeps 10 connections a client (max_pool_connections)
MAX_RETENTION_DAYS = 3_650  # ten years (DynamoDB's TTL ignores times more than five years past)


# The layout's variables: TableLayout's names, by field, and the index's shards. The commands that
# work on a table take each as a flag of the same name too (`option`): what an error says to set.
LAYOUT_NAMES = {
    "partition_key": "SENDGUARD_PARTITION_KEY",
    "sort_key": "SENDGUARD_SORT_KEY",
    "sort_key_value": "SENDGUARD_SORT_KEY_VALUE",
    "status_attribute": "SENDGUARD_STATUS_ATTRIBUTE",
    "body_attribute": "SENDGUARD_BODY_ATTRIBUTE",
}
SHARDS, SHARDS_READ = "SENDGUARD_INDEX_SHARDS", "SENDGUARD_INDEX_SHARDS_READ"
LAYOUT_VARIABLES = (*LAYOUT_NAMES.values(), SHARDS, SHARDS_READ)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """The protocol settings: `SENDGUARD_MAX_ATTEMPTS`, `SENDGUARD_REDRIVE_AFTER_SECONDS` and
    `SENDGUARD_LEASE_MARGIN_SECONDS` (the defaults of `Outbox`'s arguments of the same names)."""
    return Settings(
        max_attempts=int_setting(env, "SENDGUARD_MAX_ATTEMPTS", 10, 1, MAX_ATTEMPTS_LIMIT),
        redrive_after_ms=1000 * int_setting(env, "SENDGUARD_REDRIVE_AFTER_SECONDS", 60, 1, 86_400),
        lease_margin_ms=1000 * int_setting(env, "SENDGUARD_LEASE_MARGIN_SECONDS", 30, 1, 3_600),
    )


def option(variable: str) -> str:
    """The command-line flag of a SENDGUARD_* variable: SENDGUARD_PARTITION_KEY is --partition-key."""
    return "--" + variable.removeprefix("SENDGUARD_").lower().replace("_", "-")


def layout_from_env(env: Mapping[str, str]) -> TableLayout:
    """The team's table layout: `SENDGUARD_PARTITION_KEY` and the rest (TableLayout's defaults)."""
    given: dict[str, Any] = {
        field: env[name].strip() for field, name in LAYOUT_NAMES.items() if env.get(name, "").strip()
    }
    given["shards"] = _shards(env)
    try:
        return TableLayout(**given)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _shards(env: Mapping[str, str]) -> Shards:
    """`SENDGUARD_INDEX_SHARDS`: the shards new entries go to; `SENDGUARD_INDEX_SHARDS_READ`: the
    shards a pass reads (unset or 0: as many as are written; never fewer)."""
    write = int_setting(env, SHARDS, DEFAULT_SHARDS, 1, MAX_SHARDS)
    read = int_setting(env, SHARDS_READ, 0, 0, MAX_SHARDS)
    return Shards.configured(write, read)


# S3's rule for a (general purpose) bucket name, and a key prefix sendguard accepts.
_BUCKET = r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]"
_PREFIX = r"[A-Za-z0-9!\-_.*'()/]{0,512}"


def body_bucket(raw: str | None, name: str = "SENDGUARD_BODY_BUCKET") -> str | None:
    """A body bucket's name, or nothing (unset, empty: no bucket). `name`: what the error names."""
    value = (raw or "").strip()
    if not value:
        return None
    if not re.fullmatch(_BUCKET, value) or ".." in value:
        raise ConfigError(f"{name}={value!r} is not an S3 bucket name")
    return value


def body_prefix(raw: str | None, name: str = "SENDGUARD_BODY_PREFIX") -> str:
    """The body objects' key prefix (default `sendguard/bodies/`). `name`: what the error names."""
    value = (raw or "").strip() or DEFAULT_BODY_PREFIX
    if not re.fullmatch(_PREFIX, value) or value.startswith("/"):
        raise ConfigError(
            f"{name}={value!r}: use up to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) /, not starting with /"
        )
    return value


def queue_urls(raw: str | None, name: str) -> tuple[str, ...]:
    """Queue URLs, comma-separated (none: empty). `name`: what the error names."""
    urls = tuple(url.strip() for url in (raw or "").split(",") if url.strip())
    for url in urls:
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"{name}: {url!r} is not a queue URL (https://sqs.<region>.amazonaws.com/…)")
    return urls


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set (on the command line: {option(name)})")
    return value


# CloudWatch's rule for a namespace: 1-255 of these characters, not all spaces, not AWS's own.
_NAMESPACE = r"[0-9A-Za-z.\-_/#: ]{1,255}"


def _namespace(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not re.fullmatch(_NAMESPACE, value) or value.startswith("AWS/"):
        raise ConfigError(
            f"{name}={value!r} is not a CloudWatch namespace (1-255 of A-Z a-z 0-9 . - _ / # : and "
            "space, not starting with AWS/)"
        )
    return value


KEY_SCOPES = ("shared", "caller")  # the first is the default


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is none of {', '.join(choices)}")
    return raw


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("on", "off"):
        raise ConfigError(f"{name}={raw!r} is neither on nor off")
    return raw == "on"


def int_setting(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole-number variable within low..high; `default` when unset or empty; else ConfigError."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value
