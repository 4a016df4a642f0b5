"""Structured logs: JSON, one object per line, on stdout, through structlog.

Correlation id, message id and attempt id are bound with structlog's contextvars and cleared at the
start of each invocation. The sink never raises: a log line that cannot be written is counted and
dropped, because a failing log sink must never change an answer. Payloads are never logged.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import structlog

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class SafeSink:
    """A structlog logger that writes rendered lines to a stream and never raises."""

    dropped = 0  # lines lost to a failing sink, across the process

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        try:
            stream = self._stream or sys.stdout
            stream.write(message + "\n")
            stream.flush()
        except Exception:
            SafeSink.dropped += 1

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=repr),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level.upper(), 20)),
        logger_factory=lambda *_: SafeSink(stream),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    return structlog.get_logger("sendguard")
