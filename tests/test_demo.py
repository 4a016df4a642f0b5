"""`sendguard demo` and `sendguard serve`: a small demo run under real HTTP faults passes its verdict;
broken variants of the service (a lost message, a forged confirm, a double send, a reconciler that
does nothing) fail it; the verdict's duplicate rule on its own; and `serve` answers real HTTP."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from adapters.aws_lambda import Handlers
from adapters.cli import demo as demo_command
from adapters.cli.serve import main as serve_main
from adapters.local import demo
from adapters.local import settle as demo_settle
from adapters.local import verdict as demo_verdict
from adapters.local.fault_proxy import Landed, Ledger
from adapters.local.load import Answered
from adapters.local.serve import EXAMPLE_BODY
from adapters.ops.audit import AuditReport
from adapters.runtime.call_report import CallReport
from adapters.runtime.call_report import report as call_report
from adapters.runtime.config import Config
from adapters.runtime.runner import Aws
from adapters.runtime.sqs import SqsQueue
from statemodel.categories import ErrorCategory, Failure
from statemodel.decider import replay
from statemodel.events import Accepted, ClaimCause, Claimed, SendConfirmed
from statemodel.flows import Outcome, Send, Sent
from statemodel.stored import Stored
from statemodel.validation import Request, message_id_for_key, new_message, parse_submission

# The producer's verdict on its own: the consumer (on by default) would hide what these break.
PRODUCER_ONLY = ("--consumer", "none")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = demo_command.main(["--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out.strip().splitlines()[-1])


# ---- the demo passes -----------------------------------------------------------------------------


def test_a_small_run_under_faults_accounts_for_every_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_cli(
        capsys, "--requests", "24", "--concurrency", "6", "--fault-rate", "0.3", "--seed", "3"
    )
    assert code == 0, report
    assert report["ok"] is True
    assert report["requests"] == 24
    assert report["orphans"] == [] and report["lost"] == [] and report["unexpected_duplicates"] == []
    assert report["breaches"] == []
    assert report["faults_injected"] > 0 and report["faults_injected"] == sum(
        report["faults_by_kind"].values()
    )
    assert report["sdk_retries"] > 0
    assert report["reconciler"]["settled"] is True
    assert sum(n for key, n in report["answers"].items() if key.startswith("POST")) == 24
    assert all(d["explained"] and d["reasons"] for d in report["duplicates"])


def test_the_text_report_fits_one_screen() -> None:
    report = demo.run(
        demo.DemoOptions(requests=10, concurrency=3, fault_rate=0.0, progress=False), io.StringIO()
    )
    text = demo.render(report)
    assert report["ok"], text
    assert text.splitlines()[-1].startswith("OK — every message accounted for, every effect applied once")
    assert len(text.splitlines()) <= 40
    for heading in ("answers", "faults", "SDK", "reconciler", "records", "consumer", "orphans", "effects"):
        assert heading in text


# ---- broken variants fail it ---------------------------------------------------------------------
# Each broken part is what the demo takes: the producer's `Handlers` (with a broken queue, or a
# reconciler that does nothing), the settle bound, the queue's reader. Nothing patches a module.


def run_broken(**options: Any) -> tuple[int, dict[str, Any]]:
    """A small producer-only run with the broken parts in `options`: its exit code, and the report as
    `--json` prints it."""
    small = {"requests": 12, "concurrency": 3, "fault_rate": 0.0, "progress": False}
    report = demo.run(demo.DemoOptions(consumer=PRODUCER_ONLY[1], **small, **options), io.StringIO())
    report = json.loads(json.dumps(report))
    return demo_command.exit_code(report), report


def with_queue(queue: type[SqsQueue]) -> Callable[[Config], Aws]:
    """What `Handlers(aws=...)` builds the store and queue with: production's, the queue replaced."""

    def build(config: Config) -> Aws:
        aws = Aws.from_config(config)
        return attrs.evolve(aws, sqs=queue(aws.sqs.client, config.queue_url))

    return build


def test_a_message_dropped_from_the_queue_is_reported_lost() -> None:
    def drain_losing_one(*args: Any, **kwargs: Any) -> Any:
        deliveries, others = demo_settle.drain(*args, **kwargs)
        return deliveries[1:], others

    code, report = run_broken(drain_queue=drain_losing_one)
    assert code == 1 and report["ok"] is False
    assert len(report["lost"]) == 2  # the 202 it was promised, and the record never sent
    assert "answered 202 but no message was ever sent" in report["lost"][0]


