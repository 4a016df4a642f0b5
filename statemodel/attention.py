"""Which records need the reconciler, as a sparse index key derived from the projection.

A record that needs attention carries an `attention` key (partition) and an `attention_at` time (sort);
a confirmed record carries neither, so the reconciler's reads depend on how many records need it, not
on how many exist. Each kind is spread over `Shards.write` partitions (`KIND#n`), so that one index
partition does not take every message's writes: DynamoDB allows one partition key value about 1,000
write units a second, on an index as on the table.

The shard count can change on a live table without stranding an entry. An entry's shard is
`crc32(message_id) % write`, so every entry written with any count up to `read` lies in a shard
below `read`, and a pass queries every shard below `read`. Raising `write` is always safe (`read`
follows it); lowering it is safe while `read` stays at the largest count the table was written with.
"""

from __future__ import annotations

import enum
import zlib

import attrs

from statemodel.flows import Settings
from statemodel.records import Phase, Record

DEFAULT_SHARDS = 4
MAX_SHARDS = 256  # 512 queries a pass when idle: past this a pass spends its time on empty shards


@attrs.frozen
class Shards:
    """`write`: the shards new index entries go to; `read`: the shards a pass reads (never fewer)."""

    write: int = DEFAULT_SHARDS
    read: int = DEFAULT_SHARDS

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.write <= self.read <= MAX_SHARDS:
            raise ValueError(f"shards need 1 <= write ({self.write}) <= read ({self.read}) <= {MAX_SHARDS}")

    @classmethod
    def configured(cls, write: int, read: int | None = None) -> Shards:
        """`read` defaults to `write`, and is raised to it: a pass always reads what is written."""
        return cls(write, max(write, read or write))

    def of(self, message_id: str) -> int:
        return zlib.crc32(message_id.encode()) % self.write

    def possible(self, message_id: str) -> frozenset[int]:
        """The shards an entry of this id can be in: written with any count up to `read`."""
        crc = zlib.crc32(message_id.encode())
        return frozenset(crc % count for count in range(1, self.read + 1))


DEFAULT_SHARDING = Shards()


class Attention(enum.StrEnum):
    IN_FLIGHT = "INFLIGHT"  # attention_at: the lease's expiry
    PENDING = "PENDING"  # attention_at: the last transition (re-drive is due redrive_after later)
    EXHAUSTED = "EXHAUSTED"  # attention_at: when it was flagged; for operators, not the reconciler


def attention_key(record: Record, shards: Shards = DEFAULT_SHARDING) -> tuple[str, int] | None:
    shard = shards.of(record.message_id)
    match record.phase:
        case Phase.IN_FLIGHT:
            assert record.lease_expires_at is not None
            return f"{Attention.IN_FLIGHT}#{shard}", record.lease_expires_at
        case Phase.PENDING:
            return f"{Attention.PENDING}#{shard}", record.updated_at
        case Phase.EXHAUSTED:
            return f"{Attention.EXHAUSTED}#{shard}", record.updated_at
    return None  # pragma: no mutate (confirmed: no key; the implicit return would be the same)


def due_queries(now: int, settings: Settings, shards: Shards = DEFAULT_SHARDING) -> list[tuple[str, int]]:
    """(partition, latest attention_at) for every index query of one reconciler pass, the kinds
    interleaved shard by shard (in-flight 0, pending 0, in-flight 1, ...), so that a pass that takes
    them in turn gives every kind and shard its share."""
    redrive_due = now - settings.redrive_after_ms
    return [
        (f"{kind}#{shard}", due)
        for shard in range(shards.read)
        for kind, due in ((Attention.IN_FLIGHT, now), (Attention.PENDING, redrive_due))
    ]


def exhausted_partitions(shards: Shards = DEFAULT_SHARDING) -> list[str]:
    return [f"{Attention.EXHAUSTED}#{shard}" for shard in range(shards.read)]


def is_due(record: Record, now: int, settings: Settings, shards: Shards = DEFAULT_SHARDING) -> bool:
    """Whether one pass of `due_queries` finds this record (what the index query selects)."""
    key = attention_key(record, shards)
    return key is not None and any(
        key[0] == partition and key[1] <= latest for partition, latest in due_queries(now, settings, shards)
    )
