"""Deliberately broken models: statemodel with one piece swapped, to show the explorer catches each.

A mutant never restates the model. It is a `Model` whose fields name statemodel's own functions and
data, with one (or, where one bug needs it, a few) replaced: a `Flows` over a variant of the real
table or with one method wrapping the real one, another `is_due` or write condition, other settings.
Each enters the run as a parameter (the `Flows` every flow is started and advanced by, the condition
the world is built with): nothing in statemodel is patched, and the judge (`history_problems`) keeps
the table as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import attrs

from statemodel import attention, table
from statemodel.categories import ErrorCategory, Failure
from statemodel.checker.space import TICK_SETTINGS, DueFunction, Model
from statemodel.commands import ExpireLease, Redrive
from statemodel.events import Claimed, RolledBack, SendConfirmed
from statemodel.flows import (
    IN_PROGRESS,
    Flow,
    Flows,
    Outcome,
    Result,
    Send,
    Sent,
    Settings,
    Write,
    condition_holds,
)
from statemodel.records import Phase, Record, Status
from statemodel.table import Guard, Transition

# ---- write conditions ----------------------------------------------------------------------------


def _rollback_checks_status_only(write: Write, current: Record | None) -> bool:
    """A rollback's condition is only "still QUEUED": no version, no attempt (no fencing)."""
    if any(isinstance(event, RolledBack) for event in write.events):
        return current is not None and current.status is Status.QUEUED
    return condition_holds(write, current)


def _confirm_without_condition(write: Write, current: Record | None) -> bool:
    if any(isinstance(event, SendConfirmed) for event in write.events):
        return True
    return condition_holds(write, current)


def _create_over_existing(write: Write, current: Record | None) -> bool:
    """The create forgets `attribute_not_exists`: a second request with the key starts afresh."""
    return True if write.before is None else condition_holds(write, current)


def _claim_without_condition(write: Write, current: Record | None) -> bool:
    if write.before is not None and any(isinstance(event, Claimed) for event in write.events):
        return current is not None
    return condition_holds(write, current)


# ---- the reconciler ------------------------------------------------------------------------------


def _also_due(phase: Phase) -> DueFunction:
    """`is_due` that also selects every record in `phase`."""

    def is_due(record: Record, now: int, settings: Settings) -> bool:
        return record.phase is phase or attention.is_due(record, now, settings)

    return is_due


@attrs.frozen
class _ReconcilerAlsoTakes(Flows):
    """Flows whose reconciler also acts on records in `phase`, by `start`ing an expiry ("expire") or
    a re-drive ("redrive") with statemodel's own starters."""

    phase: Phase = Phase.CONFIRMED
    start: str = "expire"

    def reconcile_start(
        self, record: Record, now: int, settings: Settings, attempt_id: str, lease_expires_at: int
    ) -> Flow | None:
        if record.phase is not self.phase:
            return super().reconcile_start(record, now, settings, attempt_id, lease_expires_at)
        if self.start == "expire":
            return self.start_expire(record, now)
        return self.start_redrive(record, attempt_id, lease_expires_at, now, settings)


def _with_rows(*rows: Transition, drop_guard_of: type | None = None) -> tuple[Transition, ...]:
    """The table with extra rows, or with the guard of `drop_guard_of`'s row removed."""
    kept = tuple(
        attrs.evolve(row, guard=None)
        if row.command is drop_guard_of and row.guard is Guard.LEASE_EXPIRED
        else row
        for row in table.TRANSITIONS
    )
    return kept + rows


# ---- the flows -----------------------------------------------------------------------------------


@attrs.frozen
class _AmbiguousSendTakenAsSent(Flows):
    """A send that timed out is taken for a success: "it probably went through"."""

    def advance(self, flow: Flow, outcome: Outcome, now: int) -> Flow:
        if (
            isinstance(flow.effect, Send)
            and isinstance(outcome, Failure)
            and outcome.category is ErrorCategory.AMBIGUOUS
        ):
            outcome = Sent("unknown")
        return super().advance(flow, outcome, now)


