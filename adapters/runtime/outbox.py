"""`Outbox`: sendguard as a library, from any code and on the team's own table.

Three ways in, all carried by the same pure flows (`statemodel.flows`) as sendguard's own handler:

* `send(key, body)`: create the record and claim it in one conditional write, send, confirm;
* `pending_put(key, body)` in the team's own `transact_write_items`, then `dispatch(entry)`: the
  transactional outbox — the team's domain writes and the PENDING record commit together, and the
  record carries what the reconciler needs to send it if `dispatch` is never called;
* `reconcile()`: one reconciler pass (what the scheduled reconciler runs);
* `rearm(key, reason)`: an operator's re-arm of an exhausted record (`sendguard redrive --exhausted`
  does the same for each record it finds).

A key is a string, or — on a table with a sort key — a (partition value, sort value) pair: then the
team's own row is the record (`statemodel.keys`). Every way in judges a retry of a key alike: the
same request (body, attributes, group, queue) is accepted and sends nothing new, another is a
conflict (409), one in flight is retryable, an exhausted one is not.

Why no request lands after the lease that protects its record: a claim's lease ends `lease_margin`
after the end of the invocation that holds it (`statemodel.flows.lease_expiry`: the context's
remaining time, or `deadline_ms`). Every AWS request of the invocation is an attempt that
`adapters.runtime.clients` lets start only if its connect timeout plus its read timeout — the read
timeout shrunk to what is left — ends by the call's deadline, which is never after the invocation's
end; the client abandons the attempt when those timeouts run out. So by the invocation's end nothing
of it is still waited for, and the margin is what a request the client abandoned has to land in. A
late DynamoDB write cannot do harm anyway (each is conditioned on the version it read); the margin is
what keeps a late SendMessage from landing after the reconciler re-drove the record.
"""

from __future__ import annotations

import contextlib
import enum
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from adapters.runtime.classify import VALIDATION_EXCEPTION, Classified
from adapters.runtime.clients import (
    ANSWER_RESERVE_MS,
    ANSWER_RESERVE_SHARE,
    ATTEMPT_BUDGET_MS,
    now_ms,
    remaining_ms,
)
from adapters.runtime.codec import created_request, is_record, put_request, serialize
from adapters.runtime.config import (
    DEFAULT_BODY_PREFIX,
    MAX_RETENTION_DAYS,
    MAX_WORKERS,
    Config,
    ConfigError,
    queue_urls,
)
from adapters.runtime.config import body_bucket as bucket_name
from adapters.runtime.config import body_prefix as prefix_of
from adapters.runtime.layout import TableLayout, given_layout
from adapters.runtime.logs import get_logger, logging_to
from adapters.runtime.metrics import Tally
from adapters.runtime.runner import Aws, log_failure, run_flow
from adapters.runtime.store import NotARecord
from statemodel.categories import ErrorCategory, Failure, consequence
from statemodel.flows import (
    Answer,
    Result,
    Settings,
    lease_expiry,
    prepare,
    start_dispatch,
    start_submit,
)
from statemodel.keys import Key
from statemodel.records import Record
from statemodel.sizes import (
    MAX_ATTEMPTS_LIMIT,
    SQS_MAX_ID_CHARS,
    item_name_problem,
    item_size,
    record_extra_problem,
)
from statemodel.stored import Stored
from statemodel.validation import (
    PAYLOAD_TOO_LARGE,
    Rejection,
    Request,
    new_message,
    parse_key,
    parse_message,
    valid_token,
)

if TYPE_CHECKING:  # a submit needs neither the reconciler nor the re-arm: loaded when called
    import boto3
    from botocore.config import Config as BotoConfig

    from adapters.runtime.rearm import RearmResult
    from adapters.runtime.reconciler import PassSummary
    from adapters.runtime.table_check import RefusalCheck


KeyLike = str | Key | tuple[str, str]  # a key as callers give it (`statemodel.validation.parse_key`)


class InvalidMessage(ValueError):
    """The key, body, attributes, group id or item cannot be sent; nothing was written."""


