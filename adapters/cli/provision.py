"""`sendguard provision`: create the table, the queue and the body bucket if they do not exist."""

from __future__ import annotations

import argparse
import contextlib

from adapters.cli import table_options
from adapters.ops.provision import TableMismatch, ensure_resources, queue_name_problem
from adapters.runtime.clients import make_client
from adapters.runtime.config import ConfigError
from adapters.runtime.table_check import NoSuchTable, check_table


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sendguard provision",
        description="Create the table (for the layout, with the reconciler's index), the queue and, with "
        "--body-bucket, the body bucket if they do not exist; an existing table must fit the layout.",
    )
    parser.add_argument("--queue", required=True, help="queue name (a FIFO queue's ends in .fifo)")
    parser.add_argument("--fifo", action="store_true")
    table_options.add_table_options(parser)
    args = parser.parse_args(argv)
    problem = queue_name_problem(args.queue, args.fifo)
    if problem is not None:  # said before any AWS call (no credentials needed to hear it)
        raise ConfigError(problem)
    with table_options.aws_environment(args):
        config = table_options.config(args)
        dynamodb = make_client("dynamodb", config.aws_max_attempts)
        # An existing table checked before anything is made, in the terms of the variables and flags:
        # the key and index, and what only a record can tell (the status and body attributes it holds).
        with contextlib.suppress(NoSuchTable):  # none yet: ensure_resources makes it for the layout
            check_table(dynamodb, config.table, config.layout, index=True)
        try:
            url = ensure_resources(
                config.table, args.queue, fifo=args.fifo, layout=config.layout, bucket=config.body_bucket
            )
        except TableMismatch:  # made meanwhile by someone else: said in the variables' terms too
            check_table(dynamodb, config.table, config.layout, index=True)
            raise
    print(url)
    return 0
