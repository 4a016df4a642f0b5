"""The issue's goals, judged against the measured figures: each says met or NOT MET, with the number."""

from __future__ import annotations

from typing import Any

MAX_HAPPY_REQUESTS = 3
MAX_OUTSIDE_SHARE = 0.10
MAX_COLD_START_RATIO = 1.3


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []
    if "cost" in results:
        happy = results["cost"]["rows"][0]["flows"]["sendguard"]["invocation"]
        worst = max(happy["api_calls"], happy["attempts"])
        goals.append(
            _goal(
                "AWS requests per accepted message on the happy path ≤ 3",
                f"{happy['api_calls']} API calls, {happy['attempts']} HTTP attempts",
                worst <= MAX_HAPPY_REQUESTS,
            )
        )
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
        sides = {side["side"]: side for side in results["coldstart"]["sides"]}
        for side, wording in (
            ("import adapters.aws_lambda", "as the issue words it: the import alone"),
            ("import adapters.aws_lambda + its clients", "like for like: the import and its two clients"),
        ):
            ratio = sides[side]["ratio_to_baseline"]
            goals.append(
                _goal(
                    f"cold start ≤ 1.3× importing boto3 and making two clients ({wording})",
                    f"{ratio}× ({sides[side]['median_ms']:.0f} ms against "
                    f"{sides[results['coldstart']['baseline']]['median_ms']:.0f} ms, medians)",
                    ratio is not None and ratio <= MAX_COLD_START_RATIO,
                )
            )
        loaded = results["coldstart"]["toolchain_loaded"]
        goals.append(
            _goal(
                "no module of the test or docs tool chain on the Lambda's import path",
                ", ".join(loaded) if loaded else "none loaded",
                not loaded,
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


def _goal(goal: str, measured: str, met: bool) -> dict[str, Any]:
    return {"goal": goal, "measured": measured, "met": met}


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f} %"
