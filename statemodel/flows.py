"""The flows, sans I/O: submit, re-drive and lease expiry as step functions.

A flow never performs anything. `start_*` returns a `Flow` whose `effect` says what to do next — a
conditional `Write`, a `Send` to SQS, or the final `Answer` — and `advance(flow, outcome, now)` takes
what came of it and returns the next flow. The adapters interpret the effects against DynamoDB and
SQS; the pure-model tests and the explorer interpret the very same effects against `statemodel.checker.world`.

Two tables hold the rules. Every event a flow writes comes from `decide`, over the transition table
(`statemodel.table`) that `Flows` holds; what a flow does next (send, confirm, roll back, claim, or
answer, and how) is the entry of `NEXT` for its kind, stage, outcome and record, which
`Flows.advance` looks up and carries out. Why each entry is what it is: the rules above `NEXT`.
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
from statemodel.records import Message, Phase, Record, Status, phase_of
from statemodel.rules import compile_rules
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
    def message_id(self) -> str:
        return self.message.message_id

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


@attrs.frozen(cache_hash=True)
class Plan:
    """What a flow was started with: the same at every step of it."""

    kind: Kind
    attempt_id: str | None = None  # the attempt it claims with (an expiry's: the attempt it expires)
    lease_expires_at: int | None = None  # its claim's lease
    max_attempts: int = 0
    send_deadline: int = 0  # the invocation's end: the lease less its margin
    request_hash: str = ""  # with `queue`, the request a replay must match (else a conflict)
    queue: str | None = None


@attrs.frozen
class Flow:
    plan: Plan
    stage: Stage
    effect: Effect
    record: Record | None  # the record as this flow last saw or wrote it
    failure: Failure | None = None  # the send failure being rolled back

    @property
    def kind(self) -> Kind:
        return self.plan.kind

    @property
    def attempt_id(self) -> str | None:
        return self.plan.attempt_id

    @property
    def lease_expires_at(self) -> int | None:
        return self.plan.lease_expires_at

    @property
    def send_deadline(self) -> int:
        return self.plan.send_deadline

    @property
    def done(self) -> bool:
        return self.stage is Stage.DONE

    @property
    def answer(self) -> Answer:
        assert isinstance(self.effect, Answer), "the flow has not finished"
        return self.effect


# ---- what a flow does next: the table ------------------------------------------------------------
#
# Rules (`NEXT` says them all; `Flows.advance` only looks them up and carries them out):
#
# * A flow's next step depends on its kind, its stage, what came of its effect (`Came`) and the
#   phase of the record as it now knows it: the record its write left, the one its write's failed
#   condition found, or (a send, a failed request) the one it knew before.
# * A write that fails its condition but finds its own intended result landed on an earlier try that
#   the caller did not see (botocore retried it): it came out WRITTEN.
# * A landed claim (a create's or a re-drive's) is followed by the send of its message if it left the
#   record IN_FLIGHT; else it flagged the record exhausted: a re-drive ends EXHAUSTED, a client is
#   told 500.
# * A create or a prepare that finds a record with its key answers for that record (a replay): of
#   another request, a conflict (409); CONFIRMED, already queued (202); IN_FLIGHT, come back (503: a
#   record in flight may yet fail, and 202 is promised only for a message SQS accepted); EXHAUSTED,
#   500; PENDING, it claims the record. A replay's claim that finds the record PENDING again (another
#   replay rolled it back in between) tells the client to come back.
# * Once SQS accepted the message the client is told 202 whatever becomes of the confirm write: the
#   message is on the queue, and the record, still in flight under its lease, is rolled back and
#   re-driven by the reconciler (a duplicate that the failed confirm explains).
# * A failed send is rolled back under the attempt's fence, whatever its category: a record never
#   stays QUEUED without a message. If the rollback fails too, the lease still protects the record.
# * A confirm or a rollback that did not land, and a replay whose record vanished, answer with the
#   record the flow held (`held`): the one its lease protects, which the logs name by its version.
# * A write that failed outright ends the flow FAILED with that failure. If it landed after all
#   (ambiguous), the record is in flight under this flow's lease, and the reconciler rolls it back
#   when the lease expires.
# * The reconciler's flows and a re-arm that find the record changed under them do nothing more
#   (SUPERSEDED).
# * Anything else (a send answered by a write's outcome, say) has no entry: `advance` raises.


class Came(enum.Enum):
    """What came of a flow's effect, as `NEXT` tells outcomes apart."""

    WRITTEN = "the write landed (or an earlier try of it did)"
    FOUND = "the write's condition failed on a record of the same request"
    OTHER = "the write's condition failed on a record of another request"
    GONE = "the write's condition failed, and no record is there"
    SENT = "SQS accepted the message"
    FAILED = "the request failed outright"


