"""The demo's load: a seeded plan of client requests, driven over real HTTP by concurrent clients, with
a progress bar on stderr.

The plan mixes what clients send: new messages, each with its own Idempotency-Key; replays of an
earlier request (same key, same body: a client trying again, sometimes while the first is still
running); now and then a key reused with another body (409) and a malformed body (400, which must
write nothing). Some accepted messages are read back with GET /messages/{id}. Clients do not retry a
503 on their own: what it left behind is the reconciler's to finish.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import threading
import time
import urllib.parse
from typing import Any, TextIO

import attrs

from adapters.ops.progress import Progress as LineProgress
from statemodel.validation import message_id_for_key

NEW, REPLAY, CONFLICT, INVALID = "new", "replay", "conflict", "invalid"
_INVALID_BODIES = (
    '{"payload": {"order": ',
    '{"payload": 1, "payload": 2}',
    '{"attributes": {}}',
    "[1, 2, 3]",
)
_CLIENT_TIMEOUT_S = 60.0


@attrs.frozen
class Planned:
    index: int
    kind: str
    key: str
    body: str
    read_back: bool  # GET the message after a 202

    @property
    def message_id(self) -> str:
        return message_id_for_key(self.key)


@attrs.frozen
class Answered:
    index: int
    kind: str
    method: str
    status: int  # 0: no HTTP answer at all
    code: str | None  # the error code of an error answer
    message_id: str | None  # of a 202 (POST) or 200 (GET)
    key: str | None


def make_plan(requests: int, seed: int, nonce: str = "") -> list[Planned]:
    """`requests` POSTs; the same seed gives the same plan. `nonce` keeps keys of runs against a shared
    table apart."""
    rng = random.Random(seed)
    plan: list[Planned] = []
    originals: list[Planned] = []
    for index in range(requests):
        draw = rng.random()
        key = f"demo{nonce}-s{seed}-{index:05d}"
        if originals and draw < 0.20:
            first = rng.choice(originals)
            item = Planned(index, REPLAY, first.key, first.body, rng.random() < 0.1)
        elif len(originals) > 20 and draw < 0.23:
            first = rng.choice(originals[:-10])  # long enough ago that its create has run
            item = Planned(index, CONFLICT, first.key, _body(rng, index, conflict=True), False)
        elif draw < 0.26:
            item = Planned(index, INVALID, key, rng.choice(_INVALID_BODIES), False)
        else:
            item = Planned(index, NEW, key, _body(rng, index), rng.random() < 0.1)
            originals.append(item)
        plan.append(item)
    return plan


def _body(rng: random.Random, index: int, *, conflict: bool = False) -> str:
    quantity = rng.randint(1, 9) + (100 if conflict else 0)  # a conflict: not what the key was used for
    payload = {"order": index, "sku": f"SKU-{rng.randrange(10_000):04d}", "quantity": quantity}
    document: dict[str, Any] = {"payload": payload}
    if rng.random() < 0.5:
        document["attributes"] = {"group": rng.choice(["eu", "us", "ap"])}
    return json.dumps(document)


class Progress:
    """A one-line progress bar on a terminal; on anything else (a CI log) a plain progress line every
    few seconds, unless `enabled` is False."""

    def __init__(self, total: int, stream: TextIO, enabled: bool | None = None) -> None:
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        periodic = enabled is None and not self.enabled
        self._lines = LineProgress("  requests", total, stream, interactive=False) if periodic else None
        self.done = 0
        self.statuses: collections.Counter[int] = collections.Counter()
        self._started = time.monotonic()
        self._shown = 0.0
        self._lock = threading.Lock()

    def step(self, status: int) -> None:
        with self._lock:
            self.done += 1
            self.statuses[status] += 1
            now = time.monotonic()
            if self.enabled and (now - self._shown >= 0.1 or self.done == self.total):
                self._shown = now
                self._render(now)
            elif self._lines is not None:
                self._lines.update(self.done, self._counts())

    def _render(self, now: float) -> None:
        width = 30
        filled = width * self.done // max(self.total, 1)
        counts = self._counts()
        bar = "#" * filled + "." * (width - filled)
        line = f"\r  requests [{bar}] {self.done}/{self.total}  {counts}  {now - self._started:.1f} s"
        self.stream.write(line)
        self.stream.flush()

    def _counts(self) -> str:
        return " ".join(f"{status or 'none'}:{n}" for status, n in sorted(self.statuses.items()))

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
        elif self._lines is not None:
            self._lines.close()


class _Client:
    """One client's keep-alive HTTP connection to the gateway."""

    def __init__(self, base_url: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: str | None, headers: dict[str, str]) -> tuple[int, Any]:
        for _ in range(2):  # a kept-alive connection the server closed: once more on a new one
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=_CLIENT_TIMEOUT_S)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                continue
            try:
                return response.status, json.loads(data)
            except ValueError:
                return response.status, None
        return 0, None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def drive(base_url: str, plan: list[Planned], concurrency: int, progress: Progress) -> list[Answered]:
    """Sends the plan in order from `concurrency` clients at once; returns every answer."""
    answers: list[Answered] = []
    lock = threading.Lock()
    cursor = iter(plan)

    def client_loop() -> None:
        client = _Client(base_url)
        try:
            while True:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                results = _send(client, item)
                progress.step(results[0].status)
                with lock:
                    answers.extend(results)
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, name=f"client-{n}") for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()
    return sorted(answers, key=lambda a: (a.index, a.method != "POST"))


def _send(client: _Client, item: Planned) -> list[Answered]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": item.key}
    headers["X-Correlation-Id"] = f"demo-{item.index:05d}"
    status, body = client.call("POST", "/messages", item.body, headers)
    message_id = body.get("messageId") if isinstance(body, dict) and status == 202 else None
    results = [Answered(item.index, item.kind, "POST", status, _code(body), message_id, item.key)]
    if item.read_back and message_id:
        headers = {"X-Correlation-Id": f"demo-{item.index:05d}-get"}
        status, body = client.call("GET", f"/messages/{message_id}", None, headers)
        got = body.get("messageId") if isinstance(body, dict) and status == 200 else None
        results.append(Answered(item.index, item.kind, "GET", status, _code(body), got, item.key))
    return results


def _code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None
