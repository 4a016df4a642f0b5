"""`sendguard provision`: create the table and the queue if they do not exist."""

from __future__ import annotations

import argparse

from adapters.ops.provision import ensure_resources


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sendguard provision", description="Create the table and the queue if they do not exist."
    )
    parser.add_argument("--table", required=True)
    parser.add_argument("--queue", required=True, help="queue name (a FIFO queue's ends in .fifo)")
    parser.add_argument("--fifo", action="store_true")
    args = parser.parse_args(argv)
    print(ensure_resources(args.table, args.queue, fifo=args.fifo))
    return 0