def test_a_confirm_of_a_send_that_never_happened_fails_the_run() -> None:
    forged: list[str] = []  # every container's queue forges only the run's first send

    class Forging(SqsQueue):
        def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
            if not forged:  # the first send: say SQS took it, and send nothing
                forged.append(send.message.message_id)
                return Sent("forged-sqs-id"), call_report("sqs", "SendMessage", 1, time.perf_counter(), None)
            return super().perform(send, deadline_ms)

    code, report = run_broken(handlers=Handlers(aws=with_queue(Forging)))
    assert code == 1
    assert any("confirmed forged-sqs-id, which SQS never accepted" in b for b in report["breaches"])
    assert any(forged[0] in line for line in report["lost"])


def test_a_sender_that_sends_twice_is_an_unexplained_duplicate() -> None:
    doubled: list[str] = []

    class Doubling(SqsQueue):
        def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
            if not doubled:
                doubled.append(send.message.message_id)
                super().perform(send, deadline_ms)  # a send the service forgets it made
            return super().perform(send, deadline_ms)

    code, report = run_broken(handlers=Handlers(aws=with_queue(Doubling)))
    assert code == 1
    (duplicate,) = report["unexpected_duplicates"]
    assert duplicate["message_id"] == doubled[0] and duplicate["copies"] == 2
    assert "no fault or failure explains this send" in duplicate["reasons"][0]
    assert report["orphans"] == [] and report["lost"] == []


def test_a_reconciler_that_does_nothing_leaves_the_table_unsettled() -> None:
    refused: list[str] = []

    class Refusing(SqsQueue):
        def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
            refused[:] = refused or [send.message.message_id]
            if send.message.message_id == refused[0]:  # every send of the first message is throttled:
                refusal = Failure(ErrorCategory.RETRYABLE, "RequestThrottled")  # rolled back, 503
                return refusal, call_report("sqs", "SendMessage", 1, time.perf_counter(), None)
            return super().perform(send, deadline_ms)

    class IdleReconciler(Handlers):
        def reconcile(self, event: object, context: object = None) -> dict[str, Any]:
            return {}

    handlers = IdleReconciler(aws=with_queue(Refusing))
    code, report = run_broken(handlers=handlers, settle_passes=3)
    assert code == 3  # not settled, and no promise broken: told apart from a broken one (1)
    assert report["reconciler"]["settled"] is False and report["reconciler"]["passes"] == 3
    assert report["reconciler"]["unsettled"] == [refused[0]]
    (waiting,) = report["reconciler"]["waiting"]
    assert waiting["message_id"] == refused[0] and waiting["phase"] == "PENDING"
    assert "the pass bound was reached" in waiting["why"]
    assert report["orphans"] == [] and report["lost"] == [] and not report["broken"]


# ---- the duplicate rule on its own ---------------------------------------------------------------


def _stored(message_id: str, confirmed: str) -> Stored:
    request = parse_submission(json.dumps({"payload": {"n": 1}}))
    assert isinstance(request, Request)
    message = new_message(request, message_id, "corr", 1_000, "k")
    history = (
        Accepted(message, 1_000),
        Claimed("a1", 40_000, ClaimCause.SUBMIT, 1_000),
        SendConfirmed("a1", confirmed, 1_010),
    )
    record = replay(history)
    assert record is not None
    return Stored(record, history)


@pytest.mark.parametrize(
    ("first_answer", "explained"),
    [("answered", False), ("reset_after", True), ("delay", True), ("late", True)],
)
def test_a_duplicate_is_allowed_only_where_the_sender_could_not_know(
    first_answer: str, explained: bool
) -> None:
    message_id = message_id_for_key("k")
    stored = _stored(message_id, "sqs-2")
    ledger = Ledger()
    ledger.landed(Landed("SendMessage", message_id, "sqs-1", applied=True, answer=first_answer))
    ledger.landed(Landed("SendMessage", message_id, "sqs-2", applied=True))
    ledger.landed(Landed("confirm", message_id, "sqs-2", applied=True))
    payload = stored.record.message.payload
    evidence = demo_verdict.Evidence(
        answers=[Answered(0, "new", "POST", 202, None, message_id, "k")],
        planned_ids=frozenset({message_id}),
        invalid_ids=frozenset(),
        stored={message_id: stored},
        foreign=[],
        deliveries=[demo_verdict.Delivery(s, message_id, payload, 5) for s in ("sqs-1", "sqs-2")],
        foreign_deliveries=0,
        ledger=ledger,
        logs=[],
        audit=AuditReport(),
        now=100_000,
        strict=True,
        settled=True,
    )
    verdict = demo_verdict.judge(evidence)
    assert verdict.orphans == [] and verdict.lost == [] and verdict.breaches == []
    (duplicate,) = verdict.duplicates
    assert duplicate.copies == 2 and duplicate.explained is explained
    assert verdict.ok is explained


