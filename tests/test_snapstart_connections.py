"""SnapStart for a team's own handler (issue 26, item 1): an `Outbox` a team makes before the snapshot
sends over connections of its own after a restore, without the team registering anything.

moto's server closes every connection after its answer, so the pools cannot show a kept connection
there (tests/test_snapstart.py). Here a small HTTP/1.1 server keeps each connection open, as AWS's
endpoints do, and records the client port of every request: a request sent over the snapshot's
connection comes from the port the request before the restore came from.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from adapters import Outbox
from adapters.local.sandbox import FAKE_CREDENTIALS, REAL_ENDPOINT_SETTINGS, environment
from adapters.runtime.clients import make_client, renew_connections_on
from adapters.runtime.snapstart import Restore


class KeepAlive(BaseHTTPRequestHandler):
    """Answers every request `{}` (DynamoDB's JSON: an empty GetItem, DescribeLimits) and keeps the
    connection open; records the client's port."""

    protocol_version = "HTTP/1.1"
    ports: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.ports.append(self.client_address[1])
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[list[int]]:
    """A keep-alive endpoint, named by AWS_ENDPOINT_URL while the test runs; yields its ports seen."""
    KeepAlive.ports = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with environment({**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": url}, REAL_ENDPOINT_SETTINGS[1:]):
            yield KeepAlive.ports
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_keeps_connections_so_a_kept_pool_shows(endpoint: list[int]) -> None:
    client = make_client("dynamodb", 1)
    client.describe_limits()
    client.describe_limits()
    assert len(endpoint) == 2 and endpoint[0] == endpoint[1]  # one connection, reused


def test_a_teams_outbox_made_before_the_snapshot_sends_over_new_connections_after_a_restore(
    endpoint: list[int],
) -> None:
    restore = Restore()
    renew_connections_on(restore)  # what `adapters.runtime.clients` does on the runtime's RESTORE
    outbox = Outbox("orders", "https://sqs.us-east-1.amazonaws.com/123456789012/orders")
    assert outbox.get("o-1") is None  # at init: the snapshot holds this connection
    restore.restored()
    assert outbox.get("o-1") is None  # the same Outbox and clients work after the restore …
    assert len(endpoint) == 2 and endpoint[0] != endpoint[1], endpoint  # … on a connection of their own


def test_a_restore_that_keeps_the_connections_is_caught(endpoint: list[int]) -> None:
    restore = Restore()  # the mutant: nothing renews the connections
    outbox = Outbox("orders", "https://sqs.us-east-1.amazonaws.com/123456789012/orders")
    outbox.get("o-1")
    restore.restored()
    outbox.get("o-1")
    assert endpoint[0] == endpoint[1]  # the check above fails on it: the snapshot's connection again


def test_importing_the_clients_installs_the_restore_hooks() -> None:
    # A team's handler imports `adapters.Outbox`, never adapters.aws_lambda: the hooks (the reseed of
    # `random`, the connections) must come with the clients' module.
    import subprocess
    import sys

    code = (
        "import sys; from adapters import Outbox; Outbox; print('adapters.runtime.snapstart' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    # `from adapters import Outbox` is lazy: the name's first use imports the runtime.
    assert out.stdout.strip() == "True"
