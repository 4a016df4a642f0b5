"""The command line as operators meet it: `--version`, an unknown command named with the list of
commands, and progress that shows on a terminal and, elsewhere (CI logs), as periodic plain lines."""

from __future__ import annotations

import io
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)
from moto import mock_aws

from adapters.cli import main as cli
from adapters.ops.progress import Progress
from adapters.ops.provision import ensure_resources
from adapters.runtime.clients import make_client
from adapters.runtime.config import ConfigError
from adapters.testing.clients import client as suite_client


def test_version_is_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sendguard {version('sendguard')}"


def test_an_unknown_command_is_named_and_the_commands_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bogus"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("sendguard: unknown command 'bogus'")
    assert all(f"  {name} " in captured.err for name in cli.COMMANDS)


def test_help_lists_every_command_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in cli.COMMANDS)


def test_the_module_runs_as_the_command_without_the_script_on_path() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("sendguard ")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_off_a_terminal_is_a_plain_line_every_few_seconds() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("redrive", 100, stream, interactive=False, every_s=10, clock=clock)
    for done in range(1, 101):
        clock.now = done * 0.5  # 50 s in all
        progress.update(done, "0 skipped")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6  # at 10, 20, 30, 40, 50 s, and the last
    assert lines[0] == "redrive: 20/100  0 skipped  10 s"
    assert lines[-1].endswith("done") and "\r" not in stream.getvalue()


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("reconcile", None, stream, interactive=True, clock=clock)
    for done in range(1, 6):
        clock.now = done * 1.0
        progress.update(done)
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 6 and text.endswith("done\n") and text.count("\n") == 1


def test_a_short_run_off_a_terminal_prints_nothing() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("redrive", 3, stream, interactive=False, clock=clock)
    progress.update(3)
    progress.close()
    assert stream.getvalue() == ""


# ---- what an operator can fix: one line on stderr, exit 2, the traceback only with --debug --------

TABLE_COMMANDS = {
    "status": ["status", "--table", "t"],
    "audit": ["audit", "--table", "t"],
    "redrive": ["redrive", "--exhausted", "--table", "t"],
    "reconcile": ["reconcile", "--table", "t", "--queue-url", "https://sqs.us-east-1.amazonaws.com/1/q"],
    "provision": ["provision", "--table", "t", "--queue", "q"],
}


