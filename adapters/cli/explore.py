"""`sendguard explore`: exhaustive model checking of the pure model, to closure.

Explores every interleaving of K concurrent invocations (client submits and the reconciler's
re-drives and expiries), the reconciler and a consumer over M records with up to F injected faults,
running statemodel's own flows against its in-memory world (`statemodel.checker.space`, breadth first
in `statemodel.checker.search`). Exits 1 on a violation, printing the shortest counterexample, or when
some table row or fault kind was never reached; then checks liveness on the graph it found (every
fair continuation, once faults stop, settles) and exits 1 on a violation, printing a shortest path to
where it starts and the cycle or dead end that follows. `--mutant NAME` runs the same search on a
deliberately broken model (`statemodel.checker.mutants`), which must fail with the violation its bug
makes (`Model.caught_with`): exit 1; 3 when only another violation caught it; 0 when nothing did.
`--inbox MODE` explores the consumer's inbox instead (`statemodel.checker.inbox_space`: deliveries of
M messages to K invocations, `-A` its max_receives), and `--mutant` then names an inbox mutant
(`statemodel.checker.inbox_mutants`). This module only parses, times and prints: it is the one that
reads the clock.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import Any

import attrs

from statemodel.checker import inbox_mutants
from statemodel.checker.inbox_mutants import INBOX_MUTANTS
from statemodel.checker.inbox_space import InboxModel, explore_inbox
from statemodel.checker.inbox_space import required_coverage as inbox_coverage
from statemodel.checker.mutants import MUTANTS, caught_as_named
from statemodel.checker.search import Bounds, Kind, Liveness, Report, explore
from statemodel.checker.space import Model, required_coverage
from statemodel.inbox.table import Mode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sendguard explore",
        description="Explore every interleaving of the pure model to closure and check its promises.",
    )
    p.add_argument("--workers", "-K", type=_some, default=2, help="concurrent invocations (default 2)")
    p.add_argument("--records", "-M", type=_some, default=2, help="records (default 2)")
    p.add_argument(
        "--faults", "-F", type=_count, default=2, help="faults injected per run, at most (default 2)"
    )
    p.add_argument(
        "--max-attempts",
        "-A",
        type=_attempts,
        default=2,
        help="the protocol's max_attempts: claims a record may have, 1 to 3 (default 2); with --inbox, "
        "max_receives",
    )
    p.add_argument(
        "--inbox",
        choices=[mode.value for mode in Mode],
        help="explore the consumer's inbox in this mode instead: K invocations, M messages",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument(
        "--mutant",
        choices=sorted(MUTANTS) + sorted(INBOX_MUTANTS),
        help="explore this deliberately broken model instead (an inbox mutant with --inbox)",
    )
    p.add_argument("--list-mutants", action="store_true", help="name the mutants and exit")
    p.add_argument("--progress", action="store_true", help="report each depth on stderr")
    p.add_argument(
        "--unreduced",
        action="store_true",
        help="explore every interleaving across records, without the reduction (same verdicts, more states)",
    )
    return p


def main(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.inbox:
        if args.unreduced:
            p.error(
                "--unreduced applies to the outbox's explorer; the inbox's has no reduction across records"
            )
        return main_inbox(p, args)
    if args.list_mutants:
        width = max(map(len, MUTANTS))
        for name, mutant in MUTANTS.items():
            print(f"{name:<{width}}  {mutant.summary}")
        return 0
    if args.mutant in INBOX_MUTANTS:
        p.error(f"{args.mutant} is an inbox mutant: give --inbox {INBOX_MUTANTS[args.mutant].mode.value}")
    model = MUTANTS[args.mutant] if args.mutant else Model()
    bounds = Bounds(args.workers, args.records, args.faults, args.max_attempts)
    started = time.perf_counter()
    marks = {"safety": started}

    def progress(depth: int, states: int) -> None:
        print(f"depth {depth}: {states:,} states, {time.perf_counter() - started:.1f} s", file=sys.stderr)

    def liveness_starts() -> None:
        marks["liveness"] = time.perf_counter()
        if args.progress:
            print(f"liveness: {marks['liveness'] - started:.1f} s", file=sys.stderr)

    cpu_started = time.process_time()
    # The search makes tens of millions of acyclic tuples and keeps them to the end: the cyclic
    # garbage collector would walk them again and again and free nothing (13 % of the time).
    gc.disable()
    try:
        report = explore(
            model, bounds, progress if args.progress else None, liveness_starts, reduce=not args.unreduced
        )
    finally:
        gc.enable()
    ended = time.perf_counter()
    split = marks.get("liveness", ended)
    seconds = Seconds(split - started, ended - split, time.process_time() - cpu_started)
    named = caught_as_named(model, report.violations + report.liveness.violations) if args.mutant else None
    if args.json:
        verdict = {} if named is None else {"mutant": {"caught_with": model.caught_with, "as_named": named}}
        print(json.dumps(as_json(report, seconds) | verdict, indent=2))
    else:
        print(as_text(report, seconds) + ("" if named is None else "\n" + mutant_text(model, report, named)))
    if report.ok:
        return 0  # for a mutant: MISSED, nothing caught it
    return OTHER_CHECK if named is False else 1


OTHER_CHECK = 3  # a mutant caught, but not by the violation its bug makes: not shown caught


def main_inbox(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`sendguard explore --inbox MODE`: the inbox's search, reported as the outbox's is."""
    mode = Mode(args.inbox)
    if args.list_mutants:
        mine = {name: m for name, m in INBOX_MUTANTS.items() if m.mode is mode}
        width = max(map(len, mine))
        for name, mutant in mine.items():
            print(f"{name:<{width}}  {mutant.summary}")
        return 0
    if args.mutant and args.mutant not in INBOX_MUTANTS:
        p.error(
            f"{args.mutant} is not an inbox mutant (sendguard explore --inbox {mode.value} --list-mutants)"
        )
    model = INBOX_MUTANTS[args.mutant] if args.mutant else InboxModel(mode=mode, name=f"inbox ({mode.value})")
    if model.mode is not mode:
        p.error(f"{args.mutant} is a mutant of the {model.mode.value} inbox: give --inbox {model.mode.value}")
    bounds = Bounds(args.workers, args.records, args.faults, args.max_attempts)
    started = time.perf_counter()

    def progress(depth: int, states: int) -> None:
        print(f"depth {depth}: {states:,} states, {time.perf_counter() - started:.1f} s", file=sys.stderr)

    marks = {"safety": started}

    def liveness_starts() -> None:
        marks["liveness"] = time.perf_counter()

    cpu_started = time.process_time()
    gc.disable()  # as for the outbox: the search keeps every tuple it makes to the end
    try:
        report = explore_inbox(model, bounds, progress if args.progress else None, liveness_starts)
    finally:
        gc.enable()
    ended = time.perf_counter()
    split = marks.get("liveness", ended)
    seconds = Seconds(split - started, ended - split, time.process_time() - cpu_started)
    required = len(inbox_coverage(mode, bounds.max_attempts))
    named = None
    if args.mutant:
        named = inbox_mutants.caught_as_named(model, report.violations + report.liveness.violations)
    if args.json:
        verdict = {} if named is None else {"mutant": {"caught_with": model.caught_with, "as_named": named}}
        body = as_json(report, seconds, required) | {"inbox": mode.value} | verdict
        print(json.dumps(body, indent=2))
    else:
        text = as_text(report, seconds, required, subject="messages")
        print(text + ("" if named is None else "\n" + mutant_text(model, report, named)))
    if report.ok:
        return 0
    return OTHER_CHECK if named is False else 1


