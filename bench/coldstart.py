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

# The first request, as the issue measures it: a fresh interpreter imports, makes its clients and
# reads one record from DynamoDB (moto over HTTP on loopback, the same server for both sides).
FIRST_REQUEST = "first request: sendguard's handler, GET /messages/{id}"
FIRST_REQUEST_BASELINE = "first request: boto3 alone, two clients and the same GetItem"
# The floor for any handler built on the libraries the project uses: boto3 alone's request, with
# attrs and structlog imported first (structlog imports asyncio).
FIRST_REQUEST_FLOOR = "first request: boto3 alone, attrs and structlog imported first"
FIRST_SIDES = {
    FIRST_REQUEST: (
        "import adapters.aws_lambda\n"
        "answer = adapters.aws_lambda.submit({event!r})\n"
        "assert answer['statusCode'] == 200, answer"
    ),
    FIRST_REQUEST_BASELINE: (
        "import boto3\n"
        "dynamodb = boto3.client('dynamodb')\n"
        "boto3.client('sqs')\n"
        "item = dynamodb.get_item(TableName={table!r}, Key={key!r}, ConsistentRead=True)\n"
        "assert 'Item' in item, item"
    ),
}
FIRST_SIDES[FIRST_REQUEST_FLOOR] = "import attrs, structlog\n" + FIRST_SIDES[FIRST_REQUEST_BASELINE]
# SnapStart, simulated: a parent imports the handler and primes it as Lambda's before-snapshot hook
# does, then forks (the restore); only the child's first request is timed: what a restored
# environment spends (Lambda's own restore of the memory is not in it).
FIRST_REQUEST_RESTORED = "first request after a SnapStart restore (simulated: forked from a primed parent)"
FIRST_SIDES[FIRST_REQUEST_RESTORED] = (
    "import os\n"
    "import adapters.aws_lambda\n"
    "from adapters.runtime.snapstart import RESTORE\n"
    "RESTORE.before_snapshot()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    code = 1\n"
    "    try:\n"
    "        started, cpu = time.perf_counter(), time.process_time()\n"
    "        answer = adapters.aws_lambda.submit({event!r})\n"
    "        assert answer['statusCode'] == 200, answer\n"
    "        spent = (time.perf_counter() - started, time.process_time() - cpu)\n"
    "        sys.stderr.write(f'\\n%timed% {{spent[0]}} {{spent[1]}}\\n')\n"
    "        code = 0\n"
    "    finally:\n"
    "        sys.stderr.flush()\n"
    "        os._exit(code)\n"
    "assert os.waitpid(pid, 0)[1] == 0, 'the restored child failed'"
)
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
import sys, time
_started, _cpu = time.perf_counter(), time.process_time()
{code}
sys.stderr.write(f"\\n%timed% {{time.perf_counter() - _started}} {{time.process_time() - _cpu}}\\n")
"""

_MODULES = """
import sys, json
before = set(sys.modules)
import adapters.aws_lambda
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def run(runs: int = 15, say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    sides = (*FIRST_SIDES, *SIDES)
    wall: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    dev: dict[str, list[float]] = {side: [] for side in (LIKE_FOR_LIKE, BASELINE)}
    with lambda_package() as path, first_request() as (env, codes):
        for n in range(runs):
            say(f"cold start: run {n + 1} of {runs}")
            for side in sides:  # the sides take turns: a run is one of each, back to back
                seconds, cpu_seconds = _timed(codes.get(side) or SIDES[side], env, path)
                wall[side].append(seconds)
                cpu[side].append(cpu_seconds)
            for side in dev:
                dev[side].append(_timed(SIDES[side], env)[0])
        extra = _extra_import_ms(codes, env, path)
        modules = json.loads(_python(["-c", _MODULES], path=path))
        packages = sorted({m.split(".")[0] for m in modules if not m.startswith("_") or m == "_pytest"})
        import_times = _import_times(packages, path)
        own_ms = _own_import_ms(path)
        attrs_classes = min(
            (json.loads(_python(["-c", _ATTRS_CLASSES], path=path)) for _ in range(3)),
            key=lambda made: made["generation_ms"] or 0.0,
        )
    return {
        "runs": runs,
        "first_request": _sides({s: wall[s] for s in FIRST_SIDES}, FIRST_REQUEST_BASELINE)
        + _sides({s: cpu[s] for s in FIRST_SIDES}, FIRST_REQUEST_BASELINE, "cpu"),
        "sides": _sides({s: wall[s] for s in SIDES}, BASELINE),
        "sides_cpu": _sides({s: cpu[s] for s in SIDES}, BASELINE, "cpu"),
        "dev_venv": _sides(dev, BASELINE),
        "lambda_distributions": sorted(_closure()),
        "baseline": BASELINE,
        "first_request_side": FIRST_REQUEST,
        "first_request_baseline": FIRST_REQUEST_BASELINE,
        "first_request_floor": FIRST_REQUEST_FLOOR,
        "first_request_restored": FIRST_REQUEST_RESTORED,
        "modules_loaded": len(modules),
        "packages": packages,
        "toolchain_loaded": sorted(set(packages) & TOOLCHAIN),
        "import_ms_by_package": import_times,
        "own_import_ms": own_ms,
        "extra_import_ms": extra,
        "attrs_classes": attrs_classes,
    }


@contextlib.contextmanager
def first_request() -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """moto over HTTP on loopback with sendguard's table and queue and one accepted message; yields
    the environment the sides run in (the endpoint, the table, the queue) and the first-request
    sides' code, both reading that message."""
    from adapters.aws_lambda import Handlers
    from adapters.local.moto_server import EmbeddedMoto
    from adapters.local.sandbox import REAL_ENDPOINT_SETTINGS, environment
    from adapters.ops.provision import ensure_resources
    from adapters.runtime.config import Config

    with (
        EmbeddedMoto() as moto,
        environment(ENV | {"AWS_ENDPOINT_URL": moto.endpoint}, REAL_ENDPOINT_SETTINGS),
    ):
        queue_url = ensure_resources(ENV["SENDGUARD_TABLE"], "cold-start")
        env = ENV | {"AWS_ENDPOINT_URL": moto.endpoint, "SENDGUARD_QUEUE_URL": queue_url}
        # The seed's handler keeps the benchmark's log level (its first call configures logging).
        with environment(env | {"SENDGUARD_LOG_LEVEL": "CRITICAL"}):
            handlers = Handlers()
            posted = handlers.submit(_event("POST", "/messages", json.dumps({"payload": {"n": 1}})))
            message_id = json.loads(posted["body"])["messageId"]
            key = Config.from_env().layout.key(message_id)
        codes = {
            **{
                side: FIRST_SIDES[side].format(event=_event("GET", f"/messages/{message_id}"))
                for side in (FIRST_REQUEST, FIRST_REQUEST_RESTORED)
            },
            **{
                side: FIRST_SIDES[side].format(table=ENV["SENDGUARD_TABLE"], key=key)
                for side in (FIRST_REQUEST_BASELINE, FIRST_REQUEST_FLOOR)
            },
        }
        yield env, codes


def _event(method: str, path: str, body: str | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0), as small as the handler accepts."""
    http = {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": http, "requestId": "cold-start"},
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    return event


def _timed(code: str, env: dict[str, str], path: Path | None = None) -> tuple[float, float]:
    """A side's wall-clock and CPU seconds (user + system, `time.process_time`), from its first import
    to its end, in a fresh interpreter."""
    report = _python(["-c", _TIMED.format(code=code)], stderr=True, path=path, env=env)
    # The first timing: a side that forks (the restore) reports its child's before the parent's.
    line = next(line for line in report.splitlines() if line.startswith("%timed% "))
    seconds, cpu_seconds = line.split()[1:]
    return float(seconds), float(cpu_seconds)


def _sides(seconds: dict[str, list[float]], baseline: str, clock: str = "wall") -> list[dict[str, Any]]:
    medians = {side: stats.median(values) for side, values in seconds.items()}
    return [
        {
            "side": side,
            "clock": clock,
            "median_ms": stats.ms(medians[side]),
            "min_ms": stats.ms(min(seconds[side])),
            "max_ms": stats.ms(max(seconds[side])),
            "ratio_to_baseline": _round(stats.ratio(medians[side], medians[baseline])),
            "paired_ratio": _round(
                stats.median([a / b for a, b in zip(seconds[side], seconds[baseline], strict=True) if b])
            ),
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


def _python(
    args: list[str], stderr: bool = False, path: Path | None = None, env: dict[str, str] = ENV
) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SENDGUARD_"))} | env
    command = [sys.executable, *args]
    cwd = None
    if path is not None:  # the Lambda's package only: no site-packages, the links on the path
        env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PYTHONPATH"] = str(path)
        command = [sys.executable, "-S", *args]
        # Run in the package, as Lambda runs in /var/task: `-c` puts the working directory first on
        # sys.path, and from the repository's root that is the source tree (compiled at each import
        # where bytecode is not written), not the package's compiled modules.
        cwd = path
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, check=True, timeout=120, cwd=cwd
    )
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


# What sendguard's first request imports that boto3 alone's does not, by top-level package (`own`:
# adapters and statemodel; `attr` holds attrs too), in CPU time: each module's own time (its
# `exec_module`, less the imports it made), timed by a finder put first on `sys.meta_path` in the
# measuring interpreter (`-X importtime` times wall-clock, which on a shared machine is mostly
# waiting), each module's least in `runs` runs of each side's whole first request.
_GROUPS = {"adapters": "own", "statemodel": "own", "attrs": "attr", "_asyncio": "asyncio"}
_CPU_IMPORTS = """
import sys, time
_clock = time.process_time
_self = {}
_stack = []


class _Timed:
    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        _stack.append(0.0)
        started = _clock()
        try:
            self._loader.exec_module(module)
        finally:
            spent = _clock() - started
            children = _stack.pop()
            if _stack:
                _stack[-1] += spent
            _self[module.__name__] = _self.get(module.__name__, 0.0) + spent - children


class _Finder:
    def find_spec(self, name, path=None, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Timed(spec.loader)
                return spec
        return None


sys.meta_path.insert(0, _Finder())
"""
_CPU_REPORT = "\nimport json\nsys.stderr.write('\\n%imports% ' + json.dumps(_self) + '\\n')\n"


def _least_self_times(code: str, env: dict[str, str], path: Path, runs: int) -> dict[str, float]:
    """Each module `code` imports, with its own CPU seconds importing, the least of `runs` runs."""
    least: dict[str, float] = {}
    for _ in range(runs):
        report = _python(["-c", _CPU_IMPORTS + code + _CPU_REPORT], stderr=True, path=path, env=env)
        line = next(line for line in report.splitlines() if line.startswith("%imports% "))
        for module, seconds in json.loads(line.removeprefix("%imports% ")).items():
            least[module] = min(least.get(module, seconds), seconds)
    return least


def _extra_import_ms(codes: dict[str, str], env: dict[str, str], path: Path, runs: int = 5) -> dict[str, Any]:
    ours = _least_self_times(codes[FIRST_REQUEST], env, path, runs)
    boto3_alone = _least_self_times(codes[FIRST_REQUEST_BASELINE], env, path, runs)
    extra = {module: seconds for module, seconds in ours.items() if module not in boto3_alone}
    by: dict[str, float] = {}
    for module, seconds in extra.items():
        top = module.split(".")[0]
        group = _GROUPS.get(top, top if top in ("attr", "structlog", "asyncio") else "other")
        by[group] = by.get(group, 0.0) + seconds
    return {
        "runs": runs,
        "clock": "cpu",
        "modules": len(extra),
        "total_ms": stats.ms(sum(extra.values())),
        "by_package": {name: round(1000 * s, 1) for name, s in sorted(by.items(), key=lambda kv: -kv[1])},
        # every import of each side, for scale: the first request's import time against boto3 alone's
        "all_ms": {"ours": stats.ms(sum(ours.values())), "boto3_alone": stats.ms(sum(boto3_alone.values()))},
    }


# The attrs classes sendguard's handler defines at import (adapters and statemodel), and how long attrs
# takes to generate them: `attr._next_gen.attrs` (what `attrs.define` and `attrs.frozen` call) timed
# in this measuring interpreter only; None when that attrs internal is not there to time.
_ATTRS_CLASSES = """
import json, sys, time
import attr._next_gen as next_gen
made = []
build = getattr(next_gen, "attrs", None)
def timed(maybe_cls=None, *args, **kwargs):
    started = time.process_time()
    result = build(maybe_cls, *args, **kwargs)
    if maybe_cls is not None and maybe_cls.__module__.startswith(("adapters", "statemodel")):
        made.append(time.process_time() - started)
    return result
if build is not None:
    next_gen.attrs = timed
import adapters.aws_lambda
import attrs
own = [m for name, m in sys.modules.items() if name.startswith(("adapters", "statemodel"))]
classes = {}
for m in own:
    group = "statemodel" if m.__name__.startswith("statemodel") else "adapters"
    classes[group] = classes.get(group, 0) + sum(
        1 for v in vars(m).values() if isinstance(v, type) and attrs.has(v) and v.__module__ == m.__name__
    )
timed_ms = round(1000 * sum(made), 1) if build is not None and made else None
print(json.dumps({"classes": classes, "generation_ms": timed_ms, "timed": len(made)}))
"""


def _own_import_ms(path: Path, runs: int = 5) -> dict[str, Any]:
    """sendguard's own modules' import time: each module's own CPU time (`_CPU_IMPORTS`) in `runs` runs
    of `import adapters.aws_lambda` in the Lambda's package, its least (the run least disturbed by the
    machine's other work), largest first, and their total."""
    own = {
        module: 1000 * seconds
        for module, seconds in _least_self_times("import adapters.aws_lambda", ENV, path, runs).items()
        if module.split(".")[0] in ("adapters", "statemodel")
    }
    top = sorted(own.items(), key=lambda kv: -kv[1])
    return {
        "runs": runs,
        "clock": "cpu",
        "modules": len(own),
        "total_ms": round(sum(own.values()), 1),
        "largest": {name: round(ms, 1) for name, ms in top[:8]},
    }