class Whose(enum.Enum):
    """Where an answer's failure comes from, when it is not one the table names."""

    OUTCOME = "the failure that came of the effect"
    SEND = "the send failure being rolled back"


@attrs.frozen
class Claim:
    """Claim the record (a re-drive's write), recording why."""

    cause: ClaimCause


@attrs.frozen
class SendMessage:
    """Send the message of the record the flow just claimed, under its attempt."""


@attrs.frozen
class Confirm:
    """Write the send's confirmation (`ConfirmSend`) under the flow's attempt."""


@attrs.frozen
class RollBack:
    """Write the send's failure (`ReportSendFailure`), rolling the claim back."""


@attrs.frozen
class End:
    """Answer and stop."""

    result: Result
    failure: Failure | Whose | None = None
    unconfirmed: bool = False
    rollback_failed: bool = False
    held: bool = False  # answer with the record the flow held, not the one its failed write found


Step = Claim | SendMessage | Confirm | RollBack | End
Key = tuple[Kind, Stage, Came, Phase]
# A rule of `NEXT`: each of its first four is one value or a tuple of values it applies to.
Rule = tuple[
    Kind | tuple[Kind, ...],
    Stage | tuple[Stage, ...],
    Came | tuple[Came, ...],
    Phase | tuple[Phase, ...],
    Step,
]

# A submit that finds its record in flight (another call is sending it): 503, retry later. Answers
# carry this one value; callers compare with it (`answer.failure == IN_PROGRESS`), never with its code.
IN_PROGRESS = Failure(ErrorCategory.RETRYABLE, "InProgress")
_CONFLICT = Failure(ErrorCategory.RETRYABLE, "Conflict")
_EXHAUSTED = Failure(ErrorCategory.PERMANENT, "RedriveExhausted")
_FAILED = End(Result.FAILED, Whose.OUTCOME)
_SUPERSEDED = End(Result.SUPERSEDED)
_ROLLBACK_FAILED = End(Result.FAILED, Whose.SEND, rollback_failed=True, held=True)

_ANY = tuple(Phase)
_SENDERS = (Kind.SUBMIT, Kind.REDRIVE)
_REPLAYING = (Stage.CREATE, Stage.PREPARE, Stage.CLAIM)
_MOVED = (Came.FOUND, Came.OTHER, Came.GONE)  # a write's condition failed
_NOT_WRITTEN = (*_MOVED, Came.FAILED)

