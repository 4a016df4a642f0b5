"""In-process moto, one request at a time, for code that calls AWS from several threads.

moto applies a request by changing the stored item or queue in place, step by step, without a lock, so
a request on one thread can observe another's half-applied update (an index query seeing an item's
new index key beside its old sort key, say) — something DynamoDB and SQS never show: each request
is atomic there. The reconciler's worker threads make such overlaps, so the tests and benchmarks that
run them on in-process moto apply moto's requests one at a time. Nothing else is serialized: the SDK's
own work and anything a test adds around the request (a simulated network wait) still overlap.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def one_request_at_a_time() -> Iterator[None]:
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__
    lock = threading.Lock()

    def serialized(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = serialized  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]
