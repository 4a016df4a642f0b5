"""The inbox's flows, sans I/O: one delivery of one message, in either mode, as step functions.

A flow never performs anything. `start_guarded` / `start_transactional` return an `InboxFlow` whose
`effect` says what to do next — read the record (`Read`), make a conditional write (`InboxWrite`),
run the team's handler (`Invoke`), or answer (`InboxAnswer`) — and `advance(flow, outcome, now)`
takes what came of it and returns the next flow. `adapters.runtime.inbox` carries the effects out on
DynamoDB and the team's handler; `statemodel.checker.inbox_space` on its in-memory world. Every
event a flow writes comes from `decide`, so the rules live in the table and nowhere else.

Why the flows answer as they do:
* The answer is per message, for the batch: `InboxAnswer.ok` (DONE or DUPLICATE) lets SQS delete
  the message; anything else is a `batchItemFailure`, and SQS delivers the message again after its
  visibility timeout (or, once its receives pass the queue's maxReceiveCount, moves it to the DLQ).
* A write that fails its condition but finds exactly its own intended result landed on an earlier try
  the caller did not see (botocore retried it): success.
* Transactional: the record is read first, so a duplicate of a DONE message runs no handler; the
  commit is conditioned on the record as read, so a duplicate, a concurrent delivery or a stale
  invocation that read it before another's commit has its whole transaction cancelled — the effect
  with it. A commit that failed outright may have landed (ambiguous): the next delivery reads DONE.
* Guarded: the claim is the first write (a new message costs no read); a claim held by a live lease
  is answered BUSY without running the handler; an expired one is taken over. A handler is started
  only within its invocation's deadline, and the lease ends `lease_margin_ms` after that deadline,
  so no two invocations within their deadlines hold one message. Completion and release name the
  claim's attempt: a flow whose claim was lost (it overran its lease) completes nothing (LOST).
"""

from __future__ import annotations

import enum

import attrs

from statemodel.categories import ErrorCategory, Failure
from statemodel.inbox.commands import (
    Claim,
    Commit,
    Complete,
    InboxCommand,
    RearmMessage,
    RecordFailure,
    Release,
)
from statemodel.inbox.decider import decide, evolve_all
from statemodel.inbox.events import InboxEvent
from statemodel.inbox.records import InboxMessage, InboxPhase, InboxRecord
from statemodel.inbox.table import INBOX_TRANSITIONS, InboxTable, Mode


@attrs.frozen
class InboxSettings:
    """The inbox's knobs (`adapters.Inbox` takes them as arguments)."""

    max_receives: int = 5  # receives counted before a message is given up (FAILED)
    lease_margin_ms: int = 30_000  # how long a claim outlives the invocation that holds it


def lease_expiry(deadline: int, settings: InboxSettings) -> int:
    """A claim's lease: the invocation's deadline plus the margin, so that no other invocation takes
    it over while its holder may still run, or a request of its holder may still land."""
    return deadline + settings.lease_margin_ms


# ---- effects -------------------------------------------------------------------------------------


@attrs.frozen
class Read:
    """Read the record (strongly consistent)."""

    message_id: str


@attrs.frozen
class InboxWrite:
    """One conditional write: append `events`, set the projection to `after`, if the record is still
    `before` (status, version and attempt id; None: no item with the key). `commit`: this write is
    the inbox's part of the team's transaction, with the handler's effect beside it."""

    before: InboxRecord | None
    events: tuple[InboxEvent, ...]
    after: InboxRecord
    commit: bool = False

    @property
    def message_id(self) -> str:
        return self.after.message_id


@attrs.frozen
class Invoke:
    """Run the team's handler for the message. `idempotency_key` is the same for every delivery of
    the message: the handler passes it to an external service that deduplicates by it."""

    message_id: str
    attempt_id: str
    idempotency_key: str
    deadline: int


class InboxResult(enum.StrEnum):
    DONE = "done"  # this delivery applied the effect (or completed the handler)
    DUPLICATE = "duplicate"  # already done: answered from the record, nothing run
    BUSY = "busy"  # another invocation holds its claim under a live lease: nothing run
    RETRY = "retry"  # not done this time: the next delivery tries again
    LOST = "lost"  # the handler ran, but the claim was lost to a later one, which will complete it
    GIVEN_UP = "given_up"  # FAILED: receives exhausted, left to the redrive policy and the operator
    REARMED = "rearmed"  # an operator re-armed a FAILED message
    SUPERSEDED = "superseded"  # the operator's re-arm found the record changed: nothing done


