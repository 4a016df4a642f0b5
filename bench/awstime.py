"""Time spent inside AWS calls: every botocore client call (`BaseClient._make_api_call`: parameter
validation, serialization, signing, the HTTP exchange — with in-process moto, moto's own work — and
parsing), summed per thread while `timing()` is open. Whatever else an invocation spends is outside.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
from botocore.client import BaseClient


@attrs.define
class Inside:
    seconds: float = 0.0
    calls: int = 0
    by_operation: dict[str, float] = attrs.field(factory=dict)


_local = threading.local()
_lock = threading.Lock()
_installs = 0
_original = BaseClient._make_api_call  # type: ignore[attr-defined]


def _timed(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    inside: Inside | None = getattr(_local, "inside", None)
    if inside is None or getattr(_local, "nested", False):
        return _original(self, operation_name, api_params)
    _local.nested = True
    started = time.perf_counter()
    try:
        return _original(self, operation_name, api_params)
    finally:
        spent = time.perf_counter() - started
        inside.seconds += spent
        inside.calls += 1
        inside.by_operation[operation_name] = inside.by_operation.get(operation_name, 0.0) + spent
        _local.nested = False


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Wraps every client's calls (clients made before and after) while it is open."""
    global _installs
    with _lock:
        _installs += 1
        BaseClient._make_api_call = _timed  # type: ignore[attr-defined]
    try:
        yield
    finally:
        with _lock:
            _installs -= 1
            if _installs == 0:
                BaseClient._make_api_call = _original  # type: ignore[attr-defined]


@contextlib.contextmanager
def timing() -> Iterator[Inside]:
    """Sums this thread's time inside AWS calls until closed."""
    inside = Inside()
    _local.inside = inside
    try:
        yield inside
    finally:
        _local.inside = None
