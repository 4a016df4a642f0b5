"""The `check-trace` command's arguments and printing; the work is `adapters.ops.trace_check`'s."""

from __future__ import annotations

import argparse
import json
import sys

import attrs

from adapters.ops.trace_check import __doc__ as trace_doc
from adapters.ops.trace_check import check, read_lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sendguard check-trace", description=trace_doc)
    parser.add_argument("files", nargs="+", help="files of JSON log lines (other lines are skipped)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    lines, total, problems = read_lines(args.files)
    report = check(lines)
    report.lines = total
    report.problems = problems + report.problems
    if not report.transitions:  # a quiet window, or not sendguard's log: say so, it is no verdict
        print(f"no sendguard transition lines in {', '.join(args.files)}", file=sys.stderr)
    if args.json:
        print(json.dumps(attrs.asdict(report)))
    else:
        for problem in report.problems:
            print(problem)
        print(
            f"{report.lines} lines, {report.transitions} transitions of {report.messages} messages "
            f"({report.partial} starting mid-history, not judged): "
            f"{len(report.problems)} problem{'s' if len(report.problems) != 1 else ''}"
        )
    return 1 if report.problems else 0
