"""What every command that works on a table shares, in one place: its options and what they become.

The options: `--table`, the layout's flags — each named after its variable, `--partition-key` for
`SENDGUARD_PARTITION_KEY` (`adapters.runtime.config.option`), and winning over it — `--region` and
`--endpoint-url`. What they become: the command's `Config`, by `Config.from_env` on the environment
with the flags put over their variables (so the rules stay in `adapters.runtime.config`); the AWS
environment the command runs in; and the check of the layout against the table, once, at the start.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator

from adapters.local.sandbox import environment
from adapters.runtime.clients import make_client
from adapters.runtime.config import (
    LAYOUT_NAMES,
    LAYOUT_VARIABLES,
    SHARDS,
    SHARDS_READ,
    Config,
    option,
)
from adapters.runtime.layout import TableLayout
from adapters.runtime.table_check import TABLE, check_table
from statemodel.attention import DEFAULT_SHARDS

QUEUE_URL = "SENDGUARD_QUEUE_URL"
# Where large bodies are kept: a body is read only from the bucket and prefix the records were
# written with (adapters.runtime.bodies), so a command that reads bodies must be told them.
BODY_VARIABLES = {
    "SENDGUARD_BODY_BUCKET": "the body bucket of the records' large bodies, if they have one",
    "SENDGUARD_BODY_PREFIX": "the key prefix of the bodies in it (default sendguard/bodies/)",
}
NO_QUEUE = "unused"  # the queue URL of a command that sends nothing
# botocore takes these over AWS_ENDPOINT_URL: unset while --endpoint-url is given, so that it wins.
SERVICE_ENDPOINTS = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3")

_DEFAULTS = TableLayout()
_ABOUT = {
    LAYOUT_NAMES["partition_key"]: f"the table's partition key (default {_DEFAULTS.partition_key})",
    LAYOUT_NAMES["sort_key"]: "the table's sort key, when it has one",
    LAYOUT_NAMES["sort_key_value"]: f"what the records hold in it (default {_DEFAULTS.sort_key_value})",
    LAYOUT_NAMES["status_attribute"]: f"the status attribute (default {_DEFAULTS.status_attribute})",
    LAYOUT_NAMES["body_attribute"]: f"the body attribute (default {_DEFAULTS.body_attribute})",
    SHARDS: f"the attention index's shards per kind (default {DEFAULT_SHARDS})",
    SHARDS_READ: f"the shards a pass reads (default: {option(SHARDS)})",
}


def add_table_options(parser: argparse.ArgumentParser, *, queue: bool = False) -> None:
    """`--table`, the layout's flags, `--region`, `--endpoint-url`; `--queue-url` for a command that
    sends (`queue`)."""
    table = parser.add_argument_group(
        "the table",
        "each flag wins over the environment variable of its name (--partition-key over "
        "SENDGUARD_PARTITION_KEY); the layout is checked against the table at the start",
    )
    table.add_argument(option(TABLE), metavar="NAME", help=f"the table (${TABLE})")
    if queue:
        table.add_argument(option(QUEUE_URL), metavar="URL", help=f"the queue (${QUEUE_URL})")
    for variable in LAYOUT_VARIABLES:
        name = variable.removeprefix("SENDGUARD_")
        table.add_argument(option(variable), metavar=name, help=_ABOUT[variable])
    for variable, about in BODY_VARIABLES.items():
        table.add_argument(option(variable), metavar=variable.removeprefix("SENDGUARD_"), help=about)
    aws = parser.add_argument_group("AWS")
    aws.add_argument(
        "--region",
        type=_given("--region"),
        help="the region ($AWS_REGION or $AWS_DEFAULT_REGION, else the profile's)",
    )
    aws.add_argument(
        "--endpoint-url",
        type=_given("--endpoint-url"),
        metavar="URL",
        help="send every AWS call here ($AWS_ENDPOINT_URL)",
    )


def _given(flag: str) -> Callable[[str], str]:
    """An AWS flag's value, refused when empty (`--endpoint-url "$UNSET"`): were it ignored, the
    command would go to the environment's endpoint or region, AWS itself for a local run's script."""

    def value(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(
                f"is empty: give a value, or leave {flag} out for the environment's"
            )
        return text

    return value


def environ(args: argparse.Namespace) -> dict[str, str]:
    """The environment, with each flag given put over its variable."""
    env = dict(os.environ)
    for variable in (TABLE, QUEUE_URL, *LAYOUT_VARIABLES, *BODY_VARIABLES):
        value = getattr(args, _dest(variable), None)
        if value is not None:
            env[variable] = value
    if not hasattr(args, _dest(QUEUE_URL)):
        env[QUEUE_URL] = env.get(QUEUE_URL) or NO_QUEUE
    return env


def config(args: argparse.Namespace) -> Config:
    """The command's configuration (raises ConfigError, which `sendguard` prints as one line)."""
    return Config.from_env(environ(args))


def checked(args: argparse.Namespace, *, index: bool) -> Config:
    """The command's configuration, once its layout is checked against its table (`index`: and the
    `attention` index, for a command that queries it); a command that sends, its queue too."""
    found = config(args)
    check_table(make_client("dynamodb", found.aws_max_attempts), found.table, found.layout, index=index)
    if hasattr(args, _dest(QUEUE_URL)):
        # A pass sends only what is due: without this, a wrong queue shows only once something is.
        sqs = make_client("sqs", found.aws_max_attempts)
        sqs.get_queue_attributes(QueueUrl=found.queue_url, AttributeNames=["QueueArn"])
    return found


@contextlib.contextmanager
def aws_environment(args: argparse.Namespace) -> Iterator[None]:
    """`--region` and `--endpoint-url` for the command's length: botocore reads both from the
    environment, for every client the command makes (the runtime's too)."""
    values: dict[str, str] = {}
    unset: tuple[str, ...] = ()
    if args.region:
        values |= {"AWS_REGION": args.region, "AWS_DEFAULT_REGION": args.region}
    if args.endpoint_url:
        values["AWS_ENDPOINT_URL"] = args.endpoint_url
        unset = SERVICE_ENDPOINTS
    with environment(values, unset):
        yield


def _dest(variable: str) -> str:
    return option(variable).removeprefix("--").replace("-", "_")
