"""A stored item as the model sees it: the record's projection and the history it was built from.

The DynamoDB store decodes items into it and the in-memory world keeps it; the invariants judge it.
"""

from __future__ import annotations

import attrs

from statemodel.events import Event
from statemodel.records import Record


@attrs.frozen
class Stored:
    """A stored item: the projection and the history it was built from."""

    record: Record
    history: tuple[Event, ...]
