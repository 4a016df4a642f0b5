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

Every side runs with what a Lambda container can import (`lambda_package`): the standard library, the
project's `adapters` and `statemodel` as the function's build makes them (`make
build-SubmitFunction`: their bytecode compiled ahead of time, since Lambda's /var/task is
read-only), and the distributions of deploy/layer/requirements.txt with their dependencies (boto3
comes with the runtime too) — a directory of them on `PYTHONPATH`, the interpreter started with
`-S` (no site-packages). The development virtualenv holds
more (the test and docs tools), and some of it changes what the Lambda's own dependencies do when
they are imported: structlog imports `rich` (installed here by `textual`) when it can, about a third
of `import adapters.aws_lambda` on this machine. The two like-for-like sides are measured again in
the development virtualenv as it is (`dev_venv`), for reference.

The module list is what `import adapters.aws_lambda` adds to a bare interpreter's `sys.modules`, by
top-level package, with each package's import time from one `python -X importtime` run (both in the
Lambda's package).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

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
LIKE_FOR_LIKE = "import adapters.aws_lambda + its clients"
ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "deploy" / "layer" / "requirements.txt"
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
    dev: dict[str, list[float]] = {side: [] for side in (LIKE_FOR_LIKE, BASELINE)}
    with lambda_package() as path:
        for n in range(runs):
            say(f"cold start: run {n + 1} of {runs}")
            for side, code in SIDES.items():
                seconds[side].append(float(_python(["-c", _TIMED.format(code=code)], path=path)))
            for side in dev:
                dev[side].append(float(_python(["-c", _TIMED.format(code=SIDES[side])])))
        modules = json.loads(_python(["-c", _MODULES], path=path))
        packages = sorted({m.split(".")[0] for m in modules if not m.startswith("_") or m == "_pytest"})
        import_times = _import_times(packages, path)
    return {
        "runs": runs,
        "sides": _sides(seconds),
        "dev_venv": _sides(dev),
        "lambda_distributions": sorted(_closure()),
        "baseline": BASELINE,
        "modules_loaded": len(modules),
        "packages": packages,
        "toolchain_loaded": sorted(set(packages) & TOOLCHAIN),
        "import_ms_by_package": import_times,
    }


def _sides(seconds: dict[str, list[float]]) -> list[dict[str, Any]]:
    medians = {side: stats.median(values) for side, values in seconds.items()}
    return [
        {
            "side": side,
            "median_ms": stats.ms(medians[side]),
            "min_ms": stats.ms(min(seconds[side])),
            "max_ms": stats.ms(max(seconds[side])),
            "ratio_to_baseline": _round(stats.ratio(medians[side], medians[BASELINE])),
        }
        for side in seconds
    ]


def _closure() -> set[str]:
    """The layer's distributions and everything they require here (markers evaluated), and boto3."""
    lines = (line.split("#")[0].strip() for line in LAYER.read_text(encoding="utf-8").splitlines())
    # The lock's entries (`name==version \`, then their `--hash` lines): by name, as installed here.
    wanted = ["boto3", *(line.split("==")[0] for line in lines if line and not line.startswith("-"))]
    seen: set[str] = set()
    while wanted:
        requirement = Requirement(wanted.pop())
        name = requirement.name.lower().replace("_", "-")
        if name in seen or (requirement.marker is not None and not requirement.marker.evaluate()):
            continue
        seen.add(name)
        for needed in metadata.requires(name) or []:
            parsed = Requirement(needed)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                wanted.append(needed)
    return seen


@contextlib.contextmanager
def lambda_package() -> Iterator[Path]:
    """A directory of what a Lambda container can import besides the standard library: the
    project's packages as the function's build makes them, and links to the top-level modules of
    the layer's distributions (`_closure`; pip compiled their bytecode when it installed them, as
    it does for the layer)."""
    tops = {
        top
        for top, dists in metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in _closure() for d in dists) and not top.startswith("_")
    }
    with tempfile.TemporaryDirectory(prefix="sendguard-lambda-") as directory:
        path = Path(directory)
        function_package(path)
        for top in tops:
            found = _location(top)
            if found is not None:
                (path / found.name).symlink_to(found)
        yield path


def function_package(into: Path) -> None:
    """The project's packages as `sam build` puts them in a function (the Makefile's
    `build-SubmitFunction`: their bytecode compiled ahead of time), by this interpreter."""
    command = ["make", "-s", "-C", str(ROOT), "build-SubmitFunction", f"ARTIFACTS_DIR={into}"]
    subprocess.run([*command, f"LAMBDA_PYTHON={sys.executable}"], check=True, timeout=120)


def _location(top: str) -> Path | None:
    """Where a top-level package or module is installed (a directory or a single file)."""
    for entry in sys.path:
        base = Path(entry or ".")
        for candidate in (base / top, base / f"{top}.py"):
            if candidate.exists() and "site-packages" in str(base):
                return candidate
    return None


def _python(args: list[str], stderr: bool = False, path: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SENDGUARD_"))} | ENV
    command = [sys.executable, *args]
    if path is not None:  # the Lambda's package only: no site-packages, the links on the path
        env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PYTHONPATH"] = str(path)
        command = [sys.executable, "-S", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True, timeout=120)
    return result.stderr if stderr else result.stdout.strip()


def _import_times(packages: list[str], path: Path) -> dict[str, float]:
    """Each loaded package's cumulative import time (nested imports it made first included; so
    `adapters` holds nearly everything), from one `-X importtime` run, largest first."""
    report = _python(["-X", "importtime", "-c", "import adapters.aws_lambda"], stderr=True, path=path)
    times: dict[str, float] = {}
    for line in report.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)$", line)
        if match and "." not in match.group(2) and match.group(2) in packages:
            times[match.group(2)] = max(times.get(match.group(2), 0.0), int(match.group(1)) / 1000)
    top = sorted(times.items(), key=lambda kv: -kv[1])
    return {name: round(ms, 1) for name, ms in top[:12]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