@attrs.frozen
class HandlerError:
    """The team's handler failed (or, at a commit, the team's own condition cancelled the
    transaction): told apart from a `Failure` of a read or a write of the inbox's own."""

    failure: Failure


@attrs.frozen
class InboxAnswer:
    """A flow's end: what the batch response says about the message, and why."""

    result: InboxResult
    message_id: str
    record: InboxRecord | None  # the record as the flow last knew it
    failure: Failure | None = None  # the handler's or AWS's failure, if any
    ran: bool = False  # the handler ran in this delivery
    uncompleted: bool = False  # the handler ran, but its completion (or commit) did not land

    @property
    def ok(self) -> bool:
        """SQS may delete the message: its effect is applied (now or before)."""
        return self.result in (InboxResult.DONE, InboxResult.DUPLICATE)

    @property
    def stored_result(self) -> str | None:
        """The guarded handler's result, for this delivery or a duplicate."""
        return self.record.result if self.record is not None else None


InboxEffect = Read | InboxWrite | Invoke | InboxAnswer


# ---- outcomes ------------------------------------------------------------------------------------


@attrs.frozen
class Found:
    record: InboxRecord | None


@attrs.frozen
class Written:
    pass


@attrs.frozen
class Conflict:
    current: InboxRecord | None  # the item as it was (ReturnValuesOnConditionCheckFailure=ALL_OLD)


@attrs.frozen
class Handled:
    result: str  # the handler's result (guarded: kept for duplicates; transactional: unused)


InboxOutcome = Found | Written | Conflict | Failure | Handled | HandlerError  # Failure: a read or write's


def condition_holds(write: InboxWrite, current: InboxRecord | None) -> bool:
    """The write's condition, as DynamoDB evaluates it (`adapters.runtime.inbox_codec` says it in its
    syntax): no item, or the same status, version and attempt id as read."""
    before = write.before
    if before is None:
        return current is None
    return current is not None and (current.phase, current.version, current.attempt_id) == (
        before.phase,
        before.version,
        before.attempt_id,
    )


# ---- flows ---------------------------------------------------------------------------------------


class Stage(enum.StrEnum):
    READ = "read"
    CLAIM = "claim"
    HANDLER = "handler"
    COMPLETE = "complete"
    RELEASE = "release"
    COMMIT = "commit"
    FAILURE = "failure"
    REARM = "rearm"
    DONE = "done"


@attrs.frozen
class InboxFlow:
    mode: Mode
    stage: Stage
    effect: InboxEffect
    record: InboxRecord | None  # the record as this flow last saw or wrote it
    message: InboxMessage
    attempt_id: str | None = None
    deadline: int = 0  # the invocation's end: no handler starts after it
    max_receives: int = 0
    lease_margin_ms: int = 0
    reclaimed: bool = False  # a guarded claim already tried again on the record its first one found
    failure: Failure | None = None
    ran: bool = False

    @property
    def done(self) -> bool:
        return self.stage is Stage.DONE

    @property
    def answer(self) -> InboxAnswer:
        assert isinstance(self.effect, InboxAnswer), "the flow has not finished"
        return self.effect

    @property
    def lease_expires_at(self) -> int:
        return self.deadline + self.lease_margin_ms


def idempotency_key(message: InboxMessage) -> str:
    """The key the handler gets: the same for every delivery of the message, and for nothing else."""
    return message.message_id


