"""The `sendguard` command line. Each command lives in its own module with a `main(argv) -> int`;
this module only dispatches, so that `sendguard --help` loads none of them."""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "provision": ("adapters.cli.provision", "create the table and the queue if they do not exist"),
    "reconcile": ("adapters.cli.reconcile", "run one reconciler pass"),
    "audit": ("adapters.cli.audit", "check every record against the model's invariants"),
    "check-trace": ("adapters.cli.check_trace", "replay the transitions in JSON log files through the model"),
    "explore": ("adapters.cli.explore", "exhaustively explore the pure model to closure (model checking)"),
    "demo": (
        "adapters.cli.demo",
        "run the whole service locally under real faults, and judge every message",
    ),
    "serve": (
        "adapters.cli.serve",
        "serve the submit API over local HTTP (for curl), on moto or an endpoint",
    ),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
        print("usage: sendguard COMMAND [options]\n\ncommands:\n" + "\n".join(lines))
        return 0 if args and args[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    result: int = module.main(args[1:])
    return result


if __name__ == "__main__":
    sys.exit(main())
