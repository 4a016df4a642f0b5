"""SnapStart-ready (issue 26, item 1): after a restore, what must differ per execution environment
differs, and the clients are new.

A snapshot and two restores are simulated with fork: a parent process initialises the submit handler
(its configuration, its clients, a first request, so a connection is open) and forks two children,
as Lambda resumes two execution environments from one snapshot. Each child submits a message
through the handler it inherited, against moto over real HTTP (`EmbeddedMoto`, in this process).
The parent runs in a process of its own, started by the test, so that it is single-threaded when it
forks (the test process runs moto's server thread). Each botocore client owns its connection pool,
so a child served by clients it did not inherit sends over connections of its own (moto's server
closes every connection after its answer, so the pools themselves cannot show it here).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.local.moto_server import EmbeddedMoto
from adapters.local.sandbox import FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS, environment
from adapters.ops.provision import ensure_resources
from adapters.runtime.snapstart import RESTORE, Restore, install

ROOT = Path(__file__).resolve().parent.parent

# The parent: initialise, then fork two children that each submit one message. `never` as the first
# argument gives the handler a Restore that no restore ever runs (the mutant: clients kept).
PARENT = r"""
import io, json, os, sys

from adapters.aws_lambda import Handlers
from adapters.runtime.snapstart import RESTORE, Restore

handlers = Handlers(restore=Restore() if sys.argv[1] == "never" else RESTORE)


def submit():
    out, sys.stdout = sys.stdout, io.StringIO()  # the handler's log lines: the attempt id is there
    try:
        event = {
            "version": "2.0",
            "rawPath": "/messages",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/messages"}},
            "body": json.dumps({"payload": {"pid": os.getpid()}}),
            "isBase64Encoded": False,
        }
        answer = handlers.submit(event)
        lines = [json.loads(line) for line in sys.stdout.getvalue().splitlines() if line.startswith("{")]
    finally:
        sys.stdout = out
    body = json.loads(answer["body"])
    outbox = handlers.outbox()  # what served the request (made by it, or kept from before)
    aws = handlers.aws()  # its store and queue, with their clients
    return {
        "status": answer["statusCode"],
        "message_id": body.get("messageId"),
        "correlation_id": body.get("correlationId"),
        "attempt_ids": sorted({line["attempt_id"] for line in lines if line.get("attempt_id")}),
        # Kept alive from here on (in the children too), so no later object can take its address.
        "same_outbox": outbox is snapshot["outbox"] if snapshot else None,
        "same_dynamodb_client": aws.dynamodb.client is snapshot["dynamodb"] if snapshot else None,
        "same_sqs_client": aws.sqs.client is snapshot["sqs"] if snapshot else None,
    }


snapshot = {}
report = {"parent": submit(), "children": []}
outbox = handlers.outbox()  # the initialised environment the snapshot holds
snapshot.update(outbox=outbox, dynamodb=handlers.aws().dynamodb.client, sqs=handlers.aws().sqs.client)
for _ in range(2):  # two environments resumed from it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            result = submit()
        except BaseException as exc:
            result = {"error": repr(exc)}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report["children"].append(json.loads(pipe.read() or b"{}"))
    os.waitpid(pid, 0)