def one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line `argv` fails with (exit 2, nothing on stdout, no traceback)."""
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    return captured.err.rstrip("\n")


@pytest.fixture
def no_region(aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))  # nor a profile's region


@pytest.mark.parametrize("name", sorted(TABLE_COMMANDS))
def test_no_region_is_one_line_saying_what_to_set(
    no_region: None, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert one_line(TABLE_COMMANDS[name], capsys) == (
        f"sendguard {name}: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or --region"
    )


def test_debug_shows_the_traceback_and_the_line(no_region: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--debug", *TABLE_COMMANDS["status"]]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "NoRegionError" in err
    assert err.endswith(
        "sendguard status: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or --region\n"
    )


def test_aws_region_alone_is_honoured(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert make_client("dynamodb", 1).meta.region_name == "eu-west-3"
    assert suite_client("sqs").meta.region_name == "eu-west-3"
    with mock_aws():
        assert cli.main(TABLE_COMMANDS["provision"]) == 0
        assert "eu-west-3" in capsys.readouterr().out  # the queue's URL
        assert cli.main(TABLE_COMMANDS["status"]) == 0
        assert capsys.readouterr().out.startswith("backlog of t")


def test_the_region_flag_wins(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        assert cli.main([*TABLE_COMMANDS["provision"], "--region", "ap-south-1"]) == 0
        assert "ap-south-1" in capsys.readouterr().out
        assert one_line(TABLE_COMMANDS["status"], capsys).startswith(
            "sendguard status: table t does not exist in us-east-1"
        )
        assert cli.main([*TABLE_COMMANDS["status"], "--region", "ap-south-1"]) == 0


def test_a_wrong_endpoint_is_one_line(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: refused at once
    assert one_line(TABLE_COMMANDS["status"], capsys) == (
        "sendguard status: cannot reach http://127.0.0.1:9/ (EndpointConnectionError): check "
        "AWS_ENDPOINT_URL (or --endpoint-url), the region and the network"
    )


def test_the_endpoint_flag_is_used(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line([*TABLE_COMMANDS["provision"], "--endpoint-url", "http://127.0.0.1:9"], capsys)
    assert line.startswith("sendguard provision: cannot reach http://127.0.0.1:9/")


def test_no_credentials_is_one_line(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to ask for
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    assert one_line(TABLE_COMMANDS["audit"], capsys) == (
        "sendguard audit: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or run where a role provides them)"
    )


def test_a_missing_table_is_one_line_naming_it_and_the_region(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        assert one_line(["status", "--table", "nope"], capsys) == (
            "sendguard status: table nope does not exist in us-east-1: check SENDGUARD_TABLE (--table) "
            "and the region (AWS_REGION, --region)"
        )


def test_a_missing_queue_is_one_line(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        ensure_resources("t", "q")
        assert one_line(
            [*TABLE_COMMANDS["reconcile"][:-1], "https://sqs.us-east-1.amazonaws.com/123456789012/nope"],
            capsys,
        ) == (
            "sendguard reconcile: GetQueueAttributes: no such queue: check SENDGUARD_QUEUE_URL (--queue-url) "
            "and the region"
        )


def test_a_configuration_error_is_one_line(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SENDGUARD_TABLE", raising=False)
    assert one_line(["status"], capsys) == (
        "sendguard status: SENDGUARD_TABLE is not set (on the command line: --table)"
    )
    assert one_line(["status", "--table", "t", "--index-shards", "0"], capsys) == (
        "sendguard status: SENDGUARD_INDEX_SHARDS=0 is outside 1..256"
    )


def _client_error(code: str, query_code: str | None = None) -> ClientError:
    error = {"Code": code, "Message": "m"} | ({"QueryErrorCode": query_code} if query_code else {})
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Query")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            _client_error("AccessDeniedException"),
            "Query: access denied (AccessDeniedException): use credentials",
        ),
        (_client_error("AccessDenied"), "Query: access denied (AccessDenied)"),
        (_client_error("UnrecognizedClientException"), "Query: the credentials were refused"),
        (_client_error("ExpiredTokenException"), "Query: the credentials were refused"),
        (
            _client_error("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"),
            "Query: no such queue",
        ),
        (_client_error("ResourceNotFoundException"), "Query: m: check SENDGUARD_TABLE (--table)"),
        (_client_error("ThrottlingException"), "Query failed: ThrottlingException: m"),
        (ConnectTimeoutError(endpoint_url="https://x"), "cannot reach https://x (ConnectTimeoutError)"),
        (NoCredentialsError(), "no AWS credentials"),
        (NoRegionError(), "no AWS region"),
        (ConfigError("SENDGUARD_X is wrong"), "SENDGUARD_X is wrong"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "",
)
def test_each_operator_error_says_what_to_fix(error: Exception, line: str) -> None:
    found = cli.operator_error(error)
    assert found is not None and found.startswith(line)


def test_a_bug_keeps_its_traceback() -> None:
    assert cli.operator_error(KeyError("message_id")) is None
    assert cli.operator_error(ParamValidationError(report="bad")) is None


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--region", "eu_west_1", "set AWS_REGION (or --region) to a region's name"),
        ("--endpoint-url", "not a url", "set AWS_ENDPOINT_URL (or --endpoint-url) to a URL"),
    ],
)
def test_a_malformed_region_or_endpoint_is_one_line(
    aws_env: None, flag: str, value: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line([*TABLE_COMMANDS["status"], flag, value], capsys)
    assert line.startswith("sendguard status: ") and words in line


def test_an_unreadable_file_and_a_file_of_no_transitions_are_said_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.log"
    assert cli.main(["check-trace", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"sendguard check-trace: cannot read {missing}: No such file or directory\n"
    other = tmp_path / "other.log"
    other.write_text('not a log\n{"event": "something_else"}\n', encoding="utf-8")
    assert cli.main(["check-trace", str(other)]) == 0  # a quiet window is no problem …
    captured = capsys.readouterr()
    assert captured.err == f"no sendguard transition lines in {other}\n"  # … but it is said
    assert "2 lines, 0 transitions" in captured.out


@pytest.mark.parametrize("seconds", ["-1", "0", "901", "99999999999"])
def test_a_reconciler_pass_of_no_time_or_longer_than_a_lambda_s_is_refused(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pass leases each claim until its own end: one of years, stopped by Ctrl-C or a lost laptop,
    left its claimed records in flight for years."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["reconcile", "--table", "t", "--queue-url", "https://q", "--seconds", seconds])
    assert exited.value.code == 2
    assert f"--seconds must be in 1..900, as a reconciler function's timeout (got {seconds})" in (
        capsys.readouterr().err
    )


def test_an_outbox_layout_that_is_not_a_table_layout_is_refused_when_made() -> None:
    from adapters import Outbox

    with pytest.raises(TypeError, match="layout='tenant' is not a TableLayout"):
        Outbox("payments", "https://q", layout="tenant")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("", "cannot read '': No such file or directory"),
        ("{file}/inside", "cannot read {file}/inside: Not a directory"),
        ("{dir}/" + "x" * 300, "cannot read {dir}/" + "x" * 300 + ": File name too long"),
    ],
    ids=["empty", "under-a-file", "too-long"],
)
def test_any_file_that_cannot_be_opened_is_one_line(
    tmp_path: Path, path: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every OSError that names a file is the operator's (not only FileNotFound and Permission)."""
    file = tmp_path / "trace.log"
    file.write_text("", encoding="utf-8")
    where = {"file": str(file), "dir": str(tmp_path)}
    line = one_line(["check-trace", path.format(**where)], capsys)
    assert line == f"sendguard check-trace: {says.format(**where)}"