# (kinds, stages, what came, phases of the record as the flow now knows it, the next step); where
# two rules name one key, the first holds.
RULES: tuple[Rule, ...] = (
    # a client's request: the create (send), the outbox's prepare (claim it), a replay's claim
    (Kind.SUBMIT, (Stage.CREATE, Stage.CLAIM), Came.WRITTEN, Phase.IN_FLIGHT, SendMessage()),
    (Kind.SUBMIT, (Stage.CREATE, Stage.CLAIM), Came.WRITTEN, _ANY, End(Result.FAILED, _EXHAUSTED)),
    (Kind.SUBMIT, Stage.PREPARE, Came.WRITTEN, Phase.PENDING, Claim(ClaimCause.DISPATCH)),
    # ... which found a record with its key: a replay (a dispatch, for the outbox's)
    (Kind.SUBMIT, _REPLAYING, Came.OTHER, _ANY, End(Result.CONFLICT)),
    (Kind.SUBMIT, _REPLAYING, Came.FOUND, Phase.CONFIRMED, End(Result.ALREADY_QUEUED)),
    (Kind.SUBMIT, _REPLAYING, Came.FOUND, Phase.IN_FLIGHT, End(Result.FAILED, IN_PROGRESS)),
    (Kind.SUBMIT, _REPLAYING, Came.FOUND, Phase.EXHAUSTED, End(Result.FAILED, _EXHAUSTED)),
    (Kind.SUBMIT, Stage.CREATE, Came.FOUND, Phase.PENDING, Claim(ClaimCause.REPLAY)),
    (Kind.SUBMIT, Stage.PREPARE, Came.FOUND, Phase.PENDING, Claim(ClaimCause.DISPATCH)),
    (Kind.SUBMIT, Stage.CLAIM, Came.FOUND, Phase.PENDING, End(Result.FAILED, _CONFLICT)),
    (Kind.SUBMIT, _REPLAYING, Came.GONE, Phase.ABSENT, End(Result.FAILED, _CONFLICT, held=True)),  # vanished
    # the reconciler's re-drive
    (Kind.REDRIVE, Stage.CLAIM, Came.WRITTEN, Phase.IN_FLIGHT, SendMessage()),
    (Kind.REDRIVE, Stage.CLAIM, Came.WRITTEN, _ANY, End(Result.EXHAUSTED)),
    (Kind.REDRIVE, Stage.CLAIM, _MOVED, _ANY, _SUPERSEDED),
    # a send, its confirm, its rollback
    (_SENDERS, Stage.SEND, Came.SENT, _ANY, Confirm()),
    (_SENDERS, Stage.SEND, Came.FAILED, _ANY, RollBack()),
    (_SENDERS, Stage.CONFIRM, Came.WRITTEN, _ANY, End(Result.SENT)),
    (_SENDERS, Stage.CONFIRM, _NOT_WRITTEN, _ANY, End(Result.SENT, unconfirmed=True, held=True)),
    (_SENDERS, Stage.ROLLBACK, Came.WRITTEN, _ANY, End(Result.FAILED, Whose.SEND)),
    (_SENDERS, Stage.ROLLBACK, _NOT_WRITTEN, _ANY, _ROLLBACK_FAILED),
    # the reconciler's expiry, an operator's re-arm
    (Kind.EXPIRE, Stage.EXPIRE, Came.WRITTEN, _ANY, End(Result.EXPIRED)),
    (Kind.EXPIRE, Stage.EXPIRE, _MOVED, _ANY, _SUPERSEDED),
    (Kind.REARM, Stage.REARM, Came.WRITTEN, _ANY, End(Result.REARMED)),
    (Kind.REARM, Stage.REARM, _MOVED, _ANY, _SUPERSEDED),
    # a write that failed outright
    (tuple(Kind), (*_REPLAYING, Stage.EXPIRE, Stage.REARM), Came.FAILED, _ANY, _FAILED),
)  # fmt: skip


NEXT: dict[Key, Step] = compile_rules(RULES)


def came_of(flow: Flow, effect: Write | Send, outcome: Outcome) -> tuple[Came, Record | None]:
    """What came of `effect`, and the record as the flow now knows it."""
    match outcome:
        case Sent():
            return Came.SENT, flow.record
        case Failure():
            return Came.FAILED, flow.record
        case Written() if isinstance(effect, Write):
            return Came.WRITTEN, effect.after
        case ConditionFailed(current=current) if isinstance(effect, Write):
            if current == effect.after:
                return Came.WRITTEN, current  # an earlier try landed; its retry found its own result
            return (Came.GONE if current is None else _found(flow.plan, current)), current
    raise _cannot(type(outcome).__name__, flow)  # pragma: no mutate (message text, not contract)


def _cannot(what: str, flow: Flow) -> ValueError:
    """An outcome the table has no entry for (the error's type is the contract; its words are not)."""
    return ValueError(f"{what} cannot answer {flow.stage.value} in {flow.kind.value}")  # pragma: no mutate


