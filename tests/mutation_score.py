"""`make mutation`'s verdict: the mutmut score over statemodel/, from `mutmut export-cicd-stats`.

Killed counts the mutants a test failed on, and those that made a test time out (a mutant that loops
for ever is caught too). Exits 1 below the goal of 90 % of all mutants, survivors and mutants no test
reached included.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GOAL = 0.90


def main() -> int:
    stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
    killed = stats["killed"] + stats["timeout"]
    total = stats["total"]
    score = killed / total if total else 0.0
    print(
        f"mutmut over statemodel/: {killed} of {total} mutants killed ({score:.1%}); "
        f"{stats['survived']} survived, {stats['no_tests']} reached by no test, "
        f"{stats['suspicious']} suspicious (goal {GOAL:.0%})"
    )
    return 0 if score >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