class OutboxError(Exception):
    """A record could not be read or written (an AWS failure, already classified and logged), or
    the layout does not fit the table (`LayoutMismatch`)."""

    def __init__(self, message: str, *, category: str, code: str, http_status: int) -> None:
        super().__init__(message)
        self.category, self.code, self.http_status = category, code, http_status

    @property
    def retryable(self) -> bool:
        return consequence(self.category).retry_after


class LayoutMismatch(ConfigError, OutboxError):
    """The layout does not fit the table: DynamoDB refused the key (a ValidationException) and
    DescribeTable says why; the message names the table, its key, the layout's and what to set (or,
    from `reconcile`, the `attention` index the table lacks, and how to add it). Both
    a ConfigError (what to set) and an OutboxError (permanent, 500, its `code` the refusal's), so that
    a caller's `except` clause for either catches it; nothing was written."""

    def __init__(self, problem: str) -> None:
        category = ErrorCategory.PERMANENT
        status = consequence(category).http_status
        OutboxError.__init__(self, problem, category=category, code=VALIDATION_EXCEPTION, http_status=status)


class SendOutcome(enum.StrEnum):
    """What a `send` or a `dispatch` came to (string-valued: `outcome == "sent"` keeps working)."""

    SENT = "sent"  # SQS accepted the message
    ALREADY_QUEUED = "already_queued"  # a retry of a key already sent: nothing sent again
    CONFLICT = "conflict"  # the key holds another request; nothing sent
    FAILED = "failed"  # SYSTEM_ERROR; the record is left recoverable


_SEND_OUTCOMES = {
    Result.SENT: SendOutcome.SENT,
    Result.ALREADY_QUEUED: SendOutcome.ALREADY_QUEUED,
    Result.CONFLICT: SendOutcome.CONFLICT,
}


@attrs.frozen
class SendResult:
    """What came of a `send` or a `dispatch`. `http_status` is what sendguard's own handler answers
    for the same outcome: 202 accepted, 409 conflict, 503 retry later, 500 will not work."""

    accepted: bool  # SQS has the message
    retryable: bool  # not accepted, and trying again (same key, same body) may help
    http_status: int
    message_id: str  # the record key's message id (`Key.message_id`): the SQS `message_id` attribute
    outcome: SendOutcome = attrs.field(converter=SendOutcome)  # a team's handler may give the string
    error_code: str | None = None  # why not: an AWS error code, InProgress, RedriveExhausted, …
    correlation_id: str = ""
    unconfirmed: bool = False  # accepted, but the confirm write did not land (the reconciler mends it)


@attrs.frozen
class RecordView:
    """A record as `get` reads it."""

    message_id: str
    status: str  # PENDING | QUEUED, the persisted status
    delivery: str  # pending | in_flight | confirmed | exhausted
    attempts: int
    created_at: int  # epoch ms
    updated_at: int
    correlation_id: str
    last_error: str | None = None  # "category:code" of the last failed send
    caller: str | None = None  # who sent it, where the API keeps callers apart


