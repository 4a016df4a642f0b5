"""docs/benchmarks.md from the results of one run: the goals first, then each section's method and
figures (sections 1 and 6, the longest, in `report_cost` and `report_service`). Every number comes
from the results; the prose around them is fixed, but for what the results record of the measured
table (section 1 names the index's projection as describe_table reported it)."""

from __future__ import annotations

from typing import Any

from bench import report_consumer, report_cost, report_drain, report_service
from bench.markdown import number, para, ratio, table


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    changed = " (with uncommitted changes)" if meta["working_tree_changed"] else ""
    out = ["# Benchmarks", ""]
    out += para(
        [
            f"Written by `{meta['command']}` on {meta['date']} at commit `{meta['commit'] or '?'}`{changed};",
            f"Python {meta['python']}, {meta['machine']}; {versions}. The whole run took",
            f"{results['seconds']['total']:.0f} s.",
        ]
    )
    out += para(
        [
            "Everything was measured side by side in that one run. The machine is shared and noisy:",
            "compare the ratios and the counts, and read absolute times as this machine's, on moto — not",
            "as AWS's. Every figure below names the code that measures it (`bench/`); `make bench` runs",
            "it all again and rewrites this page and `docs/benchmarks.json`, which holds every number",
            "here.",
        ]
    )
    out += _goals(results["goals"])
    sections = (
        ("cost", report_cost.render),
        ("overhead", _overhead),
        ("coldstart", _coldstart),
        ("checks", _checks),
        ("reconciler", _reconciler),
        ("service", report_service.render),
        ("drain", report_drain.render),
        ("consumer", report_consumer.render),
    )
    for name, render_section in sections:
        if name in results:
            out += render_section(results[name])
    return "\n".join(out).rstrip() + "\n"


# ---- goals ----------------------------------------------------------------------------------------


def _goals(goals: list[dict[str, Any]]) -> list[str]:
    rows = [(g["goal"], g["measured"], "met" if g["met"] else "**NOT MET**") for g in goals]
    return ["## Goals", "", *table(("Goal", "Measured", "Verdict"), rows)]


# ---- 2. overhead ----------------------------------------------------------------------------------

OVERHEAD_METHOD = """\
Code: `bench/overhead.py`, `bench/awstime.py`. One process, in-process moto, one set of resources;
the six configurations take turns request by request (the order rotating every round), {requests}
measured requests each after {warmup} warm-up rounds, each a new message. **Inside** is the time spent
in botocore calls (`BaseClient._make_api_call` wrapped: validation, serialization, signing, the
exchange — here moto's in-process emulation — and parsing); **outside** is the handler's total time
less that: sendguard's own work (or the baseline's). Logging on: INFO, JSON lines written to
/dev/null (sendguard through its structlog configuration, the baselines one line per answer through
the standard library); off: a level above everything the handlers log. Figures are medians."""


