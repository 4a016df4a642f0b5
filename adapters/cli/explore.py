"""`sendguard explore`: exhaustive model checking of the pure model, to closure.

Explores every interleaving of K concurrent invocations (client submits and the reconciler's
re-drives and expiries), the reconciler and a consumer over M records with up to F injected faults,
running statemodel's own flows against its in-memory world (`statemodel.checker.space`, breadth first
in `statemodel.checker.search`). Exits 1 on a violation, printing the shortest counterexample, or when
some table row or fault kind was never reached. `--mutant NAME` runs the same search on a deliberately
broken model (`statemodel.checker.mutants`), which must fail. This module only parses, times and
prints: it is the one that reads the clock.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from statemodel.checker.mutants import MUTANTS
from statemodel.checker.search import Bounds, Report, explore
from statemodel.checker.space import Model, required_coverage


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sendguard explore",
        description="Explore every interleaving of the pure model to closure and check its promises.",
    )
    p.add_argument("--workers", "-K", type=_count, default=2, help="concurrent invocations (default 2)")
    p.add_argument("--records", "-M", type=_count, default=2, help="records (default 2)")
    p.add_argument(
        "--faults", "-F", type=_count, default=2, help="faults injected per run, at most (default 2)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--mutant", choices=sorted(MUTANTS), help="explore this deliberately broken model instead")
    p.add_argument("--list-mutants", action="store_true", help="name the mutants and exit")
    p.add_argument("--progress", action="store_true", help="report each depth on stderr")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.list_mutants:
        width = max(map(len, MUTANTS))
        for name, mutant in MUTANTS.items():
            print(f"{name:<{width}}  {mutant.summary}")
        return 0
    model = MUTANTS[args.mutant] if args.mutant else Model()
    bounds = Bounds(args.workers, args.records, args.faults)
    started = time.perf_counter()

    def progress(depth: int, states: int) -> None:
        print(f"depth {depth}: {states:,} states, {time.perf_counter() - started:.1f} s", file=sys.stderr)

    report = explore(model, bounds, progress if args.progress else None)
    seconds = time.perf_counter() - started
    print(json.dumps(as_json(report, seconds), indent=2) if args.json else as_text(report, seconds))
    return 0 if report.ok else 1


def as_json(report: Report, seconds: float) -> dict[str, Any]:
    bounds = report.bounds
    return {
        "model": report.model,
        "bounds": {"workers": bounds.workers, "records": bounds.records, "faults": bounds.faults},
        "complete": report.complete,
        "states": report.states,
        "transitions": report.transitions,
        "max_depth": report.max_depth,
        "seconds": round(seconds, 3),
        "states_per_second": round(report.states / seconds) if seconds else None,
        "violations": report.violations,
        "counterexample": report.counterexample,
        "final_state": report.final_state,
        "coverage": {
            "required": len(required_coverage()),
            "missing": report.missing,
            "reached": report.reached,
        },
    }


def as_text(report: Report, seconds: float) -> str:
    bounds = report.bounds
    rate = report.states / seconds if seconds else 0.0
    lines = [
        f"sendguard explore: {report.model}, K={bounds.workers} workers, M={bounds.records} records, "
        f"F={bounds.faults} faults",
        f"{'explored to closure' if report.complete else 'stopped at the first violation'}: "
        f"{report.states:,} states, {report.transitions:,} transitions, max depth {report.max_depth}, "
        f"{seconds:.1f} s, {rate:,.0f} states/s",
    ]
    if report.violations:
        lines.append(f"VIOLATION after {len(report.counterexample)} steps (a shortest counterexample):")
        lines += report.counterexample
        lines.append("broken:")
        lines += [f"  - {problem}" for problem in report.violations]
        lines.append("the records at the end:")
        lines += [f"  {line}" for line in report.final_state]
        return "\n".join(lines)
    required = len(required_coverage())
    if report.missing:
        lines.append(f"coverage: {len(report.missing)} of {required} never reached:")
        lines += [f"  - {label}" for label in report.missing]
    else:
        lines.append(f"coverage: all {required} table rows, fault kinds and crash points reached")
    lines.append("no violations" if not report.missing else "no violations, but the coverage is incomplete")
    return "\n".join(lines)


def _count(text: str) -> int:
    value = int(text)
    if value < 0 or value > 9:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 9")
    return value
