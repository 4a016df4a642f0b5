"""The `sendguard` command line. Each command lives in its own module with a `main(argv) -> int`;
this module dispatches, so that `sendguard --help` loads none of them, and turns what an operator can
fix — configuration, region, credentials, endpoint, permissions, a missing table or queue — into one
line that says what to fix (`operator_error`), for every command; `--debug` shows the traceback."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import traceback
from typing import Any

COMMANDS: dict[str, tuple[str, str]] = {
    "provision": (
        "adapters.cli.provision",
        "create the table, the queue and the body bucket (--body-bucket) if they do not exist",
    ),
    "reconcile": ("adapters.cli.reconcile", "run one reconciler pass"),
    "status": ("adapters.cli.status", "show the backlog by kind, from the index (no scan)"),
    "redrive": ("adapters.cli.redrive", "re-arm exhausted records once their cause is fixed"),
    "inbox-failed": ("adapters.cli.inbox_failed", "list the messages the inbox gave up on; --rearm them"),
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


# Exit statuses: a command's own 0 (fine) and 1 (it ran and found a problem: a violation, a failed
# re-arm); 2 when it could not run (usage, configuration, AWS access: the line says what to fix).
CANNOT_RUN = 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = bool(args) and args[0] == "--debug"
    args = args[1:] if debug else args
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
    try:
        result: int = module.main(args[1:])
    except Exception as exc:
        problem = operator_error(exc)
        if problem is None:
            raise  # not the operator's to fix: a bug, with its traceback
        if debug:
            traceback.print_exc()
        # One line, whatever the exception's text holds (an endpoint's HTML page, a file's name).
        print(f"sendguard {args[0]}: {' '.join(problem.split())}", file=sys.stderr)
        return CANNOT_RUN
    return result


# AWS error codes of a request whose credentials were refused, and of one they do not allow.
REFUSED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "MissingAuthenticationToken",
    }
)
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
NO_QUEUE = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})
CREDENTIALS = "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
PERMISSIONS = "docs/operations.md lists what each command needs"


def operator_error(exc: BaseException) -> str | None:
    """What to fix, in one line, when `exc` is the operator's to fix; None when it is not (a bug)."""
    from botocore import exceptions as boto

    from adapters.ops.backlog import RecordsUnreadable
    from adapters.runtime.config import ConfigError

    if isinstance(exc, ConfigError | RecordsUnreadable):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:  # a file named on the command line
        return f"cannot read {exc.filename or repr(exc.filename)}: {exc.strerror}"
    if isinstance(exc, boto.ConfigParseError):
        return (
            f"{exc}: correct it, or point AWS_CONFIG_FILE (AWS_SHARED_CREDENTIALS_FILE for credentials) "
            "at another file"
        )
    if isinstance(exc, boto.NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or --region"
    if isinstance(exc, boto.InvalidRegionError):
        return f"{exc}: set AWS_REGION (or --region) to a region's name, such as eu-west-1"
    if type(exc) is ValueError and str(exc).startswith("Invalid endpoint"):  # botocore's, for a URL
        return f"{exc}: set AWS_ENDPOINT_URL (or --endpoint-url) to a URL such as http://localhost:4566"
    if isinstance(exc, boto.NoCredentialsError):
        return f"no AWS credentials: set {CREDENTIALS} (or run where a role provides them)"
    if isinstance(exc, boto.PartialCredentialsError | boto.ProfileNotFound | boto.SSOError):
        return f"{exc}: check {CREDENTIALS}"
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
        where = _kwargs(exc).get("endpoint_url", "AWS")
        return (
            f"cannot reach {where} ({type(exc).__name__}): check AWS_ENDPOINT_URL (or --endpoint-url), "
            "the region and the network"
        )
    if isinstance(exc, boto.ClientError):
        error, operation = exc.response.get("Error", {}), exc.operation_name
        codes = {error.get("Code"), error.get("QueryErrorCode")}
        code = error.get("Code", "?")
        if codes & REFUSED:
            return f"{operation}: the credentials were refused ({code}): check {CREDENTIALS}"
        if codes & DENIED:
            return f"{operation}: access denied ({code}): use credentials allowed to call it ({PERMISSIONS})"
        if codes & NO_QUEUE:
            return f"{operation}: no such queue: check SENDGUARD_QUEUE_URL (--queue-url) and the region"
        if "ResourceNotFoundException" in codes:
            found = error.get("Message", code)
            return f"{operation}: {found}: check SENDGUARD_TABLE (--table) and the region"
        # botocore's code for a 4xx answer that holds no AWS error (S3's HEAD answers have no body)
        if code.isdigit() and code.startswith("4") and not operation.startswith("Head"):
            return (
                f"{operation}: the endpoint answered HTTP {code}, not as AWS does: check that "
                "AWS_ENDPOINT_URL (or --endpoint-url) is the service's endpoint"
            )
        return f"{operation} failed: {code}: {error.get('Message', '')}"
    return None


def _kwargs(exc: BaseException) -> dict[str, Any]:
    kwargs: dict[str, Any] = getattr(exc, "kwargs", {})
    return kwargs


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return (
        "usage: sendguard [--debug] COMMAND [options]   (sendguard COMMAND --help for its options)\n"
        "       sendguard --version\n\ncommands:\n" + "\n".join(lines) + "\n\n"
        "--debug: show the traceback of an error, not just the line that says what to fix.\n"
        "exit status: 0 done; 1 the command ran and found a problem (audit, redrive, check-trace,\n"
        "explore, demo); 2 it could not run (usage, configuration, AWS access, a missing table or queue)."
    )


def version() -> str:
    try:
        return importlib.metadata.version("sendguard")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
