"""sendguard's own fault-injection suite: the shipped `FaultInjectionSuite` on sendguard's handlers,
the example in docs/fault-injection.md run as written in the `ci` profile, and the suite's own
promises: no false alarm, the team's clients faulted, hooks that are used, every thread's error
counted, reports that replay, a plugin that stays out of the way without the `testing` extra."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import boto3
import pytest
from hypothesis import strategies as st

from adapters import aws_lambda
from adapters.testing import (
    Expected,
    FaultInjectionSuite,
    FaultInjector,
    Plan,
    Reply,
    Request,
    Service,
    TableRecord,
    run_suite,
    sendguard_service,
)
from adapters.testing import mutants as mutants_module
from adapters.testing.injector import Fault
from adapters.testing.report import REPRODUCE_VARIABLE, SCENARIO_VARIABLE
from adapters.testing.scenarios import SCENARIOS, Scenario, run_scenario
from statemodel.records import Phase

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "fault-injection.md"


class SendguardSuite(FaultInjectionSuite):
    pass


def test_no_fault_sequence_leaves_an_orphan_or_loses_a_message(sendguard_aws: None) -> None:
    run_suite(SendguardSuite)  # $HYPOTHESIS_PROFILE, else ci (`make fuzz`: long)


def test_the_documented_example_runs_as_written_in_ci(tmp_path: Path) -> None:
    """The team's own handler and table (examples/orders, copied as the doc says) under the doc's
    suite, in a project of its own, in the `ci` profile: coverage checked."""
    (example,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    (tmp_path / "test_orders_faults.py").write_text(example, encoding="utf-8")
    shutil.copy(ROOT / "examples" / "orders" / "handler.py", tmp_path / "orders.py")
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout


# ---- 1. no false alarms ---------------------------------------------------------------------------

CRASHED_CLAIM = next(s for s in SCENARIOS if s.name == "a reconciler crashes after its claim")


class LongReconcilerSuite(FaultInjectionSuite):
    """The reported setup: a reconciler function with a 30 s timeout, longer than a submit's."""

    def make_service(self) -> Service:
        return sendguard_service(self.protocol, invocation_ms=10_000, reconcile_ms=30_000)


def test_a_crashed_reconciler_claim_is_waited_for_not_reported_lost(sendguard_aws: None) -> None:
    suite = LongReconcilerSuite()
    try:
        for step in CRASHED_CLAIM.steps:
            step(suite)
        (record,) = [view.stored.record for _, view in suite.records().values()]  # type: ignore[union-attr]
        # the claim holds a reconciler's lease: longer than the 13 s the suite used to wait per pass
        assert record.phase is Phase.IN_FLIGHT
        assert record.lease_expires_at is not None
        assert record.lease_expires_at - record.updated_at > 30_000
    finally:
        suite.teardown()  # quiescence: the lease expires, the record is re-driven, nothing is lost


# ---- 2. the team's clients ------------------------------------------------------------------------


def test_every_client_is_faulted_and_its_sends_recorded(sendguard_aws: None) -> None:
    made_before = boto3.client("sqs")  # the default session, before the injector starts
    url = made_before.create_queue(QueueName="team")["QueueUrl"]
    injector = FaultInjector()
    with injector.installed():
        clients = [made_before, boto3.client("sqs"), boto3.Session().client("sqs")]
        for client in clients:
            client.send_message(QueueUrl=url, MessageBody="team's own")
            with (
                injector.armed(Plan(Fault.SQS_ACCESS_DENIED)),
                pytest.raises(Exception, match="AccessDenied"),
            ):
                client.send_message(QueueUrl=url, MessageBody="never sent")
    assert [s.body for s in injector.landed] == ["team's own"] * 3
    assert [f.fault for f in injector.fired] == [Fault.SQS_ACCESS_DENIED] * 3
    with injector.armed(Plan(Fault.SQS_ACCESS_DENIED)):  # uninstalled: no fault any more
        made_before.send_message(QueueUrl=url, MessageBody="after")


def _sends_itself(make_client: Any) -> type[FaultInjectionSuite]:
    class TeamSuite(FaultInjectionSuite):
        def make_service(self) -> Service:
            service = sendguard_service(self.protocol)

            def submit(event: Any, context: Any) -> Any:
                make_client().send_message(QueueUrl=service.queue_url, MessageBody=event["body"])
                return aws_lambda.submit(event, context)

            return attrs.evolve(service, submit=submit)

    return TeamSuite


