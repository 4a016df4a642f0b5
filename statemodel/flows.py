"""The flows, sans I/O: submit, re-drive and lease expiry as step functions.

A flow never performs anything. `start_*` returns a `Flow` whose `effect` says what to do next — a
conditional `Write`, a `Send` to SQS, or the final `Answer` — and `advance(flow, outcome, now)` takes
what came of it and returns the next flow. The adapters interpret the effects against DynamoDB and
SQS; the pure-model tests and the explorer interpret the very same effects against `statemodel.checker.world`.
Every event a flow writes comes from `decide`, so the rules live in the table and nowhere else.

Why the flows answer as they do:
* A write that fails its condition but whose returned item already equals the write's intended
  result landed on an earlier try that the caller did not see (botocore retried it): success.
* Once SQS accepted the message the client is told 202 even if the confirm write fails: the message is
  on the queue, and the record, still in flight under its lease, is rolled back and re-driven by the
  reconciler (a duplicate that the failed confirm explains).
* A failed send is rolled back under the attempt's fence, whatever its category: a record never stays
  QUEUED without a message. If the rollback fails too, the lease still protects the record until the
  reconciler rolls it back.
"""

from __future__ import annotations

import enum

import attrs

from statemodel.categories import ErrorCategory, Failure, consequence
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
from statemodel.decider import decide, evolve_all
from statemodel.events import ClaimCause, Event
from statemodel.records import Message, Phase, Record, Status
from statemodel.table import TRANSITIONS, Table


@attrs.frozen
class Settings:
    """The knobs of the protocol (the adapters read them from the environment)."""

    max_attempts: int = 10
    redrive_after_ms: int = 60_000
    lease_margin_ms: int = 30_000


def lease_expiry(now: int, remaining_ms: int, settings: Settings) -> int:
    """A claim's lease: it outlives the invocation that holds it, so the reconciler never rolls back
    a live one. An invocation that reports no time left still gets the margin."""
    return now + max(remaining_ms, 0) + settings.lease_margin_ms


# ---- effects -------------------------------------------------------------------------------------


@attrs.frozen
class Expectation:
    """The condition of a write to an existing record: it is still as we last saw it."""

    status: Status
    version: int
    attempt_id: str | None


@attrs.frozen
class Write:
    """One conditional write: append `events`, set the projection to `after`, if the record is still
    `before` (or, when `before` is None, if there is no record yet)."""

    before: Record | None
    events: tuple[Event, ...]
    after: Record

    @property
    def message_id(self) -> str:
        return self.after.message_id

    @property
    def expected(self) -> Expectation | None:
        b = self.before
        return None if b is None else Expectation(b.status, b.version, b.attempt_id)


@attrs.frozen
class Send:
    """Send the message to SQS. The interpreter must not start it after `deadline`: the invocation
    would be past its own end, and only the lease's margin is left to cover a request still on the
    wire. A send refused for that is retryable (it never left)."""

    message: Message
    attempt_id: str
    deadline: int

    @property
    def body(self) -> str:
        return self.message.payload

    @property
    def group_id(self) -> str:
        """The FIFO MessageGroupId: the sender's group id, else the `group` attribute, else the id."""
        if self.message.group_id is not None:
            return self.message.group_id
        return dict(self.message.attributes).get("group", self.message.message_id)

    @property
    def deduplication_id(self) -> str:
        return self.message.message_id


class Result(enum.StrEnum):
    SENT = "sent"  # SQS accepted the message (202)
    ALREADY_QUEUED = "already_queued"  # an idempotent replay of a QUEUED record: nothing sent (202)
    CONFLICT = "conflict"  # the Idempotency-Key was used for another request (409)
    FAILED = "failed"  # SYSTEM_ERROR; the record is left recoverable
    EXPIRED = "expired"  # the reconciler rolled an expired lease back
    EXHAUSTED = "exhausted"  # the reconciler flagged a record that has no attempts left
    REARMED = "rearmed"  # an operator re-armed an exhausted record: PENDING, a fresh budget
    SUPERSEDED = "superseded"  # someone else moved the record first; nothing done


