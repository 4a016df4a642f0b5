"""What a function's package holds, as the Makefiles' build rules make it (what `sam build` runs):
each template's handlers' import closure, computed by deploy/build.py from the code, and nothing of the
suite, the CLI, the local service, the operator tools, the doc generators, the tests or the docs. The
package is proven by importing it alone: each module and handler in a fresh interpreter whose path is
the package and the layer's distributions, nothing else. tests/test_sam_build.py builds the same with
the real SAM CLI (`make sam-build`)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import marshal
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "deploy" / "layer" / "requirements.txt"


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sendguard_build", ROOT / "deploy" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()

# (template, Makefile, a function's build target): the rule `sam build` runs for each template's functions.
TEMPLATES = {
    "deploy": (ROOT / "deploy" / "template.yaml", ROOT / "Makefile", "build-SubmitFunction"),
    "orders": (
        ROOT / "examples" / "orders" / "template.yaml",
        ROOT / "examples" / "orders" / "Makefile",
        None,
    ),
}
# What no function of either template imports, so what no package may hold.
NEVER = [
    "adapters/testing",
    "adapters/local",
    "adapters/cli",
    "adapters/ops",
    "adapters/docgen",
    "statemodel/checker",
    "tests",
    "docs",
    "bench",
    ".ci",
    "deploy",
    "examples/orders/test_orders.py",
    "examples/orders/test_consumer.py",
    "examples/orders/template.yaml",
    "Makefile",
    "pyproject.toml",
]


def handlers(template: Path) -> dict[str, str]:
    """Each function's Handler (Globals applied), from the template parsed as CloudFormation does."""
    parsed, errors = decode_str(template.read_text(encoding="utf-8"))
    assert not errors and parsed is not None
    default = parsed.get("Globals", {}).get("Function", {}).get("Handler")
    return {
        name: str(resource.get("Properties", {}).get("Handler", default))
        for name, resource in parsed["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def make_targets(template: Path, makefile: Path) -> dict[str, str]:
    """Each function of the template: its build target's recipe in the Makefile its Metadata names."""
    parsed, _ = decode_str(template.read_text(encoding="utf-8"))
    assert parsed is not None
    text = makefile.read_text(encoding="utf-8")
    found = {}
    for name, resource in parsed["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        rule = re.search(rf"^([^#\n]*\bbuild-{name}\b[^\n]*):[^\n]*\n((?:\t[^\n]*\n)*)", text, re.MULTILINE)
        found[name] = "" if rule is None else rule[2]
    return found


def layer_path(into: Path) -> Path:
    """Links to the top-level modules of the layer's distributions (the lock's), as installed here."""
    names = {line.split("==")[0].lower() for line in LOCK.read_text().splitlines() if "==" in line}
    tops = {
        top
        for top, dists in importlib.metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in names for d in dists) and not top.startswith("_")
    }
    into.mkdir()
    for top in sorted(tops):
        spec = importlib.util.find_spec(top)
        assert spec is not None and spec.origin is not None, top
        found = Path(spec.origin)
        found = found.parent if spec.submodule_search_locations else found
        (into / found.name).symlink_to(found)
    return into


def make_function(makefile: Path, target: str, into: Path, python: str = sys.executable) -> str:
    """Runs the build rule as `sam build` does (in the repository root, ARTIFACTS_DIR set); its output."""
    command = ["make", "-s", "-f", str(makefile), target, f"ARTIFACTS_DIR={into}", f"LAMBDA_PYTHON={python}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


IMPORT_ALL = textwrap.dedent(
    """
    import importlib, json, pathlib, sys
    package = pathlib.Path(sys.argv[1])
    handlers = json.loads(sys.argv[2])
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    for handler in handlers:
        module, _, name = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), handler
    ours = [m for m in sys.modules.values() if getattr(m, "__file__", None) and str(package) in m.__file__]
    print(json.dumps(sorted(m.__name__ for m in ours)))
    """
)


def import_alone(package: Path, deps: Path, handler_names: list[str]) -> list[str]:
    """Every module of `package` and every handler imported with only `package` and `deps` on the path
    (no site-packages, no repository); the modules loaded from the package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "SENDGUARD_"))}
    env.update(PYTHONPATH=f"{package}{os.pathsep}{deps}", AWS_DEFAULT_REGION="us-east-1")
    command = [sys.executable, "-S", "-c", IMPORT_ALL, str(package), json.dumps(handler_names)]
    done = subprocess.run(command, cwd=package, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.fixture(scope="module")
def deps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return layer_path(tmp_path_factory.mktemp("layer") / "python")


@pytest.mark.parametrize("which", sorted(TEMPLATES))
def test_each_function_package_is_its_handlers_import_closure_and_runs_alone(
    which: str, tmp_path: Path, deps: Path
) -> None:
    template, makefile, _ = TEMPLATES[which]
    targets = make_targets(template, makefile)
    assert targets and all("deploy/build.py function" in recipe for recipe in targets.values()), targets
    # every function shares the one rule (a new function only adds its name to it)
    assert len(set(targets.values())) == 1, targets
    function = sorted(targets)[0]
    package = tmp_path / function
    make_function(makefile, f"build-{function}", package)
    files = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    sources = [f for f in files if f.endswith(".py")]
    expected = build.closure(build.handler_modules(template.read_text(encoding="utf-8")), ROOT)
    assert sources == sorted(str(p.relative_to(ROOT)) for p in expected.values())
    # what runs is there: each handler's module, the runtime, the model, the typed markers
    wanted = {h.rpartition(".")[0].replace(".", "/") + ".py" for h in handlers(template).values()}
    wanted |= {
        "adapters/__init__.py",
        "adapters/runtime/outbox.py",
        "statemodel/decider.py",
        "adapters/py.typed",
    }
    assert wanted <= set(files), wanted - set(files)
    # and nothing else: no suite, CLI, local service, tools, checker, tests, docs
    assert not [f for f in files if any(f == n or f.startswith(n + "/") for n in NEVER)]
    # each module with bytecode the interpreter takes without checking the source (PEP 552 flags 0b01)
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(package / source)))
        assert int.from_bytes(cached.read_bytes()[4:8], "little") == 0b01, source
    # alone: every module and every handler imports with the layer's distributions and nothing more
    loaded = import_alone(package, deps, sorted(set(handlers(template).values())))
    assert {f"{m.replace('.', '/')}" for m in loaded} >= {
        s.removesuffix(".py").removesuffix("/__init__") for s in sources
    }


def test_the_submit_package_answers_a_request_alone(tmp_path: Path, deps: Path) -> None:
    """The packaged handler runs (an unknown route: 404, before any AWS call) with nothing but the
    package and the layer's distributions."""
    package = tmp_path / "SubmitFunction"
    make_function(ROOT / "Makefile", "build-SubmitFunction", package)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "SENDGUARD_"))}
    env["PYTHONPATH"] = f"{package}{os.pathsep}{deps}"
    code = (
        "import adapters.aws_lambda as h\nprint(h.submit({'httpMethod': 'GET', 'path': '/x', 'headers': {}}))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=package, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "'statusCode': 404" in done.stdout, done.stderr


def test_without_the_runtime_s_interpreter_the_build_says_so_and_ships_the_package(tmp_path: Path) -> None:
    """No python3.14 here (or any missing interpreter): the package is built, without bytecode, and
    one line on stderr says so; the layer's compile step likewise."""
    package = tmp_path / "SubmitFunction"
    command = [sys.executable, "deploy/build.py", "function", "--template", "deploy/template.yaml"]
    done = subprocess.run(
        [*command, "--python", "no-such-python3.14", str(package)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (package / "adapters" / "aws_lambda.py").is_file() and not list(package.rglob("*.pyc"))
    assert done.stderr.count("\n") == 1 and "no-such-python3.14 not found" in done.stderr, done.stderr
    assert "SubmitFunction (adapters, statemodel) ships no bytecode" in done.stderr, done.stderr

    layer = tmp_path / "DependenciesLayer" / "python"
    (layer / "dep").mkdir(parents=True)
    (layer / "dep" / "__init__.py").write_text("X = 1\n")
    compile_ = [sys.executable, "deploy/build.py", "compile", str(layer)]
    done = subprocess.run(
        [*compile_, "--python", "no-such-python3.14"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and "DependenciesLayer/python ships no bytecode" in done.stderr, done.stderr
    assert not list(layer.rglob("*.pyc"))
    done = subprocess.run([*compile_, "--python", sys.executable], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert list(layer.rglob("*.pyc"))
    assert code_filename(layer / "dep" / "__init__.py") == "/opt/python/dep/__init__.py"


def code_filename(source: Path) -> str:
    """The source file a module's bytecode names (its code object's co_filename)."""
    data = Path(importlib.util.cache_from_source(str(source))).read_bytes()
    return str(marshal.loads(data[16:]).co_filename)


def test_two_builds_in_two_directories_are_the_same_bytes(tmp_path: Path) -> None:
    """What SAM uploads is keyed by a checksum of the files' names and bytes: a function built in another
    checkout (another build directory) is the same package, its bytecode naming its sources where
    Lambda puts them, /var/task, not where the build ran."""
    first, second = tmp_path / "a" / "SubmitFunction", tmp_path / "b" / "elsewhere" / "SubmitFunction"
    for into in (first, second):
        make_function(ROOT / "Makefile", "build-SubmitFunction", into)

    def contents(package: Path) -> dict[str, bytes]:
        return {str(p.relative_to(package)): p.read_bytes() for p in package.rglob("*") if p.is_file()}

    built = contents(first)
    assert [f for f in built if f.endswith(".pyc")] and built == contents(second)
    assert code_filename(first / "adapters" / "aws_lambda.py") == "/var/task/adapters/aws_lambda.py"


@pytest.mark.parametrize("which", sorted(TEMPLATES))
def test_the_build_reads_each_handler_the_template_names(which: str) -> None:
    """deploy/build.py reads the Handler values with a pattern (it runs without PyYAML): the same
    modules as the template parsed as CloudFormation parses it."""
    template = TEMPLATES[which][0]
    modules = {h.rpartition(".")[0] for h in handlers(template).values()}
    assert sorted(build.handler_modules(template.read_text(encoding="utf-8"))) == sorted(modules)


# ---- the closure, on trees made to show each rule (each one fails if its rule is broken) -------------

TREE = {
    "app/__init__.py": (
        "from typing import TYPE_CHECKING\nimport importlib\n"
        "if TYPE_CHECKING:\n    from app.lazy import Thing as Thing\n    from app.typing_only import T as T\n"
        "def __getattr__(name):\n    return getattr(importlib.import_module('app.lazy'), name)\n"
    ),
    "app/handler.py": (
        "import json\nfrom app import Thing\nfrom . import sibling\nfrom .rel import value\n"
        "def handle(event):\n    import app.later.deep\n    return Thing, sibling, value\n"
    ),
    "app/lazy.py": "class Thing: ...\n",
    "app/typing_only.py": "T = int\n",
    "app/sibling.py": "import importlib\nDYNAMIC = importlib.import_module('app.dynamic')\n",
    "app/dynamic.py": "",
    "app/rel.py": "value = 1\n",
    "app/later/__init__.py": "",
    "app/later/deep.py": "import boto3\n",
    "app/unused.py": "import app.handler\n",
    "app/tools/__init__.py": "",
}
EXPECTED = {
    "app",
    "app.handler",
    "app.lazy",  # `from app import Thing`: bound by app's TYPE_CHECKING re-export, served by __getattr__
    "app.sibling",  # `from . import sibling`
    "app.rel",  # `from .rel import value`
    "app.dynamic",  # importlib.import_module("app.dynamic")
    "app.later",  # the lazy `import app.later.deep` inside the function: its package...
    "app.later.deep",  # ... and itself
}


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_closure_follows_what_runs_and_only_that(tmp_path: Path) -> None:
    found = build.closure(["app.handler"], tree(tmp_path, TREE))
    assert set(found) == EXPECTED  # not app.typing_only, app.unused, app.tools, nor json or boto3


def _with(name: str, text: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda files: {**files, name: text}


# Each variant adds one import of `app.tools` in one place; the closure must hold app.tools for the
# ones that run (so a package check would see it) and not for the one that never does.
VARIANTS: list[tuple[str, Callable[[dict[str, str]], dict[str, str]], bool]] = [
    ("at the top", _with("app/rel.py", "import app.tools\nvalue = 1\n"), True),
    ("inside a function", _with("app/rel.py", "value = 1\ndef f():\n    from app import tools\n"), True),
    (
        "in a nested class",
        _with("app/rel.py", "class C:\n    def f(self):\n        import app.tools\n"),
        True,
    ),
    ("relative", _with("app/later/deep.py", "from ..tools import x\n"), True),
    (
        "only for the type checker",
        _with("app/rel.py", "import typing\nif typing.TYPE_CHECKING:\n    import app.tools\n"),
        False,
    ),
]


@pytest.mark.parametrize(("where", "change", "follows"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_each_kind_of_import_is_followed_or_not(
    tmp_path: Path, where: str, change: Callable[[dict[str, str]], dict[str, str]], follows: bool
) -> None:
    found = build.closure(["app.handler"], tree(tmp_path, change(TREE)))
    assert ("app.tools" in found) is follows, (where, sorted(found))


def test_a_handler_outside_the_source_stops_the_build(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"'app\.gone' is not under"):
        build.closure(["app.gone"], tree(tmp_path, TREE))


# ---- the layer: only its import path, the same bytes whoever builds it --------------------------------

# A `pip install --target` of one distribution with a console script, a data file and a header, as pip
# leaves it: the RECORD's paths are relative to the scheme's lib/python under pip's scratch home, whose
# bin/, share/ and include/ pip moves into the target beside the packages.
RECORD = (
    b"dep/__init__.py,sha256=abc,6\r\n"
    b"../../bin/dep-cli,sha256=def,40\r\n"
    b'"../../share/man/dep,1.1",sha256=ghi,3\r\n'
    b"../../include/python/dep/dep.h,sha256=jkl,3\r\n"
    b"dep-1.0.dist-info/RECORD,,\r\n"
)
TARGET = {
    "dep/__init__.py": "X = 1\n",
    "bin/dep-cli": "#!/home/someone/.venv/bin/python3\nimport dep\n",
    "share/man/dep,1.1": "man",
    "include/python/dep/dep.h": "int",
    "other-2.0.dist-info/RECORD": "other.py,sha256=xyz,4\n",
    "other.py": "Y=1\n",
}


def test_the_layer_keeps_its_import_path_and_drops_what_pip_writes_beside_it(tmp_path: Path) -> None:
    layer = tree(tmp_path / "python", TARGET)
    (layer / "dep-1.0.dist-info").mkdir()
    (layer / "dep-1.0.dist-info" / "RECORD").write_bytes(RECORD)
    other = (layer / "other-2.0.dist-info" / "RECORD").read_bytes()

    removed = build.prune(layer)

    assert sorted(removed) == ["bin/dep-cli", "include/python/dep/dep.h", "share/man/dep,1.1"]
    left = sorted(str(p.relative_to(layer)) for p in layer.rglob("*"))
    assert left == [
        "dep",
        "dep-1.0.dist-info",
        "dep-1.0.dist-info/RECORD",
        "dep/__init__.py",
        "other-2.0.dist-info",
        "other-2.0.dist-info/RECORD",
        "other.py",
    ]
    # each RECORD lists what is left, its other lines byte for byte; one with nothing outside untouched
    assert (layer / "dep-1.0.dist-info" / "RECORD").read_bytes() == (
        b"dep/__init__.py,sha256=abc,6\r\ndep-1.0.dist-info/RECORD,,\r\n"
    )
    assert (layer / "other-2.0.dist-info" / "RECORD").read_bytes() == other
    assert build.prune(layer) == []


def test_a_record_reaching_above_pip_s_scratch_home_stops_the_build(tmp_path: Path) -> None:
    layer = tree(tmp_path / "python", {"dep/__init__.py": ""})
    (layer / "dep-1.0.dist-info").mkdir()
    (layer / "dep-1.0.dist-info" / "RECORD").write_bytes(b"../../../etc/dep.conf,sha256=x,1\r\n")
    with pytest.raises(SystemExit, match=r"lists '\.\./\.\./\.\./etc/dep\.conf', outside what pip installed"):
        build.prune(layer)


def test_the_layer_rule_prunes_after_pip_and_before_bytecode() -> None:
    """build-DependenciesLayer: pip, then prune (so compile sees the import path only), then compile."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    rule = re.search(r"^build-DependenciesLayer:\n((?:\t[^\n]*\n)*)", text, re.MULTILINE)
    assert rule is not None
    steps = [line.split()[1:3] for line in re.sub(r"\\\n\s*", " ", rule[1]).splitlines()]
    assert steps == [["-m", "pip"], ["deploy/build.py", "prune"], ["deploy/build.py", "compile"]], steps


# Where the project tells an operator how to build, and what an instruction is there: a `sam build`
# followed by `&&`, by "` then" or by a shell comment.
BUILD_TOLD = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "deploy" / "template.yaml",
    ROOT / "examples" / "orders" / "template.yaml",
]
BUILD_INSTRUCTION = re.compile(r"sam build((?: --?[\w-]+)*)\s*(?:&&|`\s*then\b|#)")


def test_every_build_instruction_builds_in_source() -> None:
    """Without --build-in-source SAM first copies each function's CodeUri, the repository root (with
    .venv: hundreds of MB), once per function, for a rule that takes a few files from it: every place
    that says how to build says it with the flag (docs/operations.md, both templates' headers)."""
    told = [
        (path.relative_to(ROOT), found[0])
        for path in BUILD_TOLD
        for found in BUILD_INSTRUCTION.finditer(path.read_text(encoding="utf-8"))
    ]
    assert {str(path) for path, _ in told} >= {
        "docs/operations.md",
        "deploy/template.yaml",
        "examples/orders/template.yaml",
    }, told
    assert [(path, said) for path, said in told if "--build-in-source" not in said] == []
