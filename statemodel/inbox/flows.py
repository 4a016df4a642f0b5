"""The inbox's flows, sans I/O: one delivery of one message, in either mode, as step functions.

A flow never performs anything. `start(mode, ...)` (`start_guarded`, `start_transactional`) returns
an `InboxFlow` whose `effect` says what to do next — read the record (`Read`), make a conditional
write (`InboxWrite`), run the team's handler (`Invoke`), or answer (`InboxAnswer`) — and
`advance(flow, outcome, now)` takes what came of it and returns the next flow.
`statemodel.inbox.interpreter` carries the effects out on the inbox's ports: DynamoDB and the team's
handler in `adapters.runtime.inbox`, the in-memory world in `statemodel.checker.inbox_space`.

Two tables hold the rules, and `InboxFlows` holds both. Every event a flow writes comes from
`decide`, over the transition table (`statemodel.inbox.table`); what a flow does next (read, claim,
run the handler, commit, count a failure, complete, release, or answer, and how) is the entry of
`NEXT`, compiled from `RULES`, for its mode, stage, what came of its effect and the record as it
now knows it, which `InboxFlows.advance` looks up and carries out. Why each entry is what it is:
the rules above `RULES`, and:

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
import functools

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
from statemodel.rules import compile_rules


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
class InboxPlan:
    """What a flow was started with: the same at every step of it."""

    mode: Mode
    message: InboxMessage
    attempt_id: str | None = None  # None: an operator's re-arm
    deadline: int = 0  # the invocation's end: no handler starts after it
    max_receives: int = 0
    lease_margin_ms: int = 0

    @property
    def lease_expires_at(self) -> int:
        """A guarded claim's lease (`lease_expiry`)."""
        return self.deadline + self.lease_margin_ms


@attrs.frozen
class InboxFlow:
    plan: InboxPlan
    stage: Stage
    effect: InboxEffect
    record: InboxRecord | None  # the record as this flow last saw or wrote it
    reclaimed: bool = False  # a guarded claim already tried again on the record its first one found
    failure: Failure | None = None  # the handler's (else a failed request's)
    ran: bool = False  # the handler ran

    @property
    def mode(self) -> Mode:
        return self.plan.mode

    @property
    def message(self) -> InboxMessage:
        return self.plan.message

    @property
    def attempt_id(self) -> str | None:
        return self.plan.attempt_id

    @property
    def deadline(self) -> int:
        return self.plan.deadline

    @property
    def lease_expires_at(self) -> int:
        return self.plan.lease_expires_at

    @property
    def done(self) -> bool:
        return self.stage is Stage.DONE

    @property
    def answer(self) -> InboxAnswer:
        assert isinstance(self.effect, InboxAnswer), "the flow has not finished"
        return self.effect


def idempotency_key(message: InboxMessage) -> str:
    """The key the handler gets: the same for every delivery of the message, and for nothing else."""
    return message.message_id