@attrs.frozen
class Answer:
    """A flow's end: its result, and what the adapters need to answer and log."""

    result: Result
    message_id: str
    record: Record | None  # the record as the flow last knew it
    failure: Failure | None = None
    unconfirmed: bool = False  # SENT, but the confirm write did not land (the reconciler mends it)
    rollback_failed: bool = False  # FAILED, and the rollback did not land (the lease protects it)

    @property
    def accepted(self) -> bool:
        """The client is told 202: SQS has (or already had) the message."""
        return self.result in (Result.SENT, Result.ALREADY_QUEUED)

    @property
    def http_status(self) -> int:
        if self.accepted:
            return 202
        if self.result is Result.CONFLICT:
            return 409
        if self.failure is None:
            raise ValueError(f"{self.result.value} is a reconciler's result, not a client's answer")
        return consequence(self.failure.category).http_status

    @property
    def retryable(self) -> bool:
        """Not accepted, and the same request again may succeed (`statemodel.categories` decides)."""
        return self.failure is not None and consequence(self.failure.category).retry_after


Effect = Write | Send | Answer


# ---- outcomes ------------------------------------------------------------------------------------


@attrs.frozen
class Written:
    pass


@attrs.frozen
class ConditionFailed:
    current: Record | None  # the item as it was (ReturnValuesOnConditionCheckFailure=ALL_OLD)


@attrs.frozen
class Sent:
    sqs_message_id: str


Outcome = Written | ConditionFailed | Sent | Failure  # a Failure: the effect failed outright


def condition_holds(write: Write, current: Record | None) -> bool:
    """The write's condition, as DynamoDB evaluates it (`adapters.runtime.store` says it in its syntax)."""
    expected = write.expected
    if expected is None:
        return current is None
    return current is not None and expected == Expectation(
        current.status, current.version, current.attempt_id
    )


# ---- flows ---------------------------------------------------------------------------------------


class Kind(enum.StrEnum):
    SUBMIT = "submit"
    REDRIVE = "redrive"
    EXPIRE = "expire"
    REARM = "rearm"


class Stage(enum.StrEnum):
    CREATE = "create"  # write Accepted + Claimed
    PREPARE = "prepare"  # write Accepted alone (the transactional outbox's record)
    CLAIM = "claim"  # write Claimed (or RedriveExhausted) on a PENDING record
    SEND = "send"
    CONFIRM = "confirm"
    ROLLBACK = "rollback"
    EXPIRE = "expire"
    REARM = "rearm"  # write Rearmed on an EXHAUSTED record
    DONE = "done"


@attrs.frozen
class Flow:
    kind: Kind
    stage: Stage
    effect: Effect
    record: Record | None  # the record as this flow last saw or wrote it
    attempt_id: str | None = None
    lease_expires_at: int | None = None
    max_attempts: int = 0
    send_deadline: int = 0  # the invocation's end: the lease less its margin
    request_hash: str = ""  # with `queue`, the request a replay must match (else a conflict)
    queue: str | None = None
    failure: Failure | None = None  # the send failure being rolled back

    @property
    def done(self) -> bool:
        return self.stage is Stage.DONE

    @property
    def answer(self) -> Answer:
        assert isinstance(self.effect, Answer), "the flow has not finished"
        return self.effect


