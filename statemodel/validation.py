"""Input validation: a request body and headers either become a `Request`, or a `Rejection` with a
code and a message a client can act on. Pure: nothing here is written anywhere.

Every size limit and size rule is `statemodel.sizes`'s (docs/limits.md): this module calls it, and
re-exports the limits it long held (`MAX_MESSAGE_BYTES`, `MAX_ATTRIBUTES`, …) for callers that import
them from here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from typing import Any, NoReturn

import attrs

from statemodel.keys import Key
from statemodel.records import Message
from statemodel.sizes import BODY_ITEM_KEY_BYTES as BODY_ITEM_KEY_BYTES
from statemodel.sizes import BODY_ITEM_LIMIT_BYTES as BODY_ITEM_LIMIT_BYTES
from statemodel.sizes import DYNAMODB_MAX_ITEM_BYTES as DYNAMODB_MAX_ITEM_BYTES
from statemodel.sizes import (
    DYNAMODB_MAX_PARTITION_BYTES,
    DYNAMODB_MAX_SORT_BYTES,
    SQS_MAX_ID_CHARS,
    attribute_count_problem,
    attribute_name_problem,
    message_bytes,
    message_size_problem,
)
from statemodel.sizes import MAX_ATTEMPTS_LIMIT as MAX_ATTEMPTS_LIMIT
from statemodel.sizes import MAX_ATTRIBUTES as MAX_ATTRIBUTES
from statemodel.sizes import MAX_BODY_BYTES as MAX_BODY_BYTES
from statemodel.sizes import MAX_DEPTH as MAX_DEPTH
from statemodel.sizes import MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES
from statemodel.sizes import MAX_MESSAGE_BYTES_WITH_BUCKET as MAX_MESSAGE_BYTES_WITH_BUCKET
from statemodel.sizes import MAX_RECORD_EXTRA_BYTES as MAX_RECORD_EXTRA_BYTES
from statemodel.sizes import RECORD_OVERHEAD_BYTES as RECORD_OVERHEAD_BYTES
from statemodel.sizes import RESERVED_ATTRIBUTE as RESERVED_ATTRIBUTE
from statemodel.sizes import SQS_ATTRIBUTE_ROOM_BYTES as SQS_ATTRIBUTE_ROOM_BYTES
from statemodel.sizes import SQS_MAX_ATTRIBUTES as SQS_MAX_ATTRIBUTES
from statemodel.sizes import SQS_MAX_MESSAGE_BYTES as SQS_MAX_MESSAGE_BYTES
from statemodel.sizes import message_limit as message_limit

# An Idempotency-Key, X-Correlation-Id or message id.
TOKEN = re.compile(rf"[A-Za-z0-9._:\-]{{1,{SQS_MAX_ID_CHARS}}}")
# A library key or FIFO group id: printable ASCII without spaces, 1 to SQS_MAX_ID_CHARS — the alphabet SQS
# takes for a MessageDeduplicationId, which the key becomes on a FIFO queue.
KEY = re.compile(rf"[!-~]{{1,{SQS_MAX_ID_CHARS}}}")
BODY_HASH = "body:"  # the request hash of a library message: of its body as given, not of parsed JSON
_ATTRIBUTE_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9_.\-]")  # one an attribute name may not hold
# Characters SQS accepts in a message: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF; the
# pattern lists the rest (the complement), which compiles in 1 ms where the negated set of the
# accepted ranges takes 14 ms of every cold start.
_SQS_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_KEY_NAMESPACE = uuid.UUID("6f1c2a3e-5b0d-4c8e-9a7f-3d2e1b0c9a85")

VALIDATION_ERROR = "VALIDATION_ERROR"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"


@attrs.frozen
class Rejection:
    code: str
    message: str

    @property
    def http_status(self) -> int:
        return 413 if self.code == PAYLOAD_TOO_LARGE else 400


@attrs.frozen
class Request:
    """A valid submission: the payload as the JSON text SQS will carry, and the attributes."""

    payload: str
    attributes: tuple[tuple[str, str], ...]
    request_hash: str
    group_id: str | None = None

    @property
    def size(self) -> int:
        """Bytes of payload and attributes, as the size limit counts them (`sizes.message_bytes`)."""
        return message_bytes(self.payload, self.attributes)


class _Invalid(Exception):
    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection


# `# pragma: no mutate` marks a line whose only mutations change a rejection's message text: the code
# (VALIDATION_ERROR, PAYLOAD_TOO_LARGE) is the contract, the words are for people (mutmut skips them).
def _reject(message: str, code: str = VALIDATION_ERROR) -> NoReturn:
    raise _Invalid(Rejection(code, message))


def parse_submission(body: str | bytes | None, max_bytes: int = MAX_MESSAGE_BYTES) -> Request | Rejection:
    """The body of `POST /messages`: `{"payload": <any JSON>, "attributes": {name: string}}`, its
    payload and attributes taking at most `max_bytes` (`message_limit`)."""
    try:
        return _parse(body, max_bytes)
    except _Invalid as invalid:
        return invalid.rejection


def _parse(body: str | bytes | None, max_bytes: int) -> Request:
    if not body:  # None, b"" or ""
        _reject("the request has no body; send a JSON object with a 'payload'")  # pragma: no mutate
    raw = body if isinstance(body, bytes) else body.encode(errors="surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        _reject(f"the body is larger than {MAX_BODY_BYTES} bytes", PAYLOAD_TOO_LARGE)
    try:
        text = raw.decode()  # UTF-8, strictly
    except UnicodeDecodeError:
        _reject("the body is not valid UTF-8")  # pragma: no mutate (message text, not contract)
    document = _loads(text)
    if not isinstance(document, dict):
        _reject("the body must be a JSON object with a 'payload'")  # pragma: no mutate (message text)
    unknown = sorted(set(document) - {"payload", "attributes"})
    if unknown:
        _reject(f"unknown field {_shown(unknown[0])}; only 'payload' and 'attributes' are allowed")
    if "payload" not in document:
        _reject("'payload' is required")  # pragma: no mutate (message text, not contract)
    payload = document["payload"]
    _check_depth(payload)
    attributes = _attributes(document.get("attributes", {}))
    text_of = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))  # pragma: no mutate (None=False)
    payload_text = _sqs_safe(text_of)
    try:
        too_large = message_size_problem("payload", payload_text, attributes, max_bytes)
    except UnicodeEncodeError:
        _reject(
            "the payload holds a lone surrogate (\\ud800-\\udfff); "  # pragma: no mutate (message text)
            "send valid Unicode"  # pragma: no mutate (message text, not contract)
        )
    if too_large:
        _reject(too_large, PAYLOAD_TOO_LARGE)
    return Request(payload_text, attributes, request_hash(payload, attributes))


def parse_message(
    body: object, attributes: object, group_id: object = None, max_bytes: int = MAX_MESSAGE_BYTES
) -> Request | Rejection:
    """A library message (`adapters.Outbox.send`): `body` is sent exactly as given — the team's own
    serialization, any text SQS accepts — with `attributes` ({name: string}) and an optional FIFO
    `group_id`; body and attributes take at most `max_bytes` (`message_limit`)."""
    try:
        return _parse_message(body, attributes, group_id, max_bytes)
    except _Invalid as invalid:
        return invalid.rejection


def _parse_message(body: object, attributes: object, group_id: object, max_bytes: int) -> Request:
    if not isinstance(body, str):
        kind = type(body).__name__  # pragma: no mutate (message text, not contract)
        _reject(f"body must be a str (the message text as SQS should carry it), not {kind}")
    if not body:
        _reject("body must not be empty: SQS refuses an empty message")  # pragma: no mutate (message text)
    bad = _SQS_INVALID.search(body)
    if bad:
        _reject(f"body holds {bad.group()!r} at index {bad.start()}, a character SQS does not accept")
    checked = _attributes(attributes)
    if group_id is not None and valid_key(group_id) is None:
        _reject(f"group_id must be 1 to {SQS_MAX_ID_CHARS} printable ASCII characters without spaces")
    assert group_id is None or isinstance(group_id, str)
    request = Request(body, checked, body_hash(body, checked, group_id), group_id)
    too_large = message_size_problem("body", body, checked, max_bytes)
    if too_large:
        _reject(too_large, PAYLOAD_TOO_LARGE)
    return request


def body_hash(body: str, attributes: tuple[tuple[str, str], ...], group_id: str | None) -> str:
    """Tells the same library message from another: the body byte for byte, attributes, group."""
    canonical = json.dumps(
        {"body": body, "attributes": dict(attributes), "group_id": group_id},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,  # pragma: no mutate (json's default: dropping it changes nothing)
    )
    return BODY_HASH + hashlib.sha256(canonical.encode()).hexdigest()  # ASCII already (ensure_ascii)


def request_hash(payload: Any, attributes: tuple[tuple[str, str], ...]) -> str:
    """Tells the same request from another: object key order and spacing do not count."""
    canonical = json.dumps(
        {"payload": payload, "attributes": dict(attributes)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,  # pragma: no mutate (json's default: dropping it changes nothing)
    )
    return hashlib.sha256(canonical.encode()).hexdigest()  # ASCII already (ensure_ascii)


def message_problems(message: Message) -> list[str]:
    """The payload and attributes still hash to what was accepted (they were never rewritten)."""
    if message.request_hash.startswith(BODY_HASH):
        if body_hash(message.payload, message.attributes, message.group_id) != message.request_hash:
            return [f"{message.message_id}: body, attributes or group differ from what was accepted"]
        return []
    try:
        payload = json.loads(message.payload)
    except ValueError:
        return [f"{message.message_id}: stored payload is not JSON"]
    if request_hash(payload, message.attributes) != message.request_hash:
        return [f"{message.message_id}: payload or attributes differ from what was accepted"]
    return []


def _loads(text: str) -> Any:
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except RecursionError:
        _reject(f"the body is nested deeper than {MAX_DEPTH} levels")
    except ValueError as exc:  # JSONDecodeError, and int conversions past Python's digit limit
        if isinstance(exc, json.JSONDecodeError):
            _reject(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        _reject("the body holds a number that is too large")  # pragma: no mutate


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _reject(f"duplicate key {key[:64]!r} in a JSON object")  # pragma: no mutate
        result[key] = value
    return result


def _no_constant(name: str) -> NoReturn:
    _reject(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        _reject(f"the number {text[:32]} is out of range")  # pragma: no mutate (message text, not contract)
    return value


def _check_depth(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                _reject(f"the payload is nested deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _attributes(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        _reject("'attributes' must be an object of string values")  # pragma: no mutate
    too_many = attribute_count_problem(len(value))
    if too_many:
        _reject(too_many)
    for name, item in value.items():
        _check_attribute_name(name)
        if not isinstance(item, str) or not item:
            kind = "an empty string" if item == "" else type(item).__name__
            _reject(f"attribute {_shown(name)} must be a non-empty string, not {kind}")
        bad = _SQS_INVALID.search(item)
        if bad:
            _reject(
                f"attribute {_shown(name)} holds {bad.group()!r} at index {bad.start()}, "
                "a character SQS does not accept"
            )
    return tuple(sorted(value.items()))


def _check_attribute_name(name: object) -> None:
    if not isinstance(name, str):
        _reject(f"attribute name {name!r:.64} must be a string, not {type(name).__name__}")
    wrong_length = attribute_name_problem(name)
    if wrong_length:
        _reject(wrong_length)
    bad = _ATTRIBUTE_NAME_CHARACTER.search(name)
    if bad:
        _reject(
            f"attribute name {_shown(name)} holds {bad.group()!r} at index {bad.start()}; "
            "names take A-Z a-z 0-9 _ - . only"
        )
    lowered = name.lower()
    if name == RESERVED_ATTRIBUTE:
        _reject(f"attribute name {RESERVED_ATTRIBUTE!r} is reserved for sendguard")
    if lowered.startswith(("aws.", "amazon.")):
        _reject(f"attribute name {name!r} may not start with 'AWS.' or 'Amazon.'")
    if name.startswith(".") or name.endswith(".") or ".." in name:
        _reject(f"attribute name {name!r} may not start or end with '.' or hold '..'")


ECHO_CHARS = 64  # of a caller's text an error answer repeats, at most (a 300 KB name is not echoed whole)


def _shown(text: str) -> str:
    """`text` as an error repeats it: quoted, and cut to ECHO_CHARS with its length said."""
    return repr(text) if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]!r}… ({len(text)} characters)"


def _sqs_safe(payload_text: str) -> str:
    """JSON text escapes control characters but not U+FFFE and U+FFFF, which SQS refuses. They can
    only stand inside JSON strings, where their escapes mean the same."""
    return payload_text.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")


def valid_token(value: object) -> str | None:
    """The value if it is a well-formed Idempotency-Key, X-Correlation-Id or message id."""
    return value if isinstance(value, str) and TOKEN.fullmatch(value) else None


def valid_key(value: object) -> str | None:
    """The value if it is a well-formed library key (the record's key and message id) or group id."""
    return value if isinstance(value, str) and KEY.fullmatch(value) else None


def idempotency_key(value: object) -> str | Rejection | None:
    """None when absent; a Rejection when present and malformed."""
    if value is None:
        return None
    if valid_token(value) is None:
        reason = f"Idempotency-Key must be 1 to {SQS_MAX_ID_CHARS} characters of A-Za-z0-9._:-"
        return Rejection(VALIDATION_ERROR, reason)
    assert isinstance(value, str)
    return value


def parse_key(value: object) -> Key | str:
    """The record key a caller gave — a string (the key and message id), or a (partition value,
    sort value) pair or `Key` — or why it cannot be one."""
    if isinstance(value, str):
        if valid_key(value) is None:
            shown = value[:64]  # pragma: no mutate (message text, not contract)
            return (
                f"key {shown!r} must be 1 to {SQS_MAX_ID_CHARS} printable ASCII characters, "
                "no spaces (it is the record's key and its message id; "  # pragma: no mutate (words)
                "on a table with a sort key, a (partition value, sort value) "  # pragma: no mutate (words)
                "pair takes any key)"  # pragma: no mutate (message text, not contract)
            )
        return Key(value)
    if isinstance(value, tuple) and len(value) == 2:
        value = Key(*value)
    if not isinstance(value, Key):
        kind = type(value).__name__  # pragma: no mutate (message text, not contract)
        return f"key must be a string or a (partition value, sort value) pair, not {kind}"
    if value.sort is None:
        return parse_key(value.partition)
    for part, limit in (
        (value.partition, DYNAMODB_MAX_PARTITION_BYTES),
        (value.sort, DYNAMODB_MAX_SORT_BYTES),
    ):
        if not isinstance(part, str):
            kind = type(part).__name__  # pragma: no mutate (message text, not contract)
            return f"a key's values must be strings, not {kind}"
        shown = part[:64]  # pragma: no mutate (message text, not contract)
        try:
            size = len(part.encode("utf-8"))
        except UnicodeEncodeError:
            return f"key value {shown!r} is not valid Unicode text"
        if not 0 < size <= limit:
            return f"key value {shown!r} takes {size} bytes; DynamoDB takes 1 to {limit}"
    return value


def message_id_for_key(key: str, caller: str | None = None) -> str:
    """The same key always names the same message; with a `caller`, the same key of another caller
    names another message (keys kept apart by caller)."""
    return str(uuid.uuid5(_KEY_NAMESPACE, key if caller is None else f"{caller}\n{key}"))


def new_message(
    request: Request,
    message_id: str,
    correlation_id: str,
    now: int,
    idempotency_key: str | None = None,
    *,
    key: Key | None = None,
    queue: str | None = None,
    caller: str | None = None,
) -> Message:
    """`key`: the record's composite key, whose message id `message_id` is (None: a plain key);
    `queue`: the queue URL every send of it goes to; `caller`: who sent it, where callers are kept
    apart."""
    return Message(
        message_id=message_id,
        payload=request.payload,
        attributes=request.attributes,
        correlation_id=correlation_id,
        created_at=now,
        request_hash=request.request_hash,
        idempotency_key=idempotency_key,
        group_id=request.group_id,
        key=key if key is not None and key.composite else None,
        queue=queue,
        caller=caller,
    )
