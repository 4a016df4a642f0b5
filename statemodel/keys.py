"""A record's key, and the message id derived from it.

Rules:
* A record is one item of the team's table. Its key is a `Key`: the partition value alone (on a
  table without a sort key, or with the layout's fixed sort value: records kept apart from the
  team's rows), or the partition value and the sort value (the team's own row is the record).
* Every key names one message id, deterministically, and different keys of one layout name different
  message ids. The message id is the SQS `message_id` attribute and the FIFO deduplication id, so it
  stays within SQS's 128 characters of printable ASCII, whatever the key:
  - a plain key (`Key("p-1")`) is its own message id (1 to 128 printable ASCII characters);
  - a composite key's message id is its two parts, each percent-encoded, joined by `/`
    (`Key("acme", "p-1")` → `acme/p-1`): every character outside printable ASCII, and `%`, `/`, `:`
    and space, is written as %XX of its UTF-8 bytes, so `Key.from_message_id` gives the key back;
  - a composite key whose encoding would pass 128 characters is named by a digest instead
    (`<the start of the partition's encoding>/sha256:<64 hex digits>`); it cannot be read back.
  The three forms cannot meet: a readable composite id holds one `/` and no `:`, a digest holds `:`,
  and on a layout with a sort key a plain key may not hold `/` (`adapters` refuses it).
"""

from __future__ import annotations

import hashlib
import re

import attrs

from statemodel.sizes import SQS_MAX_ID_CHARS

MAX_MESSAGE_ID = SQS_MAX_ID_CHARS  # a message id is a FIFO queue's MessageDeduplicationId
SEPARATOR = "/"  # between a composite key's encoded parts
DIGEST = "sha256:"  # starts the digest part of a long composite key's message id
DIGEST_PREFIX_CHARS = 40  # of the partition's encoding kept before a digest, for people to read
# Printable ASCII that stays as it is in an encoded part: all but space, %, / and :.
_SAFE = frozenset(c for c in map(chr, range(0x21, 0x7F)) if c not in "%/:")
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


@attrs.frozen
class Key:
    """A record's key. `sort` None: the record has no sort value of its own (no sort key, or the
    layout's fixed one)."""

    partition: str
    sort: str | None = None

    @property
    def composite(self) -> bool:
        return self.sort is not None

    @property
    def message_id(self) -> str:
        if self.sort is None:
            return self.partition
        readable = _encode(self.partition) + SEPARATOR + _encode(self.sort)
        if len(readable) <= MAX_MESSAGE_ID:
            return readable
        digest = hashlib.sha256(f"{len(self.partition)}:{self.partition}{self.sort}".encode()).hexdigest()
        return f"{_encode(self.partition)[:DIGEST_PREFIX_CHARS]}{SEPARATOR}{DIGEST}{digest}"

    @classmethod
    def from_message_id(cls, message_id: str) -> Key | None:
        """The key a message id names, for a consumer; None for a digest (which cannot be read back)."""
        if DIGEST in message_id:
            return None
        # Equivalent mutant: a readable composite id holds one '/', where rpartition splits alike.
        partition, separator, sort = message_id.partition(SEPARATOR)  # pragma: no mutate (one '/')
        if not separator:
            return cls(message_id)
        return cls(_decode(partition), _decode(sort))

    def __str__(self) -> str:
        return self.message_id


def _encode(part: str) -> str:
    """`part` with every character outside `_SAFE` written as %XX of its UTF-8 bytes."""
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in part)


def _decode(text: str) -> str:
    """What `_encode` encoded (UnicodeDecodeError for a text it cannot have made)."""
    raw = bytearray()
    last = 0  # pragma: no mutate (equivalent: a slice from None starts at 0)
    for escape in _ESCAPE.finditer(text):
        raw += text[last : escape.start()].encode() + bytes([int(escape.group(1), 16)])
        last = escape.end()
    return (bytes(raw) + text[last:].encode()).decode()  # UTF-8, strictly
