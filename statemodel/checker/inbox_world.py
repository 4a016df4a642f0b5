"""An in-memory world for the inbox: a table with DynamoDB's conditional-write semantics (a write
that is the inbox's part of a transaction commits the team's effect with it), the team's handler,
and injectable faults. The explorer runs the inbox's flows against it through `InboxWorldPorts` and
`statemodel.inbox.interpreter`; `adapters.runtime.inbox` runs the very same flows, through the same
interpreter, against DynamoDB and the team's handler.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from statemodel.categories import ErrorCategory, Failure
from statemodel.inbox.events import InboxStored
from statemodel.inbox.flows import (
    Conflict,
    Found,
    Handled,
    HandlerError,
    InboxAnswer,
    InboxEffect,
    InboxOutcome,
    InboxWrite,
    Invoke,
    Read,
    Written,
    condition_holds,
)
from statemodel.inbox.records import InboxRecord


class InboxFault(enum.Enum):
    """What can go wrong with one effect of the inbox's flows."""

    READ_FAILED = "read failed (throttled after the SDK's retries)"
    WRITE_REJECTED = "write rejected (throttled, or a transaction cancelled for a conflict)"
    WRITE_LANDED_THEN_TIMEOUT = "write applied, then the caller timed out"
    WRITE_LANDED_THEN_RETRIED = "write applied, the SDK's retry failed its condition"


WRITE_FAULTS = (
    InboxFault.WRITE_REJECTED,
    InboxFault.WRITE_LANDED_THEN_TIMEOUT,
    InboxFault.WRITE_LANDED_THEN_RETRIED,
)
READ_FAULTS = (InboxFault.READ_FAILED,)
HANDLER_OK = Handled("result")
HANDLER_FAILED = HandlerError(Failure(ErrorCategory.RETRYABLE, "HandlerFailed"))
# A commit whose transaction the effect's own condition cancelled (the team's rule, such as a balance
# that would go negative): the inbox's write does not land either.
EFFECT_REFUSED = HandlerError(Failure(ErrorCategory.PERMANENT, "EffectConditionFailed"))

Condition = Callable[[InboxWrite, InboxRecord | None], bool]
# How many times a step applies the team's effect: `commit_effects` (the effect is a write of the
# commit's transaction), unless a mutant's world applies it elsewhere.
EffectRule = Callable[[InboxEffect, InboxOutcome, bool], int]


def commit_effects(effect: InboxEffect, outcome: InboxOutcome, landed: bool) -> int:
    """The effect is one of the commit transaction's writes: it lands exactly when the commit does."""
    return int(isinstance(effect, InboxWrite) and effect.commit and landed)


class InboxWorld:
    """One message's corner of the table, and how often its effect was applied. Mutable."""

    def __init__(
        self, condition: Condition = condition_holds, effects_of: EffectRule = commit_effects
    ) -> None:
        self.condition = condition
        self.effects_of = effects_of
        self.stored: InboxStored | None = None
        self.effects = 0

    @property
    def record(self) -> InboxRecord | None:
        return self.stored.record if self.stored else None

    def perform(
        self, effect: InboxEffect, fault: InboxFault | None = None, handler: InboxOutcome = HANDLER_OK
    ) -> InboxOutcome:
        """Carries out one effect. `handler`: what the team's handler does, for an `Invoke`; for a commit,
        `EFFECT_REFUSED` cancels its transaction on the effect's own condition."""
        if isinstance(effect, InboxAnswer):
            raise ValueError("an answer is not performed")
        outcome: InboxOutcome
        landed = False
        if isinstance(effect, Read):
            if fault is InboxFault.READ_FAILED:
                outcome = Failure(ErrorCategory.RETRYABLE, "ProvisionedThroughputExceededException")
            else:
                outcome = Found(self.record)
        elif isinstance(effect, Invoke) or (effect.commit and handler == EFFECT_REFUSED):
            outcome = handler
        elif fault is InboxFault.WRITE_REJECTED:
            outcome = Failure(ErrorCategory.RETRYABLE, "ProvisionedThroughputExceededException")
        else:
            outcome, landed = self._write(effect)
            if landed and fault is InboxFault.WRITE_LANDED_THEN_TIMEOUT:
                outcome = Failure(ErrorCategory.AMBIGUOUS, "ReadTimeoutError")
            elif landed and fault is InboxFault.WRITE_LANDED_THEN_RETRIED:
                outcome = Conflict(effect.after)
        self.effects += self.effects_of(effect, outcome, landed)
        return outcome

    def _write(self, write: InboxWrite) -> tuple[InboxOutcome, bool]:
        current = self.record
        if not self.condition(write, current):
            return Conflict(current), False
        history = (self.stored.history if self.stored else ()) + write.events
        self.stored = InboxStored(write.after, history)
        return Written(), True


class InboxWorldPorts:
    """The inbox's ports (`statemodel.inbox.interpreter.InboxPorts`) on one world, for one step: the
    call meets `fault`, the team's handler answers `handler` (for a commit, `EFFECT_REFUSED` cancels
    its transaction on the effect's own condition). Each call's report is None."""

    def __init__(
        self, world: InboxWorld, fault: InboxFault | None = None, handler: InboxOutcome = HANDLER_OK
    ) -> None:
        self.world, self.fault, self.handler = world, fault, handler

    def read(self, read: Read, deadline_ms: int | None) -> tuple[InboxOutcome, None]:
        return self.world.perform(read, self.fault), None

    def write(self, write: InboxWrite, deadline_ms: int | None) -> tuple[InboxOutcome, None]:
        return self.world.perform(write, self.fault, self.handler), None

    def invoke(self, invoke: Invoke) -> tuple[InboxOutcome, None]:
        return self.world.perform(invoke, handler=self.handler), None
