"""The `sendguard` command line. Each command lives in its own module with a `main(argv) -> int`;
this module only dispatches, so that `sendguard --help` loads none of them."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "provision": ("adapters.cli.provision", "create the table and the queue if they do not exist"),
    "reconcile": ("adapters.cli.reconcile", "run one reconciler pass"),
    "status": ("adapters.cli.status", "show the backlog by kind, from the index (no scan)"),
    "redrive": ("adapters.cli.redrive", "re-arm exhausted records once their cause is fixed"),
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
    if args and args[0] in ("-V", "--version"):
        print(f"sendguard {version()}")
        return 0
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"sendguard: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    result: int = module.main(args[1:])
    return result


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return (
        "usage: sendguard COMMAND [options]   (sendguard COMMAND --help for its options)\n"
        "       sendguard --version\n\ncommands:\n" + "\n".join(lines)
    )


def version() -> str:
    try:
        return importlib.metadata.version("sendguard")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
