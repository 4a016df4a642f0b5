"""The issue's goals, judged against the measured figures: each says met or NOT MET, with the number."""

from __future__ import annotations

import math
from typing import Any

MAX_HAPPY_REQUESTS = 3
MAX_APART_REQUESTS = 4  # a body written apart from its record: one PutItem (or PutObject) more
MAX_OUTSIDE_SHARE = 0.10
MAX_COLD_START_RATIO = 1.15  # issue 26, item 1: the first request against boto3 alone's
MIN_DRAIN_RATIO = 3.0  # one reconciler pass against the submit path
MIN_FANOUT_GROWTH = 1.2  # issue 26: the fastest fanned-out pass against F = 1, beyond this machine's noise
FANOUT_GOAL = (100, 10_000_000, 60)  # issue 26: at F = 100, ten million records drained within an hour
WRU_ALLOWANCE = 4  # issue 15: write units per message <= the payload's KB, rounded up, + 4
MAX_OWN_BYTES = 400  # issue 26: sendguard's own attributes on a happy-path record
INLINE_PAYLOAD = (512, 600)  # issue 26: a message of ~512 bytes (the bench's is 556) stays inline …
MAX_INLINE_WRU = 4  # … at 3 requests and 4 write units
MAX_CHECK_MODEL_CPU = 45.0  # issue 26: make check-model's outbox bound, CPU seconds (130.5 s before)


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []
    if "cost" in results:
        happy = results["cost"]["rows"][0]["flows"]["sendguard"]["invocation"]
        worst = max(happy["api_calls"], happy["attempts"])
        goals.append(
            _goal(
                "AWS requests per accepted message on the happy path ≤ 3 (a small payload)",
                f"{happy['api_calls']} API calls, {happy['attempts']} HTTP attempts",
                worst <= MAX_HAPPY_REQUESTS,
            )
        )
        goals += _compact_record(results["cost"].get("by_size") or [])
    if "overhead" in results:
        for row in results["overhead"]["rows"]:
            if row["flow"] != "sendguard":
                continue
            share = row["outside_over_inside"]
            state = "on" if row["logging"] else "off"
            goals.append(
                _goal(
                    f"time outside AWS calls ≤ 10 % of the time inside (logging {state})",
                    f"{_pct(share)} ({row['outside_ms']} ms outside, {row['inside_ms']} ms inside, medians)",
                    share is not None and share <= MAX_OUTSIDE_SHARE,
                )
            )
    if "coldstart" in results:
        goals += _cold_start(results["coldstart"])
        loaded = results["coldstart"]["toolchain_loaded"]
        goals.append(
            _goal(
                "no module of the test or docs tool chain on the Lambda's import path",
                ", ".join(loaded) if loaded else "none loaded",
                not loaded,
            )
        )
    full = results.get("checks", {}).get("check_model")
    if full:
        goals.append(_check_model(full))
    if "cost" in results:
        goals += _write_units(results["cost"]["rows"])
    if "drain" in results:
        goals += _drain(results["drain"])
    seconds = results.get("seconds", {}).get("total")
    if seconds is not None and not results.get("meta", {}).get("size", {}).get("quick"):
        goals.append(
            _goal(
                "`make bench` under ten minutes on 2 cores",
                f"{seconds:.0f} s on {results['meta']['machine']}",
                seconds < 600,
            )
        )
    if "reconciler" in results:
        rows = results["reconciler"]["rows"]
        reads = {(r["queries"], r["records_read"]) for r in rows}
        text = "; ".join(
            f"{r['confirmed']:,} confirmed: {r['queries']} queries, {r['records_read']} records" for r in rows
        )
        goals.append(
            _goal("reconciler reads per pass flat in the number of confirmed records", text, len(reads) == 1)
        )
    return goals