# ---- what a flow does next: the table ------------------------------------------------------------
#
# Rules (`RULES` says them all; `InboxFlows.advance` only looks them up and carries them out):
#
# * A flow's next step depends on its mode, its stage, what came of its effect (`Came`) and the
#   record as it now knows it (`Seen`): the one its read found, its write left or its write's failed
#   condition found, or (a handler's answer, a failed request) the one it knew before.
# * A write that fails its condition but finds exactly its own intended result landed on an earlier
#   try the caller did not see (botocore retried it): it came out WRITTEN.
# * A record found DONE is answered DUPLICATE and FAILED is answered GIVEN_UP: nothing runs. A
#   transactional read that finds a guarded claim (PROCESSING) answers BUSY: it waits for it.
# * A guarded claim that finds a claim under a live lease answers BUSY; one that finds a claim whose
#   lease ran out (its holder crashed or overran), or a WAITING record, claims it again — once: a
#   flow whose second claim finds the record moved again answers BUSY and comes back later.
# * A handler starts only within its invocation's deadline; past it, the flow answers what its
#   `RunHandler` names instead (RETRY): a claim that landed late keeps its lease until it expires,
#   and the next delivery takes it over.
# * The handler's answer is written: transactional, its effect committed with the record (DONE) or a
#   failed receive counted; guarded, the claim completed with its result (DONE) or released. A
#   commit the effect's own condition cancelled counts a failed receive too. A failed receive or a
#   release that leaves no receive ends FAILED: GIVEN_UP; else RETRY.
# * A commit or a failed receive whose condition fails answers DUPLICATE if the record is DONE (a
#   concurrent delivery committed), else RETRY. A completion or a release whose condition fails was
#   fenced out: the claim was taken over after its lease ran out (LOST).
# * A read or a write that failed outright answers RETRY. If a commit or a completion landed all the
#   same (ambiguous), the record is DONE (the next delivery reads it); a claim, under this flow's
#   lease (the next delivery after it expires takes it over); a failed receive, counted.
# * An operator's re-arm answers REARMED, or SUPERSEDED if the record changed since it was read.
# * Anything else (a read answered by a write's outcome, say) has no entry: `advance` raises.


class Came(enum.Enum):
    """What came of a flow's effect, as `NEXT` tells outcomes apart."""

    FOUND = "the read found the record (or none)"
    WRITTEN = "the write landed (or an earlier try of it did)"
    MOVED = "the write's condition failed: the record is not as the flow last saw it"
    HANDLED = "the handler returned"
    REFUSED = "the handler failed, or the effect's own condition cancelled the commit"
    FAILED = "the read or the write failed outright"


class Seen(enum.Enum):
    """The record as the flow now knows it: its phase, and a claim's lease as of now."""

    ABSENT = "none"
    HELD = "PROCESSING (lease live)"
    EXPIRED = "PROCESSING (lease run out)"
    WAITING = "WAITING"
    DONE = "DONE"
    FAILED = "FAILED"


def seen(record: InboxRecord | None, now: int) -> Seen:
    if record is None:
        return Seen.ABSENT
    if record.phase is InboxPhase.PROCESSING:
        lease = record.lease_expires_at  # a claim's: every PROCESSING record has one
        return Seen.HELD if lease is not None and now < lease else Seen.EXPIRED
    return Seen[record.phase.name]


@attrs.frozen
class End:
    """Answer and stop. `failure`: the answer's own (else the flow's: the handler's, or the request's)."""

    result: InboxResult
    failure: Failure | None = None
    uncompleted: bool = False  # the handler ran, but its completion (or commit) did not land


@attrs.frozen
class ReadRecord:
    """Read the record (transactional)."""


@attrs.frozen
class TakeClaim:
    """Claim the message under the flow's lease: the first claim on no record (creating it, or finding
    it), a second on the record the first found; a flow that claimed twice answers `again`."""

    again: End


@attrs.frozen
class RunHandler:
    """Run the team's handler, if the invocation's deadline has not passed; past it, answer `late`."""

    late: End


@attrs.frozen
class CommitEffect:
    """Write `Commit` in the team's transaction, beside the handler's effect."""


@attrs.frozen
class CountFailure:
    """Write `RecordFailure`: a failed receive counted, with the flow's failure."""


@attrs.frozen
class CompleteClaim:
    """Write `Complete` under the flow's claim, with the handler's result."""


@attrs.frozen
class ReleaseClaim:
    """Write `Release` under the flow's claim, with the handler's failure."""


Step = End | ReadRecord | TakeClaim | RunHandler | CommitEffect | CountFailure | CompleteClaim | ReleaseClaim
Key = tuple[Mode, Stage, Came, Seen]
# A rule of `NEXT`: each of its first four is one value or a tuple of values it applies to.
Rule = tuple[
    Mode | tuple[Mode, ...],
    Stage | tuple[Stage, ...],
    Came | tuple[Came, ...],
    Seen | tuple[Seen, ...],
    Step,
]

