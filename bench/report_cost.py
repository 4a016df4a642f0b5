"""docs/benchmarks.md, section 1: what a message costs — the method, the tables, and a summary."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

from bench.markdown import para, table

FLOWS = (("sendguard", "sendguard"), ("plain", "plain flow (a)"), ("powertools", "plain + Powertools (b)"))


COST_METHOD = """\
Code: `bench/cost.py`, `bench/meter.py`, `bench/capacity.py`, `bench/baseline.py`. On in-process moto,
each scenario gets fresh clients (and so a fresh SDK retry quota), then one submission per flow with
the same request (a demo-like order with one attribute, and an `Idempotency-Key`); every scenario
ends with nothing left for a reconciler to do, so the tables and queues are shared:

* **sendguard**: `adapters.aws_lambda.submit`, configured through its environment variables.
* **plain flow (a)**: the seed's naive handler (`bench/baseline.py`): PutItem PENDING, UpdateItem
  QUEUED, SendMessage, and on a failed send UpdateItem back to PENDING; same clients as sendguard
  (`adapters.runtime.clients.make_client`: standard retry mode, 3 attempts, same timeouts), same body
  and message attributes.
* **plain + Powertools (b)**: the same handler under `aws_lambda_powertools`' `@idempotent`
  (DynamoDB persistence layer on its own table keyed `id`, key from the Idempotency-Key header, same
  client settings); the wrapped function raises on failure, as Powertools asks, so the utility deletes
  its record.

Requests are counted with botocore handlers on every client, DynamoDB's, SQS's and S3's alike:
**calls** are API calls (`before-call`: what the code asked for), **attempts** are HTTP attempts
(`before-send`: what the SDK put on the wire, retries included).
Write units are **computed from item sizes, DynamoDB's rule**, not reported by moto
(`bench/capacity.py`): each write costs 1 WRU per started KB of the larger of the item before and
after it, as moto stores it (read around every write); a write whose condition fails still costs,
at the existing item's size;
{index_rule}