@pytest.mark.parametrize("made", ["before the suite starts", "in the handler", "on a session of its own"])
def test_a_handler_that_sends_to_sqs_itself_before_sendguard_is_caught(
    sendguard_aws: None, made: str
) -> None:
    early = boto3.client("sqs")  # the default session's, before the suite (and its injector) starts
    make_client = {
        "before the suite starts": lambda: early,
        "in the handler": lambda: boto3.client("sqs"),
        "on a session of its own": lambda: boto3.Session().client("sqs"),
    }[made]
    with pytest.raises(AssertionError, match="no record accounts for"):
        run_scenario(_sends_itself(make_client), SCENARIOS[0])


# ---- 3. hooks -------------------------------------------------------------------------------------

CALLS: Counter[str] = Counter()
HANDLED: list[Any] = []


class SpySuite(FaultInjectionSuite):
    """Every hook overridden: a tenant in each body, a header, and a team event of its own."""

    def request_bodies(self) -> st.SearchStrategy[Any]:
        CALLS["request_bodies"] += 1
        return st.builds(lambda n: {"order": n, "tenant": "spy"}, st.integers(0, 9))

    def request_headers(self) -> st.SearchStrategy[Any]:
        CALLS["request_headers"] += 1
        return st.just({"x-tenant": "spy"})

    def make_event(self, request: Request) -> Any:
        CALLS["make_event"] += 1
        return {"order": request.body, "key": request.key, "tenant": request.headers["x-tenant"]}

    def read_reply(self, answer: Any) -> Reply:
        CALLS["read_reply"] += 1
        return answer  # type: ignore[no-any-return]

    def read_item(self, item: dict[str, Any]) -> TableRecord | None:
        CALLS["read_item"] += 1
        return super().read_item(item)

    def expected_message(self, request: Request) -> Expected:
        CALLS["expected_message"] += 1
        return Expected(request.body, {"tenant": request.body["tenant"]})

    def make_service(self) -> Service:
        service = sendguard_service(self.protocol)

        def submit(event: Any, context: Any) -> Reply:  # a non-HTTP handler of the team's
            HANDLED.append(event)
            body = {"payload": event["order"], "attributes": {"tenant": event["tenant"]}}
            headers = {"idempotency-key": event["key"]} if event["key"] else {}
            api = {
                "version": "2.0",
                "rawPath": "/messages",
                "headers": headers,
                "requestContext": {"http": {"method": "POST", "path": "/messages"}},
                "body": json.dumps(body),
            }
            answer = aws_lambda.submit(api, context)
            message_id = json.loads(answer["body"]).get("messageId")
            return Reply(answer["statusCode"], message_id if answer["statusCode"] == 202 else None)

        return attrs.evolve(service, submit=submit)


def test_a_subclass_s_hooks_are_the_ones_used(sendguard_aws: None) -> None:
    CALLS.clear()
    HANDLED.clear()
    run_scenario(SpySuite, SCENARIOS[0])
    run_suite(SpySuite, profile="smoke")
    assert set(CALLS) == {
        "request_bodies", "request_headers", "make_event", "read_reply", "read_item", "expected_message"
    }  # fmt: skip
    assert HANDLED, "the team's handler never ran"
    assert all(event["tenant"] == "spy" and event["order"]["tenant"] == "spy" for event in HANDLED)


# ---- 5. every error counts ------------------------------------------------------------------------


class StalledHandlerRaises(FaultInjectionSuite):
    def make_service(self) -> Service:
        service = sendguard_service(self.protocol)

        def submit(event: Any, context: Any) -> Any:
            answer = aws_lambda.submit(event, context)
            return broken_team_code(answer)

        return attrs.evolve(service, submit=submit)


def broken_team_code(answer: dict[str, Any]) -> Any:
    return answer["no such field"]


def test_an_exception_in_a_stalled_invocation_fails_the_run_with_its_traceback(sendguard_aws: None) -> None:
    stall = next(s for s in SCENARIOS if s.name.startswith("STALL_PAST_LEASE at call 2, past"))
    with pytest.raises(KeyError) as raised:
        run_scenario(StalledHandlerRaises, stall)
    assert "broken_team_code" in "".join(str(entry.name) for entry in raised.traceback)


# ---- 6. reports -----------------------------------------------------------------------------------