_T, _G, _BOTH = Mode.TRANSACTIONAL, Mode.GUARDED, tuple(Mode)
_ANY = tuple(Seen)
_PROCESSING = (Seen.HELD, Seen.EXPIRED)
_DUPLICATE = End(InboxResult.DUPLICATE)
_GIVEN_UP = End(InboxResult.GIVEN_UP)
_BUSY = End(InboxResult.BUSY)
_RETRY = End(InboxResult.RETRY)
_UNCOMPLETED = End(InboxResult.RETRY, uncompleted=True)
_RUN = RunHandler(End(InboxResult.RETRY, Failure(ErrorCategory.RETRYABLE, "DeadlineExceeded")))

# How a delivery starts, by its mode: a guarded claim creates the record or finds it.
FIRST: dict[Mode, Step] = {Mode.TRANSACTIONAL: ReadRecord(), Mode.GUARDED: TakeClaim(again=_BUSY)}

# (modes, stages, what came, the record as the flow now knows it, the next step); where two rules
# name one key, the first holds.
RULES: tuple[Rule, ...] = (
    # transactional: read, run the handler, commit its effect with the record or count a failure
    (_T, Stage.READ, Came.FOUND, Seen.DONE, _DUPLICATE),
    (_T, Stage.READ, Came.FOUND, Seen.FAILED, _GIVEN_UP),
    (_T, Stage.READ, Came.FOUND, _PROCESSING, _BUSY),  # a guarded claim's: wait for it
    (_T, Stage.READ, Came.FOUND, (Seen.ABSENT, Seen.WAITING), _RUN),
    (_T, Stage.HANDLER, Came.HANDLED, _ANY, CommitEffect()),
    (_T, (Stage.HANDLER, Stage.COMMIT), Came.REFUSED, _ANY, CountFailure()),
    (_T, Stage.COMMIT, Came.WRITTEN, _ANY, End(InboxResult.DONE)),
    (_T, (Stage.COMMIT, Stage.FAILURE), Came.MOVED, Seen.DONE, _DUPLICATE),
    (_T, Stage.COMMIT, Came.MOVED, _ANY, _UNCOMPLETED),
    (_T, Stage.FAILURE, Came.MOVED, _ANY, _RETRY),
    (_T, Stage.FAILURE, Came.WRITTEN, Seen.FAILED, _GIVEN_UP),
    (_T, Stage.FAILURE, Came.WRITTEN, _ANY, _RETRY),
    # guarded: claim, run the handler, complete or release the claim
    (_G, Stage.CLAIM, Came.WRITTEN, Seen.FAILED, _GIVEN_UP),  # the claim had no receive left
    (_G, Stage.CLAIM, Came.WRITTEN, _ANY, _RUN),
    (_G, Stage.CLAIM, Came.MOVED, Seen.DONE, _DUPLICATE),
    (_G, Stage.CLAIM, Came.MOVED, Seen.FAILED, _GIVEN_UP),
    (_G, Stage.CLAIM, Came.MOVED, Seen.HELD, _BUSY),
    (_G, Stage.CLAIM, Came.MOVED, (Seen.EXPIRED, Seen.WAITING), TakeClaim(again=_BUSY)),
    # a second claim whose record vanished after the first found it (an operator's delete, a DONE
    # record's TTL): nothing claimed, nothing run; the next receive claims anew
    (_G, Stage.CLAIM, Came.MOVED, Seen.ABSENT, _RETRY),
    (_G, Stage.HANDLER, Came.HANDLED, _ANY, CompleteClaim()),
    (_G, Stage.HANDLER, Came.REFUSED, _ANY, ReleaseClaim()),
    (_G, Stage.COMPLETE, Came.WRITTEN, _ANY, End(InboxResult.DONE)),
    (_G, (Stage.COMPLETE, Stage.RELEASE), Came.MOVED, _ANY, End(InboxResult.LOST, uncompleted=True)),
    (_G, Stage.RELEASE, Came.WRITTEN, Seen.FAILED, _GIVEN_UP),
    (_G, Stage.RELEASE, Came.WRITTEN, _ANY, _RETRY),
    # an operator's re-arm
    (_BOTH, Stage.REARM, Came.WRITTEN, _ANY, End(InboxResult.REARMED)),
    (_BOTH, Stage.REARM, Came.MOVED, _ANY, End(InboxResult.SUPERSEDED)),
    # a read or a write that failed outright
    (_BOTH, (Stage.COMMIT, Stage.COMPLETE), Came.FAILED, _ANY, _UNCOMPLETED),
    (_BOTH, tuple(Stage), Came.FAILED, _ANY, _RETRY),
)  # fmt: skip


