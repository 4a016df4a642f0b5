"""sendguard's own fault-injection suite: the shipped `FaultInjectionSuite` on sendguard's handlers,
the example in docs/fault-injection.md run as written in the `ci` profile, and the suite's own
promises: no false alarm, the team's clients faulted, hooks that are used, every thread's error
counted, reports that replay, a plugin that stays out of the way without the `testing` extra."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import boto3
import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import (
    ALBEvent,
    APIGatewayProxyEvent,
    APIGatewayProxyEventV2,
    LambdaFunctionUrlEvent,
)
from hypothesis import strategies as st

from adapters import TableLayout, aws_lambda
from adapters.runtime import apigw
from adapters.runtime.call_report import CallReport
from adapters.runtime.config import Config
from adapters.runtime.runner import Aws
from adapters.runtime.sqs import SqsQueue
from adapters.testing import (
    Expected,
    FaultInjectionSuite,
    FaultInjector,
    LambdaContext,
    OutboxSuite,
    Plan,
    Promise,
    Reply,
    Request,
    Service,
    TableRecord,
    alb_event,
    api_gateway_event,
    function_url_event,
    outbox_service,
    rest_api_event,
    run_suite,
    sendguard_service,
)
from adapters.testing import mutants as mutants_module
from adapters.testing.injector import Fault
from adapters.testing.report import REPRODUCE_VARIABLE, SCENARIO_VARIABLE
from adapters.testing.scenarios import SCENARIOS, Scenario, run_scenario
from statemodel.flows import Outcome, Send, Settings
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
    with pytest.raises(AssertionError, match="no record or row accounts for"):
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
    assert "no record or row accounts for" in str(again.value)


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
    """Caught by the check of the promise it breaks (`CAUGHT_WITH`), not by any failure at all."""
    machine = mutants_module.suite_for(name)
    with pytest.raises(AssertionError) as failed:
        for scenario in SCENARIOS:
            run_scenario(machine, scenario)
    assert mutants_module.judge(name, failed.value).caught, str(failed.value)[:300]


def test_every_mutant_names_its_check_and_only_that_check_counts() -> None:
    assert set(mutants_module.CAUGHT_WITH) == set(mutants_module.MUTANTS)
    judge = mutants_module.judge
    own = AssertionError("key-1: answered 202 (accepted), but no message was sent (the answer: …)")
    assert judge("team_answers_202_itself", own).label == "caught"
    other = AssertionError("key-1: the team's attributes were rewritten: {} -> {}")
    assert judge("team_answers_202_itself", other).label == "ELSEWHERE"  # another invariant
    crash = TypeError("update_request() got an unexpected keyword argument 'item'")
    assert judge("team_answers_202_itself", crash).label == "ELSEWHERE"  # a crash, not a check
    assert judge("team_answers_202_itself", None).label == "MISSED"


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


# ---- 9. the team's promise: its own rows ----------------------------------------------------------

ROW_WINDOW = next(s for s in SCENARIOS if s.name == "killed right after the team writes on its own")


def test_a_row_written_before_send_and_left_without_its_message_is_caught_by_its_promise(
    sendguard_aws: None,
) -> None:
    """The dual write: the payment row lands, the invocation dies before `send`; no record of
    sendguard's is wrong, only the row's promise is broken — and the report names the row."""
    with pytest.raises(AssertionError) as caught:
        run_scenario(mutants_module.suite_for("team_row_then_send"), ROW_WINDOW)
    assert "the row ('key-1', 'payment') was left without its message" in str(caught.value)


def test_the_payments_rows_keep_their_promise_when_written_with_their_record(sendguard_aws: None) -> None:
    """The same team, with the row and the record in one transaction (or the row being the record):
    every scenario of the coverage phase, no false alarm, the team's own writes broken on purpose."""
    from adapters.testing.suite import COVERAGE, TEAM_WRITES

    COVERAGE.clear()
    for scenario in SCENARIOS:
        run_scenario(mutants_module.PaymentsSuite, scenario)
    assert COVERAGE[TEAM_WRITES] and COVERAGE["fault CRASH_AFTER_CALL on the team's own call"]


class PromisesNothing(mutants_module.PaymentsSuite):
    """A team whose payment rows promise that no message goes out for them."""

    def promised_message(self, item: dict[str, Any]) -> Promise | None:
        promise = super().promised_message(item)
        return None if promise is None else Promise(promise.key, None)


def test_a_message_for_a_row_that_promises_none_is_caught(sendguard_aws: None) -> None:
    with pytest.raises(AssertionError, match=r"the row \('key-1', 'event'\) promises no message"):
        run_scenario(PromisesNothing, SCENARIOS[0])


# ---- 10. FIFO, several queues, composite keys -----------------------------------------------------

SHOP = TableLayout(partition_key="tenant", sort_key="entry", status_attribute="state", body_attribute="body")


