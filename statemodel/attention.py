"""Which records need the reconciler, as a sparse index key derived from the projection.

A record that needs attention carries an `attention` key (partition) and an `attention_at` time (sort);
a confirmed record carries neither, so the reconciler's reads depend on how many records need it, not
on how many exist. Each kind is spread over `SHARDS` partitions so that one index partition does not
take every claim's write.
"""

from __future__ import annotations

import enum
import zlib

from statemodel.flows import Settings
from statemodel.records import Phase, Record

SHARDS = 4  # changing it strands index entries in the shards no longer queried: keep it fixed


class Attention(enum.StrEnum):
    IN_FLIGHT = "INFLIGHT"  # attention_at: the lease's expiry
    PENDING = "PENDING"  # attention_at: the last transition (re-drive is due redrive_after later)
    EXHAUSTED = "EXHAUSTED"  # attention_at: when it was flagged; for operators, not the reconciler


def attention_key(record: Record) -> tuple[str, int] | None:
    shard = zlib.crc32(record.message_id.encode()) % SHARDS
    match record.phase:
        case Phase.IN_FLIGHT:
            assert record.lease_expires_at is not None
            return f"{Attention.IN_FLIGHT}#{shard}", record.lease_expires_at
        case Phase.PENDING:
            return f"{Attention.PENDING}#{shard}", record.updated_at
        case Phase.EXHAUSTED:
            return f"{Attention.EXHAUSTED}#{shard}", record.updated_at
    return None  # pragma: no mutate (confirmed: no key; the implicit return would be the same)


def due_queries(now: int, settings: Settings) -> list[tuple[str, int]]:
    """(partition, latest attention_at) for every index query of one reconciler pass."""
    redrive_due = now - settings.redrive_after_ms
    return [
        (f"{kind}#{shard}", due)
        for kind, due in ((Attention.IN_FLIGHT, now), (Attention.PENDING, redrive_due))
        for shard in range(SHARDS)
    ]


def exhausted_partitions() -> list[str]:
    return [f"{Attention.EXHAUSTED}#{shard}" for shard in range(SHARDS)]


def is_due(record: Record, now: int, settings: Settings) -> bool:
    """Whether one pass of `due_queries` finds this record (what the index query selects)."""
    key = attention_key(record)
    return key is not None and any(
        key[0] == partition and key[1] <= latest for partition, latest in due_queries(now, settings)
    )