@attrs.frozen
class Flows:
    """The flows over one transition table: `decide` picks every write's events from `table`.

    The adapters use `FLOWS`, over the table as written (the module's `start_*` and `advance` are its
    methods). The explorer runs a model mutant as another `Flows` — another table, or a subclass with
    one method swapped — so a mutant enters through this one object and nothing is patched.
    """

    table: Table = TRANSITIONS

    def start_submit(
        self, message: Message, attempt_id: str, lease_expires_at: int, now: int, settings: Settings
    ) -> Flow:
        command = Submit(message, attempt_id, lease_expires_at)
        return Flow(
            kind=Kind.SUBMIT,
            stage=Stage.CREATE,
            effect=self._write(None, command, now),
            record=None,
            attempt_id=attempt_id,
            lease_expires_at=lease_expires_at,
            max_attempts=settings.max_attempts,
            send_deadline=lease_expires_at - settings.lease_margin_ms,
            request_hash=message.request_hash,
            queue=message.queue,
        )

    def prepare(self, message: Message, now: int) -> Write:
        """The transactional outbox's record: Accepted, PENDING, unclaimed. The team's own transaction
        writes it (`adapters.Outbox.pending_put`); `start_dispatch` or a re-drive claims it."""
        return self._write(None, Prepare(message), now)

    def start_outbox(
        self, message: Message, attempt_id: str, lease_expires_at: int, now: int, settings: Settings
    ) -> Flow:
        """The transactional outbox as one flow: the record's write (in the team's transaction), then
        `dispatch`'s claim, send and confirm. The model checkers run it beside `start_submit`."""
        # Equivalent mutants on the next line: the submit's first write, its only reader of `now`, is
        # replaced by the prepare.
        flow = self.start_submit(message, attempt_id, lease_expires_at, now, settings)  # pragma: no mutate
        return attrs.evolve(flow, stage=Stage.PREPARE, effect=self.prepare(message, now))

    def start_dispatch(
        self,
        record: Record,
        attempt_id: str,
        lease_expires_at: int,
        now: int,
        settings: Settings,
        request: Message | None = None,
    ) -> Flow:
        """`dispatch` of a record found by its key: claim it if PENDING, then send and confirm; a record
        already sent is accepted without a send, one in flight elsewhere is told to come back.
        `request`: the message the caller meant to write (its `pending_put`); a record holding another
        request (body, attributes, group or queue) is a conflict, as for `send`. None: the record's own."""
        request = record.message if request is None else request
        flow = Flow(
            kind=Kind.SUBMIT,
            stage=Stage.CLAIM,  # pragma: no mutate (_replay sets the stage: a claim's or the end)
            effect=Answer(Result.SUPERSEDED, record.message_id, record),  # pragma: no mutate (replaced below)
            record=record,  # pragma: no mutate (_replay sets the record it answers for)
            attempt_id=attempt_id,
            lease_expires_at=lease_expires_at,
            max_attempts=settings.max_attempts,
            send_deadline=lease_expires_at - settings.lease_margin_ms,
            request_hash=request.request_hash,
            queue=request.queue,
        )
        return self._replay(flow, record, now, cause=ClaimCause.DISPATCH)

    def start_redrive(
        self, record: Record, attempt_id: str, lease_expires_at: int, now: int, settings: Settings
    ) -> Flow:
        command = Redrive(attempt_id, lease_expires_at, ClaimCause.REDRIVE, settings.max_attempts)
        return Flow(
            kind=Kind.REDRIVE,
            stage=Stage.CLAIM,
            effect=self._write(record, command, now),
            record=record,
            attempt_id=attempt_id,
            lease_expires_at=lease_expires_at,
            max_attempts=settings.max_attempts,  # pragma: no mutate (only a replay's claim reads it)
            send_deadline=lease_expires_at - settings.lease_margin_ms,
        )

    def start_expire(self, record: Record, now: int) -> Flow:
        return Flow(
            kind=Kind.EXPIRE,
            stage=Stage.EXPIRE,
            effect=self._write(record, ExpireLease(_attempt(record)), now),
            record=record,
            attempt_id=record.attempt_id,
        )

    def start_rearm(self, record: Record, by: str, reason: str, now: int) -> Flow:
        """An operator's re-arm of an exhausted record: one write, conditioned on the record being as
        read (status and version), so a record that changed since it was read is left alone
        (`Result.SUPERSEDED`). Raises `ForbiddenCommand` for a record that is not exhausted."""
        return Flow(
            kind=Kind.REARM,
            stage=Stage.REARM,
            effect=self._write(record, Rearm(by, reason), now),
            record=record,
        )

    def reconcile_start(
        self, record: Record, now: int, settings: Settings, attempt_id: str, lease_expires_at: int
    ) -> Flow | None:
        """What the reconciler does about one record it found: roll back an expired lease, re-drive a
        PENDING record that waited `redrive_after_ms`, or nothing (None)."""
        if record.phase is Phase.IN_FLIGHT and _lease(record) <= now:
            return self.start_expire(record, now)
        if record.phase is Phase.PENDING and now - record.updated_at >= settings.redrive_after_ms:
            return self.start_redrive(record, attempt_id, lease_expires_at, now, settings)
        return None

    def advance(self, flow: Flow, outcome: Outcome, now: int) -> Flow:
        """The flow after its effect came out as `outcome`."""
        effect = flow.effect
        if isinstance(effect, Answer):
            raise ValueError("the flow has finished")  # pragma: no mutate (message text, not contract)
        if isinstance(effect, Write):
            if isinstance(outcome, ConditionFailed) and outcome.current == effect.after:
                outcome = Written()  # an earlier try landed; its retry found its own result
            if isinstance(outcome, Written):
                flow = attrs.evolve(flow, record=effect.after)
        match flow.stage, outcome:
            case Stage.CREATE | Stage.CLAIM, Written():
                record = _known(flow)
                if record.phase is Phase.IN_FLIGHT:
                    send = Send(record.message, _attempt(record), flow.send_deadline)
                    return attrs.evolve(flow, stage=Stage.SEND, effect=send)
                if flow.kind is Kind.REDRIVE:
                    return _finish(flow, Result.EXHAUSTED)
                return _finish(flow, Result.FAILED, Failure(ErrorCategory.PERMANENT, "RedriveExhausted"))
            case Stage.PREPARE, Written():
                return self._claim(flow, _known(flow), ClaimCause.DISPATCH, now)
            case Stage.CREATE, ConditionFailed(current=current) if current is not None:
                return self._replay(flow, current, now)
            case Stage.PREPARE, ConditionFailed(current=current) if current is not None:
                # The transaction is cancelled: a record has this key. `dispatch` answers for it.
                return self._replay(flow, current, now, cause=ClaimCause.DISPATCH)
            case Stage.CLAIM, ConditionFailed(current=current):
                if flow.kind is Kind.SUBMIT and current is not None:
                    return self._replay(flow, current, now, claim=False)  # pragma: no mutate (None is False)
                if flow.kind is Kind.SUBMIT:
                    return _finish(flow, Result.FAILED, Failure(ErrorCategory.RETRYABLE, "Conflict"))
                return _finish(attrs.evolve(flow, record=current), Result.SUPERSEDED)
            case Stage.SEND, Sent(sqs_message_id=sqs_id):
                command: Command = ConfirmSend(_own_attempt(flow), sqs_id)
                return attrs.evolve(flow, stage=Stage.CONFIRM, effect=self._write(_known(flow), command, now))
            case Stage.SEND, Failure() as failure:
                command = ReportSendFailure(_own_attempt(flow), failure.category, failure.code)
                rollback = self._write(_known(flow), command, now)
                return attrs.evolve(flow, stage=Stage.ROLLBACK, effect=rollback, failure=failure)
            case Stage.CONFIRM, _:
                return _finish(flow, Result.SENT, unconfirmed=not isinstance(outcome, Written))
            case Stage.ROLLBACK, _:
                return _finish(
                    flow, Result.FAILED, flow.failure, rollback_failed=not isinstance(outcome, Written)
                )
            case Stage.EXPIRE, Written():
                return _finish(flow, Result.EXPIRED)
            case Stage.EXPIRE, ConditionFailed(current=current):
                return _finish(attrs.evolve(flow, record=current), Result.SUPERSEDED)
            case Stage.REARM, Written():
                return _finish(flow, Result.REARMED)
            case Stage.REARM, ConditionFailed(current=current):
                return _finish(attrs.evolve(flow, record=current), Result.SUPERSEDED)
            case Stage.CREATE | Stage.PREPARE, ConditionFailed():
                # The item vanished between the failed condition and its read: nothing to replay.
                return _finish(flow, Result.FAILED, Failure(ErrorCategory.RETRYABLE, "Conflict"))
            case _, Failure() as failure:
                # A write failed outright. If it landed after all (ambiguous), the record is in flight
                # under this flow's lease, and the reconciler rolls it back when the lease expires.
                return _finish(flow, Result.FAILED, failure)
        cannot = f"{type(outcome).__name__} cannot answer {flow.stage.value}"  # pragma: no mutate (words)
        raise ValueError(f"{cannot} in {flow.kind.value}")  # pragma: no mutate (message text, not contract)

    def _replay(
        self,
        flow: Flow,
        current: Record,
        now: int,
        *,
        claim: bool = True,
        cause: ClaimCause = ClaimCause.REPLAY,
    ) -> Flow:
        """The create found a record with this message id: the same Idempotency-Key again.

        202 is promised only for a message SQS accepted. A record still in flight may yet fail and be
        exhausted, so its replay is told to come back (retryable), not that its message is queued.
        """
        flow = attrs.evolve(flow, record=current)
        match current.phase:
            case _ if (current.message.request_hash, current.message.queue) != (
                flow.request_hash,
                flow.queue,
            ):
                return _finish(flow, Result.CONFLICT)
            case Phase.CONFIRMED:
                return _finish(flow, Result.ALREADY_QUEUED)
            case Phase.IN_FLIGHT:
                return _finish(flow, Result.FAILED, Failure(ErrorCategory.RETRYABLE, "InProgress"))
            case Phase.EXHAUSTED:
                return _finish(flow, Result.FAILED, Failure(ErrorCategory.PERMANENT, "RedriveExhausted"))
            case _ if claim:
                return self._claim(flow, current, cause, now)
        # A concurrent replay rolled it back between our read and our claim: let the client retry.
        return _finish(flow, Result.FAILED, Failure(ErrorCategory.RETRYABLE, "Conflict"))

    def _claim(self, flow: Flow, record: Record, cause: ClaimCause, now: int) -> Flow:
        assert (
            flow.attempt_id is not None and flow.lease_expires_at is not None
        )  # pragma: no mutate (a check)
        command = Redrive(flow.attempt_id, flow.lease_expires_at, cause, flow.max_attempts)
        return attrs.evolve(flow, stage=Stage.CLAIM, effect=self._write(record, command, now))

    def _write(self, record: Record | None, command: Command, now: int) -> Write:
        events = decide(record, command, now, self.table)
        after = evolve_all(record, events)
        assert after is not None
        return Write(record, events, after)