def test_a_malformed_aws_config_file_is_one_line(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    config.write_text("[default\nregion = eu-west-1\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert one_line(TABLE_COMMANDS["status"], capsys) == (
        f"sendguard status: Unable to parse config file: {config}: correct it, or point AWS_CONFIG_FILE "
        "(AWS_SHARED_CREDENTIALS_FILE for credentials) at another file"
    )


def test_an_endpoint_that_does_not_answer_as_aws_is_one_line_naming_the_endpoint(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A web server that is not the service (a wrong port) answers HTTP 404 with no AWS error in it."""
    import http.server
    import threading

    class NotAws(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>\n<body>not here</body>\n</html>\n")

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotAws)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        line = one_line([*TABLE_COMMANDS["status"], "--endpoint-url", endpoint], capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert line == (
        "sendguard status: DescribeTable: the endpoint answered HTTP 404, not as AWS does: check that "
        "AWS_ENDPOINT_URL (or --endpoint-url) is the service's endpoint"
    )


@pytest.mark.parametrize("where", ["missing/demo.log", "."], ids=["no-directory", "a-directory"])
def test_a_demo_log_file_that_cannot_be_written_is_refused_before_the_demo_runs(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not after a whole run, and not as a file it 'cannot read'."""
    path = tmp_path / where
    with pytest.raises(SystemExit) as exited:
        cli.main(["demo", "--requests", "1", "--log-file", str(path)])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    reason = "No such file or directory" if where != "." else "Is a directory"
    assert captured.err.endswith(f"sendguard demo: error: --log-file {path}: cannot write it: {reason}\n")
    assert "gateway at" not in captured.err  # the service never started


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--lambda-timeout", "0", "--lambda-timeout must be in 1..900 seconds (Lambda's)"),
        ("--lambda-timeout", "-5", "--lambda-timeout must be in 1..900 seconds (Lambda's)"),
        ("--lambda-timeout", "901", "--lambda-timeout must be in 1..900 seconds (Lambda's)"),
        ("--seconds", "-1", "--seconds must be 0 (until Ctrl-C) or more"),
        ("--seconds", "nan", "--seconds must be 0 (until Ctrl-C) or more"),
        ("--reconcile-every", "-1", "--reconcile-every must be 0 (no passes) or more"),
    ],
)
def test_serve_refuses_a_number_out_of_range_before_it_starts(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 0 s function timeout answered every request with an error; a negative --seconds served
    forever; both were taken."""
    import threading

    from adapters.cli import serve

    stopped = threading.Event()
    stopped.set()  # were it taken, the service would stop at once rather than serve forever
    with pytest.raises(SystemExit) as exited:
        serve.main(["--port", "0", flag, value], stop=stopped)
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.err.endswith(f"sendguard serve: error: {says}\n")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--workers", "0"], "argument --workers/-K: 0 is not between 1 and 9"),
        (["-M", "0"], "argument --records/-M: 0 is not between 1 and 9"),
        (["-F", "10"], "argument --faults/-F: 10 is not between 0 and 9"),
        (["-K", "two"], "argument --workers/-K: 'two' is not a whole number"),
        (["-A", "x"], "argument --max-attempts/-A: 'x' is not a whole number"),
    ],
)
def test_explore_refuses_a_bound_it_cannot_judge(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No workers or no records explored 15 states and exited 1 on coverage, a verdict on nothing."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["explore", *argv])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"sendguard explore: error: {says}\n")


def test_audit_refuses_a_negative_grace(capsys: pytest.CaptureFixture[str]) -> None:
    """With one, an in-flight record whose lease has not expired yet would be reported an orphan."""
    with pytest.raises(SystemExit) as exited:
        cli.main([*TABLE_COMMANDS["audit"], "--grace-seconds", "-100"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith("error: --grace-seconds must be 0 or more (got -100)\n")


def test_ctrl_c_is_one_line_and_exit_130_not_a_traceback() -> None:
    """An operator's Ctrl-C in a long command (an audit, a pass, the explorer) is no bug."""
    import signal

    command = [sys.executable, "-m", "adapters.cli", "explore", "-K", "3", "-M", "3", "-F", "3", "--progress"]
    with subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # whatever the parent ignores
    ) as running:
        assert running.stderr is not None
        first = running.stderr.readline()  # the search has started: it runs for seconds more
        assert first.startswith("depth 1: "), first
        running.send_signal(signal.SIGINT)
        rest = running.stderr.read()
    assert running.returncode == 130, rest
    assert "Traceback" not in rest
    assert rest.splitlines()[-1] == (
        "sendguard explore: interrupted: what it wrote stays (each write is whole), and running it again "
        "is safe"
    )


def test_a_waiter_that_gives_up_is_one_line() -> None:
    """provision waits for its table to be ACTIVE (60 s at most); a WaiterError is no bug."""
    from botocore.exceptions import WaiterError

    creating = {"Table": {"TableStatus": "CREATING"}}
    slow = WaiterError(name="TableExists", reason="Max attempts exceeded", last_response=creating)
    assert cli.operator_error(slow) == (
        "Waiter TableExists failed: Max attempts exceeded: it is still being made; run the command again "
        "once it is ready"
    )
    denied = WaiterError(
        name="TableExists",
        reason="An error occurred (AccessDeniedException): no",
        last_response={"Error": {"Code": "AccessDeniedException", "Message": "no"}},
    )
    found = cli.operator_error(denied)
    assert found is not None and found.startswith("TableExists: access denied (AccessDeniedException)")


@pytest.mark.parametrize("argv", [["--help"], ["explore", "--list-mutants"]])
def test_output_into_a_closed_pipe_is_no_traceback(argv: list[str]) -> None:
    """`sendguard … | head -1`: the reader went away; that is no error of the command's."""
    import os

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: every write meets EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "adapters.cli", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (cli.PIPE_CLOSED, "")


def test_check_trace_skips_a_line_too_deep_to_parse_like_any_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log line nested past the parser's recursion limit is not a JSON line it can read: skipped,
    not a RecursionError's traceback."""
    log = tmp_path / "deep.log"
    log.write_text('{"event": "transition", "a": ' + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    assert cli.main(["check-trace", str(log)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"no sendguard transition lines in {log}\n"
    assert "1 lines, 0 transitions" in captured.out


def test_serve_and_demo_on_an_endpoint_take_a_fifo_queue_url() -> None:
    """The queue URL says its kind (`.fifo`), as the runtime reads it: the local service on
    --endpoint-url provisions a FIFO queue as one, not refused with a --fifo flag it does not have."""
    import threading

    from adapters.cli import serve
    from adapters.local.moto_server import EmbeddedMoto
    from adapters.local.sandbox import FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS, environment

    stopped = threading.Event()
    stopped.set()  # it stops once it has started
    with EmbeddedMoto() as server, environment(FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS):
        url = f"{server.endpoint}/123456789012/orders.fifo"
        argv = ["--port", "0", "--endpoint-url", server.endpoint, "--table", "orders", "--queue-url", url]
        assert serve.main(argv, stop=stopped) == 0
        with environment({"AWS_ENDPOINT_URL": server.endpoint}):
            sqs = make_client("sqs", 1)
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue"])["Attributes"]
    assert attributes == {"FifoQueue": "true"}


@pytest.mark.parametrize("flag", ["--region", "--endpoint-url"])
@pytest.mark.parametrize("name", sorted(TABLE_COMMANDS))
def test_an_empty_region_or_endpoint_flag_is_refused_not_ignored(
    aws_env: None, name: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--endpoint-url "$ENDPOINT"` with the variable unset: ignored, the command went to the
    environment's endpoint (AWS itself, for a script meant for a local one) or region."""
    with mock_aws(), pytest.raises(SystemExit) as exited:
        cli.main([*TABLE_COMMANDS[name], flag, ""])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"error: argument {flag}: is empty: give a value, or leave {flag} out for the environment's\n"
    )
