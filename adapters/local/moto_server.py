"""An embedded moto server on loopback: the AWS that `sendguard demo` and `sendguard serve` run on.

moto's `ThreadedMotoServer` listens on 0.0.0.0:5000 by default and werkzeug logs every request to
stderr; this one listens on 127.0.0.1 on a free port, quietly. moto is a development dependency
(`make demo` installs it with `.[dev]`): it is imported here, when a local service starts, and never on
the Lambda path.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any


class MotoUnavailable(RuntimeError):
    """moto (a development dependency) is not installed."""


class EmbeddedMoto:
    def __init__(self) -> None:
        try:
            from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        except ImportError as exc:  # pragma: no cover - the dev install has it
            raise MotoUnavailable(
                "the embedded AWS needs moto: run `make demo`, or `pip install -e '.[dev]'`"
            ) from exc
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server: Any = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._started = False

    def start(self) -> str:
        self._server.start()
        self._started = True
        return self.endpoint

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False

    @property
    def endpoint(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def __enter__(self) -> EmbeddedMoto:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