@attrs.frozen
class _InFlightReplayAccepted(Flows):
    """A replay that finds its record in flight is told 202, before SQS has the message."""

    def advance(self, flow: Flow, outcome: Outcome, now: int) -> Flow:
        after = super().advance(flow, outcome, now)
        if after.done and after.answer.failure == IN_PROGRESS:
            answer = attrs.evolve(after.answer, result=Result.ALREADY_QUEUED, failure=None)
            return attrs.evolve(after, effect=answer)
        return after


# ---- liveness: the reconciler leaves a record, or tries in vain for ever -------------------------


def _index_skips(skipped: Callable[[Record, Settings], bool]) -> DueFunction:
    """`is_due` for an index that never shows the records `skipped` selects: the reconciler's query
    passes them over, pass after pass."""

    def is_due(record: Record, now: int, settings: Settings) -> bool:
        return not skipped(record, settings) and attention.is_due(record, now, settings)

    return is_due


def _rolled_back_by_expiry(record: Record, settings: Settings) -> bool:
    """A PENDING record with no send failure on it got there through an expiry's rollback (only a
    failed send records `last_error`; a record the transactional outbox prepared has no attempt yet)."""
    return record.phase is Phase.PENDING and record.last_error is None and record.attempts > 0


def _no_attempt_left(record: Record, settings: Settings) -> bool:
    return record.phase is Phase.PENDING and record.attempts >= settings.max_attempts


def _first_attempt_in_flight(record: Record, settings: Settings) -> bool:
    return record.phase is Phase.IN_FLIGHT and record.attempts == 1


@attrs.frozen
class _StaleRead(Flows):
    """Flows whose reconciler builds the flow for a record in `phase` from the record one write before
    the one it read (an index entry that lags the item, never re-read): its write's condition names a
    version the record no longer has."""

    phase: Phase = Phase.PENDING

    def reconcile_start(
        self, record: Record, now: int, settings: Settings, attempt_id: str, lease_expires_at: int
    ) -> Flow | None:
        if record.phase is self.phase:
            record = attrs.evolve(record, version=record.version - 1)
        return super().reconcile_start(record, now, settings, attempt_id, lease_expires_at)


# ---- the mutants ---------------------------------------------------------------------------------


def caught_as_named(model: Model, violations: Sequence[str]) -> bool:
    """Whether the violations found include the one `model`'s bug makes (`Model.caught_with`): a
    mutant caught only by another violation — a crash of the checker's own, a check it did not aim
    at — is not shown to be caught by its own."""
    pattern = re.compile(model.caught_with)
    return bool(model.caught_with) and any(pattern.search(violation) for violation in violations)


_EXPIRE_CONFIRMED = Transition(Phase.CONFIRMED, ExpireLease, (RolledBack,), Phase.PENDING, fenced=True)
_REDRIVE_CONFIRMED = Transition(
    Phase.CONFIRMED, Redrive, (Claimed,), Phase.IN_FLIGHT, guard=Guard.ATTEMPTS_LEFT
)

