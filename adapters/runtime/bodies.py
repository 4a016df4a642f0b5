"""Bodies kept out of their record: in a body item of its own, or in S3.

Where a body goes — `INLINE`, a body `ITEM` or `S3` — is a size rule, decided with the others in
`adapters.runtime.item_size.placement`; this module writes and reads bodies kept apart:

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
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from adapters.runtime.batch_get import batch_get
from adapters.runtime.call_report import CallReport, call
from adapters.runtime.classify import Classified, Classifier, classify, failed
from adapters.runtime.codec import BODY, ITEM_PREFIX, S3_PREFIX, body_item, item_text, named_body_key
from adapters.runtime.config import DEFAULT_BODY_PREFIX
from adapters.runtime.item_size import item_size
from adapters.runtime.layout import TableLayout
from statemodel.categories import ErrorCategory
from statemodel.keys import Key

__all__ = [
    "ITEM_PREFIX",
    "LONGEST_BODY_AT",
    "POINTER_REFUSED",
    "S3_PREFIX",
    "BodyStore",
    "S3Bodies",
    "TableBodies",
]

NONCE_BYTES = 6  # a body's nonce need only be unique among its own message's bodies
LONGEST_NONCE = "n" * (4 * NONCE_BYTES // 3)  # token_urlsafe's length for NONCE_BYTES: 8
LONGEST_BODY_AT = ITEM_PREFIX + LONGEST_NONCE  # what a record names its body item with, at most


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


POINTER_REFUSED = "BodyPointerRefused"  # a record names a body where this configuration keeps none
_NONCE = re.compile(rf"[A-Za-z0-9_\-]{{{len(LONGEST_NONCE)}}}")  # what new_nonce makes, no other


class BodyStore(Protocol):
    """Bodies written once and read by the name `put` returns (what the record keeps in `sg_body_at`)."""

    def names(self, key: Key, at: str) -> bool:
        """Whether `at` is a name `put` gives a body of the record `key` here (else it is not read)."""
        ...

    def put(
        self, key: Key, text: str, deadline_ms: int | None, expires: int | None = None
    ) -> tuple[str | Classified, CallReport]:
        """The body's name, or why it could not be written (classified). `expires`: when the body may
        go (`codec.expires_at`; None: never), where the store keeps that per body."""
        ...

    def get_many(
        self, wanted: Sequence[tuple[Key, str]], deadline_ms: int | None
    ) -> tuple[dict[tuple[Key, str], str], list[CallReport]]:
        """The texts of (record key, name) pairs, and the calls made: a body not read (a failed
        call, a missing body) is absent from the answer, and a failed call's report says why."""
        ...


class TableBodies:
    """Body items in the records' own table."""

    def __init__(
        self, client: Any, table: str, layout: TableLayout, *, classify: Classifier = classify
    ) -> None:
        self.client, self.table, self.layout, self.classify = client, table, layout, classify

    def names(self, key: Key, at: str) -> bool:
        """Whether `at` names a body item of the record `key` (written by `put`)."""
        return at.startswith(ITEM_PREFIX) and _NONCE.fullmatch(at.removeprefix(ITEM_PREFIX)) is not None

    def item_bytes(self, key: Key, text: str, expires: int | None = None) -> int:
        """The size of the body item that would hold `text`, with the longest nonce."""
        return item_size(body_item(self.layout, key, LONGEST_NONCE, text, expires))

    def put(
        self, key: Key, text: str, deadline_ms: int | None, expires: int | None = None
    ) -> tuple[str | Classified, CallReport]:
        """A body item; `expires`: its TTL (`codec.EXPIRES_AT`), set now since nothing writes it again."""
        nonce = new_nonce()
        item = body_item(self.layout, key, nonce, text, expires)
        # The key is new (a fresh nonce), but it sits among the team's own rows: never overwrite one.
        # The only item it may meet is this very put's, landed by an attempt botocore then retried,
        # which comes back whole.
        return call(
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
            answered=lambda _: ITEM_PREFIX + nonce,
            refusal=lambda exc: ITEM_PREFIX + nonce if exc.response.get("Item") == item else None,
        )

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
    ) -> tuple[str | Classified, CallReport]:
        """An object; `expires` is not written: the bucket's lifecycle rule expires the prefix's
        objects after the same retention (deploy/template.yaml, RetentionDays)."""
        key = f"{self.prefix}{record_key.message_id}/{new_nonce()}"
        client = self.client
        return call(
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


def _key_text(key: dict[str, Any]) -> str:
    return "\x1f".join(f"{name}={value}" for name, value in sorted(key.items()))
