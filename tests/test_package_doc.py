"""docs/operations.md's artifacts table (adapters/docgen/package_doc.py, a generated section): each
function's size and module count are deploy/build.py's import closure of its template's handlers, so
a module added to a function changes the page and `make docs-check` fails until it is regenerated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapters.docgen import generate as docgen
from adapters.docgen import package_doc


def test_the_artifacts_table_counts_each_function_s_closure() -> None:
    """docs/operations.md's sizes are deploy/build.py's closure of each template's handlers, as
    `deploy/build.py closure` lists it: a module added to the closure changes the page."""
    page = (docgen.DOCS / "operations.md").read_text(encoding="utf-8")
    files = package_doc.closure(package_doc.TEMPLATES["sendguard"])
    listed = subprocess.run(
        [sys.executable, "deploy/build.py", "closure", "--template", "deploy/template.yaml"],
        cwd=package_doc.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [str(path.relative_to(package_doc.ROOT)) for path in files] == listed
    assert f"| {package_doc.figures(files)} |" in page
    assert f", {len(files)} modules |" in page


def test_the_artifacts_figures_round_to_10_kb_and_count_modules(tmp_path: Path) -> None:
    files = []
    for name, size in (("a.py", 14_999), ("b.py", 1), ("c.py", 0)):
        (tmp_path / name).write_bytes(b"x" * size)
        files.append(tmp_path / name)
    assert package_doc.figures(files) == "~20 KB of source, 3 modules"  # 15,000 bytes: 2 tens of KB
    assert package_doc.figures(files[1:]) == "~10 KB of source, 2 modules"  # never shown as 0
    table = package_doc.render({"sendguard": files, "orders": files[:1]})
    assert "| ~20 KB of source, 3 modules |" in table and "| ~10 KB of source, 1 module |" in table
    assert table.count("\n") == 5  # the header, its rule, the functions, the layer, the orders' functions


def test_the_functions_row_names_the_makefile_s_rule_for_every_function() -> None:
    """The row names the rule that builds the functions, read from the Makefile: each function of the
    template is one of its targets (a function added to the template and the rule shows on the page)."""
    from tests.test_package_contents import handlers

    rule = package_doc.function_rule(package_doc.MAKEFILE.read_text(encoding="utf-8"))
    assert set(rule.split()) == {f"build-{name}" for name in handlers(package_doc.TEMPLATES["sendguard"])}
    makefile = "build-Layer:\n\tpip install x\n\nbuild-A build-B:\n\t$(PYTHON) deploy/build.py function x\n"
    assert "| Each function (`build-A build-B`: one rule) |" in package_doc.render(
        {"sendguard": [], "orders": []}, makefile
    )
    with pytest.raises(ValueError, match=r"no rule runs deploy/build\.py function"):
        package_doc.function_rule("build-Layer:\n\tpip install x\n")