def _notes(error: BaseException) -> str:
    return "\n".join(getattr(error, "__notes__", []))


def _recipe(notes: str, variable: str) -> str:
    found = re.search(rf"{variable}=('[^']*'|\S+) python -m pytest", notes)
    assert found, notes
    return found.group(1).strip("'")


def test_a_coverage_phase_failure_prints_numbered_steps_and_a_recipe_that_replays_it(
    sendguard_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = mutants_module.suite_for("team_turns_503_into_202")
    with pytest.raises(AssertionError) as first:
        run_suite(broken, profile="ci")
    notes = _notes(first.value)
    assert re.search(r"^\s+1\. a fresh table", notes, re.M), notes
    assert re.search(r"^\s+2\. submit key-1 with fault '", notes, re.M), notes
    assert "table: [key-1 " in notes
    monkeypatch.setenv(SCENARIO_VARIABLE, _recipe(notes, SCENARIO_VARIABLE))
    with pytest.raises(AssertionError) as again:
        run_suite(broken, profile="ci")
    assert str(again.value) == str(first.value)


def test_a_hypothesis_failure_prints_the_shrunk_steps_and_a_recipe_that_replays_it(
    sendguard_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = mutants_module.suite_for("team_sends_before_sendguard")
    with pytest.raises(AssertionError) as first:
        run_suite(broken, profile="smoke")  # smoke: no coverage phase, straight to Hypothesis
    notes = _notes(first.value)
    assert "The shrunk sequence, step by step:" in notes
    assert "@reproduce_failure" not in notes
    monkeypatch.setenv(REPRODUCE_VARIABLE, _recipe(notes, REPRODUCE_VARIABLE))
    with pytest.raises(AssertionError) as again:
        run_suite(broken, profile="smoke")
    assert "no record accounts for" in str(again.value)


# ---- 7. installed without the `testing` extra -----------------------------------------------------

WITHOUT_THE_EXTRA = """
import sys, importlib.abc
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"hypothesis", "moto", "time_machine"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_without_the_testing_extra_the_plugin_stays_out_of_the_way(tmp_path: Path) -> None:
    (tmp_path / "test_team.py").write_text(
        "def test_the_team_s_own():\n    assert True\n\n"
        "def test_uses_the_fixture(sendguard_aws):\n    pass\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_THE_EXTRA,
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert "1 passed, 1 error" in result.stdout, result.stdout + result.stderr
    assert "needs the `testing` extra" in result.stdout


# ---- 8. mutants -----------------------------------------------------------------------------------

WIRING = [name for name in mutants_module.MUTANTS if name.startswith("team_")]


@pytest.mark.parametrize("name", WIRING)
def test_the_coverage_phase_catches_each_team_wiring_mutant(sendguard_aws: None, name: str) -> None:
    machine = mutants_module.suite_for(name)
    with pytest.raises(AssertionError):
        for scenario in SCENARIOS:
            run_scenario(machine, scenario)


def test_scenarios_are_named_uniquely() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(set(names)) == len(names)
    assert all(isinstance(s, Scenario) and s.steps for s in SCENARIOS)


# ---- 4. coverage by construction ------------------------------------------------------------------


def test_the_coverage_phase_alone_reaches_every_fault_row_and_stall_whatever_the_class(
    sendguard_aws: None,
) -> None:
    from adapters.testing.scenarios import expected_coverage
    from adapters.testing.suite import COVERAGE

    renamed = type("AnyOtherName", (SpySuite,), {})  # other hooks, another name: other draws
    COVERAGE.clear()
    for scenario in SCENARIOS:
        run_scenario(renamed, scenario)
    assert sorted(expected_coverage(transactional=False) - set(COVERAGE)) == []


def test_the_outbox_defaults_drive_a_handler_on_a_team_layout(sendguard_aws: None) -> None:
    """`OutboxSuite`'s hooks: a plain event in, the SendResult out, the team's layout and attributes
    read from its items; both ways in, the transactional one too."""
    from adapters.testing import OutboxSuite
    from adapters.testing.suite import COVERAGE

    COVERAGE.clear()
    for scenario in SCENARIOS:
        if scenario.name.startswith(("accepted, then", "written in the team's", "killed between")):
            run_scenario(OutboxSuite, scenario)
    assert {"row ABSENT Prepare -> PENDING", "row ABSENT Submit -> IN_FLIGHT"} <= set(COVERAGE)