FLOWS = Flows()  # over the transition table as written: what the adapters run
start_submit = FLOWS.start_submit
prepare = FLOWS.prepare
start_outbox = FLOWS.start_outbox
start_dispatch = FLOWS.start_dispatch
start_redrive = FLOWS.start_redrive
start_expire = FLOWS.start_expire
start_rearm = FLOWS.start_rearm
reconcile_start = FLOWS.reconcile_start
advance = FLOWS.advance


def _finish(
    flow: Flow,
    result: Result,
    failure: Failure | None = None,
    *,
    unconfirmed: bool = False,
    rollback_failed: bool = False,
) -> Flow:
    # Equivalent mutants: the record and the effect always name the same message.
    record = flow.record  # pragma: no mutate (equivalent: the effect names the same message)
    message_id = record.message_id if record else _effect_message_id(flow.effect)  # pragma: no mutate
    answer = Answer(result, message_id, flow.record, failure, unconfirmed, rollback_failed)
    return attrs.evolve(flow, stage=Stage.DONE, effect=answer)


def _effect_message_id(effect: Effect) -> str:
    if isinstance(effect, Send):
        return effect.message.message_id
    return effect.message_id


def _own_attempt(flow: Flow) -> str:
    """The attempt a send's flow claimed with (set for every flow that sends)."""
    assert flow.attempt_id is not None
    return flow.attempt_id


def _known(flow: Flow) -> Record:
    assert flow.record is not None
    return flow.record


def _attempt(record: Record) -> str:
    assert record.attempt_id is not None
    return record.attempt_id


def _lease(record: Record) -> int:
    assert record.lease_expires_at is not None
    return record.lease_expires_at
