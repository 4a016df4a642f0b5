"""A flows' table of rules compiled to a lookup: the outbox's (`statemodel.flows.RULES`) and the
inbox's (`statemodel.inbox.flows.RULES`) are both rows of (who, stage, what came, the record as seen,
the step), each of the first four one value or a tuple of them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")
S = TypeVar("S")


def each(value: T | tuple[T, ...]) -> tuple[T, ...]:
    return value if isinstance(value, tuple) else (value,)


def compile_rules(rules: Iterable[tuple[Any, Any, Any, Any, S]]) -> dict[tuple[Any, Any, Any, Any], S]:
    """The rules as a lookup: every key each names, to its step (the first rule to name a key holds)."""
    table: dict[tuple[Any, Any, Any, Any], S] = {}
    for who, stages, cames, seen, step in rules:
        for key in itertools.product(each(who), each(stages), each(cames), each(seen)):
            table.setdefault(key, step)
    return table
