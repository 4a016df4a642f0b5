"""Section 2: time per request outside AWS calls versus inside them, with logging on and off, for
sendguard, the plain handler and (for reference) the plain handler under Powertools.

One process, in-process moto, one set of resources; the six configurations take turns request by
request (the order rotating each round), so that the machine's noise falls on all of them alike. Each
request is a new message (its own Idempotency-Key). Inside = the time spent in botocore calls
(`bench.awstime`); outside = the handler's total time less that. Logging on: INFO, JSON lines written to
/dev/null (sendguard through its own structlog configuration, the plain handler through the standard
library); off: a level above everything the handlers log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO

import boto3

from adapters.runtime.logs import configure
from bench import awstime, baseline, stats
from bench.flows import NAMES, SENDGUARD, body, context, flows, post_event
from bench.moto_env import Resources, in_process_aws, provision

CONFIGS = [(name, logs) for name in NAMES for logs in (True, False)]
PURGE_EVERY = 25  # rounds; moto's SendMessage slows down as a queue fills up


def _purge(resources: Resources) -> None:
    """Drains both queues (moto allows one PurgeQueue a minute)."""
    sqs: Any = boto3.client("sqs")
    for url in (resources.sendguard_queue, resources.plain_queue):
        for _ in range(1_000):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def run(requests: int = 300, warmup: int = 30, say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    samples: dict[tuple[str, bool], list[tuple[float, float]]] = {c: [] for c in CONFIGS}
    with contextlib.ExitStack() as stack:
        stack.enter_context(in_process_aws())
        stack.enter_context(awstime.installed())
        sink = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        stack.enter_context(contextlib.redirect_stdout(sink))
        resources = provision()
        by_name = stack.enter_context(flows(resources, log_level="INFO"))
        for round_ in range(warmup + requests):
            if round_ % PURGE_EVERY == 0:
                say(f"overhead: round {round_} of {warmup + requests}")
                _purge(resources)
            shift = round_ % len(CONFIGS)
            for name, logs in CONFIGS[shift:] + CONFIGS[:shift]:
                _logging(name, logs, sink)
                event = post_event(body(round_), f"overhead-{uuid.uuid4().hex[:12]}")
                with awstime.timing() as inside:
                    started = time.perf_counter()
                    answer = by_name[name].handler(event, context())
                    total = time.perf_counter() - started
                if answer["statusCode"] != 202:
                    raise RuntimeError(f"{name}: {answer}")
                if round_ >= warmup:
                    samples[(name, logs)].append((total, inside.seconds))
    configure("CRITICAL")
    baseline.configure_logging(logging.CRITICAL + 10, None)
    return {"requests": requests, "warmup": warmup, "rows": [_row(c, samples[c]) for c in CONFIGS]}


def _logging(name: str, on: bool, sink: TextIO) -> None:
    if name == SENDGUARD:
        configure("INFO" if on else "CRITICAL")
    else:
        baseline.configure_logging(logging.INFO if on else logging.CRITICAL + 10, sink)


def _row(config: tuple[str, bool], values: list[tuple[float, float]]) -> dict[str, Any]:
    totals = [t for t, _ in values]
    inside = [i for _, i in values]
    outside = [t - i for t, i in values]
    return {
        "flow": config[0],
        "logging": config[1],
        "total_ms": stats.ms(stats.median(totals)),
        "inside_ms": stats.ms(stats.median(inside)),
        "outside_ms": stats.ms(stats.median(outside)),
        "outside_p90_ms": stats.ms(stats.percentile(outside, 90)),
        "outside_over_inside": _round(stats.ratio(stats.median(outside), stats.median(inside))),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
