"""The layout holds: packages by who loads them, computed from the imports themselves.

* no import cycle anywhere in the project;
* the Lambda's path (`adapters.aws_lambda` and everything it imports, with the packages that hold
  them) reaches only the runtime and the pure model — never the checker, the local service, the
  suite, the command line, the operator tools or the doc generators;
* no module is named like a standard-library module;
* the public surfaces are exactly what the docs promise.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import adapters
import adapters.testing
import statemodel
from adapters.cli.main import COMMANDS
from tests.import_graph import ROOT, cycles, import_graph, imports_of, project_modules

GRAPH = import_graph()
AT_IMPORT = import_graph(at_import_only=True)  # what a package's __init__ runs when a module below loads

# What the Lambda may load, by package: the handlers, the runtime, the pure model (not its checkers).
LAMBDA_PATH = (
    "adapters",
    "adapters.aws_lambda",
    "adapters.aws_lambda_consumer",
    "adapters.runtime",
    "statemodel",
)
NOT_ON_THE_LAMBDA_PATH = (
    "statemodel.checker",
    "adapters.local",
    "adapters.testing",
    "adapters.cli",
    "adapters.ops",
    "adapters.docgen",
)


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def lambda_path(graph: dict[str, set[str]], at_import: dict[str, set[str]] = AT_IMPORT) -> set[str]:
    """`adapters.aws_lambda` and everything it imports (lazily too: a handler's call runs those), and the
    packages above each, with what their `__init__` runs when imported."""
    loaded: set[str] = set()
    todo = ["adapters.aws_lambda", "adapters.aws_lambda_consumer"]  # the template's handler modules
    while todo:
        module = todo.pop()
        if module in loaded:
            continue
        loaded.add(module)
        todo.extend(graph.get(module, ()))
        for parent in _parents(module) - loaded:
            loaded.add(parent)
            todo.extend(at_import.get(parent, ()))
    return loaded


def test_no_import_cycle() -> None:
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from adapters.runtime import clients\n"
        "def f():\n    from .store import DynamoStore\n"
    )
    known = {"adapters.runtime.clients", "adapters.runtime.store", "adapters.runtime"}
    assert imports_of(source, "adapters.runtime.sqs", False, known) == {
        "adapters.runtime.clients",
        "adapters.runtime.store",
    }


def test_the_lambda_path_stays_in_the_runtime() -> None:
    path = lambda_path(GRAPH)
    assert {"adapters.aws_lambda", "adapters.aws_lambda_consumer", "adapters.runtime.inbox"} <= path
    assert sorted(m for m in path if _within(m, NOT_ON_THE_LAMBDA_PATH)) == []
    assert sorted(m for m in path if not _within(m, LAMBDA_PATH)) == []


def test_the_lambda_path_check_can_fail() -> None:
    graph = {k: set(v) for k, v in GRAPH.items()}
    graph["adapters.runtime.store"].add("statemodel.checker.world")
    assert "statemodel.checker.world" in lambda_path(graph)


def test_the_lambda_loads_no_test_or_tool_library() -> None:
    code = (
        "import sys, adapters.aws_lambda, adapters.aws_lambda_consumer; "
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'hypothesis', 'moto', 'transitions', 'pytest', 'werkzeug', 'time_machine', 'cfnlint'}); "
        "local = sorted(m for m in sys.modules if m.startswith(('adapters.local', 'adapters.testing', "
        "'adapters.cli', 'adapters.ops', 'adapters.docgen', 'statemodel.checker'))); "
        "print(bad, local); sys.exit(1 if bad or local else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", sorted(project_modules()), ids=str)
def test_no_module_shadows_the_standard_library(module: str) -> None:
    assert module.rpartition(".")[2] not in sys.stdlib_module_names


def test_every_package_says_what_it_holds() -> None:
    packages = [p for p in project_modules().values() if p.name == "__init__.py"]
    assert len(packages) >= 9
    missing = [str(p.relative_to(ROOT)) for p in packages if not p.read_text().lstrip().startswith('"""')]
    assert missing == []


# The public surfaces: what docs and service teams may import. Changing one is a contract change.
STATEMODEL_API = [
    "Accepted", "ClaimCause", "Claimed", "Command", "ConfirmSend", "Consequence", "DomainError",
    "ErrorCategory", "Event", "ExhaustionCause", "ExpireLease", "Failure", "ForbiddenCommand",
    "IllegalTransition", "LeaseStillLive", "Message", "Phase", "Prepare", "Rearm", "Rearmed", "Record",
    "Redrive",
    "RedriveExhausted", "ReportSendFailure", "RollbackCause", "RolledBack", "SendConfirmed", "SendFailed",
    "StaleAttempt", "Status", "Stored", "Submit", "TRANSITIONS", "Transition", "consequence", "decide",
    "evolve", "replay",
    # the sans-I/O flows
    "Answer", "ConditionFailed", "Flow", "Flows", "Outcome", "Result", "Send", "Sent", "Settings",
    "Write", "Written", "advance", "start_dispatch", "start_expire", "start_outbox", "start_rearm",
    "start_redrive", "start_submit",
]  # fmt: skip
ADAPTERS_API = [
    "ConfigError", "InvalidMessage", "InvalidRearm", "Key", "LayoutMismatch", "Outbox", "OutboxError",
    "PassSummary",
    "RearmResult", "RecordView", "SendResult", "Shards", "TableLayout", "ensure_resources", "reconcile",
    "submit", "SendOutcome", "RearmOutcome",
    "BatchResult", "Delivery", "Inbox", "InboxError", "InboxRearmResult", "InboxView", "InvalidEffect",
    "ProcessResult", "ProcessOutcome", "InboxRearmOutcome", "InboxLayoutMismatch",
]  # fmt: skip
TESTING_API = [
    "COVERAGE", "PROFILES", "Crashed", "Expected", "Fault", "FaultInjectionSuite", "FaultInjector",
    "LambdaContext", "OutboxSuite", "Plan", "Promise", "Reply", "Request", "Service", "TableRecord",
    "alb_event", "api_gateway_event", "function_url_event", "outbox_service", "rest_api_event",
    "run_suite", "sendguard_service",
    "Consumer", "InboxSuite", "run_inbox_suite",
]  # fmt: skip


@pytest.mark.parametrize(
    ("package", "expected"),
    [(statemodel, STATEMODEL_API), (adapters, ADAPTERS_API), (adapters.testing, TESTING_API)],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_public_surface(package: object, expected: list[str]) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    assert sorted(names) == sorted(expected)
    assert all(getattr(package, name) is not None for name in names)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_parsed_in_the_cli_package_and_answers_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = importlib.import_module(COMMANDS[command][0])
    assert module.__name__.startswith("adapters.cli.")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0 and f"sendguard {command}" in capsys.readouterr().out


def test_the_consumer_loads_nothing_of_the_outbox_at_import() -> None:
    """A consume's cold start pays for the inbox alone: the outbox's store, runner, queue and bodies,
    and the re-arm (an operator's path), are not on its import path."""
    code = (
        "import sys, adapters.aws_lambda_consumer; "
        "print(sorted(m for m in sys.modules if m in {'adapters.runtime.outbox', 'adapters.runtime.store', "
        "'adapters.runtime.runner', 'adapters.runtime.sqs', 'adapters.runtime.bodies', "
        "'adapters.runtime.rearm', 'adapters.runtime.reconciler'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
