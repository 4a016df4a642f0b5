"""Deliberately broken inboxes: the inbox's model with one piece swapped, to show that the explorer
catches each bug by the check written for it (`InboxModel.caught_with`).

As for the outbox's mutants (`statemodel.checker.mutants`), a mutant never restates the model: it is
an `InboxModel` whose fields name the inbox's own functions and data, one replaced by a wrapper around
the real one or a variant of it, entering the run as a parameter (the world's write condition or
effect rule, an `InboxFlows` with rules of its own put before the inbox's `RULES` or whose `advance`
wraps the real one, the settings). Nothing in statemodel is patched, and the judge keeps the table
as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from statemodel.checker.inbox_space import TICK_SETTINGS, InboxModel
from statemodel.checker.inbox_world import commit_effects
from statemodel.inbox.events import Completed, Released
from statemodel.inbox.flows import (
    RULES,
    Came,
    Conflict,
    End,
    Found,
    Handled,
    HandlerError,
    InboxEffect,
    InboxFlow,
    InboxFlows,
    InboxOutcome,
    InboxResult,
    InboxWrite,
    Invoke,
    Rule,
    RunHandler,
    Seen,
    Stage,
    condition_holds,
)
from statemodel.inbox.records import InboxPhase, InboxRecord
from statemodel.inbox.table import Mode

# ---- the effect and the write conditions ---------------------------------------------------------


def _effect_in_handler(effect: InboxEffect, outcome: InboxOutcome, landed: bool) -> int:
    """The team's handler writes its effect itself, when it runs, instead of returning it for the
    commit's transaction (the wiring docs/inbox.md warns against)."""
    return int(isinstance(effect, Invoke) and isinstance(outcome, Handled))


def _commit_without_condition(write: InboxWrite, current: InboxRecord | None) -> bool:
    """The inbox's write in the commit's transaction is a plain Put: it overwrites whatever is there."""
    return True if write.commit else condition_holds(write, current)


def _unfenced(event_type: type) -> object:
    def condition(write: InboxWrite, current: InboxRecord | None) -> bool:
        """A completion (or a release) checks only that the record is still PROCESSING: not who holds it."""
        if any(isinstance(event, event_type) for event in write.events):
            return current is not None and current.phase is InboxPhase.PROCESSING
        return condition_holds(write, current)

    return condition


# ---- the flows -----------------------------------------------------------------------------------


@attrs.frozen
class _LiveClaimTakenOver(InboxFlows):
    """A claim that finds another's claim takes it over whether or not its lease ran out."""

    def advance(self, flow: InboxFlow, outcome: InboxOutcome, now: int) -> InboxFlow:
        if flow.stage is Stage.CLAIM and isinstance(outcome, Conflict):
            current = outcome.current
            others = current is not None and current.attempt_id != flow.attempt_id
            if current is not None and others and current.phase is InboxPhase.PROCESSING:
                outcome = Conflict(attrs.evolve(current, lease_expires_at=now))
        return super().advance(flow, outcome, now)


def _rules_first(*rules: Rule) -> InboxFlows:
    """The inbox's flows with `rules` put before its own: where they name a key, they hold."""
    return InboxFlows(rules=(*rules, *RULES))


# A claim that finds another's claim answers BUSY, even once its lease ran out.
_EXPIRED_CLAIM_KEPT = _rules_first(
    (Mode.GUARDED, Stage.CLAIM, Came.MOVED, (Seen.HELD, Seen.EXPIRED), End(InboxResult.BUSY))
)
# A duplicate of a DONE message runs the handler again instead of answering from the record.
_DONE_RUNS_AGAIN = _rules_first(
    (Mode.GUARDED, Stage.CLAIM, Came.MOVED, Seen.DONE, RunHandler(End(InboxResult.RETRY)))
)


@attrs.frozen
class _StaleRead(InboxFlows):
    """The transactional read returns the record as it was one write before (an eventually
    consistent read): the commit names a version the record no longer has."""

    def advance(self, flow: InboxFlow, outcome: InboxOutcome, now: int) -> InboxFlow:
        if isinstance(outcome, Found) and outcome.record is not None and outcome.record.version > 1:
            outcome = Found(attrs.evolve(outcome.record, version=outcome.record.version - 1))
        return super().advance(flow, outcome, now)


