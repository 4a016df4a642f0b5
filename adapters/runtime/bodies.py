"""Bodies kept out of their record: in a body item of its own, or in S3.

Where a body goes — `INLINE`, a body `ITEM` or `S3` — is a size rule, decided with the others in
`statemodel.sizes.placement`; this module writes and reads bodies kept apart:

* a body item in the same table (`codec.body_key`), written once by a PutItem before the record,
  never updated. It holds up to DynamoDB's 400 KB item limit;
* a body too large for an item, up to SQS's 1 MiB, an object in the team's body bucket
  (`SENDGUARD_BODY_BUCKET`) under `SENDGUARD_BODY_PREFIX`, when there is one. Without a bucket such
  a body is refused (413 / InvalidMessage) before anything is written.

A body is written before its record, under a fresh nonce, so a record never names a body that is not
there, and a retried or conflicting request never overwrites another's body.

What a record names is input too: a body is read only from where this configuration writes bodies —
a body item under the record's own key and a nonce of `new_nonce`'s form, or an object of the
configured bucket under the configured prefix and the record's own message id (`names`). Anything
else is refused (`POINTER_REFUSED`) and never read: a record whose `sg_body_at` was rewritten cannot
make a reconciler read, and send, another bucket's objects or another record's body. What is read is
then checked against the record's request hash (`adapters.runtime.store`). A body whose record
was never written (the create failed, or the team's transaction did not commit) is an orphan that
nothing reads; it costs its storage only.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from adapters.runtime.batch_get import batch_get
from adapters.runtime.call_report import CallReport, call, refused
from adapters.runtime.classify import Classified, Classifier, classify, failed
from adapters.runtime.codec import (
    BODY,
    BODY_AT,
    ITEM_PREFIX,
    S3_PREFIX,
    body_item,
    expires_at,
    item_text,
    named_body_key,
)
from adapters.runtime.config import DEFAULT_BODY_PREFIX
from adapters.runtime.layout import TableLayout
from statemodel.categories import ErrorCategory, Failure
from statemodel.keys import Key
from statemodel.records import Message
from statemodel.sizes import Placement, item_size, placement

__all__ = [
    "ITEM_PREFIX",
    "LONGEST_BODY_AT",
    "POINTER_REFUSED",
    "S3_PREFIX",
    "TOO_LARGE",
    "Bodies",
    "S3Bodies",
    "TableBodies",
]

NONCE_BYTES = 6  # a body's nonce need only be unique among its own message's bodies
LONGEST_NONCE = "n" * (4 * NONCE_BYTES // 3)  # token_urlsafe's length for NONCE_BYTES: 8
LONGEST_BODY_AT = ITEM_PREFIX + LONGEST_NONCE  # what a record names its body item with, at most


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


POINTER_REFUSED = "BodyPointerRefused"  # a record names a body where this configuration keeps none
TOO_LARGE = "BodyTooLarge"  # a body that fits nowhere (validation refuses it before)
_NONCE = re.compile(rf"[A-Za-z0-9_\-]{{{len(LONGEST_NONCE)}}}")  # what new_nonce makes, no other


@attrs.frozen
class BodyItem:
    """A body item as built: the name the record keeps (`sg_body_at`), and the item itself."""

    name: str
    item: dict[str, Any]


class TableBodies:
    """Body items in the records' own table (a `statemodel.ports.BodyStore`)."""

    def __init__(
        self, client: Any, table: str, layout: TableLayout, *, classify: Classifier = classify
    ) -> None:
        self.client, self.table, self.layout, self.classify = client, table, layout, classify

    def names(self, key: Key, at: str) -> bool:
        """Whether `at` names a body item of the record `key` (written by `put`)."""
        return at.startswith(ITEM_PREFIX) and _NONCE.fullmatch(at.removeprefix(ITEM_PREFIX)) is not None

    def new_item(self, key: Key, text: str, expires: int | None = None) -> BodyItem:
        """The body item that would hold `text` (under a fresh nonce), built once: measured for its
        placement, then written as it is. `expires`: its TTL (`codec.EXPIRES_AT`), set now since
        nothing writes it again."""
        nonce = new_nonce()
        return BodyItem(ITEM_PREFIX + nonce, body_item(self.layout, key, nonce, text, expires))

    def put(
        self, key: Key, text: str, deadline_ms: int | None, expires: int | None = None
    ) -> tuple[str | Failure, CallReport]:
        """A body item (`new_item`), written (`put_item`), its failure as the port names it."""
        name, done = self.put_item(self.new_item(key, text, expires), deadline_ms)
        return _failure(name), done

    def put_item(self, body: BodyItem, deadline_ms: int | None) -> tuple[str | Classified, CallReport]:
        """`body` written, if nothing has its key; its name, or why it could not be written."""
        item = body.item
        # The key is new (a fresh nonce), but it sits among the team's own rows: never overwrite one.
        # The only item it may meet is this very put's, landed by an attempt botocore then retried,
        # which comes back whole.
        name, done = call(
            self.client,
            "dynamodb",
            "PutItem",
            lambda: self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": self.layout.partition_key},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
            deadline_ms,
            self.classify,
            answered=lambda _: body.name,
            refusal=lambda exc: body.name if exc.response.get("Item") == item else None,
        )
        return name, done

    def get_many(
        self, wanted: Sequence[tuple[Key, str]], deadline_ms: int | None
    ) -> tuple[dict[tuple[Key, str], str], list[CallReport]]:
        keys = [named_body_key(self.layout, key, at) for key, at in wanted]
        named = {_key_text(key): pair for key, pair in zip(keys, wanted, strict=True)}
        items, reports = batch_get(self.client, self.table, keys, deadline_ms, self.classify)
        found = {}
        for item in items:
            pair = named.get(_key_text({name: item[name] for name in self.layout.key_names}))
            if pair is not None and BODY in item:
                found[pair] = item_text(item)
        return found, reports


