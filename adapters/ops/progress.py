"""Progress of a long-running operation (`sendguard demo`, `redrive`, `reconcile`) on stderr.

On a terminal, one line rewritten in place (at most ten times a second). Anywhere else — a CI log, a
file — a plain line every `every_s` seconds, so a long run shows it is alive without flooding the
log, and a last line when it ends (if any line was written).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

EVERY_S = 10.0  # between progress lines when stderr is not a terminal


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None = None,
        stream: TextIO | None = None,
        *,
        interactive: bool | None = None,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.interactive = _isatty(self.stream) if interactive is None else interactive
        self.every_s = every_s if not self.interactive else 0.1
        self._clock = clock
        self._started = clock()
        self._shown = self._started
        self._lines = 0
        self._done = 0
        self._detail = ""

    def update(self, done: int, detail: str = "") -> None:
        self._done, self._detail = done, detail
        now = self._clock()
        if now - self._shown >= self.every_s:
            self._shown = now
            self._write(now)

    def close(self, detail: str | None = None) -> None:
        if detail is not None:
            self._detail = detail
        if self._lines:
            self._write(self._clock(), final=True)

    def _write(self, now: float, final: bool = False) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        text = f"{self.label}: {self._done}{of}{'  ' + self._detail if self._detail else ''}"
        text += f"  {now - self._started:.0f} s" + ("  done" if final else "")
        try:
            if self.interactive:
                self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stderr must not stop the work
            return
        self._lines += 1


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