def _in_flight(message_id: str, lease_expires_at: int) -> Stored:
    request = parse_submission(json.dumps({"payload": {"n": 1}}))
    assert isinstance(request, Request)
    message = new_message(request, message_id, "corr", 1_000, "k")
    history = (Accepted(message, 1_000), Claimed("a1", lease_expires_at, ClaimCause.SUBMIT, 1_000))
    record = replay(history)
    assert record is not None
    return Stored(record, history)


@pytest.mark.parametrize("waiting", [True, False])
def test_a_record_still_waiting_is_neither_orphaned_nor_lost(waiting: bool) -> None:
    """An in-flight record whose lease expired, nothing on the queue: an orphan on a settled table;
    on one the settle phase left (the next pass rolls it back and sends it), only waiting."""
    message_id = message_id_for_key("k")
    evidence = demo_verdict.Evidence(
        answers=[Answered(0, "new", "POST", 503, None, message_id, "k")],
        planned_ids=frozenset({message_id}),
        invalid_ids=frozenset(),
        stored={message_id: _in_flight(message_id, lease_expires_at=50_000)},
        foreign=[],
        deliveries=[],
        foreign_deliveries=0,
        ledger=Ledger(),
        logs=[],
        audit=AuditReport(),
        now=100_000,
        strict=True,
        settled=not waiting,
        waiting=frozenset({message_id}) if waiting else frozenset(),
    )
    verdict = demo_verdict.judge(evidence)
    assert (bool(verdict.orphans), bool(verdict.lost)) == (not waiting, not waiting)
    assert verdict.broken is not waiting and not verdict.ok


def test_the_exit_code_tells_not_settled_from_broken() -> None:
    assert demo_command.exit_code({"ok": True, "broken": False}) == 0
    assert demo_command.exit_code({"ok": False, "broken": True}) == 1
    assert demo_command.exit_code({"ok": False, "broken": False}) == demo_command.NOT_SETTLED == 3


# ---- serve ---------------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[str]:
    stop, ready = threading.Event(), threading.Event()
    urls: list[str] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(
        target=serve_main,
        args=(["--port", "0", "--reconcile-every", "0"],),
        kwargs={"stop": stop, "ready": on_ready},
    )
    thread.start()
    try:
        assert ready.wait(30), "sendguard serve did not start"
        yield urls[0]
    finally:
        stop.set()
        thread.join(30)


def _call(url: str, method: str, body: str | None = None, **headers: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body.encode() if body else None, method=method)
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, json.loads(answer.read())


def test_serve_answers_a_post_and_a_get(served: str) -> None:
    status, posted = _call(f"{served}/messages", "POST", EXAMPLE_BODY, Idempotency_Key="k1")
    assert status == 202 and posted["status"] == "QUEUED"
    assert posted["messageId"] == message_id_for_key("k1")
    status, got = _call(f"{served}/messages/{posted['messageId']}", "GET")
    assert status == 200 and got["delivery"] == "confirmed" and got["attempts"] == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl here")
def test_serve_answers_the_readmes_curl(served: str) -> None:
    port = served.rsplit(":", 1)[1]
    command = [
        "curl",
        "-s",
        "-X",
        "POST",
        f"localhost:{port}/messages",
        "-H",
        "Idempotency-Key: k2",
        "-d",
        EXAMPLE_BODY,
    ]
    posted = json.loads(
        subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
    )
    assert posted["status"] == "QUEUED"
    command = ["curl", "-s", f"localhost:{port}/messages/{posted['messageId']}"]
    got = json.loads(subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout)
    assert got["messageId"] == posted["messageId"] and got["delivery"] == "confirmed"


def test_the_banners_hints_work_as_printed_without_the_virtualenv(
    capsys: pytest.CaptureFixture[str], served: str
) -> None:
    hints = [line.strip() for line in capsys.readouterr().err.splitlines() if "AWS_ENDPOINT_URL=" in line]
    assert [h.split(" -m adapters.cli ")[1].split(" --table")[0] for h in hints] == [
        "audit",
        "status",
        "redrive --exhausted --dry-run",
    ]
    clean = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}  # no virtualenv active
    for hint in hints:
        result = subprocess.run(["sh", "-c", hint], capture_output=True, text=True, timeout=60, env=clean)
        assert result.returncode == 0, (hint, result.stdout, result.stderr)
