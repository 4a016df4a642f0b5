"""A threaded HTTP server on 127.0.0.1, in a daemon thread: the demo's gateway and its fault proxy
each run on one. Loopback only: nothing here listens beyond this machine."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer:
    """Serves `handler` on 127.0.0.1:`port` (0: a free port); the handler reaches `owner` as
    `self.server.owner`."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], owner: object, name: str, port: int = 0
    ) -> None:
        self._handler, self._owner, self._name, self._port = handler, owner, name, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self._server = _Server(("127.0.0.1", self._port), self._handler)
        self._server.owner = self._owner
        self._thread = threading.Thread(target=self._server.serve_forever, name=self._name, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Any


def owner_of(request: BaseHTTPRequestHandler) -> Any:
    """What a request handler serves for."""
    return request.server.owner  # type: ignore[attr-defined]
