"""An item's size by DynamoDB's rule, from its low-level (typed JSON) form: what a write is billed
at and what an item may hold (400 KB).

The sum over attributes of the UTF-8 length of the name plus the value's size: a string its UTF-8
bytes, a number 1 byte per two significant digits plus 1, a binary its raw bytes, a null or a
Boolean 1 byte, a list or a map 3 bytes plus its elements, each element 1 byte more (and, in a map,
its name's length).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["item_size", "value_size", "write_units"]


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value, without its name."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode("utf-8", "surrogatepass"))
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(str(k).encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "SS":
        return sum(len(str(s).encode("utf-8", "surrogatepass")) for s in inner)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """A write's units for an item of `size` bytes: 1 per started KB, at least 1."""
    return max(1, -(-size // 1024))


def _number_size(text: str) -> int:
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1