class ShopSuite(OutboxSuite):
    """A team's table keyed by (tenant, entry) pairs, two FIFO queues: every record's key a pair."""

    layout = SHOP
    aws: Any = None  # the store and queue its Outboxes are built with (None: sendguard's own)

    def make_service(self) -> Service:
        aws = {} if self.aws is None else {"aws": self.aws}
        return outbox_service(self.protocol, self.layout, fifo=True, queues=("orders", "refunds"), **aws)

    def make_event(self, request: Request) -> Any:
        event = OutboxSuite.make_event(self, request)
        return {**event, "key": (request.key or f"k-{uuid.uuid4().hex[:8]}", "entry")}

    def read_item(self, item: dict[str, Any]) -> TableRecord | None:
        view = super().read_item(item)
        return None if view is None else attrs.evolve(view, request_key=item["tenant"]["S"])


def test_fifo_queues_and_composite_keys_hold_every_check_per_queue(sendguard_aws: None) -> None:
    from adapters.testing.suite import COVERAGE

    COVERAGE.clear()
    for scenario in SCENARIOS[:12]:
        run_scenario(ShopSuite, scenario)
    run_suite(ShopSuite, profile="smoke")
    suite = ShopSuite()
    try:
        assert suite.service.fifo and set(suite.service.queues) == {"orders", "refunds"}
        assert all(url.endswith(".fifo") for url in suite.service.queue_urls)
        assert suite.name("key-1/entry") == "('key-1', 'entry')"
    finally:
        suite.teardown()


class FifoSendguardSuite(FaultInjectionSuite):
    def make_service(self) -> Service:
        return sendguard_service(self.protocol, fifo=True)


def test_sendguard_s_own_handler_on_a_fifo_queue_sends_in_the_group_attribute_s_group(
    sendguard_aws: None,
) -> None:
    for scenario in SCENARIOS[:3]:
        run_scenario(FifoSendguardSuite, scenario)
    run_suite(FifoSendguardSuite, profile="smoke")


class _GroupLost(SqsQueue):
    """Every message in one FIFO group, whatever its record's."""

    def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, CallReport]:
        message = attrs.evolve(send.message, group_id="one-group")
        return super().perform(attrs.evolve(send, message=message), deadline_ms)


class _RefundsToOrders(SqsQueue):
    """A refund's message to the orders queue (the shop's queues are `<table>.fifo` and
    `<table>-refunds.fifo`), though its record names the refunds queue."""

    def destination(self, send: Send) -> str:
        return super().destination(send).replace("-refunds.fifo", ".fifo")


@pytest.mark.parametrize(
    ("queue", "said"),
    [(_GroupLost, "went out in group 'one-group'"), (_RefundsToOrders, "but the record names queue")],
)
def test_a_send_in_another_group_or_to_another_queue_is_caught_naming_the_team_s_key(
    sendguard_aws: None, queue: type[SqsQueue], said: str
) -> None:
    def aws(config: Config) -> Aws:
        """The ports `outbox_service(aws=...)` builds the Outboxes on: sendguard's, the queue broken."""
        made = Aws.from_config(config)
        return Aws(made.dynamodb, queue(made.sqs.client, config.queue_url))

    broken = type("Broken", (ShopSuite,), {"aws": staticmethod(aws)})
    with pytest.raises(AssertionError) as caught:
        for scenario in SCENARIOS[:2]:
            run_scenario(broken, scenario)
    assert said in str(caught.value)
    assert re.search(r"\(record \('k[^']*', 'entry'\)\)", str(caught.value))  # the team's key, a pair


# ---- 11. events as AWS sends them -----------------------------------------------------------------