@attrs.frozen
class _FailureReportedOk(InboxFlows):
    """A handler's failure is caught and the message reported processed (a swallowed failure)."""

    def advance(self, flow: InboxFlow, outcome: InboxOutcome, now: int) -> InboxFlow:
        after = super().advance(flow, outcome, now)
        if isinstance(outcome, HandlerError):
            # the flow goes on to record the failure; its answer is then taken for a success
            return attrs.evolve(after, failure=None)
        if (
            after.done
            and after.answer.result is InboxResult.RETRY
            and flow.stage in (Stage.FAILURE, Stage.RELEASE)
        ):
            return attrs.evolve(after, effect=attrs.evolve(after.answer, result=InboxResult.DONE))
        return after


# ---- the mutants ---------------------------------------------------------------------------------


def caught_as_named(model: InboxModel, violations: Sequence[str]) -> bool:
    """Whether the violations found include the one `model`'s bug makes."""
    pattern = re.compile(model.caught_with)
    return bool(model.caught_with) and any(pattern.search(violation) for violation in violations)


_T, _G = Mode.TRANSACTIONAL, Mode.GUARDED

INBOX_MUTANTS: dict[str, InboxModel] = {
    mutant.name: mutant
    for mutant in (
        # transactional: exactly once
        InboxModel(
            _T,
            "effect-outside-transaction",
            "the handler writes its effect itself, outside the commit's transaction",
            effects_of=_effect_in_handler,
            caught_with=r"effect applied 2 times",
        ),
        InboxModel(
            _T,
            "unconditional-commit",
            "the inbox's write in the commit's transaction has no condition",
            write_condition=_commit_without_condition,
            caught_with=r"effect applied 2 times",
        ),
        # guarded: one holder at a time
        InboxModel(
            _G,
            "short-claim-lease",
            "the claim's lease ends at the invocation's deadline: no margin",
            settings=attrs.evolve(TICK_SETTINGS, lease_margin_ms=0),
            caught_with=r"held by 2 invocations at once",
        ),
        InboxModel(
            _G,
            "live-claim-taken-over",
            "a delivery takes a claim over without waiting for its lease to run out",
            flows=_LiveClaimTakenOver(),
            caught_with=r"held by 2 invocations at once",
        ),
        # guarded: a lost claim completes nothing
        InboxModel(
            _G,
            "unfenced-completion",
            "the completion's write checks that the record is PROCESSING, not who holds the claim",
            write_condition=_unfenced(Completed),  # type: ignore[arg-type]
            caught_with=r"Completed by '\w+', whose claim on \w+ was lost",
        ),
        InboxModel(
            _G,
            "unfenced-release",
            "the release's write checks that the record is PROCESSING, not who holds the claim",
            write_condition=_unfenced(Released),  # type: ignore[arg-type]
            caught_with=r"Released by '\w+', whose claim on \w+ was lost",
        ),
        # guarded: a duplicate is answered from the record
        InboxModel(
            _G,
            "done-runs-again",
            "a duplicate of a DONE message runs the handler again",
            flows=_DONE_RUNS_AGAIN,
            caught_with=r"runs its handler again after it was done",
        ),
        # both: a message taken off the queue is done
        InboxModel(
            _T,
            "swallowed-failure",
            "a handler's failure is reported as a success: SQS deletes the message",
            flows=_FailureReportedOk(),
            caught_with=r"deleted from the queue but never done",
        ),
        InboxModel(
            _G,
            "swallowed-release",
            "a handler's failure is released, then reported as a success: SQS deletes the message",
            flows=_FailureReportedOk(),
            caught_with=r"deleted from the queue but never done",
        ),
        # liveness: every message ends DONE or FAILED
        InboxModel(
            _G,
            "expired-claim-kept",
            "a delivery answers BUSY for any claim, even one whose lease ran out (a crashed holder's)",
            flows=_EXPIRED_CLAIM_KEPT,
            caught_by="liveness",
            caught_with=r"never settles: PROCESSING .*lease expired.*goes round the cycle",
        ),
        InboxModel(
            _T,
            "stale-read-commit",
            "the transactional read is eventually consistent: the commit names a version already gone",
            flows=_StaleRead(),
            caught_by="liveness",
            caught_with=r"never settles: WAITING .*goes round the cycle",
        ),
    )
}

__all__ = ["INBOX_MUTANTS", "caught_as_named", "commit_effects"]