@attrs.frozen
class InboxFlows:
    """The inbox's flows over one table: `decide` picks every write's events from `table`. The
    adapters use `INBOX_FLOWS`, over the inbox's table as written (the module's `start_*` and
    `advance` are its methods); the explorer runs a mutant as a subclass with one method swapped."""

    table: InboxTable = INBOX_TRANSITIONS

    def start_guarded(
        self,
        message: InboxMessage,
        attempt_id: str,
        now: int,
        deadline: int,
        settings: InboxSettings,
    ) -> InboxFlow:
        """A delivery in guarded mode: claim (creating the record if new), run the handler, complete or
        release."""
        lease = lease_expiry(deadline, settings)
        claim = Claim(message, attempt_id, lease, settings.max_receives)
        return InboxFlow(
            mode=Mode.GUARDED,
            stage=Stage.CLAIM,
            effect=self._write(None, claim, now),
            record=None,
            message=message,
            attempt_id=attempt_id,
            deadline=deadline,
            max_receives=settings.max_receives,
            lease_margin_ms=settings.lease_margin_ms,
        )

    def start_transactional(
        self,
        message: InboxMessage,
        attempt_id: str,
        now: int,
        deadline: int,
        settings: InboxSettings,
    ) -> InboxFlow:
        """A delivery in transactional mode: read, run the handler, commit its effect with the record."""
        return InboxFlow(
            mode=Mode.TRANSACTIONAL,
            stage=Stage.READ,
            effect=Read(message.message_id),
            record=None,
            message=message,
            attempt_id=attempt_id,
            deadline=deadline,
            max_receives=settings.max_receives,
        )

    def start_rearm(self, record: InboxRecord, by: str, reason: str, now: int) -> InboxFlow:
        """An operator's re-arm of a FAILED message: one write conditioned on the record as read.
        Raises `ForbiddenCommand` for a record that is not FAILED."""
        return InboxFlow(
            mode=Mode.GUARDED,
            stage=Stage.REARM,
            effect=self._write(record, RearmMessage(by, reason), now),
            record=record,
            message=record.message,
        )

    def advance(self, flow: InboxFlow, outcome: InboxOutcome, now: int) -> InboxFlow:
        """The flow after its effect came out as `outcome`."""
        effect = flow.effect
        if isinstance(effect, InboxAnswer):
            raise ValueError("the flow has finished")
        if isinstance(effect, InboxWrite):
            if isinstance(outcome, Conflict) and outcome.current == effect.after:
                outcome = Written()  # an earlier try landed; its retry found its own result
            if isinstance(outcome, Written):
                flow = attrs.evolve(flow, record=effect.after)
        match flow.stage, outcome:
            # -- transactional
            case Stage.READ, Found(record=record):
                flow = attrs.evolve(flow, record=record)
                return _settled(flow, record) or _invoke(flow, now)
            case Stage.HANDLER, Handled(result=result) if flow.mode is Mode.TRANSACTIONAL:
                command: InboxCommand = Commit(flow.message, _attempt(flow))
                ran = attrs.evolve(flow, ran=True)
                return attrs.evolve(
                    ran, stage=Stage.COMMIT, effect=self._write(flow.record, command, now, True)
                )
            case Stage.HANDLER, HandlerError(failure=error) if flow.mode is Mode.TRANSACTIONAL:
                command = RecordFailure(
                    flow.message, _attempt(flow), error.category, error.code, flow.max_receives
                )
                failing = attrs.evolve(flow, failure=error, ran=True)
                return attrs.evolve(
                    failing, stage=Stage.FAILURE, effect=self._write(flow.record, command, now)
                )
            case Stage.COMMIT, Written():
                return _finish(flow, InboxResult.DONE)
            case Stage.COMMIT, HandlerError(failure=error):
                # The effect's own condition (the team's rule) cancelled the transaction: nothing committed,
                # and the receive counts as a failed one.
                command = RecordFailure(
                    flow.message, _attempt(flow), error.category, error.code, flow.max_receives
                )
                failing = attrs.evolve(flow, failure=error)
                return attrs.evolve(
                    failing, stage=Stage.FAILURE, effect=self._write(flow.record, command, now)
                )
            case Stage.COMMIT | Stage.FAILURE, Conflict(current=current):
                flow = attrs.evolve(flow, record=current)
                if current is not None and current.phase is InboxPhase.DONE:
                    return _finish(flow, InboxResult.DUPLICATE)
                return _finish(flow, InboxResult.RETRY, uncompleted=flow.stage is Stage.COMMIT)
            case Stage.FAILURE, Written():
                return _gave_up_or_retry(flow)
            # -- guarded
            case Stage.CLAIM, Written():
                record = _known(flow)
                if record.phase is InboxPhase.FAILED:
                    return _finish(flow, InboxResult.GIVEN_UP)
                return _invoke(flow, now)
            case Stage.CLAIM, Conflict(current=current):
                flow = attrs.evolve(flow, record=current)
                settled = _settled(flow, current)
                if settled is not None:
                    return settled
                assert current is not None
                if current.phase is InboxPhase.PROCESSING and now < _lease(current):
                    return _finish(flow, InboxResult.BUSY)
                if flow.reclaimed:
                    return _finish(flow, InboxResult.BUSY)  # moved again under us: come back later
                return self._claim(attrs.evolve(flow, reclaimed=True), current, now)
            case Stage.HANDLER, Handled(result=result):
                command = Complete(_attempt(flow), result)
                ran = attrs.evolve(flow, ran=True)
                return attrs.evolve(ran, stage=Stage.COMPLETE, effect=self._write(flow.record, command, now))
            case Stage.HANDLER, HandlerError(failure=error):
                command = Release(_attempt(flow), error.category, error.code, flow.max_receives)
                failing = attrs.evolve(flow, failure=error, ran=True)
                return attrs.evolve(
                    failing, stage=Stage.RELEASE, effect=self._write(flow.record, command, now)
                )
            case Stage.COMPLETE, Written():
                return _finish(flow, InboxResult.DONE)
            case Stage.COMPLETE | Stage.RELEASE, Conflict(current=current):
                # Our claim was lost: another attempt took it over after our lease ran out.
                return _finish(attrs.evolve(flow, record=current), InboxResult.LOST, uncompleted=True)
            case Stage.RELEASE, Written():
                return _gave_up_or_retry(flow)
            case Stage.REARM, Written():
                return _finish(flow, InboxResult.REARMED)
            case Stage.REARM, Conflict(current=current):
                return _finish(attrs.evolve(flow, record=current), InboxResult.SUPERSEDED)
            case _, Failure() as failed:
                # A read or a write failed outright. A write that landed all the same (ambiguous) left
                # the record DONE (the next delivery reads it), or claimed under this flow's lease (the
                # next delivery after it expires takes it over), or counted a receive.
                failure = flow.failure or failed
                uncompleted = flow.stage in (Stage.COMMIT, Stage.COMPLETE)
                return _finish(
                    attrs.evolve(flow, failure=failure), InboxResult.RETRY, uncompleted=uncompleted
                )
        raise ValueError(f"{type(outcome).__name__} cannot answer {flow.stage.value} in {flow.mode.value}")

    def _claim(self, flow: InboxFlow, record: InboxRecord | None, now: int) -> InboxFlow:
        command = Claim(flow.message, _attempt(flow), flow.lease_expires_at, flow.max_receives)
        return attrs.evolve(flow, stage=Stage.CLAIM, effect=self._write(record, command, now))

    def _write(
        self, record: InboxRecord | None, command: InboxCommand, now: int, commit: bool = False
    ) -> InboxWrite:
        events = decide(record, command, now, self.table)
        after = evolve_all(record, events)
        assert after is not None
        return InboxWrite(record, events, after, commit)