def _found(plan: Plan, record: Record) -> Came:
    """A record found with the flow's key: of the request the flow serves, or of another."""
    same = (record.message.request_hash, record.message.queue) == (plan.request_hash, plan.queue)
    return Came.FOUND if same else Came.OTHER


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
        plan = _client_plan(message, attempt_id, lease_expires_at, settings)
        return Flow(
            plan, Stage.CREATE, self._write(None, Submit(message, attempt_id, lease_expires_at), now), None
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
        plan = _client_plan(message, attempt_id, lease_expires_at, settings)
        return Flow(plan, Stage.PREPARE, self.prepare(message, now), None)

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
        request (body, attributes, group or queue) is a conflict, as for `send`. None: the record's own.
        It answers as the outbox's prepare does when it finds the record (`NEXT`)."""
        request = record.message if request is None else request
        plan = _client_plan(request, attempt_id, lease_expires_at, settings)
        step = NEXT[(Kind.SUBMIT, Stage.PREPARE, _found(plan, record), record.phase)]
        return self._take(plan, step, record, record.message_id, now)

    def start_redrive(
        self, record: Record, attempt_id: str, lease_expires_at: int, now: int, settings: Settings
    ) -> Flow:
        command = Redrive(attempt_id, lease_expires_at, ClaimCause.REDRIVE, settings.max_attempts)
        deadline = lease_expires_at - settings.lease_margin_ms
        plan = Plan(Kind.REDRIVE, attempt_id, lease_expires_at, send_deadline=deadline)
        return Flow(plan, Stage.CLAIM, self._write(record, command, now), record)

    def start_expire(self, record: Record, now: int) -> Flow:
        attempt = _attempt(record)
        return Flow(
            Plan(Kind.EXPIRE, attempt), Stage.EXPIRE, self._write(record, ExpireLease(attempt), now), record
        )

    def start_rearm(self, record: Record, by: str, reason: str, now: int) -> Flow:
        """An operator's re-arm of an exhausted record: one write, conditioned on the record being as
        read (status and version), so a record that changed since it was read is left alone
        (`Result.SUPERSEDED`). Raises `ForbiddenCommand` for a record that is not exhausted."""
        return Flow(Plan(Kind.REARM), Stage.REARM, self._write(record, Rearm(by, reason), now), record)

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
        """The flow after its effect came out as `outcome`: the step `NEXT` names, carried out."""
        effect = flow.effect
        if isinstance(effect, Answer):
            raise ValueError("the flow has finished")  # pragma: no mutate (message text, not contract)
        came, record = came_of(flow, effect, outcome)
        step = NEXT.get((flow.plan.kind, flow.stage, came, phase_of(record)))
        if step is None:
            raise _cannot(came.name, flow)  # pragma: no mutate (message text, not contract)
        record = flow.record if isinstance(step, End) and step.held else record
        return self._take(flow.plan, step, record, effect.message_id, now, outcome, flow.failure)

    def _take(
        self,
        plan: Plan,
        step: Step,
        record: Record | None,
        message_id: str,
        now: int,
        outcome: Outcome | None = None,
        sending: Failure | None = None,
    ) -> Flow:
        """The flow that `step` makes: `record` is the record as the flow now knows it, `outcome` what
        came of its last effect, `sending` the send failure it is rolling back."""
        attempt, lease = plan.attempt_id, plan.lease_expires_at
        match step:
            case End(failure=failure):
                if failure is Whose.SEND:
                    failure = sending
                elif failure is Whose.OUTCOME:  # only on Came.FAILED: what came is the failure
                    assert isinstance(outcome, Failure)
                    failure = outcome
                answer = Answer(
                    step.result, message_id, record, failure, step.unconfirmed, step.rollback_failed
                )
                return Flow(plan, Stage.DONE, answer, record)  # a send's failure is in the answer
            case Claim(cause=cause) if record is not None and attempt is not None and lease is not None:
                command: Command = Redrive(attempt, lease, cause, plan.max_attempts)
                return Flow(plan, Stage.CLAIM, self._write(record, command, now), record)
            case SendMessage() if record is not None and record.attempt_id is not None:
                send = Send(record.message, record.attempt_id, plan.send_deadline)
                return Flow(plan, Stage.SEND, send, record)
            case Confirm() if record is not None and attempt is not None and isinstance(outcome, Sent):
                command = ConfirmSend(attempt, outcome.sqs_message_id)
                return Flow(plan, Stage.CONFIRM, self._write(record, command, now), record)
            case RollBack() if record is not None and attempt is not None and isinstance(outcome, Failure):
                command = ReportSendFailure(attempt, outcome.category, outcome.code)
                return Flow(plan, Stage.ROLLBACK, self._write(record, command, now), record, outcome)
        raise ValueError(f"{step!r} cannot be taken by a {plan.kind.value} flow here")  # pragma: no mutate

    def _write(self, record: Record | None, command: Command, now: int) -> Write:
        events = decide(record, command, now, self.table)
        after = evolve_all(record, events)
        assert after is not None
        return Write(record, events, after)


def _client_plan(message: Message, attempt_id: str, lease_expires_at: int, settings: Settings) -> Plan:
    """A client's request (`send`, the outbox's, a dispatch): it replays against `message`."""
    send_deadline = lease_expires_at - settings.lease_margin_ms
    return Plan(
        Kind.SUBMIT,
        attempt_id,
        lease_expires_at,
        settings.max_attempts,
        send_deadline,
        message.request_hash,
        message.queue,
    )


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


def _attempt(record: Record) -> str:
    assert record.attempt_id is not None  # an in-flight record's
    return record.attempt_id


def _lease(record: Record) -> int:
    assert record.lease_expires_at is not None  # an in-flight record's
    return record.lease_expires_at