class S3Bodies:
    """Objects in the team's body bucket, under its prefix. The S3 client is made on first use, so
    a container that never sees a large body never pays for it at its cold start."""

    def __init__(
        self,
        bucket: str,
        prefix: str = DEFAULT_BODY_PREFIX,
        *,
        client: Any = None,
        make_client: Callable[[], Any] | None = None,
        classify: Classifier = classify,
    ) -> None:
        """`client`: the S3 client, or `make_client`: what makes it when first needed."""
        if (client is None) == (make_client is None):
            raise ValueError("S3Bodies takes a client or make_client, one of them")
        self.bucket, self.prefix, self.classify = bucket, prefix, classify
        self._client, self._factory = client, make_client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                assert self._factory is not None
                self._client = self._factory()
            return self._client

    def names(self, key: Key, at: str) -> bool:
        """Whether `at` names an object this bucket keeps for the record `key` (written by `put`)."""
        folder = f"{S3_PREFIX}{self.bucket}/{self.prefix}{key.message_id}/"
        return at.startswith(folder) and _NONCE.fullmatch(at.removeprefix(folder)) is not None

    def put(
        self, record_key: Key, text: str, deadline_ms: int | None, expires: int | None = None
    ) -> tuple[str | Failure, CallReport]:
        """An object (`put_object`), its failure as the port names it; `expires` is not written: the
        bucket's lifecycle rule expires the prefix's objects after the same retention
        (deploy/template.yaml, RetentionDays)."""
        name, done = self.put_object(record_key, text, deadline_ms)
        return _failure(name), done

    def put_object(
        self, record_key: Key, text: str, deadline_ms: int | None
    ) -> tuple[str | Classified, CallReport]:
        """`text` written to a new object of the record `record_key`; its name, or why it could not."""
        key = f"{self.prefix}{record_key.message_id}/{new_nonce()}"
        client = self.client
        name, done = call(
            client,
            "s3",
            "PutObject",
            lambda: client.put_object(
                Bucket=self.bucket, Key=key, Body=text.encode(), ContentType="text/plain; charset=utf-8"
            ),
            deadline_ms,
            self.classify,
            answered=lambda _: f"{S3_PREFIX}{self.bucket}/{key}",
        )
        return name, done

    def get_many(
        self, wanted: Sequence[tuple[Key, str]], deadline_ms: int | None
    ) -> tuple[dict[tuple[Key, str], str], list[CallReport]]:
        client = self.client
        found: dict[tuple[Key, str], str] = {}
        reports = []
        for key, at in wanted:
            bucket, _, object_key = at.removeprefix(S3_PREFIX).partition("/")
            text, done = call(
                client,
                "s3",
                "GetObject",
                lambda: client.get_object(Bucket=bucket, Key=object_key),  # noqa: B023 (called at once)
                deadline_ms,
                self.classify,
                answered=lambda response: str(response["Body"].read().decode()),
            )
            if isinstance(text, Classified):
                if text.code in ("NoSuchKey", "404"):  # written before its record: never missing
                    done = attrs.evolve(done, error=failed(ErrorCategory.AMBIGUOUS, "BodyMissing"))
            else:
                found[(key, at)] = text
            reports.append(done)
        return found, reports


