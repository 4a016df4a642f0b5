"""The size rules of items — an item's size by DynamoDB's rule, the write units it is billed at, where
a message's body is kept (`placement`), whether an exhausted record has room for a fresh budget — are
`statemodel.sizes`'s, with every other size limit and rule; this module re-exports them under the
names the adapters and bench have long imported, and measures a stored record for the re-arm's rule
(`rearm_has_room`).
"""

from __future__ import annotations

import json

from statemodel.events import event_to_dict
from statemodel.sizes import CONFIRM_GROWTH_BYTES as CONFIRM_GROWTH_BYTES
from statemodel.sizes import REQUEST_WORTH_UNITS as REQUEST_WORTH_UNITS
from statemodel.sizes import Placement as Placement
from statemodel.sizes import item_size as item_size
from statemodel.sizes import placement as placement
from statemodel.sizes import rearm_fits
from statemodel.sizes import value_size as value_size
from statemodel.sizes import write_units as write_units
from statemodel.stored import Stored

__all__ = [
    "CONFIRM_GROWTH_BYTES",
    "REQUEST_WORTH_UNITS",
    "Placement",
    "item_size",
    "placement",
    "rearm_has_room",
    "value_size",
    "write_units",
]


def rearm_has_room(stored: Stored, max_attempts: int, texts: tuple[str, ...] = ()) -> bool:
    """Whether the item still fits in 400 KB after the re-arm's entry (`texts`: its `by` and
    `reason`) and a fresh budget's worst-case history (`statemodel.sizes.rearm_fits`, the history
    measured in its long form)."""
    message = stored.record.message
    history = len(json.dumps([event_to_dict(e) for e in stored.history]).encode())
    return rearm_fits(message.payload, message.attributes, history, max_attempts, texts)