BUILDERS = {
    "rest_api": (rest_api_event, APIGatewayProxyEvent, correlation_paths.API_GATEWAY_REST),
    "http_api": (api_gateway_event, APIGatewayProxyEventV2, correlation_paths.API_GATEWAY_HTTP),
    "function_url": (function_url_event, LambdaFunctionUrlEvent, correlation_paths.LAMBDA_FUNCTION_URL),
    "alb": (alb_event, ALBEvent, correlation_paths.APPLICATION_LOAD_BALANCER),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_each_event_builder_makes_the_event_aws_sends_and_powertools_finds_its_correlation_id(
    name: str,
) -> None:
    build, powertools, path = BUILDERS[name]
    request = Request({"payload": {"order": 1}}, "key-7", {"x-tenant": "acme"})
    event = build(request, "/orders", {"order": 1})
    parsed = powertools(event)
    assert (parsed.http_method, parsed.path, parsed.json_body) == ("POST", "/orders", {"order": 1})
    assert parsed.headers.get("Idempotency-Key") == "key-7" and parsed.headers.get("X-Tenant") == "acme"
    if name == "alb":
        arn = ALBEvent(event).request_context.elb_target_group_arn
        assert arn.startswith("arn:aws:elasticloadbalancing:")
    else:
        context = event["requestContext"]
        assert context["stage"] in ("prod", "$default") and context["accountId"]
        if name != "rest_api":
            assert context["routeKey"] == event["routeKey"] and context["http"]["path"] == "/orders"
    logger = Logger(service="team", stream=io.StringIO())

    @logger.inject_lambda_context(correlation_id_path=path)
    def correlation_id(event: dict[str, Any], context: Any) -> str | None:
        return logger.get_correlation_id()

    found = correlation_id(event, LambdaContext(3_000))
    wanted = event["headers"]["x-amzn-trace-id"] if name == "alb" else event["requestContext"]["requestId"]
    assert found == wanted and found
    assert correlation_id(build(request), LambdaContext(3_000)) != found, "each request has its own"
    read = apigw.read_request(event)  # and sendguard's handler reads the same request
    assert isinstance(read, apigw.HttpRequest)
    assert (read.method, read.path, read.header("idempotency-key")) == ("POST", "/orders", "key-7")
    assert read.body is not None and json.loads(read.body) == {"order": 1}


def test_an_alb_with_multi_value_headers_gets_them_as_lists_only() -> None:
    event = alb_event(Request({"payload": 1}, "key-1"), multi_value_headers=True)
    assert "headers" not in event and event["multiValueHeaders"]["idempotency-key"] == ["key-1"]
    assert ALBEvent(event).multi_value_headers["idempotency-key"] == ["key-1"]


@pytest.mark.parametrize("name", BUILDERS)
def test_sendguard_s_handler_takes_each_event_shape_under_the_suite(sendguard_aws: None, name: str) -> None:
    build = BUILDERS[name][0]
    shaped = type(f"Shaped_{name}", (FaultInjectionSuite,), {"make_event": lambda self, r: build(r)})
    run_scenario(shaped, SCENARIOS[0])


# ---- 12. one source of settings -------------------------------------------------------------------


def test_the_settings_and_layout_are_read_from_the_team_s_outbox(sendguard_aws: None) -> None:
    service = mutants_module.payments_service(mutants_module.Payments(row_then_send=False))
    try:
        assert service.settings == Settings(max_attempts=2, redrive_after_ms=1_000, lease_margin_ms=1_000)
        assert service.layout == mutants_module.PAYMENTS
    finally:
        service.cleanup()


def test_settings_told_again_must_agree_and_are_deprecated_without_an_outbox(sendguard_aws: None) -> None:
    team = mutants_module.Payments(row_then_send=False)
    handlers: dict[str, Any] = {
        "submit": team.submit,
        "reconcile": team.reconcile,
        "environment_for": team.environment,
    }
    with pytest.raises(ValueError, match="differs from what the Outbox runs with"):
        outbox_service(Settings(), outbox=team.outbox, reset=team.reset, **handlers)
    told = Settings(max_attempts=2, redrive_after_ms=1_000, lease_margin_ms=1_000)
    with pytest.warns(DeprecationWarning, match="pass outbox="):
        service = outbox_service(told, mutants_module.PAYMENTS, reset=team.reset, **handlers)
    service.cleanup()
    assert service.settings == told


def test_without_an_outbox_the_settings_come_from_the_team_s_environment(sendguard_aws: None) -> None:
    team = mutants_module.Payments(row_then_send=False)

    def environment(table: str, queue_url: str) -> dict[str, str]:
        return {**team.environment(table, queue_url), "SENDGUARD_MAX_ATTEMPTS": "3"}

    service = outbox_service(
        layout=mutants_module.PAYMENTS,
        submit=team.submit,
        reconcile=team.reconcile,
        environment_for=environment,
    )
    service.cleanup()
    assert service.settings == Settings(max_attempts=3)  # the rest: Outbox's defaults, in its seconds


def test_the_documented_example_imports_only_from_adapters() -> None:
    (example,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    modules = re.findall(r"^(?:from|import) (\S+)", example, re.M)
    assert {m for m in modules if m.split(".")[0] not in {"hypothesis", "json", "uuid", "orders"}} <= {
        "adapters",
        "adapters.testing",
    }, modules


# ---- 13. reports in words -------------------------------------------------------------------------


def test_a_success_answered_for_a_failure_says_so_in_words(sendguard_aws: None) -> None:
    with pytest.raises(AssertionError, match=r"answered 202 \(accepted\), but no message was sent"):
        for scenario in SCENARIOS:
            run_scenario(mutants_module.suite_for("team_turns_503_into_202"), scenario)


def test_hypothesis_s_shrink_warning_names_the_suite_s_bound(
    sendguard_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from hypothesis import Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    from adapters.testing.report import shrink_budget

    broken = mutants_module.suite_for("team_sends_before_sendguard")
    chosen = settings(
        max_examples=5,
        stateful_step_count=5,
        database=None,
        derandomize=True,
        phases=[Phase.generate, Phase.shrink],
    )
    with shrink_budget(0), pytest.raises(AssertionError):
        run_state_machine_as_test(broken, settings=chosen)
    printed = capsys.readouterr().out
    assert "Shrinking stopped after 0 s, the suite's bound" in printed
    assert "five minutes" not in printed


def test_a_run_that_missed_the_transactional_row_says_to_pass_transactional_false() -> None:
    """A send-only team left `outbox_service`'s default (transactional): the coverage failure says
    what to change, and only for that row (team trial)."""
    from adapters.testing.run import _hint

    assert "pass transactional=False to outbox_service" in _hint(["row ABSENT Prepare -> PENDING"])
    assert _hint(["fault DDB_THROTTLED_SDK_GAVE_UP", "invocation crashed"]) == ""
