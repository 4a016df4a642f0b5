"""Markdown for the benchmarks page: tables and wrapped paragraphs of generated prose."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def para(lines: Sequence[str]) -> list[str]:
    """Generated prose as one paragraph, wrapped at 100 columns."""
    text = " ".join(line.strip() for line in lines if line.strip())
    return [textwrap.fill(text, 100, break_long_words=False, break_on_hyphens=False), ""]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def number(value: float) -> str:
    return f"{value:g}"
