"""sendguard's pure model of a message record: no I/O, no clock, no randomness.

Time, ids and outcomes come in as arguments. See `statemodel.table` for the rules.

`__all__` is what a reader of the model and a team's tests need: the record, its commands, events
and errors, the table, `decide` / `evolve` / `replay`, and the sans-I/O flows (`start_*` returns a
`Flow` whose effect says what to do; `advance` takes what came of it; both are methods of `Flows`,
which holds the table they decide by). The decider's own machinery
(the history checker, the error-consequence table) stays in its modules.
"""

from statemodel.categories import Consequence, ErrorCategory, Failure, consequence
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
from statemodel.decider import decide, evolve, replay
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
from statemodel.flows import (
    Answer,
    ConditionFailed,
    Flow,
    Flows,
    Outcome,
    Result,
    Send,
    Sent,
    Settings,
    Write,
    Written,
    advance,
    start_dispatch,
    start_expire,
    start_outbox,
    start_rearm,
    start_redrive,
    start_submit,
)
from statemodel.records import Message, Phase, Record, Status
from statemodel.stored import Stored
from statemodel.table import TRANSITIONS, Transition

__all__ = [
    "TRANSITIONS",
    "Accepted",
    "Answer",
    "ClaimCause",
    "Claimed",
    "Command",
    "ConditionFailed",
    "ConfirmSend",
    "Consequence",
    "DomainError",
    "ErrorCategory",
    "Event",
    "ExhaustionCause",
    "ExpireLease",
    "Failure",
    "Flow",
    "Flows",
    "ForbiddenCommand",
    "IllegalTransition",
    "LeaseStillLive",
    "Message",
    "Outcome",
    "Phase",
    "Prepare",
    "Rearm",
    "Rearmed",
    "Record",
    "Redrive",
    "RedriveExhausted",
    "ReportSendFailure",
    "Result",
    "RollbackCause",
    "RolledBack",
    "Send",
    "SendConfirmed",
    "SendFailed",
    "Sent",
    "Settings",
    "StaleAttempt",
    "Status",
    "Stored",
    "Submit",
    "Transition",
    "Write",
    "Written",
    "advance",
    "consequence",
    "decide",
    "evolve",
    "replay",
    "start_dispatch",
    "start_expire",
    "start_outbox",
    "start_rearm",
    "start_redrive",
    "start_submit",
]