INBOX_FLOWS = InboxFlows()  # over the inbox's table as written: what the adapters run
start_guarded = INBOX_FLOWS.start_guarded
start_transactional = INBOX_FLOWS.start_transactional
start_rearm = INBOX_FLOWS.start_rearm
advance = INBOX_FLOWS.advance


def _settled(flow: InboxFlow, record: InboxRecord | None) -> InboxFlow | None:
    """The answer for a record found DONE or FAILED (nothing is run), or held by a guarded claim
    (a transactional delivery waits for it); None when this delivery must work on it."""
    if record is None:
        return None
    if record.phase is InboxPhase.DONE:
        return _finish(flow, InboxResult.DUPLICATE)
    if record.phase is InboxPhase.FAILED:
        return _finish(flow, InboxResult.GIVEN_UP)
    if flow.mode is Mode.TRANSACTIONAL and record.phase is InboxPhase.PROCESSING:
        return _finish(flow, InboxResult.BUSY)
    return None


def _invoke(flow: InboxFlow, now: int) -> InboxFlow:
    """Run the handler, if the invocation's deadline has not passed (a claim that landed late keeps
    its lease until it expires; the next delivery takes it over)."""
    if now > flow.deadline:
        return _finish(flow, InboxResult.RETRY, failure=Failure(ErrorCategory.RETRYABLE, "DeadlineExceeded"))
    invoke = Invoke(flow.message.message_id, _attempt(flow), idempotency_key(flow.message), flow.deadline)
    return attrs.evolve(flow, stage=Stage.HANDLER, effect=invoke)


def _gave_up_or_retry(flow: InboxFlow) -> InboxFlow:
    failed = _known(flow).phase is InboxPhase.FAILED
    return _finish(flow, InboxResult.GIVEN_UP if failed else InboxResult.RETRY)


def _finish(
    flow: InboxFlow, result: InboxResult, *, failure: Failure | None = None, uncompleted: bool = False
) -> InboxFlow:
    answer = InboxAnswer(
        result, flow.message.message_id, flow.record, failure or flow.failure, flow.ran, uncompleted
    )
    return attrs.evolve(flow, stage=Stage.DONE, effect=answer)


def _attempt(flow: InboxFlow) -> str:
    assert flow.attempt_id is not None
    return flow.attempt_id


def _known(flow: InboxFlow) -> InboxRecord:
    assert flow.record is not None
    return flow.record


def _lease(record: InboxRecord) -> int:
    assert record.lease_expires_at is not None
    return record.lease_expires_at