def _write_units(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Happy-path write units per message at each payload size (table and index, DynamoDB's rule),
    and the index writes per message (what the index shards' ceiling is computed from)."""
    happy = [r for r in rows if r["scenario"].startswith("happy path")]
    writes = sorted({r["flows"]["sendguard"]["invocation"].get("index_writes", -1) for r in happy})
    out = [
        _goal(
            "`make bench` shows the `attention` index writes per accepted message (happy path)",
            f"{', '.join(map(str, writes))} index writes a message at every payload size (the in-flight "
            "entry put by the create, deleted by the confirm); docs/operations.md sizes the shards from it",
            bool(happy) and -1 not in writes,
        )
    ]
    for row in rows:
        if not row["scenario"].startswith("happy path"):
            continue
        used = row["flows"]["sendguard"]["invocation"]
        if row is not rows[0]:
            worst = max(used["api_calls"], used["attempts"])
            out.append(
                _goal(
                    f"AWS requests per accepted message ≤ 4 when the body is written apart, at "
                    f"{row['payload_bytes']:,} bytes",
                    f"{used['api_calls']} API calls, {used['attempts']} HTTP attempts",
                    worst <= MAX_APART_REQUESTS,
                )
            )
        allowed = math.ceil(row["payload_bytes"] / 1024) + WRU_ALLOWANCE
        out.append(
            _goal(
                f"happy-path write units ≤ payload KB (rounded up) + 4, at {row['payload_bytes']:,} bytes",
                f"{used['wru']} WRU ({used['table_wru']} table + {used['index_wru']} index; "
                f"allowed {allowed})",
                used["wru"] <= allowed,
            )
        )
    return out


def _drain(section: dict[str, Any]) -> list[dict[str, Any]]:
    """One pass's re-drive rate against the submit path's, with the template's 4 workers, on moto as it
    answers and with every request held the AWS-like latency (the basis of the verdict on AWS)."""
    out = []
    for row in section["rows"]:
        if row["workers"] != 4:
            continue
        latency = row["latency_ms"]
        basis = f"+{latency} ms a request" if latency else "moto as it answers, CPU-bound"
        out.append(
            _goal(
                f"one reconciler pass re-drives ≥ 3× the submit path's rate (4 workers, {basis})",
                f"{row['ratio']}× ({row['redrive_per_s']} against {row['submit_per_s']} records/s, "
                f"{row['records']} records, {row['requests_per_record']} requests a record)",
                row["ratio"] >= MIN_DRAIN_RATIO,
            )
        )
    # On AWS a request waits ~10 ms on the network and the workers wait together: derived from the
    # measured requests per record (a submission makes 3 one after another).
    largest = max(section["rows"], key=lambda r: (r["records"], -r["latency_ms"]))
    derived = 4 * 3 / largest["requests_per_record"]
    out.append(
        _goal(
            "the same on AWS, derived: 4 workers × 3 requests a submission ÷ requests a re-driven record",
            f"{derived:.1f}× (4 × 3 ÷ {largest['requests_per_record']}; derived, not measured)",
            derived >= MIN_DRAIN_RATIO,
        )
    )
    out += _fanout(section, largest["requests_per_record"])
    return out


def _fanout(section: dict[str, Any], per_record: float) -> list[dict[str, Any]]:
    """Issue 26, item 4: the drain rate grows with the fan-out, measured where this machine allows (on
    moto with the AWS-like latency) and derived on AWS from the published limits."""
    from bench.report_drain import BACKLOGS, derived

    out = []
    fanned = [r for r in section.get("fanout", []) if r["latency_ms"]]
    if fanned:
        first = min(fanned, key=lambda r: r["fanout"])
        best = max(fanned, key=lambda r: r["records_per_s"])
        growth = best["records_per_s"] / first["records_per_s"]
        out.append(
            _goal(
                f"a fanned-out pass drains faster than one invocation (moto, +{first['latency_ms']} ms a "
                f"request; ≥ {MIN_FANOUT_GROWTH}×)",
                f"{growth:.2f}× (F = {best['fanout']}: {best['records_per_s']} records/s against F = 1: "
                f"{first['records_per_s']}, medians; {section.get('cores', '?')} shared cores, the process "
                f"on CPU {first['cpu_s'] / first['seconds']:.0%} of the time at F = 1 and moto answering "
                "one request at a time in it: where it flattens, section 7 says why)",
                growth >= MIN_FANOUT_GROWTH,
            )
        )
    width, backlog, minutes = FANOUT_GOAL
    row = next(d for d in derived(per_record) if d["fanout"] == width)
    took = row["minutes"][BACKLOGS.index(backlog)]
    out.append(
        _goal(
            f"on AWS, derived from published limits: {backlog:,} records drained within {minutes} min at "
            f"F = {width}",
            f"{took:,.0f} min ({row['records_per_s']:,.0f} records/s, bound by {row['bound_by']}; "
            f"F = 1: {derived(per_record)[0]['minutes'][BACKLOGS.index(backlog)]:,.0f} min)",
            took <= minutes,
        )
    )
    return out


def ratio_met(ratio: float | None) -> bool:
    return ratio is not None and ratio <= MAX_COLD_START_RATIO


def _why_extra(section: dict[str, Any]) -> str:
    """Where the first request's extra import time goes, by package (`coldstart._extra_import_ms`),
    and what attrs' generation of sendguard's classes takes of it; empty when not measured."""
    extra = section.get("extra_import_ms")
    if not extra:
        return ""
    names = {"own": "sendguard's own", "attr": "attrs", "asyncio": "asyncio (structlog's stdlib module "
             "imports it; sendguard uses none of it)"}  # fmt: skip
    parts = ", ".join(f"{names.get(k, k)} {v}" for k, v in extra["by_package"].items())
    text = (
        f". Of the {extra['modules']} modules the first request imports and boto3 alone's does not, "
        f"{extra['total_ms']} ms of CPU importing them (ms, each module's own time, its least in "
        f"{extra['runs']} runs): {parts}"
    )
    made = section.get("attrs_classes") or {}
    if made.get("generation_ms") is not None:
        classes = made.get("classes", {})
        text += (
            f"; attrs generating sendguard's {sum(classes.values())} classes at import (statemodel "
            f"{classes.get('statemodel', 0)}, adapters {classes.get('adapters', 0)}) takes "
            f"{made['generation_ms']} ms of CPU of its own"
        )
    return text


def _cold_start(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 26, item 1: the first request in a fresh interpreter (import, clients, one GetItem; the
    Lambda's package) against boto3 alone doing the same, judged on CPU time (this machine is shared:
    wall time there waits for the other processes); wall time beside it. Not met: by how much, and
    where sendguard's own import time goes (CPU time of each module imported, the why)."""
    out: list[dict[str, Any]] = []
    first = section.get("first_request")
    if first:
        by = {(s["side"], s["clock"]): s for s in first}
        base = section["first_request_baseline"]
        side = section["first_request_side"]
        floor = by.get((section.get("first_request_floor"), "cpu"))
        cpu, wall = by[(side, "cpu")], by[(side, "wall")]
        cpu_base, wall_base = by[(base, "cpu")], by[(base, "wall")]
        ratio = cpu["ratio_to_baseline"]
        # Judged on both statistics of the interleaved runs — the ratio of the medians and the median
        # of the paired ratios — and met only when both are within: on a shared machine they part.
        judged = None if ratio is None or cpu.get("paired_ratio") is None else max(ratio, cpu["paired_ratio"])
        measured = (
            f"{ratio}× CPU ({cpu['median_ms']:.0f} ms against {cpu_base['median_ms']:.0f} ms; paired "
            f"{cpu['paired_ratio']}×), {wall['ratio_to_baseline']}× wall ({wall['median_ms']:.0f} ms "
            f"against {wall_base['median_ms']:.0f} ms), medians of {section['runs']} interleaved runs"
        )
        met = ratio_met(judged)
        if not met and judged is not None:
            allowed = MAX_COLD_START_RATIO * cpu_base["median_ms"]
            own = section.get("own_import_ms") or {}
            largest = ", ".join(f"{k} {v}" for k, v in list(own.get("largest", {}).items())[:4])
            measured += (
                f"; over by {judged * cpu_base['median_ms'] - allowed:.0f} ms of CPU at {judged}×. Why: "
                f"sendguard's own "
                f"{own.get('modules', '?')} modules import in {own.get('total_ms', '?')} ms "
                f"(largest, ms: {largest}), plus structlog and attrs, which boto3 alone does not load"
            )
            measured += _why_extra(section)
            if floor is not None:
                room = allowed - floor["median_ms"]
                measured += (
                    f"; boto3 alone with attrs and structlog imported first is already "
                    f"{floor['ratio_to_baseline']}× ({floor['median_ms']:.0f} ms), which leaves "
                    f"sendguard's own modules {room:.0f} ms of CPU: meeting the goal means taking attrs "
                    "off the model's classes or structlog off the handler, the libraries the project "
                    "keeps; SnapStart is the answer for cold starts (below)"
                )
        out.append(
            _goal(
                f"cold start ≤ {MAX_COLD_START_RATIO}× boto3 alone: the first request (import, DynamoDB "
                "and SQS clients, one GetItem) with what the Lambda package holds; both the ratio of the "
                "medians and the median of the paired ratios",
                measured,
                met,
            )
        )
        restored = by.get((section.get("first_request_restored"), "cpu"))
        if restored is not None:
            out.append(
                _goal(
                    f"(reference) ≤ {MAX_COLD_START_RATIO}× with SnapStart: the first request of an "
                    "environment restored from a primed snapshot (simulated by fork)",
                    f"{restored['ratio_to_baseline']}× CPU ({restored['median_ms']:.0f} ms against "
                    f"{cpu_base['median_ms']:.0f} ms, boto3 alone's cold first request)",
                    ratio_met(restored["ratio_to_baseline"]),
                )
            )
    sides = {s["side"]: s for s in section["sides_cpu" if "sides_cpu" in section else "sides"]}
    like = sides.get("import adapters.aws_lambda + its clients")
    if like is not None:
        out.append(
            _goal(
                f"(reference) ≤ {MAX_COLD_START_RATIO}× for the import and the two clients alone, no "
                "request (the smaller denominator)",
                f"{like['ratio_to_baseline']}× {like.get('clock', 'wall')} ({like['median_ms']:.0f} ms "
                f"against {sides[section['baseline']]['median_ms']:.0f} ms, medians)",
                ratio_met(like["ratio_to_baseline"]),
            )
        )
    dev = {s["side"]: s for s in section.get("dev_venv", [])}
    if dev:
        like = dev["import adapters.aws_lambda + its clients"]
        out.append(
            _goal(
                "(reference, not the goal's basis) the import and clients in the development "
                "virtualenv, where structlog also imports `rich` (installed by the dev tools, absent "
                "on Lambda)",
                f"{like['ratio_to_baseline']}× wall ({like['median_ms']:.0f} ms against "
                f"{dev[section['baseline']]['median_ms']:.0f} ms, medians)",
                ratio_met(like["ratio_to_baseline"]),
            )
        )
    return out


def _compact_record(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 26, item 2: a record's own bytes, and a ~512-byte message kept inline at 3 requests."""
    if not rows:
        return []
    own = rows[0]["own_bytes"]
    out = [
        _goal(
            f"sendguard's own attributes on a happy-path record ≤ {MAX_OWN_BYTES} bytes",
            f"{own} bytes ({rows[0]['payload_bytes']}-byte request)",
            own is not None and own <= MAX_OWN_BYTES,
        )
    ]
    for row in rows:
        if INLINE_PAYLOAD[0] <= row["payload_bytes"] <= INLINE_PAYLOAD[1]:
            out.append(
                _goal(
                    f"a {row['payload_bytes']}-byte message: ≤ {MAX_HAPPY_REQUESTS} requests and "
                    f"≤ {MAX_INLINE_WRU} write units (its body in the record)",
                    f"{row['api_calls']} API calls, {row['attempts']} HTTP attempts, {row['wru']} WRU, "
                    f"body in the {row['body_at']}",
                    max(row["api_calls"], row["attempts"]) <= MAX_HAPPY_REQUESTS
                    and row["wru"] <= MAX_INLINE_WRU,
                )
            )
    return out


def _check_model(full: dict[str, Any]) -> dict[str, Any]:
    """Issue 26, goal 3: the three outbox runs of `make check-model` within 45 s of CPU, by a smaller
    space; all three complete and clean."""
    runs, before = full["runs"], full["unreduced"]
    each = " + ".join(f"{run['cpu_seconds']:.1f}" for run in runs)
    clean = all(run["exit_code"] == 0 and run["complete"] and run["reduced"] for run in runs)
    first = runs[0]
    return _goal(
        f"`make check-model`'s outbox bound (K=3, M=3, F=3, A = 1 to 3) in ≤ {MAX_CHECK_MODEL_CPU:.0f} s "
        "of CPU (130.5 s before, quiet), each run complete and clean",
        f"{full['cpu_seconds']:.1f} s CPU ({each}), {full['states']:,} states; at A=1 "
        f"{before['states']:,} states unreduced ({before['cpu_seconds']:.1f} s CPU), {first['states']:,} "
        f"reduced (÷{before['states'] / first['states']:.1f}); "
        + ("all complete, clean" if clean else "NOT all complete and clean"),
        clean and full["cpu_seconds"] <= MAX_CHECK_MODEL_CPU,
    )


def _goal(goal: str, measured: str, met: bool) -> dict[str, Any]:
    return {"goal": goal, "measured": measured, "met": met}


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f} %"
