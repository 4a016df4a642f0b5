"""Where a record lives in a table: the team's key, status and body attribute names, and the prefix
under which sendguard keeps its own bookkeeping.

A record is one item. The team names its partition key, optionally a sort key, the attribute that holds
the status (`PENDING` / `QUEUED`) and the one that holds the body as sent. A record's key
(`statemodel.keys.Key`) is the partition value and, on a table with a sort key, either a sort value of
its own — the team's own row is the record (single-table designs) — or none: the record carries the
layout's fixed `sort_key_value` (Powertools' `static_pk_value` idea), apart from the team's rows.
Everything else sendguard stores — version, attempts, lease, history, message attributes, index keys —
is named `sg_…` (`BOOKKEEPING_PREFIX`), so it cannot collide with the team's own attributes, which
sendguard never writes after the item's creation.

`shards` says how many partitions of the sparse `attention` index each kind of entry is spread over
(`statemodel.attention.Shards`: written and read; `SENDGUARD_INDEX_SHARDS`, docs/operations.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from statemodel.attention import Shards
from statemodel.keys import SEPARATOR, Key
from statemodel.sizes import DYNAMODB_MAX_NAME_BYTES

BOOKKEEPING_PREFIX = "sg_"
_NAME = re.compile(rf"[A-Za-z0-9_.\-]{{1,{DYNAMODB_MAX_NAME_BYTES}}}")  # ASCII: a character is a byte


def _check_name(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(
            f"TableLayout.{attribute.name}={value!r}: use 1 to {DYNAMODB_MAX_NAME_BYTES} characters of "
            "A-Z a-z 0-9 _ - ."
        )
    if value.startswith(BOOKKEEPING_PREFIX):
        raise ValueError(
            f"TableLayout.{attribute.name}={value!r}: names starting with {BOOKKEEPING_PREFIX!r} are "
            "sendguard's own bookkeeping"
        )


@attrs.frozen
class TableLayout:
    """How sendguard's records sit in a table. The defaults are sendguard's own table."""

    partition_key: str = attrs.field(default="message_id", validator=_check_name)
    sort_key: str | None = attrs.field(default=None, validator=_check_name)
    sort_key_value: str = "sendguard"  # what every record carries in `sort_key`, when there is one
    status_attribute: str = attrs.field(default="status", validator=_check_name)
    body_attribute: str = attrs.field(default="payload", validator=_check_name)
    shards: Shards = attrs.field(factory=Shards)  # the `attention` index's shards, written and read

    def __attrs_post_init__(self) -> None:
        names = [n for n in self.owned_names]
        if len(set(names)) != len(names):
            raise ValueError(f"TableLayout names must differ from one another: {names}")
        if self.sort_key is not None and not (isinstance(self.sort_key_value, str) and self.sort_key_value):
            raise ValueError("TableLayout.sort_key_value must be a non-empty string")

    @property
    def owned_names(self) -> tuple[str, ...]:
        """The team-named attributes sendguard writes (besides its `sg_` bookkeeping)."""
        return (*self.key_names, self.status_attribute, self.body_attribute)

    @property
    def key_names(self) -> tuple[str, ...]:
        """The attribute names of the table's primary key."""
        return (self.partition_key,) if self.sort_key is None else (self.partition_key, self.sort_key)

    def owns(self, name: str) -> bool:
        return name in self.owned_names or name.startswith(BOOKKEEPING_PREFIX)

    def key(self, key: Key | str) -> dict[str, dict[str, str]]:
        """The item's primary key, in the low-level client's shape."""
        key = Key(key) if isinstance(key, str) else key
        item = {self.partition_key: {"S": key.partition}}
        if self.sort_key is not None:
            item[self.sort_key] = {"S": self.sort_key_value if key.sort is None else key.sort}
        return item

    def key_of(self, item: Mapping[str, Any]) -> Key:
        """The record key of an item (low-level values); KeyError for an item without the key."""
        partition = str(item[self.partition_key]["S"])
        if self.sort_key is None:
            return Key(partition)
        sort = str(item[self.sort_key]["S"])
        return Key(partition) if sort == self.sort_key_value else Key(partition, sort)

    def key_problem(self, key: Key) -> str | None:
        """Why `key` cannot name a record of this layout, or None. (Its parts' own rules are
        `statemodel.validation.key_problem`'s.)"""
        if key.sort is not None and self.sort_key is None:
            return f"the table has no sort key, so a key is one string (the {self.partition_key!r} value)"
        if key.sort is None and self.sort_key is not None and SEPARATOR in key.partition:
            return (
                f"a key without a sort value may not hold {SEPARATOR!r} on a table with a sort key (it "
                f"would name the same message id as a composite key); give ({self.partition_key!r}, "
                f"{self.sort_key!r}) values, or a key without {SEPARATOR!r}"
            )
        return None

    def key_named(self, message_id: str) -> Key | None:
        """The key a message id of this layout names; None for a digest (`statemodel.keys`)."""
        return Key(message_id) if self.sort_key is None else Key.from_message_id(message_id)

    def normal(self, key: Key) -> Key:
        """`key`, with a sort value equal to the layout's fixed one dropped (it names that record)."""
        return Key(key.partition) if key.sort is not None and key.sort == self.sort_key_value else key


def given_layout(layout: object) -> TableLayout:
    """The layout a team passed (`layout=`), or sendguard's own for None; a TypeError for anything
    that is not a TableLayout (a table's name, say), before anything is made or written."""
    if layout is None:
        return TableLayout()
    if not isinstance(layout, TableLayout):
        raise TypeError(
            f"layout={layout!r} is not a TableLayout: pass TableLayout(partition_key=..., sort_key=...)"
        )
    return layout