class Outbox:
    """sendguard on a table and a queue. Make one per container (it holds the boto3 clients)."""

    def __init__(
        self,
        table: str,
        queue_url: str,
        *,
        layout: TableLayout | None = None,
        max_attempts: int = 10,
        redrive_after_seconds: int = 60,
        lease_margin_seconds: int = 30,
        aws_max_attempts: int = 3,
        reconciler_workers: int = 1,
        body_bucket: str | None = None,
        body_prefix: str = DEFAULT_BODY_PREFIX,
        reconcile_queues: Sequence[str] = (),
        retention_days: int = 0,
        logger: Any = None,
        session: boto3.Session | None = None,
        botocore_config: BotoConfig | None = None,
    ) -> None:
        """`queue_url`: where this Outbox's records go (each record keeps it). `reconciler_workers`:
        the threads one `reconcile` pass re-drives with (1 to 10); the index's shards are the
        layout's (`TableLayout.shards`). `body_bucket`: an S3 bucket for bodies too large for a
        DynamoDB item (up to SQS's 1 MiB; without it, up to `statemodel.sizes.MAX_MESSAGE_BYTES`),
        their keys under `body_prefix`. `reconcile_queues`: other queues (of other Outboxes on this
        table) whose records `reconcile` re-drives too, each to its own queue; a record of a queue
        it does not serve is left to that queue's reconciler, counted and logged. `retention_days`:
        when a confirmed record and its body item may go, in days after the message's acceptance —
        the table's TTL must be on `sg_expires_at` (0, the default: never; docs/library.md). `session`: the
        team's boto3 Session (credentials, region, endpoints), else the environment's;
        `botocore_config`: the team's client settings, merged under sendguard's timeouts and retries
        (`adapters.runtime.clients.make_client`)."""
        layout = given_layout(layout)
        if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:  # the history, and so the item, stays bounded
            raise ValueError(f"max_attempts={max_attempts} is outside 1..{MAX_ATTEMPTS_LIMIT}")
        if not 1 <= reconciler_workers <= MAX_WORKERS:
            raise ValueError(f"reconciler_workers={reconciler_workers} is outside 1..{MAX_WORKERS}")
        if not 0 <= retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(f"retention_days={retention_days} is outside 0..{MAX_RETENTION_DAYS}")
        settings = Settings(max_attempts, 1000 * redrive_after_seconds, 1000 * lease_margin_seconds)
        config = Config(
            table,
            queue_url,
            settings,
            aws_max_attempts,
            layout=layout,
            reconciler_workers=reconciler_workers,
            body_bucket=bucket_name(body_bucket, "body_bucket"),  # a ConfigError is a ValueError
            body_prefix=prefix_of(body_prefix, "body_prefix"),
            other_queues=queue_urls(",".join(reconcile_queues), "reconcile_queues"),
            retention_days=retention_days,
        )
        self._setup(config, Aws.from_config(config, session, botocore_config), logger, in_code=True)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        logger: Any = None,
        session: boto3.Session | None = None,
        botocore_config: BotoConfig | None = None,
    ) -> Outbox:
        """From the `SENDGUARD_*` variables (docs/library.md lists them); raises ConfigError."""
        config = Config.from_env(environ)
        return cls.from_config(config, Aws.from_config(config, session, botocore_config), logger=logger)

    @classmethod
    def from_config(cls, config: Config, aws: Aws | None = None, *, logger: Any = None) -> Outbox:
        outbox = cls.__new__(cls)
        outbox._setup(config, aws or Aws.from_config(config), logger)
        return outbox

    def _setup(self, config: Config, aws: Aws, logger: Any, *, in_code: bool = False) -> None:
        self._config, self._aws, self._logger = config, aws, logger
        # What DescribeTable says of the layout (by `index`: and of the `attention` index), once
        # DynamoDB refused a request (`explain_refusal`, `reconcile`); its fix in the terms the
        # layout came in: a TableLayout in code, or the variables.
        self._refusal_checks: dict[bool, RefusalCheck] = {}
        self._layout_in_code = in_code

    @property
    def layout(self) -> TableLayout:
        return self._config.layout

    @property
    def table(self) -> str:
        """The table this Outbox's records are in."""
        return self._config.table

    @property
    def queue_url(self) -> str:
        """The queue this Outbox sends to."""
        return self._config.queue_url

    @property
    def settings(self) -> Settings:
        """The protocol's settings this Outbox runs with (max attempts, re-drive delay, lease margin)."""
        return self._config.settings

    # ---- send ------------------------------------------------------------------------------------

    def send(
        self,
        key: KeyLike,
        body: str,
        *,
        attributes: Mapping[str, str] | None = None,
        item: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        context: object = None,
        deadline_ms: int | None = None,
        group_id: str | None = None,
    ) -> SendResult:
        """Create the record `key` and send `body`: accepted once SQS has it. The same key with the
        same body and attributes again is accepted without a second message; another body is a
        conflict. `item`: the team's own attributes, written with the record (on a composite key,
        the rest of the team's row)."""
        record_key, request, team_item = self._valid(key, body, attributes, item, group_id)
        correlation = _correlation(correlation_id)
        answer = self._submit(
            request,
            record_key,
            correlation_id=correlation,
            item=team_item,
            context=context,
            deadline_ms=deadline_ms,
        )
        result = _result(answer, correlation)
        self._refused(result.error_code, _times(context, deadline_ms)[2])
        return result

    def _submit(
        self,
        request: Request,
        key: Key | str,
        *,
        correlation_id: str,
        idempotency_key: str | None = None,
        item: Mapping[str, Any] | None = None,
        context: object = None,
        deadline_ms: int | None = None,
        tally: Tally | None = None,
        caller: str | None = None,
    ) -> Answer:
        """`send`'s flow, run for a request already validated; its `Answer` as the flow gave it, which
        sendguard's own HTTP handler answers from (it parses its JSON envelope with
        `statemodel.validation.parse_submission` and comes in here). `tally` counts what happened,
        for the handler's metrics. `key`: a checked key (a string: a plain one).
        `caller`: who sends it, kept in the record where the API keeps callers apart."""
        key = Key(key) if isinstance(key, str) else key
        message_id = key.message_id
        attempt_id = str(uuid.uuid4())
        with self._scope(correlation_id, message_id, attempt_id):
            now, end, deadline = _times(context, deadline_ms)
            message = new_message(
                request,
                message_id,
                correlation_id,
                now,
                idempotency_key,
                key=key,
                queue=self._config.queue_url,
                caller=caller,
            )
            lease = lease_expiry(now, end - now, self._config.settings)
            flow = start_submit(message, attempt_id, lease, now, self._config.settings)
            try:
                answer = run_flow(flow, self._aws.with_item(item), deadline, tally=tally)
            except NotARecord:  # the create found the team's own item under the key
                raise InvalidMessage(
                    f"the table already holds an item with key {message_id!r} that is not a sendguard "
                    "record; nothing was written (create the row and its record together: send with "
                    "item=, or pending_put in the transaction that writes the row)"
                ) from None
        return answer

    # ---- the transactional outbox ----------------------------------------------------------------

    def pending_put(
        self,
        key: KeyLike,
        body: str,
        *,
        attributes: Mapping[str, str] | None = None,
        item: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        group_id: str | None = None,
    ) -> dict[str, Any]:
        """A `{"Put": …}` entry for the team's own `transact_write_items`: the PENDING record, with
        the team's `item` attributes, created only if no item has this key. A body too large to
        keep in the record (`adapters.runtime.bodies`) is written here, first, to where the record
        will name it: OutboxError if that fails (nothing else is written), and an orphan nothing
        reads if the transaction then does not commit. Nothing else is written here. Give the entry
        to `dispatch`; if the transaction is cancelled because the record exists already (a retry),
        `record_exists` says so, and `dispatch(entry)` judges the retry as `send` would."""
        record_key, request, team_item = self._valid(key, body, attributes, item, group_id)
        message_id = record_key.message_id
        now = now_ms()
        message = new_message(
            request,
            message_id,
            _correlation(correlation_id),
            now,
            key=record_key,
            queue=self._config.queue_url,
        )
        write = prepare(message, now)
        store = self._aws.dynamodb.with_item(team_item)
        with self._scope(message.correlation_id, message_id, None):
            created, call = store.create_item(write, now + 2 * ATTEMPT_BUDGET_MS)
            if isinstance(created, Classified):
                assert call is not None
                log_failure(get_logger(), call, None)
                self._refused(created.code, now_ms() + 2 * ATTEMPT_BUDGET_MS)
                raise _unavailable(
                    f"the body of {message_id!r} could not be written now", created.category, created.code
                )
        return {"Put": put_request(created, self.layout, self._config.table)}

    def dispatch(
        self, entry: Mapping[str, Any] | KeyLike, *, context: object = None, deadline_ms: int | None = None
    ) -> SendResult:
        """Claim the PENDING record that `entry` (what `pending_put` returned) wrote, send it and
        confirm it. Judged as `send` is: a record holding another request (body, attributes, group
        or queue: a retry of the key with something else) is a conflict (409), nothing sent; a
        record already sent is accepted without a second message; one in flight elsewhere is
        retryable. Given a key instead of the entry, it answers for the record as it is (it has no
        request to compare)."""
        intended = _entry_request(entry)
        given = _entry_key(entry, self.layout) if isinstance(entry, Mapping) else entry
        record_key = self._key(given)
        message_id = record_key.message_id
        attempt_id = str(uuid.uuid4())
        with self._scope(None, message_id, attempt_id):
            now, end, deadline = _times(context, deadline_ms)
            stored = self._read(record_key, deadline)
            if isinstance(stored, Failure):
                failed = consequence(stored.category)
                return SendResult(
                    False, failed.retry_after, failed.http_status, message_id, SendOutcome.FAILED, stored.code
                )
            if stored is None:
                raise InvalidMessage(
                    f"no sendguard record has key {message_id!r}: write it with pending_put in your "
                    "transaction first (did the transaction commit?)"
                )
            record = stored.record
            correlation_id = record.message.correlation_id
            request = None
            if intended is not None:
                request = attrs.evolve(record.message, request_hash=intended[0], queue=intended[1])
            with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
                lease = lease_expiry(now, end - now, self._config.settings)
                flow = start_dispatch(record, attempt_id, lease, now, self._config.settings, request=request)
                answer = run_flow(flow, self._aws, deadline)
        result = _result(answer, correlation_id)
        self._refused(result.error_code, deadline)
        return result

    def record_exists(self, error: BaseException, entry: Mapping[str, Any]) -> bool:
        """Whether `error`, raised by the team's `transact_write_items`, is the transaction cancelled
        because `entry`'s record (from `pending_put`) exists already: a retry of its key. Then
        `dispatch(entry)` answers it (202 for the same request, 409 for another); any other error is
        the team's to handle."""
        response = getattr(error, "response", None)
        if not isinstance(response, Mapping) or not isinstance(entry.get("Put"), Mapping):
            return False
        if response.get("Error", {}).get("Code") != "TransactionCanceledException":
            return False
        key = self.layout.key(self.layout.key_of(entry["Put"]["Item"]))
        for reason in response.get("CancellationReasons") or ():
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            item = reason.get("Item") or {}
            if all(item.get(name) == value for name, value in key.items()) and is_record(item):
                return True  # not the team's own row under the key: that one no dispatch can send
        return False

    # ---- reading and reconciling -----------------------------------------------------------------

    def get(self, key: KeyLike) -> RecordView | None:
        """The record `key`, or None. Raises OutboxError when it cannot be read now."""
        record_key = self._key(key)
        message_id = record_key.message_id
        with self._scope(None, message_id, None):
            stored = self._read(record_key, now_ms() + 2 * ATTEMPT_BUDGET_MS)
        if isinstance(stored, Failure):
            what = f"record {message_id!r} cannot be read from table {self.table}: {stored.code}"
            raise _unavailable(what, stored.category, stored.code)
        return None if stored is None else view(stored.record)

    def reconcile(
        self, *, context: object = None, deadline_ms: int | None = None, shards: frozenset[int] | None = None
    ) -> PassSummary:
        """One reconciler pass over the table's sparse index (`shards`: only those of its shards);
        its summary has `as_dict()`. Raises LayoutMismatch (a ConfigError) when DynamoDB refuses the
        index's query because the table has no `attention` index, or the layout does not fit it
        (`explain_refusal`'s check, of the index too): a pass that could read nothing is not a
        summary."""
        from adapters.runtime.reconciler import reconcile_pass

        with self._scope(None, None, None):
            _, _, deadline = _times(context, deadline_ms)

            def refused(code: str) -> None:
                problem = self._refusal_check(index=True).explain(code, deadline_ms=deadline)
                if problem is not None:
                    raise LayoutMismatch(problem)

            return reconcile_pass(self._aws, self._config, deadline, shards=shards, refused=refused)

    def rearm(self, key: KeyLike, reason: str, *, by: str | None = None) -> RearmResult:
        """Re-arm the exhausted record `key`: back to PENDING with a fresh attempt budget, once the
        cause of its exhaustion is fixed; the reconciler re-drives it. `reason` (and `by`, default
        user@host or the Lambda function) go into its history. Raises InvalidRearm for an empty or
        too long `reason`/`by`; a record that is not exhausted, or changed since it was read, is
        left as it is (see the result's `outcome`)."""
        from adapters.runtime.rearm import rearm

        record_key = self._key(key)
        with self._scope(None, record_key.message_id, None):
            return rearm(
                self._aws, record_key, reason=reason, by=by, max_attempts=self._config.settings.max_attempts
            )

    # ---- helpers ---------------------------------------------------------------------------------

    def _key(self, key: object) -> Key:
        """A caller's key, checked against the layout (InvalidMessage: nothing is read or written)."""
        checked = parse_key(key)
        if isinstance(checked, str):
            raise InvalidMessage(checked)
        problem = self.layout.key_problem(checked)
        if problem is not None:
            raise InvalidMessage(f"key {checked.message_id[:64]!r}: {problem}")
        return self.layout.normal(checked)

    def _read(self, key: Key, deadline_ms: int) -> Stored | Failure | None:
        try:
            stored, call = self._aws.store.get(key, deadline_ms)
        except NotARecord:  # the team's own item
            raise InvalidMessage(
                f"the item with key {key.message_id!r} is not a sendguard record (it has no sendguard "
                "bookkeeping) and cannot become one: a message goes under another key, its record "
                "created with its row (send with item=, or pending_put in the row's transaction)"
            ) from None
        if isinstance(stored, Failure):
            log_failure(get_logger(), call, None)
            self._refused(stored.code, deadline_ms)
        return stored

    def _refused(self, code: str | None, deadline_ms: int) -> None:
        """Raises the LayoutMismatch that explains DynamoDB's refusal (`explain_refusal`), if one does."""
        mismatch = self.explain_refusal(code, deadline_ms=deadline_ms)
        if mismatch is not None:
            raise mismatch

    def explain_refusal(self, code: str | None, *, deadline_ms: int) -> LayoutMismatch | None:
        """DynamoDB refused a key (`code` a ValidationException): the LayoutMismatch, naming the
        table, its key and the layout's, when the layout does not fit the table; None when it fits,
        for any other `code`, or when that cannot be told by `deadline_ms` (the refusal is then
        answered as it came).

        The Outbox asks DescribeTable only once DynamoDB refused a key, and keeps a definitive answer
        (`adapters.runtime.table_check.RefusalCheck`: once per Outbox, thread-safe, bounded by the
        deadline; the check that finds a mismatch logs it, `config_invalid`)."""
        problem = self._refusal_check(index=False).explain(code, deadline_ms=deadline_ms)
        return None if problem is None else LayoutMismatch(problem)

    def _refusal_check(self, *, index: bool) -> RefusalCheck:
        """The Outbox's check of its table (`index`: and of its `attention` index, whose query a
        missing index or table also refuses), made at its first use: its module is loaded only once
        DynamoDB refused a request."""
        from adapters.runtime.table_check import NO_SUCH_INDEX, RefusalCheck

        made = self._refusal_checks.get(index)
        if made is not None:
            return made
        codes = NO_SUCH_INDEX if index else frozenset({VALIDATION_EXCEPTION})
        client, in_code, logger = self._aws.dynamodb.client, self._layout_in_code, self._logger
        check = RefusalCheck(
            client, self.table, self.layout, index=index, in_code=in_code, logger=logger, codes=codes
        )
        return self._refusal_checks.setdefault(index, check)  # atomic: racing threads share one

    @contextlib.contextmanager
    def _scope(
        self, correlation_id: str | None, message_id: str | None, attempt_id: str | None
    ) -> Iterator[None]:
        """Log lines of this call go to the team's logger (if given) and carry these ids; the
        team's own bound context is left as it was afterwards."""
        bound = {
            k: v
            for k, v in (
                ("correlation_id", correlation_id),
                ("message_id", message_id),
                ("attempt_id", attempt_id),
            )
            if v is not None
        }
        with logging_to(self._logger), structlog.contextvars.bound_contextvars(**bound):
            yield

    def _valid(
        self,
        key: object,
        body: object,
        attributes: object,
        item: object,
        group_id: object,
    ) -> tuple[Key, Request, dict[str, Any]]:
        checked = self._key(key)
        message_id = checked.message_id
        limit = self._config.max_message_bytes
        request = parse_message(body, {} if attributes is None else attributes, group_id, limit)
        if isinstance(request, Rejection):
            too_large = f" ({PAYLOAD_TOO_LARGE})" if request.code == PAYLOAD_TOO_LARGE else ""
            raise InvalidMessage(request.message + too_large)
        team_item, item_sizes = _team_item(item, self.layout)
        key_bytes = (
            len(message_id.encode()) + len(checked.partition.encode()) + len((checked.sort or "").encode())
        )
        wont_fit = record_extra_problem(request.attributes, item_sizes, key_bytes)
        if wont_fit:
            raise InvalidMessage(f"{wont_fit} ({PAYLOAD_TOO_LARGE})")
        return checked, request, team_item


