"""The Hypothesis profiles: one vocabulary, one meaning each, for every property test sendguard runs
(the shipped suite, and the project's own tests through tests/conftest.py).

* `ci` — what `make test` runs: derandomized, so a test whose coverage is checked cannot pass or fail
  by chance; the same draws every run, until the code changes.
* `long` — `make fuzz` (nightly): new random draws every run, eight times the examples and twice the
  steps; a failure prints its seed and a `@reproduce_failure` blob.
* `smoke` — a few short examples to try a setup quickly; too small to judge coverage.

A suite names its own `ci` size (`for_size`); the other two follow from it. `HYPOTHESIS_PROFILE`
selects one.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

NAMES = ("ci", "long", "smoke")
_BASE = settings(deadline=None, print_blob=True, suppress_health_check=list(HealthCheck))


def for_size(examples: int, steps: int) -> dict[str, settings]:
    """The three profiles of a test whose `ci` run is `examples` examples of `steps` steps."""
    return {
        "ci": settings(_BASE, max_examples=examples, stateful_step_count=steps, derandomize=True),
        "long": settings(_BASE, max_examples=8 * examples, stateful_step_count=2 * steps),
        "smoke": settings(_BASE, max_examples=3, stateful_step_count=10, derandomize=True),
    }


def selected(name: str | None = None) -> str:
    """The profile to run: `name`, else $HYPOTHESIS_PROFILE, else `ci`."""
    chosen = name or os.environ.get("HYPOTHESIS_PROFILE") or "ci"
    if chosen not in NAMES:
        raise ValueError(f"unknown Hypothesis profile {chosen!r}: use one of {', '.join(NAMES)}")
    return chosen


def register_and_load(examples: int, steps: int) -> None:
    """Registers the profiles at this size under their names and loads the selected one (for a
    test suite's conftest: the default for every `@given` test that names no size of its own)."""
    for name, value in for_size(examples, steps).items():
        settings.register_profile(name, value)
    settings.load_profile(selected())