def _overhead(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    out = ["## 2. Time per request outside AWS calls versus inside them", ""]
    out += [OVERHEAD_METHOD.format(requests=section["requests"], warmup=section["warmup"]), ""]
    out += table(
        ("Flow", "Logging", "Total ms", "Inside ms", "Outside ms", "Outside p90 ms", "Outside / inside"),
        [
            (
                r["flow"],
                "on" if r["logging"] else "off",
                r["total_ms"],
                r["inside_ms"],
                r["outside_ms"],
                r["outside_p90_ms"],
                f"{r['outside_over_inside'] * 100:.1f} %" if r["outside_over_inside"] is not None else "n/a",
            )
            for r in rows
        ],
    )
    by = {(r["flow"], r["logging"]): r for r in rows}
    sg_on, sg_off = by[("sendguard", True)], by[("sendguard", False)]
    pl_on, pl_off = by[("plain", True)], by[("plain", False)]
    sg_logs = sg_on["outside_ms"] - sg_off["outside_ms"]
    pl_logs = pl_on["outside_ms"] - pl_off["outside_ms"]
    out += para(
        [
            f"Logging costs sendguard {sg_logs:.2f} ms a request (outside, on against off) and the plain",
            f"handler {pl_logs:.2f} ms:",
            "sendguard writes a line per transition and one per answer, the baseline one per answer.",
            f"sendguard's own work is {ratio(sg_on['outside_ms'], pl_on['outside_ms'])} the plain handler's",
            f"(logging on): {sg_on['outside_ms'] - pl_on['outside_ms']:.2f} ms more a request, for",
            "validation, the flow's decisions, the item codec and the conditions.",
            "Inside is moto's time, not AWS's: both flows make three calls, but sendguard's UpdateItem",
            "expressions (list_append of the history, the lifecycle fields, the condition) take moto longer",
            f"to parse ({sg_on['inside_ms']} ms against {pl_on['inside_ms']} ms). On AWS each call",
            "is a network",
            "round trip of milliseconds, so the outside share there is smaller than here, not larger.",
        ]
    )
    return out


# ---- 3. cold start --------------------------------------------------------------------------------

COLDSTART_METHOD = """\
Code: `bench/coldstart.py`. Each side runs in a fresh interpreter (`python -c`, in the package's
directory as Lambda runs in /var/task, so that its compiled modules are the ones imported), timed
inside it from before its first import to its end (the interpreter's own start-up, the same for
every side, is left out), in CPU time (user + system, `time.process_time`) and wall time; the sides
take turns, {runs} runs each, and the medians are compared. The goal is the first request, as the
issue measures it: sendguard's handler answering `GET /messages/{{id}}` (import, configuration, its
DynamoDB and SQS clients, one GetItem, its answer and log line) against boto3 alone making the same
two clients and the same GetItem, both against moto over HTTP on loopback. It is judged on CPU time:
this machine is shared, and wall time there also waits for the other processes and for moto's answer
(a cost that is not sendguard's, and not AWS's). Two more first-request sides say why and what
SnapStart changes: boto3 alone with attrs and structlog imported first (the floor of any handler
built on the project's libraries), and the first request of an environment restored from a primed
snapshot, simulated by fork (a parent imports the handler and runs the before-snapshot hook, which
makes its clients; the child, the restored environment, makes new clients and answers; only the
child is timed, and Lambda's own restore of the memory is not in it). The import-only sides follow,
against the issue's first baseline, `import boto3` plus `boto3.client("dynamodb")` and
`boto3.client("sqs")`. Every side runs with only what a Lambda container can import: the standard
library, the project as `make build-SubmitFunction` builds it (bytecode compiled) and the
distributions of deploy/layer/requirements.txt with their dependencies ({dists}), linked into one
directory on `PYTHONPATH`, the interpreter started with `-S`. The development virtualenv holds more,
and structlog imports `rich` (installed there by the dev tools) when it can find it; the
like-for-like pair measured there too, for reference: {dev}."""


def _coldstart(section: dict[str, Any]) -> list[str]:
    dev = section.get("dev_venv", [])
    dev_text = "; ".join(f"`{s['side']}` {s['median_ms']} ms ({s['ratio_to_baseline']}×)" for s in dev)
    dists = ", ".join(section.get("lambda_distributions", []))
    method = COLDSTART_METHOD.format(runs=section["runs"], dists=dists, dev=dev_text or "not measured")
    out = ["## 3. Cold start", "", method, ""]
    header = ("Side", "Clock", "Median ms", "Min ms", "Max ms", "Ratio of medians", "Median of paired ratios")
    rows = [*section.get("first_request", []), *section.get("sides_cpu", []), *section["sides"]]
    out += table(
        header,
        [
            (
                f"`{s['side']}`",
                s.get("clock", "wall"),
                s["median_ms"],
                s["min_ms"],
                s["max_ms"],
                f"{s['ratio_to_baseline']}×",
                f"{s['paired_ratio']}×" if s.get("paired_ratio") is not None else "",
            )
            for s in rows
        ],
    )
    own = section.get("own_import_ms")
    if own:
        largest = ", ".join(f"`{name}` {ms}" for name, ms in own["largest"].items())
        clock = "CPU time" if own.get("clock") == "cpu" else "`-X importtime`"
        out += para(
            [
                f"sendguard's own {own['modules']} modules on the handler's import path take",
                f"{own['total_ms']} ms (each one's least self time in {own.get('runs', 1)}",
                f"runs, {clock}; largest, ms:",
                f"{largest}); most of it is attrs generating the model's classes (each",
                "`@attrs.frozen` class compiles its methods when its module is imported).",
            ]
        )
    loaded = section["toolchain_loaded"]
    out += para(
        [
            f"`import adapters.aws_lambda` adds {section['modules_loaded']} modules to a bare",
            "interpreter, in",
            f"{len(section['packages'])} top-level packages: " + ", ".join(section["packages"]) + ".",
            "Of the test, docs and benchmark tool chain (Hypothesis, moto, pytest, time-machine,",
            "transitions,",
            "mypy, ruff, cfn-lint, Powertools, werkzeug, Flask, `bench`, `tests`): "
            + (", ".join(loaded) if loaded else "none")
            + ".",
        ]
    )
    out += [
        "Import time of the packages it loads, from one `python -X importtime -c 'import",
        "adapters.aws_lambda'` run (each package's top module, cumulative: nested imports it made first",
        "are included, so `boto3` holds `s3transfer` and `urllib3`, and the figures overlap):",
        "",
    ]
    out += table(("Package", "ms"), list(section["import_ms_by_package"].items()))
    return out


# ---- 4. checks ------------------------------------------------------------------------------------


def _checks(section: dict[str, Any]) -> list[str]:
    e = section["explorer"]
    h = section["hypothesis"]
    out = [
        "## 4. How fast the checks run",
        "",
    ]
    out += para(
        [
            "Code: `bench/checks.py`. The explorer runs as a person runs it, in a subprocess; its own JSON",
            "gives the states and the seconds of the search, and its CPU seconds. Then `make check-model`'s",
            "outbox bound (K=3, M=3, F=3, A = 1 to 3; with the reduction across records,",
            "docs/verification.md), and A=1 again unreduced for the states before it. The Hypothesis",
            "suites run with `run_state_machine_as_test`, derandomized, without the example database, at a",
            "fixed",
            "`max_examples` and `stateful_step_count`; each state machine is subclassed with one more",
            "`@invariant()` that only counts. Hypothesis checks invariants once when an example's machine is",
            "made and again after every step, so each machine's checks after its first are its steps",
            "(examples are counted in `__init__`). Seconds are the whole run's wall time — machine set-up,",
            "invariants and teardown (the suites' quiescence checks) included — so steps per second is",
            "what a person running the",
            "suite gets.",
        ]
    )
    out += para(
        [
            f"`{e['command']}`: {e['states']:,} states and {e['transitions']:,} transitions in",
            f"{e['seconds']} s — **{e['states_per_second']:,} states per second** (wall",
            f"{e['wall_seconds']} s with start-up); complete: {e['complete']}, violations:",
            f"{e['violations']}, exit code {e['exit_code']}.",
        ]
    )
    full = section.get("check_model")
    if full:
        rows = [*full["runs"], full["unreduced"]]
        out += table(
            ("`make check-model` run", "States", "Transitions", "CPU seconds", "Complete", "Exit code"),
            [
                (
                    f"`{run['command']}`",
                    f"{run['states']:,}",
                    f"{run['transitions']:,}",
                    run["cpu_seconds"],
                    run["complete"],
                    run["exit_code"],
                )
                for run in rows
            ],
        )
    suites = (
        ("pure model (`tests/test_model_stateful.py`)", h["pure_model"]),
        ("adapters on moto (`adapters.testing.FaultInjectionSuite`)", h["adapters_on_moto"]),
    )
    out += table(
        ("Hypothesis suite", "max_examples × steps", "Examples run", "Steps", "Seconds", "Steps per second"),
        [
            (
                name,
                f"{s['max_examples']} × {s['stateful_step_count']}",
                s["examples"],
                s["steps"],
                s["seconds"],
                f"**{s['steps_per_second']}**",
            )
            for name, s in suites
        ],
    )
    return out


# ---- 5. reconciler --------------------------------------------------------------------------------


def _reconciler(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    out = [
        "## 5. Reconciler reads per pass",
        "",
        "Code: `bench/reconciler.py`. For each size, fresh resources on in-process moto: the in-flight",
        f"set is {section['in_flight']} records left in flight (their invocation crashed right after the",
        f"create landed) and {section['pending']} rolled back to PENDING (a throttled send the SDK gave up",
        "on), made by real submissions with the same Idempotency-Keys at every size; the confirmed",
        "records are one real confirmed item copied under new message ids with BatchWriteItem (the item",
        "shape `adapters.runtime.store` writes, without running the full handler 10,000 times).",
        "One pass then runs",
        "on a clock past every lease and re-drive delay. Queries and records read are the pass's own",
        "summary, checked against the meter; read units are computed from the returned items' sizes",
        "(eventually consistent: 0.5 per started 4 KB per page). moto answers an index query by scanning",
        "the whole table, so the Query time below grows with the table on moto; DynamoDB reads only the",
        "index partitions. The last column is what a reconciler without the index would read: a Scan of",
        "every item, its read units computed the same way.",
        "",
    ]
    out += table(
        (
            "Confirmed",
            "Queries",
            "Records read",
            "Read units",
            "Expired / re-driven",
            "Pass ms",
            "of it Query ms (moto)",
            "rest ms",
            "A Scan would read",
        ),
        [
            (
                f"{r['confirmed']:,}",
                r["queries"],
                r["records_read"],
                number(r["rru"]),
                f"{r['expired']} / {r['redriven']}",
                r["pass_ms"],
                r["query_ms"],
                r["rest_ms"],
                f"{r['scan_items']:,} items, {number(r['scan_rru'])} RRU",
            )
            for r in rows
        ],
    )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        out += para(
            [
                f"From {a['confirmed']:,} to {b['confirmed']:,} confirmed records the pass's reads stay at",
                f"{b['queries']} queries and {b['records_read']} records; its own work (the rest,",
                "outside the",
                f"queries) goes from {a['rest_ms']} ms to {b['rest_ms']} ms",
                f"({ratio(b['rest_ms'], a['rest_ms'])}).",
            ]
        )
    return out
