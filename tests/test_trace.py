"""`sendguard check-trace` on a real trace (the handler and the reconciler writing JSON logs, with a
failed send, a crash and re-drives) and on tampered copies of it: duplicated, reordered, forged,
missing and contradicting lines are each reported with their file and line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ConnectTimeoutError
from moto import mock_aws

from adapters import aws_lambda
from adapters.cli.main import main as cli
from adapters.local.sandbox import fake_aws_environment
from adapters.ops.provision import ensure_resources
from adapters.ops.trace_check import check, read_lines
from adapters.runtime.clients import now_ms
from adapters.runtime.logs import configure
from adapters.runtime.reconciler import reconcile_pass
from tests.test_lambda import Faulty, post, raising, warm


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Lines of a real run: three submissions (one whose send fails, one whose sender dies after its
    claim), then reconciler passes until everything is sent."""
    mp = pytest.MonkeyPatch()
    fake_aws_environment(mp.setenv, lambda name: mp.delenv(name, raising=False))
    with mock_aws():
        mp.setenv("SENDGUARD_TABLE", "trace")
        mp.setenv("SENDGUARD_QUEUE_URL", ensure_resources("trace", "trace"))
        mp.setenv("SENDGUARD_REDRIVE_AFTER_SECONDS", "1")
        aws_lambda.reset()
        container = Faulty()
        warm(container.handlers.submit)  # its logging configured, before it is sent to the stream
        config, aws = container.handlers.config(), container.handlers.aws()
        stream = io.StringIO()
        configure("INFO", stream)
        assert container.submit(post({"payload": 1}, Idempotency_Key="ok"))["statusCode"] == 202
        with container.failing(SendMessage=raising(ConnectTimeoutError(endpoint_url="x"))):
            assert container.submit(post({"payload": 2}, Idempotency_Key="fails"))["statusCode"] == 503

        class Killed(BaseException):
            """The Lambda is killed mid-send: nothing of the invocation runs any more."""

        with container.failing(SendMessage=raising(Killed())), pytest.raises(Killed):
            container.submit(post({"payload": 3}, Idempotency_Key="dies"))
        for step in (1, 2, 3):
            later = now_ms() + step * 100_000
            reconcile_pass(aws, config, later + 10_000, clock=lambda later=later: later)
        aws_lambda.reset()
    mp.undo()
    yield stream.getvalue().splitlines()


def write(tmp_path: Path, lines: list[str], name: str = "trace.log") -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def transitions(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if '"transition"' in line]


def test_a_real_trace_checks_clean(
    trace: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, ["START RequestId: abc Version: $LATEST", *trace, "not json {"])
    assert cli(["check-trace", path]) == 0
    out = capsys.readouterr().out
    assert "0 problems" in out
    lines, _, _ = read_lines([path])
    assert len({line.data["message_id"] for line in lines}) == 3


def test_a_trace_split_over_two_log_streams_checks_clean(trace: list[str], tmp_path: Path) -> None:
    picks = transitions(trace)
    first = [trace[i] for i in picks[::2]]
    second = [trace[i] for i in picks[1::2]]
    assert cli(["check-trace", write(tmp_path, first, "a.log"), write(tmp_path, second, "b.log")]) == 0


def _tamper(trace: list[str], how: str) -> tuple[list[str], int]:
    """A tampered copy and the 1-based line number the checker must name."""
    lines = list(trace)
    picks = transitions(lines)
    index = picks[4]
    data = json.loads(lines[index])
    if how == "duplicated":
        lines.insert(index + 1, lines[index])
        return lines, index + 2
    if how == "reordered":  # two transitions of one message swapped
        mine = [i for i in picks if json.loads(lines[i])["message_id"] == data["message_id"]]
        a, b = mine[1], mine[2]
        lines[a], lines[b] = lines[b], lines[a]
        return lines, b + 1
    if how == "missing":
        message_id = data["message_id"]
        mine = [i for i in picks if json.loads(lines[i])["message_id"] == message_id]
        del lines[mine[1]]
        return lines, mine[2]  # the next line of that message, moved up by one
    if how == "forged attempt":
        target = next(i for i in picks if json.loads(lines[i])["record_event"]["type"] == "SendConfirmed")
        data = json.loads(lines[target])
        data["record_event"]["attempt_id"] = data["attempt_id"] = "someone-else"
        lines[target] = json.dumps(data)
        return lines, target + 1
    if how == "wrong phase":
        target = next(i for i in picks if json.loads(lines[i])["record_event"]["type"] == "SendConfirmed")
        data = json.loads(lines[target])
        data["to"] = "PENDING"
        lines[target] = json.dumps(data)
        return lines, target + 1
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["duplicated", "reordered", "missing", "forged attempt", "wrong phase"])
def test_tampered_traces_are_reported_with_file_and_line(
    trace: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    lines, line_number = _tamper(trace, how)
    path = write(tmp_path, lines)
    assert cli(["check-trace", path]) == 1
    out = capsys.readouterr().out
    assert f"{path}:{line_number}:" in out, out


def test_a_history_that_starts_mid_way_is_counted_not_judged(trace: list[str], tmp_path: Path) -> None:
    lines = [trace[i] for i in transitions(trace)]
    first_message = json.loads(lines[0])["message_id"]
    rest = [line for line in lines if json.loads(line)["message_id"] != first_message]
    tail = [line for line in lines if json.loads(line)["message_id"] == first_message][1:]
    report = check(read_lines([write(tmp_path, rest + tail)])[0])
    assert report.partial == 1 and report.problems == []


def test_a_record_event_without_a_field_is_said_to_be_no_event(
    trace: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A transition line whose record_event lacks a field is named for it (the review found
    "illegal transition: 'correlation_id'", the KeyError's bare text)."""
    lines = list(trace)
    first = transitions(lines)[0]
    data = json.loads(lines[first])
    del data["record_event"]["correlation_id"]  # the accepted message's, which its summary needs
    lines[first] = json.dumps(data)
    path = write(tmp_path, lines)
    assert cli(["check-trace", path]) == 1
    out = capsys.readouterr().out
    assert f"{path}:{first + 1}: " in out, out
    assert "its record_event has no field 'correlation_id': not an event" in out, out
