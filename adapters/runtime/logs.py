"""Structured logs: one JSON object per line, wherever sendguard runs.

sendguard's own programs (its Lambda handlers, the command line) call `configure`, which sets up
structlog to write JSON to stdout. Embedded in a team's code (`adapters.Outbox`), sendguard never
configures anything; each line goes, in this order of preference:

* to the logger the team gave the `Outbox` (`logger=`): a standard-library `logging.Logger` or
  Powertools' `Logger` gets the event name as its message and every field in `extra` (their JSON
  formatters put them at the top level); a structlog logger gets the fields as keyword arguments;
* to structlog's own configuration, if the process configured structlog (the team's JSON renderer);
* otherwise to sendguard's private JSON renderer on stdout, without touching the global configuration.

Every line carries `event` (also in `extra`), so `sendguard check-trace` reads the team's logs too.
Correlation id, message id and attempt id are bound with structlog's contextvars for the length of a
call and restored afterwards. The sink never raises: a line that cannot be written is counted and
dropped, because a failing log sink must never change an answer. Payloads are never logged.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import structlog

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
# LogRecord's own attributes: a field of that name cannot go into `extra`, so it gets a trailing `_`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


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


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(default=repr),
    ]


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """For sendguard's own programs only: structlog writes JSON lines to `stream` (stdout)."""
    structlog.configure(
        processors=_processors(),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level.upper(), 20)),
        logger_factory=lambda *_: SafeSink(stream),
        cache_logger_on_first_use=False,
    )


_target: contextvars.ContextVar[Any] = contextvars.ContextVar("sendguard_log_target", default=None)
_private: list[Any] = []


@contextlib.contextmanager
def logging_to(target: Any) -> Iterator[None]:
    """Lines logged inside go to `target` (None: structlog's configuration, or the private JSON)."""
    token = _target.set(target)
    try:
        yield
    finally:
        _target.reset(token)


def _private_logger() -> Any:
    """sendguard's JSON renderer on stdout for an unconfigured process; the global configuration is
    left alone."""
    if not _private:
        level = _LEVELS.get(os.environ.get("SENDGUARD_LOG_LEVEL", "INFO").upper(), 20)
        _private.append(
            structlog.wrap_logger(
                SafeSink(),
                processors=_processors(),
                wrapper_class=structlog.make_filtering_bound_logger(level),
            )
        )
    return _private[0]


class Logger:
    """What sendguard's modules log through: `log.info(event, **fields)`, as in structlog."""

    def _emit(self, level: str, event: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        target = _target.get()
        try:
            if target is None:
                chosen = structlog.get_logger("sendguard") if structlog.is_configured() else _private_logger()
                method = getattr(chosen, "exception" if exc_info else level)
                method(event, **fields)
            elif hasattr(target, "bind"):  # a structlog logger
                method = getattr(target, "exception" if exc_info else level)
                method(event, **{**structlog.contextvars.get_contextvars(), **fields})
            else:  # the standard library's logging, or Powertools' Logger
                bound = {**structlog.contextvars.get_contextvars(), **fields, "event": event}
                extra = {(f"{k}_" if k in _RECORD_ATTRIBUTES else k): v for k, v in bound.items()}
                getattr(target, level)(event, extra=extra, exc_info=exc_info)
        except Exception:
            SafeSink.dropped += 1  # the team's logger failed: the answer must not change

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields, exc_info=True)


_LOGGER = Logger()


def get_logger() -> Logger:
    return _LOGGER


def unfiltered_logger() -> Any:
    """Where lines that ignore the log level go (the EMF metric documents): the team's logger when
    a call gave one (it decides), else sendguard's structlog configuration when the process made one,
    else sendguard's own JSON lines on stdout, which never raise (a closed or failing stdout drops
    the line, as `SafeSink` does)."""
    target = _target.get()
    if target is not None:
        return _LOGGER
    if structlog.is_configured():
        return structlog.wrap_logger(
            None, wrapper_class=structlog.make_filtering_bound_logger(0), logger_factory_args=("sendguard",)
        )
    return structlog.wrap_logger(
        SafeSink(), processors=_processors(), wrapper_class=structlog.make_filtering_bound_logger(0)
    )