NEXT: dict[Key, Step] = compile_rules(RULES)


def came_of(flow: InboxFlow, outcome: InboxOutcome) -> tuple[Came, InboxRecord | None]:
    """What came of the flow's effect, and the record as the flow now knows it."""
    effect = flow.effect
    match outcome:
        case Found(record=record):
            return Came.FOUND, record
        case Handled():
            return Came.HANDLED, flow.record
        case HandlerError():
            return Came.REFUSED, flow.record
        case Failure():
            return Came.FAILED, flow.record
        case Written() if isinstance(effect, InboxWrite):
            return Came.WRITTEN, effect.after
        case Conflict(current=current) if isinstance(effect, InboxWrite):
            if current == effect.after:
                return Came.WRITTEN, current  # an earlier try landed; its retry found its own result
            return Came.MOVED, current
    raise _cannot(type(outcome).__name__, flow)


def _cannot(what: str, flow: InboxFlow) -> ValueError:
    """An outcome the table has no entry for (the error's type is the contract; its words are not)."""
    return ValueError(f"{what} cannot answer {flow.stage.value} in {flow.mode.value}")


@attrs.frozen
class InboxFlows:
    """The inbox's flows over two tables: `decide` picks every write's events from `table` (the
    transition table), and what a flow does next is the entry of `rules` (compiled to `next`).

    The adapters use `INBOX_FLOWS`, over both tables as written (the module's `start_*` and `advance`
    are its methods). The explorer runs a model mutant as another `InboxFlows` — other rules, another
    table, or a subclass with one method swapped — so a mutant enters through this one object."""

    table: InboxTable = INBOX_TRANSITIONS
    rules: tuple[Rule, ...] = RULES
    next: dict[Key, Step] = attrs.field(init=False, eq=False, repr=False)

    @next.default
    def _compiled(self) -> dict[Key, Step]:
        return NEXT if self.rules is RULES else compile_rules(self.rules)

    def start(
        self,
        mode: Mode,
        message: InboxMessage,
        attempt_id: str,
        now: int,
        deadline: int,
        settings: InboxSettings,
    ) -> InboxFlow:
        """A delivery in `mode`: transactional, read, run the handler, commit its effect with the
        record; guarded, claim (creating the record if new), run the handler, complete or release."""
        plan = InboxPlan(mode, message, attempt_id, deadline, settings.max_receives, settings.lease_margin_ms)
        return self._take(plan, FIRST[mode], now, None)

    def start_rearm(self, record: InboxRecord, by: str, reason: str, now: int) -> InboxFlow:
        """An operator's re-arm of a FAILED message: one write conditioned on the record as read.
        Raises `ForbiddenCommand` for a record that is not FAILED."""
        plan = InboxPlan(Mode.GUARDED, record.message)
        return InboxFlow(plan, Stage.REARM, self._write(record, RearmMessage(by, reason), now), record)

    def advance(self, flow: InboxFlow, outcome: InboxOutcome, now: int) -> InboxFlow:
        """The flow after its effect came out as `outcome`: the step `next` names, carried out."""
        if isinstance(flow.effect, InboxAnswer):
            raise ValueError("the flow has finished")
        came, record = came_of(flow, outcome)
        step = self.next.get((flow.mode, flow.stage, came, seen(record, now)))
        if step is None:
            raise _cannot(type(outcome).__name__, flow)
        failure = flow.failure
        if isinstance(outcome, HandlerError):
            failure = outcome.failure
        elif isinstance(outcome, Failure):
            failure = failure or outcome
        ran = flow.ran or came in (Came.HANDLED, Came.REFUSED)
        return self._take(flow.plan, step, now, record, outcome, flow.reclaimed, failure, ran)

    def _take(
        self,
        plan: InboxPlan,
        step: Step,
        now: int,
        record: InboxRecord | None,
        outcome: InboxOutcome | None = None,
        reclaimed: bool = False,
        failure: Failure | None = None,
        ran: bool = False,
    ) -> InboxFlow:
        """The flow that `step` makes: `record` is the record as the flow now knows it, `outcome` what
        came of its last effect, `failure` the flow's (the handler's, else a failed request's)."""
        if isinstance(step, RunHandler) and now > plan.deadline:
            step = step.late  # past the invocation's deadline: no handler starts
        if isinstance(step, TakeClaim) and reclaimed:
            step = step.again  # the flow claimed twice already
        attempt, message = plan.attempt_id, plan.message
        stage: Stage
        effect: InboxEffect
        command: InboxCommand | None = None
        match step:
            case End(result=result, uncompleted=uncompleted):
                answer_failure = step.failure or failure
                effect = InboxAnswer(result, message.message_id, record, answer_failure, ran, uncompleted)
                stage = Stage.DONE
            case ReadRecord():
                stage, effect = Stage.READ, Read(message.message_id)
            case RunHandler() if attempt is not None:
                invoke = Invoke(message.message_id, attempt, idempotency_key(message), plan.deadline)
                stage, effect = Stage.HANDLER, invoke
            case TakeClaim() if attempt is not None:
                stage, command = (
                    Stage.CLAIM,
                    Claim(message, attempt, plan.lease_expires_at, plan.max_receives),
                )
                reclaimed = record is not None  # a claim of the record the first one found
            case CommitEffect() if attempt is not None:
                stage, command = Stage.COMMIT, Commit(message, attempt)
            case CountFailure() if attempt is not None and failure is not None:
                stage = Stage.FAILURE
                command = RecordFailure(message, attempt, failure.category, failure.code, plan.max_receives)
            case CompleteClaim() if attempt is not None and isinstance(outcome, Handled):
                stage, command = Stage.COMPLETE, Complete(attempt, outcome.result)
            case ReleaseClaim() if attempt is not None and failure is not None:
                stage = Stage.RELEASE
                command = Release(attempt, failure.category, failure.code, plan.max_receives)
            case _:
                raise ValueError(f"{step!r} cannot be taken by a {plan.mode.value} flow here")
        if command is not None:
            effect = self._write(record, command, now, commit=stage is Stage.COMMIT)
        return InboxFlow(plan, stage, effect, record, reclaimed, failure, ran)

    def _write(
        self, record: InboxRecord | None, command: InboxCommand, now: int, commit: bool = False
    ) -> InboxWrite:
        events = decide(record, command, now, self.table)
        after = evolve_all(record, events)
        assert after is not None
        return InboxWrite(record, events, after, commit)


INBOX_FLOWS = InboxFlows()  # over the inbox's tables as written: what the adapters run
start = INBOX_FLOWS.start
start_guarded = functools.partial(start, Mode.GUARDED)
start_transactional = functools.partial(start, Mode.TRANSACTIONAL)
start_rearm = INBOX_FLOWS.start_rearm
advance = INBOX_FLOWS.advance
