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


def sections() -> dict[str, dict[str, Callable[[], str]]]:
    """Parts of hand-written pages that are generated: page -> {section name: its text}. A section
    sits between `begin(name)` and `end(name)` markers on its page; the rest of the page is prose."""
    from adapters.docgen import faults_doc

    return {"fault-injection.md": {"faults": faults_doc.render}}


def begin(name: str) -> str:
    return f"<!-- generated: {name} (`make docs` writes it from the code; do not edit) -->"


def end(name: str) -> str:
    return f"<!-- end generated: {name} -->"


def spliced(text: str, name: str, body: str) -> str:
    """`text` with section `name`'s lines between its markers replaced by `body`."""
    head, found, rest = text.partition(begin(name) + "\n")
    _, found_end, tail = rest.partition(end(name))
    if not found or not found_end:
        raise ValueError(f"no {begin(name)!r} … {end(name)!r} markers, each on a line of its own")
    return f"{head}{begin(name)}\n{body}{end(name)}{tail}"


def expected(docs: Path = DOCS) -> dict[str, str]:
    """Each generated file's text as the code generates it now. A page with sections is its text in
    `docs` (else this repository's) with every section generated again."""
    texts = {name: render() for name, render in generated().items()}
    for page, parts in sections().items():
        text = (docs / page if (docs / page).exists() else DOCS / page).read_text(encoding="utf-8")
        for name, render in parts.items():
            text = spliced(text, name, render())
        texts[page] = text
    return texts


def stale(docs: Path = DOCS) -> list[str]:
    """The generated files whose text on disk differs from what the code generates now."""
    return [
        name
        for name, text in expected(docs).items()
        if not (docs / name).exists() or (docs / name).read_text(encoding="utf-8") != text
    ]


def write(docs: Path = DOCS) -> list[str]:
    docs.mkdir(exist_ok=True)
    written = []
    for name, text in expected(docs).items():
        path = docs / name
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
