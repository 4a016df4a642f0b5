"""`sendguard provision`: create the table and the queue if they do not exist."""

from __future__ import annotations

import argparse

from adapters.cli import table_options
from adapters.ops.provision import TableMismatch, ensure_resources
from adapters.runtime.clients import make_client
from adapters.runtime.table_check import check_table


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sendguard provision",
        description="Create the table (for the layout, with the reconciler's index) and the queue if they "
        "do not exist; an existing table must fit the layout.",
    )
    parser.add_argument("--queue", required=True, help="queue name (a FIFO queue's ends in .fifo)")
    parser.add_argument("--fifo", action="store_true")
    table_options.add_table_options(parser)
    args = parser.parse_args(argv)
    with table_options.aws_environment(args):
        config = table_options.config(args)
        dynamodb = make_client("dynamodb", config.aws_max_attempts)
        try:
            url = ensure_resources(config.table, args.queue, fifo=args.fifo, layout=config.layout)
        except TableMismatch:  # said in the terms of the variables and flags that fit the table
            check_table(dynamodb, config.table, config.layout, index=True)
            raise
        # An existing table's records may name another status or body attribute than the layout.
        check_table(dynamodb, config.table, config.layout, index=True)
    print(url)
    return 0
