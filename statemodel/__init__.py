"""sendguard's pure model of a message record: no I/O, no clock, no randomness.

Time, ids and outcomes come in as arguments. See `statemodel.table` for the rules.
"""

from statemodel.categories import CONSEQUENCES, Consequence, ErrorCategory, consequence
from statemodel.commands import (
    Command,
    ConfirmSend,
    ExpireLease,
    Prepare,
    Rearm,
    Redrive,
    ReportSendFailure,
    Submit,
)
from statemodel.decider import HistoryChecker, decide, evolve, evolve_all, replay
from statemodel.errors import (
    DomainError,
    ForbiddenCommand,
    IllegalTransition,
    LeaseStillLive,
    StaleAttempt,
)
from statemodel.events import (
    Accepted,
    ClaimCause,
    Claimed,
    Event,
    ExhaustionCause,
    Rearmed,
    RedriveExhausted,
    RollbackCause,
    RolledBack,
    SendConfirmed,
    SendFailed,
)
from statemodel.records import LastError, Message, Phase, Record, Status
from statemodel.stored import Stored
from statemodel.table import TRANSITIONS, Transition

__all__ = [
    "CONSEQUENCES",
    "TRANSITIONS",
    "Accepted",
    "ClaimCause",
    "Claimed",
    "Command",
    "ConfirmSend",
    "Consequence",
    "DomainError",
    "ErrorCategory",
    "Event",
    "ExhaustionCause",
    "ExpireLease",
    "ForbiddenCommand",
    "HistoryChecker",
    "IllegalTransition",
    "LastError",
    "LeaseStillLive",
    "Message",
    "Phase",
    "Prepare",
    "Rearm",
    "Rearmed",
    "Record",
    "Redrive",
    "RedriveExhausted",
    "ReportSendFailure",
    "RollbackCause",
    "RolledBack",
    "SendConfirmed",
    "SendFailed",
    "StaleAttempt",
    "Status",
    "Stored",
    "Submit",
    "Transition",
    "consequence",
    "decide",
    "evolve",
    "evolve_all",
    "replay",
]
