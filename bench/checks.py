"""Section 4: how fast the checks run — the exhaustive explorer, and the two Hypothesis suites.

* Explorer: `sendguard explore --workers K --records M --faults F --json` in a subprocess, as a person
  runs it; its own JSON gives the states and the seconds (its clock, around the search alone). Then
  `make check-model`'s outbox bound (K=3, M=3, F=3, max_attempts 1 to 3) with its CPU seconds (issue
  26's goal 3), and the first of the three again `--unreduced`: the states before the reduction.
* Hypothesis: each suite's state machine, subclassed with one more `@invariant()` that only counts.
  Hypothesis checks invariants once when an example's machine is made and again after every step, so
  each machine's checks after its first are its steps (examples are counted in `__init__`). Runs are
  derandomized, with no example database, a fixed `max_examples` and `stateful_step_count`; the
  seconds are the whole run's wall time (machine set-up, invariants and teardown included), so steps
  per second is what a person running the suite gets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from bench.moto_env import in_process_aws

SENDGUARD = Path(sys.executable).with_name("sendguard")


CHECK_MODEL = (3, 3, 3)  # make check-model's outbox bound: K, M, F, for each max_attempts below
CHECK_MODEL_ATTEMPTS = (1, 2, 3)


def explorer(
    workers: int, records: int, faults: int, max_attempts: int | None = None, unreduced: bool = False
) -> dict[str, Any]:
    command = [str(SENDGUARD), "explore", "--workers", str(workers), "--records", str(records)]
    command += ["--faults", str(faults), "--json"]
    command += [] if max_attempts is None else ["--max-attempts", str(max_attempts)]
    command += ["--unreduced"] if unreduced else []
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    wall = time.perf_counter() - started
    report = json.loads(result.stdout)
    return {
        "command": "sendguard " + " ".join(command[1:]),
        "exit_code": result.returncode,
        "complete": report["complete"],
        "states": report["states"],
        "transitions": report["transitions"],
        "seconds": report["seconds"],
        "cpu_seconds": report["cpu_seconds"],
        "reduced": report["reduced"],
        "wall_seconds": round(wall, 3),
        "states_per_second": report["states_per_second"],
        "violations": len(report["violations"]),
    }


class _Count:
    examples = 0
    steps = 0


def _counted(machine: type) -> type:
    class Counted(machine):  # type: ignore[misc]
        def __init__(self) -> None:
            _Count.examples += 1
            super().__init__()

        @invariant()
        def bench_count_steps(self) -> None:
            if getattr(self, "_bench_made", False):
                _Count.steps += 1
            else:
                self._bench_made = True  # the check right after the machine was made

    Counted.__name__ = f"Counted{machine.__name__}"
    return Counted


def steps_per_second(machine: type, examples: int, steps: int) -> dict[str, Any]:
    _Count.examples = _Count.steps = 0
    run_settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    started = time.perf_counter()
    run_state_machine_as_test(_counted(machine), settings=run_settings)
    seconds = time.perf_counter() - started
    done = _Count.steps
    return {
        "max_examples": examples,
        "stateful_step_count": steps,
        "examples": _Count.examples,
        "steps": done,
        "seconds": round(seconds, 3),
        "steps_per_second": round(done / seconds, 1) if seconds else None,
    }


def check_model(say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """`make check-model`'s three outbox runs, as it runs them (reduced), and the first unreduced."""
    runs = []
    for attempts in CHECK_MODEL_ATTEMPTS:
        say(f"checks: make check-model's sendguard explore -K 3 -M 3 -F 3 -A {attempts}")
        runs.append(explorer(*CHECK_MODEL, max_attempts=attempts))
    say("checks: the same at -A 1 --unreduced (the states before the reduction)")
    before = explorer(*CHECK_MODEL, max_attempts=CHECK_MODEL_ATTEMPTS[0], unreduced=True)
    return {
        "runs": runs,
        "unreduced": before,
        "cpu_seconds": round(sum(run["cpu_seconds"] for run in runs), 1),
        "states": sum(run["states"] for run in runs),
    }


def run(
    bounds: tuple[int, int, int] = (3, 3, 3),
    pure: tuple[int, int] = (100, 50),
    adapters: tuple[int, int] = (10, 20),
    say: Callable[[str], None] = lambda _: None,
    full_bound: bool = True,
) -> dict[str, Any]:
    say(f"checks: sendguard explore K={bounds[0]} M={bounds[1]} F={bounds[2]}")
    explored = explorer(*bounds)
    full = check_model(say) if full_bound else None
    say("checks: the pure-model Hypothesis suite")
    from tests.test_model_stateful import PureModelMachine

    pure_model = steps_per_second(PureModelMachine, *pure)
    say("checks: the adapters-on-moto Hypothesis suite (FaultInjectionSuite)")
    from adapters.testing import FaultInjectionSuite

    with in_process_aws():
        on_moto = steps_per_second(FaultInjectionSuite, *adapters)
    return {
        "explorer": explored,
        "check_model": full,
        "hypothesis": {"pure_model": pure_model, "adapters_on_moto": on_moto},
    }
