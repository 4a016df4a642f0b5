"""Lambda's asynchronous invoke in the test's own process, for a fanned-out reconciler pass
(`adapters.runtime.fanout`): moto's `lambda:Invoke` runs functions in Docker, which the suite does
not need. `InProcessInvoker` implements the `Invoker` that production's `LambdaInvoker` does: it
queues each payload as Lambda would (a JSON round trip), and runs the queued workers when told, on
the caller's handler, in order or on threads at once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from adapters.runtime.call_report import CallReport, report
from adapters.runtime.classify import Classified

Handler = Callable[[Any, Any], Any]


@attrs.define
class InProcessInvoker:
    """`refuse(payload)`: the failure an invoke meets (None: Lambda queues the event). `queued`:
    the payloads Lambda holds; `invoked`: every payload it ever accepted, in order."""

    refuse: Callable[[Mapping[str, Any]], Classified | None] = lambda _: None
    queued: list[dict[str, Any]] = attrs.field(factory=list)
    invoked: list[dict[str, Any]] = attrs.field(factory=list)

    def invoke(self, payload: Mapping[str, Any], deadline_ms: int) -> CallReport:
        started = time.perf_counter()
        delivered = json.loads(json.dumps(payload))  # what the worker receives: JSON, not the object
        error = self.refuse(delivered)
        if error is None:
            self.queued.append(delivered)
            self.invoked.append(delivered)
        return report("lambda", "Invoke", 1, started, error)

    def run(self, handler: Handler, context: Any = None, *, threads: int = 1) -> list[Any]:
        """Runs every queued payload through `handler` (the worker function's), emptying the queue;
        with `threads` above 1, that many at once (Lambda runs async events concurrently)."""
        payloads, self.queued = self.queued, []
        if threads <= 1:
            return [handler(payload, context) for payload in payloads]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(lambda payload: handler(payload, context), payloads))
