"""The consumer's inbox, pure: one record per consumed message, so that its effect is applied once.

Its own states, commands (imperative), events (past tense), one transition table of data
(`statemodel.inbox.table`, with the rules on top), `decide` / `evolve` / `replay` over it, the
sans-I/O flows of its two modes (`statemodel.inbox.flows`: transactional and guarded) and its
invariants. No I/O, no clock, no randomness: one interpreter (`statemodel.inbox.interpreter`) carries
the flows' effects out on the inbox's ports, DynamoDB's in the adapters (`adapters.runtime.inbox`)
and in memory in the explorer (`statemodel.checker.inbox_space`).
"""

from statemodel.inbox.commands import (
    Claim,
    Commit,
    Complete,
    InboxCommand,
    RearmMessage,
    RecordFailure,
    Release,
)
from statemodel.inbox.decider import InboxHistoryChecker, decide, evolve, evolve_all, replay
from statemodel.inbox.events import (
    ClaimExpired,
    ClaimTaken,
    Completed,
    EffectCommitted,
    InboxEvent,
    InboxStored,
    MessageRearmed,
    Received,
    ReceiveFailed,
    ReceivesExhausted,
    Released,
)
from statemodel.inbox.flows import InboxAnswer, InboxFlow, InboxResult, InboxSettings
from statemodel.inbox.records import ClaimHeld, InboxMessage, InboxPhase, InboxRecord
from statemodel.inbox.table import INBOX_TRANSITIONS, InboxTransition, Mode

__all__ = [
    "INBOX_TRANSITIONS",
    "Claim",
    "ClaimExpired",
    "ClaimHeld",
    "ClaimTaken",
    "Commit",
    "Complete",
    "Completed",
    "EffectCommitted",
    "InboxAnswer",
    "InboxCommand",
    "InboxEvent",
    "InboxFlow",
    "InboxHistoryChecker",
    "InboxMessage",
    "InboxPhase",
    "InboxRecord",
    "InboxResult",
    "InboxSettings",
    "InboxStored",
    "InboxTransition",
    "MessageRearmed",
    "Mode",
    "RearmMessage",
    "ReceiveFailed",
    "Received",
    "ReceivesExhausted",
    "RecordFailure",
    "Release",
    "Released",
    "decide",
    "evolve",
    "evolve_all",
    "replay",
]