Faults come from `adapters.testing.FaultInjector`, armed for that one invocation. It hits UpdateItem
and SendMessage calls only: a kind's "1st hittable call" is sendguard's create write but the
baselines' QUEUED update (their PutItem is never faulted); the "2nd" is sendguard's send and the
baselines' send. An injected "SDK gave up" error stands for three throttled attempts on AWS but is
raised on the first, so attempts count it once; the "write applied, SDK retry fails its condition"
fault replays botocore's retry as a second request, counted as an attempt of the same call. After the
invocation, sendguard's reconciler runs on a clock moved past the lease and the re-drive delay, with
its own clients, until a pass finds nothing to do: what it writes and sends for the message is shown
as **+ reconciler** (each pass also makes 8 index queries, whatever it finds; they are not the
message's). The baselines have no reconciler: what the invocation left is their end state."""


def render(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    out = ["## 1. What a message costs: AWS requests and DynamoDB write units", ""]
    out += _method(section.get("sendguard_table"))
    plain_rows = [r for r in rows if r["fault"] is None]
    lines = []
    for row in plain_rows:
        for key, label in FLOWS:
            flow = row["flows"][key]
            inv = flow["invocation"]
            size = flow["item_bytes"]
            if key == "powertools":
                size = f"{size} + {flow.get('idempotency_item_bytes', 0)} (idempotency record)"
            lines.append(
                (
                    row["scenario"],
                    label,
                    inv["api_calls"],
                    inv["attempts"],
                    f"{inv['wru']} ({inv['table_wru']} table + {inv['index_wru']} index)",
                    inv.get("index_writes", 0),
                    size,
                    flow["end_state"],
                )
            )
    out += ["### Without faults", ""]
    out += table(
        ("Scenario", "Flow", "Calls", "Attempts", "WRU", "Index writes", "Item bytes", "End state"), lines
    )
    out += _cost_summary(plain_rows, section.get("sendguard_table"))
    out += _by_size(section.get("by_size") or [], section.get("before"))
    faulted = [r for r in rows if r["fault"] is not None]
    if not faulted:
        return out
    out += ["### Under each fault kind: requests and write units", ""]
    out += ["Cells: calls / attempts · WRU.", ""]
    out += table(
        ("Fault (where)", "sendguard", "+ reconciler", "plain flow (a)", "plain + Powertools (b)"),
        [
            (
                r["scenario"],
                _cell(r["flows"]["sendguard"]),
                _cell(r["flows"]["sendguard"], "reconciler"),
                _cell(r["flows"]["plain"]),
                _cell(r["flows"]["powertools"]),
            )
            for r in faulted
        ],
    )
    out += ["### Under each fault kind: the answer, and what became of the message", ""]
    out += para(
        [
            'sendguard\'s end state is after its reconciler settled; a duplicate is "explained" when a',
            "fault left the sender unsure whether SQS had the message (consumers deduplicate on the",
            "`message_id` attribute).",
        ]
    )
    out += table(
        ("Fault (where)", "sendguard", "plain flow (a)", "plain + Powertools (b)"),
        [
            (
                r["scenario"],
                _outcome(r["flows"]["sendguard"]),
                _outcome(r["flows"]["plain"]),
                _outcome(r["flows"]["powertools"]),
            )
            for r in faulted
        ],
    )
    return out


def _method(table: dict[str, Any] | None) -> list[str]:
    """COST_METHOD, with the index's sentence from the measured table (wrapped at 100 columns)."""
    rule = textwrap.fill(index_rule(table), 100, break_long_words=False, break_on_hyphens=False)
    return [COST_METHOD.format(index_rule=rule), ""]


def index_rule(table: dict[str, Any] | None) -> str:
    """What the `attention` index's writes cost, in the projection that describe_table reported for
    the measured table (recorded in the results with its key schema)."""
    index = _attention(table)
    if table is None or index is None:
        return (
            "sendguard's sparse `attention` index (its projection is not recorded in these results) "
            "costs a write at its entry's size when the item enters or leaves it, two when its key changes."
        )
    projection = index["projection"]
    kind = projection.get("ProjectionType", "ALL")
    keys = _names(dict.fromkeys([*table["key"], *index["keys"]]))
    if kind == "ALL":
        holds, changes, rest = "is the whole item", " or changes in it", ""
    else:
        included = _names(projection.get("NonKeyAttributes", [])) if kind == "INCLUDE" else ""
        holds = (
            f"holds the keys {keys} and the included {included}"
            if included
            else f"holds only the keys {keys}"
        )
        changes = " or an included attribute changes in it" if included else ""
        rest = ", and nothing when only other attributes change"
    return (
        f"sendguard's sparse `attention` index — projection {kind}, as describe_table reports it: an "
        f"entry {holds} — costs a write at the entry's size when the item enters or leaves it{changes}, "
        f"two when its index key changes{rest}."
    )


def _names(names: Iterable[str]) -> str:
    quoted = [f"`{name}`" for name in names]
    return " and ".join(quoted) if len(quoted) < 3 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _attention(table: dict[str, Any] | None) -> dict[str, Any] | None:
    return next((i for i in (table or {}).get("indexes", []) if i["name"] == "attention"), None)


def _projection(table: dict[str, Any] | None) -> str | None:
    index = _attention(table)
    return None if index is None else str(index["projection"].get("ProjectionType", "ALL"))


def _cost_summary(rows: list[dict[str, Any]], table: dict[str, Any] | None = None) -> list[str]:
    happy = rows[0]["flows"]
    sg, plain, pt = (happy[k]["invocation"] for k in ("sendguard", "plain", "powertools"))
    writes = sum(sg["calls_by_operation"].get(op, 0) for op in ("PutItem", "UpdateItem", "DeleteItem"))
    projection = _projection(table)
    if projection == "ALL":
        larger = "2 WRU, on the table and on the index (projection ALL: its entry is the whole item)."
    elif projection is None:
        larger = "2 WRU on the table."
    else:
        larger = f"2 WRU on the table; its index entry (projection {projection}) is sized on its own."
    text = [
        f"On the happy path sendguard makes {sg['api_calls']} AWS requests ({sg['attempts']} attempts) per",
        f"accepted message — the plain flow {plain['api_calls']}, Powertools {pt['api_calls']} — and",
        f"costs {sg['wru']} WRU against {plain['wru']} and {pt['wru']}: its {writes} DynamoDB",
        f"write{'s' if writes != 1 else ''} cost {sg['table_wru']} WRU on the table and {sg['index_wru']}",
        "more on the sparse index (the create puts the in-flight record into it, the confirm takes it",
        "out).",
        f"sendguard's item is {happy['sendguard']['item_bytes'] - happy['plain']['item_bytes']} bytes",
        "larger than the plain flow's for the same message (its history of events and lifecycle fields),",
        "so it crosses a write unit's 1 KB sooner: every write of a message whose item passes 1 KB costs",
        larger,
    ]
    replay = next((r for r in rows if "replay" in r["scenario"]), None)
    if replay:
        f = replay["flows"]
        text += [
            f"A replay of an accepted request costs sendguard {f['sendguard']['invocation']['api_calls']}",
            f"conditional write ({f['sendguard']['invocation']['wru']} WRU, answered from the item that",
            f"the failed condition returns) and Powertools {f['powertools']['invocation']['api_calls']};",
            f"the plain flow runs again: {f['plain']['end_state'].lower()}.",
        ]
    return para(text)


def _by_size(rows: list[dict[str, Any]], before: dict[str, Any] | None) -> list[str]:
    """sendguard's happy path by payload size, beside the same measurement before the compact record."""
    if not rows:
        return []
    earlier = {r["payload_bytes"]: r for r in (before or {}).get("by_size", [])}
    out = ["### sendguard by payload size: the compact record (issue 26)", ""]
    if before:
        out += para(
            [
                "Each cell: now (before: the same code of this section run on the tree of",
                f"{before['commit']}, `{before['command']}`, {before['date']}).",
                "**Own bytes**: sendguard's attributes of the confirmed record (all but its key, its body",
                "and the team's); **record**: the whole item;",
                "**stored**: with its body item. Calls and units are the invocation's (the create, the send,",
                "the confirm, and a body's put); read units: what it read (nothing, on the happy path).",
            ]
        )

    def cell(row: dict[str, Any], name: str) -> str:
        old = earlier.get(row["payload_bytes"], {}).get(name)
        return f"{row[name]}" if old is None else f"{row[name]} ({old})"

    out += table(
        (
            "Payload",
            "Body kept in",
            "Calls",
            "WRU",
            "RRU",
            "Own bytes",
            "Record bytes",
            "Stored bytes",
            "End state",
        ),
        [
            (
                f"{r['payload_bytes']:,} B",
                cell(r, "body_at"),
                cell(r, "api_calls"),
                cell(r, "wru"),
                cell(r, "rru"),
                cell(r, "own_bytes"),
                cell(r, "record_bytes"),
                cell(r, "stored_bytes"),
                r["end_state"],
            )
            for r in rows
        ],
    )
    return out


def _cell(flow: dict[str, Any], part: str = "invocation") -> str:
    if "not_applicable" in flow:
        return "n/a" if part == "invocation" else ""
    if part not in flow:
        return ""
    t = flow[part]
    calls = t["api_calls"] - t["calls_by_operation"].get("Query", 0)
    attempts = t["attempts"] - t["attempts_by_operation"].get("Query", 0)
    if part == "reconciler" and calls == 0:
        return "—"
    return f"{calls} / {attempts} · {t['wru']}"


def _outcome(flow: dict[str, Any]) -> str:
    if "not_applicable" in flow:
        return f"n/a: {flow['not_applicable']}"
    return f"{flow['answer']} → {flow['end_state']}"
