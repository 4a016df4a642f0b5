"""What a failing run tells a team: the steps of the failing sequence, numbered and readable
(invocation, fault, answer, what the table holds after it), and a reproduction recipe that works as
printed.

Each suite instance writes its steps to a `StepLog`; the last one made is the one Hypothesis replayed
last — the shrunk sequence — and `explain` adds it to the failure, with the recipe in place of
Hypothesis' advice to decorate "your test function" (which a state machine run by `run_suite` does not
have). Shrinking is bounded by `shrink_budget`, so that a failure is reported in minutes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import threading
from collections.abc import Iterator

import attrs
from hypothesis.internal.conjecture import engine
from hypothesis.reporting import current_reporter, with_reporter

from adapters.testing.injector import SENDGUARD, TEAM, Fault, Plan

# Hypothesis lets users change this limit (engine.py says so); 5 min is its own default.
SHRINK_SECONDS = 120
REPRODUCE_VARIABLE = "SENDGUARD_REPRODUCE"  # "<hypothesis version>:<blob>": replay one example
SCENARIO_VARIABLE = "SENDGUARD_SCENARIO"  # a coverage-phase scenario's name: run only that one


@attrs.define
class Step:
    text: str
    details: list[str] = attrs.field(factory=list)
    table: str = ""


class StepLog:
    """The steps of one example, as a team reads them."""

    last: StepLog | None = None  # the log of the most recent example (the one that failed last)

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._lock = threading.Lock()
        StepLog.last = self

    def step(self, text: str) -> None:
        with self._lock:
            self.steps.append(Step(text))

    def detail(self, text: str) -> None:
        with self._lock:
            if not self.steps:
                self.steps.append(Step("set up"))
            self.steps[-1].details.append(text)

    def table(self, text: str) -> None:
        with self._lock:
            if self.steps:
                self.steps[-1].table = text

    def render(self) -> str:
        lines = []
        for number, step in enumerate(self.steps, 1):
            lines.append(f"{number:>3}. {step.text}")
            lines += [f"       {detail}" for detail in step.details]
            if step.table:
                lines.append(f"       table: {step.table}")
        return "\n".join(lines)


def describe_plan(plan: Plan | tuple[Plan, ...] | None) -> str:
    if plan is None:
        return "no fault"
    plans = (plan,) if isinstance(plan, Plan) else plan
    return "; ".join(_one(p) for p in plans)


def _one(plan: Plan) -> str:
    target = plan.fault.value.target
    what = {"send": "SQS send", "write": "DynamoDB write"}.get(target or "", "write or send")
    whose = {TEAM: " of the team's own code", SENDGUARD: " of sendguard's"}.get(plan.caller or "", "")
    return f"fault '{plan.fault.value.name}' on its {_ordinal(plan.skip + 1)} {what}{whose}"


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def fired_names(faults: list[Fault]) -> str:
    return ", ".join(f.value.name for f in faults) or "none"


# How Hypothesis says it stopped shrinking: it names its own default limit, whatever the limit was.
_SLOW_SHRINK = "Hypothesis has spent more than five minutes working to shrink"


@contextlib.contextmanager
def shrink_budget(seconds: int = SHRINK_SECONDS) -> Iterator[None]:
    """Hypothesis stops shrinking after `seconds` and reports the smallest failure found so far; its
    warning when it stops says this bound, not its own default of five minutes."""
    saved = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = seconds
    outer = current_reporter()

    def reporter(text: object) -> None:
        if isinstance(text, str) and _SLOW_SHRINK in text:
            text = (
                f"Shrinking stopped after {seconds} s, the suite's bound "
                "(adapters.testing.report.SHRINK_SECONDS): the failure reported is the smallest "
                "found by then."
            )
        outer(text)

    try:
        with with_reporter(reporter):
            yield
    finally:
        engine.MAX_SHRINKING_SECONDS = saved


_BLOB = re.compile(r"@reproduce_failure\('([^']+)', (b'[^']*')\)")


def explain(error: BaseException, heading: str, recipe_variable: str, recipe_value: str | None) -> None:
    """Adds the numbered steps and the reproduction recipe to a failure's notes, in place of
    Hypothesis' `@reproduce_failure` advice."""
    notes: list[str] = list(getattr(error, "__notes__", []))
    value = recipe_value
    for index, text in enumerate(notes):
        found = _BLOB.search(text)
        if found:
            value = f"{found.group(1)}:{found.group(2)[2:-1]}"
            notes[index] = ""
    error.__notes__ = [n for n in notes if n]
    log = StepLog.last
    if log is not None and log.steps:
        error.add_note(f"{heading}, step by step:\n{log.render()}")
    if value is not None:
        error.add_note(f"To run exactly this again:\n    {recipe(recipe_variable, value)}")


def recipe(variable: str, value: str) -> str:
    """The command that replays this failure: the same test, with the variable set."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    command = f"python -m pytest {shlex.quote(test)}" if test else "<the command that ran this test>"
    return f"{variable}={shlex.quote(value)} {command}"


def parse_reproduction(value: str) -> tuple[str, bytes]:
    version, _, blob = value.partition(":")
    return version, blob.encode()
