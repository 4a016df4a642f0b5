"""A reconciler pass fanned out across Lambda invocations (issue 26, item 4): the coordinator's
split of the index's shards, the workers' payloads, the drain on moto through the Lambda handler,
overlap and duplicated events, malformed payloads, and invokes that fail.

moto's `lambda:Invoke` needs Docker: the workers run in this process, through
`adapters.testing.fanout.InProcessInvoker`, the `Invoker` production's `LambdaInvoker` implements
(the latter is checked against botocore's Stubber below)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import structlog
from botocore.stub import Stubber
from moto import mock_aws

from adapters.aws_lambda import Handlers
from adapters.ops.provision import ensure_resources
from adapters.runtime.classify import Classified
from adapters.runtime.classify import failed as classified
from adapters.runtime.clients import make_client, now_ms
from adapters.runtime.config import Config, ConfigError
from adapters.runtime.fanout import (
    KIND,
    InvalidPayload,
    LambdaInvoker,
    fan_out,
    shard_groups,
    worker_payload,
    worker_shards,
)
from adapters.runtime.layout import TableLayout
from adapters.runtime.reconciler import PassSummary
from adapters.runtime.runner import Aws
from adapters.testing.fanout import InProcessInvoker
from adapters.testing.serial_moto import one_request_at_a_time
from statemodel.attention import MAX_SHARDS, Shards
from statemodel.categories import ErrorCategory
from statemodel.records import Phase
from tests.test_drain import SETTINGS, _pending, _queued, _record

Groups = Callable[[int, int], list[tuple[int, ...]]]
BASE = {"SENDGUARD_TABLE": "t", "SENDGUARD_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/q"}


# ---- the split: disjoint groups that cover every shard ---------------------------------------------


def group_problems(groups: list[tuple[int, ...]], read: int, fanout: int) -> list[str]:
    """What is wrong with a split of `read` shards for `fanout` workers, each problem named."""
    problems = []
    named = [shard for group in groups for shard in group]
    if len(named) != len(set(named)):
        problems.append("overlap: a shard in two groups")
    if set(named) != set(range(read)):
        problems.append(f"coverage: shards {sorted(set(range(read)) - set(named))} in no group")
    if any(not group for group in groups):
        problems.append("empty: a group without shards")
    if len(groups) != max(1, min(fanout, read)):
        problems.append(f"width: {len(groups)} groups for {fanout} workers over {read} shards")
    return problems


@pytest.mark.parametrize(("read", "fanout"), [(1, 1), (4, 0), (4, 4), (8, 3), (3, 10), (256, 100)])
def test_the_shards_split_into_disjoint_groups_covering_all(read: int, fanout: int) -> None:
    groups = shard_groups(read, fanout)
    assert group_problems(groups, read, fanout) == []
    assert max(map(len, groups)) - min(map(len, groups)) <= 1  # as even as can be


def _overlapping(read: int, fanout: int) -> list[tuple[int, ...]]:
    groups = shard_groups(read, fanout)
    return [groups[0] + groups[1][:1], *groups[1:]]


def _leaves_one_out(read: int, fanout: int) -> list[tuple[int, ...]]:
    groups = shard_groups(read, fanout)
    return [*groups[:-1], groups[-1][:-1]] if len(groups[-1]) > 1 else groups[:-1]


# Each mutant, entered through `fan_out`'s `groups` parameter, and the check that catches it.
MUTANTS: list[tuple[str, Groups]] = [("overlap", _overlapping), ("coverage", _leaves_one_out)]


@pytest.mark.parametrize(("check", "groups"), MUTANTS, ids=[name for name, _ in MUTANTS])
def test_each_wrong_split_is_caught_by_the_check_naming_it(check: str, groups: Groups) -> None:
    config = Config("t", BASE["SENDGUARD_QUEUE_URL"], layout=TableLayout(shards=Shards(8, 8)))
    config = _fanned(config, 3)
    invoker = InProcessInvoker()
    fan_out(config, invoker, _no_drain, now_ms() + 10_000, groups=groups)
    sent = [tuple(p["shards"]) for p in invoker.invoked]
    found = group_problems(sent, 8, 3)
    assert [p.split(":")[0] for p in found] == [check]  # caught, and by this check alone


def test_a_wide_fan_out_invokes_on_the_pass_threads_each_group_once() -> None:
    config = Config("t", BASE["SENDGUARD_QUEUE_URL"], layout=TableLayout(shards=Shards(64, 64)))
    config = attrs.evolve(_fanned(config, 32), reconciler_workers=4)
    invoker = InProcessInvoker()
    summary = fan_out(config, invoker, _no_drain, now_ms() + 10_000)
    sent = [tuple(p["shards"]) for p in invoker.invoked]
    assert (summary.groups, summary.invoked) == (32, 32)
    assert group_problems(sent, 64, 32) == [] and sorted(sent) == sorted(shard_groups(64, 32))


def _no_drain(shards: frozenset[int]) -> PassSummary:
    raise AssertionError(f"nothing failed: the coordinator drains nothing itself ({sorted(shards)})")


def _fanned(config: Config, fanout: int) -> Config:
    return attrs.evolve(config, reconciler_fanout=fanout, reconciler_worker_function="w", metrics=False)


def test_a_failed_invoke_is_logged_counted_and_drained_by_the_coordinator() -> None:
    config = Config("t", BASE["SENDGUARD_QUEUE_URL"], layout=TableLayout(shards=Shards(8, 8)))
    config = attrs.evolve(_fanned(config, 4), metrics=True)
    denied = classified(ErrorCategory.PERMANENT, "AccessDeniedException", status=403)
    invoker = InProcessInvoker(lambda payload: denied if 2 in payload["shards"] else None)
    drained: list[frozenset[int]] = []

    def drain(shards: frozenset[int]) -> PassSummary:
        drained.append(shards)
        return PassSummary(redriven=3, shards=sorted(shards))

    with structlog.testing.capture_logs() as logs:
        summary = fan_out(config, invoker, drain, now_ms() + 10_000)
    assert drained == [frozenset({2, 6})] and summary.drained_here == [2, 6]
    assert (summary.groups, summary.invoked, summary.failed_invokes) == (4, 3, 1)
    assert [tuple(p["shards"]) for p in invoker.invoked] == [(0, 4), (1, 5), (3, 7)]
    (failed,) = [line for line in logs if line["event"] == "fanout_invoke_failed"]
    assert failed["log_level"] == "error" and failed["shards"] == [2, 6]
    assert failed["code"] == "AccessDeniedException" and failed["category"] == "permanent"
    assert [line["code"] for line in logs if line["event"] == "aws_failure"] == ["AccessDeniedException"]
    (fanned,) = [line for line in logs if line["event"] == "reconcile_fanout"]
    assert fanned["own_pass"]["redriven"] == 3 and fanned["pass_id"] == summary.pass_id
    (metrics,) = [line for line in logs if line["event"] == "metrics"]
    assert (metrics["ReconcilerInvoked"], metrics["ReconcilerInvokeFailed"]) == (3, 1)


# ---- the payload: input, checked before anything is read or written --------------------------------

SHARDS = Shards(8, 8)
GOOD = worker_payload((1, 5), 8, "p-1")

MALFORMED: list[tuple[Any, str]] = [
    (GOOD | {"sendguard": "other"}, "'sendguard' must be"),
    ({k: v for k, v in GOOD.items() if k != "sendguard"}, "'sendguard' must be"),
    (GOOD | {"extra": 1}, "unknown keys"),
    (GOOD | {"shards_read": 4}, "shards_read 4"),
    (GOOD | {"shards_read": "8"}, "shards_read '8'"),
    (GOOD | {"pass_id": "no spaces allowed"}, "pass_id"),
    (GOOD | {"shards": []}, "a list of 1 to 8"),
    (GOOD | {"shards": 3}, "a list of 1 to 8"),
    (GOOD | {"shards": list(range(9))}, "a list of 1 to 8"),
    (GOOD | {"shards": [8]}, "in 0..7"),
    (GOOD | {"shards": [-1]}, "in 0..7"),
    (GOOD | {"shards": [True]}, "in 0..7"),
    (GOOD | {"shards": [1.0]}, "in 0..7"),
    (GOOD | {"shards": [2, 2]}, "named twice"),
    ({"shards_read": 8, "pass_id": "p-1"}, "'sendguard' must be"),  # half a payload is not a schedule
]


def test_a_workers_payload_names_its_shards() -> None:
    assert worker_shards(GOOD, SHARDS) == frozenset({1, 5})
    assert worker_shards(json.loads(json.dumps(GOOD)), SHARDS) == frozenset({1, 5})
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert worker_shards(scheduled, SHARDS) is None and worker_shards(None, SHARDS) is None
    assert GOOD["sendguard"] == KIND


@pytest.mark.parametrize(("payload", "says"), MALFORMED)
def test_a_malformed_payload_is_refused_saying_why(payload: Any, says: str) -> None:
    with pytest.raises(InvalidPayload, match=says.replace("(", r"\(")):
        worker_shards(payload, SHARDS)


def test_the_fanout_settings_are_checked() -> None:
    assert (Config.from_env(BASE).reconciler_fanout, Config.from_env(BASE).reconciler_worker_function) == (
        1,
        None,
    )
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:stack-ReconcilerWorker-AbC1"
    config = Config.from_env(
        BASE | {"SENDGUARD_RECONCILER_FANOUT": "16", "SENDGUARD_RECONCILER_WORKER_FUNCTION": arn}
    )
    assert (config.reconciler_fanout, config.reconciler_worker_function) == (16, arn)
    assert Config.from_env(BASE | {"SENDGUARD_RECONCILER_FANOUT": "0"}).reconciler_fanout == 0
    for env, says in (
        ({"SENDGUARD_RECONCILER_FANOUT": "2"}, "set SENDGUARD_RECONCILER_WORKER_FUNCTION"),
        ({"SENDGUARD_RECONCILER_FANOUT": str(MAX_SHARDS + 1)}, "SENDGUARD_RECONCILER_FANOUT"),
        ({"SENDGUARD_RECONCILER_FANOUT": "-1"}, "SENDGUARD_RECONCILER_FANOUT"),
        ({"SENDGUARD_RECONCILER_WORKER_FUNCTION": "a function"}, "not a Lambda function name"),
    ):
        with pytest.raises(ConfigError, match=says):
            Config.from_env(BASE | env)


# ---- production's invoker: Lambda's asynchronous invoke ---------------------------------------------


def test_the_lambda_invoker_queues_an_event_and_classifies_a_refusal(aws_env: None) -> None:
    client = make_client("lambda", 1)
    invoker = LambdaInvoker(client, "worker")
    payload = worker_payload((0, 2), 4, "p")
    with Stubber(client) as stub:
        expected = {
            "FunctionName": "worker",
            "InvocationType": "Event",
            "Payload": json.dumps(payload).encode(),
        }
        stub.add_response("invoke", {"StatusCode": 202}, expected)
        stub.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
        stub.add_client_error("invoke", "AccessDeniedException", http_status_code=403)
        stub.add_response("invoke", {"StatusCode": 200}, expected)
        assert invoker.invoke(payload, now_ms() + 5_000).error is None
        throttled = invoker.invoke(payload, now_ms() + 5_000).error
        denied = invoker.invoke(payload, now_ms() + 5_000).error
        odd = invoker.invoke(payload, now_ms() + 5_000).error
    assert throttled is not None and throttled.category is ErrorCategory.RETRYABLE
    assert denied is not None and denied.code == "AccessDeniedException"
    assert odd is not None and odd.code == "StatusCode200"


# ---- on moto, through the Lambda handler -------------------------------------------------------------


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    with mock_aws(), one_request_at_a_time():
        yield


class _Stack:
    """A table and queue with 8 shards, a coordinator with 4 workers, and the AWS calls each makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, refuse: Any = None) -> None:
        name = f"t{uuid.uuid4().hex[:12]}"
        layout = TableLayout(shards=Shards(8, 8))
        queue_url = ensure_resources(name, name, layout=layout)
        env = {
            "SENDGUARD_TABLE": name,
            "SENDGUARD_QUEUE_URL": queue_url,
            "SENDGUARD_INDEX_SHARDS": "8",
            "SENDGUARD_METRICS": "off",
            "SENDGUARD_REDRIVE_AFTER_SECONDS": str(SETTINGS.redrive_after_ms // 1000),
            "SENDGUARD_MAX_ATTEMPTS": str(SETTINGS.max_attempts),
            "SENDGUARD_RECONCILER_FANOUT": "4",
            "SENDGUARD_RECONCILER_WORKER_FUNCTION": "sendguard-reconciler-worker",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        self.config = Config.from_env()
        self.aws = Aws.from_config(self.config)
        self.invoker = InProcessInvoker() if refuse is None else InProcessInvoker(refuse)
        self.calls: list[str] = []
        self.coordinator = Handlers(aws=self._counted, invoker=lambda _: self.invoker)
        self.worker = Handlers(aws=self._counted)  # the worker function: never fans out itself

    def _counted(self, config: Config) -> Aws:
        aws = Aws.from_config(config)
        for client in (aws.dynamodb.client, aws.sqs.client):
            client.meta.events.register("before-call", lambda model, **_: self.calls.append(model.name))
        return aws

    def backlog(self, count: int) -> list[str]:
        return _pending(self.aws, count, now_ms() - 10 * SETTINGS.redrive_after_ms)


def test_the_coordinator_invokes_one_worker_per_group_and_reads_nothing(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = _Stack(monkeypatch)
    stack.backlog(12)
    answer = stack.coordinator.reconcile({"source": "aws.events"}, _Context())
    assert (answer["groups"], answer["invoked"], answer["failed_invokes"], answer["own_pass"]) == (
        4,
        4,
        0,
        None,
    )
    sent = [tuple(p["shards"]) for p in stack.invoker.invoked]
    assert group_problems(sent, 8, 4) == [] and len(sent) == 4
    assert {p["pass_id"] for p in stack.invoker.invoked} == {answer["pass_id"]}
    assert {p["shards_read"] for p in stack.invoker.invoked} == {8}
    drained = {"BatchGetItem", "UpdateItem", "SendMessage", "SendMessageBatch"}
    assert not drained & set(stack.calls)  # the workers read and drain (the table's check aside)


def test_the_workers_drain_a_backlog_spread_over_the_shards(
    moto: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _Stack(monkeypatch)
    ids = stack.backlog(40)
    assert len({stack.config.shards.of(i) for i in ids}) == 8  # every shard holds some
    stack.coordinator.reset()  # the JSON logs configured again at the next invocation, as in a container
    capsys.readouterr()
    coordinated = stack.coordinator.reconcile({"source": "aws.events"}, _Context())
    answers = stack.invoker.run(stack.worker.reconcile, _Context())
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    passes = [line for line in logs if line["event"] in ("reconcile_fanout", "reconcile_pass")]
    assert len(passes) == 5  # the coordinator's and its four workers', under the pass's id
    assert {line.get("correlation_id") for line in passes} == {coordinated["pass_id"]}
    assert sum(a["redriven"] for a in answers) == 40
    assert sorted(s for a in answers for s in a["shards"]) == list(range(8))
    assert all(a["queries"] == 2 * len(a["shards"]) for a in answers)  # its own shards' partitions alone
    assert sorted(_queued(stack.aws)) == sorted(ids)  # each message once
    assert all(_record(stack.aws, i).phase is Phase.CONFIRMED for i in ids)


def test_overlapping_passes_and_repeated_events_send_each_message_once(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two passes' workers at once on threads (every shard read by two), then one event delivered
    again: fenced claims let one claim of each record land, whatever the interleaving."""
    stack = _Stack(monkeypatch)
    ids = stack.backlog(30)
    stack.coordinator.reconcile({"source": "aws.events"}, _Context())
    stack.coordinator.reconcile({"source": "aws.events"}, _Context())
    repeated = stack.invoker.queued[0]
    answers = stack.invoker.run(stack.worker.reconcile, _Context(), threads=8)
    assert len(answers) == 8 and sum(a["redriven"] for a in answers) == 30
    again = stack.worker.reconcile(repeated, _Context())
    assert again["redriven"] == 0
    assert sorted(_queued(stack.aws)) == sorted(ids)
    for message_id in ids:
        record = _record(stack.aws, message_id)
        assert record.phase is Phase.CONFIRMED and record.attempts == 2  # the failed submit, one re-drive


@pytest.mark.parametrize(("payload", "says"), MALFORMED[:4] + MALFORMED[9:])
def test_a_malformed_payload_fails_the_invocation_and_touches_nothing(
    moto: None, monkeypatch: pytest.MonkeyPatch, payload: Any, says: str
) -> None:
    stack = _Stack(monkeypatch)
    ids = stack.backlog(5)
    with pytest.raises(InvalidPayload, match=says.replace("(", r"\(")):
        stack.worker.reconcile(payload, _Context())
    assert stack.calls == []  # not even the table's check: nothing read, nothing written
    assert all(_record(stack.aws, i).phase is Phase.PENDING for i in ids)


def test_a_group_whose_invoke_fails_is_drained_by_the_coordinator(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(payload: Any) -> Classified | None:
        throttled = classified(ErrorCategory.RETRYABLE, "TooManyRequestsException", throttling=True)
        return throttled if 0 in payload["shards"] else None

    stack = _Stack(monkeypatch, refuse)
    ids = stack.backlog(40)
    answer = stack.coordinator.reconcile({"source": "aws.events"}, _Context())
    failed_group = [s for s in range(8) if s % 4 == 0]
    assert (answer["invoked"], answer["failed_invokes"], answer["drained_here"]) == (3, 1, failed_group)
    in_failed = [i for i in ids if stack.config.shards.of(i) in failed_group]
    assert answer["own_pass"]["redriven"] == len(in_failed) > 0
    assert answer["own_pass"]["shards"] == failed_group
    stack.invoker.run(stack.worker.reconcile, _Context())
    assert sorted(_queued(stack.aws)) == sorted(ids)


def test_without_fanout_the_scheduled_pass_reads_every_shard(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGUARD_RECONCILER_FANOUT", "1")
    stack = _Stack(monkeypatch)
    monkeypatch.setenv("SENDGUARD_RECONCILER_FANOUT", "1")
    stack.coordinator.reset()
    ids = stack.backlog(10)
    answer = stack.coordinator.reconcile({"source": "aws.events"}, _Context())
    assert answer["redriven"] == 10 and answer["shards"] is None and answer["queries"] == 16
    assert stack.invoker.invoked == [] and sorted(_queued(stack.aws)) == sorted(ids)
