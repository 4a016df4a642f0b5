"""Writes the generated docs, or checks that they are current (`make docs`, `make docs-check`).

Each generated file is a function of the code; a stale one fails `make test`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"  # the repository's docs/


def generated() -> dict[str, Callable[[], str]]:
    from adapters.docgen import errors_doc
    from adapters.docgen.diagram import transitions_markdown
    from adapters.docgen.inbox_doc import inbox_markdown
    from adapters.docgen.limits_doc import render as limits_markdown

    return {
        "transitions.md": transitions_markdown,
        "errors.md": errors_doc.render,
        "inbox-transitions.md": inbox_markdown,
        "limits.md": limits_markdown,
    }


def stale(docs: Path = DOCS) -> list[str]:
    """The generated files whose text on disk differs from what the code generates now."""
    return [
        name
        for name, render in generated().items()
        if not (docs / name).exists() or (docs / name).read_text(encoding="utf-8") != render()
    ]


def write(docs: Path = DOCS) -> list[str]:
    docs.mkdir(exist_ok=True)
    written = []
    for name, render in generated().items():
        path = docs / name
        text = render()
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.docgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated doc is stale")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"docs/{name} is stale: run `make docs`", file=sys.stderr)
        return 1 if names else 0
    for name in write():
        print(f"wrote docs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
