"""Section 3: cold start — what a fresh interpreter spends before sendguard can serve, against what any
boto3 Lambda spends.

Each side runs in a fresh interpreter (`python -c`), timed inside it with `time.perf_counter()` from
before its first import to the end (the interpreter's own start-up, the same for both, is left out),
the sides taking turns, `runs` times each; the medians are compared:

* `import adapters.aws_lambda` — the handler module, nothing else (its clients come at the first call);
* `import adapters.aws_lambda` and make its clients as its first invocation does
  (`Aws.from_config(Config.from_env())`: a DynamoDB and an SQS client);
* `import boto3`, then `boto3.client("dynamodb")` and `boto3.client("sqs")`;
* `import boto3` and the same two clients, each from its own `boto3.Session()` as
  `adapters.runtime.clients.make_client` makes them, to tell the sessions' cost from the imports';
* `import boto3` alone, for scale.

The module list is what `import adapters.aws_lambda` adds to a bare interpreter's `sys.modules`, by
top-level package, with each package's import time from one `python -X importtime` run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from adapters.local.sandbox import FAKE_CREDENTIALS
from bench import stats

SIDES = {
    "import adapters.aws_lambda": "import adapters.aws_lambda",
    "import adapters.aws_lambda + its clients": (
        "import adapters.aws_lambda\n"
        "from adapters.runtime.config import Config\n"
        "from adapters.runtime.runner import Aws\n"
        "Aws.from_config(Config.from_env())"
    ),
    "import boto3 + DynamoDB and SQS clients": (
        "import boto3\nboto3.client('dynamodb')\nboto3.client('sqs')"
    ),
    "import boto3 + the two clients, a boto3.Session() each": (
        "import boto3\nboto3.Session().client('dynamodb')\nboto3.Session().client('sqs')"
    ),
    "import boto3": "import boto3",
}
BASELINE = "import boto3 + DynamoDB and SQS clients"
# What must never load on the Lambda's path: the test, docs and benchmark tool chain.
TOOLCHAIN = {
    "_pytest",
    "aws_lambda_powertools",
    "bench",
    "cfnlint",
    "flask",
    "hypothesis",
    "jinja2",
    "moto",
    "mypy",
    "pytest",
    "responses",
    "ruff",
    "tests",
    "time_machine",
    "transitions",
    "werkzeug",
}
ENV = {
    **FAKE_CREDENTIALS,
    "SENDGUARD_TABLE": "cold-start",
    "SENDGUARD_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cold-start",
}

_TIMED = """
import time
_started = time.perf_counter()
{code}
print(time.perf_counter() - _started)
"""

_MODULES = """
import sys, json
before = set(sys.modules)
import adapters.aws_lambda
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def run(runs: int = 15, say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {side: [] for side in SIDES}
    for n in range(runs):
        say(f"cold start: run {n + 1} of {runs}")
        for side, code in SIDES.items():
            seconds[side].append(float(_python(["-c", _TIMED.format(code=code)])))
    medians = {side: stats.median(values) for side, values in seconds.items()}
    modules = json.loads(_python(["-c", _MODULES]))
    packages = sorted({m.split(".")[0] for m in modules if not m.startswith("_") or m == "_pytest"})
    return {
        "runs": runs,
        "sides": [
            {
                "side": side,
                "median_ms": stats.ms(medians[side]),
                "min_ms": stats.ms(min(seconds[side])),
                "max_ms": stats.ms(max(seconds[side])),
                "ratio_to_baseline": _round(stats.ratio(medians[side], medians[BASELINE])),
            }
            for side in SIDES
        ],
        "baseline": BASELINE,
        "modules_loaded": len(modules),
        "packages": packages,
        "toolchain_loaded": sorted(set(packages) & TOOLCHAIN),
        "import_ms_by_package": _import_times(packages),
    }


def _python(args: list[str], stderr: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SENDGUARD_"))} | ENV
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    return result.stderr if stderr else result.stdout.strip()


def _import_times(packages: list[str]) -> dict[str, float]:
    """Each loaded package's cumulative import time (nested imports it made first included; so
    `adapters` holds nearly everything), from one `-X importtime` run, largest first."""
    report = _python(["-X", "importtime", "-c", "import adapters.aws_lambda"], stderr=True)
    times: dict[str, float] = {}
    for line in report.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)$", line)
        if match and "." not in match.group(2) and match.group(2) in packages:
            times[match.group(2)] = max(times.get(match.group(2), 0.0), int(match.group(1)) / 1000)
    top = sorted(times.items(), key=lambda kv: -kv[1])
    return {name: round(ms, 1) for name, ms in top[:12]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