print(json.dumps(report))
"""


def fresh_problems(report: dict[str, Any]) -> list[str]:
    """What a restore left shared between the environments: ids, or connections (the check)."""
    problems = []
    parent, children = report["parent"], report["children"]
    everyone = [parent, *children]
    for name in ("message_id", "correlation_id"):
        values = [run[name] for run in everyone]
        if len(set(values)) != len(values):
            problems.append(f"{name}s repeat across environments: {values}")
    attempts = [a for run in everyone for a in run["attempt_ids"]]
    if len(set(attempts)) != len(attempts) or len(attempts) < len(everyone):
        problems.append(f"attempt ids repeat or are missing: {attempts}")
    for n, child in enumerate(children, 1):
        for name in ("outbox", "dynamodb_client", "sqs_client"):
            if child[f"same_{name}"] is not False:
                problems.append(f"child {n} served its request with the snapshot's {name} (inherited)")
    return problems


@pytest.fixture(scope="module")
def moto() -> Iterator[dict[str, str]]:
    with EmbeddedMoto() as server, environment(FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS):
        env = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": server.endpoint}
        with environment(env):
            queue_url = ensure_resources("snapstart", "snapstart")
        yield env | {"SENDGUARD_TABLE": "snapstart", "SENDGUARD_QUEUE_URL": queue_url}


def snapshot_and_two_restores(moto: dict[str, str], restore: str) -> dict[str, Any]:
    env = moto
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SENDGUARD_"))}
    result = subprocess.run(
        [sys.executable, "-c", PARENT, restore],
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_environments_restored_from_one_snapshot_get_their_own_ids_and_new_working_clients(
    moto: dict[str, str],
) -> None:
    report = snapshot_and_two_restores(moto, "restore")
    runs = [report["parent"], *report["children"]]
    assert [run.get("status") for run in runs] == [202, 202, 202], runs  # the clients work
    assert fresh_problems(report) == []


def test_clients_kept_across_a_restore_are_caught(moto: dict[str, str]) -> None:
    report = snapshot_and_two_restores(moto, "never")  # the mutant: nothing runs after the restore
    problems = fresh_problems(report)
    assert len(problems) == 6 and all("inherited" in p for p in problems), problems


def draws_after_restores(restore: Restore) -> list[float]:
    """The first draw of `random` in two environments resumed from one snapshot of its state."""
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)  # the environment resumes with the snapshot's memory
        restore.restored()
        draws.append(random.random())
    return draws


def test_a_restore_reseeds_random() -> None:
    first, second = draws_after_restores(Restore())
    assert first != second


def test_a_restore_that_keeps_the_random_state_is_caught() -> None:
    first, second = draws_after_restores(Restore(reseed=lambda: None))
    assert first == second


class RuntimeHooks:
    """What Lambda's `snapshot_restore_py` offers: it records what was registered."""

    def __init__(self) -> None:
        self.before_snapshot: list[Any] = []
        self.after_restore: list[Any] = []

    def register_before_snapshot(self, function: Any, *args: Any, **kwargs: Any) -> None:
        self.before_snapshot.append(function)

    def register_after_restore(self, function: Any, *args: Any, **kwargs: Any) -> None:
        self.after_restore.append(function)


def test_the_runtime_hooks_prime_before_the_snapshot_and_renew_after_the_restore(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.aws_lambda import Handlers
    from adapters.runtime.runner import Aws

    monkeypatch.setenv("SENDGUARD_TABLE", "snapstart")
    monkeypatch.setenv("SENDGUARD_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/snapstart")
    made: list[Aws] = []

    def aws(config: Any) -> Aws:
        made.append(Aws.from_config(config))
        return made[-1]

    restore, hooks = Restore(), RuntimeHooks()
    handlers = Handlers(aws, restore=restore)
    assert install(restore, lambda: hooks, fork=False) == "snapshot_restore_py"
    for function in hooks.before_snapshot:  # Lambda, once the initialisation is done
        function()
    assert len(made) == 1  # primed: the clients (and botocore's loaded data) are in the snapshot
    for function in hooks.after_restore:  # Lambda, after it resumed an environment
        function()
    assert restore.restores == 1
    assert handlers.aws() is made[-1] and len(made) == 2  # new clients after the restore
    assert install(Restore(), lambda: None, fork=False) == "fork"  # elsewhere: only a fork restores


def test_a_handler_registered_for_restores_is_not_kept_alive_by_it() -> None:
    from adapters.aws_lambda import Handlers

    restore = Restore()
    handlers = Handlers(restore=restore)
    assert len(restore._callbacks) == 1
    del handlers
    restore.restored()  # a dead handler's callback is skipped
    assert restore.restores == 1
    assert RESTORE is not restore


@pytest.mark.parametrize("fails_with", [RuntimeError("endpoint data missing"), None])
def test_a_before_snapshot_hook_that_fails_is_logged_and_does_not_fail_the_publication(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fails_with: Any
) -> None:
    from adapters.aws_lambda import Handlers
    from adapters.runtime.config import Config

    def broken(config: Config) -> Any:
        raise fails_with

    if fails_with is None:  # not configured: silent here, the first invocation says what to set
        monkeypatch.delenv("SENDGUARD_TABLE", raising=False)
    else:
        monkeypatch.setenv("SENDGUARD_TABLE", "snapstart")
        monkeypatch.setenv("SENDGUARD_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/s")
    Handlers(broken, restore=Restore()).prime()
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["event"] for line in logged] == (["handler_failed"] if fails_with else [])