def view(record: Record) -> RecordView:
    error = record.last_error
    return RecordView(
        message_id=record.message_id,
        status=record.status.value,
        delivery=record.phase.value.lower(),
        attempts=record.attempts,
        created_at=record.message.created_at,
        updated_at=record.updated_at,
        correlation_id=record.message.correlation_id,
        last_error=None if error is None else f"{error.category}:{error.code}",
        caller=record.message.caller,
    )


def _times(context: object, deadline_ms: int | None) -> tuple[int, int, int]:
    """(now, the invocation's end, the deadline its AWS calls must end by)."""
    now = now_ms()
    end = deadline_ms if deadline_ms is not None else now + remaining_ms(context)
    reserve = min(ANSWER_RESERVE_MS, max(end - now, 0) // ANSWER_RESERVE_SHARE)
    return now, end, end - reserve


def _result(answer: Answer, correlation_id: str) -> SendResult:
    return SendResult(
        accepted=answer.accepted,
        retryable=answer.retryable,
        http_status=answer.http_status,
        message_id=answer.message_id,
        outcome=_SEND_OUTCOMES.get(answer.result, SendOutcome.FAILED),
        error_code=None if answer.failure is None else answer.failure.code,
        correlation_id=correlation_id,
        unconfirmed=answer.unconfirmed,
    )


def _entry_request(entry: object) -> tuple[str, str | None] | None:
    """The request a `pending_put` entry writes (its hash and queue), or None for a key."""
    if not isinstance(entry, Mapping):
        return None
    try:
        return created_request(entry["Put"]["Item"])
    except (KeyError, TypeError, ValueError):
        raise InvalidMessage("dispatch takes the entry pending_put returned, or a key") from None


def _entry_key(entry: Mapping[str, Any], layout: TableLayout) -> Key:
    try:
        return layout.key_of(entry["Put"]["Item"])
    except (KeyError, TypeError):
        raise InvalidMessage("the entry holds no key of this Outbox's layout") from None


def _correlation(correlation_id: object) -> str:
    if correlation_id is None:
        return str(uuid.uuid4())
    valid = valid_token(correlation_id)
    if valid is None:
        raise InvalidMessage(f"correlation_id must be 1 to {SQS_MAX_ID_CHARS} characters of A-Za-z0-9._:-")
    return valid


def _unavailable(what: str, category: str, code: str) -> OutboxError:
    """An AWS failure, already classified and logged, as the library raises it."""
    status = consequence(category).http_status
    return OutboxError(f"{what} ({category})", category=category, code=code, http_status=status)


def _team_item(item: object, layout: TableLayout) -> tuple[dict[str, Any], dict[str, int]]:
    """The team's attributes, checked: names sendguard does not own, values DynamoDB can store;
    and each one's size, name and value (`statemodel.sizes.item_size`)."""
    if item is None:
        return {}, {}
    if not isinstance(item, Mapping):
        raise InvalidMessage("item must be a mapping of attribute names to values")
    sizes: dict[str, int] = {}
    for name, value in item.items():
        wrong_name = item_name_problem(name)
        if wrong_name:
            raise InvalidMessage(wrong_name)
        if layout.owns(name):
            raise InvalidMessage(
                f"item attribute {name!r} is sendguard's (the layout's key, status or body attribute, or "
                f"a name starting with 'sg_'); choose another name"
            )
        try:
            sizes[name] = item_size({name: serialize(value)})
        except (TypeError, ValueError) as exc:
            raise InvalidMessage(
                f"item[{name!r}] cannot be stored in DynamoDB: {exc} (numbers as int or Decimal)"
            ) from None
    return dict(item), sizes
