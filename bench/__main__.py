"""`python -m bench` (`make bench`): runs every section and writes docs/benchmarks.json and
docs/benchmarks.md. Progress goes to stderr. `--quick` runs the same machinery at a tiny size (what
tests/test_bench.py does); its figures mean nothing. `--render` rewrites the page from the JSON file,
measuring nothing (for work on the page's prose). `--only SECTION --merge` measures those sections
and puts them into the existing JSON file, each marked with its own command, date and commit, and
rewrites the page.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from adapters.runtime.logs import configure
from bench import checks, coldstart, consumer, cost, drain, goals, overhead, reconciler, report, service

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("cost", "overhead", "coldstart", "checks", "reconciler", "drain", "service", "consumer")
PACKAGES = ("boto3", "botocore", "moto", "hypothesis", "structlog", "aws-lambda-powertools")


@attrs.frozen
class Size:
    overhead_requests: int = 200
    overhead_warmup: int = 20
    coldstart_runs: int = 15
    explore: tuple[int, int, int] = (3, 2, 2)  # K, M, F: make check-model runs the full bound
    pure_model: tuple[int, int] = (100, 50)  # max_examples, stateful_step_count
    adapters_on_moto: tuple[int, int] = (10, 20)
    reconciler: tuple[int, ...] = (1_000, 10_000)
    in_flight: tuple[int, int] = (10, 10)  # in flight, pending: the reconciler's due set
    drain: tuple[int, int] = (150, 60)  # backlog on moto as it answers, and with +10 ms a request
    fanout_rounds: int = 3  # interleaved runs of each fan-out width (the median is reported)
    service_requests: int = 300
    demo: bool = True
    quick: bool = False


QUICK = Size(
    overhead_requests=3,
    overhead_warmup=1,
    coldstart_runs=1,
    explore=(1, 1, 0),
    pure_model=(2, 5),
    adapters_on_moto=(1, 3),
    reconciler=(5, 10),
    in_flight=(1, 1),
    drain=(6, 4),
    fanout_rounds=1,
    service_requests=6,
    demo=False,
    quick=True,
)


def runners(size: Size, say: Callable[[str], None]) -> dict[str, Callable[[], dict[str, Any]]]:
    return {
        "cost": lambda: cost.run(size.quick, say),
        "overhead": lambda: overhead.run(size.overhead_requests, size.overhead_warmup, say),
        "coldstart": lambda: coldstart.run(size.coldstart_runs, say),
        "checks": lambda: checks.run(
            size.explore, size.pure_model, size.adapters_on_moto, say, full_bound=not size.quick
        ),
        "reconciler": lambda: reconciler.run(size.reconciler, say, *size.in_flight),
        "drain": lambda: drain.run(*size.drain, say=say, rounds=size.fanout_rounds),
        "service": lambda: service.run(size.service_requests, size.demo, say, quick=size.quick),
        "consumer": lambda: consumer.run(size.quick, say),
    }


def run(size: Size, out_dir: Path, sections: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    started = time.perf_counter()

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {line}", file=sys.stderr, flush=True)

    configure("CRITICAL")  # the handlers' own logs: each section turns them on where it measures them
    results: dict[str, Any] = {"meta": _meta(size), "seconds": {}}
    jobs = runners(size, say)
    for name in sections:
        begun = time.perf_counter()
        results[name] = jobs[name]()
        results["seconds"][name] = round(time.perf_counter() - begun, 1)
    results["seconds"]["total"] = round(time.perf_counter() - started, 1)
    for name in sections:
        results[name]["measured"] = {k: results["meta"][k] for k in ("command", "date", "commit")}
    results["goals"] = goals.judge(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out_dir / "benchmarks.md").write_text(report.render(results), encoding="utf-8")
    say(f"wrote {out_dir / 'benchmarks.md'} and benchmarks.json")
    return results


def merge(out_dir: Path, sections: tuple[str, ...]) -> int:
    """Measures `sections` at full size and puts them into the existing results, each with its own
    command, date and commit; the rest of the page stays as it was measured."""
    path = out_dir / "benchmarks.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    fresh = run(Size(), out_dir / ".merge", sections)
    meta = _meta(Size())
    command = f"python -m bench --only {' '.join(sections)} --merge"
    for name in sections:
        results[name] = fresh[name] | {
            "measured": {"command": command, "date": meta["date"], "commit": meta["commit"], "merged": True}
        }
        results["seconds"][name] = fresh["seconds"][name]
    results["goals"] = goals.judge(results)  # the merged sections' verdicts, with the rest's
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out_dir / "benchmarks.md").write_text(report.render(results), encoding="utf-8")
    for leftover in (out_dir / ".merge").iterdir():
        leftover.unlink()
    (out_dir / ".merge").rmdir()
    return 0


def _meta(size: Size) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "command": "make bench" + (" (--quick)" if size.quick else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "working_tree_changed": bool(_git("status", "--porcelain")),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {_cores()} cores",
        "versions": versions,
        "size": attrs.asdict(size),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        ).stdout.strip()
    except OSError:
        return ""


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run of the same machinery")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs", help="where to write (default docs/)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: judge the goals again and rewrite benchmarks.md from benchmarks.json",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: put those sections into the existing benchmarks.json",
    )
    args = parser.parse_args(argv)
    if args.merge:
        if not args.only:
            parser.error("--merge needs --only: the sections to measure")
        return merge(args.out_dir, tuple(args.only))
    if args.render:
        path = args.out_dir / "benchmarks.json"
        results = json.loads(path.read_text(encoding="utf-8"))
        results["goals"] = goals.judge(results)  # the figures as measured, judged by today's goals
        path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        (args.out_dir / "benchmarks.md").write_text(report.render(results), encoding="utf-8")
        return 0
    run(QUICK if args.quick else Size(), args.out_dir, tuple(args.only or SECTIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