MUTANTS: dict[str, Model] = {
    mutant.name: mutant
    for mutant in (
        Model(
            "unfenced-rollback",
            "rollback without fencing: a rollback's write only checks that the record is QUEUED",
            write_condition=_rollback_checks_status_only,
            caught_with=r"illegal history: RolledBack is not allowed for \w+ in phase CONFIRMED",
        ),
        Model(
            "unconditional-confirm",
            "the confirm write has no condition: a stale attempt confirms whatever the record is now",
            write_condition=_confirm_without_condition,
            caught_with=r"illegal history: SendConfirmed is not allowed for \w+ in phase PENDING",
        ),
        Model(
            "rollback-confirmed",
            "the reconciler rolls back confirmed records too (and the table lets it)",
            is_due=_also_due(Phase.CONFIRMED),
            flows=_ReconcilerAlsoTakes(_with_rows(_EXPIRE_CONFIRMED), Phase.CONFIRMED, "expire"),
            caught_with=r"illegal history: RolledBack is not allowed for \w+ in phase CONFIRMED",
        ),
        Model(
            "redrive-confirmed",
            "the reconciler re-drives confirmed records too (and the table lets it)",
            is_due=_also_due(Phase.CONFIRMED),
            flows=_ReconcilerAlsoTakes(_with_rows(_REDRIVE_CONFIRMED), Phase.CONFIRMED, "redrive"),
            caught_with=r"illegal history: Claimed is not allowed for \w+ in phase CONFIRMED",
        ),
        Model(
            "short-lease",
            "the lease is shorter than the invocation: it ends a tick before the send deadline",
            settings=attrs.evolve(TICK_SETTINGS, lease_margin_ms=-1),
            caught_with=r"sent again after SQS message \S+ was confirmed",
        ),
        Model(
            "ambiguous-as-sent",
            "an ambiguous send (a timeout) is treated as a definite success",
            flows=_AmbiguousSendTakenAsSent(),
            caught_with=r"confirmed \S+, which SQS never accepted",
        ),
        Model(
            "key-ignored",
            "the Idempotency-Key is ignored: a repeated request creates its record afresh",
            write_condition=_create_over_existing,
            caught_with=r"illegal history: Accepted is not allowed",
        ),
        Model(
            "lease-ignored",
            "the reconciler ignores the lease: it rolls back in-flight records whose lease is live",
            is_due=_also_due(Phase.IN_FLIGHT),
            flows=_ReconcilerAlsoTakes(_with_rows(drop_guard_of=ExpireLease), Phase.IN_FLIGHT, "expire"),
            caught_with=r"rolled back at \d+, before it expired",
        ),
        Model(
            "double-claim",
            "a re-drive's claim has no condition: two attempts can claim one record",
            write_condition=_claim_without_condition,
            caught_with=r"illegal history: Claimed is not allowed for \w+ in phase IN_FLIGHT",
        ),
        Model(
            "in-flight-replay-accepted",
            "a replay that finds its record in flight is told 202 before SQS has the message",
            flows=_InFlightReplayAccepted(),
            caught_by="liveness",
            caught_with=r"answered 202 but no message was ever sent",
        ),
        # Liveness mutants: no state they reach breaks an invariant; a record never settles.
        Model(
            "expired-never-redriven",
            "an expiry's rollback leaves the record out of the re-drive index: the reconciler never "
            "re-drives records whose lease it expired",
            is_due=_index_skips(_rolled_back_by_expiry),
            caught_by="liveness",
            caught_with=r"never settles: PENDING v\d+, (\d+) of \d+ attempts used; stays so for ever",
        ),
        Model(
            "exhaustion-skipped",
            "the reconciler's query skips records with no attempts left: exhaustion is never taken",
            is_due=_index_skips(_no_attempt_left),
            caught_by="liveness",
            caught_with=r"never settles: PENDING v\d+, (\d+) of \1 attempts used",
        ),
        Model(
            "first-lease-kept",
            "the reconciler leaves a first attempt's lease to its submit, even once it expired",
            is_due=_index_skips(_first_attempt_in_flight),
            caught_by="liveness",
            caught_with=r"never settles: IN_FLIGHT v\d+ owned by \w+, lease expired",
        ),
        Model(
            "stale-redrive-claim",
            "a re-drive claims with the version before the last write, so its claim fails on every pass",
            flows=_StaleRead(phase=Phase.PENDING),
            caught_by="liveness",
            caught_with=r"never settles: PENDING .*goes round the cycle",
        ),
        Model(
            "stale-expiry",
            "an expiry names the version before the last write, so it fails on every pass",
            flows=_StaleRead(phase=Phase.IN_FLIGHT),
            caught_by="liveness",
            caught_with=r"never settles: IN_FLIGHT .*lease expired.*goes round the cycle",
        ),
    )
}