def mutant_text(model: Model | InboxModel, report: Report, named: bool) -> str:
    if report.ok:
        return f"mutant {model.name}: MISSED (expected a violation matching {model.caught_with!r})"
    if named:
        return f"mutant {model.name}: caught by its own check ({model.caught_with!r})"
    return (
        f"mutant {model.name}: CAUGHT BY ANOTHER CHECK, not by the violation its bug makes "
        f"({model.caught_with!r})"
    )


@attrs.frozen
class Seconds:
    """Wall-clock time of the two phases: the search with its safety check, then liveness."""

    safety: float
    liveness: float
    cpu: float = 0.0  # the process's CPU time for both: its time on one core (the search is serial)

    @property
    def total(self) -> float:
        return self.safety + self.liveness


def as_json(report: Report, seconds: Seconds, required: int | None = None) -> dict[str, Any]:
    bounds = report.bounds
    required = len(required_coverage(bounds.max_attempts)) if required is None else required
    live = report.liveness
    return {
        "model": report.model,
        "bounds": {
            "workers": bounds.workers,
            "records": bounds.records,
            "faults": bounds.faults,
            "max_attempts": bounds.max_attempts,
        },
        "complete": report.complete,
        "reduced": report.reduced,
        "states": report.states,
        "transitions": report.transitions,
        "max_depth": report.max_depth,
        "seconds": round(seconds.total, 3),
        "cpu_seconds": round(seconds.cpu, 3),
        "states_per_second": round(report.states / seconds.safety) if seconds.safety else None,
        "violations": report.violations,
        "counterexample": report.counterexample,
        "final_state": report.final_state,
        "coverage": {
            "required": required,
            "missing": report.missing,
            "reached": report.reached,
        },
        "liveness": {
            "checked": live.checked,
            "ok": live.ok,
            "kind": live.kind.value if live.kind else None,
            "violations": live.violations,
            "path": live.path,
            "loop": live.loop,
            "final_state": live.final_state,
            "cyclic_states": live.cyclic_states,
            "fair_components": live.fair_components,
            "seconds": round(seconds.liveness, 3),
        },
    }