class Bodies:
    """Where a create's body is kept, and how a record's body is read back: the body items of the
    records' table and, when there is one, the body bucket (each a `statemodel.ports.BodyStore`)."""

    def __init__(
        self,
        client: Any,
        table: str,
        layout: TableLayout,
        *,
        s3: S3Bodies | None = None,
        retention_days: int = 0,
        classify: Classifier = classify,
    ) -> None:
        """`s3`: the body bucket, for bodies too large for a body item (without it, they are refused).
        `retention_days`: how long after its acceptance a body item may be deleted (0: never)."""
        self.layout = layout
        self.items = TableBodies(client, table, layout, classify=classify)
        self.s3 = s3
        self.retention_days = retention_days

    def body_item(self, message: Message) -> BodyItem:
        """The body item that would hold `message`'s body (`TableBodies.new_item`)."""
        return self.items.new_item(message.record_key, message.payload, self._expires(message))

    def placement(self, created: Mapping[str, Any], body: BodyItem) -> Placement | None:
        """Where the body of the record `created` (the create's item, built once, body inline)
        belongs (`statemodel.sizes.placement`), by the sizes of the record with it and
        without it, and of its body item `body`."""
        inline_bytes = item_size(created)
        # Apart, the record names its body instead of holding it: the same item, one attribute swapped.
        inline_body = {self.layout.body_attribute: created[self.layout.body_attribute]}
        apart_bytes = inline_bytes - item_size(inline_body) + item_size({BODY_AT: {"S": LONGEST_BODY_AT}})
        return placement(inline_bytes, apart_bytes, item_size(body.item), bucket=self.s3 is not None)

    def place(
        self, message: Message, created: Mapping[str, Any], deadline_ms: int | None
    ) -> tuple[str | Classified | None, CallReport | None]:
        """Where the body of the record `created` goes (`placement`): None for the record itself,
        else the name of the body it wrote first (or why it could not)."""
        body = self.body_item(message)
        where = self.placement(created, body)
        if where is Placement.INLINE:
            return None, None
        if where is None:
            too_large = failed(ErrorCategory.PERMANENT, TOO_LARGE)
            return too_large, refused("dynamodb", "PutItem", too_large)
        if where is Placement.ITEM or self.s3 is None:
            return self.items.put_item(body, deadline_ms)
        return self.s3.put_object(message.record_key, message.payload, deadline_ms)

    def _expires(self, message: Message) -> int | None:
        return expires_at(message, self.retention_days)

    def read(
        self, wanted: Sequence[tuple[Key, str]], deadline_ms: int | None
    ) -> tuple[dict[tuple[Key, str], str], list[CallReport]]:
        """The texts of out-of-line bodies, by (record key, `sg_body_at`), and the calls made. A body
        named where this configuration keeps none (`TableBodies.names`, `S3Bodies.names`: under the
        record's own key, in the configured bucket and prefix) is not read: a report per such name
        says `POINTER_REFUSED`, and its text is missing from the answer."""
        in_items = [(key, at) for key, at in wanted if self.items.names(key, at)]
        in_s3 = [(key, at) for key, at in wanted if self.s3 is not None and self.s3.names(key, at)]
        elsewhere = [at for key, at in wanted if (key, at) not in in_items and (key, at) not in in_s3]
        texts, reports = self.items.get_many(in_items, deadline_ms) if in_items else ({}, [])
        if in_s3:
            assert self.s3 is not None
            more, more_reports = self.s3.get_many(in_s3, deadline_ms)
            texts |= more
            reports += more_reports
        for at in elsewhere:
            service, operation = (
                ("dynamodb", "BatchGetItem") if at.startswith(ITEM_PREFIX) else ("s3", "GetObject")
            )
            reports.append(refused(service, operation, failed(ErrorCategory.PERMANENT, POINTER_REFUSED)))
        return texts, reports


def _failure(name: str | Classified) -> str | Failure:
    return name.failure if isinstance(name, Classified) else name


def _key_text(key: dict[str, Any]) -> str:
    return "\x1f".join(f"{name}={value}" for name, value in sorted(key.items()))