def as_text(report: Report, seconds: Seconds, required: int | None = None, subject: str = "records") -> str:
    bounds = report.bounds
    rate = report.states / seconds.safety if seconds.safety else 0.0
    budget = "attempts" if subject == "records" else "receives"
    lines = [
        f"sendguard explore: {report.model}, K={bounds.workers} workers, M={bounds.records} {subject}, "
        f"F={bounds.faults} faults, A={bounds.max_attempts} {budget}"
        + (", reduced across records" if report.reduced else ""),
        f"{'explored to closure' if report.complete else 'stopped at the first violation'}: "
        f"{report.states:,} states, {report.transitions:,} transitions, max depth {report.max_depth}, "
        f"{seconds.safety:.1f} s, {rate:,.0f} states/s",
    ]
    if report.violations:
        lines.append(f"VIOLATION after {len(report.counterexample)} steps (a shortest counterexample):")
        lines += report.counterexample
        lines.append("broken:")
        lines += [f"  - {problem}" for problem in report.violations]
        lines.append("the records at the end:")
        lines += [f"  {line}" for line in report.final_state]
        lines.append("liveness: not checked (the search stopped at a safety violation)")
        return "\n".join(lines)
    required = len(required_coverage(bounds.max_attempts)) if required is None else required
    if report.missing:
        lines.append(f"coverage: {len(report.missing)} of {required} never reached:")
        lines += [f"  - {label}" for label in report.missing]
    else:
        lines.append(f"coverage: all {required} table rows, fault kinds and crash points reached")
    lines.append("safety: no violations")
    lines += _liveness_text(report.liveness, seconds.liveness)
    lines.append(f"CPU: {seconds.cpu:.1f} s for the search and liveness together (one core)")
    return "\n".join(lines)


def _liveness_text(live: Liveness, seconds: float) -> list[str]:
    figures = (
        f"{live.cyclic_states:,} states on fault-free cycles examined, "
        f"{live.fair_components:,} fair components, {seconds:.1f} s"
    )
    if live.kind is None:
        return [f"liveness: every fair continuation settles ({figures})"]
    lines = [
        f"LIVENESS VIOLATION ({live.kind.value}) after {len(live.path)} steps "
        f"(a shortest path to where it starts; {figures}):",
        *live.path,
    ]
    if live.kind is Kind.CYCLE:
        lines.append(f"then, with no more faults, for ever (a fair cycle of {len(live.loop)} steps):")
        lines += live.loop
    elif live.kind is Kind.DEAD_END:
        lines.append(
            "then nothing more happens: no invocation runs, the reconciler starts nothing, "
            "and time passing changes nothing (a dead end)"
        )
    lines.append("broken:")
    lines += [f"  - {problem}" for problem in live.violations]
    lines.append("the records where it starts:")
    lines += [f"  {line}" for line in live.final_state]
    return lines


def _between(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text} is not between {low} and {high}")
    return value


def _attempts(text: str) -> int:
    return _between(text, 1, 3)


def _count(text: str) -> int:
    """Faults: none is a bound too."""
    return _between(text, 0, 9)


def _some(text: str) -> int:
    """Workers and records: with none, nothing runs and the verdict is only of coverage."""
    return _between(text, 1, 9)
